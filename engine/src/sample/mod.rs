//! Sampling from the diffusion prior, batched over variations and deterministic given a seed:
//!
//! - [`Sampler::Ancestral`]: the DDPM ancestral sampler of the paper (Ho et al., 2020, Alg. 2 /
//!   eq. 11) over all N = 1000 steps, with σ_t² = β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).
//! - [`Sampler::Ddim`]: DDIM (Song et al., 2021, eq. 12) on an evenly strided subset of the steps,
//!   from η = 0 (deterministic given the start noise) to η = 1 (the default, as random as the
//!   ancestral sampler): ten or a few tens of steps instead of a thousand.
//! - **Infilling** (Mittal et al., 2021, Algorithm 1): after every reverse step, the known latents
//!   are noised to the new level, x^known_{t−1} = √ᾱ_{t−1} x₀ + √(1 − ᾱ_{t−1}) ε, and pasted over
//!   the sample; at t = 0 they are exact. Masking the end continues a clip; masking everything
//!   generates from scratch.
//! - **Context guidance** ([`guidance`]): for a prior trained with clean context, every step
//!   also predicts with the known latents clean and follows them more closely than Algorithm 1
//!   alone does (classifier-free guidance with the clean context as the condition).
//! - **Temperature** scales the initial noise and every fresh noise draw.
//! - The step rules of both samplers are in [`step`]; this module runs the loop.
//! - **A calmer opening** ([`OpeningNoise`]): the fresh noise of the first steps, the noisiest,
//!   can be drawn at another temperature than the rest's. Those steps settle what the generated
//!   latents become as a whole, their register above all; the later ones settle detail such as
//!   the rhythm. (Karras et al., 2022, §4, inflate the fresh noise over a range of noise levels
//!   only, for the same reason: what the noise corrects differs along the process.)
//! - **Repeat plans** ([`repeats`]): a latent the plan makes a repeat of a known latent is known,
//!   with that value; one it makes a repeat of a generated latent is set equal to it after every
//!   step.

pub mod guidance;
pub mod repeats;
pub mod step;

pub use repeats::RepeatPlan;
pub use step::timesteps;

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Result, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::prior::NoiseSchedule;
use crate::random::normal_tensor;
use guidance::context_guided_noise;
use step::reverse_step;

/// Which reverse process to run.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Sampler {
    /// All N steps of the DDPM ancestral sampler.
    Ancestral,
    /// DDIM over `steps` of the N steps, placed by `spacing`; `eta` = 0 is deterministic given
    /// the start noise.
    Ddim { steps: usize, eta: f64, spacing: Spacing },
}

/// Where a strided sampler's steps fall among the N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Spacing {
    /// Evenly: with 20 steps the last is t = 50, whose noise the last update must remove in one go.
    Uniform,
    /// t_i = N ((S − i) / S)², denser where little noise is left (Song et al., 2021, DDIM, App. D.2):
    /// with 20 steps the last is t = 3.
    Quadratic,
}

impl Sampler {
    /// Number of model evaluations.
    pub fn evaluations(&self, schedule: &NoiseSchedule) -> usize {
        match self {
            Sampler::Ancestral => schedule.steps(),
            Sampler::Ddim { steps, .. } => (*steps).clamp(1, schedule.steps()),
        }
    }
}

/// The temperature of the fresh noise drawn by the first steps (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct OpeningNoise {
    /// The fraction of the reverse steps, from the noisiest, that draw at `temperature`
    /// (rounded to whole steps).
    pub fraction: f64,
    /// Their temperature, instead of the request's.
    pub temperature: f64,
}

