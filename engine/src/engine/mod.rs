//! The one entry point the plugin and the CLI use: [`Engine::infill`] rewrites the selected bars
//! of a clip with the diffusion prior and returns one clip per variation.
//!
//! The flow is the seed paper's (Mittal et al., 2021, §3.2), as the stages of one pass of the
//! prior over a batch of clips, each in its own file:
//!
//! 1. [`encode`]: cut each clip into 2-bar segments and encode them into latents;
//! 2. [`plan`]: draw which generated segments repeat which, as real tunes repeat;
//! 3. sample: infill the selected segments with Algorithm 1 under context guidance
//!    ([`crate::sample`], the model's predictions from [`predict`]);
//! 4. [`decode`]: latents back to notes, under the key and range constraints;
//! 5. [`redraw`]: sample accidental copies of other segments again;
//! 6. [`splice`]: make repeats exact and put the new bars into the clip (the odd-bar rule).
//!
//! What a musician asks for is a [`Request`]; what the engine calibrated is its [`Tuning`].
//! **Generation from scratch** (every segment selected) drafts the clip and then infills the
//! draft's middle from its own opening and close under context guidance
//! ([`Engine::revision_of`]), so one tune keeps one character.

mod decode;
mod encode;
mod error;
mod plan;
mod predict;
mod redraw;
mod request;
mod selection;
mod splice;
mod tuning;

pub use error::EngineError;
pub use request::{Repeats, Request};
pub use selection::BarSelection;
pub use splice::splice;
pub use tuning::{AppliedOptions, NoiseScales, RepeatOffsets, Tuning};

use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};

use crate::melody::Melody;
use crate::prior::TrainedPrior;
use crate::sample::{sample, OpeningNoise, SampleRequest};
use crate::time::BARS_PER_SEGMENT;
use crate::vae::MelodyVae;

use decode::Decoder;
use encode::encode_clips;
use plan::repeat_plan;
use predict::predict_in_halves;
use redraw::redraw_copies;
use splice::splice_variation;

/// The share of the progress bar the first pass takes when accidental copies may be redrawn.
const FIRST_PASS_PROGRESS: f32 = 0.8;
/// Mixed into the seed of generation's revision pass, so it does not replay the draft's noise.
const REVISION_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

/// The loaded models and their tuning. Load once, then call [`Engine::infill`] as often as
/// needed; it allocates freely and may take tens of milliseconds, so it belongs on a worker
/// thread, never on an audio thread.
pub struct Engine {
    pub vae: MelodyVae,
    pub prior: TrainedPrior,
    tuning: Tuning,
}

/// What one pass of the prior over a batch of clips runs with.
struct Pass<'a> {
    /// The bars the pass regenerates.
    selection: &'a BarSelection,
    /// Variations per clip.
    per_clip: usize,
    seed: u64,
    applied: AppliedOptions,
}

impl Engine {
    /// Pairs a VAE with a prior, checking that the prior was trained on this VAE's latents, with
    /// the shipped tuning.
    pub fn new(vae: MelodyVae, prior: TrainedPrior) -> Result<Self, EngineError> {
        let preprocess = vae.preprocess.as_ref().ok_or(EngineError::NoPreprocessing)?;
        if preprocess != &prior.vae_preprocess {
            return Err(EngineError::MismatchedModels);
        }
        Ok(Self { vae, prior, tuning: Tuning::default() })
    }

    /// The shipped VAE and prior, built into the binary, on the CPU.
    pub fn embedded() -> Result<Self, EngineError> {
        let device = Device::Cpu;
        Self::new(MelodyVae::embedded(&device)?, TrainedPrior::embedded(&device)?)
    }

    /// This engine with another tuning (for calibration and evaluation), checked first.
    pub fn with_tuning(self, tuning: Tuning) -> Result<Self, EngineError> {
        tuning.validate()?;
        Ok(Self { tuning, ..self })
    }

    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    pub fn device(&self) -> &Device {
        &self.vae.device
    }

    /// What `request` comes to in one pass of the prior that regenerates the 2-bar segments
    /// `generate` marks (see [`Tuning::applied`]).
    pub fn applied(&self, request: &Request, generate: &[bool]) -> AppliedOptions {
        self.tuning.applied(request, generate, self.prior.model.config.clean_context)
    }

