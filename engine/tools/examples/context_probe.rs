//! Does the prior use the other latents? The ε loss of eq. 6 at fixed noise steps on real
//! 8-latent crops of the validation tunes, against the same crops with each position's latent
//! taken from another tune (same marginals, no relation between neighbours). A shuffled/real
//! ratio of 1 means the model ignores its context; BENCHMARKS.md tabulates it per prior.
//!
//! `cargo run --release -p rebar-tools --example context_probe -- VALID_CACHE PRIOR_FILE`
mod probe;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rebar_engine::random::normal_tensor;

fn main() -> anyhow::Result<()> {
    let probe::Probe { prior, crops, dim: d } = probe::load("context_probe")?;
    let device = Device::Cpu;
    let len = probe::CROP;
    let n = crops.len();
    let real: Vec<f32> = crops.concat();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut shuffled = vec![0f32; real.len()];
    for p in 0..len {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        for (b, &src) in order.iter().enumerate() {
            let (dst, from) = ((b * len + p) * d, (src * len + p) * d);
            shuffled[dst..dst + d].copy_from_slice(&real[from..from + d]);
        }
    }
    let valid = Tensor::ones((n, len), candle_core::DType::F32, &device)?;
    for t in [50usize, 100, 200, 300, 400, 500, 700, 900] {
        let ab = prior.schedule.alpha_bar(t);
        let mut rng = ChaCha8Rng::seed_from_u64(t as u64);
        let eps = normal_tensor(&mut rng, n * len, d, &device)?.reshape((n, len, d))?;
        let mut losses = Vec::new();
        for x0 in [&real, &shuffled] {
            let x0 = Tensor::from_vec(x0.clone(), (n, len, d), &device)?;
            let xt = ((x0 * ab.sqrt())? + (&eps * (1.0 - ab).sqrt())?)?;
            let pred = prior.model.forward(&xt, &vec![ab.sqrt() as f32; n], &valid)?;
            losses.push((pred - &eps)?.sqr()?.mean_all()?.to_scalar::<f32>()?);
        }
        println!(
            "t {t:4} alpha_bar {ab:.3}  real {:.4}  shuffled {:.4}  ratio {:.3}",
            losses[0],
            losses[1],
            losses[1] / losses[0]
        );
    }
    Ok(())
}
