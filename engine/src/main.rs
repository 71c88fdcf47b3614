//! `rebar`: the command line of Rebar's engine. Each subcommand is a thin argument struct over a
//! library call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use rebar_engine::data::{build_dataset, load_dataset, save_dataset, BuildOptions};
use rebar_engine::engine::{revision_options, BarSelection, Engine, InfillOptions, Repeats};
use rebar_engine::eval::figure::infill_figure;
use rebar_engine::eval::quality::{
    evaluate_infill, evaluate_uncond, first_sixteen_bars, infill_selection, melody_stats, QualityReport, EVAL_BARS,
    INFILL_BARS,
};
use rebar_engine::eval::recon::reconstruction_accuracy;
use rebar_engine::melody::scale::Scale;
use rebar_engine::melody::{quantize, roll, Melody};
use rebar_engine::metrics::{OaForm, SetStats};
use rebar_engine::midi::{read_file, write_melody, MelodySelector};
use rebar_engine::prior::{PriorConfig, TrainedPrior};
use rebar_engine::sample::{KnownLatents, Sampler, Spacing};
use rebar_engine::time::ticks_to_steps;
use rebar_engine::train::prior::{encode_tunes, train_prior, PriorRun, PriorTrainOptions};
use rebar_engine::train::run::{RunControl, Schedule};
use rebar_engine::train::vae::{train_vae, VaeRun, VaeTrainOptions};
use rebar_engine::vae::segments::{melody_from_segments, to_segments};
use rebar_engine::vae::tools::{self, DENSITY};
use rebar_engine::vae::{MelodyVae, VaeConfig};

/// Rebar rewrites selected bars of a MIDI melody with latent diffusion.
#[derive(Parser)]
#[command(name = "rebar", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a MIDI file's tracks, tempo, meter and key, and its melody as a text piano roll.
    Inspect(InspectArgs),
    /// Build a training cache from a folder tree of MIDI files.
    ///
    /// Every 2-bar window (stride one bar) with notes and at most one bar of consecutive silence
    /// becomes a VAE training window (deduplicated); every tune's whole melody is kept for the
    /// prior. Files in meters other than 4/4, 2/2, 2/4 and 4/2 are skipped and counted.
    Dataset(DatasetArgs),
    /// Train a model on a dataset cache, in the background-friendly way: progress on the
    /// terminal (JSON log lines when not a terminal), atomic checkpoints, exact `--resume`.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Measure a model on a folder of MIDI files and write the figures as JSON.
    Eval(EvalArgs),
    /// Morph one melody into another: spherical interpolation of their latents, 2-bar segment by
    /// segment (MusicVAE §2.1.2). Writes the steps one after another into one MIDI file.
    Interpolate(InterpolateArgs),
    /// Move a melody along a latent attribute vector (MusicVAE §5.5), such as note density.
    Attribute(AttributeArgs),
    /// Rewrite selected bars of a MIDI melody with the diffusion prior (the main job).
    Infill(InfillArgs),
    /// Generate new melodies from scratch with the diffusion prior.
    Generate(GenerateArgs),
    /// Time infilling 8 bars of a 32-bar clip with 4 variations: the default sampler and the
    /// 1000-step ancestral sampler without context guidance (the paper's) in the same run
    /// (p50, p95, ratio).
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Where to write the figures.
    #[arg(long)]
    json: PathBuf,
    /// Timed runs of the default sampler.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Timed runs of the 1000-step ancestral sampler.
    #[arg(long, default_value_t = 5)]
    ancestral_runs: usize,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Prior weights file. Default: the weights built into this binary.
    #[arg(long)]
    prior: Option<PathBuf>,
}