/// Why sampling stopped without a result.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// What to sample.
#[derive(Clone, Copy)]
pub struct SampleRequest<'a> {
    /// Known latents in prior space, `[t, d]` for all variations or `[variations, t, d]`, one
    /// clip per variation; rows where `generate` is true are ignored.
    pub known: &'a Tensor,
    /// Per latent: true to generate it, false to keep it; `t` values for all variations, or
    /// `variations · t` (row-major), one row per variation.
    pub generate: &'a [bool],
    pub variations: usize,
    pub temperature: f64,
    /// Another temperature for the fresh noise of the first steps; `None`: one throughout.
    pub opening_noise: Option<OpeningNoise>,
    pub seed: u64,
    pub sampler: Sampler,
    /// Which generated latents repeat which, per variation; `None`: all are new.
    pub repeats: Option<&'a RepeatPlan>,
    /// Weight w of context guidance (see [`guidance`]); 0 is plain Algorithm 1. Above 0 it
    /// needs a prior trained with clean context.
    pub context_guidance: f64,
}

/// A request's per-variation view once its repeat plan is applied: which latents each
/// variation generates, the known values (a repeat of a known latent takes its value), and the
/// latent each generated latent must equal after every step (itself unless it is tied).
struct Planned {
    generate: Vec<Vec<bool>>,
    known: Tensor,
    ties: Option<Tensor>,
}

impl Planned {
    fn new(request: &SampleRequest<'_>, v: usize) -> Result<Self> {
        let t = request.known.dim(request.known.rank() - 2)?;
        let generated = |s: usize, r: usize| match request.generate.len() {
            n if n == t => Ok(request.generate[r]),
            n if n == v * t => Ok(request.generate[s * t + r]),
            n => Err(candle_core::Error::Msg(format!("{n} generate flags for {v} variations of {t} latents"))),
        };
        let none = RepeatPlan::none(v, t);
        let plan = request.repeats.unwrap_or(&none);
        if plan.repeats.len() != v || plan.repeats.iter().any(|row| row.len() != t) {
            candle_core::bail!("the repeat plan is for another shape than {v} variations of {t} latents");
        }
        let roots: Vec<Vec<usize>> = (0..v).map(|s| (0..t).map(|i| plan.root(s, i)).collect()).collect();
        let generate: Vec<Vec<bool>> = roots
            .iter()
            .enumerate()
            .map(|(s, row)| row.iter().map(|&r| generated(s, r)).collect::<Result<_>>())
            .collect::<Result<_>>()?;
        let device = request.known.device();
        let d = request.known.dim(request.known.rank() - 1)?;
        // Rows of `known` as [v · t, d] (one clip per variation) and each latent's root's row in it.
        let per_variation = request.known.rank() == 3;
        let rows = if per_variation { request.known.reshape((v * t, d))? } else { request.known.clone() };
        let flat_roots: Vec<u32> = roots
            .iter()
            .enumerate()
            .flat_map(|(s, row)| row.iter().map(move |&r| if per_variation { s * t + r } else { r } as u32))
            .collect();
        let known = rows.index_select(&Tensor::new(flat_roots.as_slice(), device)?, 0)?.reshape((v, t, d))?;
        let tied = roots.iter().flatten().enumerate().any(|(k, &r)| r != k % t && generate[k / t][k % t]);
        let ties = if tied {
            let index: Vec<u32> = roots
                .iter()
                .zip(&generate)
                .flat_map(|(row, flags)| {
                    row.iter().zip(flags).enumerate().map(|(i, (&r, &g))| if g { r } else { i } as u32)
                })
                .collect();
            Some(Tensor::from_vec(index, (v, t, 1), device)?.broadcast_as((v, t, d))?.contiguous()?)
        } else {
            None
        };
        Ok(Self { generate, known, ties })
    }

    /// Sets every tied latent equal to the one it repeats.
    fn tie(&self, x: Tensor) -> Result<Tensor> {
        match &self.ties {
            Some(index) => x.gather(index, 1),
            None => Ok(x),
        }
    }
}

