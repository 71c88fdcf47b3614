//! `rebar train vae`: trains the 2-bar melody VAE on a dataset cache's distinct windows with the
//! free-bits ELBO (MusicVAE eq. 3–4), KL annealing and random transposition, checkpointing
//! atomically and resuming exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::run::{half_weights, to_json, LogLine, Metrics, RunControl, Schedule, Task, TrainOptions};
use super::TrainError;
use crate::eval::recon::reconstruction_accuracy;
use crate::train::vae_loss::{kl_per_dimension, vae_loss};
use rebar_engine::checkpoint;
use rebar_engine::melody::tokens::{Token, MAX_PITCH, MIN_PITCH};
use rebar_engine::random::{normal_tensor, seeded_init};
use rebar_engine::vae::tools::{density_vector, DENSITY};
use rebar_engine::vae::IntervalPrior;
use rebar_engine::vae::{windows_tensor, LatentPreprocess, MelodyVae, Vae, VaeConfig};
use rebar_engine::windows::{Window, WINDOW_STEPS};

/// Format name of a VAE training checkpoint (weights + optimizer state).
pub const TRAIN_FORMAT: &str = "rebar-vae-train";
pub use super::run::TRAIN_VERSION;

/// How to train the VAE.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VaeTrainOptions {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// β, the KL weight once annealed.
    pub beta: f64,
    /// Free bits τ in nats per window.
    pub free_bits: f64,
    /// Steps over which β rises linearly from 0.
    pub kl_anneal_steps: u64,
    /// Largest random transposition in semitones, either way (kept inside MIDI 21..=108).
    pub transpose: u8,
}

impl TrainOptions for VaeTrainOptions {
    fn schedule(&mut self) -> &mut Schedule {
        &mut self.schedule
    }
}

impl Default for VaeTrainOptions {
    fn default() -> Self {
        Self {
            schedule: Schedule {
                steps: 7_000,
                batch: 512,
                lr: 1e-3,
                warmup: 500,
                grad_clip: 1.0,
                seed: 0,
                eval_every: 250,
                checkpoint_every: 500,
                average_decay: 0.0,
            },
            beta: 0.2,
            free_bits: 64.0,
            kl_anneal_steps: 2_000,
            transpose: 6,
        }
    }
}

/// What to train on and how.
pub struct VaeRun<'a> {
    pub config: VaeConfig,
    pub options: VaeTrainOptions,
    pub train: &'a [Window],
    pub valid: &'a [Window],
    /// Free-form provenance stored with the weights (data source, licence notes).
    pub provenance: serde_json::Value,
    pub device: Device,
}

/// The VAE's part in the shared training loop.
struct VaeTask<'a> {
    run: VaeRun<'a>,
    vae: Vae,
    varmap: VarMap,
    model_path: PathBuf,
}

impl Task for VaeTask<'_> {
    type Config = VaeConfig;
    type Options = VaeTrainOptions;
    const CHECKPOINT_FORMAT: &'static str = TRAIN_FORMAT;

    fn config(&self) -> &VaeConfig {
        &self.run.config
    }

    fn options(&mut self) -> &mut VaeTrainOptions {
        &mut self.run.options
    }

    fn loss(&mut self, step: u64, rng: &mut ChaCha8Rng) -> Result<(Tensor, Metrics), TrainError> {
        let (options, device) = (&self.run.options, &self.run.device);
        let batch = options.schedule.batch;
        let ids = sample_batch(rng, self.run.train, batch, options.transpose, device)?;
        let (mu, log_var) = self.vae.encoder.forward(&ids)?;
        let eps = normal_tensor(rng, batch, self.run.config.latent, device)?;
        let z = (&mu + ((&log_var * 0.5)?.exp()? * eps)?)?;
        let logits = self.vae.decoder.forward(&z)?;
        let beta = options.beta * (step as f64 / options.kl_anneal_steps.max(1) as f64).min(1.0);
        let loss = vae_loss(&logits, &ids, &mu, &log_var, beta, options.free_bits)?;
        let metrics = Metrics::from([
            ("reconstruction".into(), f64::from(loss.reconstruction.to_scalar::<f32>()?)),
            ("kl".into(), f64::from(loss.kl.to_scalar::<f32>()?)),
            ("beta".into(), beta),
        ]);
        Ok((loss.total, metrics))
    }

    fn evaluate(&mut self) -> Result<Metrics, TrainError> {
        if self.run.valid.is_empty() {
            return Ok(Metrics::new());
        }
        let accuracy = reconstruction_accuracy(&self.vae, self.run.valid, &self.run.device)?;
        Ok(Metrics::from([("valid_accuracy".into(), accuracy)]))
    }

    fn export(&mut self, step: u64, trained_seconds: f64) -> Result<(), TrainError> {
        let mut provenance = self.run.provenance.clone();
        provenance["steps"] = step.into();
        provenance["trained_seconds"] = trained_seconds.into();
        provenance["options"] = serde_json::to_value(&self.run.options).unwrap_or_default();
        export_model(&self.model_path, &self.vae, &self.varmap, self.run.train, &provenance, &self.run.device)?;
        Ok(())
    }
}

