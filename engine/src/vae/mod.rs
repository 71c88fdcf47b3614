//! The 2-bar melody VAE: the first stage of the seed method (MusicVAE, Roberts et al., ICML
//! 2018; Mittal et al., ISMIR 2021, §3.1). Every 2 bars (32 steps) of melody become one latent.
//!
//! - [`config`]: the architecture as data.
//! - [`model`]: encoder and decoder layers.
//! - [`latent`]: the prior's preprocessing of the latents (dimension selection, [−1, 1] scaling).
//! - [`segments`]: a melody as 2-bar segments; [`tools`]: interpolation and attribute vectors.
//! - [`intervals`]: decoding a melody's windows jointly, with the training set's interval prior.
//!
//! [`MelodyVae`] is a trained model as loaded from its self-describing file.

pub mod config;
pub mod intervals;
pub mod latent;
pub mod model;
pub mod segments;
pub mod tools;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::melody::tokens::{Token, VOCAB_SIZE};
use crate::windows::{Window, WINDOW_STEPS};
pub use config::VaeConfig;
pub use intervals::IntervalPrior;
pub use latent::LatentPreprocess;
pub use model::Vae;

/// The format name in a VAE weights file's metadata.
pub const FORMAT: &str = "rebar-vae";
/// Bumped whenever the file layout or a field's meaning changes.
pub const VERSION: u32 = 1;

/// A trained VAE with its preprocessing and provenance.
pub struct MelodyVae {
    pub vae: Vae,
    pub preprocess: Option<LatentPreprocess>,
    /// Where the weights came from: data, steps, seed, licence notes.
    pub provenance: serde_json::Value,
    /// Attribute vectors in latent space, by name (see [`tools`]).
    pub attributes: BTreeMap<String, Vec<f32>>,
    /// The training set's interval prior, for [`Self::decode_melody`]; files written before it
    /// existed have none.
    pub intervals: Option<IntervalPrior>,
    pub device: Device,
}

impl MelodyVae {
    /// Loads a VAE weights file.
    pub fn load(path: &Path, device: &Device) -> Result<Self, CheckpointError> {
        Self::from_checkpoint(&Checkpoint::read(path, FORMAT, VERSION)?, device)
    }

    /// Loads a VAE from the bytes of its file; `label` names it in errors.
    pub fn from_bytes(bytes: &[u8], label: &str, device: &Device) -> Result<Self, CheckpointError> {
        Self::from_checkpoint(&Checkpoint::from_bytes(bytes, label, FORMAT, VERSION)?, device)
    }

    /// Builds the model from a parsed file, checking every tensor first.
    pub fn from_checkpoint(checkpoint: &Checkpoint, device: &Device) -> Result<Self, CheckpointError> {
        let config: VaeConfig = checkpoint.json_checked("config", VaeConfig::validate)?;
        checkpoint.check_tensors(
            &crate::checkpoint::expected_tensors(|vb| Vae::new(&config, vb).map(|_| ()))
                .map_err(|e| model_error(checkpoint, e))?,
        )?;
        let tensors = checkpoint.tensors.clone();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let vae = Vae::new(&config, vb).map_err(|e| model_error(checkpoint, e))?;
        Ok(Self {
            vae,
            preprocess: checkpoint.json_opt("preprocess")?,
            provenance: checkpoint.json_opt("provenance")?.unwrap_or(serde_json::Value::Null),
            attributes: checkpoint.json_opt("attributes")?.unwrap_or_default(),
            intervals: Self::interval_prior(checkpoint)?,
            device: device.clone(),
        })
    }

    /// The file's interval prior, if it has one, checked so that decoding never meets a NaN.
    fn interval_prior(checkpoint: &Checkpoint) -> Result<Option<IntervalPrior>, CheckpointError> {
        let prior: Option<IntervalPrior> = checkpoint.json_opt("intervals")?;
        if prior.as_ref().is_some_and(|p| !p.is_valid()) {
            return Err(CheckpointError::Metadata {
                file: checkpoint.file.clone(),
                key: "intervals".into(),
                reason: "the interval log-probabilities must be finite and at most 0".into(),
            });
        }
        Ok(prior)
    }

