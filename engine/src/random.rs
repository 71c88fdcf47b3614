//! Seeded random tensors: the standard-normal draws of the sampler's noise, and a model's
//! deterministic initial weights. Both depend on their seed alone, so a run, a sample or a test
//! is reproduced exactly from it.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A `[rows, cols]` tensor of standard normal draws.
pub fn normal_tensor(rng: &mut ChaCha8Rng, rows: usize, cols: usize, device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = (0..rows * cols).map(|_| StandardNormal.sample(rng)).collect();
    Tensor::from_vec(values, (rows, cols), device)
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
        // Biases and the copy gains (the model starts as one that barely copies) start at 0.
        let std = if name.ends_with("bias") || name.ends_with("gain") {
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

#[cfg(test)]
mod tests {
    use super::*;

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
