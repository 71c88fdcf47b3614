//! The one entry point the plugin and the CLI use: [`Engine::infill`] rewrites the selected bars
//! of a clip with the diffusion prior and returns one clip per variation.
//!
//! The flow is the seed paper's (Mittal et al., 2021, §3.2): cut the clip into 2-bar segments,
//! encode each with the VAE, preprocess, infill the selected segments with Algorithm 1 (see
//! [`crate::sample`]), map back, and decode (under the key and range constraints).
//!
//! **The odd-bar rule.** The model works in 2-bar segments, so any segment with a selected bar
//! is regenerated whole. Afterwards the result is assembled note by note: every note that starts
//! in a selected bar comes from the generated clip, every note that starts in an unselected bar
//! comes from the input, and a note that would sound past the end of its side is cut at the bar
//! line. Unselected bars are therefore note-for-note the input's.
//!
//! **Generation from scratch** (every segment selected) drafts the clip and then infills the
//! draft's middle from its own opening and close under context guidance
//! ([`Engine::revision_of`]), so one tune keeps one character.
//!
//! **New means new.** The repeat plan decides which generated segments repeat which (see
//! [`crate::sample::repeats`]); a segment it leaves new that comes back note for note as another
//! segment (context guidance copies kept bars by itself) is redrawn (`accidental_copies`,
//! [`InfillOptions::redraw_copies`]).
//!
//! **What depends on kept bars** (context guidance, the repeat head's calibrated offsets, the
//! redrawing, the guided noise scale) is decided in one place, [`Engine::applied`].

use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::CheckpointError;
use crate::melody::scale::Scale;
use crate::melody::tokens::Token;
use crate::melody::{Melody, Note};
use crate::prior::repeats::RepeatLogits;
use crate::prior::{PriorTransformer, TrainedPrior};
use crate::random::normal_tensor;
use crate::sample::repeats::draw_choice;
use crate::sample::{sample, KnownLatents, OpeningNoise, RepeatPlan, SampleError, SampleRequest, Sampler};
use crate::time::{Step, BARS_PER_SEGMENT, STEPS_PER_BAR};
use crate::vae::segments::{melody_from_segments, segment_count, to_segments};
use crate::vae::MelodyVae;
use crate::windows::Window;

/// Which bars of a clip to regenerate: one flag per bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarSelection {
    pub bars: Vec<bool>,
}

impl BarSelection {
    /// Bars `first..=last` (0-based) of a clip of `total` bars.
    pub fn range(first: u32, last: u32, total: u32) -> Self {
        Self { bars: (0..total).map(|bar| bar >= first && bar <= last).collect() }
    }

    /// Every bar of a clip of `total` bars.
    pub fn all(total: u32) -> Self {
        Self { bars: vec![true; total as usize] }
    }

    pub fn is_selected(&self, bar: u32) -> bool {
        self.bars.get(bar as usize).copied().unwrap_or(false)
    }

    /// The selected bars, 0-based, in order.
    pub fn selected(&self) -> Vec<u32> {
        (0..self.bars.len() as u32).filter(|&bar| self.is_selected(bar)).collect()
    }

    /// Per 2-bar segment: whether any of its bars is selected.
    pub fn segments(&self, segment_count: usize) -> Vec<bool> {
        (0..segment_count as u32)
            .map(|s| (0..BARS_PER_SEGMENT).any(|b| self.is_selected(s * BARS_PER_SEGMENT + b)))
            .collect()
    }

    /// [`Self::segments`] of a clip of `bars` bars, cut as [`to_segments`] cuts it.
    pub fn segments_of_clip(&self, bars: u32) -> Vec<bool> {
        self.segments(segment_count(bars))
    }
}

/// How to regenerate.
#[derive(Clone, Debug)]
pub struct InfillOptions {
    /// Number of different results.
    pub variations: usize,
    /// The musician's scale of the sampler's noise, on top of the calibrated one
    /// ([`Self::noise_scale`]): below 1 is tamer, above 1 wilder.
    pub temperature: f64,
    pub seed: u64,
    pub sampler: Sampler,
    /// Only pitches of this scale in generated bars.
    pub key: Option<Scale>,
    /// Only pitches in this inclusive MIDI range in generated bars.
    pub pitch_range: Option<(u8, u8)>,
    /// Takes of every reverse step (RePaint resampling, see [`crate::sample`]); 1 is none.
    pub resample: usize,
    /// Weight of reconstruction guidance (see [`crate::sample`]); 0 is none.
    pub guidance: f64,
    /// Clean or re-noised known latents (see [`crate::sample`]).
    pub known: KnownLatents,
    /// With re-noised known latents: the fraction of the steps, from the noisiest, that paste
    /// them clean first (see [`crate::sample`]). Needs a prior trained with clean context;
    /// with one trained without, every step follows Algorithm 1.
    pub clean_steps: f64,
    /// Weight of context guidance (see [`crate::sample`]): above 0, every step also predicts
    /// with the known latents clean and follows them w times as closely; it then replaces
    /// `clean_steps`, and costs twice the model rows. Needs a prior trained with clean context
    /// (with one trained without, every step follows Algorithm 1) and re-noised `known`
    /// latents (clean ones are clean context throughout instead, weight 1).
    pub context_guidance: f64,
    /// Whether generated segments repeat others where the prior's repeat head draws it.
    pub repeats: Repeats,
    /// Added to the repeat head's gate logit when drawing repeats; `None`: the calibrated
    /// offset for the request (see [`Self::CALIBRATED_REPEAT_OFFSET`]).
    pub repeat_offset: Option<f64>,
    /// Weight of the VAE's interval prior when the latents are decoded: the pitches of the new
    /// notes are chosen jointly, each interval scored by its log-probability in the training set
    /// times this (see [`crate::vae::intervals`]); 0 is per-step argmax.
    pub interval_weight: f64,
    /// When every segment of a clip is regenerated (generation from scratch): draft the whole
    /// clip, then regenerate its middle under context guidance from the draft's opening and
    /// closing bars, so the tune agrees with itself (see [`Engine::revision_of`]). Costs a
    /// second, smaller pass per variation.
    pub revise: bool,
    /// Added to the repeat head's pointer logits next to kept bars, by how many segments a
    /// source lies from the latent that repeats it (entry d − 1 for distance d; further
    /// distances get 0); `None`: the calibrated offsets (see
    /// [`Self::CALIBRATED_REPEAT_DISTANCE_OFFSETS`]).
    pub repeat_distance_offsets: Option<Vec<f64>>,
    /// Rounds of redrawing accidental copies next to kept bars: a segment the repeat plan leaves
    /// new but that comes back note for note as another segment (context guidance copies by
    /// itself) is sampled again, with everything else kept, up to this many times (see
    /// `accidental_copies`). 0 keeps every copy.
    pub redraw_copies: usize,
    /// The sampler's noise scale at temperature 1 (the two multiply); `None`: the calibrated
    /// scale for the request (see [`Self::CALIBRATED_GUIDED_NOISE_SCALE`]).
    pub noise_scale: Option<f64>,
    /// The noise scale of the first [`Self::OPENING_STEPS`] of the steps instead (see
    /// [`crate::sample::OpeningNoise`] and [`Self::opening_noise_scale`]); `None`: the noise
    /// scale throughout.
    pub opening_noise_scale: Option<f64>,
}

