//! A text piano roll of a melody, for `rebar inspect`: one row per pitch (highest on top), one
//! column per step, bars separated by `|` and numbered from 1, a few bars per system.

use std::fmt::Write;

use super::Melody;
use crate::time::{Bar, STEPS_PER_BAR};

/// Bars per printed system: four bars of 16 steps fit an 80-column terminal with the labels.
const BARS_PER_SYSTEM: u32 = 4;

const NOTE_NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

/// Scientific pitch name, C4 = MIDI 60.
pub fn pitch_name(pitch: u8) -> String {
    format!("{}{}", NOTE_NAMES[usize::from(pitch % 12)], i32::from(pitch) / 12 - 1)
}

/// Renders the melody. `#` marks an onset, `=` a held note, `.` silence.
pub fn render(melody: &Melody) -> String {
    let mut out = String::new();
    let (Some(low), Some(high)) =
        (melody.notes.iter().map(|n| n.pitch).min(), melody.notes.iter().map(|n| n.pitch).max())
    else {
        return "(no notes)\n".to_string();
    };
    // What sounds at each step: (pitch, is_onset).
    let mut cells: Vec<Option<(u8, bool)>> = vec![None; melody.steps() as usize];
    for note in &melody.notes {
        for step in note.start.0..note.end().0.min(melody.steps()) {
            cells[step as usize] = Some((note.pitch, step == note.start.0));
        }
    }

    for first_bar in (0..melody.bars).step_by(BARS_PER_SYSTEM as usize) {
        let last_bar = (first_bar + BARS_PER_SYSTEM).min(melody.bars);
        let _ = write!(out, "{:>5} ", "bar");
        for bar in first_bar..last_bar {
            let _ = write!(out, "|{:<width$}", bar + 1, width = STEPS_PER_BAR as usize);
        }
        out.push_str("|\n");
        for pitch in (low..=high).rev() {
            let _ = write!(out, "{:>5} ", pitch_name(pitch));
            for bar in first_bar..last_bar {
                out.push('|');
                let start = Bar(bar).start().0;
                for step in start..start + STEPS_PER_BAR {
                    out.push(match cells[step as usize] {
                        Some((p, true)) if p == pitch => '#',
                        Some((p, false)) if p == pitch => '=',
                        _ => '.',
                    });
                }
            }
            out.push_str("|\n");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::melody::Note;
    use crate::midi::Meter;
    use crate::time::Step;

    #[test]
    fn middle_c_is_c4() {
        assert_eq!(pitch_name(60), "C4");
        assert_eq!(pitch_name(21), "A0");
    }

    #[test]
    fn the_roll_numbers_bars_and_marks_onsets_and_holds() {
        let melody = Melody {
            notes: vec![
                Note { pitch: 62, start: Step(0), len: Step(3) },
                Note { pitch: 60, start: Step(17), len: Step(1) },
            ],
            bars: 2,
            bpm: 120.0,
            meter: Meter::FOUR_FOUR,
            key: None,
        };
        let roll = render(&melody);
        let lines: Vec<&str> = roll.lines().collect();
        assert!(lines[0].contains("|1 ") && lines[0].contains("|2 "));
        assert!(lines[1].starts_with("   D4 |#==............."));
        assert!(lines[3].starts_with("   C4 |................|.#"));
    }
}
