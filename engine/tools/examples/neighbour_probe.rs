//! How well the prior knows a latent from its neighbours. For every interior latent of the
//! validation tunes' first 8, noised alone to step t beside its clean neighbours (the setting the
//! prior was trained for with clean context, and the one infilling and the revision pass sample
//! in), this compares the mean squared error of the model's x̂₀ with that of a linear-Gaussian
//! estimator: a least-squares regression of a latent on its two neighbours, fitted on the
//! training tunes, combined with the noisy latent itself by its signal-to-noise ratio. Where the
//! regression does better, the model has not learnt what the neighbours say about a latent at
//! that noise level. Errors are reported over all dimensions and over the five that track a
//! window's mean note length most closely.
//!
//! `cargo run --release -p rebar-tools --example neighbour_probe -- TRAIN_CACHE VALID_CACHE PRIOR_FILE`
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rebar_engine::prior::TrainedPrior;
use rebar_engine::random::normal_tensor;
use rebar_engine::vae::MelodyVae;
use rebar_tools::data::cache::load_dataset;
use rebar_tools::train::prior::encode_tunes;

/// Latents per validation crop.
const CROP: usize = 8;
/// Ridge penalty of the regression (the features are near unit variance).
const RIDGE: f64 = 1e-3;

/// Solves the symmetric positive definite system `a x = b` for every column of `b` (Cholesky).
fn solve(mut a: Vec<Vec<f64>>, b: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let n = a.len();
    for j in 0..n {
        let diag = (a[j][j] - (0..j).map(|k| a[j][k] * a[j][k]).sum::<f64>()).sqrt();
        a[j][j] = diag;
        for i in j + 1..n {
            a[i][j] = (a[i][j] - (0..j).map(|k| a[i][k] * a[j][k]).sum::<f64>()) / diag;
        }
    }
    b.into_iter()
        .map(|col| {
            let mut y = vec![0.0; n];
            for i in 0..n {
                y[i] = (col[i] - (0..i).map(|k| a[i][k] * y[k]).sum::<f64>()) / a[i][i];
            }
            let mut x = vec![0.0; n];
            for i in (0..n).rev() {
                x[i] = (y[i] - (i + 1..n).map(|k| a[k][i] * x[k]).sum::<f64>()) / a[i][i];
            }
            x
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() == 3, "usage: neighbour_probe TRAIN_CACHE VALID_CACHE PRIOR_FILE");
    let device = Device::Cpu;
    let vae = MelodyVae::embedded(&device)?;
    let prior = TrainedPrior::load(std::path::Path::new(&args[2]), &device)?;
    let scale = prior.model.config.data_scale;
    let scaled = |path: &str| -> anyhow::Result<(Vec<Vec<f64>>, usize)> {
        let data = encode_tunes(&vae, &load_dataset(std::path::Path::new(path))?.tunes, 0)?;
        let rows = data.sequences.iter().map(|s| s.iter().map(|v| f64::from(*v) * scale).collect()).collect();
        Ok((rows, data.dim))
    };
    let (train, d) = scaled(&args[0])?;
    let (valid, _) = scaled(&args[1])?;

    // Least squares of a latent on [previous, next, 1] over every interior latent of the training
    // tunes.
    let features = 2 * d + 1;
    let mut xtx = vec![vec![0.0; features]; features];
    let mut xty = vec![vec![0.0; features]; d];
    let feature_row = |s: &[f64], k: usize| -> Vec<f64> {
        let mut f = s[(k - 1) * d..k * d].to_vec();
        f.extend_from_slice(&s[(k + 1) * d..(k + 2) * d]);
        f.push(1.0);
        f
    };
    for s in &train {
        for k in 1..s.len() / d - 1 {
            let f = feature_row(s, k);
            for i in 0..features {
                for j in 0..features {
                    xtx[i][j] += f[i] * f[j];
                }
                for (o, row) in xty.iter_mut().enumerate() {
                    row[i] += f[i] * s[k * d + o];
                }
            }
        }
    }
    for (i, row) in xtx.iter_mut().enumerate() {
        row[i] += RIDGE;
    }
    let weights = solve(xtx, xty);
    let predict = |s: &[f64], k: usize| -> Vec<f64> {
        let f = feature_row(s, k);
        weights.iter().map(|w| w.iter().zip(&f).map(|(a, b)| a * b).sum()).collect()
    };
    // The regression's residual variance per dimension, on the training tunes.
    let mut residual = vec![0.0; d];
    let mut count = 0.0;
    for s in &train {
        for k in 1..s.len() / d - 1 {
            for (o, p) in predict(s, k).iter().enumerate() {
                residual[o] += (s[k * d + o] - p).powi(2);
            }
            count += 1.0;
        }
    }
    residual.iter_mut().for_each(|r| *r /= count);

    // The dimensions that track a window's mean note length most closely (see rhythm_probe).
    let rhythm: [usize; 5] = [6, 14, 34, 62, 51];
    let crops: Vec<&Vec<f64>> = valid.iter().filter(|s| s.len() >= CROP * d).collect();
    let n = crops.len();
    println!(
        "{n} validation crops; regression residual variance {:.4} (all), {:.4} (rhythm dimensions)",
        residual.iter().sum::<f64>() / d as f64,
        rhythm.iter().map(|&o| residual[o]).sum::<f64>() / 5.0
    );
    println!("    t  alpha_bar | x0 error: model   linear  (rhythm dims: model  linear)");
    let valid_mask = Tensor::ones((n, CROP), candle_core::DType::F32, &device)?;
    for t in [100usize, 300, 500, 700, 800, 900, 950, 999] {
        let ab = prior.schedule.alpha_bar(t);
        let (mut model_err, mut linear_err) = ([0.0; 2], [0.0; 2]);
        for k in 1..CROP - 1 {
            let mut rng = ChaCha8Rng::seed_from_u64((t * 16 + k) as u64);
            let eps = normal_tensor(&mut rng, n, d, &device)?.to_vec2::<f32>()?;
            let mut x_t = Vec::with_capacity(n * CROP * d);
            let mut levels = Vec::with_capacity(n * CROP);
            for (c, s) in crops.iter().enumerate() {
                for p in 0..CROP {
                    for o in 0..d {
                        let x0 = s[p * d + o];
                        x_t.push(if p == k {
                            (ab.sqrt() * x0 + (1.0 - ab).sqrt() * f64::from(eps[c][o])) as f32
                        } else {
                            x0 as f32
                        });
                    }
                    levels.push(if p == k { ab.sqrt() as f32 } else { 1.0 });
                }
            }
            let input = Tensor::from_vec(x_t.clone(), (n, CROP, d), &device)?;
            let predicted = prior.model.forward(&input, &levels, &valid_mask)?.to_vec3::<f32>()?;
            for (c, s) in crops.iter().enumerate() {
                let mean = predict(s, k);
                for o in 0..d {
                    let truth = s[k * d + o];
                    let xt = f64::from(x_t[(c * CROP + k) * d + o]);
                    let model = (xt - (1.0 - ab).sqrt() * f64::from(predicted[c][k][o])) / ab.sqrt();
                    // The Gaussian posterior mean of x0 given the regression N(mean, residual)
                    // and the observation x_t = √ᾱ x0 + √(1 − ᾱ) ε.
                    let precision = 1.0 / residual[o] + ab / (1.0 - ab);
                    let linear = (mean[o] / residual[o] + ab.sqrt() * xt / (1.0 - ab)) / precision;
                    let is_rhythm = usize::from(rhythm.contains(&o));
                    for (slot, weight) in [(0, 1.0), (1, is_rhythm as f64)] {
                        model_err[slot] += weight * (model - truth).powi(2);
                        linear_err[slot] += weight * (linear - truth).powi(2);
                    }
                }
            }
        }
        let (all, few) = ((n * (CROP - 2) * d) as f64, (n * (CROP - 2) * rhythm.len()) as f64);
        println!(
            "  {t:3}  {ab:.4}    |          {:.4}   {:.4}  ({:.4}  {:.4})",
            model_err[0] / all,
            linear_err[0] / all,
            model_err[1] / few,
            linear_err[1] / few
        );
    }
    Ok(())
}
