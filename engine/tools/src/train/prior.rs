//! `rebar train prior`: trains the diffusion prior (Mittal et al., 2021, §2.1, §3.1) on random
//! crops of 2–16 consecutive latents of the training tunes, with the L2 ε loss of eq. 6 at
//! WaveGrad's continuous noise levels. Transposition augmentation goes through the VAE: every
//! tune is encoded once at each transposition that keeps it on the keyboard.
//!
//! **Clean context** (`clean_context` > 0): that fraction of the crops keeps some latents clean,
//! at level √ᾱ = 1, beside the noisy rest, and the loss counts only the noisy ones. The model
//! stays a model of whole unconditioned sequences (the other crops are the paper's objective, and
//! the clean latents are the same data at the end of the same noise schedule), but it also learns
//! to denoise next to clean neighbours, so infilling can show it the known latents as they are
//! instead of re-noised (per-latent noise levels, as in Chen et al., 2024, "Diffusion Forcing").
//! Which latents stay clean mimics what musicians select: half the time one contiguous span is
//! noisy (infill, continuation, intro), half the time each latent independently.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::run::{half_weights, to_json, LogLine, Metrics, RunControl, Schedule, Task, TrainOptions};
use super::vae::{transpose_token, transpositions};
use super::TrainError;
use crate::data::Tune;
use rebar_engine::checkpoint;
use rebar_engine::melody::tokens::Token;
use rebar_engine::prior::{repeats, NoiseSchedule, PriorConfig, PriorTransformer};
use rebar_engine::random::{normal_tensor, seeded_init};
use rebar_engine::vae::MelodyVae;
use rebar_engine::windows::{Window, WINDOW_STEPS};

/// Format name of a prior training checkpoint.
pub const TRAIN_FORMAT: &str = "rebar-prior-train";

/// How to train the prior.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PriorTrainOptions {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// Shortest crop, in latents.
    pub min_segments: usize,
    /// Longest crop, in latents.
    pub max_segments: usize,
    /// Largest transposition, in semitones either way.
    pub transpose: u8,
    /// Fraction of crops trained with some latents clean (see the module doc); 0 is the paper's
    /// objective alone.
    #[serde(default)]
    pub clean_context: f64,
    /// Weight of the repeat head's loss beside the ε loss (models with the head only; see
    /// [`rebar_engine::prior::repeats`]).
    #[serde(default)]
    pub repeat_weight: f64,
    /// Fraction of crops that start on a phrase line, a multiple of [`PHRASE_LATENTS`] latents
    /// from the tune's start (the rest start anywhere). Tunes repeat in 8-bar phrases counted
    /// from their first bar, and musicians loop and select sections the same way; a crop that
    /// starts mid-phrase shows the model a form it must first find the phase of.
    #[serde(default)]
    pub phrase_crops: f64,
    /// Draw the crops that start anywhere by their last latent, uniformly over the tune, so that a
    /// crop ends on its tune's ending no more often than a latent is one. Drawn by length first,
    /// a crop of a short tune is often the whole of it: with tunes of 6 latents, half the crops
    /// end on the tune's last latent, and the model learns that a sequence closes there.
    #[serde(default)]
    pub uniform_crop_ends: bool,
    /// How the ε loss weighs the noise levels (see [`LossWeighting`]).
    #[serde(default)]
    pub loss_weighting: LossWeighting,
}

/// How the ε loss of eq. 6 weighs the noise levels against each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LossWeighting {
    /// ‖ε̂ − ε‖², every level alike: the paper's objective (Ho et al., 2020, eq. 14).
    #[default]
    Epsilon,
    /// ‖ε̂ − ε‖² / ᾱ, which is the v-prediction loss ‖v̂ − v‖² (Salimans and Ho, 2022, §4): x̂₀'s
    /// error weighted by SNR + 1 instead of SNR. Where the noise drowns a latent (SNR ≪ 1) its ε
    /// loss is about SNR · ‖x̂₀ − x₀‖², nearly nothing whatever x̂₀ is, so under the ε weighting
    /// the model never learns what the clean neighbours say about a latent at the levels where
    /// sampling decides what each latent becomes.
    V,
}

