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
//! - **Resampling** (Lugmayr et al., 2022, RePaint, Alg. 1, jump length 1): with `resample` = U > 1,
//!   each reverse step is taken U times; between takes the pasted sample is noised back up,
//!   x_t = √(ᾱ_t / ᾱ_{t−1}) x_{t−1} + √(1 − ᾱ_t / ᾱ_{t−1}) ε, so the generated latents get U looks
//!   at known latents that Algorithm 1 only shows them through independent noise. It costs U×
//!   the model evaluations.
//! - **Clean context** ([`KnownLatents::Clean`]): for a prior trained with clean context (see
//!   [`crate::train::prior`]), the known latents are pasted as they are, at level √ᾱ = 1, at every
//!   step, and the model gets one noise level per latent; Algorithm 1 shows the generated latents
//!   their neighbours only through the current step's noise.
//! - **A clean start** (`clean_steps` = f): the first f of the steps paste the known latents
//!   clean, the rest follow Algorithm 1. The noisiest steps settle what the generated latents
//!   become as a whole (their rhythm and register), and there the model sees its context
//!   exactly; the later steps, re-noised, keep Algorithm 1's spread (BENCHMARKS.md, prior v8).
//! - **Reconstruction guidance** (Ho et al., 2022, eq. 7), an option on top of Algorithm 1: see
//!   `guided_noise`.
//! - **Context guidance** (classifier-free guidance, Ho & Salimans, 2022, eq. 6, with the clean
//!   context as the condition): every step predicts ε twice from one batch, once with the known
//!   latents clean (ε_c) and once re-noised to the step's level as in Algorithm 1 (ε_r), and
//!   steps with ε̃ = ε_r + w (ε_c − ε_r). A prior trained with clean context on part of its crops
//!   is both models at once, as CFG's condition dropout makes one network both. w = 1 is clean
//!   context throughout; w > 1 follows the kept bars more closely than either (BENCHMARKS.md).
//!   It replaces the clean start, and costs a second row per variation in every evaluation.
//! - **Temperature** scales the initial noise and every fresh noise draw.
//! - **A calmer opening** ([`OpeningNoise`]): the fresh noise of the first steps, the noisiest,
//!   can be drawn at another temperature than the rest's. Those steps settle what the generated
//!   latents become as a whole, their register above all; the later ones settle detail such as
//!   the rhythm. (Karras et al., 2022, §4, inflate the fresh noise over a range of noise levels
//!   only, for the same reason: what the noise corrects differs along the process.)
//! - **Repeat plans** ([`repeats`]): a latent the plan makes a repeat of a known latent is known,
//!   with that value; one it makes a repeat of a generated latent is set equal to it after every
//!   step.

pub mod repeats;

pub use repeats::RepeatPlan;

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Result, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::prior::NoiseSchedule;
use crate::random::normal_tensor;

/// Which reverse process to run.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Sampler {
    /// All N steps of the DDPM ancestral sampler.
    Ancestral,
    /// DDIM over `steps` of the N steps, placed by `spacing`; `eta` = 0 is deterministic given
    /// the start noise.
    Ddim { steps: usize, eta: f64, spacing: Spacing },
}

