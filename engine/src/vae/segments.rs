//! A melody as a run of 2-bar segments, one latent each (Mittal et al., 2021, §3.1: a 32-bar
//! melody is 16 MusicVAE latents). A melody with an odd number of bars is padded with a silent
//! bar. Going back, the segments' tokens are joined end to end and decoded as one sequence, so a
//! note held over a segment boundary continues.

use crate::melody::{tokens, Melody, Note};
use crate::time::BARS_PER_SEGMENT;
use crate::windows::{Window, WINDOW_STEPS};

/// Number of segments needed to hold `bars` bars.
pub fn segment_count(bars: u32) -> usize {
    bars.div_ceil(BARS_PER_SEGMENT) as usize
}

/// The melody's tokens cut into 2-bar windows.
pub fn to_segments(melody: &Melody) -> Vec<Window> {
    let count = segment_count(melody.bars);
    let ids = tokens::encode(&melody.notes, (count * WINDOW_STEPS) as u32);
    ids.chunks_exact(WINDOW_STEPS).map(|chunk| chunk.try_into().expect("chunks are window-sized")).collect()
}

/// Notes of segments joined end to end.
pub fn notes_from_segments(segments: &[Window]) -> Vec<Note> {
    let ids: Vec<u8> = segments.iter().flatten().copied().collect();
    tokens::decode(&ids)
}

/// A melody from segments, with the tempo, meter and key of `like`.
pub fn melody_from_segments(segments: &[Window], like: &Melody) -> Melody {
    Melody {
        notes: notes_from_segments(segments),
        bars: segments.len() as u32 * BARS_PER_SEGMENT,
        bpm: like.bpm,
        meter: like.meter,
        key: like.key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::midi::Meter;
    use crate::time::Step;

    #[test]
    fn an_odd_bar_melody_pads_to_whole_segments_and_comes_back() {
        let notes =
            vec![Note { pitch: 60, start: Step(0), len: Step(40) }, Note { pitch: 62, start: Step(44), len: Step(4) }];
        let melody = Melody { notes: notes.clone(), bars: 3, bpm: 100.0, meter: Meter::FOUR_FOUR, key: None };
        let segments = to_segments(&melody);
        assert_eq!(segments.len(), 2);
        let back = melody_from_segments(&segments, &melody);
        assert_eq!((back.notes, back.bars), (notes, 4));
    }
}