/// Trains, checkpoints and exports `vae.safetensors` into the run directory; returns the final
/// log line.
pub fn train_vae(run: VaeRun<'_>, control: &RunControl<'_>) -> Result<LogLine, TrainError> {
    if run.train.is_empty() {
        return Err(TrainError::Data("the training cache has no windows".into()));
    }
    let varmap = VarMap::new();
    let vae = Vae::new(&run.config, VarBuilder::from_varmap(&varmap, DType::F32, &run.device))?;
    seeded_init(&varmap, run.options.schedule.seed)?;
    let model_path = control.out_dir.join("vae.safetensors");
    let mut task = VaeTask { run, vae, varmap: varmap.clone(), model_path };
    super::run::run(&mut task, &varmap, control)
}

/// A batch of windows drawn with replacement, each transposed by a random amount that keeps it
/// on the keyboard: `[batch, steps]` u32.
fn sample_batch(
    rng: &mut impl Rng,
    windows: &[Window],
    batch: usize,
    transpose: u8,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let mut ids = Vec::with_capacity(batch * WINDOW_STEPS);
    for _ in 0..batch {
        let window = &windows[rng.random_range(0..windows.len())];
        let shift = random_transposition(rng, window, transpose);
        ids.extend(window.iter().map(|&id| u32::from(transpose_token(id, shift))));
    }
    Tensor::from_vec(ids, (batch, WINDOW_STEPS), device)
}

/// A random shift from [`transpositions`] (0 for a window without notes).
pub fn random_transposition(rng: &mut impl Rng, window: &[u8], limit: u8) -> i32 {
    transpositions(window, limit).map_or(0, |shifts| rng.random_range(shifts))
}

/// The shifts in −limit..=limit semitones that keep every note of `ids` in MIDI 21..=108; None
/// when `ids` has no notes.
pub fn transpositions(ids: &[u8], limit: u8) -> Option<std::ops::RangeInclusive<i32>> {
    let pitches = ids.iter().filter_map(|&id| match Token::from_id(id) {
        Token::On(pitch) => Some(i32::from(pitch)),
        _ => None,
    });
    let (low, high) = pitches.fold((i32::MAX, i32::MIN), |(lo, hi), p| (lo.min(p), hi.max(p)));
    if low > high {
        return None;
    }
    let limit = i32::from(limit);
    Some(-limit.min(low - i32::from(MIN_PITCH))..=limit.min(i32::from(MAX_PITCH) - high))
}

/// A token moved by `shift` semitones (holds and rests stay).
pub fn transpose_token(id: u8, shift: i32) -> u8 {
    match Token::from_id(id) {
        Token::On(pitch) => {
            Token::On((i32::from(pitch) + shift).clamp(i32::from(MIN_PITCH), i32::from(MAX_PITCH)) as u8).id()
        }
        _ => id,
    }
}

/// Fits the latent preprocessing on the training windows and writes the usable model file.
pub fn export_model(
    path: &Path,
    vae: &Vae,
    varmap: &VarMap,
    train: &[Window],
    provenance: &serde_json::Value,
    device: &Device,
) -> Result<LatentPreprocess, TrainError> {
    let preprocess = fit_preprocess(vae, train, device)?;
    let model = MelodyVae {
        vae: vae.clone(),
        preprocess: None,
        provenance: serde_json::Value::Null,
        attributes: BTreeMap::new(),
        intervals: None,
        device: device.clone(),
    };
    let attributes = BTreeMap::from([(DENSITY.to_string(), density_vector(&model, train)?)]);
    let metadata = HashMap::from([
        ("config".into(), to_json(&vae.config)),
        ("preprocess".into(), to_json(&preprocess)),
        ("attributes".into(), to_json(&attributes)),
        ("intervals".into(), to_json(&IntervalPrior::fit(train))),
        ("provenance".into(), to_json(provenance)),
    ]);
    checkpoint::save(path, &half_weights(varmap)?, rebar_engine::vae::FORMAT, rebar_engine::vae::VERSION, metadata)?;
    Ok(preprocess)
}

/// Posterior statistics over the windows, and the selection and scaling of `latent.rs`.
pub fn fit_preprocess(vae: &Vae, windows: &[Window], device: &Device) -> candle_core::Result<LatentPreprocess> {
    let mut means = Vec::new();
    let mut kl_sum = vec![0f64; vae.config.latent];
    for chunk in windows.chunks(2048) {
        let (mu, log_var) = vae.encoder.forward(&windows_tensor(chunk, device)?)?;
        for (d, kl) in kl_per_dimension(&mu, &log_var)?.to_vec1::<f32>()?.into_iter().enumerate() {
            kl_sum[d] += f64::from(kl) * chunk.len() as f64;
        }
        means.push(mu);
    }
    let mu = Tensor::cat(&means, 0)?;
    let kl: Vec<f32> = kl_sum.iter().map(|s| (s / windows.len() as f64) as f32).collect();
    LatentPreprocess::fit(&mu, &kl)
}