impl LossWeighting {
    /// The weight of a latent's squared ε error at signal level √ᾱ.
    fn weight(self, sqrt_alpha_bar: f32) -> f32 {
        match self {
            LossWeighting::Epsilon => 1.0,
            LossWeighting::V => 1.0 / (sqrt_alpha_bar * sqrt_alpha_bar),
        }
    }
}

/// Latents per phrase: 8 bars.
pub const PHRASE_LATENTS: usize = 4;

impl TrainOptions for PriorTrainOptions {
    fn schedule(&mut self) -> &mut Schedule {
        &mut self.schedule
    }
}

impl Default for PriorTrainOptions {
    fn default() -> Self {
        Self {
            schedule: Schedule {
                steps: 20_000,
                batch: 64,
                lr: 5e-4,
                warmup: 500,
                grad_clip: 1.0,
                seed: 0,
                eval_every: 500,
                checkpoint_every: 1_000,
                average_decay: 0.999,
            },
            min_segments: 2,
            max_segments: 16,
            transpose: 6,
            clean_context: 0.0,
            repeat_weight: 0.1,
            phrase_crops: 0.0,
            uniform_crop_ends: false,
            loss_weighting: LossWeighting::Epsilon,
        }
    }
}

/// Latent sequences in prior space, one per (tune, transposition).
pub struct LatentSequences {
    /// Row-major `[segments, dim]` per sequence.
    pub sequences: Vec<Vec<f32>>,
    pub dim: usize,
}

impl LatentSequences {
    fn len_of(&self, i: usize) -> usize {
        self.sequences[i].len() / self.dim
    }

    /// The standard deviation of every value of every sequence (1 when there are none).
    pub fn standard_deviation(&self) -> f64 {
        let values = self.sequences.iter().flatten().map(|&v| f64::from(v));
        let (n, sum, squares) = values.fold((0usize, 0.0, 0.0), |(n, s, q), v| (n + 1, s + v, q + v * v));
        if n == 0 {
            return 1.0;
        }
        let mean = sum / n as f64;
        (squares / n as f64 - mean * mean).max(0.0).sqrt().max(1e-6)
    }

    /// Multiplies every value by `scale`.
    pub fn scale(&mut self, scale: f64) {
        self.sequences.iter_mut().flatten().for_each(|v| *v = (f64::from(*v) * scale) as f32);
    }
}

/// Encodes every tune of at least two segments at every transposition within ±`transpose`
/// semitones that keeps it on the keyboard, through the VAE and its preprocessing.
pub fn encode_tunes(vae: &MelodyVae, tunes: &[Tune], transpose: u8) -> Result<LatentSequences, TrainError> {
    let preprocess =
        vae.preprocess.as_ref().ok_or_else(|| TrainError::Data("the VAE file has no latent preprocessing".into()))?;
    let mut sequences = Vec::new();
    for tune in tunes {
        let segments = tune.tokens.len().div_ceil(WINDOW_STEPS);
        if segments < 2 {
            continue;
        }
        let mut ids = tune.tokens.clone();
        ids.resize(segments * WINDOW_STEPS, Token::Hold.id());
        let Some(shifts) = transpositions(&ids, transpose) else { continue };
        let mut windows: Vec<Window> = Vec::new();
        for shift in shifts {
            for chunk in ids.chunks_exact(WINDOW_STEPS) {
                windows.push(std::array::from_fn(|i| transpose_token(chunk[i], shift)));
            }
        }
        let z = preprocess.to_prior_space(&vae.encode(&windows)?)?;
        let rows = z.flatten_all()?.to_vec1::<f32>()?;
        sequences.extend(rows.chunks_exact(segments * preprocess.prior_dim()).map(<[f32]>::to_vec));
    }
    Ok(LatentSequences { sequences, dim: preprocess.prior_dim() })
}

