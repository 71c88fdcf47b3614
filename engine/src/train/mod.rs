//! Training on the CPU: what the VAE and the prior runs share (seeded initialization, the
//! learning-rate schedule, errors), plus each model's loop.
//!
//! Runs are deterministic given their seed: every random draw of step `s` comes from a
//! generator seeded with (seed, s), so a resumed run draws exactly what an uninterrupted one
//! would have.

pub mod adamw;
pub mod average;
pub mod prior;
pub mod run;
pub mod vae;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::checkpoint::CheckpointError;

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

/// Overwrites every variable with draws from a generator seeded by `seed`, in name order, so
/// the initial weights depend on the seed alone: biases 0, embeddings N(0, 1), other weights
/// N(0, 1/fan_in) (LeCun), which keeps residual ReLU stacks at a stable scale.
pub fn seeded_init(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("var map lock is never poisoned here");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        // Biases, the copy gains (the model starts as one that barely copies) and the prior's
        // places in the tune (stored scaled down; it starts knowing only sequence positions)
        // start at 0.
        let std = if name.ends_with("bias") || name.ends_with("gain") || name == "tune_position" {
            0.0
        } else if name.contains("embed") || dims.len() < 2 {
            1.0
        } else {
            1.0 / (dims[1] as f32).sqrt()
        };
        let values: Vec<f32> =
            (0..count).map(|_| std * Distribution::<f32>::sample(&StandardNormal, &mut rng)).collect();
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// Panics naming the first weight of `varmap` that `loss` sends no gradient to: an op without a
/// backward pass silently cuts a model off from training (it did so to the prior's attention).
#[cfg(test)]
pub(crate) fn assert_every_weight_gets_a_gradient(varmap: &VarMap, loss: &Tensor) {
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

/// A `[rows, cols]` tensor of standard normal draws.
pub fn normal_tensor(rng: &mut ChaCha8Rng, rows: usize, cols: usize, device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = (0..rows * cols).map(|_| StandardNormal.sample(rng)).collect();
    Tensor::from_vec(values, (rows, cols), device)
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
    fn seeded_init_depends_on_the_seed_alone() {
        let make = |seed| {
            let varmap = VarMap::new();
            let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &Device::Cpu);
            let layer = candle_nn::linear(4, 3, vb.pp("layer")).unwrap();
            seeded_init(&varmap, seed).unwrap();
            layer.weight().to_vec2::<f32>().unwrap()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
    }
}
