//! The diffusion prior's architecture as plain data, saved inside every checkpoint.

use crate::checkpoint::{MAX_LAYERS, MAX_WIDTH};

/// Shape of the ε-prediction transformer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PriorConfig {
    /// Dimensions of one preprocessed latent (the VAE dimensions the prior models).
    pub latent_dim: usize,
    /// Transformer width.
    pub width: usize,
    /// Self-attention encoder layers.
    pub layers: usize,
    /// Attention heads per layer.
    pub heads: usize,
    /// Hidden width of each feed-forward block.
    pub ff_width: usize,
    /// Noise-conditioned residual output layers after the encoder.
    pub output_layers: usize,
    /// Longest sequence of latents the model accepts (32 latents = 64 bars).
    pub max_segments: usize,
    /// Scale of the noise level inside its sinusoidal encoding (WaveGrad uses 5000).
    pub noise_scale: f64,
    /// The prior models `data_scale · x`, x being the VAE's preprocessed latents in [−1, 1].
    /// Training sets it to 1 / (standard deviation of x): min–max scaling leaves x with a
    /// standard deviation near 0.2, and then 90% of the linear β schedule's steps have a
    /// signal-to-noise ratio under 1, so training and sampling spend almost all their steps
    /// where the data is invisible. Unit variance is the latent scale factor of Rombach et al.
    /// (2022, §4.3.2); Chen (2023, "On the importance of noise scheduling", §3) shows the same
    /// input scaling shifting where a schedule's steps fall. Files without it used 1.
    #[serde(default = "unscaled")]
    pub data_scale: f64,
    /// Whether the model was also trained with some latents clean (at level √ᾱ = 1) beside
    /// noisy ones, so it can infill from clean known latents (see [`crate::train::prior`]).
    /// Files without it were trained at one level per sequence only.
    #[serde(default)]
    pub clean_context: bool,
    /// Whether every attention layer adds a learned multiple of the copy bias (see
    /// [`super::model`]) to its scores, so a latent can find the ones it repeats. Files without it
    /// have no such weights.
    #[serde(default)]
    pub copy_attention: bool,
    /// Whether the output can point at the latents a latent may repeat (see [`super::model`]):
    /// a learned gate blends the model's x̂₀ with them. Files without it have no such weights.
    #[serde(default)]
    pub copy_pointer: bool,
    /// Whether the model has the repeat head (see [`super::repeats`]): what a latent repeats, so
    /// a sampler can decide the repeats first. Files without it have no such weights.
    #[serde(default)]
    pub repeat_head: bool,
}

fn unscaled() -> f64 {
    1.0
}

impl PriorConfig {
    /// The shipped prior, sized for sampling in tens of milliseconds on two cores: with 4
    /// variations of 16 latents a forward pass is matmuls of only 64 rows, where time goes
    /// with the weight count (`cargo bench -p rebar-engine --bench prior` compares sizes).
    pub fn small(latent_dim: usize) -> Self {
        Self {
            latent_dim,
            width: 128,
            layers: 4,
            heads: 4,
            ff_width: 512,
            output_layers: 1,
            max_segments: 32,
            noise_scale: 5000.0,
            data_scale: 1.0,
            clean_context: false,
            copy_attention: true,
            copy_pointer: true,
            repeat_head: true,
        }
    }

    /// Checks what the model relies on, before anything is built from the config: sizes of at
    /// least 1 and at most [`MAX_WIDTH`] (the weights must then match them, see
    /// [`crate::checkpoint::Checkpoint::check_tensors`]), a width the heads divide, and finite,
    /// positive scales.
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("latent_dim", self.latent_dim),
            ("width", self.width),
            ("heads", self.heads),
            ("ff_width", self.ff_width),
            ("max_segments", self.max_segments),
        ];
        for (name, size) in sizes {
            if !(1..=MAX_WIDTH).contains(&size) {
                return Err(format!("{name} is {size}; 1 to {MAX_WIDTH} are allowed"));
            }
        }
        for (name, count) in [("layers", self.layers), ("output_layers", self.output_layers)] {
            if count > MAX_LAYERS {
                return Err(format!("{count} {name}; at most {MAX_LAYERS} are allowed"));
            }
        }
        if self.width % self.heads != 0 {
            return Err(format!("{} heads do not divide the width {}", self.heads, self.width));
        }
        for (name, scale) in [("noise_scale", self.noise_scale), ("data_scale", self.data_scale)] {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(format!("{name} is {scale}; a finite, positive number is needed"));
            }
        }
        Ok(())
    }

    /// A tiny prior for tests.
    pub fn tiny(latent_dim: usize) -> Self {
        Self { width: 32, layers: 1, heads: 2, ff_width: 64, ..Self::small(latent_dim) }
    }
}
