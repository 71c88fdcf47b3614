//! The calibrated values the engine samples with. [`Tuning::default`] is what ships; the
//! calibration and evaluation tools construct others. A musician never sees these: the plugin
//! and `rebar infill` pass a [`crate::engine::Request`] and the engine applies its tuning.
//!
//! What depends on kept bars (context guidance, the repeat head's offsets, redrawing accidental
//! copies, the guided noise scale) is decided in one place, [`Tuning::applied`].

use crate::sample::{Sampler, Spacing};

use super::error::EngineError;
use super::request::Request;

/// The sampler's calibrated values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// The reverse process and its steps.
    pub sampler: Sampler,
    /// Weight of context guidance (see [`crate::sample`]): above 0, every step next to kept bars
    /// also predicts with the kept latents clean and follows them w times as closely, at twice
    /// the model rows. It needs a prior trained with clean context; with any other prior every
    /// step follows Algorithm 1.
    pub context_guidance: f64,
    /// Weight of the VAE's interval prior when latents are decoded: the pitches of the new notes
    /// are chosen jointly, each interval scored by its log-probability in the training set times
    /// this (see [`crate::vae::intervals`]); 0 is per-step argmax.
    pub interval_weight: f64,
    /// Generation from scratch in two passes: draft the whole clip, then regenerate its middle
    /// under context guidance from the draft's opening and close, so the tune agrees with itself
    /// (see [`crate::engine::Engine::revision_of`]).
    pub revise: bool,
    /// Added to the repeat head's gate logit: how often generated segments repeat others.
    pub repeat_offset: RepeatOffsets,
    /// Added to the repeat head's pointer logits next to kept bars, by how many segments a
    /// source lies from the latent that repeats it (entry d − 1 for distance d; further
    /// distances get 0): where generated segments repeat from.
    pub repeat_distance_offsets: Vec<f64>,
    /// Rounds of redrawing accidental copies next to kept bars: a segment the repeat plan leaves
    /// new but that comes back note for note as another segment (context guidance copies by
    /// itself) is sampled again, with everything else kept. 0 keeps every copy.
    pub redraw_copies: usize,
    /// The sampler's noise scale at temperature 1 (the two multiply).
    pub noise_scale: NoiseScales,
    /// The noise scale of the first [`Tuning::OPENING_STEPS`] of the steps instead (see
    /// [`crate::sample::OpeningNoise`]); `None`: the noise scale throughout.
    pub opening_noise_scale: Option<f64>,
}

/// The repeat head's gate offset by where a pass runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RepeatOffsets {
    /// Without context guidance acting (generation from scratch's draft, a prior without clean
    /// context).
    pub unguided: f64,
    /// Under context guidance next to kept bars.
    pub guided: f64,
    /// In the second pass of generation from scratch.
    pub revision: f64,
}

impl RepeatOffsets {
    /// One offset everywhere.
    pub fn all(offset: f64) -> Self {
        Self { unguided: offset, guided: offset, revision: offset }
    }
}

/// The sampler's noise scale by whether context guidance acts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseScales {
    /// Without context guidance acting, and in generation's revision pass.
    pub unguided: f64,
    /// Under context guidance next to kept bars.
    pub guided: f64,
}

impl NoiseScales {
    /// One scale everywhere.
    pub fn all(scale: f64) -> Self {
        Self { unguided: scale, guided: scale }
    }
}

/// What a request comes to in one pass of the prior over a clip ([`Tuning::applied`]): the
/// calibrated values for where the pass runs, and what acts only next to kept bars turned off
/// elsewhere.
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
    /// The noise scale of the first [`Tuning::OPENING_STEPS`] of the steps.
    pub opening_noise_scale: f64,
}

impl AppliedOptions {
    /// The offset on the repeat head's pointer logit for a source `distance` segments away.
    pub fn repeat_distance_offset(&self, distance: usize) -> f64 {
        distance.checked_sub(1).and_then(|k| self.repeat_distance_offsets.get(k)).copied().unwrap_or(0.0)
    }
}

