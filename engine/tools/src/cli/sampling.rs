//! What `infill`, `generate` and `eval` share: the musician's controls (a [`Request`]), the
//! engine's tuning for calibration and evaluation (a [`Tuning`], every default the shipped one),
//! and the engine's enums by name.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rebar_engine::engine::{BarSelection, Engine, NoiseScales, RepeatOffsets, Repeats, Request, Tuning};
use rebar_engine::melody::scale::Scale;
use rebar_engine::melody::Melody;
use rebar_engine::midi::write_melody;
use rebar_engine::sample::{Sampler, Spacing};

use super::models::load_engine;
use super::parse::{
    name_of, one_of, parse_noise_scale, parse_non_negative, parse_range, parse_repeat_offset, parse_rounds,
    parse_variations,
};

/// `--repeats`: whether generated segments may repeat others note for note.
pub const REPEATS: &[(&str, Repeats, &str)] = &[
    ("drawn", Repeats::Drawn, "the prior's repeat head draws which new segments repeat which, as real tunes repeat"),
    ("keep-form", Repeats::KeepForm, "new segments repeat where the segments they replace repeated"),
    ("off", Repeats::Off, "every new segment is new material"),
];

/// `--spacing`: where a strided sampler's steps fall.
pub const SPACINGS: &[(&str, Spacing, &str)] =
    &[("uniform", Spacing::Uniform, "evenly"), ("quadratic", Spacing::Quadratic, "denser where little noise is left")];

/// The musician's controls, as the plugin offers them.
#[derive(clap::Args)]
pub struct RequestArgs {
    /// Seed: the same seed and input give the same result.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Noise scale: below 1 is tamer, above 1 wilder (0 to 100).
    #[arg(long, default_value_t = 1.0, value_parser = parse_noise_scale)]
    pub temperature: f64,
    /// Whether generated 2-bar segments may repeat others note for note, as the prior's repeat
    /// head draws it (as real tunes do), or are all new material.
    #[arg(long, value_parser = one_of(REPEATS), default_value = name_of(REPEATS, Repeats::default()))]
    pub repeats: Repeats,
    /// Let more new phrases repeat the kept bars note for note (the plugin's Stick to kept): the
    /// copies context guidance makes of them are kept, and the sampler's noise is not scaled up.
    #[arg(long)]
    pub stick_to_kept: bool,
}

impl RequestArgs {
    /// The request for `variations` of `selection`, with every pitch allowed.
    pub fn request(&self, selection: BarSelection, variations: usize) -> Request {
        Request {
            variations,
            seed: self.seed,
            temperature: self.temperature,
            repeats: self.repeats,
            stick_to_kept: self.stick_to_kept,
            ..Request::new(selection)
        }
    }
}

/// The engine's calibrated values, for calibration and evaluation (every default is the
/// shipped one; see `Tuning` in the engine).
#[derive(clap::Args)]
pub struct TuningArgs {
    /// Context guidance weight: above 0, every step also looks at the kept bars exactly and
    /// follows them this many times as closely (1: clean context; 2-3: closer still, twice the
    /// compute). 0 is off: the paper's Algorithm 1.
    #[arg(long, default_value_t = Tuning::default().context_guidance, value_parser = parse_non_negative)]
    pub context_guidance: f64,
    /// Weight of the interval prior when the new bars are decoded: their pitches are chosen
    /// together, each interval scored by how common it is in the training tunes, so the decoder
    /// does not jump octaves where it hesitates. 0 is off (each step's likeliest token).
    #[arg(long, default_value_t = Tuning::default().interval_weight, value_parser = parse_non_negative)]
    pub interval_weight: f64,
    /// Generation from scratch in two passes: a draft, then its middle regenerated under
    /// context guidance from its own opening and close, so the tune keeps one character
    /// (`--revise false`: one pass). Only where every bar is regenerated.
    #[arg(long, default_value_t = Tuning::default().revise, action = clap::ArgAction::Set)]
    pub revise: bool,
    /// Added to the repeat head's odds of drawing a repeat, everywhere. Default: calibrated so
    /// that results repeat as often as real tunes (0.65 where context guidance acts on kept bars,
    /// -1.5 in the revision of generation from scratch, else 0.5).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_repeat_offset)]
    pub repeat_offset: Option<f64>,
    /// Added to the repeat head's odds of drawing a repeat from a segment 1, 2, 3, ... segments
    /// away (comma-separated; further distances get 0). Default: calibrated so that repeats
    /// fall as far apart as in real tunes.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, value_parser = parse_repeat_offset)]
    pub repeat_distance_offsets: Option<Vec<f64>>,
    /// Rounds of redrawing a new 2-bar segment that comes back as an exact copy of another
    /// (context guidance copies kept bars by itself); 0 keeps such copies.
    #[arg(long, default_value_t = Tuning::default().redraw_copies, value_parser = parse_rounds)]
    pub redraw_copies: usize,
    /// The sampler's noise scale at --temperature 1 (the two multiply), everywhere. Default:
    /// calibrated so that new bars next to kept ones are as varied in rhythm as real tunes (1.45
    /// where context guidance acts on kept bars, else 1).
    #[arg(long, value_parser = parse_noise_scale)]
    pub noise_scale: Option<f64>,
    /// The noise scale of the first 30% of the steps instead (default: --noise-scale throughout).
    /// Next to kept bars, 0.8 keeps the new bars' register as steady as real tunes keep theirs
    /// and their rhythm closer to the kept bars', at the cost of pitch OA variance.
    #[arg(long, value_parser = parse_noise_scale)]
    pub opening_noise_scale: Option<f64>,
}

