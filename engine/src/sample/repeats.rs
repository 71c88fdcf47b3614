//! Repeat plans: which generated latents repeat which, drawn from the prior's repeat head
//! ([`crate::prior::repeats`]) before the reverse process starts, then held fixed by it.
//!
//! The head gives each generated latent i a categorical over "new" and "repeats source j". A
//! plan draws every latent's choice once ([`draw_choice`]), from the head evaluated at the start
//! of sampling (the known latents clean, the generated ones pure noise), so the choice is
//! conditioned on what the musician kept; the engine draws the latents one at a time, each
//! seeing the repeats drawn before it ([`crate::engine`]). Sampling then follows the plan (see [`super::sample`]): a latent that repeats
//! a known one becomes known, with that latent's value; one that repeats a generated latent is
//! tied to it and comes back equal. This is ancestral sampling of p(structure) · p(latents |
//! structure) when the head is calibrated; `rebar eval` reports how often the results repeat
//! ("repeated_windows") against the real tunes.

use candle_core::{Result, Tensor};
use rand::Rng;

use crate::prior::repeats::{is_excluded, SAME_LATENT};

/// Per variation, per latent: the latent whose value it takes (itself when it is new).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepeatPlan {
    pub repeats: Vec<Vec<usize>>,
}

impl RepeatPlan {
    /// Every latent new: plain sampling.
    pub fn none(variations: usize, latents: usize) -> Self {
        Self { repeats: vec![(0..latents).collect(); variations] }
    }

    /// The repeats the input itself has: every generated latent whose input latent (a row of
    /// `input` `[t, d]`) equals a kept latent's repeats that one, else one that equals an earlier
    /// generated latent's repeats that one, in every variation. Regenerated bars then keep the
    /// form of the bars they replace (an A part stays A A′ when its two halves were equal).
    pub fn from_input(input: &Tensor, generate: &[bool], variations: usize) -> Result<Self> {
        let rows = input.to_vec2::<f32>()?;
        let same = |a: &[f32], b: &[f32]| {
            let squared: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
            squared / (a.len().max(1) as f64) < SAME_LATENT
        };
        let row: Vec<usize> = (0..generate.len())
            .map(|i| {
                let kept = (0..generate.len()).find(|&j| !generate[j] && same(&rows[i], &rows[j]));
                let earlier = || (0..i).find(|&j| generate[j] && same(&rows[i], &rows[j]));
                if generate[i] {
                    kept.or_else(earlier).unwrap_or(i)
                } else {
                    i
                }
            })
            .collect();
        Ok(Self { repeats: vec![row; variations] })
    }

    /// The latent that latent `i` of variation `v` ends up equal to, following repeats of repeats.
    /// Sources are cleaner or earlier (see [`crate::prior::repeats`]), so the chain ends; the
    /// step bound only guards against a plan built by hand with a cycle.
    pub fn root(&self, v: usize, i: usize) -> usize {
        let row = &self.repeats[v];
        let mut at = i;
        for _ in 0..row.len() {
            if row[at] == at {
                break;
            }
            at = row[at];
        }
        at
    }
}

/// One latent's draw from the head: `None` for new, else the source it repeats. `gate` is the
/// logit of λ, `pointer` the logits of π over every latent (−1e9 outside the sources).
pub fn draw_choice(gate: f32, pointer: &[f32], rng: &mut impl Rng) -> Option<usize> {
    let repeat_probability = 1.0 / (1.0 + (-f64::from(gate)).exp());
    if !rng.random_bool(repeat_probability.clamp(0.0, 1.0)) {
        return None;
    }
    draw_source(pointer, rng)
}

/// A draw from softmax(`logits`), skipping the excluded (−1e9) entries; `None` if all are.
fn draw_source(logits: &[f32], rng: &mut impl Rng) -> Option<usize> {
    let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if is_excluded(top) {
        return None;
    }
    let weights: Vec<f64> =
        logits.iter().map(|&l| if is_excluded(l) { 0.0 } else { f64::from(l - top).exp() }).collect();
    let mut left = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (j, w) in weights.iter().enumerate() {
        if *w > 0.0 && left < *w {
            return Some(j);
        }
        left -= w;
    }
    weights.iter().rposition(|&w| w > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::SeedableRng;

    const X: f32 = -1e9;

    #[test]
    fn a_draw_follows_the_gate_and_the_pointer() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        // Sources 0 and 1 (2 is excluded), strongly preferring 1.
        let pointer = [-30.0, 0.0, X];
        assert_eq!(draw_choice(30.0, &pointer, &mut rng), Some(1));
        assert_eq!(draw_choice(-30.0, &pointer, &mut rng), None);
        assert_eq!(draw_choice(30.0, &[X, X, X], &mut rng), None, "no source, nothing to repeat");
    }

    #[test]
    fn a_fair_gate_repeats_about_half_the_time_and_a_flat_pointer_picks_sources_evenly() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let draws: Vec<Option<usize>> = (0..4000).map(|_| draw_choice(0.0, &[0.0, X, 0.0], &mut rng)).collect();
        let count = |wanted: Option<usize>| draws.iter().filter(|&&d| d == wanted).count();
        assert!((1800..2200).contains(&count(None)), "{}", count(None));
        assert!((900..1100).contains(&count(Some(0))) && (900..1100).contains(&count(Some(2))), "{draws:?}");
        assert_eq!(count(Some(1)), 0);
    }

    #[test]
    fn the_input_form_points_at_kept_latents_first_then_at_earlier_generated_ones() {
        let rows = [[1f32, 0.0], [2.0, 0.0], [2.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 0.0], [4.0, 0.0]];
        let input = Tensor::new(&rows, &Device::Cpu).unwrap();
        let generate = [false, true, true, true, true, true, true];
        let plan = RepeatPlan::from_input(&input, &generate, 2).unwrap();
        // 2 repeats the generated 1 (no kept equal), 3 the kept 0, 5 the generated 4, 6 is new.
        assert_eq!(plan.repeats, vec![vec![0, 1, 1, 0, 4, 4, 6]; 2]);
        assert_eq!(plan.root(0, 2), 1);
    }
}