/// Sampling controls shared by `infill` and `generate`.
#[derive(clap::Args)]
struct SamplingArgs {
    /// Number of variations, 1 to 8 (the plugin's range); with more than one, OUT.mid becomes
    /// OUT-1.mid, OUT-2.mid, …
    #[arg(long, default_value_t = 4, value_parser = parse_variations)]
    variations: usize,
    /// Seed: the same seed and input give the same result.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// DDIM steps of the fast sampler; 1000 with --sampler ancestral is the paper's sampler.
    #[arg(long, default_value_t = default_steps())]
    steps: usize,
    /// Reverse process: ddim (fast, default) or ancestral (all 1000 DDPM steps).
    #[arg(long, value_enum, default_value_t = SamplerKind::Ddim)]
    sampler: SamplerKind,
    /// Noise scale: below 1 is tamer, above 1 wilder (0 to 100).
    #[arg(long, default_value_t = 1.0, value_parser = parse_noise_scale)]
    temperature: f64,
    /// Known bars re-noised at every step (Algorithm 1, under context guidance by default) or
    /// kept clean throughout (needs a prior trained with clean context, as the shipped one is;
    /// it turns context guidance off).
    #[arg(long, value_enum, default_value_t = KnownLatents::Renoised)]
    known: KnownLatents,
    /// Context guidance weight: above 0, every step also looks at the kept bars exactly and
    /// follows them this many times as closely (1: as --known clean; 2-3: closer still, twice
    /// the compute). 0 is off.
    #[arg(long, default_value_t = InfillOptions::default().context_guidance, value_parser = parse_non_negative)]
    context_guidance: f64,
    #[command(flatten)]
    calibration: CalibrationArgs,
    /// Weight of the interval prior when the new bars are decoded: their pitches are chosen
    /// together, each interval scored by how common it is in the training tunes, so the decoder
    /// does not jump octaves where it hesitates. 0 is off (each step's likeliest token).
    #[arg(long, default_value_t = InfillOptions::DEFAULT_INTERVAL_WEIGHT, value_parser = parse_non_negative)]
    interval_weight: f64,
    /// Generation from scratch in two passes: a draft, then its middle regenerated under
    /// context guidance from its own opening and close, so the tune keeps one character
    /// (`--revise false`: one pass). Only where every bar is regenerated.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    revise: bool,
    /// Whether generated 2-bar segments may repeat others note for note, as the prior's repeat
    /// head draws it (as real tunes do), or are all new material.
    #[arg(long, value_enum, default_value_t = Repeats::default())]
    repeats: Repeats,
    /// Only pitches of this key in generated bars, e.g. "D dorian", "Bb minor", "A pentatonic".
    #[arg(long)]
    key: Option<Scale>,
    /// Only pitches in this MIDI range in generated bars, e.g. 60-84.
    #[arg(long, value_parser = parse_range)]
    range: Option<(u32, u32)>,
    /// Output MIDI file: a new file, or a regular file it replaces atomically. A symbolic link
    /// is followed and its target written; a device, FIFO or folder is refused.
    #[arg(short, long)]
    output: PathBuf,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Prior weights file. Default: the weights built into this binary.
    #[arg(long)]
    prior: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SamplerKind {
    Ddim,
    Ancestral,
}

/// The sampler's calibrations (see BENCHMARKS.md), for infill, generate and eval alike.
#[derive(clap::Args)]
struct CalibrationArgs {
    /// Added to the repeat head's odds of drawing a repeat. Default: calibrated so that results
    /// repeat as often as real tunes (0.65 where context guidance acts on kept bars, -1.5 in
    /// the revision of generation from scratch, else 0.5).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_repeat_offset)]
    repeat_offset: Option<f64>,
    /// Added to the repeat head's odds of drawing a repeat from a segment 1, 2, 3, ... segments
    /// away (comma-separated; further distances get 0). Default: calibrated so that repeats
    /// fall as far apart as in real tunes (see BENCHMARKS.md).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, value_parser = parse_repeat_offset)]
    repeat_distance_offsets: Option<Vec<f64>>,
    /// Rounds of redrawing a new 2-bar segment that comes back as an exact copy of another
    /// (context guidance copies kept bars by itself); 0 keeps such copies (the plugin's Stick to
    /// kept, with --noise-scale 1).
    #[arg(long, default_value_t = InfillOptions::DEFAULT_REDRAW_COPIES, value_parser = parse_rounds)]
    redraw_copies: usize,
    /// The sampler's noise scale at --temperature 1 (the two multiply). Default: calibrated so
    /// that new bars next to kept ones are as varied in rhythm as real tunes (1.45 where context
    /// guidance acts on kept bars, else 1).
    #[arg(long, value_parser = parse_noise_scale)]
    noise_scale: Option<f64>,
    /// The noise scale of the first 30% of the steps instead (default: --noise-scale throughout).
    /// Next to kept bars, 0.8 keeps the new bars' register as steady as real tunes keep theirs
    /// and their rhythm closer to the kept bars', at the cost of pitch OA variance.
    #[arg(long, value_parser = parse_noise_scale)]
    opening_noise_scale: Option<f64>,
}

impl CalibrationArgs {
    /// `options` with these calibrations.
    fn apply(&self, options: InfillOptions) -> InfillOptions {
        InfillOptions {
            repeat_offset: self.repeat_offset,
            repeat_distance_offsets: self.repeat_distance_offsets.clone(),
            redraw_copies: self.redraw_copies,
            noise_scale: self.noise_scale,
            opening_noise_scale: self.opening_noise_scale,
            ..options
        }
    }
}

#[derive(clap::Args)]
struct InfillArgs {
    /// The clip: a MIDI file whose melody (the part with the most notes) is rewritten.
    input: PathBuf,
    /// Bars to rewrite, 1-based and inclusive, e.g. 9-16 or 5 (one bar).
    #[arg(long, value_parser = parse_range)]
    bars: (u32, u32),
    #[command(flatten)]
    sampling: SamplingArgs,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Length in bars (rounded up to an even number, at most 64).
    #[arg(long, default_value_t = 16)]
    bars: u32,
    /// Tempo of the written file, 1 to 1000 BPM.
    #[arg(long, default_value_t = 120.0, value_parser = parse_bpm)]
    bpm: f64,
    #[command(flatten)]
    sampling: SamplingArgs,
}

/// "A-B" or "A" as an inclusive range.
fn parse_range(text: &str) -> std::result::Result<(u32, u32), String> {
    let parse = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("{text:?} is not N or N-M"));
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(text)?, parse(text)?),
    };
    if first > last {
        return Err(format!("{text:?}: the range runs backwards"));
    }
    Ok((first, last))
}

/// A number that is finite and within `low..=high`; `what` says the range in words.
fn parse_number(text: &str, low: f64, high: f64, what: &str) -> std::result::Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !value.is_finite() || !(low..=high).contains(&value) {
        return Err(format!("{text} is out of range: {what}"));
    }
    Ok(value)
}

/// A weight: a finite number of 0 or more.
fn parse_non_negative(text: &str) -> std::result::Result<f64, String> {
    parse_number(text, 0.0, f64::MAX, "it must be a finite number of 0 or more")
}

/// A fraction from 0 to 1.
fn parse_fraction(text: &str) -> std::result::Result<f64, String> {
    parse_number(text, 0.0, 1.0, "it must be a fraction from 0 to 1")
}

/// A noise scale or temperature, 0 to [`InfillOptions::MAX_NOISE_SCALE`].
fn parse_noise_scale(text: &str) -> std::result::Result<f64, String> {
    parse_number(text, 0.0, InfillOptions::MAX_NOISE_SCALE, "it must be a finite number from 0 to 100")
}

/// An offset on a repeat head logit, within ±[`InfillOptions::MAX_REPEAT_OFFSET`].
fn parse_repeat_offset(text: &str) -> std::result::Result<f64, String> {
    let max = InfillOptions::MAX_REPEAT_OFFSET;
    parse_number(text, -max, max, "it must be a finite number from -100 to 100")
}

/// A tempo in BPM.
fn parse_bpm(text: &str) -> std::result::Result<f64, String> {
    parse_number(text, 1.0, 1000.0, "a tempo must be from 1 to 1000 BPM")
}

/// How far to move along the density vector.
fn parse_density(text: &str) -> std::result::Result<f32, String> {
    Ok(parse_number(text, -100.0, 100.0, "it must be a finite number from -100 to 100")? as f32)
}

/// A count of variations, 1 to [`InfillOptions::MAX_USER_VARIATIONS`] (the plugin's range).
fn parse_variations(text: &str) -> std::result::Result<usize, String> {
    let max = InfillOptions::MAX_USER_VARIATIONS;
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{text:?}: Rebar makes 1 to {max} variations at a time (as the plugin does)")),
    }
}