/// How to cut training crops out of the latent sequences.
#[derive(Clone, Copy, Debug)]
struct Crops {
    min_segments: usize,
    max_segments: usize,
    /// Fraction of crops starting on a phrase line (see [`PriorTrainOptions::phrase_crops`]).
    phrase_crops: f64,
    /// See [`PriorTrainOptions::uniform_crop_ends`].
    uniform_ends: bool,
}

impl Crops {
    fn of(options: &PriorTrainOptions) -> Self {
        Self {
            min_segments: options.min_segments,
            max_segments: options.max_segments,
            phrase_crops: options.phrase_crops,
            uniform_ends: options.uniform_crop_ends,
        }
    }
}

/// A batch of random crops.
pub struct CropBatch {
    /// `[b, t, d]`, zero padded.
    pub x0: Tensor,
    /// `[b, t]`: 1 for a real latent, 0 for padding.
    pub valid: Tensor,
}

fn crop_batch(
    rng: &mut impl Rng,
    data: &LatentSequences,
    batch: usize,
    crops: Crops,
    device: &Device,
) -> candle_core::Result<CropBatch> {
    let d = data.dim;
    let crops: Vec<(usize, usize, usize)> = (0..batch)
        .map(|_| {
            let i = rng.random_range(0..data.sequences.len());
            let n = data.len_of(i);
            let shortest = crops.min_segments.min(n);
            // Drawn first whatever the crop's kind, so that crops drawn by length take the same
            // random numbers as before uniform ends existed; a crop drawn by its end draws again.
            let len = rng.random_range(shortest..=crops.max_segments.min(n));
            if crops.phrase_crops > 0.0 && rng.random_bool(crops.phrase_crops.min(1.0)) {
                (i, rng.random_range(0..=(n - len) / PHRASE_LATENTS) * PHRASE_LATENTS, len)
            } else if crops.uniform_ends {
                let end = rng.random_range(shortest..=n);
                let len = rng.random_range(shortest..=crops.max_segments.min(end));
                (i, end - len, len)
            } else {
                (i, rng.random_range(0..=n - len), len)
            }
        })
        .collect();
    let t = crops.iter().map(|c| c.2).max().unwrap_or(1);
    let mut x0 = vec![0f32; batch * t * d];
    let mut valid = vec![0f32; batch * t];
    for (b, &(i, start, len)) in crops.iter().enumerate() {
        x0[b * t * d..b * t * d + len * d].copy_from_slice(&data.sequences[i][start * d..(start + len) * d]);
        valid[b * t..b * t + len].fill(1.0);
    }
    Ok(CropBatch {
        x0: Tensor::from_vec(x0, (batch, t, d), device)?,
        valid: Tensor::from_vec(valid, (batch, t), device)?,
    })
}

/// Per latent of a crop of `len` (≥ 2): true to keep it clean. At least one stays noisy and at
/// least one clean.
fn clean_latents(rng: &mut impl Rng, len: usize) -> Vec<bool> {
    if rng.random_bool(0.5) {
        // One noisy span, the rest clean.
        let span = rng.random_range(1..len);
        let start = rng.random_range(0..=len - span);
        (0..len).map(|i| i < start || i >= start + span).collect()
    } else {
        let rate = rng.random_range(0.2..0.8);
        let mut clean: Vec<bool> = (0..len).map(|_| rng.random_bool(rate)).collect();
        let (noisy, kept) = (rng.random_range(0..len), rng.random_range(0..len - 1));
        clean[noisy] = false;
        clean[if kept >= noisy { kept + 1 } else { kept }] = true;
        clean
    }
}

/// The losses of one batch: the ε loss of eq. 6, weighted per latent by `weighting` and averaged
/// over real (unpadded), noisy latent dimensions, and, when asked for and the model has the repeat
/// head, the head's −log likelihood averaged over the noisy latents that have a source
/// ([`rebar_engine::prior::repeats`]).
pub struct BatchLoss {
    pub epsilon: Tensor,
    pub repeats: Option<Tensor>,
}