impl Default for Tuning {
    /// The shipped calibration.
    ///
    /// - The sampler: DDIM, 10 stochastic steps (η = 1). Under context guidance 10 steps score
    ///   as 20 do at half the cost, and η = 1 keeps more of the variety guidance takes away.
    /// - Context guidance 3: from 1.5 to 4 it lifts both consistencies above the paper's row and
    ///   lowers the duration OA variance; 3 keeps the pitch OA variance highest.
    /// - Interval weight 0.7: generated tunes leap beyond an octave as often as real ones.
    /// - Repeat offsets: the share of repeated windows matches the real tunes', measured on a
    ///   sample of the *training* set with bars 5–12 of their first 16 infilled, so validation
    ///   stays untouched by calibration. Under guidance the distance offsets and redrawing apply
    ///   too; in the revision pass the draft's opening and close already repeat one another, so
    ///   its middle draws fewer repeats.
    /// - Distance offsets (distances 1 to 5, the most that infilling bars 5–12 of 16 shows): at
    ///   the start of sampling the head sees generated latents as pure noise and draws repeats
    ///   of the neighbouring segment and at odd distances far more often than real tunes have
    ///   them, whose phrases are 4 and 8 bars long, and too few 8 bars apart. Matched on the
    ///   same training sample.
    /// - One round of redrawing copies: each round redraws the copies the one before left, and
    ///   one round leaves few.
    /// - Guided noise scale 1.45: guidance extrapolates towards the kept bars and, like
    ///   classifier-free guidance, sharpens what the prior draws, so guided bars make more
    ///   rhythmically uniform frames than real tunes do. Fresh noise at every step lets the next
    ///   steps correct that, as a noise inflation does for a denoiser that removes too much
    ///   (Karras et al., 2022, §4, S_noise). Calibrated by infilling bars 5–12 of every 16-bar
    ///   training tune against those tunes' own duration OA variance; a larger scale matches it
    ///   more exactly but lowers duration consistency below the paper's row. Unguided passes
    ///   keep scale 1: there a larger one makes rhythms far busier than real ones.
    /// - No calmer opening: it keeps the register of new bars as steady as real tunes keep
    ///   theirs, but costs pitch OA variance below the paper's row.
    fn default() -> Self {
        Self {
            sampler: Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform },
            context_guidance: 3.0,
            interval_weight: 0.7,
            revise: true,
            repeat_offset: RepeatOffsets { unguided: 0.5, guided: 0.65, revision: -1.5 },
            repeat_distance_offsets: vec![-2.8, 0.4, -3.3, 0.7, -1.3],
            redraw_copies: 1,
            noise_scale: NoiseScales { unguided: 1.0, guided: 1.45 },
            opening_noise_scale: None,
        }
    }
}

impl Tuning {
    /// The share of the steps, from the noisiest, whose fresh noise is drawn at the opening's
    /// scale (3 of the default sampler's 10). The noisiest steps settle what the generated
    /// latents become as a whole, their register above all.
    pub const OPENING_STEPS: f64 = 0.3;

    /// The noise scale of *Stick to kept*: the prior's own, without the guided scale's extra
    /// variety, so new bars stay closer to the kept ones.
    pub const STICK_TO_KEPT_NOISE_SCALE: f64 = 1.0;

    /// The largest noise scale: far beyond any useful one, small enough that no noise overflows.
    pub const MAX_NOISE_SCALE: f64 = 100.0;
    /// The largest offset on a repeat head logit, either way.
    pub const MAX_REPEAT_OFFSET: f64 = 100.0;
    /// The most rounds of redrawing copies.
    pub const MAX_ROUNDS: usize = 100;

    /// What `request` comes to in one pass of the prior that regenerates the 2-bar segments
    /// `generate` marks, with a prior trained with clean context or not (`trained_clean`).
    /// Context guidance follows kept bars, so it is 0 where none are kept (generation from
    /// scratch), as it is with a prior not trained with clean context; the repeat offset and the
    /// noise scale take their values for whether it acts; the distance offsets and the redrawing
    /// of copies were calibrated next to kept bars and act only there.
    pub fn applied(&self, request: &Request, generate: &[bool], trained_clean: bool) -> AppliedOptions {
        let next_to_kept = generate.contains(&false);
        let context_guidance = if next_to_kept && trained_clean { self.context_guidance } else { 0.0 };
        let guided = context_guidance > 0.0;
        let noise_scale = match (request.stick_to_kept, guided) {
            (true, _) => Self::STICK_TO_KEPT_NOISE_SCALE,
            (false, true) => self.noise_scale.guided,
            (false, false) => self.noise_scale.unguided,
        };
        AppliedOptions {
            context_guidance,
            repeat_offset: if guided { self.repeat_offset.guided } else { self.repeat_offset.unguided },
            repeat_distance_offsets: if next_to_kept { self.repeat_distance_offsets.clone() } else { Vec::new() },
            redraw_copies: if next_to_kept && !request.stick_to_kept { self.redraw_copies } else { 0 },
            noise_scale,
            opening_noise_scale: self.opening_noise_scale.unwrap_or(noise_scale),
        }
    }

    /// What `request` comes to in the second pass of generation from scratch, which regenerates
    /// the segments `middle` marks: its own repeat offset, and none of what is calibrated next
    /// to a musician's kept bars (distance offsets, redrawing copies, the guided noise scale);
    /// on generation from scratch each of those lowered the duration OA variance.
    pub fn revision_applied(&self, request: &Request, middle: &[bool], trained_clean: bool) -> AppliedOptions {
        let noise_scale =
            if request.stick_to_kept { Self::STICK_TO_KEPT_NOISE_SCALE } else { self.noise_scale.unguided };
        AppliedOptions {
            repeat_offset: self.repeat_offset.revision,
            repeat_distance_offsets: Vec::new(),
            redraw_copies: 0,
            noise_scale,
            opening_noise_scale: self.opening_noise_scale.unwrap_or(noise_scale),
            ..self.applied(request, middle, trained_clean)
        }
    }