/// Rounds of a sampling pass (redrawing copies, resampling), 0 to [`InfillOptions::MAX_ROUNDS`].
fn parse_rounds(text: &str) -> std::result::Result<usize, String> {
    let max = InfillOptions::MAX_ROUNDS;
    match text.trim().parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("{text:?} is not a count from 0 to {max}")),
    }
}

#[derive(clap::Args)]
struct InterpolateArgs {
    /// The melody to start from.
    a: PathBuf,
    /// The melody to end at. Both are cut to the shorter one's length.
    b: PathBuf,
    /// Number of clips, including both ends (at least 2).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Output MIDI file: a new file, or a regular file it replaces atomically. A symbolic link
    /// is followed and its target written; a device, FIFO or folder is refused.
    #[arg(short, long)]
    output: PathBuf,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    vae: Option<PathBuf>,
}

#[derive(clap::Args)]
struct AttributeArgs {
    /// The melody to change.
    input: PathBuf,
    /// How far to move along the note-density vector: 1 adds the full gap between the densest
    /// and sparsest quarter of the training windows, negative values thin the melody out.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_density)]
    density: f32,
    /// Output MIDI file: a new file, or a regular file it replaces atomically. A symbolic link
    /// is followed and its target written; a device, FIFO or folder is refused.
    #[arg(short, long)]
    output: PathBuf,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    vae: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TrainCommand {
    /// Train the 2-bar melody VAE (MusicVAE eq. 3–4: cross-entropy + β·max(KL − free bits, 0)).
    Vae(TrainVaeArgs),
    /// Train the diffusion prior on crops of 2–16 latents of the training tunes (eq. 6 ε loss).
    Prior(TrainPriorArgs),
}

#[derive(clap::Args)]
struct TrainPriorArgs {
    #[command(flatten)]
    run: RunArgs,
    /// VAE weights whose latents the prior models. Default: the weights built into this binary.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Transformer width.
    #[arg(long, default_value_t = PriorConfig::small(0).width)]
    width: usize,
    /// Self-attention layers.
    #[arg(long, default_value_t = PriorConfig::small(0).layers)]
    layers: usize,
    /// Hidden width of each feed-forward block.
    #[arg(long, default_value_t = PriorConfig::small(0).ff_width)]
    ff_width: usize,
    /// Model the latents as the VAE preprocessing leaves them, in [−1, 1], instead of scaled to
    /// unit standard deviation (how prior v2 and earlier were trained).
    #[arg(long)]
    unscaled: bool,
    /// Fraction of training crops with some latents kept clean, so the prior can infill from
    /// clean known latents [default: 0, the paper's objective alone].
    #[arg(long, value_parser = parse_fraction)]
    clean_context: Option<f64>,
    /// Start from these weights instead of random ones: a prior file, or a training checkpoint
    /// (its weight average). The architecture and data scale come from it.
    #[arg(long, conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// With --init-from a prior without copy attention, the copy pointer or the repeat head: add
    /// them (the copy weights start at 0, where the model computes nearly what the initial one
    /// did). New runs always have them.
    #[arg(long, requires = "init_from")]
    add_copy: bool,
    /// Weight of the repeat head's loss beside the ε loss.
    #[arg(long, default_value_t = PriorTrainOptions::default().repeat_weight, value_parser = parse_non_negative)]
    repeat_weight: f64,
    /// Fraction of crops that start on an 8-bar line from the tune's start.
    #[arg(long, default_value_t = PriorTrainOptions::default().phrase_crops, value_parser = parse_fraction)]
    phrase_crops: f64,
    /// Places in the tune the model learns an encoding for, in latents counted from the tune's
    /// first bar and wrapping after that many (16: a 32-bar form) [default: 0 (none) for a new
    /// run, the initial weights' with --init-from, where added places start at 0].
    #[arg(long, conflicts_with = "resume")]
    tune_positions: Option<usize>,
}

/// What every training run takes: where it lives, how long it runs, its seed and schedule.
#[derive(clap::Args)]
struct RunArgs {
    /// Training cache from `rebar dataset`: the VAE trains on its distinct windows, the prior on
    /// crops of its tunes.
    #[arg(long)]
    data: PathBuf,
    /// Validation cache: the VAE logs its reconstruction accuracy on it, the prior its ε loss.
    #[arg(long)]
    valid: Option<PathBuf>,
    /// Run directory: checkpoint.safetensors (resumable), the model file, log.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint, with its saved options.
    #[arg(long)]
    resume: bool,
    /// Total optimizer steps [default: VAE 7000, prior 20000]. On --resume a larger value extends the
    /// run; without it the run keeps its saved total.
    #[arg(long)]
    steps: Option<u64>,
    /// Examples per step [default: VAE 512 windows, prior 64 sequences].
    #[arg(long)]
    batch: Option<usize>,
    /// Peak learning rate, warmed up then decayed to a tenth [default: VAE 1e-3, prior 5e-4].
    #[arg(long, value_parser = parse_non_negative)]
    lr: Option<f64>,
    /// Seed of every random draw; the same seed gives the same run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Steps between validation passes [default: VAE 250, prior 500].
    #[arg(long)]
    eval_every: Option<u64>,
    /// Steps between checkpoints [default: VAE 500, prior 1000].
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Decay of the weight average that is exported [default: VAE 0 (off), prior 0.999].
    #[arg(long, value_parser = parse_fraction)]
    average_decay: Option<f64>,
    /// Stop (after a checkpoint) after this many minutes; resume later with --resume.
    #[arg(long, value_parser = parse_non_negative)]
    max_minutes: Option<f64>,
    /// Train on the first CUDA GPU: needs a build with the `cuda` feature. The data pipeline and
    /// the optimizer's update stay on the CPU; a run on one device resumes on the other.
    #[arg(long)]
    cuda: bool,
}

impl RunArgs {
    /// Where the model trains.
    fn device(&self) -> Result<candle_core::Device> {
        if self.cuda {
            candle_core::Device::new_cuda(0).context("--cuda: no CUDA device (or a build without the `cuda` feature)")
        } else {
            Ok(candle_core::Device::Cpu)
        }
    }

