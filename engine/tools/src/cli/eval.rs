//! `rebar eval`: measure a model on a folder of MIDI files and write the figures as JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rebar_engine::engine::{revision_options, BarSelection, Engine, InfillOptions, Repeats};
use rebar_engine::melody::Melody;
use rebar_engine::sample::{KnownLatents, Sampler, Spacing};
use rebar_engine::vae::tools::{self, DENSITY};
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::eval::figure::infill_figure;
use rebar_tools::eval::quality::*;
use rebar_tools::eval::recon::reconstruction_accuracy;

use super::models::{load_prior, load_vae};
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
    let device = candle_core::Device::Cpu;
    let data = build_dataset(&args.midi_dir, &BuildOptions::default())
        .with_context(|| format!("reading {}", args.midi_dir.display()))?;
    anyhow::ensure!(!data.windows.is_empty(), "no 2-bar windows in {}", args.midi_dir.display());
    let report = match args.task {
        EvalTask::Recon => {
            let model = load_vae(args.vae.as_deref())?;
            let accuracy = reconstruction_accuracy(&model.vae, &data.windows, &device)?;
            serde_json::json!({"task": "recon", "n_windows": data.windows.len(), "accuracy": accuracy})
        }
        EvalTask::Tools => {
            let model = load_vae(args.vae.as_deref())?;
            let half = data.windows.len() / 2;
            let (a, b) = (&data.windows[..half], &data.windows[half..2 * half]);
            let clips = tools::interpolate(&model, a, b, 11)?;
            let hamming: Vec<f64> = clips
                .iter()
                .map(|clip| {
                    let total: usize =
                        clip.iter().zip(a).map(|(x, y)| x.iter().zip(y).filter(|(p, q)| p != q).count()).sum();
                    total as f64 / half as f64
                })
                .collect();
            let vector = model.attribute(DENSITY).context("the VAE file has no note-density vector")?.to_vec();
            let mut density = serde_json::Map::new();
            for amount in [-2.0f32, -1.0, 0.0, 1.0, 2.0] {
                let changed = tools::apply_attribute(&model, &data.windows, &vector, amount)?;
                let notes = changed.iter().map(|w| tools::note_count(w) as f64).sum::<f64>() / changed.len() as f64;
                density.insert(format!("{amount:+}"), notes.into());
            }
            let input_notes =
                data.windows.iter().map(|w| tools::note_count(w) as f64).sum::<f64>() / data.windows.len() as f64;
            serde_json::json!({
                "task": "tools",
                "n_pairs": half,
                "mean_hamming_to_a_by_alpha": hamming,
                "n_windows": data.windows.len(),
                "input_mean_notes": input_notes,
                "mean_notes_by_density_amount": density,
            })
        }
        EvalTask::Infill | EvalTask::Uncond => {
            let vae = load_vae(args.vae.as_deref())?;
            let prior = load_prior(args.prior.as_deref(), &vae.device)?;
            let engine = Engine::new(vae, prior)?;
            let sampler = if args.steps == 0 {
                Sampler::Ancestral
            } else {
                Sampler::Ddim { steps: args.steps, eta: args.eta, spacing: args.spacing }
            };
            let options = InfillOptions {
                variations: args.samples.max(1),
                seed: args.seed,
                sampler,
                temperature: args.temperature,
                resample: args.resample,
                guidance: args.guidance,
                known: args.known,
                clean_steps: args.clean_steps,
                context_guidance: args.context_guidance,
                repeats: args.repeats,
                interval_weight: args.interval_weight,
                revise: args.revise,
                ..args.calibration.apply(InfillOptions::default())
            };
            let test = first_sixteen_bars(&data.tunes);
            anyhow::ensure!(!test.is_empty(), "no tune of {} has 16 bars", args.midi_dir.display());
            let second = match &args.reference_dir {
                Some(dir) => {
                    let tunes = build_dataset(dir, &BuildOptions::default())
                        .with_context(|| format!("reading {}", dir.display()))?
                        .tunes;
                    let melodies = first_sixteen_bars(&tunes);
                    anyhow::ensure!(!melodies.is_empty(), "no tune of {} has 16 bars", dir.display());
                    let words = sixteen_bars_of(melodies.len(), dir);
                    Some((melodies, words))
                }
                None => None,
            };
            let (task, n, evaluation) = if matches!(args.task, EvalTask::Infill) {
                let report = evaluate_infill(&engine, &test, &options)?;
                let figure = args.json.with_extension("png");
                let columns: Vec<[&Melody; 4]> = report.examples.iter().map(|e| [&e[0], &e[1], &e[2], &e[3]]).collect();
                infill_figure(&figure, &columns, INFILL_BARS)
                    .map_err(|e| anyhow::anyhow!("drawing {}: {e}", figure.display()))?;
                println!(
                    "figure: {} (columns: tunes; rows: original, diffusion, interpolation, prior)",
                    figure.display()
                );
                ("infill", test.len() * options.variations, report.evaluation)
            } else {
                let options = InfillOptions { variations: 1, ..options.clone() };
                ("uncond", args.samples, evaluate_uncond(&engine, &test, args.samples, &options)?)
            };
            let quality = QualityReport::new(
                &evaluation,
                (&test, format!("test: {}", sixteen_bars_of(test.len(), &args.midi_dir))),
                second.as_ref().map(|(melodies, words)| (&melodies[..], format!("second: {words}"))),
            );
            let selection = if task == "infill" { infill_selection() } else { BarSelection::all(EVAL_BARS) };
            let applied = engine.applied(&options, &selection.segments_of_clip(EVAL_BARS));
            let mut report = serde_json::json!({
                "task": task,
                "n_sequences": n,
                "sampler": {
                    "kind": format!("{sampler:?}"),
                    "steps": sampler.evaluations(&engine.prior.schedule),
                    "resample": options.resample,
                    "guidance": options.guidance,
                    "known": format!("{:?}", options.known),
                    "clean_steps": options.clean_steps,
                    "context_guidance": applied.context_guidance,
                    "repeats": format!("{:?}", options.repeats),
                    "repeat_offset": applied.repeat_offset,
                    "repeat_distance_offsets": applied.repeat_distance_offsets,
                    "redraw_copies": applied.redraw_copies,
                    "prior_trained_with_clean_context": engine.prior.model.config.clean_context,
                    "temperature": options.temperature,
                    "noise_scale": applied.noise_scale,
                    "opening_noise_scale": applied.opening_noise_scale,
                    "opening_steps": InfillOptions::OPENING_STEPS,
                    "interval_weight": engine.vae.applied_interval_weight(options.interval_weight),
                    "revision": engine.revision_of(&options, &selection, EVAL_BARS).map(|middle| {
                        let revision = engine.applied(&revision_options(&options), &middle.segments_of_clip(EVAL_BARS));
                        serde_json::json!({
                            "bars": middle.selected().iter().map(|bar| bar + 1).collect::<Vec<_>>(),
                            "context_guidance": revision.context_guidance,
                            "repeat_offset": revision.repeat_offset,
                            "noise_scale": revision.noise_scale,
                            "opening_noise_scale": revision.opening_noise_scale,
                        })
                    }),
                },
            });
            // The quality figures beside the task's own fields, at the top level.
            if let (Some(report), serde_json::Value::Object(quality)) =
                (report.as_object_mut(), serde_json::to_value(&quality)?)
            {
                report.extend(quality);
                report.insert("seconds".into(), started.elapsed().as_secs_f64().into());
            }
            report
        }
    };
    let text = serde_json::to_string_pretty(&report)?;
    rebar_engine::fsutil::write_atomically(&args.json, text.as_bytes())
        .with_context(|| format!("writing {}", args.json.display()))?;
    println!("{text}\n{:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// "first 16 bars of the N tunes of DIR": a reference set in words.
pub fn sixteen_bars_of(tunes: usize, dir: &Path) -> String {
    format!("first 16 bars of the {tunes} tunes of {} that have 16 bars", dir.display())
}
