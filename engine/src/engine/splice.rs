//! Stage 6 of a pass, splice: the generated windows made exact where they repeat, turned into
//! notes, and put together with the input by the odd-bar rule. The model works in 2-bar
//! segments, so any segment with a selected bar is regenerated whole; afterwards every note that
//! starts in a selected bar comes from the generated clip, every note that starts in an
//! unselected bar comes from the input, and a note that would sound past the end of its side is
//! cut at the bar line. Unselected bars are therefore note-for-note the input's.

use crate::melody::tokens::Token;
use crate::melody::{Melody, Note};
use crate::time::{Step, STEPS_PER_BAR};
use crate::vae::segments::melody_from_segments;
use crate::windows::Window;

use super::request::Request;
use super::selection::BarSelection;

/// One variation of `clip` as the musician hears it: `windows` (every segment's decoding) with
/// its repeats made exact against `kept` (the clip's own segments) and `roots` (the segment each
/// one ends up equal to in the variation's repeat plan), spliced into `clip` where `selection`
/// selects.
pub fn splice_variation(
    clip: &Melody,
    kept: &[Window],
    mut windows: Vec<Window>,
    (roots, generate): (&[usize], &[bool]),
    request: &Request,
    selection: &BarSelection,
) -> Melody {
    make_repeats_exact(&mut windows, kept, roots, generate, request);
    splice(clip, &melody_from_segments(&windows, clip), selection)
}

/// Makes every generated segment that repeats another an exact copy of it: a repeat is only
/// heard as one when exact. `windows` holds the decoding of every segment, kept ones included,
/// and `roots` the segment each one ends up equal to in the variation's repeat plan (itself
/// where it is new, see [`crate::sample::RepeatPlan::root`]).
///
/// - A repeat that the plan draws from a kept segment takes that segment's own
///   notes (`kept`, the input's segments) instead of the VAE's reconstruction of them, which can
///   miss a note.
/// - One drawn from a generated segment, or from a kept one with a pitch the constraints forbid,
///   takes the decoding of the first generated segment with that source. Segments that repeat
///   one another share a latent, but the melody decoder judges a window's first note against
///   the note before it (see [`crate::vae::intervals`]), so they can decode apart.
/// - A segment the plan leaves new but whose decoding is a kept segment's decoding (context
///   guidance copies kept bars by itself) is that kept segment reproduced, and takes its notes
///   too.
fn make_repeats_exact(windows: &mut [Window], kept: &[Window], roots: &[usize], generate: &[bool], request: &Request) {
    let decoded = windows.to_vec();
    let kept_notes_of =
        |root: usize| (!generate[root] && allows_every_pitch(&kept[root], request)).then_some(kept[root]);
    for (i, window) in windows.iter_mut().enumerate().filter(|(i, _)| generate[*i]) {
        let root = roots[i];
        if root == i {
            let reproduced = (0..decoded.len()).find(|&k| !generate[k] && decoded[k] == decoded[i]);
            if let Some(notes) = reproduced.and_then(kept_notes_of) {
                *window = notes;
            }
        } else if let Some(notes) = kept_notes_of(root) {
            *window = notes;
        } else if let Some(first) = (0..decoded.len()).find(|&j| generate[j] && roots[j] == root) {
            *window = decoded[first];
        }
    }
}

/// Whether every note of `window` is one `request` allows in generated bars.
fn allows_every_pitch(window: &Window, request: &Request) -> bool {
    window.iter().all(|&id| match Token::from_id(id) {
        Token::On(pitch) => request.allows(pitch),
        Token::Hold | Token::Rest => true,
    })
}

