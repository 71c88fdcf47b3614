//! Key and scale constraints for generated notes: a pitch-class set such as "D dorian", parsed
//! from text. Applied at decode time (the decoder may only choose allowed note-ons), so no
//! out-of-scale pitch is ever emitted.

use std::fmt;
use std::str::FromStr;

/// Scale kinds and their intervals above the root, in semitones.
const MODES: [(&str, &[u8]); 11] = [
    ("major", &[0, 2, 4, 5, 7, 9, 11]),
    ("ionian", &[0, 2, 4, 5, 7, 9, 11]),
    ("minor", &[0, 2, 3, 5, 7, 8, 10]),
    ("aeolian", &[0, 2, 3, 5, 7, 8, 10]),
    ("dorian", &[0, 2, 3, 5, 7, 9, 10]),
    ("phrygian", &[0, 1, 3, 5, 7, 8, 10]),
    ("lydian", &[0, 2, 4, 6, 7, 9, 11]),
    ("mixolydian", &[0, 2, 4, 5, 7, 9, 10]),
    ("locrian", &[0, 1, 3, 5, 6, 8, 10]),
    ("harmonic-minor", &[0, 2, 3, 5, 7, 8, 11]),
    ("pentatonic", &[0, 2, 4, 7, 9]),
];

const ROOTS: [(&str, u8); 17] = [
    ("C", 0),
    ("C#", 1),
    ("Db", 1),
    ("D", 2),
    ("D#", 3),
    ("Eb", 3),
    ("E", 4),
    ("F", 5),
    ("F#", 6),
    ("Gb", 6),
    ("G", 7),
    ("G#", 8),
    ("Ab", 8),
    ("A", 9),
    ("A#", 10),
    ("Bb", 10),
    ("B", 11),
];

/// A set of allowed pitch classes with a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    pub root: u8,
    pub mode: String,
    /// `allowed[pc]` for pitch classes 0 (C) to 11 (B).
    pub allowed: [bool; 12],
}

impl Scale {
    /// Whether a MIDI pitch is in the scale.
    pub fn contains(&self, pitch: u8) -> bool {
        self.allowed[usize::from(pitch % 12)]
    }
}

/// Why a scale name did not parse.
#[derive(Debug, thiserror::Error)]
#[error("unknown key {0:?}: write a root (C, F#, Bb, …) and a mode ({modes})", modes = MODES.map(|m| m.0).join(", "))]
pub struct ScaleError(String);

impl FromStr for Scale {
    type Err = ScaleError;
    fn from_str(text: &str) -> Result<Self, ScaleError> {
        let mut words = text.split_whitespace();
        let (Some(root), mode) = (words.next(), words.collect::<Vec<_>>().join("-").to_lowercase()) else {
            return Err(ScaleError(text.into()));
        };
        let mode = if mode.is_empty() { "major".to_string() } else { mode.replace("natural-minor", "minor") };
        let root =
            ROOTS.iter().find(|(name, _)| name.eq_ignore_ascii_case(root)).ok_or_else(|| ScaleError(text.into()))?.1;
        let intervals = MODES.iter().find(|(name, _)| *name == mode).ok_or_else(|| ScaleError(text.into()))?.1;
        let mut allowed = [false; 12];
        for interval in intervals {
            allowed[usize::from((root + interval) % 12)] = true;
        }
        Ok(Scale { root, mode, allowed })
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = ROOTS.iter().find(|(_, pc)| *pc == self.root).map_or("?", |r| r.0);
        write!(f, "{root} {}", self.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d_dorian_has_the_white_keys() {
        let scale: Scale = "D dorian".parse().unwrap();
        let white = [0u8, 2, 4, 5, 7, 9, 11];
        for pc in 0..12u8 {
            assert_eq!(scale.contains(60 + pc), white.contains(&pc), "{pc}");
        }
    }

    #[test]
    fn names_parse_with_flats_sharps_and_a_default_major() {
        assert!("Bb minor".parse::<Scale>().unwrap().contains(61)); // Db
        assert!("F#".parse::<Scale>().unwrap().contains(70)); // A#
        assert!("E harmonic minor".parse::<Scale>().unwrap().contains(63)); // D#
        assert!("H major".parse::<Scale>().is_err());
        assert!("C bebop".parse::<Scale>().unwrap_err().to_string().contains("dorian"));
    }
}
