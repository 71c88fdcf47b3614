//! Turns a MIDI part into a monophonic melody on the 16-step grid (MusicVAE §5 and appendix A):
//! onsets and offsets snap to the nearest sixteenth, notes shorter than a step after snapping are
//! dropped, chords keep their highest note (skyline), each note is cut at the next onset, and
//! pitches outside the 88-key range move by octaves. Every change is counted in the report.
//! A part whose notes run past [`MAX_BARS`] is refused before its melody is built.

use super::tokens::{MAX_PITCH, MIN_PITCH};
use super::{Melody, Note, MAX_BARS};
use crate::midi::{Meter, MidiError, MidiFile, Part};
use crate::time::{ticks_to_steps, Step, STEPS_PER_BAR};

/// How far a snapped position may sit from the grid and still count as "on the grid": well below
/// one tick at any PPQ up to 2^16.
const ON_GRID_TOLERANCE: f64 = 1e-6;

/// What quantization changed, so a dataset summary can say what was lost.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuantizeReport {
    /// Notes read from the part.
    pub notes_in: u64,
    /// Onsets that were off the 16th grid (triplets, 32nds) and snapped to the nearest step.
    pub snapped_onsets: u64,
    /// Notes that became shorter than one step after snapping.
    pub dropped_short: u64,
    /// Notes under the top note of a chord (skyline).
    pub dropped_polyphony: u64,
    /// Notes moved by octaves into MIDI 21..=108.
    pub octave_shifted: u64,
    /// Onset steps where a chord was reduced to its top note.
    #[serde(skip)]
    pub chord_steps: Vec<Step>,
    /// The file stated no meter, so MIDI's default 4/4 was assumed.
    pub meter_assumed: bool,
}

impl QuantizeReport {
    /// Adds another report's counts to this one (chord steps are per melody and are not kept).
    pub fn accumulate(&mut self, other: &QuantizeReport) {
        self.notes_in += other.notes_in;
        self.snapped_onsets += other.snapped_onsets;
        self.dropped_short += other.dropped_short;
        self.dropped_polyphony += other.dropped_polyphony;
        self.octave_shifted += other.octave_shifted;
    }
}

/// Quantizes one part of a file to a monophonic melody.
pub fn quantize(file: &MidiFile, part: &Part) -> Result<(Melody, QuantizeReport), MidiError> {
    let mut report = QuantizeReport { notes_in: part.notes.len() as u64, ..Default::default() };
    let meter = check_meters(file, &mut report)?;
    check_length(file, part)?;

    let timed = part.notes.iter().map(|n| TimedNote {
        pitch: n.key,
        start: ticks_to_steps(n.start, file.ppq),
        end: ticks_to_steps(n.end, file.ppq),
    });
    let melody_notes = quantize_notes(timed, &mut report);
    if melody_notes.is_empty() {
        return Err(MidiError::NoNotes);
    }

    let melody = Melody {
        bars: Melody::bars_to_hold(&melody_notes),
        notes: melody_notes,
        bpm: file.initial_bpm(),
        meter,
        key: file.keys.first().map(|(_, key)| *key),
    };
    Ok((melody, report))
}

/// A note timed in fractional grid steps, before quantization.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TimedNote {
    pub pitch: u8,
    pub start: f64,
    pub end: f64,
}