/// Whether generated segments may repeat other segments note for note.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Repeats {
    /// Each variation first draws which of its generated segments repeat which (kept or
    /// generated) segments from the prior's repeat head, as real tunes repeat themselves (see
    /// [`crate::sample::repeats`]).
    #[default]
    Drawn,
    /// Generated segments repeat where the segments they replace repeated (kept segments or
    /// each other), and are new material elsewhere: the result keeps the selection's form.
    KeepForm,
    /// Every generated segment is sampled as new material.
    Off,
}

/// What a request's options come to in one pass of the prior over a clip ([`Engine::applied`]):
/// the calibrated values filled in, and what acts only next to kept bars turned off elsewhere.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AppliedOptions {
    pub context_guidance: f64,
    pub repeat_offset: f64,
    /// The repeat head's pointer offsets by distance (entry d − 1 for distance d); empty where
    /// nothing is kept.
    pub repeat_distance_offsets: Vec<f64>,
    pub redraw_copies: usize,
    /// The sampler's noise scale at temperature 1.
    pub noise_scale: f64,
    /// The noise scale of the first [`InfillOptions::OPENING_STEPS`] of the steps.
    pub opening_noise_scale: f64,
}

impl AppliedOptions {
    /// The offset on the repeat head's pointer logit for a source `distance` segments away.
    pub fn repeat_distance_offset(&self, distance: usize) -> f64 {
        distance.checked_sub(1).and_then(|k| self.repeat_distance_offsets.get(k)).copied().unwrap_or(0.0)
    }
}

impl Default for InfillOptions {
    fn default() -> Self {
        Self {
            variations: 4,
            temperature: 1.0,
            seed: 0,
            sampler: Sampler::DEFAULT,
            key: None,
            pitch_range: None,
            resample: 1,
            guidance: 0.0,
            known: KnownLatents::Renoised,
            clean_steps: Self::DEFAULT_CLEAN_STEPS,
            context_guidance: Self::DEFAULT_CONTEXT_GUIDANCE,
            repeats: Repeats::Drawn,
            repeat_offset: None,
            interval_weight: Self::DEFAULT_INTERVAL_WEIGHT,
            revise: true,
            repeat_distance_offsets: None,
            redraw_copies: Self::DEFAULT_REDRAW_COPIES,
            noise_scale: None,
            opening_noise_scale: None,
        }
    }
}

impl InfillOptions {
    /// Calibrates how often generated segments repeat others: the offset on the repeat head's
    /// gate logit that makes the share of repeated windows match the real tunes', measured on a
    /// sample of the *training* set with bars 5–12 of their first 16 infilled, so the validation
    /// tunes stay untouched by calibration. The head alone draws slightly fewer repeats than
    /// real tunes have.
    pub const CALIBRATED_REPEAT_OFFSET: f64 = 0.5;

    /// The same under context guidance next to kept bars, with the distance offsets applied and
    /// accidental copies redrawn (see [`Self::redraw_copies`]).
    pub const CALIBRATED_GUIDED_REPEAT_OFFSET: f64 = 0.65;

    /// The same for the second pass of generation from scratch (see [`Self::revise`]): the
    /// draft's opening and close already repeat one another as the head drew them, so the
    /// middle must draw fewer repeats for whole tunes to repeat as often as real ones.
    pub const CALIBRATED_REVISION_REPEAT_OFFSET: f64 = -1.5;

    /// Calibrates *where* generated segments repeat from: offsets on the repeat head's pointer
    /// logits by the distance, in 2-bar segments, from a repeat to its source (distances 1 to
    /// 5, the most that infilling bars 5–12 of 16 shows). At the start of sampling the head
    /// sees generated latents as pure noise, and it draws repeats of the neighbouring segment
    /// and at odd distances far more often than real tunes have them, whose phrases are 4 and 8
    /// bars long, and too few 8 bars apart. Matched on the same training sample as the gate's
    /// offset.
    pub const CALIBRATED_REPEAT_DISTANCE_OFFSETS: [f64; 5] = [-2.8, 0.4, -3.3, 0.7, -1.3];

    /// Rounds of [`Self::redraw_copies`] by default: each round redraws the copies left by the
    /// one before, and one round leaves few.
    pub const DEFAULT_REDRAW_COPIES: usize = 1;

    /// Calibrates how plain generated bars are next to kept ones: the scale of the sampler's
    /// noise where context guidance acts on kept bars. Guidance extrapolates towards the kept
    /// bars and, like classifier-free guidance, sharpens what the prior draws: at scale 1 the
    /// infilled bars make more rhythmically uniform frames than real tunes do. Fresh noise at
    /// every step lets the next steps correct that, as a noise inflation does for a denoiser
    /// that removes too much (Karras et al., 2022, §4, S_noise); the initial noise alone changes
    /// nothing. Calibrated by infilling bars 5–12 of every 16-bar tune of the training set
    /// against those tunes' own duration OA variance; a larger scale would match it more
    /// exactly but lowers duration consistency below the paper's row. Generation from scratch
    /// keeps scale 1 in both passes: there a larger one makes rhythms far busier than real ones.
    pub const CALIBRATED_GUIDED_NOISE_SCALE: f64 = 1.45;

    /// The share of the steps, from the noisiest, whose fresh noise is drawn at the opening's
    /// scale ([`Self::opening_noise_scale`]; 3 of the default sampler's 10). The noisiest steps
    /// settle what the generated latents become as a whole, their register above all.
    pub const OPENING_STEPS: f64 = 0.3;

    /// The noise scale this request uses at temperature 1: its own, or the calibrated one for
    /// whether context guidance acts on kept bars.
    pub fn noise_scale(&self, guided_by_kept_bars: bool) -> f64 {
        self.noise_scale.unwrap_or(if guided_by_kept_bars { Self::CALIBRATED_GUIDED_NOISE_SCALE } else { 1.0 })
    }

    /// The noise scale of the opening steps at temperature 1: the request's own, or else its
    /// noise scale (one scale throughout). A calmer opening keeps the register of new bars
    /// next to kept ones as steady as real tunes keep theirs, and their rhythm closer to the
    /// kept bars', but it costs pitch OA variance below the paper's row, so it is off by
    /// default.
    pub fn opening_noise_scale(&self, guided_by_kept_bars: bool) -> f64 {
        self.opening_noise_scale.unwrap_or(self.noise_scale(guided_by_kept_bars))
    }

    /// The context guidance weight this request gets from a prior trained with clean context
    /// or not. Like the clean start, guidance by clean context needs a prior trained for it;
    /// with any other prior every step follows Algorithm 1. Known latents asked for clean at
    /// every step are clean context throughout, which is guidance weight 1, so they turn
    /// guidance off.
    pub fn context_guidance_with(&self, trained_clean: bool) -> f64 {
        if trained_clean && self.known == KnownLatents::Renoised {
            self.context_guidance
        } else {
            0.0
        }
    }

    /// The repeat offset this request uses: its own, or the calibrated one for whether context
    /// guidance acts on kept bars.
    pub fn repeat_offset(&self, guided_by_kept_bars: bool) -> f64 {
        self.repeat_offset.unwrap_or(if guided_by_kept_bars {
            Self::CALIBRATED_GUIDED_REPEAT_OFFSET
        } else {
            Self::CALIBRATED_REPEAT_OFFSET
        })
    }