impl TuningArgs {
    /// The shipped tuning with these values and `sampler`.
    pub fn tuning(&self, sampler: Sampler) -> Tuning {
        let shipped = Tuning::default();
        Tuning {
            sampler,
            context_guidance: self.context_guidance,
            interval_weight: self.interval_weight,
            revise: self.revise,
            repeat_offset: self.repeat_offset.map_or(shipped.repeat_offset, RepeatOffsets::all),
            repeat_distance_offsets: self.repeat_distance_offsets.clone().unwrap_or(shipped.repeat_distance_offsets),
            redraw_copies: self.redraw_copies,
            noise_scale: self.noise_scale.map_or(shipped.noise_scale, NoiseScales::all),
            opening_noise_scale: self.opening_noise_scale,
        }
    }
}

/// Sampling controls shared by `infill` and `generate`.
#[derive(clap::Args)]
pub struct SamplingArgs {
    /// Number of variations, 1 to 8 (the plugin's range); with more than one, OUT.mid becomes
    /// OUT-1.mid, OUT-2.mid, …
    #[arg(long, default_value_t = 4, value_parser = parse_variations)]
    pub variations: usize,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Only pitches of this key in generated bars, e.g. "D dorian", "Bb minor", "A pentatonic".
    #[arg(long)]
    pub key: Option<Scale>,
    /// Only pitches in this MIDI range in generated bars, e.g. 60-84.
    #[arg(long, value_parser = parse_range)]
    pub range: Option<(u32, u32)>,
    /// DDIM steps of the fast sampler; 1000 with --sampler ancestral is the paper's sampler.
    #[arg(long, default_value_t = default_steps())]
    pub steps: usize,
    /// Reverse process: ddim (fast, default) or ancestral (all 1000 DDPM steps).
    #[arg(long, value_enum, default_value_t = SamplerKind::Ddim)]
    pub sampler: SamplerKind,
    #[command(flatten)]
    pub tuning: TuningArgs,
    /// Output MIDI file: a new file, or a regular file it replaces atomically. A symbolic link
    /// is followed and its target written; a device, FIFO or folder is refused.
    #[arg(short, long)]
    pub output: PathBuf,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// Prior weights file. Default: the weights built into this binary.
    #[arg(long)]
    pub prior: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SamplerKind {
    Ddim,
    Ancestral,
}

/// The shipped sampler's step spacing.
pub fn default_spacing() -> Spacing {
    match Tuning::default().sampler {
        Sampler::Ddim { spacing, .. } => spacing,
        Sampler::Ancestral => Spacing::Uniform,
    }
}

/// The shipped sampler's step count.
pub fn default_steps() -> usize {
    match Tuning::default().sampler {
        Sampler::Ddim { steps, .. } => steps,
        Sampler::Ancestral => 0,
    }
}

/// The shipped sampler's η.
pub fn default_eta() -> f64 {
    match Tuning::default().sampler {
        Sampler::Ddim { eta, .. } => eta,
        Sampler::Ancestral => 1.0,
    }
}

impl SamplingArgs {
    /// The engine's request for `selection` from these arguments.
    pub fn request(&self, selection: BarSelection) -> Request {
        Request {
            key: self.key.clone(),
            pitch_range: self.range.map(|(low, high)| (low.min(127) as u8, high.min(127) as u8)),
            ..self.request.request(selection, self.variations)
        }
    }

    /// The engine from these arguments' weights files, with their tuning.
    pub fn engine(&self) -> Result<Engine> {
        let sampler = match self.sampler {
            SamplerKind::Ddim => Sampler::Ddim { steps: self.steps, eta: default_eta(), spacing: default_spacing() },
            SamplerKind::Ancestral => Sampler::Ancestral,
        };
        Ok(load_engine(self.vae.as_deref(), self.prior.as_deref())?.with_tuning(self.tuning.tuning(sampler))?)
    }

    /// Checks, before any sampling, that the output can be written: a regular file or a new
    /// name, or a symbolic link to one (see `fsutil`). A device such as /dev/null is refused
    /// here, so numbered variations never land beside it as /dev/null-1.mid.
    pub fn check_output(&self) -> Result<()> {
        rebar_engine::fsutil::write_target(&self.output)
            .map(drop)
            .with_context(|| format!("cannot write {}", self.output.display()))
    }

    /// Writes each variation; returns the paths.
    pub fn write(&self, melodies: &[Melody]) -> Result<Vec<PathBuf>> {
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

/// Whether generation from scratch revised its drafts, and where, for the summary line.
pub fn revision_note(engine: &Engine, request: &Request, bars: u32) -> String {
    let revised = engine.revision_of(request, bars).map(|middle| middle.selected()).unwrap_or_default();
    match (revised.first(), revised.last()) {
        (Some(first), Some(last)) => format!(
            "drafts revised in bars {}-{} under context guidance {}",
            first + 1,
            last + 1,
            engine.tuning().context_guidance
        ),
        _ => "one pass".into(),
    }
}

/// How the latents were decoded, for the summary line.
pub fn interval_prior_note(engine: &Engine) -> String {
    match engine.vae.applied_interval_weight(engine.tuning().interval_weight) {
        0.0 if engine.vae.intervals.is_none() => "interval prior off (the VAE file has none)".into(),
        0.0 => "interval prior off".into(),
        weight => format!("interval prior {weight}"),
    }
}