/// Snaps notes to the grid and reduces them to one monophonic line (the steps of the module doc),
/// counting every change in `report`. Used for MIDI files and for the plugin's captured clips.
pub fn quantize_notes(timed: impl Iterator<Item = TimedNote>, report: &mut QuantizeReport) -> Vec<Note> {
    let mut notes: Vec<Note> = Vec::with_capacity(timed.size_hint().0);
    for timed_note in timed {
        let start_exact = timed_note.start.max(0.0);
        let start = start_exact.round();
        if (start - start_exact).abs() > ON_GRID_TOLERANCE {
            report.snapped_onsets += 1;
        }
        let end = timed_note.end.round();
        if end <= start {
            report.dropped_short += 1;
            continue;
        }
        let (pitch, shifted) = fold_into_range(timed_note.pitch);
        report.octave_shifted += u64::from(shifted);
        notes.push(Note { pitch, start: Step(start as u32), len: Step((end - start) as u32) });
    }

    // Skyline: at each onset keep the highest pitch.
    notes.sort_by(|a, b| a.start.cmp(&b.start).then(b.pitch.cmp(&a.pitch)));
    let mut melody_notes: Vec<Note> = Vec::with_capacity(notes.len());
    for note in notes {
        match melody_notes.last() {
            Some(kept) if kept.start == note.start => {
                report.dropped_polyphony += 1;
                if report.chord_steps.last() != Some(&note.start) {
                    report.chord_steps.push(note.start);
                }
            }
            _ => melody_notes.push(note),
        }
    }
    // Monophony: a note stops where the next one starts.
    for i in 1..melody_notes.len() {
        let next_start = melody_notes[i].start;
        let note = &mut melody_notes[i - 1];
        if note.end() > next_start {
            note.len = next_start - note.start;
        }
    }
    melody_notes
}

/// Checks that every note of the part ends within [`MAX_BARS`], as quantization rounds it, so
/// that no step, bar or grid the size of the melody overflows or takes more than the limit.
fn check_length(file: &MidiFile, part: &Part) -> Result<(), MidiError> {
    let Some(last_end) = part.notes.iter().map(|n| n.end.max(n.start)).max() else {
        return Ok(());
    };
    let steps = ticks_to_steps(last_end, file.ppq).round();
    if steps > f64::from(MAX_BARS * STEPS_PER_BAR) {
        let bar = (steps / f64::from(STEPS_PER_BAR)).ceil() as u64;
        return Err(MidiError::TooLong { bar, max: MAX_BARS });
    }
    Ok(())
}

/// Checks that every meter regroups into 16-step bars from the start, and returns the first one.
fn check_meters(file: &MidiFile, report: &mut QuantizeReport) -> Result<Meter, MidiError> {
    let Some((_, first)) = file.meters.first() else {
        report.meter_assumed = true;
        return Ok(Meter::FOUR_FOUR);
    };
    for &(tick, meter) in &file.meters {
        let step = ticks_to_steps(tick, file.ppq);
        if !meter.is_four_four_type() {
            let bar = ((step / f64::from(STEPS_PER_BAR)).floor() as u32).saturating_add(1);
            return Err(MidiError::UnsupportedMeter { meter, bar });
        }
        if (step / f64::from(STEPS_PER_BAR)).fract().abs() > ON_GRID_TOLERANCE {
            return Err(MidiError::MeterChangeOffBar { meter, step });
        }
    }
    Ok(*first)
}

