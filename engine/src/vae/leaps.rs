//! Melody-level decoding: the most likely token sequence of a melody's consecutive windows under
//! the decoder's per-step log-probabilities plus a penalty on leaps wider than an octave, found
//! exactly by Viterbi.
//!
//! The decoder (MusicVAE's melody vocabulary, scored by a non-autoregressive head) scores every
//! step on its own, so per-step argmax can take one step's note from the octave above and the
//! next from the octave below when a latent sits between the two. Real melodies almost never
//! leap more than an octave between consecutive notes (0.24% of intervals in `valid/`); per-step
//! argmax of generated sequences did ten times as often (BENCHMARKS.md, "Octave leaps"). The
//! penalty, `weight` nats per semitone beyond [`FREE_LEAP`], is a prior on intervals: it keeps
//! what the decoder is sure of and settles only the steps where it hesitates. Weight 0 is
//! per-step argmax exactly.
//!
//! The Viterbi state is the pitch of the last note-on (or none yet): hold and rest keep it, a
//! note-on moves it. It carries over window boundaries, so the first note of a window is judged
//! against the last note of the window before.

use crate::melody::tokens::VOCAB_SIZE;

/// Leaps up to this many semitones cost nothing: an octave leap is a common figure in fiddle
/// tunes.
pub const FREE_LEAP: usize = 12;

/// Token ids 0 and 1 are hold and rest; note-on ids follow, one per semitone.
const FIRST_NOTE_ON: usize = 2;
const PITCHES: usize = VOCAB_SIZE - FIRST_NOTE_ON;
/// Viterbi states: 0 is "no note yet", 1 + k "the last note-on was pitch index k".
const STATES: usize = PITCHES + 1;

/// The best earlier state for a note-on of every pitch, with the leap cost paid: `best[k]` is
/// (score, state).
fn best_predecessors(score: &[f32; STATES], weight: f32, best: &mut [(f32, usize); PITCHES]) {
    let pitch_score = |i: usize| score[1 + i];
    // Beyond the free range the cost is linear in the distance, so the best far predecessor below
    // k is a prefix maximum of score + weight·i, and above k a suffix maximum of score − weight·i.
    let mut below = [(f32::NEG_INFINITY, 0usize); PITCHES];
    let mut running = (f32::NEG_INFINITY, 0usize);
    for (i, slot) in below.iter_mut().enumerate() {
        let value = pitch_score(i) + weight * i as f32;
        if value > running.0 {
            running = (value, i);
        }
        *slot = running;
    }
    let mut above = [(f32::NEG_INFINITY, 0usize); PITCHES];
    running = (f32::NEG_INFINITY, 0usize);
    for i in (0..PITCHES).rev() {
        let value = pitch_score(i) - weight * i as f32;
        if value > running.0 {
            running = (value, i);
        }
        above[i] = running;
    }
    for (k, slot) in best.iter_mut().enumerate() {
        let mut choice = (score[0], 0usize);
        for i in k.saturating_sub(FREE_LEAP)..(k + FREE_LEAP + 1).min(PITCHES) {
            if pitch_score(i) > choice.0 {
                choice = (pitch_score(i), 1 + i);
            }
        }
        if k > FREE_LEAP {
            let (value, i) = below[k - FREE_LEAP - 1];
            let far = value - weight * (k - FREE_LEAP) as f32;
            if far > choice.0 {
                choice = (far, 1 + i);
            }
        }
        if k + FREE_LEAP + 1 < PITCHES {
            let (value, i) = above[k + FREE_LEAP + 1];
            let far = value + weight * (k + FREE_LEAP) as f32;
            if far > choice.0 {
                choice = (far, 1 + i);
            }
        }
        *slot = choice;
    }
}

