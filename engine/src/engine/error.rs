//! What can go wrong regenerating a clip.

use crate::checkpoint::CheckpointError;
use crate::sample::SampleError;

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
    #[error("context guidance must be a weight of 0 or more, not {0}")]
    BadContextGuidance(f64),
    #[error("the interval weight must be 0 or more, not {0}")]
    BadIntervalWeight(f64),
    #[error("{asked} variations asked for; one call makes 1 to {max}")]
    BadVariations { asked: usize, max: usize },
    #[error("{name} must be {expected}, not {value}")]
    BadOption { name: &'static str, value: String, expected: &'static str },
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