/// Moves a pitch by whole octaves into MIDI 21..=108; says whether it moved.
fn fold_into_range(key: u8) -> (u8, bool) {
    let mut pitch = key;
    while pitch < MIN_PITCH {
        pitch += 12;
    }
    while pitch > MAX_PITCH {
        pitch -= 12;
    }
    (pitch, pitch != key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::midi::TickNote;

    fn file_with(notes: Vec<TickNote>, ppq: u16, meters: Vec<(u64, Meter)>) -> MidiFile {
        MidiFile {
            format: 0,
            ppq,
            track_count: 1,
            parts: vec![Part { track: 0, channel: None, name: String::new(), notes }],
            tempos: vec![],
            meters,
            keys: vec![],
            end_tick: 0,
        }
    }

    fn tick_note(key: u8, start: u64, end: u64) -> TickNote {
        TickNote { key, start, end, velocity: 90 }
    }

    fn melody_of(file: &MidiFile) -> Result<(Melody, QuantizeReport), MidiError> {
        quantize(file, &file.parts[0])
    }

    #[test]
    fn off_grid_onsets_snap_to_the_nearest_step_and_are_counted() {
        // PPQ 12: a step is 3 ticks. A triplet eighth starts at tick 4, nearest step 1.
        let file = file_with(vec![tick_note(60, 0, 4), tick_note(62, 4, 12)], 12, vec![]);
        let (melody, report) = melody_of(&file).unwrap();
        assert_eq!(report.snapped_onsets, 1);
        assert_eq!(melody.notes[1], Note { pitch: 62, start: Step(1), len: Step(3) });
    }

    #[test]
    fn notes_shorter_than_a_step_after_snapping_are_dropped_and_counted() {
        let file = file_with(vec![tick_note(60, 0, 1), tick_note(62, 3, 6)], 12, vec![]);
        let (melody, report) = melody_of(&file).unwrap();
        assert_eq!(report.dropped_short, 1);
        assert_eq!(melody.notes, vec![Note { pitch: 62, start: Step(1), len: Step(1) }]);
    }

    #[test]
    fn chords_keep_their_top_note_and_notes_stop_at_the_next_onset() {
        let notes = vec![tick_note(60, 0, 24), tick_note(67, 0, 24), tick_note(64, 0, 12), tick_note(65, 6, 12)];
        let (melody, report) = melody_of(&file_with(notes, 12, vec![])).unwrap();
        assert_eq!(report.dropped_polyphony, 2);
        assert_eq!(report.chord_steps, vec![Step(0)]);
        assert_eq!(
            melody.notes,
            vec![Note { pitch: 67, start: Step(0), len: Step(2) }, Note { pitch: 65, start: Step(2), len: Step(2) }]
        );
    }

    #[test]
    fn out_of_range_pitches_move_by_octaves() {
        let (melody, report) =
            melody_of(&file_with(vec![tick_note(10, 0, 3), tick_note(120, 3, 6)], 12, vec![])).unwrap();
        assert_eq!(report.octave_shifted, 2);
        assert_eq!(melody.notes[0].pitch, 22);
        assert_eq!(melody.notes[1].pitch, 108);
    }

    #[test]
    fn a_six_eight_meter_is_a_typed_error_naming_the_meter() {
        let six_eight = Meter { numerator: 6, denominator: 8 };
        let err = melody_of(&file_with(vec![tick_note(60, 0, 3)], 12, vec![(0, six_eight)])).unwrap_err();
        assert!(matches!(err, MidiError::UnsupportedMeter { meter, bar: 1 } if meter == six_eight));
        assert!(err.to_string().contains("6/8"));
    }

    #[test]
    fn two_four_and_four_two_are_regrouped_into_sixteen_step_bars() {
        for meter in [Meter { numerator: 2, denominator: 4 }, Meter { numerator: 4, denominator: 2 }] {
            // Three 16-step bars of notes at PPQ 12 (48 ticks a bar).
            let (melody, report) = melody_of(&file_with(vec![tick_note(60, 0, 144)], 12, vec![(0, meter)])).unwrap();
            assert_eq!((melody.bars, melody.meter, report.meter_assumed), (3, meter, false));
        }
    }

    #[test]
    fn a_meter_change_off_a_grid_bar_line_is_an_error() {
        let two_four = Meter { numerator: 2, denominator: 4 };
        // One 2/4 bar (24 ticks at PPQ 12), then 4/4: the change falls mid grid bar.
        let meters = vec![(0, two_four), (24, Meter::FOUR_FOUR)];
        let err = melody_of(&file_with(vec![tick_note(60, 0, 3)], 12, meters)).unwrap_err();
        assert!(matches!(err, MidiError::MeterChangeOffBar { .. }));
    }

    #[test]
    fn a_missing_meter_is_assumed_four_four_and_reported() {
        let (melody, report) = melody_of(&file_with(vec![tick_note(60, 0, 3)], 12, vec![])).unwrap();
        assert!(report.meter_assumed);
        assert_eq!(melody.meter, Meter::FOUR_FOUR);
    }

    #[test]
    fn a_part_whose_notes_all_vanish_is_a_no_notes_error() {
        let err = melody_of(&file_with(vec![tick_note(60, 0, 1)], 12, vec![])).unwrap_err();
        assert!(matches!(err, MidiError::NoNotes));
    }
}
