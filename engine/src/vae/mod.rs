//! The 2-bar melody VAE: the first stage of the seed method (MusicVAE, Roberts et al., ICML
//! 2018; Mittal et al., ISMIR 2021, §3.1). Every 2 bars (32 steps) of melody become one latent.
//!
//! - [`config`]: the architecture as data.
//! - [`model`]: encoder and decoder layers.
//! - [`loss`]: the free-bits ELBO (MusicVAE eq. 3–4).
//! - [`latent`]: the prior's preprocessing of the latents (dimension selection, [−1, 1] scaling).
//! - [`segments`]: a melody as 2-bar segments; [`tools`]: interpolation and attribute vectors.
//!
//! [`MelodyVae`] is a trained model as loaded from its self-describing file.

pub mod config;
pub mod latent;
pub mod loss;
pub mod model;
pub mod segments;
pub mod tools;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::data::windows::{Window, WINDOW_STEPS};
use crate::melody::tokens::Token;
pub use config::{ContextConfig, VaeConfig};
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
        let config: VaeConfig = checkpoint.json("config")?;
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
            device: device.clone(),
        })
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

    /// Argmax reconstructions that only use the note-ons `allowed_pitch` accepts, each window
    /// decoded on its own.
    pub fn decode_constrained(
        &self,
        z: &Tensor,
        allowed_pitch: &dyn Fn(u8) -> bool,
    ) -> candle_core::Result<Vec<Window>> {
        windows_of(&self.vae.decoder.argmax_allowed(z, &self.allowed_tokens(allowed_pitch), &[])?)
    }

    /// Decodes runs of consecutive 2-bar latents: `z` is `[runs × len, latent]`, run after run,
    /// and `known[r][i]` is a window already settled at position `i` of run `r` (kept bars, a
    /// repeat of them), returned as it is. The others are argmax reconstructions using only the
    /// note-ons `allowed_pitch` accepts. A decoder with a context head decodes them position by
    /// position, every run at once, so each window continues the one before it, known or
    /// decoded; a factorized decoder decodes them all at once.
    pub fn decode_runs(
        &self,
        z: &Tensor,
        known: &[Vec<Option<Window>>],
        allowed_pitch: &dyn Fn(u8) -> bool,
    ) -> candle_core::Result<Vec<Vec<Window>>> {
        let runs = known.len();
        let len = z.dim(0)?.checked_div(runs).unwrap_or(0);
        let allowed = self.allowed_tokens(allowed_pitch);
        if !self.vae.decoder.has_context() {
            let decoded = windows_of(&self.vae.decoder.argmax_allowed(z, &allowed, &[])?)?;
            return Ok(known
                .iter()
                .zip(decoded.chunks(len.max(1)))
                .map(|(settled, run)| settled.iter().zip(run).map(|(k, w)| k.unwrap_or(*w)).collect())
                .collect());
        }
        let mut windows: Vec<Vec<Window>> = vec![Vec::with_capacity(len); runs];
        // A position indexes every run's row of `known` and of `windows`.
        #[allow(clippy::needless_range_loop)]
        for position in 0..len {
            let open: Vec<usize> = (0..runs).filter(|&r| known[r][position].is_none()).collect();
            let decoded = if open.is_empty() {
                Vec::new()
            } else {
                let rows: Vec<u32> = open.iter().map(|&r| (r * len + position) as u32).collect();
                let rows = Tensor::from_vec(rows, open.len(), z.device())?;
                let previous: Vec<Vec<u32>> = open
                    .iter()
                    .map(|&r| windows[r].last().map_or(Vec::new(), |w| w.iter().map(|&id| u32::from(id)).collect()))
                    .collect();
                windows_of(&self.vae.decoder.argmax_allowed(&z.index_select(&rows, 0)?, &allowed, &previous)?)?
            };
            let mut decoded = decoded.into_iter();
            for (r, run) in windows.iter_mut().enumerate() {
                match known[r][position] {
                    Some(window) => run.push(window),
                    None => run.push(decoded.next().expect("one decoded window per open run")),
                }
            }
        }
        Ok(windows)
    }

    /// One flag per token id: holds and rests always, note-ons whose pitch is allowed.
    fn allowed_tokens(&self, allowed_pitch: &dyn Fn(u8) -> bool) -> Vec<bool> {
        (0..self.vae.config.vocab_size as u8)
            .map(|id| match Token::from_id(id) {
                Token::On(pitch) => allowed_pitch(pitch),
                Token::Hold | Token::Rest => true,
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;
    use rand::SeedableRng;

    fn model(context: Option<ContextConfig>) -> MelodyVae {
        let cfg = VaeConfig { context, ..VaeConfig::tiny() };
        let varmap = VarMap::new();
        let vae = Vae::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        crate::train::seeded_init(&varmap, 7).unwrap();
        MelodyVae {
            vae,
            preprocess: None,
            provenance: serde_json::Value::Null,
            attributes: BTreeMap::new(),
            device: Device::Cpu,
        }
    }

    fn latents(rows: usize) -> Tensor {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        crate::train::normal_tensor(&mut rng, rows, VaeConfig::tiny().latent, &Device::Cpu).unwrap()
    }

    fn window(pitch: u8) -> Window {
        std::array::from_fn(|i| if i % 8 == 0 { Token::On(pitch).id() } else { Token::Hold.id() })
    }

    /// Settled windows come back as they are; the rest are the decoder's, whichever kind it is.
    #[test]
    fn runs_keep_their_settled_windows_and_decode_the_rest() {
        for context in [None, Some(ContextConfig { window: 4, embed_dim: 4, hidden: 16 })] {
            let model = model(context);
            let z = latents(6);
            let known = vec![vec![Some(window(60)), None, None], vec![None, Some(window(62)), None]];
            let runs = model.decode_runs(&z, &known, &|_| true).unwrap();
            assert_eq!((runs[0][0], runs[1][1]), (window(60), window(62)));
            if model.vae.decoder.has_context() {
                // Decoding both runs together is decoding each alone, in order, each window after
                // the one before it.
                for (r, run) in runs.iter().enumerate() {
                    let alone = model.decode_runs(&z.narrow(0, 3 * r, 3).unwrap(), &known[r..=r], &|_| true).unwrap();
                    assert_eq!(&alone[0], run);
                    let before: Vec<u32> = run[1].iter().map(|&id| u32::from(id)).collect();
                    let last = model
                        .vae
                        .decoder
                        .argmax_allowed(&z.narrow(0, 3 * r + 2, 1).unwrap(), &[true; 90], &[before])
                        .unwrap();
                    assert_eq!(windows_of(&last).unwrap()[0], run[2]);
                }
            } else {
                let decoded = model.decode(&z).unwrap();
                assert_eq!(
                    (runs[0][1], runs[0][2], runs[1][0], runs[1][2]),
                    (decoded[1], decoded[2], decoded[3], decoded[5])
                );
            }
        }
    }
}
