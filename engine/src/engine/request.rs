//! What a musician asks for: the bars to regenerate, how many variations, the seed, how wild,
//! which pitches, whether new phrases may repeat others, and whether to stick to the kept bars.
//! Everything else the sampler runs with is calibrated, and lives in [`crate::engine::Tuning`].

use crate::melody::scale::Scale;

use super::error::EngineError;
use super::selection::BarSelection;

/// A regeneration request: the musician's controls, as the plugin and `rebar infill` offer them.
#[derive(Clone, Debug)]
pub struct Request {
    /// The bars to regenerate.
    pub selection: BarSelection,
    /// Number of different results.
    pub variations: usize,
    /// The same seed, clip and request give the same results.
    pub seed: u64,
    /// The musician's scale of the sampler's noise, on top of the calibrated one: below 1 is
    /// tamer, above 1 wilder.
    pub temperature: f64,
    /// Only pitches of this scale in generated bars.
    pub key: Option<Scale>,
    /// Only pitches in this inclusive MIDI range in generated bars.
    pub pitch_range: Option<(u8, u8)>,
    /// Whether generated segments repeat others where the prior's repeat head draws it.
    pub repeats: Repeats,
    /// Let more new phrases repeat kept ones note for note: the copies context guidance makes of
    /// the kept bars by itself are kept instead of redrawn, and the sampler's noise is not scaled
    /// up to make guided bars as varied as real ones (see [`crate::engine::Tuning`]).
    pub stick_to_kept: bool,
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

impl Request {
    /// The most variations one call samples. Each costs the model rows of a whole clip, so the
    /// cap bounds a call's memory and time; it leaves room for the evaluation's infills per tune
    /// (the plugin and the CLI offer up to [`Self::MAX_USER_VARIATIONS`]).
    pub const MAX_VARIATIONS: usize = 64;

    /// The most variations a musician asks for at once: the plugin's Variations range is 1 to 8,
    /// and `rebar infill` and `rebar generate` take the same.
    pub const MAX_USER_VARIATIONS: usize = 8;

    /// The largest temperature: far beyond any useful one, small enough that no noise overflows.
    pub const MAX_TEMPERATURE: f64 = 100.0;

    /// The plugin's defaults for `selection`: 4 variations, seed 0, temperature 1, every pitch,
    /// repeats drawn.
    pub fn new(selection: BarSelection) -> Self {
        Self {
            selection,
            variations: 4,
            seed: 0,
            temperature: 1.0,
            key: None,
            pitch_range: None,
            repeats: Repeats::Drawn,
            stick_to_kept: false,
        }
    }

    /// Checks every number of the request: finite and in its range. [`crate::engine::Engine::infill`]
    /// calls this first, so a value that is NaN, infinite or out of range (from the CLI, the plugin
    /// or any other caller) is a typed error instead of a panic deep in the sampler.
    pub fn validate(&self) -> Result<(), EngineError> {
        if !(1..=Self::MAX_VARIATIONS).contains(&self.variations) {
            return Err(EngineError::BadVariations { asked: self.variations, max: Self::MAX_VARIATIONS });
        }
        if !(self.temperature.is_finite() && (0.0..=Self::MAX_TEMPERATURE).contains(&self.temperature)) {
            return Err(EngineError::BadOption {
                name: "the temperature",
                value: self.temperature.to_string(),
                expected: "a finite number from 0 to 100",
            });
        }
        if !(0..=127).any(|pitch| self.allows(pitch)) {
            return Err(EngineError::NoAllowedPitch);
        }
        Ok(())
    }

    /// Whether generated bars may use this pitch.
    pub fn allows(&self, pitch: u8) -> bool {
        self.key.as_ref().is_none_or(|scale| scale.contains(pitch))
            && self.pitch_range.is_none_or(|(low, high)| (low..=high).contains(&pitch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_of_a_request_is_checked_at_the_library_s_door() {
        let request = || Request::new(BarSelection::range(4, 7, 16));
        assert!(request().validate().is_ok());
        let bad = [
            Request { temperature: f64::NAN, ..request() },
            Request { temperature: f64::INFINITY, ..request() },
            Request { temperature: -1.0, ..request() },
            Request { variations: 0, ..request() },
            Request { variations: 100_000, ..request() },
            Request { pitch_range: Some((61, 61)), key: Some("C major".parse().unwrap()), ..request() },
        ];
        for request in &bad {
            assert!(request.validate().is_err(), "{request:?}");
        }
        let err = Request { variations: 100_000, ..request() }.validate().unwrap_err();
        assert!(matches!(err, EngineError::BadVariations { asked: 100_000, max: 64 }), "{err}");
        let err = Request { temperature: f64::NAN, ..request() }.validate().unwrap_err();
        assert_eq!(err.to_string(), "the temperature must be a finite number from 0 to 100, not NaN");
    }
}
