//! Stage 4 of a pass, decode: sampled latents back to 2-bar windows of tokens, under the
//! request's pitch constraints and with the interval prior (see [`crate::vae::intervals`]).
//!
//! Kept segments are never heard from the decoder (the input's notes are spliced back); their
//! decodings are only compared with generated ones, and are the same in every variation of a
//! clip, so they are decoded once per clip. Each run of generated segments is decoded with the
//! segment on either side, since the interval prior judges a window's first note by the note
//! before it.

use std::ops::Range;

use candle_core::Tensor;

use crate::vae::MelodyVae;
use crate::windows::Window;

use super::error::EngineError;
use super::request::Request;

/// Decodes the latents of one pass's variations.
pub struct Decoder<'a> {
    vae: &'a MelodyVae,
    request: &'a Request,
    data_scale: f64,
    interval_weight: f64,
    /// Per clip: the decoding of its own latents, where some segment is kept.
    kept_decoded: Vec<Vec<Window>>,
    runs: Vec<Range<usize>>,
    per_clip: usize,
    segments: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder for variations of the clips whose latents are `clip_latents` (`[clips, t, d]`),
    /// `per_clip` each, regenerating the segments `generate` marks.
    pub fn new(
        vae: &'a MelodyVae,
        request: &'a Request,
        (data_scale, interval_weight): (f64, f64),
        clip_latents: &Tensor,
        generate: &[bool],
        per_clip: usize,
    ) -> Result<Self, EngineError> {
        let mut decoder = Self {
            vae,
            request,
            data_scale,
            interval_weight,
            kept_decoded: Vec::new(),
            runs: generated_runs(generate),
            per_clip,
            segments: generate.len(),
        };
        if generate.contains(&false) {
            decoder.kept_decoded =
                (0..clip_latents.dim(0)?).map(|c| decoder.decode(&clip_latents.get(c)?)).collect::<Result<_, _>>()?;
        }
        Ok(decoder)
    }

    /// Latents `[t, d]` in the prior's space, decoded whole.
    fn decode(&self, latents: &Tensor) -> Result<Vec<Window>, EngineError> {
        let preprocess = self.vae.preprocess.as_ref().ok_or(EngineError::NoPreprocessing)?;
        let z = preprocess.from_prior_space(&(latents / self.data_scale)?, &self.vae.device)?;
        Ok(self.vae.decode_melody(&z, &|pitch| self.request.allows(pitch), self.interval_weight)?)
    }

    /// Variation `v`'s windows, every segment's: generated ones from `latents` (`[t, d]`), kept
    /// ones as its clip's latents decode.
    pub fn variation(&self, v: usize, latents: &Tensor) -> Result<Vec<Window>, EngineError> {
        if self.kept_decoded.is_empty() {
            return self.decode(latents);
        }
        let mut windows = self.kept_decoded[v / self.per_clip].clone();
        for run in &self.runs {
            let (lo, hi) = (run.start.saturating_sub(1), (run.end + 1).min(self.segments));
            let decoded = self.decode(&latents.narrow(0, lo, hi - lo)?)?;
            windows[run.clone()].copy_from_slice(&decoded[run.start - lo..run.end - lo]);
        }
        Ok(windows)
    }
}

/// The maximal runs of consecutive generated segments.
fn generated_runs(generate: &[bool]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (i, _) in generate.iter().enumerate().filter(|(_, &g)| g) {
        match runs.last_mut() {
            Some(run) if run.end == i => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_runs_are_the_maximal_runs_of_generated_segments() {
        assert_eq!(generated_runs(&[false, true, true, true, true, false]), vec![1..5]);
        assert_eq!(generated_runs(&[true, false, true, true, false]), [0..1, 2..4]);
        assert!(generated_runs(&[false, false]).is_empty());
    }
}