/// How the known latents enter the reverse process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KnownLatents {
    /// Re-noised to every step's level and pasted (Algorithm 1), after the request's clean
    /// start, if any: the default, which scores closer to the paper's row (BENCHMARKS.md).
    /// Context guidance, when on, uses both ways at every step instead.
    #[default]
    Renoised,
    /// Pasted clean, at level 1 (needs a prior trained with clean context).
    Clean,
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
    /// The plugin's default: measured in BENCHMARKS.md against the full ancestral sampler.
    /// With context guidance (the default), 10 stochastic steps score as 20 do, at half the
    /// cost; η = 1 keeps more of the variety that guidance takes away.
    pub const DEFAULT: Sampler = Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform };

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
    /// Takes of every reverse step (RePaint's U); 1 is plain Algorithm 1.
    pub resample: usize,
    /// Weight w_r of reconstruction guidance; 0 is plain Algorithm 1.
    pub guidance: f64,
    /// Fraction of the steps, from the noisiest, in which the known latents are pasted clean
    /// (level 1) instead of re-noised (Algorithm 1): 0 is Algorithm 1 throughout, 1 clean
    /// throughout. Anything above 0 needs a prior trained with clean context.
    pub clean_steps: f64,
    /// Which generated latents repeat which, per variation; `None`: all are new.
    pub repeats: Option<&'a RepeatPlan>,
    /// Weight w of context guidance (see the module doc); 0 is none. Above 0 it needs a prior
    /// trained with clean context, and `clean_steps` and `guidance` are not used.
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
/// in the steps that paste the known latents clean (`request.clean_steps`). `progress` gets the
/// fraction done after each step; setting `cancel` stops at the next step.
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
    // Steps 0 .. clean_count see clean known latents; the paste after step i prepares step i + 1.
    let clean_count = (request.clean_steps.clamp(0.0, 1.0) * steps.len() as f64).round() as usize;
    let has_known = planned.generate.iter().flatten().any(|&g| !g);
    let context_guided = request.context_guidance > 0.0 && has_known;
    let clean_at = |i: usize| i < clean_count && !context_guided;
    // The temperature of step i's fresh noise: the opening's in its first steps.
    let fresh_temperature = |i: usize| match request.opening_noise {
        Some(opening) if (i as f64) < (opening.fraction.clamp(0.0, 1.0) * steps.len() as f64).round() => {
            opening.temperature
        }
        _ => request.temperature,
    };
    let mut x = paste(&noise(&mut rng)?, schedule.alpha_bar(steps[0]), clean_at(0), &mut rng)?;
    for (i, &t) in steps.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(SampleError::Cancelled);
        }
        let prev = steps.get(i + 1).copied().unwrap_or(0);
        let (alpha_bar, alpha_bar_prev) = (schedule.alpha_bar(t), schedule.alpha_bar(prev));
        let takes = request.resample.max(1);
        for take in 0..takes {
            if take > 0 {
                // Back up to level t from the pasted sample at level t − 1 (RePaint's jump).
                let ratio = alpha_bar / alpha_bar_prev;
                x = ((x * ratio.sqrt())? + (noise_at_unit(&mut rng)? * (1.0 - ratio).max(0.0).sqrt())?)?;
                // The jump noised the known latents too; a clean step must show them clean.
                if clean_at(i) {
                    x = paste(&x, alpha_bar, true, &mut rng)?;
                }
            }
            let eps = if context_guided {
                // Both branches share the generated latents; the step continues from the clean one.
                let clean = paste(&x, alpha_bar, true, &mut rng)?;
                let renoised = paste(&x, alpha_bar, false, &mut rng)?;
                let eps = context_guided_noise(
                    predict_noise,
                    &planned,
                    &clean,
                    &renoised,
                    alpha_bar,
                    request.context_guidance,
                )?;
                x = clean;
                eps
            } else {
                guided_noise(predict_noise, request, clean_at(i), &planned, &x, alpha_bar, (&mask, &known_mask))?
            };
            let fresh_noise = |rng: &mut ChaCha8Rng| -> Result<Tensor> { noise_at_unit(rng)? * fresh_temperature(i) };
            x = reverse_step(schedule, request, &x, eps, (t, prev), &mut rng, &fresh_noise)?;
            x = paste(&x, alpha_bar_prev, clean_at(i + 1), &mut rng)?;
        }
        progress((i + 1) as f32 / steps.len() as f32);
    }
    Ok(x)
}

/// ε̂(x_t) at level ᾱ, with reconstruction guidance when `request.guidance` = w_r > 0 (Ho et al.,
/// 2022, "Video Diffusion Models", eq. 7): the generated latents' x̂₀ is moved down the gradient
/// of how far the known latents' x̂₀ lands from their true values,
/// x̃₀ = x̂₀ − (w_r √ᾱ / 2) ∇ₓ ‖x^known − x̂₀^known(x_t)‖², and ε̂ is re-derived from x̃₀:
/// ε̃ = ε̂ + w_r ᾱ / (2 √(1 − ᾱ)) · ∇. Algorithm 1 alone shows the generated latents the known
/// ones only through fresh noise; the gradient tells them what the clean context needs.
fn guided_noise(
    predict_noise: &dyn Fn(&Tensor, &[f32]) -> Result<Tensor>,
    request: &SampleRequest<'_>,
    clean_known: bool,
    planned: &Planned,
    x: &Tensor,
    alpha_bar: f64,
    (generated_mask, known_mask): (&Tensor, &Tensor),
) -> Result<Tensor> {
    let (generate, known) = (&planned.generate, &planned.known);
    let level = alpha_bar.sqrt() as f32;
    let levels: Vec<f32> = if clean_known {
        generate.iter().flatten().map(|&generated| if generated { level } else { 1.0 }).collect()
    } else {
        vec![level; x.dim(0)?]
    };
    let has_known = generate.iter().flatten().any(|&g| !g);
    if request.guidance <= 0.0 || !has_known || clean_known {
        return predict_noise(x, &levels);
    }
    let tracked = Var::from_tensor(x)?;
    let eps = predict_noise(tracked.as_tensor(), &levels)?;
    let x0 = ((tracked.as_tensor() - (&eps * (1.0 - alpha_bar).sqrt())?)? / alpha_bar.sqrt())?;
    let miss = (x0 - known)?.broadcast_mul(known_mask)?.sqr()?.sum_all()?;
    let gradient = miss.backward()?.get(tracked.as_tensor()).cloned().ok_or_else(|| {
        candle_core::Error::Msg("reconstruction guidance: the model's output does not depend on its input".into())
    })?;
    let step = request.guidance * alpha_bar / (2.0 * (1.0 - alpha_bar).sqrt());
    eps.detach() + (gradient.broadcast_mul(generated_mask)? * step)?
}