/// The odd-bar rule: notes starting in selected bars from `generated`, the rest from `input`,
/// each cut where its side ends.
pub fn splice(input: &Melody, generated: &Melody, selection: &BarSelection) -> Melody {
    let selected_at = |step: u32| selection.is_selected(step / STEPS_PER_BAR);
    let end = input.steps();
    let mut notes: Vec<Note> = Vec::new();
    let mut take = |source: &[Note], from_selection: bool| {
        for note in source {
            if note.start.0 >= end || selected_at(note.start.0) != from_selection {
                continue;
            }
            // Sound until the note ends, the clip ends, or the bar ownership flips.
            let mut stop = note.end().0.min(end);
            let first_foreign_bar = (note.start.0 / STEPS_PER_BAR + 1..)
                .take_while(|bar| bar * STEPS_PER_BAR < stop)
                .find(|&bar| selection.is_selected(bar) != from_selection);
            if let Some(bar) = first_foreign_bar {
                stop = bar * STEPS_PER_BAR;
            }
            notes.push(Note { pitch: note.pitch, start: note.start, len: Step(stop - note.start.0) });
        }
    };
    take(&input.notes, false);
    take(&generated.notes, true);
    notes.sort_by_key(|n| n.start);
    Melody { notes, ..input.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::midi::Meter;
    use crate::sample::RepeatPlan;

    fn note(pitch: u8, start: u32, len: u32) -> Note {
        Note { pitch, start: Step(start), len: Step(len) }
    }

    fn melody(notes: Vec<Note>, bars: u32) -> Melody {
        Melody { notes, bars, bpm: 120.0, meter: Meter::FOUR_FOUR, key: None }
    }

    #[test]
    fn repeats_and_reproductions_copy_their_source_exactly_unless_a_constraint_forbids_it() {
        let window = |pitch: u8| -> Window { std::array::from_fn(|i| if i == 0 { Token::On(pitch).id() } else { 0 }) };
        let kept = [window(60), window(61), window(62), window(63), window(64)];
        let request = Request::new(BarSelection::range(2, 9, 10));
        let decoded = [window(70), window(71), window(72), window(73), window(74)];
        let generate = [false, true, false, true, true];
        // Segment 1 repeats the kept 0, segment 3 the kept 2, and segment 4 the generated 1,
        // which itself repeats the kept 0.
        let roots_of = |plan: &RepeatPlan| (0..5).map(|i| plan.root(0, i)).collect::<Vec<_>>();
        let roots = roots_of(&RepeatPlan { repeats: vec![vec![0, 0, 2, 2, 1]] });
        let mut windows = decoded;
        make_repeats_exact(&mut windows, &kept, &roots, &generate, &request);
        assert_eq!(windows, [window(70), window(60), window(72), window(62), window(60)]);
        // In C major, 62 (D) is allowed and 61 would not be; 60 (C) is.
        let c_major = Request { key: Some("C major".parse().unwrap()), ..request.clone() };
        let kept = [window(61), window(61), window(62), window(63), window(64)];
        let mut windows = decoded;
        make_repeats_exact(&mut windows, &kept, &roots, &generate, &c_major);
        assert_eq!(windows, [window(70), window(71), window(72), window(62), window(71)]);
        // A repeat of a generated segment takes that segment's decoding, which the melody
        // decoder may have made differ from the repeat's own.
        let roots = roots_of(&RepeatPlan { repeats: vec![vec![0, 1, 2, 3, 1]] });
        let mut windows = decoded;
        make_repeats_exact(&mut windows, &kept, &roots, &generate, &request);
        assert_eq!(windows, [window(70), window(71), window(72), window(73), window(71)]);
        // A segment the plan leaves new but that decodes as kept segment 0 decodes (its VAE
        // reconstruction, 70) is that segment reproduced: it takes its notes.
        let reproducing = [window(70), window(71), window(72), window(73), window(70)];
        let mut windows = reproducing;
        make_repeats_exact(&mut windows, &kept, &roots_of(&RepeatPlan::none(1, 5)), &generate, &request);
        assert_eq!(windows, [window(70), window(71), window(72), window(73), window(61)]);
    }

    #[test]
    fn splicing_keeps_unselected_bars_and_cuts_notes_at_the_selection_edges() {
        // Input: a note held from bar 0 into bar 1, and one in bar 2.
        let input = melody(vec![note(60, 8, 16), note(64, 32, 4)], 3);
        // Generated: a note in bar 1 that runs into bar 2, and one in bar 0 (must be ignored).
        let generated = melody(vec![note(70, 0, 4), note(72, 20, 20)], 3);
        let out = splice(&input, &generated, &BarSelection::range(1, 1, 3));
        assert_eq!(out.notes, vec![note(60, 8, 8), note(72, 20, 12), note(64, 32, 4)]);
    }
}
