//! The latent diffusion prior (Mittal et al., "Symbolic Music Generation with Diffusion Models",
//! ISMIR 2021): a transformer DDPM over sequences of preprocessed 2-bar VAE latents.
//!
//! - [`config`]: the architecture as data; [`model`]: the ε-prediction transformer;
//!   [`repeats`]: its head for which latents repeat which.
//! - [`schedule`]: the noise schedule (linear β, N = 1000) and the continuous noise levels of
//!   training.

pub mod config;
pub mod model;
pub mod repeats;
pub mod schedule;

/// The format name in a prior weights file's metadata.
pub const FORMAT: &str = "rebar-prior";
/// Bumped whenever the file layout or a field's meaning changes. 3: the model works on latents
/// × `config.data_scale`; a version-2 reader would ignore that field and sample nonsense. 4: copy
/// attention and the copy pointer (`config.copy_attention`, `config.copy_pointer` and their
/// weights), which a version-3 reader would silently leave out. 5: the repeat head
/// (`config.repeat_head`, weights `repeats.*`), which the default sampler needs. 6: places in the
/// tune (weight `tune_position`), which this build no longer has: a file with them is refused,
/// and one without is a version-5 file.
pub const VERSION: u32 = 6;
/// The oldest version this build reads.
pub const OLDEST_VERSION: u32 = 5;
/// The weight of places in the tune, an encoding some version-6 files have and this build does
/// not: without it such a prior would load and predict nonsense.
const TUNE_POSITION: &str = "tune_position";

pub use config::PriorConfig;
pub use model::PriorTransformer;
pub use schedule::NoiseSchedule;

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::vae::LatentPreprocess;

/// The shipped prior's file, built into the binary.
pub const EMBEDDED_PRIOR: &[u8] = include_bytes!("../../../assets/prior.safetensors");

/// A trained prior, as loaded from its self-describing file.
pub struct TrainedPrior {
    pub model: PriorTransformer,
    pub schedule: NoiseSchedule,
    /// The preprocessing of the VAE it was trained with; must match the VAE it is used with.
    pub vae_preprocess: LatentPreprocess,
    pub provenance: serde_json::Value,
}

impl TrainedPrior {
    pub fn load(path: &Path, device: &Device) -> Result<Self, CheckpointError> {
        Self::from_checkpoint(&Checkpoint::read_of_versions(path, FORMAT, OLDEST_VERSION..=VERSION)?, device)
    }

    /// The shipped prior, built into the binary so the CLI and the plugin need no files.
    pub fn embedded(device: &Device) -> Result<Self, CheckpointError> {
        Self::from_bytes(EMBEDDED_PRIOR, "embedded assets/prior.safetensors", device)
    }

    pub fn from_bytes(bytes: &[u8], label: &str, device: &Device) -> Result<Self, CheckpointError> {
        Self::from_checkpoint(
            &Checkpoint::from_bytes_of_versions(bytes, label, FORMAT, OLDEST_VERSION..=VERSION)?,
            device,
        )
    }

    fn from_checkpoint(checkpoint: &Checkpoint, device: &Device) -> Result<Self, CheckpointError> {
        let config: PriorConfig = checkpoint.json_checked("config", PriorConfig::validate)?;
        if checkpoint.tensors.contains_key(TUNE_POSITION) {
            return Err(CheckpointError::Model {
                file: checkpoint.file.clone(),
                reason: "it was trained with places in the tune, which this build's prior does not have".into(),
            });
        }
        let model_error =
            |e: candle_core::Error| CheckpointError::Model { file: checkpoint.file.clone(), reason: e.to_string() };
        checkpoint.check_tensors(
            &crate::checkpoint::expected_tensors(|vb| PriorTransformer::new(&config, vb).map(|_| ()))
                .map_err(model_error)?,
        )?;
        let vb = VarBuilder::from_tensors(checkpoint.tensors.clone(), DType::F32, device);
        Ok(Self {
            model: PriorTransformer::new(&config, vb).map_err(model_error)?,
            schedule: NoiseSchedule::default(),
            vae_preprocess: checkpoint.json("vae_preprocess")?,
            provenance: checkpoint.json_opt("provenance")?.unwrap_or(serde_json::Value::Null),
        })
    }
}