    /// The repeat offset of generation's revision pass: its own, or the calibrated one.
    pub fn revision_repeat_offset(&self) -> f64 {
        self.repeat_offset.unwrap_or(Self::CALIBRATED_REVISION_REPEAT_OFFSET)
    }

    /// The clean start when context guidance is off: the first quarter of the steps see the
    /// known latents clean. Consistency rises with the fraction and the pitch OA variance falls;
    /// a quarter keeps the variance above the paper's row.
    pub const DEFAULT_CLEAN_STEPS: f64 = 0.25;

    /// The default context guidance weight: from 1.5 to 4 guidance lifts both consistencies
    /// above the paper's row and lowers the duration OA variance; 3 keeps the pitch OA variance
    /// highest.
    pub const DEFAULT_CONTEXT_GUIDANCE: f64 = 3.0;

    /// The shipped interval weight, calibrated on a sample of the training set so that generated
    /// tunes leap beyond an octave as often as real ones.
    pub const DEFAULT_INTERVAL_WEIGHT: f64 = 0.7;

    /// The most variations one call samples. Each costs the model rows of a whole clip, so the
    /// cap bounds a call's memory and time; it leaves room for the evaluation's infills per tune
    /// (the plugin and the CLI offer up to [`Self::MAX_USER_VARIATIONS`]).
    pub const MAX_VARIATIONS: usize = 64;

    /// The most variations a musician asks for at once: the plugin's Variations range is 1 to 8,
    /// and `rebar infill` and `rebar generate` take the same.
    pub const MAX_USER_VARIATIONS: usize = 8;

    /// The largest noise scale or temperature: far past anything musical (the plugin's
    /// Temperature stops at 1.5), and small enough that scaled noise stays a finite `f32`.
    pub const MAX_NOISE_SCALE: f64 = 100.0;

    /// The largest offset, either way, on a repeat head logit: at 100 a repeat is already
    /// certain or impossible, and an offset that is not finite would make the draw's odds NaN.
    pub const MAX_REPEAT_OFFSET: f64 = 100.0;

    /// The most rounds of [`Self::redraw_copies`] and takes of [`Self::resample`]: each costs
    /// a whole sampling pass.
    pub const MAX_ROUNDS: usize = 100;

    /// Checks every number of the request: finite and in its range. [`Engine::infill`] calls
    /// this first, so a value that is NaN, infinite or out of range (from the CLI, the plugin
    /// or any other caller) is a typed error instead of a panic deep in the sampler, or a run
    /// that never ends.
    pub fn validate(&self) -> Result<(), EngineError> {
        if !(1..=Self::MAX_VARIATIONS).contains(&self.variations) {
            return Err(EngineError::BadVariations { asked: self.variations, max: Self::MAX_VARIATIONS });
        }
        let in_range = |name: &'static str, value: f64, low: f64, high: f64, expected: &'static str| {
            if value.is_finite() && (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(EngineError::BadOption { name, value: value.to_string(), expected })
            }
        };
        if !(self.context_guidance.is_finite() && self.context_guidance >= 0.0) {
            return Err(EngineError::BadContextGuidance(self.context_guidance));
        }
        if !(self.interval_weight.is_finite() && self.interval_weight >= 0.0) {
            return Err(EngineError::BadIntervalWeight(self.interval_weight));
        }
        let scale = "a finite number from 0 to 100";
        in_range("the temperature", self.temperature, 0.0, Self::MAX_NOISE_SCALE, scale)?;
        if let Some(value) = self.noise_scale {
            in_range("the noise scale", value, 0.0, Self::MAX_NOISE_SCALE, scale)?;
        }
        if let Some(value) = self.opening_noise_scale {
            in_range("the opening noise scale", value, 0.0, Self::MAX_NOISE_SCALE, scale)?;
        }
        let offset = "a finite number from -100 to 100";
        let max_offset = Self::MAX_REPEAT_OFFSET;
        if let Some(value) = self.repeat_offset {
            in_range("the repeat offset", value, -max_offset, max_offset, offset)?;
        }
        for &value in self.repeat_distance_offsets.iter().flatten() {
            in_range("a repeat distance offset", value, -max_offset, max_offset, offset)?;
        }
        in_range("the reconstruction guidance", self.guidance, 0.0, f64::MAX, "a finite number of 0 or more")?;
        in_range("the clean steps", self.clean_steps, 0.0, 1.0, "a fraction from 0 to 1")?;
        if let Sampler::Ddim { eta, .. } = self.sampler {
            in_range("DDIM's eta", eta, 0.0, 1.0, "a number from 0 to 1")?;
        }
        let rounds = "a count from 0 to 100";
        if self.redraw_copies > Self::MAX_ROUNDS {
            return Err(EngineError::BadOption {
                name: "the rounds of redrawing copies",
                value: self.redraw_copies.to_string(),
                expected: rounds,
            });
        }
        if self.resample > Self::MAX_ROUNDS {
            return Err(EngineError::BadOption {
                name: "the takes of every step (resample)",
                value: self.resample.to_string(),
                expected: rounds,
            });
        }
        Ok(())
    }

    /// Whether generated bars may use this pitch.
    pub fn allows(&self, pitch: u8) -> bool {
        self.key.as_ref().is_none_or(|scale| scale.contains(pitch))
            && self.pitch_range.is_none_or(|(low, high)| (low..=high).contains(&pitch))
    }
}

/// What can go wrong regenerating a clip.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Weights(#[from] CheckpointError),
    #[error("the VAE and the prior do not belong together: the prior was trained on other latents")]
    MismatchedModels,
    #[error("the VAE file has no latent preprocessing, so no prior can use it")]
    NoPreprocessing,
    #[error("the clip has {bars} bars; Rebar regenerates clips of up to {max} bars")]
    ClipTooLong { bars: u32, max: u32 },
    #[error("no bar of the clip is selected")]
    EmptySelection,
    #[error("the pitch constraints allow no note at all")]
    NoAllowedPitch,
    #[error("this prior was not trained with clean context, so it can only infill from re-noised known latents")]
    NoCleanContext,
    #[error("context guidance must be a weight of 0 or more, not {0}")]
    BadContextGuidance(f64),
    #[error("the interval weight must be 0 or more, not {0}")]
    BadIntervalWeight(f64),
    #[error("{asked} variations asked for; one call makes 1 to {max}")]
    BadVariations { asked: usize, max: usize },
    #[error("{name} must be {expected}, not {value}")]
    BadOption { name: &'static str, value: String, expected: &'static str },
    #[error("context guidance and reconstruction guidance cannot be combined; choose one")]
    TwoGuidances,
    #[error("this prior has no repeat head, so it cannot draw repeats; turn repeats off")]
    NoRepeatHead,
    #[error("cancelled")]
    Cancelled,
    #[error("model error: {0}")]
    Model(#[from] candle_core::Error),
}

impl From<SampleError> for EngineError {
    fn from(e: SampleError) -> Self {
        match e {
            SampleError::Cancelled => EngineError::Cancelled,
            SampleError::Candle(e) => EngineError::Model(e),
        }
    }
}

/// The loaded models. Load once, then call [`Engine::infill`] as often as needed; it allocates
/// freely and may take tens of milliseconds, so it belongs on a worker thread, never on an
/// audio thread.
pub struct Engine {
    pub vae: MelodyVae,
    pub prior: TrainedPrior,
}

