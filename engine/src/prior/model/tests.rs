//! The transformer's attention, copy bias and pointer, on random weights.

use super::*;
use candle_nn::VarMap;

fn largest_difference(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn sinusoids_follow_equation_8() {
    let pe = sinusoids(&[0.0, 3.0], 4, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(pe[0], vec![0.0, 0.0, 1.0, 1.0]);
    assert!((pe[1][0] - 3f32.sin()).abs() < 1e-6);
    assert!((pe[1][1] - (3.0 / 100f32).sin()).abs() < 1e-6);
}

#[test]
fn padding_does_not_change_the_prediction_for_real_latents() {
    let varmap = VarMap::new();
    let cfg = PriorConfig::tiny(6);
    let model = PriorTransformer::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
    let x = Tensor::randn(0f32, 1.0, (1, 5, 6), &Device::Cpu).unwrap();
    let short = model
        .forward(&x.narrow(1, 0, 3).unwrap(), &[0.5], &Tensor::ones((1, 3), DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    let valid = Tensor::new(&[[1f32, 1.0, 1.0, 0.0, 0.0]], &Device::Cpu).unwrap();
    let padded = model.forward(&x, &[0.5], &valid).unwrap().narrow(1, 0, 3).unwrap();
    let diff = largest_difference(&short, &padded);
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn tracked_and_untracked_attention_weights_agree() {
    let scores = Tensor::randn(0f32, 3.0, (2, 4, 5, 5), &Device::Cpu).unwrap();
    let tracked = candle_core::Var::from_tensor(&scores).unwrap();
    assert!(tracked.as_tensor().track_op() && !scores.track_op());
    let difference =
        largest_difference(&attention_weights(tracked.as_tensor()).unwrap(), &attention_weights(&scores).unwrap());
    assert!(difference < 1e-6, "{difference}");
}

#[test]
fn the_copy_bias_separates_noisy_copies_from_different_latents() {
    use rand::SeedableRng;
    let device = Device::Cpu;
    // Wide, so the noise's share of a distance varies little (χ² with 256 degrees of freedom).
    let d = 256;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut normal = |rows| crate::random::normal_tensor(&mut rng, rows, d, &device).unwrap().unsqueeze(0).unwrap();
    let a = 0.8f32; // σ² = (1 − a²) / a² ≈ 0.56 per dimension
    let sigma = (1.0 - a * a).sqrt();
    let (z, other) = (normal(1), normal(1));
    let clean = Tensor::cat(&[&z, &z, &other], 1).unwrap();
    let x = ((clean * f64::from(a)).unwrap() + (normal(3) * f64::from(sigma)).unwrap()).unwrap();
    let levels = Tensor::new(&[[a, a, a]], &device).unwrap();
    let bias = Copies::new(&x, &levels).unwrap().bias.squeeze(0).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    assert!(bias[0][1] > -0.3, "a noisy copy looks like one latent: {bias:?}");
    assert!(bias[0][2] < bias[0][1] - 0.6, "a different latent lies beyond the noise: {bias:?}");
    assert_eq!(bias[1][1], 0.0);

    // Clean beside clean: only an exact copy counts.
    let clean = Tensor::cat(&[&z, &z, &other], 1).unwrap();
    let bias = Copies::new(&clean, &Tensor::new(&[[1f32, 1.0, 1.0]], &device).unwrap()).unwrap().bias;
    let bias = bias.squeeze(0).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    assert!(bias[0][1].abs() < 1e-3 && bias[0][2] < -3.0, "{bias:?}");
}

#[test]
fn an_open_pointer_reproduces_the_clean_latent_a_noisy_one_repeats() {
    let device = Device::Cpu;
    let d = 16;
    let varmap = VarMap::new();
    let cfg = PriorConfig::tiny(d);
    let model = PriorTransformer::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
    crate::random::seeded_init(&varmap, 5).unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        match name.as_str() {
            // The gate wide open whatever the features, the pointer sharp.
            "pointer.gate.bias" => var.set(&Tensor::new(&[40f32], &device).unwrap()).unwrap(),
            "pointer.gain" => var.set(&Tensor::new(&[5f32], &device).unwrap()).unwrap(),
            _ => {}
        }
    }
    let z = Tensor::randn(0f32, 1.0, (1, 1, d), &device).unwrap();
    let other = Tensor::randn(0f32, 1.0, (1, 1, d), &device).unwrap();
    let (a, sigma) = (0.8f64, 0.6f64);
    let noisy = ((&z * a).unwrap() + (Tensor::randn(0f32, 1.0, (1, 1, d), &device).unwrap() * sigma).unwrap()).unwrap();
    let x = Tensor::cat(&[&other, &z, &noisy], 1).unwrap();
    let valid = Tensor::ones((1, 3), DType::F32, &device).unwrap();
    let eps = model.forward(&x, &[1.0, 1.0, a as f32], &valid).unwrap();
    let x0 = ((noisy - (eps.narrow(1, 2, 1).unwrap() * sigma).unwrap()).unwrap() / a).unwrap();
    let miss = largest_difference(&x0, &z);
    assert!(miss < 1e-3, "x̂₀ misses the repeated latent by {miss}");
}

#[test]
fn copy_attention_at_zero_gain_computes_what_the_model_without_it_does() {
    let device = Device::Cpu;
    let without = PriorConfig { copy_attention: false, copy_pointer: false, ..PriorConfig::tiny(6) };
    let varmap = VarMap::new();
    let plain = PriorTransformer::new(&without, VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
    let with = PriorConfig { copy_attention: true, ..without.clone() };
    let copying = PriorTransformer::new(&with, VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 4, 6), &device).unwrap();
    let valid = Tensor::ones((2, 4), DType::F32, &device).unwrap();
    let levels = [0.3, 1.0, 0.3, 0.3, 0.7, 0.7, 1.0, 0.7];
    let difference = largest_difference(
        &plain.forward(&x, &levels, &valid).unwrap(),
        &copying.forward(&x, &levels, &valid).unwrap(),
    );
    assert_eq!(difference, 0.0);
    let gains: Vec<String> =
        varmap.data().lock().unwrap().keys().filter(|name| name.ends_with("copy_gain")).cloned().collect();
    assert_eq!(gains, ["layers.0.attention.copy_gain"]);
}
