//! `rebar eval`: measure a model on a folder of MIDI files and write the figures as JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rebar_engine::engine::{InfillOptions, Repeats};
use rebar_engine::sample::{KnownLatents, Sampler, Spacing};
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::eval::latent_tools::measure_latent_tools;
use rebar_tools::eval::quality::first_sixteen_bars;
use rebar_tools::eval::recon::reconstruction_accuracy;
use rebar_tools::eval::report::{quality_report, QualityTask, Reference};

use super::models::{load_engine, load_vae};
use super::parse::{name_of, one_of, parse_fraction, parse_noise_scale, parse_non_negative, parse_rounds};
use super::sampling::{default_eta, default_spacing, default_steps, CalibrationArgs, KNOWN_LATENTS, REPEATS, SPACINGS};

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
    /// Scale of the sampler's noise (0 to 100).
    #[arg(long, default_value_t = 1.0, value_parser = parse_noise_scale)]
    pub temperature: f64,
    /// Takes of every reverse step (RePaint resampling); 1 is plain Algorithm 1.
    #[arg(long, default_value_t = 1, value_parser = parse_rounds)]
    pub resample: usize,
    /// Weight of reconstruction guidance; 0 is plain Algorithm 1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_non_negative)]
    pub guidance: f64,
    /// Known latents re-noised at every step (Algorithm 1) or kept clean (a prior trained with
    /// clean context).
    #[arg(long, value_parser = one_of(KNOWN_LATENTS), default_value = name_of(KNOWN_LATENTS, KnownLatents::default()))]
    pub known: KnownLatents,
    /// With --known renoised: the fraction of the steps, from the noisiest, that paste the known
    /// latents clean first (0: Algorithm 1 throughout).
    #[arg(long, default_value_t = InfillOptions::DEFAULT_CLEAN_STEPS, value_parser = parse_fraction)]
    pub clean_steps: f64,
    /// Context guidance weight (0: off; see `rebar infill --help`).
    #[arg(long, default_value_t = InfillOptions::default().context_guidance, value_parser = parse_non_negative)]
    pub context_guidance: f64,
    /// Repeats drawn from the prior's repeat head, or none.
    #[arg(long, value_parser = one_of(REPEATS), default_value = name_of(REPEATS, Repeats::default()))]
    pub repeats: Repeats,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    /// Weight of the decoder's interval prior, for every row's latents (see `rebar infill --help`).
    #[arg(long, default_value_t = InfillOptions::DEFAULT_INTERVAL_WEIGHT, value_parser = parse_non_negative)]
    pub interval_weight: f64,
    /// Generation from scratch in two passes: a draft, then its middle regenerated under
    /// context guidance from its own opening and close, so the tune keeps one character
    /// (`--revise false`: one pass). Only where every bar is regenerated.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub revise: bool,
    /// Where the DDIM steps fall.
    #[arg(long, value_parser = one_of(SPACINGS), default_value = name_of(SPACINGS, default_spacing()))]
    pub spacing: Spacing,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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
            let engine = load_engine(args.vae.as_deref(), args.prior.as_deref())?;
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
            let report = quality_report(&engine, task, &args.options(), &test, second.as_ref(), &figure)?;
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
    /// The engine's options for the rows sampled by the prior.
    fn options(&self) -> InfillOptions {
        let sampler = if self.steps == 0 {
            Sampler::Ancestral
        } else {
            Sampler::Ddim { steps: self.steps, eta: self.eta, spacing: self.spacing }
        };
        InfillOptions {
            variations: self.samples.max(1),
            seed: self.seed,
            sampler,
            temperature: self.temperature,
            resample: self.resample,
            guidance: self.guidance,
            known: self.known,
            clean_steps: self.clean_steps,
            context_guidance: self.context_guidance,
            repeats: self.repeats,
            interval_weight: self.interval_weight,
            revise: self.revise,
            ..self.calibration.apply(InfillOptions::default())
        }
    }
}

/// "first 16 bars of the N tunes of DIR": a reference set in words.
pub fn sixteen_bars_of(tunes: usize, dir: &Path) -> String {
    format!("first 16 bars of the {tunes} tunes of {} that have 16 bars", dir.display())
}