impl Engine {
    /// Pairs a VAE with a prior, checking that the prior was trained on this VAE's latents.
    pub fn new(vae: MelodyVae, prior: TrainedPrior) -> Result<Self, EngineError> {
        let preprocess = vae.preprocess.as_ref().ok_or(EngineError::NoPreprocessing)?;
        if preprocess != &prior.vae_preprocess {
            return Err(EngineError::MismatchedModels);
        }
        Ok(Self { vae, prior })
    }

    /// The shipped VAE and prior, built into the binary, on the CPU.
    pub fn embedded() -> Result<Self, EngineError> {
        let device = Device::Cpu;
        Self::new(MelodyVae::embedded(&device)?, TrainedPrior::embedded(&device)?)
    }

    pub fn device(&self) -> &Device {
        &self.vae.device
    }

    /// What `options` come to in one pass of the prior that regenerates the 2-bar segments
    /// `generate` marks. Context guidance follows kept bars, so it is 0 where none are kept
    /// (generation from scratch), as it is with a prior not trained with clean context; the
    /// repeat offset and the noise scale take their calibrated values for whether it acts; the
    /// distance offsets and the redrawing of copies were calibrated next to kept bars and act
    /// only there. The one rule for the sampler and the figures the CLI reports.
    pub fn applied(&self, options: &InfillOptions, generate: &[bool]) -> AppliedOptions {
        let next_to_kept = generate.contains(&false);
        let context_guidance =
            if next_to_kept { options.context_guidance_with(self.prior.model.config.clean_context) } else { 0.0 };
        let guided = context_guidance > 0.0;
        AppliedOptions {
            context_guidance,
            repeat_offset: options.repeat_offset(guided),
            repeat_distance_offsets: match (next_to_kept, &options.repeat_distance_offsets) {
                (false, _) => Vec::new(),
                (true, Some(offsets)) => offsets.clone(),
                (true, None) => InfillOptions::CALIBRATED_REPEAT_DISTANCE_OFFSETS.to_vec(),
            },
            redraw_copies: if next_to_kept { options.redraw_copies } else { 0 },
            noise_scale: options.noise_scale(guided),
            opening_noise_scale: options.opening_noise_scale(guided),
        }
    }

    /// The longest clip, in bars.
    pub fn max_bars(&self) -> u32 {
        self.prior.model.config.max_segments as u32 * BARS_PER_SEGMENT
    }