    /// The bars generation's second pass regenerates in a clip of `bars` bars and what the
    /// request comes to there, or `None` where there is no second pass (see
    /// [`Self::revision_of`]).
    pub fn revision_applied(&self, request: &Request, bars: u32) -> Option<(BarSelection, AppliedOptions)> {
        let middle = self.revision_of(request, bars)?;
        let applied = self.tuning.revision_applied(
            request,
            &middle.segments_of_clip(bars),
            self.prior.model.config.clean_context,
        );
        Some((middle, applied))
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
        request: &Request,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<Melody>, EngineError> {
        if clip.bars > self.max_bars() {
            return Err(EngineError::ClipTooLong { bars: clip.bars, max: self.max_bars() });
        }
        if !(0..clip.bars).any(|bar| request.selection.is_selected(bar)) {
            return Err(EngineError::EmptySelection);
        }
        request.validate()?;
        let generate = request.selection.segments_of_clip(clip.bars);
        let pass = Pass {
            selection: &request.selection,
            per_clip: request.variations,
            seed: request.seed,
            applied: self.applied(request, &generate),
        };
        let Some((middle, revision)) = self.revision_applied(request, clip.bars) else {
            return self.run_pass(&[clip], request, &pass, cancel, progress);
        };
        // Generation from scratch in two passes: one draft per variation, then each draft's
        // middle regenerated under context guidance from the rest of it. Real tunes keep one
        // character throughout (their density and register vary far less within a tune than
        // between tunes); one pass of the prior mixes characters within a draft, and guidance by
        // the draft's own opening and close pulls its middle back to them.
        let drafts = self.run_pass(&[clip], request, &pass, cancel, &mut |f| progress(f / 2.0))?;
        let drafts: Vec<&Melody> = drafts.iter().collect();
        let second = Pass { selection: &middle, per_clip: 1, seed: request.seed ^ REVISION_STREAM, applied: revision };
        self.run_pass(&drafts, request, &second, cancel, &mut |f| progress(0.5 + f / 2.0))
    }

    /// The bars the second pass of generation from scratch regenerates (see [`Tuning::revise`]),
    /// or `None` where it does not apply: some segment is kept, revision is off, context
    /// guidance does not act (its weight is 0 or the prior was not trained with clean context),
    /// or the clip has fewer than 3 segments, which leaves no middle between an opening and a
    /// close. Of S segments, the first and last round(S / 4) are kept (bars 1–4 and 13–16 of 16
    /// bars, as in the infilling evaluation) and the selected bars between them are regenerated.
    pub fn revision_of(&self, request: &Request, bars: u32) -> Option<BarSelection> {
        let selection = &request.selection;
        let generate = selection.segments_of_clip(bars);
        let segments = generate.len();
        let guided = self.tuning.context_guidance > 0.0 && self.prior.model.config.clean_context;
        if !self.tuning.revise || generate.contains(&false) || !guided || segments < 3 {
            return None;
        }
        let kept = (segments + 2) / 4;
        let middle = (kept * BARS_PER_SEGMENT as usize) as u32..((segments - kept) * BARS_PER_SEGMENT as usize) as u32;
        Some(BarSelection { bars: (0..bars).map(|bar| middle.contains(&bar) && selection.is_selected(bar)).collect() })
    }

    /// One pass of the prior over `clips` (of one length) with `pass.selection` regenerated,
    /// `pass.per_clip` variations per clip, all in one batch; the results come clip by clip.
    fn run_pass(
        &self,
        clips: &[&Melody],
        request: &Request,
        pass: &Pass,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<Melody>, EngineError> {
        let model = &self.prior.model;
        let data_scale = model.config.data_scale;
        let per_clip = pass.per_clip.max(1);
        let variations = clips.len() * per_clip;
        let encoded = encode_clips(&self.vae, data_scale, clips, per_clip)?;
        let t = encoded.segments[0].len();
        let generate = pass.selection.segments(t);
        let applied = &pass.applied;

        let plan = repeat_plan(
            &self.prior,
            request.repeats,
            &encoded.known,
            &generate,
            (clips.len(), per_clip),
            pass.seed,
            applied,
        )?;

        // Batches differ in size: context guidance asks for two rows per variation, and
        // redrawing copies for only some variations. Every latent of a clip is real (no padding).
        let predict = |x: &Tensor, levels: &[f32]| {
            let valid = Tensor::ones((x.dim(0)?, t), candle_core::DType::F32, x.device())?;
            Ok(predict_in_halves(model, x, levels, &valid, false)?.0)
        };
        let sampling = SampleRequest {
            known: &encoded.known,
            generate: &generate,
            variations,
            temperature: request.temperature * applied.noise_scale,
            opening_noise: Some(OpeningNoise {
                fraction: Tuning::OPENING_STEPS,
                temperature: request.temperature * applied.opening_noise_scale,
            }),
            seed: pass.seed,
            sampler: self.tuning.sampler,
            repeats: plan.as_ref(),
            context_guidance: applied.context_guidance,
        };
        let first_share = if applied.redraw_copies > 0 { FIRST_PASS_PROGRESS } else { 1.0 };
        let sampled = sample(&predict, &self.prior.schedule, &sampling, cancel, &mut |f| progress(f * first_share))?;

        let decoder = Decoder::new(
            &self.vae,
            request,
            (data_scale, self.tuning.interval_weight),
            &encoded.clip_latents,
            &generate,
            per_clip,
        )?;
        let mut windows: Vec<_> =
            (0..variations).map(|v| decoder.variation(v, &sampled.get(v)?)).collect::<Result<_, _>>()?;
        let roots: Vec<Vec<usize>> = (0..variations)
            .map(|v| (0..t).map(|i| plan.as_ref().map_or(i, |plan| plan.root(v, i))).collect())
            .collect();
        redraw_copies(
            &predict,
            &self.prior.schedule,
            &sampling,
            sampled,
            &mut windows,
            (&roots, &generate),
            (applied.redraw_copies, &decoder),
            cancel,
            &mut |f| progress(first_share + (1.0 - first_share) * f),
        )?;
        // Done, whether or not every redraw round was needed.
        progress(1.0);

        Ok(windows
            .into_iter()
            .enumerate()
            .map(|(v, windows)| {
                let c = v / per_clip;
                splice_variation(
                    clips[c],
                    &encoded.segments[c],
                    windows,
                    (&roots[v], &generate),
                    request,
                    pass.selection,
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::plan::draw_repeats;
    use super::*;
    use crate::melody::Note;
    use crate::midi::Meter;
    use crate::time::Step;

    #[test]
    fn distance_offsets_steer_where_drawn_repeats_come_from() {
        let engine = Engine::embedded().unwrap();
        let d = engine.vae.preprocess.as_ref().unwrap().prior_dim();
        let (v, t) = (6, 8);
        let known = Tensor::randn(0f32, 1.0, (v, t, d), &Device::Cpu).unwrap();
        let generate = [false, false, true, true, true, true, false, false];
        let valid = Tensor::ones((v, t), candle_core::DType::F32, &Device::Cpu).unwrap();
        let request = Request::new(BarSelection::range(4, 11, 16));
        // A gate offset that makes nearly every generated latent a repeat, so the sources show.
        let sources = |offsets: Vec<f64>| {
            let tuning = Tuning {
                repeat_distance_offsets: offsets,
                repeat_offset: RepeatOffsets::all(20.0),
                ..Tuning::default()
            };
            let applied = tuning.applied(&request, &generate, true);
            let plan = draw_repeats(&engine.prior, &known, &generate, request.seed, &applied, &valid).unwrap();
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
    fn an_engine_refuses_a_tuning_that_would_make_it_panic_and_infill_refuses_a_bad_request() {
        // A NaN offset made the repeat head's odds NaN, and drawing with them panicked.
        let nan = Tuning { repeat_offset: RepeatOffsets::all(f64::NAN), ..Tuning::default() };
        let refused = Engine::embedded().unwrap().with_tuning(nan);
        assert!(matches!(refused, Err(EngineError::BadOption { name: "the repeat offset", .. })));
        let engine = Engine::embedded().unwrap();
        let note = |pitch, start| Note { pitch, start: Step(start), len: Step(4) };
        let notes = vec![note(60, 0), note(62, 16), note(64, 32), note(65, 48)];
        let clip = Melody { notes, bars: 4, bpm: 120.0, meter: Meter::FOUR_FOUR, key: None };
        let request = Request { temperature: f64::NAN, variations: 1, ..Request::new(BarSelection::range(2, 3, 4)) };
        let never = AtomicBool::new(false);
        let result = engine.infill(&clip, &request, &never, &mut |_| {});
        assert!(matches!(result, Err(EngineError::BadOption { name: "the temperature", .. })), "{result:?}");
    }
}
