//! Does the prior copy? Real tunes repeat 2-bar windows note for note (42% of the windows of the
//! validation tunes' first 16 bars repeat another, `rebar eval`'s `shape.repeated_windows`).
//! For every latent of the validation tunes' first 8 latents, noised alone to step t beside its
//! clean neighbours (the clean-context setting), this prints the mean squared error of the
//! model's x̂₀ separately for latents that repeat another latent of the crop and for those that
//! don't. A model that copies reconstructs the repeats far better, even at high noise.
//!
//! `cargo run --release -p rebar-tools --example copy_probe -- VALID_CACHE PRIOR_FILE`
mod probe;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rebar_engine::random::normal_tensor;

use probe::CROP;

fn main() -> anyhow::Result<()> {
    let probe::Probe { prior, crops, dim: d } = probe::load("copy_probe")?;
    let device = Device::Cpu;
    let n = crops.len();
    let latent = |c: usize, p: usize| &crops[c][p * d..(p + 1) * d];
    let repeats: Vec<Vec<bool>> = (0..n)
        .map(|c| (0..CROP).map(|p| (0..CROP).any(|q| q != p && latent(c, q) == latent(c, p))).collect())
        .collect();
    let count = repeats.iter().flatten().filter(|&&r| r).count();
    println!("{n} crops, {count} of {} latents repeat another", n * CROP);
    let x0 = Tensor::from_vec(crops.concat(), (n, CROP, d), &device)?;
    let valid = Tensor::ones((n, CROP), candle_core::DType::F32, &device)?;
    for t in [50usize, 200, 400, 600, 800, 1000] {
        let ab = prior.schedule.alpha_bar(t);
        let mut rng = ChaCha8Rng::seed_from_u64(t as u64);
        let (mut repeat_error, mut other_error) = (0.0, 0.0);
        for noisy in 0..CROP {
            let mut mask = vec![0f32; CROP];
            mask[noisy] = 1.0;
            let mask = Tensor::from_vec(mask, (1, CROP, 1), &device)?;
            let eps = normal_tensor(&mut rng, n * CROP, d, &device)?.reshape((n, CROP, d))?;
            let noised = ((&x0 * ab.sqrt())? + (&eps * (1.0 - ab).sqrt())?)?;
            let xt = (x0.broadcast_mul(&(1.0 - &mask)?)? + noised.broadcast_mul(&mask)?)?;
            let levels: Vec<f32> =
                (0..n).flat_map(|_| (0..CROP).map(|p| if p == noisy { ab.sqrt() as f32 } else { 1.0 })).collect();
            let pred = prior.model.forward(&xt, &levels, &valid)?;
            let x0_hat = ((xt.narrow(1, noisy, 1)? - (pred.narrow(1, noisy, 1)? * (1.0 - ab).sqrt())?)? / ab.sqrt())?;
            let errors = (x0_hat - x0.narrow(1, noisy, 1)?)?.sqr()?.mean(2)?.flatten_all()?.to_vec1::<f32>()?;
            for (c, e) in errors.iter().enumerate() {
                if repeats[c][noisy] {
                    repeat_error += f64::from(*e);
                } else {
                    other_error += f64::from(*e);
                }
            }
        }
        println!(
            "t {t:4}  x0 error: repeated latents {:.4}  others {:.4}",
            repeat_error / count.max(1) as f64,
            other_error / (n * CROP - count).max(1) as f64
        );
    }
    Ok(())
}
