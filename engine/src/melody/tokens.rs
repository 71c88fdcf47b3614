//! MusicVAE's melody vocabulary (Roberts et al., 2018, §5): one token per sixteenth step, of 90
//! kinds: *hold* (no event: the current note or rest goes on), *rest* (note-off), and a note-on
//! for each of the 88 piano keys, MIDI 21..=108.

use super::Note;
use crate::time::Step;

/// Number of distinct tokens.
pub const VOCAB_SIZE: usize = 90;
/// Lowest pitch with a note-on token (A0).
pub const MIN_PITCH: u8 = 21;
/// Highest pitch with a note-on token (C8).
pub const MAX_PITCH: u8 = 108;

/// One step of a melody.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Token {
    /// No event: whatever sounds (a note or silence) goes on.
    Hold,
    /// Note-off: silence from here.
    Rest,
    /// A new note of this pitch starts (ending any sounding note).
    On(u8),
}

impl Token {
    /// The id used in tensors: Hold = 0, Rest = 1, On(p) = 2 + p − 21.
    pub fn id(self) -> u8 {
        match self {
            Token::Hold => 0,
            Token::Rest => 1,
            Token::On(pitch) => 2 + (pitch.clamp(MIN_PITCH, MAX_PITCH) - MIN_PITCH),
        }
    }

    /// The token with this id. Ids past the vocabulary read as Hold, so a corrupt id never panics.
    pub fn from_id(id: u8) -> Token {
        match id {
            0 => Token::Hold,
            1 => Token::Rest,
            id if usize::from(id) < VOCAB_SIZE => Token::On(id - 2 + MIN_PITCH),
            _ => Token::Hold,
        }
    }
}

/// Encodes notes as `steps` token ids. Notes must be monophonic and sorted; anything past
/// `steps` is cut off.
pub fn encode(notes: &[Note], steps: u32) -> Vec<u8> {
    let mut ids = vec![Token::Hold.id(); steps as usize];
    for note in notes {
        let start = note.start.0 as usize;
        if start >= ids.len() {
            break;
        }
        ids[start] = Token::On(note.pitch).id();
        let end = note.end().0 as usize;
        // A rest marks the note's end; because notes come in order, a next note that starts
        // right there overwrites the mark with its onset.
        if end < ids.len() {
            ids[end] = Token::Rest.id();
        }
    }
    ids
}

/// Decodes token ids into notes. Leading holds are silence: a window cut from inside a note
/// starts silent, exactly as the models read it.
pub fn decode(ids: &[u8]) -> Vec<Note> {
    let mut notes = Vec::new();
    let mut sounding: Option<(u8, u32)> = None;
    let mut close = |sounding: &mut Option<(u8, u32)>, at: u32| {
        if let Some((pitch, start)) = sounding.take() {
            notes.push(Note { pitch, start: Step(start), len: Step(at - start) });
        }
    };
    for (step, &id) in ids.iter().enumerate() {
        let step = step as u32;
        match Token::from_id(id) {
            Token::Hold => {}
            Token::Rest => close(&mut sounding, step),
            Token::On(pitch) => {
                close(&mut sounding, step);
                sounding = Some((pitch, step));
            }
        }
    }
    close(&mut sounding, ids.len() as u32);
    notes
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Random monophonic melodies on the grid: gaps and lengths in steps, pitches on the keyboard.
    pub(crate) fn monophonic_notes() -> impl Strategy<Value = Vec<Note>> {
        prop::collection::vec((0u32..20, 1u32..20, MIN_PITCH..=MAX_PITCH), 0..40).prop_map(|specs| {
            let mut at = 0;
            specs
                .into_iter()
                .map(|(gap, len, pitch)| {
                    let note = Note { pitch, start: Step(at + gap), len: Step(len) };
                    at = note.end().0;
                    note
                })
                .collect()
        })
    }

    #[test]
    fn every_id_names_a_distinct_token() {
        for id in 0..VOCAB_SIZE as u8 {
            assert_eq!(Token::from_id(id).id(), id);
        }
        assert_eq!(Token::On(21).id(), 2);
        assert_eq!(Token::On(108).id(), 89);
    }

    #[test]
    fn a_note_followed_by_silence_ends_with_a_rest_token() {
        let notes = [Note { pitch: 60, start: Step(1), len: Step(2) }];
        assert_eq!(encode(&notes, 5), vec![0, Token::On(60).id(), 0, 1, 0]);
    }

    #[test]
    fn leading_holds_decode_as_silence() {
        assert_eq!(decode(&[0, 0, Token::On(64).id(), 0]), vec![Note { pitch: 64, start: Step(2), len: Step(2) }]);
    }

    proptest! {
        #[test]
        fn notes_survive_a_round_trip_through_tokens(notes in monophonic_notes(), extra in 0u32..40) {
            let steps = notes.last().map_or(0, |n| n.end().0) + extra;
            let ids = encode(&notes, steps);
            prop_assert_eq!(ids.len(), steps as usize);
            prop_assert_eq!(decode(&ids), notes);
        }

        #[test]
        fn any_id_sequence_decodes_without_panicking(ids in prop::collection::vec(any::<u8>(), 0..100)) {
            let notes = decode(&ids);
            prop_assert!(notes.iter().all(|n| n.len.0 >= 1));
        }
    }
}
