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
    /// The decoder's autoregressive context; None for the purely factorized decoder (every file
    /// written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextConfig>,
}

/// Shape of the decoder's autoregressive context head (see `model::ContextHead`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContextConfig {
    /// How many of the previous tokens each step sees.
    pub window: usize,
    /// Width of each context embedding (previous tokens, elapsed steps, position, latent).
    pub embed_dim: usize,
    /// Width of the head's hidden layer.
    pub hidden: usize,
}

impl ContextConfig {
    /// The context used with the shipped decoder.
    pub fn melody() -> Self {
        Self { window: 8, embed_dim: 16, hidden: 256 }
    }
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
            context: None,
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
            context: None,
        }
    }
}
