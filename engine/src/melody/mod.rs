//! A monophonic melody on the sixteenth-note grid: the domain type every model works on.
//!
//! [`quantize`](mod@quantize) makes one from a MIDI part, [`tokens`] turns it into MusicVAE's 90-token
//! sequence and back, and [`roll`] draws it as a text piano roll.

pub mod quantize;
pub mod roll;
pub mod scale;
pub mod tokens;

use crate::midi::{KeySignature, Meter};
use crate::time::{Step, STEPS_PER_BAR};

pub use quantize::{quantize, quantize_notes, QuantizeReport, TimedNote};

/// The longest melody read, in 16-step bars: over two hours at 120 BPM, far beyond any tune,
/// and small enough that a melody's grid, windows and piano roll stay within a few hundred MB.
/// A file's notes are checked against it before anything the size of the melody is allocated,
/// so a tiny file whose notes lie 2^28 ticks apart is an error, not gigabytes of silence.
pub const MAX_BARS: u32 = 4096;

/// One note on the grid.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Note {
    /// MIDI pitch, 21..=108 once quantized.
    pub pitch: u8,
    /// Onset.
    pub start: Step,
    /// Duration, at least one step.
    pub len: Step,
}

impl Note {
    /// The step at which the note stops sounding.
    pub fn end(&self) -> Step {
        self.start + self.len
    }
}

/// A monophonic melody: notes sorted by onset that never overlap, over a whole number of bars.
#[derive(Clone, Debug, PartialEq)]
pub struct Melody {
    pub notes: Vec<Note>,
    /// Length in 16-step bars; every note ends inside it.
    pub bars: u32,
    /// Tempo in quarter-note beats per minute.
    pub bpm: f64,
    /// The written meter (it may be 2/4 or 4/2 while the grid still uses 16-step bars).
    pub meter: Meter,
    pub key: Option<KeySignature>,
}

impl Melody {
    /// Length in grid steps.
    pub fn steps(&self) -> u32 {
        self.bars * STEPS_PER_BAR
    }

    /// The smallest whole number of bars that holds every note (at least one).
    pub fn bars_to_hold(notes: &[Note]) -> u32 {
        let end = notes.iter().map(|n| n.end().0).max().unwrap_or(0);
        end.div_ceil(STEPS_PER_BAR).max(1)
    }
}