/// The losses of one batch (see [`BatchLoss`]). `clean_context`: the fraction of crops with some
/// latents kept clean (see the module doc).
pub fn batch_loss(
    model: &PriorTransformer,
    schedule: &NoiseSchedule,
    crops: &CropBatch,
    clean_context: f64,
    weighting: LossWeighting,
    repeats: bool,
    rng: &mut ChaCha8Rng,
) -> candle_core::Result<BatchLoss> {
    let CropBatch { x0, valid } = crops;
    let (b, t, d) = x0.dims3()?;
    let device = x0.device();
    let lengths: Vec<usize> =
        valid.to_vec2::<f32>()?.iter().map(|row| row.iter().filter(|&&v| v > 0.0).count()).collect();
    let sequence_levels: Vec<f32> = (0..b).map(|_| schedule.sample_sqrt_alpha_bar(rng) as f32).collect();
    // Per latent: its level, and 1 where the loss counts it.
    let mut levels = Vec::with_capacity(b * t);
    let mut counted = Vec::with_capacity(b * t);
    let mut weights = Vec::with_capacity(b * t);
    let mut any_clean = false;
    for (&level, &len) in sequence_levels.iter().zip(&lengths) {
        let clean = if len >= 2 && clean_context > 0.0 && rng.random_bool(clean_context.min(1.0)) {
            clean_latents(rng, len)
        } else {
            vec![false; len]
        };
        any_clean |= clean.contains(&true);
        for i in 0..t {
            let is_clean = clean.get(i).copied().unwrap_or(false);
            levels.push(if is_clean { 1.0 } else { level });
            let counts = i < len && !is_clean;
            counted.push(if counts { 1f32 } else { 0.0 });
            weights.push(if counts { weighting.weight(level) } else { 0.0 });
        }
    }
    let signal = Tensor::from_vec(levels.clone(), (b, t, 1), device)?;
    let noise_scale = Tensor::from_vec(
        levels.iter().map(|a| (1.0 - a * a).max(0.0).sqrt()).collect::<Vec<f32>>(),
        (b, t, 1),
        device,
    )?;
    let eps = normal_tensor(rng, b * t, d, device)?.reshape((b, t, d))?;
    let x_t = (x0.broadcast_mul(&signal)? + eps.broadcast_mul(&noise_scale)?)?;
    // One level per sequence when no latent is clean: the paper's model, and cheaper.
    let sequence_or_latent_levels = if any_clean { &levels } else { &sequence_levels };
    let (predicted, repeat_logits) = model.forward_with_repeats(&x_t, sequence_or_latent_levels, valid, repeats)?;
    let counted = Tensor::from_vec(counted, (b, t), device)?;
    let squared = (predicted - eps)?.sqr()?.sum(2)?; // [b, t]
    let weights = Tensor::from_vec(weights, (b, t), device)?;
    let epsilon = ((squared * &weights)?.sum_all()? / (counted.sum_all()?.to_scalar::<f32>()? as f64 * d as f64))?;
    let repeats = match repeat_logits {
        Some(logits) => {
            let counted = (&counted * &logits.has_source)?;
            let total = (repeats::negative_log_likelihood(&logits, x0)? * &counted)?.sum_all()?;
            Some((total / f64::from(counted.sum_all()?.to_scalar::<f32>()?.max(1.0)))?)
        }
        None => None,
    };
    Ok(BatchLoss { epsilon, repeats })
}

/// What to train on and how.
pub struct PriorRun {
    pub config: PriorConfig,
    pub options: PriorTrainOptions,
    pub train: LatentSequences,
    pub valid: LatentSequences,
    /// Stored with the weights: which VAE file and data the prior was trained with.
    pub provenance: serde_json::Value,
    /// The VAE's preprocessing, stored with the prior so a mismatched pair is caught at load.
    pub vae_preprocess: serde_json::Value,
    /// Weights to start from instead of a random initialization (fine-tuning), by name.
    pub init: Option<HashMap<String, Tensor>>,
    pub device: Device,
}

struct PriorTask {
    run: PriorRun,
    model: PriorTransformer,
    noise: NoiseSchedule,
    varmap: VarMap,
    model_path: PathBuf,
}

