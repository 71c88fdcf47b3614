//! Standard MIDI files in and out: [`read`] turns any type 0 or type 1 file at any PPQ into
//! timed notes and meta events, [`write`](mod@write) writes a melody back as a type 1 file at 480 PPQ.

pub mod read;
pub mod write;

use std::fmt;
use std::path::PathBuf;

pub use read::{parse, read_file, MelodySelector, MidiFile, Part, TickNote};
pub use write::{melody_to_smf_bytes, melody_to_smf_bytes_at, notes_to_smf_bytes, write_melody, Song, WRITE_PPQ};

/// A time signature, as a MIDI file states it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Meter {
    pub numerator: u8,
    pub denominator: u8,
}

impl Meter {
    /// MIDI's default when a file states no meter.
    pub const FOUR_FOUR: Meter = Meter { numerator: 4, denominator: 4 };

    /// Whether this meter regroups into 16-step (4-beat) bars without splitting a bar: 4/4, 2/2,
    /// 2/4 (two bars make one grid bar) and 4/2 (one bar makes two grid bars).
    pub fn is_four_four_type(self) -> bool {
        matches!((self.numerator, self.denominator), (4, 4) | (2, 2) | (2, 4) | (4, 2))
    }
}

impl fmt::Display for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

/// A key signature: sharps (positive) or flats (negative), and the mode.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeySignature {
    pub sharps: i8,
    pub minor: bool,
}

impl fmt::Display for KeySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Circle of fifths from 7 flats to 7 sharps; minor keys sit three fifths further on.
        const MAJOR: [&str; 15] = ["Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#"];
        const MINOR: [&str; 15] = ["Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#"];
        let index = (i32::from(self.sharps) + 7).clamp(0, 14) as usize;
        if self.minor {
            write!(f, "{} minor", MINOR[index])
        } else {
            write!(f, "{} major", MAJOR[index])
        }
    }
}

/// What can go wrong reading a MIDI file or turning it into a melody.
#[derive(Debug, thiserror::Error)]
pub enum MidiError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a valid standard MIDI file: {0}")]
    Malformed(String),
    #[error("SMPTE (timecode) timing is not supported; Rebar reads files timed in ticks per quarter note")]
    SmpteTiming,
    #[error("the file has no notes")]
    NoNotes,
    #[error("no track matches {wanted:?}; the file has {available}")]
    TrackNotFound { wanted: String, available: String },
    #[error("meter {meter} (from bar {bar}) is not supported: Rebar reads 4/4-type meters (4/4, 2/2, 2/4, 4/2)")]
    UnsupportedMeter { meter: Meter, bar: u32 },
    #[error("the change to meter {meter} at step {step} does not fall on a 16-step bar line")]
    MeterChangeOffBar { meter: Meter, step: f64 },
    #[error("cannot write MIDI: {0}")]
    Write(String),
    #[error("cannot write {}: {source}", path.display())]
    WriteIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is {kind}, not a regular file; Rebar reads MIDI files only from regular files", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{} is {bytes} bytes; Rebar reads MIDI files of up to {max} bytes", path.display())]
    TooLarge { path: PathBuf, bytes: u64, max: u64 },
    #[error("the file holds more than {max} notes, more than Rebar reads from one file")]
    TooManyNotes { max: usize },
    #[error("the melody runs to bar {bar}; Rebar reads melodies of up to {max} bars of 16 steps")]
    TooLong { bar: u64, max: u32 },
}

/// Attaches the file name to any error from reading that file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: MidiError,
}