    /// Regenerates the selected bars of `clip`; returns one clip per variation, each as long as
    /// the input. `progress` gets the fraction done; setting `cancel` stops early.
    pub fn infill(
        &self,
        clip: &Melody,
        selection: &BarSelection,
        options: &InfillOptions,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<Melody>, EngineError> {
        if clip.bars > self.max_bars() {
            return Err(EngineError::ClipTooLong { bars: clip.bars, max: self.max_bars() });
        }
        if !(0..clip.bars).any(|bar| selection.is_selected(bar)) {
            return Err(EngineError::EmptySelection);
        }
        if !(0..=127).any(|p| options.allows(p)) {
            return Err(EngineError::NoAllowedPitch);
        }
        options.validate()?;
        let trained_clean = self.prior.model.config.clean_context;
        if options.context_guidance_with(trained_clean) > 0.0 && options.guidance > 0.0 {
            return Err(EngineError::TwoGuidances);
        }
        if let Some(middle) = self.revision_of(options, selection, clip.bars) {
            return self.draft_and_revise(clip, selection, &middle, options, cancel, progress);
        }
        self.sample_clips(&[clip], selection, options, cancel, progress)
    }

    /// The bars the second pass of generation from scratch regenerates (see
    /// [`InfillOptions::revise`]), or `None` where it does not apply: some segment is kept,
    /// revision is off, context guidance does not act (its weight is 0 or the prior was not
    /// trained with clean context), or the clip has fewer than 3 segments, which leaves no
    /// middle between an opening and a close. Of S segments, the first and last round(S / 4)
    /// are kept (bars 1–4 and 13–16 of 16 bars, as in the infilling evaluation) and the
    /// selected bars between them are regenerated.
    pub fn revision_of(&self, options: &InfillOptions, selection: &BarSelection, bars: u32) -> Option<BarSelection> {
        let generate = selection.segments_of_clip(bars);
        let segments = generate.len();
        let guided = options.context_guidance_with(self.prior.model.config.clean_context) > 0.0;
        if !options.revise || generate.contains(&false) || !guided || segments < 3 {
            return None;
        }
        let kept = (segments + 2) / 4;
        let middle = (kept * BARS_PER_SEGMENT as usize) as u32..((segments - kept) * BARS_PER_SEGMENT as usize) as u32;
        Some(BarSelection { bars: (0..bars).map(|bar| middle.contains(&bar) && selection.is_selected(bar)).collect() })
    }

    /// Generation from scratch in two passes: one draft per variation, then each draft's
    /// `middle` regenerated under context guidance from the rest of it. Real tunes keep one
    /// character throughout (their density and register vary far less within a tune than
    /// between tunes); one pass of the prior mixes characters within a draft, and guidance by
    /// the draft's own opening and close pulls its middle back to them. Neither pass redraws
    /// accidental copies, offsets the repeat head's distances or scales the noise
    /// ([`revision_options`]): those are calibrated next to a musician's kept bars, and on
    /// generation from scratch each of them lowered the unconditional duration OA variance.
    fn draft_and_revise(
        &self,
        clip: &Melody,
        selection: &BarSelection,
        middle: &BarSelection,
        options: &InfillOptions,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<Melody>, EngineError> {
        let drafts = self.sample_clips(&[clip], selection, options, cancel, &mut |f| progress(f / 2.0))?;
        let drafts: Vec<&Melody> = drafts.iter().collect();
        self.sample_clips(&drafts, middle, &revision_options(options), cancel, &mut |f| progress(0.5 + f / 2.0))
    }

    /// One pass of the prior over `clips` (of one length) with the selected bars regenerated,
    /// `options.variations` per clip, all in one batch; the results come clip by clip.
    fn sample_clips(
        &self,
        clips: &[&Melody],
        selection: &BarSelection,
        options: &InfillOptions,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<Melody>, EngineError> {
        let preprocess = self.vae.preprocess.as_ref().ok_or(EngineError::NoPreprocessing)?;
        let trained_clean = self.prior.model.config.clean_context;
        let clean_steps = match options.known {
            KnownLatents::Clean if !trained_clean => return Err(EngineError::NoCleanContext),
            KnownLatents::Clean => 1.0,
            KnownLatents::Renoised if trained_clean => options.clean_steps,
            KnownLatents::Renoised => 0.0,
        };
        let per_clip = options.variations.max(1);
        let variations = clips.len() * per_clip;
        let segments: Vec<Vec<Window>> = clips.iter().map(|clip| to_segments(clip)).collect();
        let t = segments[0].len();
        let generate = selection.segments(t);
        let applied = self.applied(options, &generate);
        let context_guidance = applied.context_guidance;
        let model = &self.prior.model;
        let data_scale = model.config.data_scale;
        let every_segment: Vec<Window> = segments.concat();
        let encoded = (preprocess.to_prior_space(&self.vae.encode(&every_segment)?)? * data_scale)?;
        // [variations, t, d]: each clip's latents once per variation of it.
        let clip_of: Vec<u32> = (0..variations).map(|v| (v / per_clip) as u32).collect();
        let d = encoded.dim(1)?;
        let clip_latents = encoded.reshape((clips.len(), t, d))?;
        let known = clip_latents.index_select(&Tensor::new(clip_of.as_slice(), self.device())?, 0)?;

        // Every latent of a clip is real (no padding). Batches differ in size: context guidance
        // asks for two rows per variation, and redrawing copies for only some variations.
        let all_valid = Tensor::ones((variations, t), candle_core::DType::F32, self.device())?;
        let predict = |x: &Tensor, levels: &[f32]| {
            let valid = Tensor::ones((x.dim(0)?, t), candle_core::DType::F32, x.device())?;
            Ok(predict_in_halves(model, x, levels, &valid, false)?.0)
        };
        let plan = match options.repeats {
            Repeats::Drawn => Some(self.draw_repeats(&known, &generate, options.seed, &applied, &all_valid)?),
            Repeats::KeepForm => {
                let mut plan = RepeatPlan::none(0, t);
                for c in 0..clips.len() {
                    plan.repeats
                        .extend(RepeatPlan::from_input(&known.get(c * per_clip)?, &generate, per_clip)?.repeats);
                }
                Some(plan)
            }
            Repeats::Off => None,
        };
        let request = SampleRequest {
            known: &known,
            generate: &generate,
            variations,
            temperature: options.temperature * applied.noise_scale,
            opening_noise: Some(OpeningNoise {
                fraction: InfillOptions::OPENING_STEPS,
                temperature: options.temperature * applied.opening_noise_scale,
            }),
            seed: options.seed,
            sampler: options.sampler,
            resample: options.resample,
            guidance: options.guidance,
            clean_steps,
            repeats: plan.as_ref(),
            context_guidance,
        };
        let has_kept = generate.contains(&false);
        let redraw_rounds = applied.redraw_copies;
        let first_share = if redraw_rounds > 0 { FIRST_PASS_PROGRESS } else { 1.0 };
        let mut sampled = sample(&predict, &self.prior.schedule, &request, cancel, &mut |f| progress(f * first_share))?;
        let decode = |latents: &Tensor| -> Result<Vec<Window>, EngineError> {
            let z = preprocess.from_prior_space(&(latents / data_scale)?, self.device())?;
            Ok(self.vae.decode_melody(&z, &|pitch| options.allows(pitch), options.interval_weight)?)
        };
        // Kept segments are never heard from the decoder (the input's notes are spliced back);
        // their decodings are only compared with generated ones, and are the same in every
        // variation of a clip: decoded once per clip. Each run of generated segments is decoded
        // with the segment on either side, since the interval prior judges a window's first
        // note by the note before it.
        let kept_decoded: Vec<Vec<Window>> = if has_kept {
            (0..clips.len()).map(|c| decode(&clip_latents.get(c)?)).collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let runs = generated_runs(&generate);
        let decode_variation = |v: usize, latents: &Tensor| -> Result<Vec<Window>, EngineError> {
            if !has_kept {
                return decode(latents);
            }
            let mut windows = kept_decoded[v / per_clip].clone();
            for run in &runs {
                let (lo, hi) = (run.start.saturating_sub(1), (run.end + 1).min(t));
                let decoded = decode(&latents.narrow(0, lo, hi - lo)?)?;
                windows[run.clone()].copy_from_slice(&decoded[run.start - lo..run.end - lo]);
            }
            Ok(windows)
        };
        let mut windows: Vec<Vec<Window>> =
            (0..variations).map(|v| decode_variation(v, &sampled.get(v)?)).collect::<Result<_, _>>()?;
        let roots: Vec<Vec<usize>> = (0..variations)
            .map(|v| (0..t).map(|i| plan.as_ref().map_or(i, |plan| plan.root(v, i))).collect())
            .collect();
        for round in 0..redraw_rounds {
            let copies: Vec<Vec<bool>> =
                (0..variations).map(|v| accidental_copies(&windows[v], &roots[v], &generate)).collect();
            let redrawn: Vec<usize> = (0..variations).filter(|&v| copies[v].contains(&true)).collect();
            if redrawn.is_empty() {
                break;
            }
            // A redrawn segment takes the latents the plan ties to it along.
            let follows = |v: usize, i: usize| copies[v][roots[v][i]];
            let flags: Vec<bool> = redrawn.iter().flat_map(|&v| (0..t).map(move |i| follows(v, i))).collect();
            let ties = RepeatPlan {
                repeats: redrawn
                    .iter()
                    .map(|&v| (0..t).map(|i| if follows(v, i) { roots[v][i] } else { i }).collect())
                    .collect(),
            };
            let rows = Tensor::new(redrawn.iter().map(|&v| v as u32).collect::<Vec<_>>().as_slice(), self.device())?;
            let known = sampled.index_select(&rows, 0)?;
            let request = SampleRequest {
                known: &known,
                generate: &flags,
                variations: redrawn.len(),
                seed: (options.seed ^ COPY_REDRAW_STREAM).wrapping_add(round as u64),
                repeats: Some(&ties),
                sampler: redraw_sampler(options.sampler),
                context_guidance: 0.0,
                clean_steps: 0.0,
                // A redraw is a short pass amid settled segments: one scale throughout.
                opening_noise: None,
                ..request
            };
            let redrawn_latents = sample(&predict, &self.prior.schedule, &request, cancel, &mut |_| {})?;
            let mut latents: Vec<Tensor> =
                (0..variations).map(|v| sampled.get(v)).collect::<candle_core::Result<_>>()?;
            for (k, &v) in redrawn.iter().enumerate() {
                latents[v] = redrawn_latents.get(k)?;
                windows[v] = decode_variation(v, &latents[v])?;
            }
            sampled = Tensor::stack(&latents, 0)?;
            progress(first_share + (1.0 - first_share) * (round + 1) as f32 / redraw_rounds as f32);
        }
        // Done, whether or not every redraw round was needed.
        progress(1.0);

        let mut results = Vec::with_capacity(variations);
        for (v, mut windows) in windows.into_iter().enumerate() {
            let (clip, kept) = (clips[v / per_clip], &segments[v / per_clip]);
            make_repeats_exact(&mut windows, kept, &roots[v], &generate, options);
            let generated = melody_from_segments(&windows, clip);
            results.push(splice(clip, &generated, selection));
        }
        Ok(results)
    }

    /// Every variation's repeat plan (see [`crate::sample::repeats`]), drawn from the repeat head
    /// at the start of sampling, one generated latent at a time from the first: generated
    /// latents are pure noise at the first step's level, known latents clean (re-noised to that
    /// level for a prior without clean context), and a latent drawn as a repeat of a known one
    /// is known from then on, so the next draws see it (a second half follows a first half that
    /// repeats). Costs one model evaluation per generated latent, except where no draw has changed
    /// the input since the last.
    fn draw_repeats(
        &self,
        known: &Tensor,
        generate: &[bool],
        seed: u64,
        applied: &AppliedOptions,
        valid: &Tensor,
    ) -> Result<RepeatPlan, EngineError> {
        let model = &self.prior.model;
        if !model.config.repeat_head {
            return Err(EngineError::NoRepeatHead);
        }
        let (v, t, d) = known.dims3()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ REPEAT_PLAN_STREAM);
        let schedule = &self.prior.schedule;
        let alpha_bar = schedule.alpha_bar(schedule.steps());
        let start = alpha_bar.sqrt() as f32;
        let (known_level, known_noise) =
            if model.config.clean_context { (1.0, 0.0) } else { (start, (1.0 - alpha_bar).sqrt() as f32) };
        let known_rows: Vec<Vec<f32>> = known.reshape((v * t, d))?.to_vec2::<f32>()?;
        let noise = normal_tensor(&mut rng, v * t, d, known.device())?.flatten_all()?.to_vec1::<f32>()?;
        // Per variation and latent: the model's input row and whether it is known by now.
        let mut x = noise.clone();
        let mut is_known: Vec<bool> = (0..v).flat_map(|_| generate.iter().map(|&g| !g)).collect();
        let set_known = |x: &mut [f32], row: usize, value: &[f32]| {
            for (k, out) in x[row * d..(row + 1) * d].iter_mut().enumerate() {
                *out = known_level * value[k] + known_noise * noise[row * d + k];
            }
        };
        for (row, _) in is_known.iter().enumerate().filter(|(_, &k)| k) {
            set_known(&mut x, row, &known_rows[row]);
        }
        let mut plan = RepeatPlan::none(v, t);
        // The head's output for the current input; a draw that changes the input clears it.
        // Between draws the input is the same, so one pass serves every latent until then. (A
        // pass over only the variations a draw changed was slower for infilling: it splits a
        // smaller batch over the two threads.)
        let mut head: Option<HeadOutput> = None;
        for i in (0..t).filter(|&i| generate[i]) {
            let HeadOutput { gates, has_source, pointers } = match head.take() {
                Some(head) => head,
                None => {
                    let levels: Vec<f32> = is_known.iter().map(|&k| if k { known_level } else { start }).collect();
                    let input = Tensor::from_slice(&x, (v, t, d), known.device())?;
                    let (_, logits) = predict_in_halves(model, &input, &levels, valid, true)?;
                    let logits = logits.ok_or(EngineError::NoRepeatHead)?;
                    HeadOutput {
                        gates: logits.gate.to_vec2::<f32>()?,
                        has_source: logits.has_source.to_vec2::<f32>()?,
                        pointers: logits.pointer.to_vec3::<f32>()?,
                    }
                }
            };
            let mut input_changed = false;
            for s in 0..v {
                if has_source[s][i] == 0.0 {
                    continue;
                }
                let gate = gates[s][i] + applied.repeat_offset as f32;
                let pointer: Vec<f32> = pointers[s][i]
                    .iter()
                    .enumerate()
                    .map(|(j, &logit)| logit + applied.repeat_distance_offset(i.abs_diff(j)) as f32)
                    .collect();
                let Some(source) = draw_choice(gate, &pointer, &mut rng) else { continue };
                input_changed = true;
                plan.repeats[s][i] = source;
                let root = plan.root(s, i);
                if generate[root] {
                    // Tied to a generated latent: the same noise, so the next draws see a pair.
                    let (from, to) = ((s * t + root) * d, (s * t + i) * d);
                    x.copy_within(from..from + d, to);
                } else {
                    is_known[s * t + i] = true;
                    set_known(&mut x, s * t + i, &known_rows[s * t + root]);
                }
            }
            if !input_changed {
                head = Some(HeadOutput { gates, has_source, pointers });
            }
        }
        Ok(plan)
    }
}

/// The options of generation's revision pass (see [`Engine::revision_of`]): one variation per
/// draft, all drafts in one batch, with the revision's own repeat offset and with none of what
/// is calibrated next to a musician's kept bars (distance offsets, redrawing copies, the guided
/// noise scale).
pub fn revision_options(options: &InfillOptions) -> InfillOptions {
    InfillOptions {
        variations: 1,
        seed: options.seed ^ REVISION_STREAM,
        repeat_offset: Some(options.revision_repeat_offset()),
        repeat_distance_offsets: Some(Vec::new()),
        redraw_copies: 0,
        noise_scale: Some(options.noise_scale.unwrap_or(1.0)),
        ..options.clone()
    }
}

/// The repeat head's output for one model input, as plain rows: per variation, per latent (see
/// `prior::repeats`).
struct HeadOutput {
    gates: Vec<Vec<f32>>,
    has_source: Vec<Vec<f32>>,
    pointers: Vec<Vec<Vec<f32>>>,
}

/// Makes every generated segment that repeats another an exact copy of it: a repeat is only
/// heard as one when exact. `windows` holds the decoding of every segment, kept ones included,
/// and `roots` the segment each one ends up equal to in the variation's repeat plan (itself
/// where it is new, see [`RepeatPlan::root`]).
///
/// - A repeat that the plan draws from a kept segment takes that segment's own
///   notes (`kept`, the input's segments) instead of the VAE's reconstruction of them, which can
///   miss a note.
/// - One drawn from a generated segment, or from a kept one with a pitch the constraints forbid,
///   takes the decoding of the first generated segment with that source. Segments that repeat
///   one another share a latent, but the melody decoder judges a window's first note against
///   the note before it (see [`crate::vae::intervals`]), so they can decode apart.
/// - A segment the plan leaves new but whose decoding is a kept segment's decoding (context
///   guidance copies kept bars by itself) is that kept segment reproduced, and takes its notes
///   too.
fn make_repeats_exact(
    windows: &mut [Window],
    kept: &[Window],
    roots: &[usize],
    generate: &[bool],
    options: &InfillOptions,
) {
    let decoded = windows.to_vec();
    let kept_notes_of =
        |root: usize| (!generate[root] && allows_every_pitch(&kept[root], options)).then_some(kept[root]);
    for (i, window) in windows.iter_mut().enumerate().filter(|(i, _)| generate[*i]) {
        let root = roots[i];
        if root == i {
            let reproduced = (0..decoded.len()).find(|&k| !generate[k] && decoded[k] == decoded[i]);
            if let Some(notes) = reproduced.and_then(kept_notes_of) {
                *window = notes;
            }
        } else if let Some(notes) = kept_notes_of(root) {
            *window = notes;
        } else if let Some(first) = (0..decoded.len()).find(|&j| generate[j] && roots[j] == root) {
            *window = decoded[first];
        }
    }
}

/// The sampler of a redraw of accidental copies: half the steps of `sampler` (rounded up).
/// A redraw regenerates a segment or two amid settled ones, and its cost comes on top of the
/// request's. It runs as the paper's Algorithm 1, the known latents re-noised at every step,
/// without context guidance or a clean start: under guidance the redrawn segment copies its
/// neighbours again, and with the clean start it copies more too.
fn redraw_sampler(sampler: Sampler) -> Sampler {
    match sampler {
        Sampler::Ddim { steps, eta, spacing } => Sampler::Ddim { steps: steps.div_ceil(2), eta, spacing },
        Sampler::Ancestral => Sampler::Ancestral,
    }
}

/// The maximal runs of consecutive generated segments.
fn generated_runs(generate: &[bool]) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, _) in generate.iter().enumerate().filter(|(_, &g)| g) {
        match runs.last_mut() {
            Some(run) if run.end == i => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

/// Per segment: whether it is an accidental copy, one the repeat plan leaves new (`roots[i] ==
/// i`, see [`RepeatPlan::root`]) that decodes note for note as an earlier segment or a kept one
/// does (`windows`: every segment's decoding), other than those the plan ties to it. Of two
/// equal new segments only the later counts, so the earlier stays.
///
/// The plan draws a tune's repeats at the rate and distances real tunes have them; context
/// guidance copies the kept bars next to the selection by itself on top: a 2-bar window
/// repeating its neighbour, which real tunes almost never do.
fn accidental_copies(windows: &[Window], roots: &[usize], generate: &[bool]) -> Vec<bool> {
    let kept_like = |j: usize| !generate[roots[j]];
    (0..windows.len())
        .map(|i| {
            generate[i]
                && roots[i] == i
                && (0..windows.len())
                    .any(|j| j != i && roots[j] != i && (j < i || kept_like(j)) && windows[j] == windows[i])
        })
        .collect()
}

/// Whether every note of `window` is one `options` allows in generated bars.
fn allows_every_pitch(window: &Window, options: &InfillOptions) -> bool {
    window.iter().all(|&id| match Token::from_id(id) {
        Token::On(pitch) => options.allows(pitch),
        Token::Hold | Token::Rest => true,
    })
}

/// Mixed into the seed for the repeat plan's draws, so they do not replay the sampler's noise.
const REPEAT_PLAN_STREAM: u64 = 0x7E9E_A7ED;
/// Mixed into the seed of the passes that redraw accidental copies, plus the round.
const COPY_REDRAW_STREAM: u64 = 0xC0B1_ED5E_6E47;
/// The share of the progress bar the first pass takes when accidental copies may be redrawn.
const FIRST_PASS_PROGRESS: f32 = 0.8;
/// Mixed into the seed of generation's revision pass, so it does not replay the draft's noise.
const REVISION_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

/// ε̂ for a batch of variations (levels per variation or per latent), computed as two halves on
/// two threads. With a handful of variations the matmuls are too small for candle to spread over
/// cores itself, so splitting the batch is what uses the second core.
/// With `repeats`, the repeat head's logits come too (see [`PriorTransformer::forward_with_repeats`]).
fn predict_in_halves(
    model: &PriorTransformer,
    x: &Tensor,
    levels: &[f32],
    valid: &Tensor,
    repeats: bool,
) -> candle_core::Result<(Tensor, Option<RepeatLogits>)> {
    let batch = x.dim(0)?;
    if batch < 2 {
        return model.forward_with_repeats(x, levels, valid, repeats);
    }
    let half = batch / 2;
    let (x_a, x_b) = (x.narrow(0, 0, half)?, x.narrow(0, half, batch - half)?);
    let (valid_a, valid_b) = (valid.narrow(0, 0, half)?, valid.narrow(0, half, batch - half)?);
    let (levels_a, levels_b) = levels.split_at(half * (levels.len() / batch));
    let (a, b) = std::thread::scope(|scope| {
        let first = scope.spawn(|| model.forward_with_repeats(&x_a, levels_a, &valid_a, repeats));
        let second = model.forward_with_repeats(&x_b, levels_b, &valid_b, repeats);
        (first.join(), second)
    });
    let (eps_a, logits_a) = a.map_err(|_| candle_core::Error::Msg("a sampling thread panicked".into()))??;
    let (eps_b, logits_b) = b?;
    let logits = match (logits_a, logits_b) {
        (Some(a), Some(b)) => Some(RepeatLogits::cat(&a, &b)?),
        _ => None,
    };
    Ok((Tensor::cat(&[eps_a, eps_b], 0)?, logits))
}

/// The odd-bar rule: notes starting in selected bars from `generated`, the rest from `input`,
/// each cut where its side ends.
pub fn splice(input: &Melody, generated: &Melody, selection: &BarSelection) -> Melody {
    let selected_at = |step: u32| selection.is_selected(step / STEPS_PER_BAR);
    let end = input.steps();
    let mut notes: Vec<Note> = Vec::new();
    let mut take = |source: &[Note], from_selection: bool| {
        for note in source {
            if note.start.0 >= end || selected_at(note.start.0) != from_selection {
                continue;
            }
            // Sound until the note ends, the clip ends, or the bar ownership flips.
            let mut stop = note.end().0.min(end);
            let first_foreign_bar = (note.start.0 / STEPS_PER_BAR + 1..)
                .take_while(|bar| bar * STEPS_PER_BAR < stop)
                .find(|&bar| selection.is_selected(bar) != from_selection);
            if let Some(bar) = first_foreign_bar {
                stop = bar * STEPS_PER_BAR;
            }
            notes.push(Note { pitch: note.pitch, start: note.start, len: Step(stop - note.start.0) });
        }
    };
    take(&input.notes, false);
    take(&generated.notes, true);
    notes.sort_by_key(|n| n.start);
    Melody { notes, ..input.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::midi::Meter;

    fn note(pitch: u8, start: u32, len: u32) -> Note {
        Note { pitch, start: Step(start), len: Step(len) }
    }

    fn melody(notes: Vec<Note>, bars: u32) -> Melody {
        Melody { notes, bars, bpm: 120.0, meter: Meter::FOUR_FOUR, key: None }
    }

    #[test]
    fn a_selection_starting_on_an_odd_bar_regenerates_both_segments_it_touches() {
        // Bars 2..=3 (0-based) of 6: segment 1 holds bars 2-3 only.
        assert_eq!(BarSelection::range(2, 3, 6).segments(3), vec![false, true, false]);
        // Bars 1..=2 touch segments 0 and 1.
        assert_eq!(BarSelection::range(1, 2, 6).segments(3), vec![true, true, false]);
    }

    #[test]
    fn repeats_and_reproductions_copy_their_source_exactly_unless_a_constraint_forbids_it() {
        let window = |pitch: u8| -> Window { std::array::from_fn(|i| if i == 0 { Token::On(pitch).id() } else { 0 }) };
        let kept = [window(60), window(61), window(62), window(63), window(64)];
        let decoded = [window(70), window(71), window(72), window(73), window(74)];
        let generate = [false, true, false, true, true];
        // Segment 1 repeats the kept 0, segment 3 the kept 2, and segment 4 the generated 1,
        // which itself repeats the kept 0.
        let roots_of = |plan: &RepeatPlan| (0..5).map(|i| plan.root(0, i)).collect::<Vec<_>>();
        let roots = roots_of(&RepeatPlan { repeats: vec![vec![0, 0, 2, 2, 1]] });
        let mut windows = decoded;
        make_repeats_exact(&mut windows, &kept, &roots, &generate, &InfillOptions::default());
        assert_eq!(windows, [window(70), window(60), window(72), window(62), window(60)]);
        // In C major, 62 (D) is allowed and 61 would not be; 60 (C) is.
        let c_major = InfillOptions { key: Some("C major".parse().unwrap()), ..InfillOptions::default() };
        let kept = [window(61), window(61), window(62), window(63), window(64)];
        let mut windows = decoded;
        make_repeats_exact(&mut windows, &kept, &roots, &generate, &c_major);
        assert_eq!(windows, [window(70), window(71), window(72), window(62), window(71)]);
        // A repeat of a generated segment takes that segment's decoding, which the melody
        // decoder may have made differ from the repeat's own.
        let roots = roots_of(&RepeatPlan { repeats: vec![vec![0, 1, 2, 3, 1]] });
        let mut windows = decoded;
        make_repeats_exact(&mut windows, &kept, &roots, &generate, &InfillOptions::default());
        assert_eq!(windows, [window(70), window(71), window(72), window(73), window(71)]);
        // A segment the plan leaves new but that decodes as kept segment 0 decodes (its VAE
        // reconstruction, 70) is that segment reproduced: it takes its notes.
        let reproducing = [window(70), window(71), window(72), window(73), window(70)];
        let mut windows = reproducing;
        make_repeats_exact(
            &mut windows,
            &kept,
            &roots_of(&RepeatPlan::none(1, 5)),
            &generate,
            &InfillOptions::default(),
        );
        assert_eq!(windows, [window(70), window(71), window(72), window(73), window(61)]);
    }

    #[test]
    fn accidental_copies_are_new_segments_that_come_back_as_another_unplanned() {
        let window = |pitch: u8| -> Window { std::array::from_fn(|i| if i == 0 { Token::On(pitch).id() } else { 0 }) };
        let generate = [false, true, true, true, true, false];
        // Segment 1 copies the kept 0; 2 and 3 are equal, so only the later is a copy; 4 copies
        // the kept 5, which lies after it.
        let windows = [window(60), window(60), window(62), window(62), window(65), window(65)];
        let new = [0, 1, 2, 3, 4, 5];
        assert_eq!(accidental_copies(&windows, &new, &generate), [false, true, false, true, true, false]);
        // The plan ties 3 to 2 and draws 1 as a repeat of the kept 0: planned, not accidental.
        // Segment 4 equals the kept 5 and is still a copy.
        let planned = [0, 0, 2, 2, 4, 5];
        assert_eq!(accidental_copies(&windows, &planned, &generate), [false, false, false, false, true, false]);
        // All different: nothing to redraw.
        let different = [window(60), window(61), window(62), window(63), window(64), window(65)];
        assert_eq!(accidental_copies(&different, &new, &generate), [false; 6]);
        assert_eq!(generated_runs(&generate), vec![std::ops::Range { start: 1, end: 5 }]);
        assert_eq!(generated_runs(&[true, false, true, true, false]), [0..1, 2..4]);
        assert!(generated_runs(&[false, false]).is_empty());
    }

    #[test]
    fn distance_offsets_steer_where_drawn_repeats_come_from() {
        let engine = Engine::embedded().unwrap();
        let d = engine.vae.preprocess.as_ref().unwrap().prior_dim();
        let (v, t) = (6, 8);
        let known = Tensor::randn(0f32, 1.0, (v, t, d), &Device::Cpu).unwrap();
        let generate = [false, false, true, true, true, true, false, false];
        let valid = Tensor::ones((v, t), candle_core::DType::F32, &Device::Cpu).unwrap();
        // A gate offset that makes nearly every generated latent a repeat, so the sources show.
        let sources = |offsets: Vec<f64>| {
            let options = InfillOptions {
                repeat_distance_offsets: Some(offsets),
                repeat_offset: Some(20.0),
                ..InfillOptions::default()
            };
            let applied = engine.applied(&options, &generate);
            let plan = engine.draw_repeats(&known, &generate, options.seed, &applied, &valid).unwrap();
            let drawn: Vec<usize> =
                plan.repeats.iter().flat_map(|row| row.iter().enumerate().map(|(i, &j)| i.abs_diff(j))).collect();
            drawn.into_iter().filter(|&distance| distance > 0).collect::<Vec<_>>()
        };
        // Every generated latent here has a source 2 segments away; forbidding every other
        // distance leaves only those.
        let only_two = sources(vec![-1e4, 0.0, -1e4, -1e4, -1e4, -1e4, -1e4]);
        assert_eq!(only_two.len(), v * 4, "{only_two:?}");
        assert!(only_two.iter().all(|&distance| distance == 2), "{only_two:?}");
        // Without offsets the head draws other distances too (so the check above can fail).
        assert!(sources(vec![0.0; 7]).iter().any(|&distance| distance != 2));
    }

    #[test]
    fn splicing_keeps_unselected_bars_and_cuts_notes_at_the_selection_edges() {
        // Input: a note held from bar 0 into bar 1, and one in bar 2.
        let input = melody(vec![note(60, 8, 16), note(64, 32, 4)], 3);
        // Generated: a note in bar 1 that runs into bar 2, and one in bar 0 (must be ignored).
        let generated = melody(vec![note(70, 0, 4), note(72, 20, 20)], 3);
        let out = splice(&input, &generated, &BarSelection::range(1, 1, 3));
        assert_eq!(out.notes, vec![note(60, 8, 8), note(72, 20, 12), note(64, 32, 4)]);
    }

    #[test]
    fn every_number_of_a_request_is_checked_at_the_library_s_door() {
        assert!(InfillOptions::default().validate().is_ok());
        let bad = [
            InfillOptions { repeat_offset: Some(f64::NAN), ..InfillOptions::default() },
            InfillOptions { repeat_offset: Some(f64::INFINITY), ..InfillOptions::default() },
            InfillOptions { repeat_distance_offsets: Some(vec![0.4, f64::NAN]), ..InfillOptions::default() },
            InfillOptions { temperature: f64::NAN, ..InfillOptions::default() },
            InfillOptions { temperature: f64::INFINITY, ..InfillOptions::default() },
            InfillOptions { temperature: -1.0, ..InfillOptions::default() },
            InfillOptions { noise_scale: Some(f64::NAN), ..InfillOptions::default() },
            InfillOptions { opening_noise_scale: Some(f64::NEG_INFINITY), ..InfillOptions::default() },
            InfillOptions { clean_steps: 1.5, ..InfillOptions::default() },
            InfillOptions { guidance: f64::NAN, ..InfillOptions::default() },
            InfillOptions {
                sampler: Sampler::Ddim { steps: 10, eta: f64::NAN, spacing: crate::sample::Spacing::Uniform },
                ..InfillOptions::default()
            },
            InfillOptions { context_guidance: f64::INFINITY, ..InfillOptions::default() },
            InfillOptions { variations: 0, ..InfillOptions::default() },
            InfillOptions { variations: 100_000, ..InfillOptions::default() },
            InfillOptions { redraw_copies: usize::MAX, ..InfillOptions::default() },
        ];
        for options in &bad {
            assert!(options.validate().is_err(), "{options:?}");
        }
        let err = InfillOptions { repeat_offset: Some(f64::NAN), ..InfillOptions::default() }.validate().unwrap_err();
        assert_eq!(err.to_string(), "the repeat offset must be a finite number from -100 to 100, not NaN");
        let err = InfillOptions { variations: 100_000, ..InfillOptions::default() }.validate().unwrap_err();
        assert!(matches!(err, EngineError::BadVariations { asked: 100_000, max: 64 }), "{err}");
    }

    #[test]
    fn a_nan_repeat_offset_is_an_error_from_infill_not_a_panic() {
        // A NaN offset made the repeat head's odds NaN, and drawing with them panicked.
        let engine = Engine::embedded().unwrap();
        let clip = melody(vec![note(60, 0, 4), note(62, 16, 4), note(64, 32, 4), note(65, 48, 4)], 4);
        let options = InfillOptions { repeat_offset: Some(f64::NAN), variations: 1, ..InfillOptions::default() };
        let never = AtomicBool::new(false);
        let result = engine.infill(&clip, &BarSelection::range(2, 3, 4), &options, &never, &mut |_| {});
        assert!(matches!(result, Err(EngineError::BadOption { name: "the repeat offset", .. })), "{result:?}");
    }
}
