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
}
