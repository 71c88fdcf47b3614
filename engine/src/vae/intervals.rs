//! Melody-level decoding with an interval prior: the decoder settles each step's rhythm (note-on,
//! hold or rest, as per-step argmax does), and the pitches of a melody's note-ons are chosen
//! jointly, by Viterbi, maximising the decoder's log-probabilities plus `weight` times the log
//! probability of each interval between consecutive notes under the training set's interval
//! histogram (a product of experts, as in language-model fusion).
//!
//! Why: the decoder (MusicVAE's melody vocabulary, scored by a non-autoregressive head) scores
//! every step on its own, so per-step argmax can take one note from the octave above and the
//! next from the octave below where a latent sits between the two, and the generated melodies
//! leap more than real ones. Weight 0 is per-step argmax exactly; the rhythm never changes.
//!
//! The search carries over window boundaries, so the first note of a window is judged against
//! the last note of the window before.

use crate::melody::tokens::{Token, VOCAB_SIZE};
use crate::windows::Window;

/// Intervals counted one by one; wider ones share the last bucket.
pub const WIDEST_COUNTED: usize = 24;

/// Token ids 0 and 1 are hold and rest; note-on ids follow, one per semitone.
const FIRST_NOTE_ON: usize = 2;
const PITCHES: usize = VOCAB_SIZE - FIRST_NOTE_ON;

/// Log-probabilities of the absolute interval between consecutive notes, 0 to
/// [`WIDEST_COUNTED`] semitones, and one more for any wider interval (which is charged the
/// bucket's log-probability once per semitone past it too, so that two octaves cost more than
/// one and a half).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntervalPrior {
    pub log_probs: Vec<f32>,
}

impl IntervalPrior {
    /// The interval histogram of consecutive note-ons within `windows`, with add-one smoothing.
    pub fn fit(windows: &[Window]) -> Self {
        let mut counts = vec![1.0f64; WIDEST_COUNTED + 2];
        for window in windows {
            let pitches: Vec<u8> = window
                .iter()
                .filter_map(|&id| match Token::from_id(id) {
                    Token::On(pitch) => Some(pitch),
                    Token::Hold | Token::Rest => None,
                })
                .collect();
            for pair in pitches.windows(2) {
                counts[usize::from(pair[0].abs_diff(pair[1])).min(WIDEST_COUNTED + 1)] += 1.0;
            }
        }
        let total: f64 = counts.iter().sum();
        Self { log_probs: counts.iter().map(|c| (c / total).ln() as f32).collect() }
    }

    /// −log p of an interval of `semitones`.
    fn cost(&self, semitones: usize) -> f32 {
        let wide = self.log_probs.len() - 1;
        if semitones < wide {
            -self.log_probs[semitones]
        } else {
            -self.log_probs[wide] * (1 + semitones - wide) as f32
        }
    }

    /// Whether the table is usable: at least one bucket besides the wide one, all finite and at
    /// most 0.
    pub fn is_valid(&self) -> bool {
        self.log_probs.len() >= 2 && self.log_probs.iter().all(|p| p.is_finite() && *p <= 0.0)
    }
}