/// Runs the reverse process with `predict_noise(x_t [v, t, d], √ᾱ) → ε̂` and returns
/// `[variations, t, d]`. The levels are one per variation, or one per latent (`[v, t]` row-major)
/// in context guidance's clean branch. `progress` gets the fraction done after each step;
/// setting `cancel` stops at the next step.
pub fn sample(
    predict_noise: &dyn Fn(&Tensor, &[f32]) -> Result<Tensor>,
    schedule: &NoiseSchedule,
    request: &SampleRequest<'_>,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(f32),
) -> std::result::Result<Tensor, SampleError> {
    let (t_len, dim) = match request.known.dims() {
        &[t, d] | &[_, t, d] => (t, d),
        _ => return Err(candle_core::Error::Msg("known latents must be [t, d] or [variations, t, d]".into()).into()),
    };
    let v = request.variations.max(1);
    if request.known.rank() == 3 && request.known.dim(0)? != v {
        let clips = request.known.dim(0)?;
        return Err(candle_core::Error::Msg(format!("known latents for {clips} clips, but {v} variations")).into());
    }
    let device = request.known.device();
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let noise_at_unit = |rng: &mut ChaCha8Rng| -> Result<Tensor> {
        normal_tensor(rng, v * t_len, dim, device)?.reshape((v, t_len, dim))
    };
    let noise = |rng: &mut ChaCha8Rng| -> Result<Tensor> { noise_at_unit(rng)? * request.temperature };

    let planned = Planned::new(request, v)?;
    // 1 where generated, 0 where known: [v, t, 1], broadcast over dims.
    let mask: Vec<f32> = planned.generate.iter().flatten().map(|&g| if g { 1.0 } else { 0.0 }).collect();
    let mask = Tensor::from_vec(mask, (v, t_len, 1), device)?;
    let known_mask = (1.0 - &mask)?;
    let known = &planned.known;
    let paste = |x: &Tensor, alpha_bar: f64, clean: bool, rng: &mut ChaCha8Rng| -> Result<Tensor> {
        let alpha_bar = if clean { 1.0 } else { alpha_bar };
        let noisy_known = ((known * alpha_bar.sqrt())?
            + (normal_tensor(rng, v * t_len, dim, device)?.reshape((v, t_len, dim))? * (1.0 - alpha_bar).sqrt())?)?;
        planned.tie((x.broadcast_mul(&mask)? + noisy_known.broadcast_mul(&known_mask)?)?)
    };

    let steps = timesteps(request.sampler, schedule);
    let has_known = planned.generate.iter().flatten().any(|&g| !g);
    let context_guided = request.context_guidance > 0.0 && has_known;
    // The temperature of step i's fresh noise: the opening's in its first steps.
    let fresh_temperature = |i: usize| match request.opening_noise {
        Some(opening) if (i as f64) < (opening.fraction.clamp(0.0, 1.0) * steps.len() as f64).round() => {
            opening.temperature
        }
        _ => request.temperature,
    };
    let mut x = paste(&noise(&mut rng)?, schedule.alpha_bar(steps[0]), false, &mut rng)?;
    for (i, &t) in steps.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(SampleError::Cancelled);
        }
        let prev = steps.get(i + 1).copied().unwrap_or(0);
        let (alpha_bar, alpha_bar_prev) = (schedule.alpha_bar(t), schedule.alpha_bar(prev));
        let eps = if context_guided {
            // Both branches share the generated latents; the step continues from the clean one.
            let clean = paste(&x, alpha_bar, true, &mut rng)?;
            let renoised = paste(&x, alpha_bar, false, &mut rng)?;
            let eps = context_guided_noise(
                predict_noise,
                &planned.generate,
                &clean,
                &renoised,
                alpha_bar,
                request.context_guidance,
            )?;
            x = clean;
            eps
        } else {
            predict_noise(&x, &vec![alpha_bar.sqrt() as f32; v])?
        };
        let fresh_noise = |rng: &mut ChaCha8Rng| -> Result<Tensor> { noise_at_unit(rng)? * fresh_temperature(i) };
        x = reverse_step(schedule, request.sampler, &x, eps, (t, prev), &mut rng, &fresh_noise)?;
        x = paste(&x, alpha_bar_prev, false, &mut rng)?;
        progress((i + 1) as f32 / steps.len() as f32);
    }
    Ok(x)
}

#[cfg(test)]
mod tests;