    /// The shipped weights, compiled into the binary: trained as BENCHMARKS.md records.
    pub fn embedded(device: &Device) -> Result<Self, CheckpointError> {
        Self::from_bytes(EMBEDDED_VAE, "embedded assets/vae.safetensors", device)
    }

    /// An attribute vector by name, if the file has one.
    pub fn attribute(&self, name: &str) -> Option<&[f32]> {
        self.attributes.get(name).map(Vec::as_slice)
    }

    /// Posterior means of windows: `[n, latent]`.
    pub fn encode(&self, windows: &[Window]) -> candle_core::Result<Tensor> {
        self.vae.encode_mean(&windows_tensor(windows, &self.device)?)
    }

    /// Argmax reconstructions of latents `[n, latent]`.
    pub fn decode(&self, z: &Tensor) -> candle_core::Result<Vec<Window>> {
        windows_of(&self.vae.decode(z)?)
    }

    /// The interval weight [`Self::decode_melody`] applies when asked for `requested`: 0 for a
    /// file without the interval prior (it decodes per step) or a weight that is not finite.
    pub fn applied_interval_weight(&self, requested: f64) -> f64 {
        if self.intervals.is_some() && requested.is_finite() && requested > 0.0 {
            requested
        } else {
            0.0
        }
    }

    /// One melody's consecutive windows `[n, latent]`, decoded jointly: only note-ons that
    /// `allowed_pitch` accepts, the rhythm as per-step argmax, and the pitches weighted by the
    /// file's interval prior to the power `interval_weight` (see [`intervals`]; 0, or a file
    /// without the prior, is per-step argmax).
    pub fn decode_melody(
        &self,
        z: &Tensor,
        allowed_pitch: &dyn Fn(u8) -> bool,
        interval_weight: f64,
    ) -> candle_core::Result<Vec<Window>> {
        if self.vae.config.vocab_size != VOCAB_SIZE {
            candle_core::bail!("the VAE has {} token kinds; melodies have {VOCAB_SIZE}", self.vae.config.vocab_size);
        }
        let allowed: [bool; VOCAB_SIZE] = std::array::from_fn(|id| match Token::from_id(id as u8) {
            Token::On(pitch) => allowed_pitch(pitch),
            Token::Hold | Token::Rest => true,
        });
        let logits = self.vae.decoder.forward(z)?;
        let log_probs =
            candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?.flatten_all()?.to_vec1::<f32>()?;
        let ids = intervals::decode_melody(
            &log_probs,
            &allowed,
            self.intervals.as_ref(),
            self.applied_interval_weight(interval_weight) as f32,
        );
        Ok(ids.chunks_exact(WINDOW_STEPS).map(|window| std::array::from_fn(|i| window[i])).collect())
    }
}

/// Token windows to a `[n, steps]` u32 tensor of ids.
pub fn windows_tensor(windows: &[Window], device: &Device) -> candle_core::Result<Tensor> {
    let ids: Vec<u32> = windows.iter().flatten().map(|&id| u32::from(id)).collect();
    Tensor::from_vec(ids, (windows.len(), WINDOW_STEPS), device)
}

/// `[n, steps]` u32 token ids to windows.
fn windows_of(ids: &Tensor) -> candle_core::Result<Vec<Window>> {
    Ok(ids.to_vec2::<u32>()?.iter().map(|row| std::array::from_fn(|i| row[i] as u8)).collect())
}

/// The shipped VAE weights file.
pub const EMBEDDED_VAE: &[u8] = include_bytes!("../../../assets/vae.safetensors");

fn model_error(checkpoint: &Checkpoint, e: candle_core::Error) -> CheckpointError {
    CheckpointError::Model { file: checkpoint.file.clone(), reason: e.to_string() }
}