/// Token ids of one melody. `log_probs` holds a row of [`VOCAB_SIZE`] log-probabilities per step
/// (the windows one after another); ids that `allowed` rejects are never chosen (hold and rest
/// always are, so every step has a choice). Without a prior, or at weight 0, per-step argmax.
pub fn decode_melody(
    log_probs: &[f32],
    allowed: &[bool; VOCAB_SIZE],
    prior: Option<&IntervalPrior>,
    weight: f32,
) -> Vec<u8> {
    let rows: Vec<&[f32]> = log_probs.chunks_exact(VOCAB_SIZE).collect();
    // The rhythm: per-step argmax over the allowed tokens.
    let mut ids: Vec<u8> = rows
        .iter()
        .map(|row| {
            (0..VOCAB_SIZE).filter(|&id| allowed[id]).fold(0, |best, id| if row[id] > row[best] { id } else { best })
                as u8
        })
        .collect();
    let note_steps: Vec<usize> = (0..ids.len()).filter(|&t| usize::from(ids[t]) >= FIRST_NOTE_ON).collect();
    let Some(prior) = prior.filter(|_| weight > 0.0 && weight.is_finite() && note_steps.len() > 1) else {
        return ids;
    };
    let cost: Vec<f32> = (0..PITCHES).map(|semitones| weight * prior.cost(semitones)).collect();
    let emit = |t: usize, k: usize| {
        let id = FIRST_NOTE_ON + k;
        if allowed[id] {
            rows[t][id]
        } else {
            f32::NEG_INFINITY
        }
    };
    // score[k]: the best path's value with the latest note at pitch index k; back[n][k]: the
    // pitch index of note n − 1 on that path.
    let mut score: [f32; PITCHES] = std::array::from_fn(|k| emit(note_steps[0], k));
    let mut back: Vec<[u8; PITCHES]> = Vec::with_capacity(note_steps.len());
    back.push([0; PITCHES]);
    for &t in &note_steps[1..] {
        let mut next = [f32::NEG_INFINITY; PITCHES];
        let mut from = [0u8; PITCHES];
        for k in 0..PITCHES {
            let here = emit(t, k);
            if here == f32::NEG_INFINITY {
                continue;
            }
            let (mut best, mut best_q) = (f32::NEG_INFINITY, 0usize);
            for (q, &before) in score.iter().enumerate() {
                let value = before - cost[q.abs_diff(k)];
                if value > best {
                    (best, best_q) = (value, q);
                }
            }
            next[k] = best + here;
            from[k] = best_q as u8;
        }
        score = next;
        back.push(from);
    }
    let mut k = (0..PITCHES).fold(0, |best, k| if score[k] > score[best] { k } else { best });
    if score[k] == f32::NEG_INFINITY {
        // Only a weight so large that the interval costs overflow gets here: no path has a
        // finite value, so none can be trusted to keep to `allowed`; the rhythm's own argmax does.
        return ids;
    }
    for (n, &t) in note_steps.iter().enumerate().rev() {
        ids[t] = (FIRST_NOTE_ON + k) as u8;
        k = usize::from(back[n][k]);
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

    /// A prior that likes steps of 0–2 semitones, dislikes 3–12 and hates wider.
    fn stepwise() -> IntervalPrior {
        let mut log_probs = vec![-1.0; 3];
        log_probs.extend(vec![-4.0; 10]);
        log_probs.push(-9.0);
        IntervalPrior { log_probs }
    }

    /// Log-probability rows where each step has one clear token.
    fn rows(ids: &[usize]) -> Vec<f32> {
        ids.iter().flat_map(|&id| (0..VOCAB_SIZE).map(move |j| if j == id { -0.1 } else { -8.0 })).collect()
    }

    fn argmax_ids(log_probs: &[f32], allowed: &[bool; VOCAB_SIZE]) -> Vec<u8> {
        log_probs
            .chunks_exact(VOCAB_SIZE)
            .map(|row| {
                (0..VOCAB_SIZE).filter(|&j| allowed[j]).fold(0, |b, j| if row[j] > row[b] { j } else { b }) as u8
            })
            .collect()
    }

    fn is_note(id: u8) -> bool {
        usize::from(id) >= FIRST_NOTE_ON
    }

    /// The decoder's log-probabilities of a path plus the weighted interval log-probabilities.
    fn path_value(log_probs: &[f32], ids: &[u8], prior: &IntervalPrior, weight: f32) -> f32 {
        let notes: Vec<usize> = ids.iter().filter(|&&id| is_note(id)).map(|&id| usize::from(id)).collect();
        let emitted: f32 = log_probs.chunks_exact(VOCAB_SIZE).zip(ids).map(|(row, &id)| row[usize::from(id)]).sum();
        emitted - notes.windows(2).map(|pair| weight * prior.cost(pair[0].abs_diff(pair[1]))).sum::<f32>()
    }

    /// Every pitch assignment of the note steps, for small cases: the reference the Viterbi
    /// search must agree with.
    fn brute_force_best(
        log_probs: &[f32],
        rhythm: &[u8],
        prior: &IntervalPrior,
        weight: f32,
        pitches: &[usize],
    ) -> f32 {
        let note_steps: Vec<usize> = (0..rhythm.len()).filter(|&t| is_note(rhythm[t])).collect();
        let mut best = f32::NEG_INFINITY;
        let combinations = pitches.len().pow(note_steps.len() as u32);
        for mut code in 0..combinations {
            let mut ids = rhythm.to_vec();
            for &t in &note_steps {
                ids[t] = note_on(pitches[code % pitches.len()]) as u8;
                code /= pitches.len();
            }
            best = best.max(path_value(log_probs, &ids, prior, weight));
        }
        best
    }

    proptest! {
        #[test]
        fn weight_zero_is_per_step_argmax(values in prop::collection::vec(-9.0f32..0.0, VOCAB_SIZE * 40)) {
            prop_assert_eq!(decode_melody(&values, &ALL, Some(&stepwise()), 0.0), argmax_ids(&values, &ALL));
        }

        #[test]
        fn the_rhythm_is_per_step_argmax_and_the_pitches_the_best_path(
            steps in prop::collection::vec((0usize..6, -3.0f32..0.0), 5),
            weight in 0.0f32..3.0,
        ) {
            // Five steps over hold, rest and four pitches (indices 30, 31, 40, 55); the others are
            // too unlikely for any interval to make worth it, so the brute force can skip them.
            let pitches = [30, 31, 40, 55];
            let mut log_probs = vec![-1e4f32; 5 * VOCAB_SIZE];
            for (t, &(favourite, value)) in steps.iter().enumerate() {
                let ids = [0, 1, note_on(30), note_on(31), note_on(40), note_on(55)];
                for (j, &id) in ids.iter().enumerate() {
                    log_probs[t * VOCAB_SIZE + id] = if j == favourite { -0.05 } else { value - 1.0 - j as f32 * 0.3 };
                }
            }
            let ids = decode_melody(&log_probs, &ALL, Some(&stepwise()), weight);
            let rhythm = argmax_ids(&log_probs, &ALL);
            for (&id, &argmax) in ids.iter().zip(&rhythm) {
                prop_assert_eq!(is_note(id), is_note(argmax));
                if !is_note(argmax) {
                    prop_assert_eq!(id, argmax);
                }
            }
            let best = brute_force_best(&log_probs, &rhythm, &stepwise(), weight, &pitches);
            prop_assert!((path_value(&log_probs, &ids, &stepwise(), weight) - best).abs() < 1e-3);
        }
    }

    #[test]
    fn a_hesitant_step_takes_the_octave_near_the_tune() {
        // C4 D4 ? E4, where the third step is torn between F5 (slightly likelier) and F4.
        let (c4, d4, e4, f4, f5) = (39, 41, 43, 44, 56);
        let mut log_probs = rows(&[note_on(c4), note_on(d4), note_on(f5), note_on(e4)]);
        log_probs[2 * VOCAB_SIZE + note_on(f4)] = -0.2;
        assert_eq!(decode_melody(&log_probs, &ALL, Some(&stepwise()), 0.0)[2] as usize, note_on(f5));
        assert_eq!(decode_melody(&log_probs, &ALL, Some(&stepwise()), 1.0)[2] as usize, note_on(f4));
    }

    #[test]
    fn a_sure_note_stays() {
        // The decoder is sure of a two-octave leap (7.9 nats over any other token); the prior
        // at weight 0.5 charges 0.5 × 9 × 12 = 54 nats for it against 2 for a step, so it
        // gives way, but at weight 0.05 (5.4 against 0.2) it stays.
        let log_probs = rows(&[note_on(30), note_on(54)]);
        assert_eq!(decode_melody(&log_probs, &ALL, Some(&stepwise()), 0.05), [note_on(30) as u8, note_on(54) as u8]);
        let ids = decode_melody(&log_probs, &ALL, Some(&stepwise()), 0.5);
        assert!(ids[0].abs_diff(ids[1]) <= 12, "{ids:?}");
    }

    #[test]
    fn a_note_is_judged_against_the_last_note_through_holds() {
        // The rows run on across window boundaries, so this is also how a window's first note
        // meets the last note of the window before.
        let mut log_probs = rows(&[note_on(40), 0, 1, note_on(64)]);
        log_probs[3 * VOCAB_SIZE + note_on(52)] = -0.2;
        assert_eq!(decode_melody(&log_probs, &ALL, Some(&stepwise()), 1.0)[3] as usize, note_on(52));
    }

    #[test]
    fn rejected_tokens_are_never_chosen_at_any_weight() {
        let log_probs = rows(&[note_on(40), note_on(41), note_on(42), note_on(70)]);
        let mut allowed = ALL;
        allowed[note_on(41)] = false;
        allowed[note_on(0)] = false;
        // f32::MAX overflows every interval cost to infinity.
        for weight in [1.0, 1e30, f32::MAX, f32::INFINITY, f32::NAN] {
            let ids = decode_melody(&log_probs, &allowed, Some(&stepwise()), weight);
            assert!(ids.iter().all(|&id| allowed[usize::from(id)]), "{weight}: {ids:?}");
        }
    }

    #[test]
    fn the_fitted_prior_counts_intervals_between_consecutive_note_ons() {
        // Within windows: 60 → 62 (2), 62 → 62 (0) across a hold and a rest; 60 → 90 (30, wide).
        let mut a = [Token::Hold.id(); 32];
        a[0] = Token::On(60).id();
        a[4] = Token::On(62).id();
        a[8] = Token::Rest.id();
        a[12] = Token::On(62).id();
        let mut b = [Token::Hold.id(); 32];
        b[0] = Token::On(60).id();
        b[16] = Token::On(90).id();
        let prior = IntervalPrior::fit(&[a, b]);
        assert!(prior.is_valid());
        assert_eq!(prior.log_probs.len(), WIDEST_COUNTED + 2);
        // Add-one smoothing over 26 buckets plus 3 intervals: 29 in all.
        let p = |count: f64| (count / 29.0).ln() as f32;
        assert!((prior.log_probs[2] - p(2.0)).abs() < 1e-6);
        assert!((prior.log_probs[0] - p(2.0)).abs() < 1e-6);
        assert!((prior.log_probs[WIDEST_COUNTED + 1] - p(2.0)).abs() < 1e-6);
        assert!((prior.log_probs[1] - p(1.0)).abs() < 1e-6);
        // Past the table, every semitone costs the wide bucket again.
        assert!(prior.cost(WIDEST_COUNTED + 3) > prior.cost(WIDEST_COUNTED + 1));
    }
}