    /// Checks every number: finite and in its range, so a tuning from a command line or a file
    /// cannot make the sampler panic or run forever. [`crate::engine::Engine::with_tuning`]
    /// refuses a tuning that fails it.
    pub fn validate(&self) -> Result<(), EngineError> {
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
        for value in [self.noise_scale.unguided, self.noise_scale.guided] {
            in_range("the noise scale", value, 0.0, Self::MAX_NOISE_SCALE, scale)?;
        }
        if let Some(value) = self.opening_noise_scale {
            in_range("the opening noise scale", value, 0.0, Self::MAX_NOISE_SCALE, scale)?;
        }
        let offset = "a finite number from -100 to 100";
        let max_offset = Self::MAX_REPEAT_OFFSET;
        let RepeatOffsets { unguided, guided, revision } = self.repeat_offset;
        for value in [unguided, guided, revision] {
            in_range("the repeat offset", value, -max_offset, max_offset, offset)?;
        }
        for &value in &self.repeat_distance_offsets {
            in_range("a repeat distance offset", value, -max_offset, max_offset, offset)?;
        }
        if let Sampler::Ddim { eta, .. } = self.sampler {
            in_range("DDIM's eta", eta, 0.0, 1.0, "a number from 0 to 1")?;
        }
        if self.redraw_copies > Self::MAX_ROUNDS {
            return Err(EngineError::BadOption {
                name: "the rounds of redrawing copies",
                value: self.redraw_copies.to_string(),
                expected: "a count from 0 to 100",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_of_a_tuning_is_checked_before_an_engine_uses_it() {
        assert!(Tuning::default().validate().is_ok());
        let bad = [
            Tuning { repeat_offset: RepeatOffsets::all(f64::NAN), ..Tuning::default() },
            Tuning {
                repeat_offset: RepeatOffsets { revision: f64::INFINITY, ..Tuning::default().repeat_offset },
                ..Tuning::default()
            },
            Tuning { repeat_distance_offsets: vec![0.4, f64::NAN], ..Tuning::default() },
            Tuning { noise_scale: NoiseScales::all(f64::NAN), ..Tuning::default() },
            Tuning { opening_noise_scale: Some(f64::NEG_INFINITY), ..Tuning::default() },
            Tuning {
                sampler: Sampler::Ddim { steps: 10, eta: f64::NAN, spacing: Spacing::Uniform },
                ..Tuning::default()
            },
            Tuning { context_guidance: f64::INFINITY, ..Tuning::default() },
            Tuning { interval_weight: -1.0, ..Tuning::default() },
            Tuning { redraw_copies: usize::MAX, ..Tuning::default() },
        ];
        for tuning in &bad {
            assert!(tuning.validate().is_err(), "{tuning:?}");
        }
        let err = Tuning { repeat_offset: RepeatOffsets::all(f64::NAN), ..Tuning::default() }.validate().unwrap_err();
        assert_eq!(err.to_string(), "the repeat offset must be a finite number from -100 to 100, not NaN");
    }

    #[test]
    fn what_acts_next_to_kept_bars_acts_only_there_and_stick_to_kept_turns_the_redraw_and_extra_noise_off() {
        let tuning = Tuning::default();
        let request = Request::new(crate::engine::BarSelection::range(4, 7, 16));
        let next_to_kept = [false, false, true, true, false, false, false, false];
        let guided = tuning.applied(&request, &next_to_kept, true);
        assert_eq!(guided.context_guidance, tuning.context_guidance);
        assert_eq!(
            (guided.noise_scale, guided.repeat_offset),
            (tuning.noise_scale.guided, tuning.repeat_offset.guided)
        );
        assert_eq!((guided.redraw_copies, guided.repeat_distance_offsets.len()), (tuning.redraw_copies, 5));
        // A prior without clean context cannot be guided.
        let unguided = tuning.applied(&request, &next_to_kept, false);
        assert_eq!((unguided.context_guidance, unguided.noise_scale), (0.0, tuning.noise_scale.unguided));
        assert_eq!(unguided.repeat_offset, tuning.repeat_offset.unguided);
        // Nothing kept: nothing to guide by, copy or keep distances from.
        let scratch = tuning.applied(&request, &[true; 8], true);
        assert_eq!((scratch.context_guidance, scratch.redraw_copies), (0.0, 0));
        assert!(scratch.repeat_distance_offsets.is_empty());
        let sticky = tuning.applied(&Request { stick_to_kept: true, ..request.clone() }, &next_to_kept, true);
        assert_eq!((sticky.redraw_copies, sticky.noise_scale), (0, Tuning::STICK_TO_KEPT_NOISE_SCALE));
        assert!(Tuning::STICK_TO_KEPT_NOISE_SCALE < tuning.noise_scale.guided && tuning.redraw_copies > 0);
        let revision = tuning.revision_applied(&request, &next_to_kept, true);
        assert_eq!((revision.repeat_offset, revision.redraw_copies), (tuning.repeat_offset.revision, 0));
        assert_eq!((revision.noise_scale, revision.context_guidance), (tuning.noise_scale.unguided, 3.0));
    }
}
