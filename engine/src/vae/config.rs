//! The VAE's architecture as plain data, saved inside every checkpoint so a weights file
//! describes itself.

use crate::checkpoint::{MAX_LAYERS, MAX_WIDTH};
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

    /// Checks what the rest of the engine relies on, before anything is built from the config:
    /// the melody vocabulary and window length this build reads, and sizes that are at least 1
    /// and at most [`MAX_WIDTH`] (the weights must then match them, see
    /// [`crate::checkpoint::Checkpoint::check_tensors`]).
    pub fn validate(&self) -> Result<(), String> {
        if self.vocab_size != VOCAB_SIZE || self.steps != STEPS_PER_SEGMENT as usize {
            return Err(format!(
                "a VAE of {} tokens and {} steps; this build reads {VOCAB_SIZE} tokens and {STEPS_PER_SEGMENT} steps",
                self.vocab_size, self.steps
            ));
        }
        for (name, size) in [("embed_dim", self.embed_dim), ("hidden", self.hidden), ("latent", self.latent)] {
            if !(1..=MAX_WIDTH).contains(&size) {
                return Err(format!("{name} is {size}; 1 to {MAX_WIDTH} are allowed"));
            }
        }
        if self.residual_layers > MAX_LAYERS {
            return Err(format!("{} residual layers; at most {MAX_LAYERS} are allowed", self.residual_layers));
        }
        Ok(())
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
