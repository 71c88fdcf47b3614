//! The training loop every model shares: seeded steps, AdamW with gradient clipping and the
//! warm-up/cosine learning rate, a progress bar or JSON log lines, periodic atomic checkpoints
//! (weights + optimizer moments + options), exact `--resume`, and a final export.
//!
//! A model plugs in through [`Task`]: its loss for one step, its validation figures, and how it
//! writes its usable model file.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use indicatif::{ProgressBar, ProgressStyle};
use rand_chacha::ChaCha8Rng;

use super::adamw::{AdamW, AdamWParams};
use super::average::WeightAverage;
use super::{learning_rate, step_rng, TrainError};
use rebar_engine::checkpoint::{self, Checkpoint};

/// The optimization schedule of a run, common to all models.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Optimizer steps in the whole run.
    pub steps: u64,
    /// Examples per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Steps of linear learning-rate warm-up.
    pub warmup: u64,
    /// Global gradient-norm clip.
    pub grad_clip: f64,
    /// Seed of every random draw.
    pub seed: u64,
    /// Steps between validation passes and log lines.
    pub eval_every: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Decay of the weight average the exported model uses; 0 exports the last weights.
    #[serde(default)]
    pub average_decay: f64,
}

/// Named figures of a step or an evaluation.
pub type Metrics = BTreeMap<String, f64>;

/// A model's training options, which include the shared schedule.
pub trait TrainOptions: serde::Serialize + serde::de::DeserializeOwned {
    fn schedule(&mut self) -> &mut Schedule;
}

/// One model's part in the loop.
pub trait Task {
    /// The architecture, saved with every checkpoint and checked on resume.
    type Config: serde::Serialize + serde::de::DeserializeOwned + PartialEq;
    /// All training options, saved with every checkpoint; a resumed run takes the saved ones.
    type Options: TrainOptions;
    /// Format name of this model's training checkpoints.
    const CHECKPOINT_FORMAT: &'static str;
    fn config(&self) -> &Self::Config;
    fn options(&mut self) -> &mut Self::Options;
    /// The loss of step `step`, drawing everything random from `rng`, and figures to log.
    fn loss(&mut self, step: u64, rng: &mut ChaCha8Rng) -> Result<(Tensor, Metrics), TrainError>;
    /// Validation figures.
    fn evaluate(&mut self) -> Result<Metrics, TrainError>;
    /// Writes the usable model file.
    fn export(&mut self, step: u64, trained_seconds: f64) -> Result<(), TrainError>;
}

/// Where a run keeps its files and when it stops.
pub struct RunControl<'a> {
    /// checkpoint.safetensors (resumable), the exported model, log.jsonl.
    pub out_dir: &'a Path,
    pub resume: bool,
    /// Stop (after checkpointing) once this much wall time has passed in this process.
    pub max_seconds: Option<f64>,
    /// Stop (after checkpointing) at this step, as an interruption would; resume continues it.
    pub stop_at_step: Option<u64>,
    /// Draw a progress bar; otherwise print each log line as JSON.
    pub progress: bool,
}

impl RunControl<'_> {
    pub fn checkpoint_path(&self) -> PathBuf {
        self.out_dir.join("checkpoint.safetensors")
    }

    pub fn log_path(&self) -> PathBuf {
        self.out_dir.join("log.jsonl")
    }
}

/// One line of the training log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LogLine {
    pub step: u64,
    /// Training time so far, over all resumed parts of the run.
    pub seconds: f64,
    pub lr: f64,
    pub examples_per_second: f64,
    /// The last step's figures and the validation figures.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// Trains `task`'s variables in `varmap` (already seeded) and returns the final log line.
