//! One ε-prediction of the prior on the plugin's typical batch: 4 variations of a 32-bar clip
//! (16 latents). A denoising step is this plus a few element-wise ops, so the sampler's latency
//! is about `steps ×` this figure. The shipped weights are measured, and randomly initialised
//! candidate sizes beside them, which is how the shipped size was chosen.
//! `cargo bench -p rebar-engine --bench prior`.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion};
use rebar_engine::prior::{PriorConfig, PriorTransformer, TrainedPrior};

fn predict_noise(c: &mut Criterion) {
    let device = Device::Cpu;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/prior.safetensors");
    let dim = 64;
    let x_t = Tensor::randn(0f32, 1.0, (4, 16, dim), &device).unwrap();
    let valid = Tensor::ones((4, 16), DType::F32, &device).unwrap();
    match TrainedPrior::load(std::path::Path::new(path), &device) {
        Ok(prior) => {
            c.bench_function("prior forward [4 variations, 16 latents], shipped", |b| {
                b.iter(|| prior.model.forward(&x_t, &[0.5; 4], &valid).unwrap())
            });
        }
        Err(e) => eprintln!("not measuring the shipped prior: {e}"),
    };

    let candidates =
        [(256, 3, 768, 2), (256, 3, 512, 1), (192, 4, 384, 1), (192, 3, 384, 1), (128, 4, 512, 1), (128, 4, 256, 1)];
    for (width, layers, ff_width, output_layers) in candidates {
        let cfg = PriorConfig { width, layers, ff_width, output_layers, ..PriorConfig::small(dim) };
        let varmap = VarMap::new();
        let model = PriorTransformer::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
        let name = format!("prior forward [4, 16], width {width} layers {layers} ff {ff_width} out {output_layers}");
        c.bench_function(&name, |b| b.iter(|| model.forward(&x_t, &[0.5; 4], &valid).unwrap()));
    }
}

criterion_group!(benches, predict_noise);
criterion_main!(benches);
