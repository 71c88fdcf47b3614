//! `rebar eval`: measure a model on a folder of MIDI files and write the figures as JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rebar_engine::engine::{BarSelection, Tuning};
use rebar_engine::sample::{Sampler, Spacing};
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::eval::latent_tools::measure_latent_tools;
use rebar_tools::eval::quality::{first_sixteen_bars, EVAL_BARS};
use rebar_tools::eval::recon::reconstruction_accuracy;
use rebar_tools::eval::report::{quality_report, QualityTask, Reference};

use super::models::{load_engine, load_vae};
use super::parse::{name_of, one_of, parse_fraction};
use super::sampling::{default_eta, default_spacing, default_steps, RequestArgs, TuningArgs, SPACINGS};

#[derive(clap::Args)]
pub struct EvalArgs {
    /// What to measure. recon: the VAE's per-step argmax reconstruction accuracy over all
    /// distinct 2-bar windows of the folder (MusicVAE Table 1).
    #[arg(long, value_enum)]
    pub task: EvalTask,
    /// Folder of MIDI files to evaluate on. infill and uncond score every row against the first
    /// 16 bars of its tunes (those that have 16 bars).
    #[arg(long)]
    pub midi_dir: PathBuf,
    /// infill and uncond: a second reference, e.g. the training set's folder; every row is also
    /// scored against the first 16 bars of its tunes.
    #[arg(long)]
    pub reference_dir: Option<PathBuf>,
    /// Where to write the figures. infill also draws its piano-roll figure beside it (.png).
    #[arg(long)]
    pub json: PathBuf,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// Prior weights file (infill and uncond). Default: the weights built into this binary.
    #[arg(long)]
    pub prior: Option<PathBuf>,
    /// uncond: sequences to generate (and prior-row draws). infill: infills per tune, and as many
    /// draws of the N(0, I) prior row.
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// DDIM steps of the sampler (0: the 1000-step ancestral sampler).
    #[arg(long, default_value_t = default_steps())]
    pub steps: usize,
    /// DDIM η: 0 is deterministic given the start noise, 1 is as random as the ancestral sampler.
    #[arg(long, default_value_t = default_eta(), value_parser = parse_fraction)]
    pub eta: f64,
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
    /// Where the DDIM steps fall.
    #[arg(long, value_parser = one_of(SPACINGS), default_value = name_of(SPACINGS, default_spacing()))]
    pub spacing: Spacing,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum EvalTask {
    Recon,
    Infill,
    Uncond,
    /// The VAE's latent tools: mean Hamming distance to A along interpolations between pairs of
    /// windows (MusicVAE Fig. 3), and mean note count after adding the density vector.
    Tools,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let started = Instant::now();
    let data = build_dataset(&args.midi_dir, &BuildOptions::default())
        .with_context(|| format!("reading {}", args.midi_dir.display()))?;
    anyhow::ensure!(!data.windows.is_empty(), "no 2-bar windows in {}", args.midi_dir.display());
    let mut report = match args.task {
        EvalTask::Recon => {
            let model = load_vae(args.vae.as_deref())?;
            let accuracy = reconstruction_accuracy(&model.vae, &data.windows, &model.device)?;
            serde_json::json!({"task": "recon", "n_windows": data.windows.len(), "accuracy": accuracy})
        }
        EvalTask::Tools => {
            let model = load_vae(args.vae.as_deref())?;
            serde_json::to_value(measure_latent_tools(&model, &data.windows)?)?
        }
        EvalTask::Infill | EvalTask::Uncond => {
            let engine = load_engine(args.vae.as_deref(), args.prior.as_deref())?.with_tuning(args.tuning())?;
            let test = first_sixteen_bars(&data.tunes);
            anyhow::ensure!(!test.is_empty(), "no tune of {} has 16 bars", args.midi_dir.display());
            let test = Reference { words: sixteen_bars_of(test.len(), &args.midi_dir), melodies: &test };
            let second_tunes = match &args.reference_dir {
                Some(dir) => {
                    let tunes = build_dataset(dir, &BuildOptions::default())
                        .with_context(|| format!("reading {}", dir.display()))?
                        .tunes;
                    let melodies = first_sixteen_bars(&tunes);
                    anyhow::ensure!(!melodies.is_empty(), "no tune of {} has 16 bars", dir.display());
                    Some((sixteen_bars_of(melodies.len(), dir), melodies))
                }
                None => None,
            };
            let second = second_tunes.as_ref().map(|(words, melodies)| Reference { melodies, words: words.clone() });
            let task = match args.task {
                EvalTask::Infill => QualityTask::Infill,
                _ => QualityTask::Uncond { samples: args.samples },
            };
            let figure = args.json.with_extension("png");
            // The task sets the selection; the variations are the infills per tune.
            let request = args.request.request(BarSelection::all(EVAL_BARS), args.samples.max(1));
            let report = quality_report(&engine, task, &request, &test, second.as_ref(), &figure)?;
            if task == QualityTask::Infill {
                println!(
                    "figure: {} (columns: tunes; rows: original, diffusion, interpolation, prior)",
                    figure.display()
                );
            }
            report
        }
    };
    if let Some(report) = report.as_object_mut().filter(|_| matches!(args.task, EvalTask::Infill | EvalTask::Uncond)) {
        report.insert("seconds".into(), started.elapsed().as_secs_f64().into());
    }
    let text = serde_json::to_string_pretty(&report)?;
    rebar_engine::fsutil::write_atomically(&args.json, text.as_bytes())
        .with_context(|| format!("writing {}", args.json.display()))?;
    println!("{text}\n{:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

impl EvalArgs {
    /// The engine's tuning: the shipped one with these arguments' sampler and values.
    fn tuning(&self) -> Tuning {
        let sampler = if self.steps == 0 {
            Sampler::Ancestral
        } else {
            Sampler::Ddim { steps: self.steps, eta: self.eta, spacing: self.spacing }
        };
        self.tuning.tuning(sampler)
    }
}

/// "first 16 bars of the N tunes of DIR": a reference set in words.
pub fn sixteen_bars_of(tunes: usize, dir: &Path) -> String {
    format!("first 16 bars of the {tunes} tunes of {} that have 16 bars", dir.display())
}