/// ε̃ = ε_r + w (ε_c − ε_r) from one model call over `[clean; renoised]` (see the module doc):
/// the clean branch gives each known latent level 1, the re-noised one gives every latent the
/// step's level.
fn context_guided_noise(
    predict_noise: &dyn Fn(&Tensor, &[f32]) -> Result<Tensor>,
    planned: &Planned,
    clean: &Tensor,
    renoised: &Tensor,
    alpha_bar: f64,
    weight: f64,
) -> Result<Tensor> {
    let v = clean.dim(0)?;
    let level = alpha_bar.sqrt() as f32;
    let clean_levels = planned.generate.iter().flatten().map(|&generated| if generated { level } else { 1.0 });
    let levels: Vec<f32> =
        clean_levels.chain(std::iter::repeat_n(level, planned.generate.iter().flatten().count())).collect();
    let both = predict_noise(&Tensor::cat(&[clean, renoised], 0)?, &levels)?;
    let (eps_clean, eps_renoised) = (both.narrow(0, 0, v)?, both.narrow(0, v, v)?);
    &eps_renoised + ((eps_clean - &eps_renoised)? * weight)?
}

/// One reverse step of the chosen sampler from level `t` to level `prev` (before pasting), given
/// the noise estimate `eps` at `x`.
fn reverse_step(
    schedule: &NoiseSchedule,
    request: &SampleRequest<'_>,
    x: &Tensor,
    eps: Tensor,
    (t, prev): (usize, usize),
    rng: &mut ChaCha8Rng,
    noise: &dyn Fn(&mut ChaCha8Rng) -> Result<Tensor>,
) -> Result<Tensor> {
    let (alpha_bar, alpha_bar_prev) = (schedule.alpha_bar(t), schedule.alpha_bar(prev));
    Ok(match request.sampler {
        Sampler::Ancestral => {
            let (beta, alpha) = (schedule.beta(t), 1.0 - schedule.beta(t));
            let mean = ((x - (eps * (beta / (1.0 - alpha_bar).sqrt()))?)? / alpha.sqrt())?;
            if prev == 0 {
                mean
            } else {
                let sigma = (beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)).sqrt();
                (mean + (noise(rng)? * sigma)?)?
            }
        }
        Sampler::Ddim { eta, .. } => {
            let x0 = ((x - (&eps * (1.0 - alpha_bar).sqrt())?)? / alpha_bar.sqrt())?;
            let sigma = eta * ((1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_prev)).sqrt();
            let direction = (eps * (1.0 - alpha_bar_prev - sigma * sigma).max(0.0).sqrt())?;
            let mut next = ((x0 * alpha_bar_prev.sqrt())? + direction)?;
            if sigma > 0.0 && prev > 0 {
                next = (next + (noise(rng)? * sigma)?)?;
            }
            next
        }
    })
}

