//! Which note value a host's song positions count. CLAP and VST3 define positions in quarter
//! notes, and so does Rebar, but some hosts (Qtractor) count the meter's own beat instead: half
//! notes in 2/2, eighths in 6/8, while still giving the tempo in quarter notes a minute. Read as
//! quarter notes, such positions move at the wrong speed and every block looks like a jump.
//!
//! Rebar measures how far the reported position moves against how far the tempo says it should
//! over at least a 32nd of a beat of uninterrupted playback: at the same rate the positions are
//! quarter notes; at the meter's rate (denominator / 4) they count the meter's beat and are
//! scaled to quarter notes. Anything else is a jump and says nothing. Real-time safe.

/// Quarter notes the measurement spans before it decides. Short, so the decision comes before
/// positions read at the wrong rate drift from the true ones by more than a 64th of a beat
/// (the continuity tolerance, see [`crate::timeline::position_tolerance`]) and the first pass
/// is lost; long enough that positions rounded to a host's ticks (a 960th of its beat) move
/// the measured rate by well under [`RATE_TOLERANCE`].
const MEASURE_QUARTERS: f64 = 1.0 / 32.0;
/// How far, relatively, the measured rate may be from the rate it is taken for: the candidates
/// (1, and the meter's 1/2, 2, …) are a factor of 2 apart.
const RATE_TOLERANCE: f64 = 0.15;

/// The running measurement, and the scale it settled on.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct BeatUnit {
    /// Quarter notes per reported beat.
    quarters_per_beat: f64,
    /// Where the measurement started (reported position) and the quarter notes played since.
    anchor: Option<(f64, f64)>,
}

impl Default for BeatUnit {
    fn default() -> Self {
        Self { quarters_per_beat: 1.0, anchor: None }
    }
}

impl BeatUnit {
    /// Quarter notes per reported beat: 1 until a host is caught counting another note value.
    pub fn quarters_per_beat(&self) -> f64 {
        self.quarters_per_beat
    }

    /// Takes one block: its reported start position, the meter's denominator, and its length in
    /// quarter notes by the tempo. `None` (stopped, or no position) ends the measurement.
    pub fn observe(&mut self, block: Option<(f64, Option<i32>, f64)>) {
        let Some((reported, denominator, quarters)) = block.filter(|(r, _, q)| r.is_finite() && q.is_finite()) else {
            self.anchor = None;
            return;
        };
        let (anchor, played) = match self.anchor {
            Some((anchor, played)) if played >= MEASURE_QUARTERS => {
                let rate = (reported - anchor) / played;
                let meter_rate = denominator.filter(|d| *d > 0).map(|d| f64::from(d) / 4.0);
                if (rate - 1.0).abs() <= RATE_TOLERANCE {
                    self.quarters_per_beat = 1.0;
                } else if let Some(meter_rate) = meter_rate.filter(|m| (rate - m).abs() <= RATE_TOLERANCE * m) {
                    self.quarters_per_beat = 1.0 / meter_rate;
                }
                (reported, 0.0)
            }
            Some(running) => running,
            None => (reported, 0.0),
        };
        self.anchor = Some((anchor, played + quarters));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays `blocks` blocks of `quarters` quarter notes, reporting positions that advance by
    /// `rate` reported beats a quarter note, rounded to 960 ticks.
    fn play(unit: &mut BeatUnit, blocks: usize, quarters: f64, rate: f64, denominator: i32) {
        for i in 0..blocks {
            let reported = (i as f64 * quarters * rate * 960.0).round() / 960.0;
            unit.observe(Some((reported, Some(denominator), quarters)));
        }
    }

    #[test]
    fn quarter_note_positions_stay_as_they_are() {
        let mut unit = BeatUnit::default();
        play(&mut unit, 200, 1024.0 / 24_000.0, 1.0, 2);
        assert_eq!(unit.quarters_per_beat(), 1.0);
    }

    #[test]
    fn half_note_positions_in_two_two_are_doubled_and_eighths_in_six_eight_halved() {
        let mut unit = BeatUnit::default();
        play(&mut unit, 200, 64.0 / 48_000.0 * 2.0, 0.5, 2);
        assert_eq!(unit.quarters_per_beat(), 2.0);
        let mut unit = BeatUnit::default();
        play(&mut unit, 200, 1000.0 / 24_000.0, 2.0, 8);
        assert_eq!(unit.quarters_per_beat(), 0.5);
        // Back in a host that counts quarter notes, the scale returns to 1.
        play(&mut unit, 200, 1000.0 / 24_000.0, 1.0, 8);
        assert_eq!(unit.quarters_per_beat(), 1.0);
    }

    #[test]
    fn jumps_and_stops_decide_nothing() {
        let mut unit = BeatUnit::default();
        // A jump of three beats every block: no rate fits.
        for i in 0..100 {
            unit.observe(Some((f64::from(i) * 3.0, Some(2), 0.1)));
        }
        // Half-note positions, but stopped after every block: never two blocks to compare.
        for i in 0..100 {
            unit.observe(Some((f64::from(i) * 0.05, Some(2), 0.1)));
            unit.observe(None);
        }
        assert_eq!(unit.quarters_per_beat(), 1.0);
        unit.observe(Some((f64::NAN, Some(2), 0.1)));
        assert_eq!(unit.anchor, None);
    }
}
