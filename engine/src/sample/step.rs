//! The step rules of the two samplers, from one noise level to the next given ε̂:
//!
//! - [`Sampler::Ancestral`]: the DDPM ancestral step (Ho et al., 2020, Alg. 2 / eq. 11), with
//!   σ_t² = β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t);
//! - [`Sampler::Ddim`]: the DDIM step (Song et al., 2021, eq. 12), from η = 0 (deterministic) to
//!   η = 1, on a strided subset of the steps ([`timesteps`]).

use candle_core::{Result, Tensor};
use rand_chacha::ChaCha8Rng;

use super::{Sampler, Spacing};
use crate::prior::NoiseSchedule;

/// One reverse step of the chosen sampler from level `t` to level `prev` (before pasting), given
/// the noise estimate `eps` at `x`.
pub fn reverse_step(
    schedule: &NoiseSchedule,
    sampler: Sampler,
    x: &Tensor,
    eps: Tensor,
    (t, prev): (usize, usize),
    rng: &mut ChaCha8Rng,
    noise: &dyn Fn(&mut ChaCha8Rng) -> Result<Tensor>,
) -> Result<Tensor> {
    let (alpha_bar, alpha_bar_prev) = (schedule.alpha_bar(t), schedule.alpha_bar(prev));
    Ok(match sampler {
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