/// The steps a sampler visits, from the noisiest down to 1.
pub fn timesteps(sampler: Sampler, schedule: &NoiseSchedule) -> Vec<usize> {
    let n = schedule.steps();
    match sampler {
        Sampler::Ancestral => (1..=n).rev().collect(),
        Sampler::Ddim { steps, spacing, .. } => {
            let count = steps.clamp(1, n);
            let mut visited: Vec<usize> = match spacing {
                Spacing::Uniform => (0..count).map(|i| n - i * n / count).collect(),
                Spacing::Quadratic => (0..count)
                    .map(|i| {
                        let fraction = (count - i) as f64 / count as f64;
                        ((n as f64 * fraction * fraction).round() as usize).max(1)
                    })
                    .collect(),
            };
            // From N down to at least 1, without repeats.
            visited.dedup();
            visited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn zeros(t: usize, d: usize, device: &Device) -> Result<Tensor> {
        Tensor::zeros((t, d), candle_core::DType::F32, device)
    }

    /// The noise levels a sampler passed, one per latent of a `[v, t, d]` input: (√ᾱ, √(1 − ᾱ)).
    fn per_latent(levels: &[f32], v: usize, t: usize) -> Vec<(f64, f64)> {
        let per = levels.len() / v;
        (0..t)
            .map(|i| f64::from(levels[if per == 1 { 0 } else { i }]))
            .map(|a| (a, (1.0 - a * a).max(0.0).sqrt()))
            .collect()
    }

    /// A "model" that knows the data is all zeros: ε̂ = x_t / √(1 − ᾱ), 0 for a clean latent.
    fn oracle(schedule: &NoiseSchedule) -> impl Fn(&Tensor, &[f32]) -> Result<Tensor> + '_ {
        move |x, levels| {
            let _ = schedule;
            let (v, t, _) = x.dims3()?;
            let factor: Vec<f32> =
                per_latent(levels, v, t).iter().map(|&(_, s)| if s > 0.0 { (1.0 / s) as f32 } else { 0.0 }).collect();
            x.broadcast_mul(&Tensor::from_vec(factor, (1, t, 1), x.device())?)
        }
    }

    /// The exact ε̂ for data whose latents are all one value c ~ N(0, I): the posterior mean of c
    /// given every latent, x̂₀ = Σ (√ᾱ_i / (1 − ᾱ_i)) x_i / (1 + Σ ᾱ_i / (1 − ᾱ_i)), or a clean
    /// latent itself when there is one. The generated latents of a perfect infill equal the known.
    fn constant_sequence_model(x: &Tensor, levels: &[f32]) -> Result<Tensor> {
        let (v, t, _) = x.dims3()?;
        let levels = per_latent(levels, v, t);
        let x0 = match levels.iter().position(|&(_, s)| s == 0.0) {
            Some(clean) => x.narrow(1, clean, 1)?,
            None => {
                let weights: Vec<f32> = levels.iter().map(|&(a, s)| (a / (s * s)) as f32).collect();
                let precision = 1.0 + levels.iter().map(|&(a, s)| a * a / (s * s)).sum::<f64>();
                (x.broadcast_mul(&Tensor::from_vec(weights, (1, t, 1), x.device())?)?.sum_keepdim(1)? / precision)?
            }
        };
        let (signal, noise): (Vec<f32>, Vec<f32>) =
            levels.iter().map(|&(a, s)| (a as f32, if s > 0.0 { (1.0 / s) as f32 } else { 0.0 })).unzip();
        let signal = Tensor::from_vec(signal, (1, t, 1), x.device())?;
        let inverse_noise = Tensor::from_vec(noise, (1, t, 1), x.device())?;
        (x - x0.broadcast_mul(&signal)?)?.broadcast_mul(&inverse_noise)
    }

    fn request<'a>(known: &'a Tensor, generate: &'a [bool], sampler: Sampler, seed: u64) -> SampleRequest<'a> {
        SampleRequest {
            known,
            generate,
            variations: 3,
            temperature: 1.0,
            opening_noise: None,
            seed,
            sampler,
            resample: 1,
            guidance: 0.0,
            clean_steps: 0.0,
            repeats: None,
            context_guidance: 0.0,
        }
    }

    #[test]
    fn a_plan_makes_repeats_of_known_latents_known_and_ties_repeats_of_generated_ones() {
        let schedule = NoiseSchedule::default();
        let known = Tensor::new(&[[0.5f32, -0.5], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], &Device::Cpu).unwrap();
        let generate = [false, true, true, true];
        // Variation 0: latent 2 repeats the known 0, latent 3 the generated 1; the others plain.
        let plan = RepeatPlan { repeats: vec![vec![0, 1, 0, 1], vec![0, 1, 2, 3], vec![0, 1, 2, 3]] };
        for clean_steps in [0.0, 1.0] {
            let predict = |x: &Tensor, _: &[f32]| x * 0.3;
            let request = SampleRequest {
                clean_steps,
                repeats: Some(&plan),
                ..request(&known, &generate, Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform }, 4)
            };
            let out = sample(&predict, &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
            let out = out.to_vec3::<f32>().unwrap();
            assert_eq!(out[0][2], vec![0.5, -0.5]);
            assert_eq!(out[0][3], out[0][1]);
            assert_ne!(out[0][1], vec![0.0, 0.0]);
            assert_ne!(out[1][2], out[1][0]);
            assert_ne!(out[1][3], out[1][1]);
        }
    }

    #[test]
    fn ddim_visits_evenly_spaced_steps_down_to_one() {
        let schedule = NoiseSchedule::default();
        assert_eq!(
            timesteps(Sampler::Ddim { steps: 4, eta: 0.0, spacing: Spacing::Uniform }, &schedule),
            vec![1000, 750, 500, 250]
        );
        assert_eq!(timesteps(Sampler::Ancestral, &schedule).len(), 1000);
        let quadratic = timesteps(Sampler::Ddim { steps: 20, eta: 0.0, spacing: Spacing::Quadratic }, &schedule);
        assert_eq!((quadratic.len(), quadratic[0], quadratic[18], quadratic[19]), (20, 1000, 10, 3));
        assert!(quadratic.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn known_latents_come_back_exactly_and_generated_ones_follow_the_model() {
        let schedule = NoiseSchedule::default();
        let known = Tensor::new(&[[0.5f32, -0.5], [0.9, 0.1], [0.3, 0.3]], &Device::Cpu).unwrap();
        let generate = [false, true, false];
        for (sampler, resample) in [
            (Sampler::Ancestral, 1),
            (Sampler::Ddim { steps: 20, eta: 0.0, spacing: Spacing::Uniform }, 1),
            (Sampler::Ddim { steps: 20, eta: 1.0, spacing: Spacing::Uniform }, 1),
            (Sampler::Ddim { steps: 20, eta: 0.0, spacing: Spacing::Quadratic }, 1),
            (Sampler::Ddim { steps: 10, eta: 0.0, spacing: Spacing::Uniform }, 3),
        ] {
            for clean_steps in [0.0, 0.5, 1.0] {
                let predict = oracle(&schedule);
                let out = sample(
                    &predict,
                    &schedule,
                    &SampleRequest { resample, clean_steps, ..request(&known, &generate, sampler, 3) },
                    &AtomicBool::new(false),
                    &mut |_| {},
                )
                .unwrap();
                let out = out.to_vec3::<f32>().unwrap();
                for variation in &out {
                    assert_eq!(variation[0], vec![0.5, -0.5]);
                    assert_eq!(variation[2], vec![0.3, 0.3]);
                    // The oracle's data is zero, so the generated latent ends near zero.
                    assert!(variation[1].iter().all(|v| v.abs() < 0.05), "{sampler:?} {variation:?}");
                }
            }
        }
    }

    /// Four latents: the outer two known at (1.5, −1), the middle two generated.
    #[test]
    fn each_variation_can_have_its_own_known_latents() {
        let schedule = NoiseSchedule::default();
        // Three clips, one variation each, under context guidance and a plan that ties latent 2
        // to latent 1 in the second variation.
        let known = Tensor::new(
            &[
                [[0.5f32, -0.5], [0.0, 0.0], [0.0, 0.0]],
                [[-1.0, 1.0], [0.0, 0.0], [0.0, 0.0]],
                [[2.0, 0.25], [0.0, 0.0], [0.0, 0.0]],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let generate = [false, true, true];
        let plan = RepeatPlan { repeats: vec![vec![0, 1, 2], vec![0, 1, 1], vec![0, 1, 2]] };
        let sampler = Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform };
        let request =
            SampleRequest { repeats: Some(&plan), context_guidance: 3.0, ..request(&known, &generate, sampler, 4) };
        let out = sample(&oracle(&schedule), &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
        let out = out.to_vec3::<f32>().unwrap();
        assert_eq!(
            [out[0][0].clone(), out[1][0].clone(), out[2][0].clone()],
            [vec![0.5, -0.5], vec![-1.0, 1.0], vec![2.0, 0.25]]
        );
        assert_eq!(out[1][2], out[1][1]);
        // One clip per variation: a count that does not match is refused.
        let two = SampleRequest { variations: 2, ..request };
        assert!(sample(&oracle(&schedule), &schedule, &two, &AtomicBool::new(false), &mut |_| {}).is_err());
    }

    fn two_new_between_two_known() -> (Tensor, [bool; 4]) {
        let known = Tensor::new(&[[1.5f32, -1.0], [0.0, 0.0], [0.0, 0.0], [1.5, -1.0]], &Device::Cpu).unwrap();
        (known, [false, true, true, false])
    }

    #[test]
    fn clean_context_and_guidance_bring_infills_closer_to_what_the_known_latents_imply() {
        let schedule = NoiseSchedule::default();
        let (known, generate) = two_new_between_two_known();
        let sampler = Sampler::Ddim { steps: 20, eta: 0.0, spacing: Spacing::Uniform };
        let error = |guidance: f64, clean_steps: f64| {
            let request = SampleRequest { guidance, clean_steps, ..request(&known, &generate, sampler, 11) };
            let out = sample(&constant_sequence_model, &schedule, &request, &AtomicBool::new(false), &mut |_| {});
            let out = out.unwrap().to_vec3::<f32>().unwrap();
            let misses = out.iter().flat_map(|v| [&v[1], &v[2]]).flat_map(|row| [row[0] - 1.5, row[1] + 1.0]);
            misses.map(|m| m.abs()).fold(0f32, f32::max)
        };
        let (renoised, guided, clean) = (error(0.0, 0.0), error(4.0, 0.0), error(0.0, 1.0));
        assert!(clean < 1e-4, "clean context: {clean}");
        assert!(guided < renoised / 2.0, "guided {guided} vs Algorithm 1 alone {renoised}");
    }

    #[test]
    fn context_guidance_asks_for_both_branches_in_one_batch_and_at_weight_one_is_clean_context() {
        let schedule = NoiseSchedule::default();
        let (known, generate) = two_new_between_two_known();
        let sampler = Sampler::Ddim { steps: 10, eta: 0.0, spacing: Spacing::Uniform };
        let calls = std::cell::Cell::new(0);
        let checked = |x: &Tensor, levels: &[f32]| {
            let (rows, t, _) = x.dims3()?;
            assert_eq!((rows, levels.len()), (6, 6 * t), "3 variations, clean then re-noised");
            let (clean, renoised) = levels.split_at(3 * t);
            assert!(clean.chunks(t).all(|row| row[0] == 1.0 && row[3] == 1.0 && row[1] < 1.0 && row[1] == row[2]));
            assert!(renoised.iter().all(|&level| level == renoised[0] && level < 1.0));
            assert_eq!(x.get(0)?.get(0)?.to_vec1::<f32>()?, vec![1.5, -1.0]);
            calls.set(calls.get() + 1);
            constant_sequence_model(x, levels)
        };
        let run = |predict: &dyn Fn(&Tensor, &[f32]) -> Result<Tensor>, context_guidance: f64, clean_steps: f64| {
            let request = SampleRequest { context_guidance, clean_steps, ..request(&known, &generate, sampler, 5) };
            sample(predict, &schedule, &request, &AtomicBool::new(false), &mut |_| {})
                .unwrap()
                .to_vec3::<f32>()
                .unwrap()
        };
        let guided = run(&checked, 1.0, 0.0);
        assert_eq!(calls.get(), 10);
        let clean = run(&constant_sequence_model, 0.0, 1.0);
        for (g, c) in guided.iter().flatten().flatten().zip(clean.iter().flatten().flatten()) {
            assert!((g - c).abs() < 1e-4, "{g} vs {c}");
        }
        assert_eq!(guided[0][0], vec![1.5, -1.0]);
        assert_eq!(guided[2][3], vec![1.5, -1.0]);
        // Nothing known: nothing to guide by, so one row per variation as without guidance.
        let all = [true; 4];
        let plain = |x: &Tensor, levels: &[f32]| {
            assert_eq!(x.dim(0)?, 3);
            constant_sequence_model(x, levels)
        };
        let request = SampleRequest { context_guidance: 3.0, ..request(&known, &all, sampler, 5) };
        sample(&plain, &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
    }

    #[test]
    fn a_clean_start_shows_the_model_clean_known_latents_in_its_first_steps_only() {
        let schedule = NoiseSchedule::default();
        let known = Tensor::new(&[[0.5f32, -0.5], [0.0, 0.0], [0.3, 0.3]], &Device::Cpu).unwrap();
        let generate = [false, true, false];
        let seen = std::cell::RefCell::new(Vec::new());
        let predict = |x: &Tensor, levels: &[f32]| {
            let (v, t, _) = x.dims3()?;
            // Per latent levels (clean steps) give the known latents level 1; then their rows are exact.
            let clean = levels.len() == v * t;
            if clean {
                assert_eq!((levels[0], levels[2]), (1.0, 1.0));
                assert_eq!(x.get(0)?.get(0)?.to_vec1::<f32>()?, vec![0.5, -0.5]);
            } else {
                assert_eq!(levels.len(), v);
            }
            seen.borrow_mut().push(clean);
            x * 0.1
        };
        let sampler = Sampler::Ddim { steps: 8, eta: 0.0, spacing: Spacing::Uniform };
        for resample in [1, 2] {
            seen.borrow_mut().clear();
            let request = SampleRequest { clean_steps: 0.25, resample, ..request(&known, &generate, sampler, 2) };
            sample(&predict, &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
            // Every take of a step sees what the step's first take sees.
            let expected: Vec<bool> = (0..8).flat_map(|step| vec![step < 2; resample]).collect();
            assert_eq!(*seen.borrow(), expected, "resample {resample}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_samples_and_another_seed_does_not() {
        let schedule = NoiseSchedule::default();
        let known = zeros(4, 2, &Device::Cpu).unwrap();
        let generate = [true; 4];
        let run = |seed| {
            let predict = |x: &Tensor, _: &[f32]| x * 0.1;
            sample(
                &predict,
                &schedule,
                &request(&known, &generate, Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform }, seed),
                &AtomicBool::new(false),
                &mut |_| {},
            )
            .unwrap()
            .to_vec3::<f32>()
            .unwrap()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn the_opening_s_temperature_scales_the_fresh_noise_of_the_first_steps_only() {
        let schedule = NoiseSchedule::default();
        let known = zeros(4, 2, &Device::Cpu).unwrap();
        let generate = [true; 4];
        let sampler = Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform };
        // What the model sees at every step. Every noise draw takes the same values from the
        // seed's stream whatever its temperature, so runs differ only where a temperature does.
        let inputs = |temperature: f64, opening_noise: Option<OpeningNoise>| {
            let seen = std::cell::RefCell::new(Vec::new());
            let predict = |x: &Tensor, _: &[f32]| {
                seen.borrow_mut().push(x.flatten_all()?.to_vec1::<f32>()?);
                x * 0.1
            };
            let request = SampleRequest { temperature, opening_noise, ..request(&known, &generate, sampler, 3) };
            sample(&predict, &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
            seen.into_inner()
        };
        let opening = |fraction, temperature| Some(OpeningNoise { fraction, temperature });
        // Half the steps calm (temperature 0), the rest at 1; against all ten calm.
        let half = inputs(1.0, opening(0.5, 0.0));
        let all = inputs(1.0, opening(1.0, 0.0));
        // Steps 0-4 draw their fresh noise at 0 in both, step 5 at 1 in the first only: the
        // inputs agree up to step 5 and part at step 6, the first to see step 5's noise.
        assert_eq!(half[..6], all[..6]);
        assert_ne!(half[6], all[6]);
        // The initial noise keeps the request's temperature: the first step sees it.
        assert!(half[0].iter().any(|&v| v != 0.0));
        // An opening at the request's own temperature, or over no steps, changes nothing.
        let plain = inputs(1.0, None);
        assert_eq!(inputs(1.0, opening(0.5, 1.0)), plain);
        assert_eq!(inputs(1.0, opening(0.0, 0.0)), plain);
        assert_ne!(half, plain);
    }

    #[test]
    fn a_set_cancel_flag_stops_sampling() {
        let schedule = NoiseSchedule::default();
        let known = zeros(2, 2, &Device::Cpu).unwrap();
        let cancel = AtomicBool::new(false);
        let mut calls = 0;
        let predict = |x: &Tensor, _: &[f32]| x * 0.0;
        let result =
            sample(&predict, &schedule, &request(&known, &[true, true], Sampler::Ancestral, 1), &cancel, &mut |done| {
                calls += 1;
                if done > 0.01 {
                    cancel.store(true, Ordering::Relaxed);
                }
            });
        assert!(matches!(result, Err(SampleError::Cancelled)));
        assert!(calls < 20);
    }
}
