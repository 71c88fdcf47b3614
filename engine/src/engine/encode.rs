//! Stage 1 of a pass, encode: every clip cut into 2-bar segments, and each segment encoded by the
//! VAE into one latent in the prior's space (Mittal et al., 2021, §3.1: the VAE's mean,
//! preprocessed, times the prior's data scale).

use candle_core::Tensor;

use crate::melody::Melody;
use crate::vae::segments::to_segments;
use crate::vae::MelodyVae;
use crate::windows::Window;

use super::error::EngineError;

/// The clips of a pass as the prior sees them.
pub struct Encoded {
    /// Each clip's 2-bar segments.
    pub segments: Vec<Vec<Window>>,
    /// Each clip's latents, `[clips, t, d]`.
    pub clip_latents: Tensor,
    /// Each clip's latents once per variation of it, `[clips · per_clip, t, d]`: the known
    /// latents of the sampler.
    pub known: Tensor,
}

/// Encodes `clips` (of one length) for `per_clip` variations each.
pub fn encode_clips(
    vae: &MelodyVae,
    data_scale: f64,
    clips: &[&Melody],
    per_clip: usize,
) -> Result<Encoded, EngineError> {
    let preprocess = vae.preprocess.as_ref().ok_or(EngineError::NoPreprocessing)?;
    let segments: Vec<Vec<Window>> = clips.iter().map(|clip| to_segments(clip)).collect();
    let t = segments[0].len();
    let every_segment: Vec<Window> = segments.concat();
    let encoded = (preprocess.to_prior_space(&vae.encode(&every_segment)?)? * data_scale)?;
    let clip_of: Vec<u32> = (0..clips.len() * per_clip).map(|v| (v / per_clip) as u32).collect();
    let d = encoded.dim(1)?;
    let clip_latents = encoded.reshape((clips.len(), t, d))?;
    let known = clip_latents.index_select(&Tensor::new(clip_of.as_slice(), &vae.device)?, 0)?;
    Ok(Encoded { segments, clip_latents, known })
}