impl PriorTask {
    /// The ε loss and the repeat head's loss (0 without the head) over the validation crops,
    /// with `clean_context` of them keeping some latents clean.
    fn valid_loss(&self, clean_context: f64) -> Result<(f64, f64), TrainError> {
        let o = &self.run.options;
        let mut rng = ChaCha8Rng::seed_from_u64(VALID_SEED);
        let (mut epsilon, mut repeats) = (0.0, 0.0);
        for _ in 0..VALID_BATCHES {
            // The validation crops start anywhere and are drawn by length, whatever the training
            // crops do, so the loss stays comparable between runs.
            let crops = Crops { phrase_crops: 0.0, uniform_ends: false, ..Crops::of(o) };
            let batch = crop_batch(&mut rng, &self.run.valid, 64, crops, &self.run.device)?;
            // The plain ε loss whatever the training weighs, so runs stay comparable.
            let loss =
                batch_loss(&self.model, &self.noise, &batch, clean_context, LossWeighting::Epsilon, true, &mut rng)?;
            epsilon += f64::from(loss.epsilon.to_scalar::<f32>()?);
            if let Some(loss) = loss.repeats {
                repeats += f64::from(loss.to_scalar::<f32>()?);
            }
        }
        Ok((epsilon / VALID_BATCHES as f64, repeats / VALID_BATCHES as f64))
    }
}

/// Crops drawn for validation: fixed by this seed, so the validation loss is comparable over a run.
const VALID_SEED: u64 = 0x5EED;
/// Validation batches of 64 crops each.
const VALID_BATCHES: usize = 8;

impl Task for PriorTask {
    type Config = PriorConfig;
    type Options = PriorTrainOptions;
    const CHECKPOINT_FORMAT: &'static str = TRAIN_FORMAT;

    fn config(&self) -> &PriorConfig {
        &self.run.config
    }

    fn options(&mut self) -> &mut PriorTrainOptions {
        &mut self.run.options
    }

    fn loss(&mut self, _step: u64, rng: &mut ChaCha8Rng) -> Result<(Tensor, Metrics), TrainError> {
        let o = &self.run.options;
        let batch = crop_batch(rng, &self.run.train, o.schedule.batch, Crops::of(o), &self.run.device)?;
        let weight = o.repeat_weight;
        let loss = batch_loss(&self.model, &self.noise, &batch, o.clean_context, o.loss_weighting, weight > 0.0, rng)?;
        match loss.repeats {
            Some(repeats) => {
                let metrics = Metrics::from([("repeat_loss".into(), f64::from(repeats.to_scalar::<f32>()?))]);
                Ok(((loss.epsilon + (repeats * weight)?)?, metrics))
            }
            None => Ok((loss.epsilon, Metrics::new())),
        }
    }

    fn evaluate(&mut self) -> Result<Metrics, TrainError> {
        if self.run.valid.sequences.is_empty() {
            return Ok(Metrics::new());
        }
        let (epsilon, repeats) = self.valid_loss(0.0)?;
        let mut metrics = Metrics::from([("valid_loss".into(), epsilon)]);
        if self.run.config.repeat_head {
            metrics.insert("valid_repeat_loss".into(), repeats);
        }
        if self.run.config.clean_context {
            // Every crop with some latents clean: the loss of infilling from clean context.
            let (epsilon, repeats) = self.valid_loss(1.0)?;
            metrics.insert("valid_clean_context_loss".into(), epsilon);
            if self.run.config.repeat_head {
                metrics.insert("valid_clean_context_repeat_loss".into(), repeats);
            }
        }
        Ok(metrics)
    }

    fn export(&mut self, step: u64, trained_seconds: f64) -> Result<(), TrainError> {
        let mut provenance = self.run.provenance.clone();
        provenance["steps"] = step.into();
        provenance["trained_seconds"] = trained_seconds.into();
        provenance["options"] = serde_json::to_value(&self.run.options).unwrap_or_default();
        let metadata = HashMap::from([
            ("config".into(), to_json(&self.run.config)),
            ("vae_preprocess".into(), self.run.vae_preprocess.to_string()),
            ("provenance".into(), provenance.to_string()),
        ]);
        checkpoint::save(
            &self.model_path,
            &half_weights(&self.varmap)?,
            rebar_engine::prior::FORMAT,
            rebar_engine::prior::VERSION,
            metadata,
        )?;
        Ok(())
    }
}

