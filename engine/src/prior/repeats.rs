//! The repeat head (`PriorConfig::repeat_head`, our addition): a categorical over what a latent
//! is, "new" or "a repeat of latent j", so a sampler can decide a tune's repeats before it
//! denoises instead of hoping a trajectory lands on one.
//!
//! Real tunes repeat 2-bar windows note for note, and a repeat is a point mass in latent space:
//! an ε-model's posterior mean at high noise blends "repeat" with "something new" and decodes to
//! neither, so the diffusion samplers alone produce almost no repeats. The head factors the
//! joint as p(structure) · p(latents | structure), the hierarchical sampling that a mixture
//! posterior allows:
//!
//! - P(latent i is new) = 1 − λᵢ, P(i repeats j) = λᵢ πᵢⱼ, with λᵢ = sigmoid(w · hᵢ + b) and
//!   πᵢ = softmax over the sources Sᵢ of qᵢ · kⱼ / √d_k + g cᵢⱼ (hᵢ the model's final features,
//!   cᵢⱼ the copy bias of [`super::model`]).
//! - **Sources.** Sᵢ holds the latents that are cleaner than i (a known latent, for a generated
//!   one) and the equally noisy ones before it. Every repeat is then the arrow from a later or
//!   noisier member of a class of equal latents to an earlier or cleaner one: the arrows form a
//!   forest, so drawing every latent's arrow independently never makes a cycle and never counts a
//!   pair twice.
//! - **Training** adds −log P(the truth) over the noisy latents to the ε loss (a cross-entropy;
//!   the truth is "repeats j" for every source j whose clean latent equals i's, summed, or
//!   "new" when there is none).

use candle_core::{Result, Tensor, D};
use candle_nn::{linear, Linear, Module, VarBuilder};

/// Width of the head's queries and keys.
const KEY_WIDTH: usize = 32;

/// Two clean latents are one repeated window when their mean squared difference per dimension
/// is under this (in the prior's unit-variance scale): the encoder maps equal windows to equal
/// latents, and different windows lie orders of magnitude further apart.
pub const SAME_LATENT: f64 = 1e-6;

/// Logits added where a pair is not allowed; finite so that masked sums stay finite.
const EXCLUDED: f32 = -1e9;

/// Whether a pointer logit is one of an excluded pair (a real logit never comes near −1e9).
pub fn is_excluded(logit: f32) -> bool {
    logit < EXCLUDED / 2.0
}

/// The repeat head: weight names `repeats.query`, `repeats.key`, `repeats.gate`, `repeats.gain`.
#[derive(Clone, Debug)]
pub struct RepeatHead {
    query: Linear,
    key: Linear,
    gate: Linear,
    gain: Tensor,
}

/// The head's output for a batch: `gate` `[b, t]`, the logit of λ; `pointer` `[b, t, t]`, the
/// logits of π, with every pair outside Sᵢ at −1e9; `has_source` `[b, t]`, 1 where Sᵢ is not
/// empty.
pub struct RepeatLogits {
    pub gate: Tensor,
    pub pointer: Tensor,
    pub has_source: Tensor,
}

impl RepeatLogits {
    /// Two batches' logits as one, `a`'s sequences first.
    pub fn cat(a: &Self, b: &Self) -> Result<Self> {
        Ok(Self {
            gate: Tensor::cat(&[&a.gate, &b.gate], 0)?,
            pointer: Tensor::cat(&[&a.pointer, &b.pointer], 0)?,
            has_source: Tensor::cat(&[&a.has_source, &b.has_source], 0)?,
        })
    }
}

impl RepeatHead {
    pub fn new(width: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            query: linear(width, KEY_WIDTH, vb.pp("query"))?,
            key: linear(width, KEY_WIDTH, vb.pp("key"))?,
            gate: linear(width, 1, vb.pp("gate"))?,
            gain: vb.get_with_hints(1, "gain", candle_nn::Init::Const(0.0))?,
        })
    }

    /// `hidden` `[b, t, w]`; `copy_bias` `[b, 1, t, t]` (see [`super::model`]); `levels` `[b, t]`
    /// row-major; `valid` `[b, t]` row-major, 1 for real latents.
    pub fn forward(&self, hidden: &Tensor, copy_bias: &Tensor, levels: &[f32], valid: &[f32]) -> Result<RepeatLogits> {
        let (b, t, _) = hidden.dims3()?;
        let (allowed, has_source) = sources(levels, valid, b, t);
        let allowed = Tensor::from_vec(allowed, (b, t, t), hidden.device())?;
        let (q, k) = (self.query.forward(hidden)?, self.key.forward(hidden)?);
        let pointer = ((q.matmul(&k.transpose(1, 2)?)? / (KEY_WIDTH as f64).sqrt())?
            + copy_bias.squeeze(1)?.broadcast_mul(&self.gain)?)?
        .add(&allowed)?;
        Ok(RepeatLogits {
            gate: self.gate.forward(hidden)?.squeeze(2)?,
            pointer,
            has_source: Tensor::from_vec(has_source, (b, t), hidden.device())?,
        })
    }
}

