//! The VAE's architecture as plain data, saved inside every checkpoint so a weights file
//! describes itself.

use crate::melody::tokens::VOCAB_SIZE;
use crate::time::STEPS_PER_SEGMENT;

/// Shape of the 2-bar melody VAE.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VaeConfig {
    /// Token kinds (MusicVAE's melody vocabulary: hold, rest, 88 note-ons).
    pub vocab_size: usize,
    /// Steps per window: 2 bars of 16ths.
    pub steps: usize,
    /// Width of each step's token embedding in the encoder.
    pub embed_dim: usize,
    /// Width of the hidden layers of encoder and decoder.
    pub hidden: usize,
    /// Residual hidden layers after the first, in the encoder and in the decoder each.
    pub residual_layers: usize,
    /// Latent dimensions.
    pub latent: usize,
}

impl VaeConfig {
    /// The shipped model: sized so training reaches its accuracy within an hour on two cores.
    pub fn melody_2bar() -> Self {
        Self {
            vocab_size: VOCAB_SIZE,
            steps: STEPS_PER_SEGMENT as usize,
            embed_dim: 32,
            hidden: 1024,
            residual_layers: 2,
            latent: 64,
        }
    }

    /// A tiny model for tests.
    pub fn tiny() -> Self {
        Self {
            vocab_size: VOCAB_SIZE,
            steps: STEPS_PER_SEGMENT as usize,
            embed_dim: 4,
            hidden: 32,
            residual_layers: 1,
            latent: 8,
        }
    }
}
