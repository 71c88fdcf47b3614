//! Training on the CPU: what the VAE and the prior runs share (the per-step generator, the
//! learning-rate schedule, errors), plus each model's loss and loop.
//!
//! Runs are deterministic given their seed: every random draw of step `s` comes from a
//! generator seeded with (seed, s), so a resumed run draws exactly what an uninterrupted one
//! would have.

pub mod adamw;
pub mod average;
pub mod prior;
pub mod run;
pub mod vae;
pub mod vae_loss;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use rebar_engine::checkpoint::CheckpointError;

/// What can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("{0}")]
    Data(String),
}

/// The generator for everything random at one step of one run.
pub fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    // Mix the step in with an odd constant so nearby (seed, step) pairs give unrelated streams.
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step)
}

/// Panics naming the first weight of `varmap` that `loss` sends no gradient to: an op without a
/// backward pass silently cuts a model off from training (it did so to the prior's attention).
#[cfg(test)]
pub(crate) fn assert_every_weight_gets_a_gradient(varmap: &candle_nn::VarMap, loss: &candle_core::Tensor) {
    let grads = loss.backward().unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        let norm = grads
            .get(var.as_tensor())
            .map(|g| g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap())
            .unwrap_or(0.0);
        assert!(norm > 0.0, "{name} gets no gradient");
    }
}

/// Linear warm-up to `base` over `warmup` steps, then a cosine decay to 10% of `base` at `total`.
pub fn learning_rate(step: u64, total: u64, base: f64, warmup: u64) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let progress = ((step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64).min(1.0);
    base * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_learning_rate_warms_up_then_decays_to_a_tenth() {
        assert!((learning_rate(0, 1000, 1.0, 10) - 0.1).abs() < 1e-12);
        assert!((learning_rate(9, 1000, 1.0, 10) - 1.0).abs() < 1e-12);
        assert!((learning_rate(1000, 1000, 1.0, 10) - 0.1).abs() < 1e-12);
        assert!(learning_rate(500, 1000, 1.0, 10) < 1.0 && learning_rate(500, 1000, 1.0, 10) > 0.1);
    }

    #[test]
    fn every_prior_weight_gets_a_gradient() {
        use candle_core::{DType, Device, Tensor};
        use candle_nn::{VarBuilder, VarMap};
        use rebar_engine::prior::{PriorConfig, PriorTransformer};

        let device = Device::Cpu;
        let varmap = VarMap::new();
        let cfg = PriorConfig::tiny(6);
        let model = PriorTransformer::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
        rebar_engine::random::seeded_init(&varmap, 3).unwrap();
        // Gains away from 0, so the copy bias's own gradient path is exercised too.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.ends_with("copy_gain") {
                var.set(&Tensor::new(&[0.1f32, -0.2], &device).unwrap()).unwrap();
            }
            if name == "pointer.gain" {
                var.set(&Tensor::new(&[0.3f32], &device).unwrap()).unwrap();
            }
            if name == "repeats.gain" {
                var.set(&Tensor::new(&[0.4f32], &device).unwrap()).unwrap();
            }
        }
        // Latent 3 repeats latent 1, so the repeat head's pointer has a truth to learn.
        let x = Tensor::randn(0f32, 1.0, (2, 4, 6), &device).unwrap();
        let x = Tensor::cat(&[x.narrow(1, 0, 3).unwrap(), x.narrow(1, 1, 1).unwrap()], 1).unwrap();
        let valid = Tensor::ones((2, 4), DType::F32, &device).unwrap();
        let (eps, repeats) = model.forward_with_repeats(&x, &[0.5, 0.8], &valid, true).unwrap();
        let repeats = rebar_engine::prior::repeats::negative_log_likelihood(&repeats.unwrap(), &x).unwrap();
        let loss = (eps.sqr().unwrap().sum_all().unwrap() + repeats.sum_all().unwrap()).unwrap();
        crate::train::assert_every_weight_gets_a_gradient(&varmap, &loss);
    }
}