/// Trains, checkpoints and exports `prior.safetensors` into the run directory.
pub fn train_prior(mut run: PriorRun, control: &RunControl<'_>) -> Result<LogLine, TrainError> {
    if run.train.sequences.is_empty() {
        return Err(TrainError::Data("no training tune has two or more 2-bar segments".into()));
    }
    // The model sees latents in its own scale (`PriorConfig::data_scale`).
    run.train.scale(run.config.data_scale);
    run.valid.scale(run.config.data_scale);
    let varmap = VarMap::new();
    let model = PriorTransformer::new(&run.config, VarBuilder::from_varmap(&varmap, DType::F32, &run.device))?;
    seeded_init(&varmap, run.options.schedule.seed)?;
    if let Some(init) = run.init.take() {
        if init.contains_key("tune_position") {
            return Err(TrainError::Data(
                "the initial weights have places in the tune, which this build's prior does not".into(),
            ));
        }
        for (name, var) in super::run::named_vars(&varmap) {
            match init.get(&name) {
                Some(tensor) => var.set(&tensor.to_dtype(DType::F32)?.to_device(var.device())?)?,
                // Fine-tuning a prior without the copy weights into one with them: they start
                // at 0, where the new model computes (nearly, see the pointer's gate) what the
                // old one did.
                None if name.ends_with("copy_gain") || name.starts_with("pointer.") => var.set(&var.zeros_like()?)?,
                // The repeat head changes no ε: it keeps its seeded start (queries and keys at 0
                // would never get a gradient).
                None if name.starts_with("repeats.") => {}
                None => return Err(TrainError::Data(format!("the initial weights lack {name}"))),
            }
        }
    }
    let model_path = control.out_dir.join("prior.safetensors");
    let mut task = PriorTask { run, model, noise: NoiseSchedule::default(), varmap: varmap.clone(), model_path };
    super::run::run(&mut task, &varmap, control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v_weighting_of_the_epsilon_error_is_the_v_prediction_error() {
        // x_t = √ᾱ x₀ + √(1 − ᾱ) ε; a prediction ε̂ implies x̂₀ = (x_t − √(1 − ᾱ) ε̂) / √ᾱ and
        // v̂ = √ᾱ ε̂ − √(1 − ᾱ) x̂₀, against v = √ᾱ ε − √(1 − ᾱ) x₀.
        for (alpha_bar, x0, eps, eps_hat) in
            [(0.9f64, 0.7, -1.2, -1.0), (0.0067, -1.5, 0.3, 0.31), (0.3, 2.0, 0.0, 0.5)]
        {
            let (signal, noise) = (alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt());
            let x_t = signal * x0 + noise * eps;
            let x0_hat = (x_t - noise * eps_hat) / signal;
            let v_error = (signal * eps_hat - noise * x0_hat) - (signal * eps - noise * x0);
            let weighted = f64::from(LossWeighting::V.weight(signal as f32)) * (eps_hat - eps).powi(2);
            assert!(
                (weighted - v_error.powi(2)).abs() < 1e-6 * v_error.powi(2).max(1e-6),
                "{weighted} vs {}",
                v_error.powi(2)
            );
            assert_eq!(LossWeighting::Epsilon.weight(signal as f32), 1.0);
        }
    }

    #[test]
    fn the_v_weighted_batch_loss_counts_drowned_latents_and_leaves_the_draws_alone() {
        let config = PriorConfig::tiny(4);
        let varmap = VarMap::new();
        let model = PriorTransformer::new(&config, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        seeded_init(&varmap, 3).unwrap();
        let data = LatentSequences {
            sequences: (0..8).map(|i| (0..24).map(|k| ((i * 24 + k) % 7) as f32 - 3.0).collect()).collect(),
            dim: 4,
        };
        let schedule = NoiseSchedule::default();
        let loss = |weighting| {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let batch = crop_batch(
                &mut rng,
                &data,
                16,
                Crops { min_segments: 2, max_segments: 6, phrase_crops: 0.0, uniform_ends: false },
                &Device::Cpu,
            )
            .unwrap();
            let loss = batch_loss(&model, &schedule, &batch, 0.5, weighting, false, &mut rng).unwrap();
            (loss.epsilon.to_scalar::<f32>().unwrap(), rng.random::<u64>())
        };
        let ((epsilon, after_epsilon), (v, after_v)) = (loss(LossWeighting::Epsilon), loss(LossWeighting::V));
        // Every weight is 1 / ᾱ ≥ 1, and the noisiest latents' weights are far above 1.
        assert!(v > 1.5 * epsilon, "{v} vs {epsilon}");
        // The weighting draws nothing: both losses saw the same crops, levels and noise.
        assert_eq!(after_epsilon, after_v);
    }

    #[test]
    fn uniform_crop_ends_end_on_the_tune_s_last_latent_no_more_often_than_on_any_other() {
        // One tune of 6 latents; latent k is [k].
        let data = LatentSequences { sequences: vec![(0..6).map(|k| k as f32).collect()], dim: 1 };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let ends = |uniform_ends: bool, rng: &mut ChaCha8Rng| {
            let crops = Crops { min_segments: 2, max_segments: 16, phrase_crops: 0.0, uniform_ends };
            let batch = crop_batch(rng, &data, 20_000, crops, &Device::Cpu).unwrap();
            let (x0, valid) = (batch.x0.to_vec3::<f32>().unwrap(), batch.valid.to_vec2::<f32>().unwrap());
            let mut counts = [0usize; 6];
            for (crop, valid) in x0.iter().zip(&valid) {
                let len = valid.iter().filter(|&&v| v > 0.0).count();
                assert!(len >= 2);
                for k in 1..len {
                    assert_eq!(crop[k][0], crop[0][0] + k as f32, "one run of the tune");
                }
                counts[crop[len - 1][0] as usize] += 1;
            }
            counts.map(|c| c as f64 / 20_000.0)
        };
        // Drawn by length, nearly half the crops end on the last latent (1/5 + 1/4 + … + 1/1, over 5).
        let by_length = ends(false, &mut rng);
        assert!((by_length[5] - 0.457).abs() < 0.02, "{by_length:?}");
        // Drawn by their end, every latent that can end a crop of 2 ends one crop in 5.
        let uniform = ends(true, &mut rng);
        assert_eq!(uniform[0], 0.0);
        for share in &uniform[1..] {
            assert!((share - 0.2).abs() < 0.02, "{uniform:?}");
        }
    }

    #[test]
    fn crops_are_runs_of_a_tune_s_latents_and_phrase_crops_start_on_an_eight_bar_line() {
        let dim = 2;
        // Tune i's latent k is [i, k]: a crop's values say where it came from.
        let data = LatentSequences {
            sequences: (0..3).map(|i| (0..5 + 3 * i).flat_map(|k| [i as f32, k as f32]).collect()).collect(),
            dim,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for phrase_crops in [0.0, 1.0] {
            let crops = Crops { min_segments: 2, max_segments: 6, phrase_crops, uniform_ends: false };
            let batch = crop_batch(&mut rng, &data, 32, crops, &Device::Cpu).unwrap();
            let x0 = batch.x0.to_vec3::<f32>().unwrap();
            let valid = batch.valid.to_vec2::<f32>().unwrap();
            for (crop, valid) in x0.iter().zip(&valid) {
                let start = crop[0][1] as usize;
                let len = valid.iter().filter(|&&v| v > 0.0).count();
                assert!(len >= 2, "{crop:?}");
                for (k, latent) in crop.iter().take(len).enumerate() {
                    assert_eq!(*latent, vec![crop[0][0], (start + k) as f32], "one tune, in order");
                }
                if phrase_crops == 1.0 {
                    assert_eq!(start % PHRASE_LATENTS, 0);
                }
            }
        }
    }
}
