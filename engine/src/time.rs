//! Musical time: the one place where ticks, beats, sixteenth-note steps, bars and audio samples
//! are converted into each other. The engine's note grid and the plugin's capture and scheduler
//! both go through here, so a clip means the same thing on both sides.
//!
//! The grid follows MusicVAE (Roberts et al., 2018, §5): 4 steps per quarter note and 16 steps
//! per 4-beat bar, so a 2-bar latent covers 32 steps.

use std::ops::{Add, Sub};

/// Sixteenth-note steps per quarter-note beat: MusicVAE's quantization.
pub const STEPS_PER_BEAT: u32 = 4;
/// Quarter-note beats per grid bar. Every supported meter is regrouped into 4-beat bars.
pub const BEATS_PER_BAR: u32 = 4;
/// Steps in one grid bar.
pub const STEPS_PER_BAR: u32 = STEPS_PER_BEAT * BEATS_PER_BAR;
/// Bars covered by one VAE latent (a MusicVAE 2-bar melody).
pub const BARS_PER_SEGMENT: u32 = 2;
/// Steps covered by one VAE latent.
pub const STEPS_PER_SEGMENT: u32 = STEPS_PER_BAR * BARS_PER_SEGMENT;

/// A position or a length on the sixteenth-note grid.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Step(pub u32);

impl Step {
    /// The bar (0-based) that this position falls in.
    pub fn bar(self) -> Bar {
        Bar(self.0 / STEPS_PER_BAR)
    }

    /// This step as a position in quarter-note beats.
    pub fn beats(self) -> f64 {
        f64::from(self.0) / f64::from(STEPS_PER_BEAT)
    }
}

impl Add for Step {
    type Output = Step;
    fn add(self, rhs: Step) -> Step {
        Step(self.0 + rhs.0)
    }
}

impl Sub for Step {
    type Output = Step;
    fn sub(self, rhs: Step) -> Step {
        Step(self.0 - rhs.0)
    }
}

/// A 0-based bar index on the 16-step grid. Shown to people 1-based.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bar(pub u32);

impl Bar {
    /// The first step of this bar.
    pub fn start(self) -> Step {
        Step(self.0 * STEPS_PER_BAR)
    }
}

/// MIDI ticks (pulses) to quarter-note beats at `ppq` ticks per quarter note.
pub fn ticks_to_beats(ticks: u64, ppq: u16) -> f64 {
    ticks as f64 / f64::from(ppq)
}

/// Quarter-note beats to the nearest MIDI tick at `ppq`.
pub fn beats_to_ticks(beats: f64, ppq: u16) -> u64 {
    (beats * f64::from(ppq)).round().max(0.0) as u64
}

/// MIDI ticks to fractional grid steps; quantization rounds this.
pub fn ticks_to_steps(ticks: u64, ppq: u16) -> f64 {
    ticks_to_beats(ticks, ppq) * f64::from(STEPS_PER_BEAT)
}

/// A grid step to the nearest MIDI tick at `ppq`. Exact whenever `ppq` is a multiple of 4.
pub fn steps_to_ticks(step: Step, ppq: u16) -> u64 {
    beats_to_ticks(step.beats(), ppq)
}

/// Microseconds per quarter note (a MIDI tempo event) to beats per minute.
pub fn micros_per_beat_to_bpm(micros: u32) -> f64 {
    60_000_000.0 / f64::from(micros.max(1))
}

/// Beats per minute to microseconds per quarter note, as a MIDI tempo event stores it.
pub fn bpm_to_micros_per_beat(bpm: f64) -> u32 {
    // A MIDI tempo is a 24-bit field; clamp so an extreme tempo cannot overflow it.
    (60_000_000.0 / bpm).round().clamp(1.0, 16_777_215.0) as u32
}

/// Audio samples per quarter-note beat at a tempo and sample rate.
pub fn samples_per_beat(bpm: f64, sample_rate: f64) -> f64 {
    sample_rate * 60.0 / bpm
}

/// A duration in beats to a duration in samples at a constant tempo.
pub fn beats_to_samples(beats: f64, bpm: f64, sample_rate: f64) -> f64 {
    beats * samples_per_beat(bpm, sample_rate)
}

/// A duration in samples to a duration in beats at a constant tempo.
pub fn samples_to_beats(samples: f64, bpm: f64, sample_rate: f64) -> f64 {
    samples / samples_per_beat(bpm, sample_rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_bar_is_sixteen_steps_and_a_segment_two_bars() {
        assert_eq!(Bar(3).start(), Step(48));
        assert_eq!(Step(47).bar(), Bar(2));
        assert_eq!(STEPS_PER_SEGMENT, 32);
    }

    #[test]
    fn one_beat_at_120_bpm_and_48k_is_24000_samples() {
        assert_eq!(beats_to_samples(1.0, 120.0, 48_000.0), 24_000.0);
        assert_eq!(micros_per_beat_to_bpm(500_000), 120.0);
        assert_eq!(bpm_to_micros_per_beat(120.0), 500_000);
    }

    proptest! {
        #[test]
        fn steps_survive_a_round_trip_through_ticks(step in 0u32..1_000_000, ppq_quarter in 1u16..4000) {
            let ppq = ppq_quarter * 4;
            let ticks = steps_to_ticks(Step(step), ppq);
            prop_assert_eq!(ticks_to_steps(ticks, ppq), f64::from(step));
        }

        #[test]
        fn beats_survive_a_round_trip_through_samples(
            beats in 0.0f64..10_000.0,
            bpm in 20.0f64..400.0,
            rate in prop::sample::select(vec![22_050.0, 44_100.0, 48_000.0, 96_000.0, 192_000.0]),
        ) {
            let back = samples_to_beats(beats_to_samples(beats, bpm, rate), bpm, rate);
            prop_assert!((back - beats).abs() <= 1e-9 * beats.max(1.0));
        }

        #[test]
        fn tempo_survives_a_round_trip_through_micros(micros in 1u32..16_777_215) {
            prop_assert_eq!(bpm_to_micros_per_beat(micros_per_beat_to_bpm(micros)), micros);
        }
    }
}