/// The pairs (i, j) with j ∈ Sᵢ (module doc), as 0 / −1e9 per pair `[b · t · t]`, and per latent
/// 1 when Sᵢ is not empty `[b · t]`.
pub fn sources(levels: &[f32], valid: &[f32], b: usize, t: usize) -> (Vec<f32>, Vec<f32>) {
    let mut allowed = vec![EXCLUDED; b * t * t];
    let mut has_source = vec![0f32; b * t];
    for s in 0..b {
        for i in 0..t {
            for j in 0..t {
                let (li, lj) = (levels[s * t + i], levels[s * t + j]);
                let real = valid[s * t + i] > 0.0 && valid[s * t + j] > 0.0;
                if real && i != j && (lj > li || (lj == li && j < i)) {
                    allowed[(s * t + i) * t + j] = 0.0;
                    has_source[s * t + i] = 1.0;
                }
            }
        }
    }
    (allowed, has_source)
}

/// log sigmoid(x) = −softplus(−x), computed stably.
fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    // −softplus(−x) = min(x, 0) − ln(1 + e^−|x|)
    let negative_part = x.minimum(0f32)?;
    negative_part - (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// −log P(truth) per latent `[b, t]` (module doc), from the clean latents `x0` `[b, t, d]`, for
/// latents with a source (0 elsewhere). `x0` is compared in the prior's scale.
pub fn negative_log_likelihood(logits: &RepeatLogits, x0: &Tensor) -> Result<Tensor> {
    // Mean squared difference of every pair, [b, t, t], from the differences themselves: the
    // expansion through norms and dot products loses the precision that tells equal from near.
    let distance = x0.unsqueeze(2)?.broadcast_sub(&x0.unsqueeze(1)?)?.sqr()?.mean(D::Minus1)?;
    // 1 where the clean latents are one window and the pair is allowed, [b, t, t].
    let same = distance.lt(SAME_LATENT)?.to_dtype(candle_core::DType::F32)?;
    let allowed = logits.pointer.gt(EXCLUDED / 2.0)?.to_dtype(candle_core::DType::F32)?;
    let matches = (same * allowed)?;
    let repeats = matches.max_keepdim(D::Minus1)?.squeeze(D::Minus1)?; // [b, t], 1 or 0
    let matched_logits = (&logits.pointer + ((1.0 - &matches)? * f64::from(EXCLUDED))?)?;
    let log_pointer = (matched_logits.log_sum_exp(D::Minus1)? - logits.pointer.log_sum_exp(D::Minus1)?)?;
    let log_repeat = (log_sigmoid(&logits.gate)? + log_pointer)?;
    let log_new = log_sigmoid(&logits.gate.neg()?)?;
    let log_truth = ((&repeats * log_repeat)? + ((1.0 - &repeats)? * log_new)?)?;
    log_truth.neg()? * &logits.has_source
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn sources_are_the_cleaner_latents_and_the_equally_noisy_earlier_ones() {
        // One sequence of 4: latent 1 is clean, latent 3 is padding.
        let (allowed, has_source) = sources(&[0.5, 1.0, 0.5, 0.5], &[1.0, 1.0, 1.0, 0.0], 1, 4);
        let allowed: Vec<Vec<bool>> = allowed.chunks(4).map(|row| row.iter().map(|&v| v == 0.0).collect()).collect();
        assert_eq!(
            allowed,
            vec![
                vec![false, true, false, false],  // 0 may repeat the clean 1
                vec![false, false, false, false], // the clean latent repeats nothing
                vec![true, true, false, false],   // 2: the earlier 0 and the clean 1
                vec![false, false, false, false], // padding
            ]
        );
        assert_eq!(has_source, vec![1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn the_likelihood_is_a_normalized_categorical_over_new_and_every_source() {
        let device = Device::Cpu;
        // Three equally noisy latents; latent 2 equals latent 0.
        let z = Tensor::randn(0f32, 1.0, (1, 1, 8), &device).unwrap();
        let other = Tensor::randn(0f32, 1.0, (1, 1, 8), &device).unwrap();
        let x0 = Tensor::cat(&[&z, &other, &z], 1).unwrap();
        let (allowed, has_source) = sources(&[0.3; 3], &[1.0; 3], 1, 3);
        let pointer_raw = Tensor::new(&[[[0f32, 0.0, 0.0], [0.7, 0.0, 0.0], [0.2, -0.4, 0.0]]], &device).unwrap();
        let logits = RepeatLogits {
            gate: Tensor::new(&[[0.3f32, -1.0, 0.8]], &device).unwrap(),
            pointer: (pointer_raw + Tensor::from_vec(allowed, (1, 3, 3), &device).unwrap()).unwrap(),
            has_source: Tensor::from_vec(has_source, (1, 3), &device).unwrap(),
        };
        let nll = negative_log_likelihood(&logits, &x0).unwrap().to_vec2::<f32>().unwrap()[0].clone();
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        assert_eq!(nll[0], 0.0, "latent 0 has no source");
        // Latent 1 is new (its one source, 0, differs).
        assert!((nll[1] - -(1.0 - sigmoid(-1.0)).ln()).abs() < 1e-5, "{nll:?}");
        // Latent 2 repeats 0, one of its two sources.
        let pi = 0.2f32.exp() / (0.2f32.exp() + (-0.4f32).exp());
        assert!((nll[2] - -(sigmoid(0.8) * pi).ln()).abs() < 1e-5, "{nll:?}");
    }
}