/// Token ids of one melody. `log_probs` holds a row of [`VOCAB_SIZE`] log-probabilities per step
/// (the windows one after another); ids that `allowed` rejects are never chosen (hold and rest
/// always are allowed, so every step has a choice).
pub fn decode_melody(log_probs: &[f32], allowed: &[bool; VOCAB_SIZE], weight: f32) -> Vec<u8> {
    let steps = log_probs.len() / VOCAB_SIZE;
    let mut score = [f32::NEG_INFINITY; STATES];
    score[0] = 0.0;
    // Per step and state: the token chosen and the state before it.
    let mut back: Vec<[(u8, u8); STATES]> = Vec::with_capacity(steps);
    let mut best = [(0.0f32, 0usize); PITCHES];
    for row in log_probs.chunks_exact(VOCAB_SIZE) {
        let log_prob = |id: usize| if allowed[id] { row[id] } else { f32::NEG_INFINITY };
        // Hold or rest keep the state; whichever is likelier does, as the state is the same.
        let (keep_id, keep) = if log_prob(0) >= log_prob(1) { (0u8, log_prob(0)) } else { (1u8, log_prob(1)) };
        let mut next = [f32::NEG_INFINITY; STATES];
        let mut step_back = [(0u8, 0u8); STATES];
        for s in 0..STATES {
            next[s] = score[s] + keep;
            step_back[s] = (keep_id, s as u8);
        }
        best_predecessors(&score, weight, &mut best);
        for (k, &(before, from)) in best.iter().enumerate() {
            let id = FIRST_NOTE_ON + k;
            let candidate = before + log_prob(id);
            if candidate > next[1 + k] {
                next[1 + k] = candidate;
                step_back[1 + k] = (id as u8, from as u8);
            }
        }
        score = next;
        back.push(step_back);
    }
    let mut state = (0..STATES).max_by(|&a, &b| score[a].total_cmp(&score[b])).unwrap_or(0);
    let mut ids = vec![0u8; steps];
    for (step, step_back) in back.iter().enumerate().rev() {
        let (id, from) = step_back[state];
        ids[step] = id;
        state = usize::from(from);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [bool; VOCAB_SIZE] = [true; VOCAB_SIZE];

    fn note_on(pitch_index: usize) -> usize {
        FIRST_NOTE_ON + pitch_index
    }

    /// Log-probability rows where each step has one clear token.
    fn rows(ids: &[usize]) -> Vec<f32> {
        ids.iter().flat_map(|&id| (0..VOCAB_SIZE).map(move |j| if j == id { -0.1 } else { -8.0 })).collect()
    }

    fn argmax_ids(log_probs: &[f32], allowed: &[bool; VOCAB_SIZE]) -> Vec<u8> {
        log_probs
            .chunks_exact(VOCAB_SIZE)
            .map(|row| {
                (0..VOCAB_SIZE)
                    .filter(|&j| allowed[j])
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                    .unwrap() as u8
            })
            .collect()
    }

    /// The same search over every (state, token) pair, with no shortcuts: the reference the
    /// prefix/suffix maxima must agree with.
    fn brute_force_score(log_probs: &[f32], weight: f32) -> f32 {
        let mut score = vec![f32::NEG_INFINITY; STATES];
        score[0] = 0.0;
        for row in log_probs.chunks_exact(VOCAB_SIZE) {
            let mut next = vec![f32::NEG_INFINITY; STATES];
            for (s, &prev) in score.iter().enumerate() {
                next[s] = next[s].max(prev + row[0].max(row[1]));
                for k in 0..PITCHES {
                    let leap = if s == 0 { 0 } else { (s - 1).abs_diff(k) };
                    let cost = weight * leap.saturating_sub(FREE_LEAP) as f32;
                    next[1 + k] = next[1 + k].max(prev - cost + row[note_on(k)]);
                }
            }
            score = next;
        }
        score.into_iter().fold(f32::NEG_INFINITY, f32::max)
    }

    fn path_score(log_probs: &[f32], ids: &[u8], weight: f32) -> f32 {
        let mut last: Option<usize> = None;
        let mut total = 0.0;
        for (row, &id) in log_probs.chunks_exact(VOCAB_SIZE).zip(ids) {
            total += row[usize::from(id)];
            if usize::from(id) >= FIRST_NOTE_ON {
                let k = usize::from(id) - FIRST_NOTE_ON;
                if let Some(prev) = last {
                    total -= weight * prev.abs_diff(k).saturating_sub(FREE_LEAP) as f32;
                }
                last = Some(k);
            }
        }
        total
    }

    proptest! {
        #[test]
        fn weight_zero_is_per_step_argmax(values in prop::collection::vec(-9.0f32..0.0, VOCAB_SIZE * 40)) {
            prop_assert_eq!(decode_melody(&values, &ALL, 0.0), argmax_ids(&values, &ALL));
        }

        #[test]
        fn the_path_is_the_best_one(values in prop::collection::vec(-9.0f32..0.0, VOCAB_SIZE * 12), weight in 0.0f32..3.0) {
            let ids = decode_melody(&values, &ALL, weight);
            let best = brute_force_score(&values, weight);
            prop_assert!((path_score(&values, &ids, weight) - best).abs() < 1e-3, "{} vs {best}", path_score(&values, &ids, weight));
        }
    }

    #[test]
    fn a_hesitant_step_takes_the_octave_near_the_tune() {
        // C4 D4 ? E4, where the third step is torn between F5 (slightly likelier) and F4.
        let (c4, d4, e4, f4, f5) = (39, 41, 43, 44, 56);
        let mut log_probs = rows(&[note_on(c4), note_on(d4), note_on(f5), note_on(e4)]);
        log_probs[2 * VOCAB_SIZE + note_on(f4)] = -0.2;
        assert_eq!(decode_melody(&log_probs, &ALL, 0.0)[2] as usize, note_on(f5));
        assert_eq!(decode_melody(&log_probs, &ALL, 1.0)[2] as usize, note_on(f4));
    }

    #[test]
    fn a_sure_leap_stays() {
        // The decoder is sure of a two-octave leap (7.9 nats over any other token): half a nat
        // per semitone past the octave (6 nats) does not outweigh that; 1 per semitone (12 nats)
        // does, and one of the two notes gives way.
        let log_probs = rows(&[note_on(30), note_on(54)]);
        assert_eq!(decode_melody(&log_probs, &ALL, 0.5), [note_on(30) as u8, note_on(54) as u8]);
        let notes: Vec<u8> = decode_melody(&log_probs, &ALL, 1.0).into_iter().filter(|&id| id >= 2).collect();
        assert!(notes.windows(2).all(|pair| usize::from(pair[0].abs_diff(pair[1])) <= FREE_LEAP), "{notes:?}");
    }

    #[test]
    fn a_note_is_judged_against_the_last_note_through_holds() {
        // The rows run on across window boundaries, so this is also how a window's first note
        // meets the last note of the window before.
        let mut log_probs = rows(&[note_on(40), 0, note_on(64)]);
        log_probs[2 * VOCAB_SIZE + note_on(52)] = -0.2;
        assert_eq!(decode_melody(&log_probs, &ALL, 1.0)[2] as usize, note_on(52));
    }

    #[test]
    fn rejected_tokens_are_never_chosen() {
        let log_probs = rows(&[note_on(40), note_on(41), note_on(42)]);
        let mut allowed = ALL;
        allowed[note_on(41)] = false;
        let ids = decode_melody(&log_probs, &allowed, 1.0);
        assert!(ids.iter().all(|&id| allowed[usize::from(id)]), "{ids:?}");
    }
}