pub fn run<T: Task>(task: &mut T, varmap: &VarMap, control: &RunControl<'_>) -> Result<LogLine, TrainError> {
    std::fs::create_dir_all(control.out_dir)
        .map_err(|source| TrainError::Io { path: control.out_dir.display().to_string(), source })?;
    let vars = named_vars(varmap);
    let mut optimizer = AdamW::new(vars.clone(), AdamWParams::default())?;
    let mut trained_seconds = 0.0;
    let mut step = 0u64;
    let mut resumed = None;

    if control.resume {
        let path = control.checkpoint_path();
        let saved = Checkpoint::read(&path, T::CHECKPOINT_FORMAT, TRAIN_VERSION)?;
        // Compared as values, so a field added later with a serde default still matches.
        let config: T::Config = saved.json("config")?;
        if &config != task.config() {
            return Err(TrainError::Resume(format!("{} was trained with config {}", path.display(), to_json(&config))));
        }
        let wanted_steps = task.options().schedule().steps;
        *task.options() = saved.json("options")?;
        let schedule = task.options().schedule();
        schedule.steps = schedule.steps.max(wanted_steps);
        step = saved.json("step")?;
        trained_seconds = saved.json("trained_seconds")?;
        for (name, var) in &vars {
            let tensor =
                saved.tensors.get(name).ok_or_else(|| TrainError::Resume(format!("checkpoint lacks {name}")))?;
            var.set(&tensor.to_device(var.device())?)?;
        }
        optimizer.load_state(&saved.tensors, step)?;
        resumed = Some(saved.tensors);
        eprintln!("resuming {} at step {step} of {}", path.display(), task.options().schedule().steps);
    }

    let schedule = task.options().schedule().clone();
    let mut average =
        (schedule.average_decay > 0.0).then(|| WeightAverage::new(schedule.average_decay, optimizer.values()));
    if let (Some(average), Some(tensors)) = (&mut average, &resumed) {
        average.load_state(tensors, &vars)?;
    }
    drop(resumed);
    let progress = if control.progress { ProgressBar::new(schedule.steps) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_position(step);

    let started = Instant::now();
    let mut since_log = (Instant::now(), step);
    let mut last = None;
    while step < schedule.steps {
        let mut rng = step_rng(schedule.seed, step);
        let (loss, mut metrics) = task.loss(step, &mut rng)?;
        let grads = optimizer.flat_grads(&loss.backward()?)?;
        let norm = AdamW::grad_norm(&grads);
        let clip = if norm > schedule.grad_clip { schedule.grad_clip / norm } else { 1.0 };
        let lr = learning_rate(step, schedule.steps, schedule.lr, schedule.warmup);
        optimizer.step(&grads, lr, clip)?;
        step += 1;
        if let Some(average) = &mut average {
            average.update(optimizer.values(), step);
        }
        progress.inc(1);

        let interrupted = control.max_seconds.is_some_and(|limit| started.elapsed().as_secs_f64() >= limit)
            || control.stop_at_step == Some(step);
        let finished = step == schedule.steps || interrupted;
        if step % schedule.eval_every == 0 || finished {
            metrics.insert("loss".into(), f64::from(loss.to_scalar::<f32>()?));
            metrics.extend(task.evaluate()?);
            let elapsed = since_log.0.elapsed().as_secs_f64().max(1e-9);
            let line = LogLine {
                step,
                seconds: trained_seconds + started.elapsed().as_secs_f64(),
                lr,
                examples_per_second: (step - since_log.1) as f64 * schedule.batch as f64 / elapsed,
                metrics,
            };
            since_log = (Instant::now(), step);
            let summary: Vec<String> = line.metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            progress.set_message(summary.join(" "));
            append_log(&control.log_path(), &line)?;
            if !control.progress {
                println!("{}", serde_json::to_string(&line).unwrap_or_default());
            }
            last = Some(line);
        }
        if step % schedule.checkpoint_every == 0 && !finished {
            let seconds = trained_seconds + started.elapsed().as_secs_f64();
            save_checkpoint(task, control, varmap, &optimizer, average.as_ref(), step, seconds)?;
        }
        if interrupted {
            break;
        }
    }
    progress.finish();

    // The final checkpoint and the usable model, also when resuming a run that had finished
    // (which re-exports it with this build's export format).
    let seconds = trained_seconds + started.elapsed().as_secs_f64();
    save_checkpoint(task, control, varmap, &optimizer, average.as_ref(), step, seconds)?;
    if let Some(average) = &average {
        average.apply(&vars)?;
        let figures: Vec<String> = task.evaluate()?.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        eprintln!("averaged weights: {}", figures.join(" "));
    }
    task.export(step, seconds)?;
    match last {
        Some(line) => Ok(line),
        None => Ok(LogLine { step, seconds, lr: 0.0, examples_per_second: 0.0, metrics: task.evaluate()? }),
    }
}

/// Version of the training checkpoint layout.
pub const TRAIN_VERSION: u32 = 1;

fn save_checkpoint<T: Task>(
    task: &mut T,
    control: &RunControl<'_>,
    varmap: &VarMap,
    optimizer: &AdamW,
    average: Option<&WeightAverage>,
    step: u64,
    trained_seconds: f64,
) -> Result<(), TrainError> {
    let mut tensors = weights(varmap);
    tensors.extend(optimizer.state()?);
    if let Some(average) = average {
        tensors.extend(average.state(&named_vars(varmap))?);
    }
    let metadata = HashMap::from([
        ("config".into(), to_json(task.config())),
        ("options".into(), to_json(task.options())),
        ("step".into(), step.to_string()),
        ("trained_seconds".into(), trained_seconds.to_string()),
    ]);
    Ok(checkpoint::save(&control.checkpoint_path(), &tensors, T::CHECKPOINT_FORMAT, TRAIN_VERSION, metadata)?)
}

/// The variables' values in half precision, as shipped model files store them (the models run in
/// f32 after loading; BENCHMARKS.md measures the f16 files themselves).
pub fn half_weights(varmap: &VarMap) -> candle_core::Result<HashMap<String, Tensor>> {
    weights(varmap).into_iter().map(|(name, t)| Ok((name, t.to_dtype(candle_core::DType::F16)?))).collect()
}

/// Plain data as JSON text.
pub fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

/// The variables of a var map, sorted by name.
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("var map lock is never poisoned here");
    let mut vars: Vec<(String, Var)> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The current values of a var map's variables, by name.
pub fn weights(varmap: &VarMap) -> HashMap<String, Tensor> {
    named_vars(varmap).into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect()
}

fn append_log(path: &Path, line: &LogLine) -> Result<(), TrainError> {
    let io = |source| TrainError::Io { path: path.display().to_string(), source };
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    writeln!(file, "{}", to_json(line)).map_err(io)
}