    /// The schedule: these arguments over the model's defaults.
    fn schedule(&self, defaults: Schedule) -> Schedule {
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

    fn control(&self) -> RunControl<'_> {
        RunControl {
            out_dir: &self.out,
            resume: self.resume,
            max_seconds: self.max_minutes.map(|m| m * 60.0),
            stop_at_step: None,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

#[derive(clap::Args)]
struct TrainVaeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// β: the weight of the KL term once annealed.
    #[arg(long, default_value_t = VaeTrainOptions::default().beta, value_parser = parse_non_negative)]
    beta: f64,
    /// Free bits: KL nats per window that cost nothing.
    #[arg(long, default_value_t = VaeTrainOptions::default().free_bits, value_parser = parse_non_negative)]
    free_bits: f64,
    /// Steps over which β rises from 0.
    #[arg(long, default_value_t = VaeTrainOptions::default().kl_anneal_steps)]
    kl_anneal_steps: u64,
    /// Largest random transposition, in semitones either way.
    #[arg(long, default_value_t = VaeTrainOptions::default().transpose)]
    transpose: u8,
    /// Hidden width of encoder and decoder.
    #[arg(long, default_value_t = VaeConfig::melody_2bar().hidden)]
    hidden: usize,
    /// Residual hidden layers on each side.
    #[arg(long, default_value_t = VaeConfig::melody_2bar().residual_layers)]
    residual_layers: usize,
    /// Latent dimensions.
    #[arg(long, default_value_t = VaeConfig::melody_2bar().latent)]
    latent: usize,
    /// Token embedding width in the encoder.
    #[arg(long, default_value_t = VaeConfig::melody_2bar().embed_dim)]
    embed_dim: usize,
    /// A note stored with the weights' provenance (for example the data's licence).
    #[arg(long)]
    note: Option<String>,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// What to measure. recon: the VAE's per-step argmax reconstruction accuracy over all
    /// distinct 2-bar windows of the folder (MusicVAE Table 1).
    #[arg(long, value_enum)]
    task: EvalTask,
    /// Folder of MIDI files to evaluate on. infill and uncond score every row against the first
    /// 16 bars of its tunes (those that have 16 bars).
    #[arg(long)]
    midi_dir: PathBuf,
    /// infill and uncond: a second reference, e.g. the training set's folder; every row is also
    /// scored against the first 16 bars of its tunes.
    #[arg(long)]
    reference_dir: Option<PathBuf>,
    /// Where to write the figures. infill also draws its piano-roll figure beside it (.png).
    #[arg(long)]
    json: PathBuf,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Prior weights file (infill and uncond). Default: the weights built into this binary.
    #[arg(long)]
    prior: Option<PathBuf>,
    /// uncond: sequences to generate (and prior-row draws). infill: infills per tune, and as many
    /// draws of the N(0, I) prior row.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// DDIM steps of the sampler (0: the 1000-step ancestral sampler).
    #[arg(long, default_value_t = default_steps())]
    steps: usize,
    /// DDIM η: 0 is deterministic given the start noise, 1 is as random as the ancestral sampler.
    #[arg(long, default_value_t = default_eta(), value_parser = parse_fraction)]
    eta: f64,
    /// Scale of the sampler's noise (0 to 100).
    #[arg(long, default_value_t = 1.0, value_parser = parse_noise_scale)]
    temperature: f64,
    /// Takes of every reverse step (RePaint resampling); 1 is plain Algorithm 1.
    #[arg(long, default_value_t = 1, value_parser = parse_rounds)]
    resample: usize,
    /// Weight of reconstruction guidance; 0 is plain Algorithm 1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_non_negative)]
    guidance: f64,
    /// Known latents re-noised at every step (Algorithm 1) or kept clean (a prior trained with
    /// clean context).
    #[arg(long, value_enum, default_value_t = KnownLatents::Renoised)]
    known: KnownLatents,
    /// With --known renoised: the fraction of the steps, from the noisiest, that paste the known
    /// latents clean first (0: Algorithm 1 throughout).
    #[arg(long, default_value_t = InfillOptions::DEFAULT_CLEAN_STEPS, value_parser = parse_fraction)]
    clean_steps: f64,
    /// Context guidance weight (0: off; see `rebar infill --help`).
    #[arg(long, default_value_t = InfillOptions::default().context_guidance, value_parser = parse_non_negative)]
    context_guidance: f64,
    /// Repeats drawn from the prior's repeat head, or none.
    #[arg(long, value_enum, default_value_t = Repeats::default())]
    repeats: Repeats,
    #[command(flatten)]
    calibration: CalibrationArgs,
    /// Weight of the decoder's interval prior, for every row's latents (see `rebar infill --help`).
    #[arg(long, default_value_t = InfillOptions::DEFAULT_INTERVAL_WEIGHT, value_parser = parse_non_negative)]
    interval_weight: f64,
    /// Generation from scratch in two passes: a draft, then its middle regenerated under
    /// context guidance from its own opening and close, so the tune keeps one character
    /// (`--revise false`: one pass). Only where every bar is regenerated.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    revise: bool,
    /// Where the DDIM steps fall.
    #[arg(long, value_enum, default_value_t = default_spacing())]
    spacing: Spacing,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EvalTask {
    Recon,
    Infill,
    Uncond,
    /// The VAE's latent tools: mean Hamming distance to A along interpolations between pairs of
    /// windows (MusicVAE Fig. 3), and mean note count after adding the density vector.
    Tools,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The MIDI file (type 0 or 1, any PPQ).
    file: PathBuf,
    /// The melody part: its index in the list printed, or text in its name. Default: the part
    /// with the most notes.
    #[arg(long)]
    track: Option<MelodySelector>,
}

#[derive(clap::Args)]
struct DatasetArgs {
    /// Folder to search, recursively, for .mid and .midi files.
    #[arg(long)]
    midi_dir: PathBuf,
    /// Where to write the cache (a safetensors file).
    #[arg(long)]
    out: PathBuf,
    /// The melody part of each file: an index or text in its name. Default: the part with the
    /// most notes.
    #[arg(long)]
    track: Option<MelodySelector>,
    /// Read files that state no meter as 4/4 (MIDI's default) instead of skipping them.
    #[arg(long)]
    allow_missing_meter: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
}

/// `rebar inspect … | head` closes the pipe before rebar is done writing. Rust ignores SIGPIPE,
/// so the next `println!` would panic; with the signal's default action restored, rebar ends
/// as Unix tools do, silently.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Training frees and allocates the same tens of megabytes of activations every step. glibc
/// returns blocks above its mmap threshold (and a large free heap top) to the kernel at once, so
/// the next step page-faults them in again, zeroed: a third of a CPU training step's time in
/// `perf` (BENCHMARKS.md, session 18). Keeping freed memory in the heap trains about 1.5 times
/// as fast at batch 1024; the peak memory is the same, it is only not given back between steps.
fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any thread exists or allocates; mallopt only
    // changes glibc's thresholds, and a refused value leaves the default in place.
    unsafe {
        // The largest threshold glibc accepts on 64-bit: 32 MiB.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 1 << 30);
    }
}

fn main() -> Result<()> {
    end_quietly_on_a_closed_pipe();
    keep_freed_memory_for_reuse();
    match Cli::parse().command {
        Command::Inspect(args) => inspect(args),
        Command::Dataset(args) => dataset(args),
        Command::Train(TrainCommand::Vae(args)) => train_vae_command(args),
        Command::Eval(args) => eval(args),
        Command::Interpolate(args) => interpolate(args),
        Command::Attribute(args) => attribute(args),
        Command::Infill(args) => infill(args),
        Command::Generate(args) => generate(args),
        Command::Bench(args) => bench(args),
        Command::Train(TrainCommand::Prior(args)) => train_prior_command(args),
    }
}

fn inspect(args: InspectArgs) -> Result<()> {
    let file = read_file(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    println!(
        "{}: type {}, {} ticks per quarter note, {} tracks",
        args.file.display(),
        file.format,
        file.ppq,
        file.track_count
    );
    let bar_of = |tick| ticks_to_steps(tick, file.ppq) / 16.0 + 1.0;
    for (tick, bpm) in &file.tempos {
        println!("  tempo {bpm:.2} BPM at bar {:.2}", bar_of(*tick));
    }
    if file.meters.is_empty() {
        println!("  no meter stated (MIDI default 4/4)");
    }
    for (tick, meter) in &file.meters {
        println!("  meter {meter} at bar {:.2}", bar_of(*tick));
    }
    for (tick, key) in &file.keys {
        println!("  key {key} at bar {:.2}", bar_of(*tick));
    }
    println!("parts:");
    for (index, part) in file.parts.iter().enumerate() {
        println!("  {index}: {} ({} notes)", part.label(), part.notes.len());
    }

    let selector = args.track.unwrap_or_default();
    let part = file.select(&selector).with_context(|| format!("choosing the melody of {}", args.file.display()))?;
    let (melody, report) = quantize(&file, part).with_context(|| format!("quantizing {}", args.file.display()))?;
    println!(
        "melody: {} ({} bars of 16 steps, {} notes; {} off-grid onsets snapped, {} short notes and {} chord notes dropped, {} moved by octaves)\n",
        part.label(),
        melody.bars,
        melody.notes.len(),
        report.snapped_onsets,
        report.dropped_short,
        report.dropped_polyphony,
        report.octave_shifted
    );
    print!("{}", roll::render(&melody));
    Ok(())
}

fn dataset(args: DatasetArgs) -> Result<()> {
    let started = Instant::now();
    let options = BuildOptions {
        selector: args.track.unwrap_or_default(),
        allow_missing_meter: args.allow_missing_meter,
        progress: true,
    };
    let dataset =
        build_dataset(&args.midi_dir, &options).with_context(|| format!("walking {}", args.midi_dir.display()))?;
    anyhow::ensure!(dataset.summary.files_found > 0, "no .mid or .midi files under {}", args.midi_dir.display());
    save_dataset(&dataset, &args.out)?;
    println!("{}", dataset.summary.render());
    if let Some(path) = args.summary_json {
        let json = serde_json::to_string_pretty(&dataset.summary)?;
        rebar_engine::fsutil::write_atomically(&path, json.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("wrote {} in {:.1} s", args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

fn train_vae_command(args: TrainVaeArgs) -> Result<()> {
    let device = args.run.device()?;
    let train = load_dataset(&args.run.data)?;
    let valid = args.run.valid.as_deref().map(load_dataset).transpose()?;
    let config = VaeConfig {
        hidden: args.hidden,
        residual_layers: args.residual_layers,
        latent: args.latent,
        embed_dim: args.embed_dim,
        ..VaeConfig::melody_2bar()
    };
    let options = VaeTrainOptions {
        schedule: args.run.schedule(VaeTrainOptions::default().schedule),
        beta: args.beta,
        free_bits: args.free_bits,
        kl_anneal_steps: args.kl_anneal_steps,
        transpose: args.transpose,
    };
    let provenance = serde_json::json!({
        "data": args.run.data.display().to_string(),
        "tunes": train.summary.tunes,
        "distinct_windows": train.windows.len(),
        "seed": args.run.seed,
        "note": args.note,
    });
    println!(
        "training the VAE on {} distinct windows ({} validation), {} steps of {}",
        train.windows.len(),
        valid.as_ref().map_or(0, |v| v.windows.len()),
        options.schedule.steps,
        options.schedule.batch
    );
    let started = Instant::now();
    let run = VaeRun {
        config,
        options,
        train: &train.windows,
        valid: valid.as_ref().map_or(&[][..], |v| &v.windows[..]),
        provenance,
        device,
    };
    let last = train_vae(run, &args.run.control())?;
    println!("{}", serde_json::to_string(&last)?);
    println!(
        "stopped at step {} after {:.1} s in this process; model in {}",
        last.step,
        started.elapsed().as_secs_f64(),
        args.run.out.join("vae.safetensors").display()
    );
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
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
fn sixteen_bars_of(tunes: usize, dir: &Path) -> String {
    format!("first 16 bars of the {tunes} tunes of {} that have 16 bars", dir.display())
}

/// The VAE at `path`, or the embedded one.
fn load_vae(path: Option<&Path>) -> Result<MelodyVae> {
    let device = candle_core::Device::Cpu;
    Ok(match path {
        Some(path) => MelodyVae::load(path, &device)?,
        None => MelodyVae::embedded(&device)?,
    })
}

fn load_prior(path: Option<&Path>, device: &candle_core::Device) -> Result<TrainedPrior> {
    Ok(match path {
        Some(path) => TrainedPrior::load(path, device)?,
        None => TrainedPrior::embedded(device)?,
    })
}

/// The melody of a MIDI file (its part with the most notes).
fn read_melody(path: &Path) -> Result<Melody> {
    let file = read_file(path).with_context(|| format!("reading {}", path.display()))?;
    let part = file
        .select(&MelodySelector::MostNotes)
        .with_context(|| format!("choosing the melody of {}", path.display()))?;
    Ok(quantize(&file, part).with_context(|| format!("quantizing {}", path.display()))?.0)
}

fn interpolate(args: InterpolateArgs) -> Result<()> {
    anyhow::ensure!(args.steps >= 2, "--steps must be at least 2 (both ends)");
    let started = Instant::now();
    let model = load_vae(args.vae.as_deref())?;
    let (a, b) = (read_melody(&args.a)?, read_melody(&args.b)?);
    let clips = tools::interpolate(&model, &to_segments(&a), &to_segments(&b), args.steps)?;
    let joined: Vec<_> = clips.iter().flatten().copied().collect();
    write_melody(&melody_from_segments(&joined, &a), &args.output)?;
    println!(
        "wrote {} clips of {} bars from {} to {} into {} in {:.0} ms",
        args.steps,
        clips[0].len() * 2,
        args.a.display(),
        args.b.display(),
        args.output.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

fn attribute(args: AttributeArgs) -> Result<()> {
    let started = Instant::now();
    let model = load_vae(args.vae.as_deref())?;
    let vector = model.attribute(DENSITY).context("the VAE file has no note-density vector")?.to_vec();
    let melody = read_melody(&args.input)?;
    let segments = to_segments(&melody);
    let changed = melody_from_segments(&tools::apply_attribute(&model, &segments, &vector, args.density)?, &melody);
    write_melody(&changed, &args.output)?;
    println!(
        "density {:+}: {} notes became {} over {} bars; wrote {} in {:.0} ms",
        args.density,
        melody.notes.len(),
        changed.notes.len(),
        changed.bars,
        args.output.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

fn train_prior_command(args: TrainPriorArgs) -> Result<()> {
    let device = args.run.device()?;
    let vae = load_vae(args.vae.as_deref())?;
    let preprocess = vae.preprocess.clone().context("the VAE file has no latent preprocessing")?;
    let defaults = PriorTrainOptions::default();
    let options = PriorTrainOptions {
        schedule: args.run.schedule(defaults.schedule.clone()),
        clean_context: args.clean_context.unwrap_or(defaults.clean_context),
        repeat_weight: args.repeat_weight,
        phrase_crops: args.phrase_crops,
        ..defaults
    };
    anyhow::ensure!((0.0..=1.0).contains(&options.clean_context), "--clean-context is a fraction from 0 to 1");
    let started = Instant::now();
    let train_data = load_dataset(&args.run.data)?;
    let train = encode_tunes(&vae, &train_data.tunes, options.transpose)?;
    let valid = match &args.run.valid {
        Some(path) => encode_tunes(&vae, &load_dataset(path)?.tunes, 0)?,
        None => rebar_engine::train::prior::LatentSequences { sequences: Vec::new(), dim: preprocess.prior_dim() },
    };
    println!(
        "encoded {} training sequences (tunes × transpositions) and {} validation tunes into {}-dim latents in {:.1} s",
        train.sequences.len(),
        valid.sequences.len(),
        preprocess.prior_dim(),
        started.elapsed().as_secs_f64()
    );
    let spread = train.standard_deviation();
    let init = args.init_from.as_deref().map(initial_weights).transpose()?;
    let resumed = resumed_config(&args)?;
    let config = match (&init, &resumed) {
        (Some((config, _)), _) => PriorConfig {
            clean_context: options.clean_context > 0.0,
            copy_attention: config.copy_attention || args.add_copy,
            copy_pointer: config.copy_pointer || args.add_copy,
            repeat_head: config.repeat_head || args.add_copy,
            tune_positions: args.tune_positions.unwrap_or(config.tune_positions),
            ..config.clone()
        },
        (None, resumed) => PriorConfig {
            width: args.width,
            layers: args.layers,
            ff_width: args.ff_width,
            data_scale: match resumed {
                Some(saved) => saved.data_scale,
                None if args.unscaled => 1.0,
                None => 1.0 / spread,
            },
            clean_context: resumed.as_ref().map_or(options.clean_context > 0.0, |saved| saved.clean_context),
            copy_attention: resumed.as_ref().is_none_or(|saved| saved.copy_attention),
            copy_pointer: resumed.as_ref().is_none_or(|saved| saved.copy_pointer),
            repeat_head: resumed.as_ref().is_none_or(|saved| saved.repeat_head),
            tune_positions: match resumed {
                Some(saved) => saved.tune_positions,
                None => args.tune_positions.unwrap_or(PriorConfig::small(0).tune_positions),
            },
            ..PriorConfig::small(preprocess.prior_dim())
        },
    };
    anyhow::ensure!(
        config.latent_dim == preprocess.prior_dim(),
        "the initial weights model {}-dim latents, this VAE's are {}-dim",
        config.latent_dim,
        preprocess.prior_dim()
    );
    println!("latent standard deviation {spread:.4}: the prior models latents × {:.4}", config.data_scale);
    let run = PriorRun {
        config,
        options,
        train,
        valid,
        provenance: serde_json::json!({
            "data": args.run.data.display().to_string(),
            "tunes": train_data.summary.tunes,
            "vae": vae.provenance,
            "seed": args.run.seed,
            "init_from": args.init_from.as_ref().map(|p| p.display().to_string()),
        }),
        vae_preprocess: serde_json::to_value(&preprocess)?,
        metric_truth: training_truth(&train_data.tunes),
        init: init.map(|(_, weights)| weights),
        device,
    };
    let last = train_prior(run, &args.run.control())?;
    println!("{}", serde_json::to_string(&last)?);
    println!("model in {}", args.run.out.join("prior.safetensors").display());
    Ok(())
}

/// The architecture and weights to fine-tune from: a prior file, or a prior training checkpoint's
/// weight average (its raw weights when it kept no average).
fn initial_weights(path: &Path) -> Result<(PriorConfig, HashMap<String, candle_core::Tensor>)> {
    use rebar_engine::checkpoint::Checkpoint;
    use rebar_engine::prior::{FORMAT, OLDEST_VERSION, VERSION};
    let checkpoint = match Checkpoint::read_of_versions(path, FORMAT, OLDEST_VERSION..=VERSION) {
        Ok(model) => model,
        Err(_) => {
            let mut saved = Checkpoint::read(
                path,
                rebar_engine::train::prior::TRAIN_FORMAT,
                rebar_engine::train::run::TRAIN_VERSION,
            )
            .with_context(|| format!("{} is neither a prior file nor a prior training checkpoint", path.display()))?;
            let averaged: HashMap<String, candle_core::Tensor> = saved
                .tensors
                .iter()
                .filter_map(|(name, t)| name.strip_prefix("average.").map(|n| (n.to_string(), t.clone())))
                .collect();
            if !averaged.is_empty() {
                saved.tensors = averaged;
            }
            saved
        }
    };
    Ok((checkpoint.json("config")?, checkpoint.tensors))
}

/// The saved config of the run being resumed, if resuming: it keeps its `data_scale` (the
/// encoder's float sums may differ in the last bits from run to run), `clean_context`,
/// `copy_attention`, `copy_pointer`, `repeat_head` and `tune_positions`.
fn resumed_config(args: &TrainPriorArgs) -> Result<Option<PriorConfig>> {
    if !args.run.resume {
        return Ok(None);
    }
    let saved = rebar_engine::checkpoint::Checkpoint::read(
        &args.run.control().checkpoint_path(),
        rebar_engine::train::prior::TRAIN_FORMAT,
        rebar_engine::train::run::TRAIN_VERSION,
    )?;
    Ok(Some(saved.json::<PriorConfig>("config")?))
}

/// The default sampler's step spacing.
fn default_spacing() -> Spacing {
    match Sampler::DEFAULT {
        Sampler::Ddim { spacing, .. } => spacing,
        Sampler::Ancestral => Spacing::Uniform,
    }
}

/// The default sampler's step count.
fn default_steps() -> usize {
    match Sampler::DEFAULT {
        Sampler::Ddim { steps, .. } => steps,
        Sampler::Ancestral => 0,
    }
}

/// The default sampler's η.
fn default_eta() -> f64 {
    match Sampler::DEFAULT {
        Sampler::Ddim { eta, .. } => eta,
        Sampler::Ancestral => 1.0,
    }
}

/// The engine from the sampling arguments' weights.
fn load_engine(args: &SamplingArgs) -> Result<Engine> {
    let vae = load_vae(args.vae.as_deref())?;
    let prior = load_prior(args.prior.as_deref(), &vae.device)?;
    Ok(Engine::new(vae, prior)?)
}

impl SamplingArgs {
    fn options(&self) -> InfillOptions {
        InfillOptions {
            variations: self.variations,
            temperature: self.temperature,
            known: self.known,
            context_guidance: self.context_guidance,
            interval_weight: self.interval_weight,
            revise: self.revise,
            repeats: self.repeats,
            seed: self.seed,
            sampler: match self.sampler {
                SamplerKind::Ddim => {
                    Sampler::Ddim { steps: self.steps, eta: default_eta(), spacing: default_spacing() }
                }
                SamplerKind::Ancestral => Sampler::Ancestral,
            },
            key: self.key.clone(),
            pitch_range: self.range.map(|(low, high)| (low.min(127) as u8, high.min(127) as u8)),
            ..self.calibration.apply(InfillOptions::default())
        }
    }

    /// Checks, before any sampling, that the output can be written: a regular file or a new
    /// name, or a symbolic link to one (see `fsutil`). A device such as /dev/null is refused
    /// here, so numbered variations never land beside it as /dev/null-1.mid.
    fn check_output(&self) -> Result<()> {
        rebar_engine::fsutil::write_target(&self.output)
            .map(drop)
            .with_context(|| format!("cannot write {}", self.output.display()))
    }

    /// Writes each variation; returns the paths.
    fn write(&self, melodies: &[Melody]) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for (i, melody) in melodies.iter().enumerate() {
            let path = if melodies.len() == 1 {
                self.output.clone()
            } else {
                let stem = self.output.file_stem().unwrap_or_default().to_string_lossy();
                self.output.with_file_name(format!("{stem}-{}.mid", i + 1))
            };
            write_melody(melody, &path)?;
            paths.push(path);
        }
        Ok(paths)
    }
}

fn infill(args: InfillArgs) -> Result<()> {
    let started = Instant::now();
    args.sampling.check_output()?;
    let engine = load_engine(&args.sampling)?;
    let loaded = started.elapsed();
    let clip = read_melody(&args.input)?;
    let (first, last) = args.bars;
    anyhow::ensure!(
        first >= 1 && last <= clip.bars,
        "--bars {first}-{last} is outside the clip's bars 1-{}",
        clip.bars
    );
    let selection = BarSelection::range(first - 1, last - 1, clip.bars);
    let options = args.sampling.options();
    let sampling = Instant::now();
    let results =
        engine.infill(&clip, &selection, &options, &std::sync::atomic::AtomicBool::new(false), &mut |_| {})?;
    let sampled = sampling.elapsed();
    let paths = args.sampling.write(&results)?;
    let applied = engine.applied(&options, &selection.segments_of_clip(clip.bars));
    println!(
        "rewrote bars {first}-{last} of {} ({} bars) in {} variations with {:?}, context guidance {}, noise scale {} ({} in the opening steps), {}, {}{} (seed {}): models loaded in {:.0} ms, sampled in {:.0} ms",
        args.input.display(),
        clip.bars,
        results.len(),
        options.sampler,
        applied.context_guidance,
        applied.noise_scale * options.temperature,
        applied.opening_noise_scale * options.temperature,
        revision_note(&engine, &options, &selection, clip.bars),
        interval_prior_note(&engine, &options),
        options.key.as_ref().map_or(String::new(), |k| format!(", key {k}")),
        options.seed,
        loaded.as_secs_f64() * 1e3,
        sampled.as_secs_f64() * 1e3
    );
    for path in paths {
        println!("  wrote {}", path.display());
    }
    Ok(())
}

/// Whether generation from scratch revised its drafts, and where, for the summary line.
fn revision_note(engine: &Engine, options: &InfillOptions, selection: &BarSelection, bars: u32) -> String {
    let revised = engine.revision_of(options, selection, bars).map(|middle| middle.selected()).unwrap_or_default();
    match (revised.first(), revised.last()) {
        (Some(first), Some(last)) => format!(
            "drafts revised in bars {}-{} under context guidance {}",
            first + 1,
            last + 1,
            options.context_guidance
        ),
        _ => "one pass".into(),
    }
}

/// How the latents were decoded, for the summary line.
fn interval_prior_note(engine: &Engine, options: &InfillOptions) -> String {
    match engine.vae.applied_interval_weight(options.interval_weight) {
        0.0 if engine.vae.intervals.is_none() => "interval prior off (the VAE file has none)".into(),
        0.0 => "interval prior off".into(),
        weight => format!("interval prior {weight}"),
    }
}

fn generate(args: GenerateArgs) -> Result<()> {
    let started = Instant::now();
    args.sampling.check_output()?;
    let engine = load_engine(&args.sampling)?;
    let bars = args.bars.clamp(2, engine.max_bars()).div_ceil(2) * 2;
    let silence =
        Melody { notes: Vec::new(), bars, bpm: args.bpm, meter: rebar_engine::midi::Meter::FOUR_FOUR, key: None };
    let options = args.sampling.options();
    let sampling = Instant::now();
    let results = engine.infill(
        &silence,
        &BarSelection::all(bars),
        &options,
        &std::sync::atomic::AtomicBool::new(false),
        &mut |_| {},
    )?;
    let sampled = sampling.elapsed();
    let paths = args.sampling.write(&results)?;
    println!(
        "generated {} melodies of {bars} bars with {:?}, {}, {} (seed {}) in {:.0} ms ({:.0} ms in all)",
        results.len(),
        options.sampler,
        revision_note(&engine, &options, &BarSelection::all(bars), bars),
        interval_prior_note(&engine, &options),
        options.seed,
        sampled.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
    for path in paths {
        println!("  wrote {}", path.display());
    }
    Ok(())
}

/// The framewise OA statistics of the first 16 bars of the training tunes that have them.
fn training_truth(tunes: &[rebar_engine::data::Tune]) -> SetStats {
    melody_stats(&first_sixteen_bars(tunes), OaForm::Exact)
}

fn bench(args: BenchArgs) -> Result<()> {
    let vae = load_vae(args.vae.as_deref())?;
    let prior = load_prior(args.prior.as_deref(), &vae.device)?;
    let engine = Engine::new(vae, prior)?;
    // A real 32-bar clip: a fixture reel, repeated.
    let reel = read_melody(Path::new("tests/fixtures/ryans_jimmy_holmes_reel.mid"))?;
    let mut clip = Melody { notes: Vec::new(), bars: 32, ..reel.clone() };
    for copy in 0..32u32.div_ceil(reel.bars) {
        let offset = rebar_engine::time::Bar(copy * reel.bars).start();
        clip.notes.extend(reel.notes.iter().map(|n| rebar_engine::melody::Note { start: n.start + offset, ..*n }));
    }
    clip.notes.retain(|n| n.end().0 <= 32 * 16);
    let selection = BarSelection::range(12, 19, 32);
    let never = std::sync::atomic::AtomicBool::new(false);
    let time = |selection: &BarSelection, options: InfillOptions, runs: usize| -> Result<(f64, f64)> {
        engine.infill(&clip, selection, &options, &never, &mut |_| {})?; // warm-up
        let mut ms: Vec<f64> = Vec::with_capacity(runs);
        for seed in 0..runs as u64 {
            let started = Instant::now();
            engine.infill(&clip, selection, &InfillOptions { seed, ..options.clone() }, &never, &mut |_| {})?;
            ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        Ok((pick(0.5), pick(0.95)))
    };
    let fast = InfillOptions { variations: 4, ..InfillOptions::default() };
    // The paper's sampler as the paper runs it: one model row per variation, no context guidance.
    let slow = InfillOptions { sampler: Sampler::Ancestral, context_guidance: 0.0, ..fast.clone() };
    let (fast_p50, fast_p95) = time(&selection, fast.clone(), args.runs.max(1))?;
    let (slow_p50, slow_p95) = time(&selection, slow, args.ancestral_runs.max(1))?;
    // Every bar regenerated: generation from scratch, a draft and its revision.
    let (whole_p50, whole_p95) = time(&BarSelection::all(32), fast.clone(), args.runs.max(1))?;
    let applied = engine.applied(&fast, &selection.segments_of_clip(32));
    let report = serde_json::json!({
        "task": "infill 8 bars of a 32-bar clip, 4 variations",
        "threads": candle_core::utils::get_num_threads(),
        "default": {
            "sampler": format!("{:?}", Sampler::DEFAULT),
            "context_guidance": fast.context_guidance,
            "noise_scale": applied.noise_scale,
            "opening_noise_scale": applied.opening_noise_scale,
            "p50_ms": fast_p50, "p95_ms": fast_p95, "runs": args.runs,
        },
        "ancestral": {"sampler": "Ancestral (1000 steps)", "context_guidance": 0.0, "p50_ms": slow_p50, "p95_ms": slow_p95, "runs": args.ancestral_runs},
        "speedup_p50": slow_p50 / fast_p50,
        "whole_clip": {
            "task": "regenerate every bar of the 32-bar clip, 4 variations (draft and revision)",
            "revised": engine.revision_of(&fast, &BarSelection::all(32), 32).is_some(),
            "p50_ms": whole_p50, "p95_ms": whole_p95, "runs": args.runs,
        },
    });
    let text = serde_json::to_string_pretty(&report)?;
    rebar_engine::fsutil::write_atomically(&args.json, text.as_bytes())?;
    println!("{text}");
    Ok(())
}
