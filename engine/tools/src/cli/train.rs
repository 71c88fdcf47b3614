//! `rebar train`: what every training run takes: where it lives, how long it runs, its seed and schedule.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use rebar_tools::train::run::{RunControl, Schedule};

use super::parse::{parse_fraction, parse_non_negative};
use super::train_prior::TrainPriorArgs;
use super::train_vae::TrainVaeArgs;

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Train the 2-bar melody VAE (MusicVAE eq. 3–4: cross-entropy + β·max(KL − free bits, 0)).
    Vae(TrainVaeArgs),
    /// Train the diffusion prior on crops of 2–16 latents of the training tunes (eq. 6 ε loss).
    Prior(TrainPriorArgs),
}

/// What every training run takes: where it lives, how long it runs, its seed and schedule.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Training cache from `rebar dataset`: the VAE trains on its distinct windows, the prior on
    /// crops of its tunes.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation cache: the VAE logs its reconstruction accuracy on it, the prior its ε loss.
    #[arg(long)]
    pub valid: Option<PathBuf>,
    /// Run directory: checkpoint.safetensors (resumable), the model file, log.jsonl.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint, with its saved options.
    #[arg(long)]
    pub resume: bool,
    /// Total optimizer steps [default: VAE 7000, prior 20000]. On --resume a larger value extends the
    /// run; without it the run keeps its saved total.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Examples per step [default: VAE 512 windows, prior 64 sequences].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Peak learning rate, warmed up then decayed to a tenth [default: VAE 1e-3, prior 5e-4].
    #[arg(long, value_parser = parse_non_negative)]
    pub lr: Option<f64>,
    /// Seed of every random draw; the same seed gives the same run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Steps between validation passes [default: VAE 250, prior 500].
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Steps between checkpoints [default: VAE 500, prior 1000].
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Decay of the weight average that is exported [default: VAE 0 (off), prior 0.999].
    #[arg(long, value_parser = parse_fraction)]
    pub average_decay: Option<f64>,
    /// Stop (after a checkpoint) after this many minutes; resume later with --resume.
    #[arg(long, value_parser = parse_non_negative)]
    pub max_minutes: Option<f64>,
    /// Train on the first CUDA GPU: needs a build with the `cuda` feature. The data pipeline and
    /// the optimizer's update stay on the CPU; a run on one device resumes on the other.
    #[arg(long)]
    pub cuda: bool,
}

impl RunArgs {
    /// Where the model trains.
    pub fn device(&self) -> Result<candle_core::Device> {
        if self.cuda {
            candle_core::Device::new_cuda(0).context("--cuda: no CUDA device (or a build without the `cuda` feature)")
        } else {
            Ok(candle_core::Device::Cpu)
        }
    }

    /// The schedule: these arguments over the model's defaults.
    pub fn schedule(&self, defaults: Schedule) -> Schedule {
        Schedule {
            // On resume the saved options win; only an explicit, larger --steps extends the run.
            steps: self.steps.unwrap_or(if self.resume { 0 } else { defaults.steps }),
            batch: self.batch.unwrap_or(defaults.batch),
            lr: self.lr.unwrap_or(defaults.lr),
            seed: self.seed,
            eval_every: self.eval_every.unwrap_or(defaults.eval_every),
            checkpoint_every: self.checkpoint_every.unwrap_or(defaults.checkpoint_every),
            average_decay: self.average_decay.unwrap_or(defaults.average_decay),
            ..defaults
        }
    }

    pub fn control(&self) -> RunControl<'_> {
        RunControl {
            out_dir: &self.out,
            resume: self.resume,
            max_seconds: self.max_minutes.map(|m| m * 60.0),
            stop_at_step: None,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}
