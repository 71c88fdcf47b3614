//! The 2-bar training windows of MusicVAE's appendix A: every 32-step window at a stride of one
//! bar that has at least one note and no more than one bar of consecutive silence.
//!
//! Everything here reads the window's tokens alone, exactly as the model will see them: a window
//! cut from inside a held note starts with holds, which decode as silence.

use crate::melody::tokens::{decode, Token};
use crate::time::{STEPS_PER_BAR, STEPS_PER_SEGMENT};

/// Steps in one window: one VAE latent.
pub const WINDOW_STEPS: usize = STEPS_PER_SEGMENT as usize;
/// Steps between the starts of consecutive windows: one bar.
pub const WINDOW_STRIDE: usize = STEPS_PER_BAR as usize;
/// The longest run of silent steps a training window may hold: one bar (MusicVAE appendix A).
pub const MAX_SILENT_STEPS: u32 = STEPS_PER_BAR;

/// One window of token ids.
pub type Window = [u8; WINDOW_STEPS];

/// Every full window of a tune's tokens, with the bar (0-based) it starts on.
pub fn windows(tokens: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let count = (tokens.len() / WINDOW_STRIDE).saturating_sub(WINDOW_STEPS / WINDOW_STRIDE - 1);
    (0..count).map(move |bar| (bar as u32, &tokens[bar * WINDOW_STRIDE..bar * WINDOW_STRIDE + WINDOW_STEPS]))
}

/// Whether any note starts in the window.
pub fn has_notes(window: &[u8]) -> bool {
    window.iter().any(|&id| matches!(Token::from_id(id), Token::On(_)))
}

/// The longest run of steps in which no note sounds.
pub fn longest_silence(window: &[u8]) -> u32 {
    let mut sounding = vec![false; window.len()];
    for note in decode(window) {
        sounding[note.start.0 as usize..note.end().0 as usize].fill(true);
    }
    let (mut longest, mut run) = (0, 0);
    for is_sounding in sounding {
        run = if is_sounding { 0 } else { run + 1 };
        longest = longest.max(run);
    }
    longest
}

/// Whether MusicVAE would train on this window.
pub fn is_training_window(window: &[u8]) -> bool {
    has_notes(window) && longest_silence(window) <= MAX_SILENT_STEPS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::melody::tokens::encode;
    use crate::melody::Note;
    use crate::time::Step;

    #[test]
    fn a_five_bar_tune_has_four_windows_one_bar_apart() {
        let tokens: Vec<u8> = (0..80).map(|i| (i % 90) as u8).collect();
        let starts: Vec<(u32, u8)> = windows(&tokens).map(|(bar, w)| (bar, w[0])).collect();
        assert_eq!(starts, vec![(0, 0), (1, 16), (2, 32), (3, 48)]);
        assert_eq!(windows(&tokens[..16]).count(), 0);
    }

    #[test]
    fn exactly_one_bar_of_silence_is_allowed_but_not_more() {
        let note = |start, len| Note { pitch: 60, start: Step(start), len: Step(len) };
        // Silent steps 1..17 (16 steps), then a note to the end.
        let one_bar = encode(&[note(0, 1), note(17, 15)], 32);
        assert_eq!(longest_silence(&one_bar), 16);
        assert!(is_training_window(&one_bar));
        let too_long = encode(&[note(0, 1), note(18, 14)], 32);
        assert!(!is_training_window(&too_long));
        assert!(!is_training_window(&[0; 32]));
    }
}
