//! Self-describing model files: one safetensors file whose metadata names its format and version
//! and carries the JSON config, preprocessing and provenance next to the weights. Training
//! checkpoints add the optimizer's moments and the step. Every error names the file and, where
//! one is at fault, the tensor.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

/// The widest layer a model file's config may name (the shipped VAE's is 1,024): configs are
/// checked against it before a model is built from them.
pub const MAX_WIDTH: usize = 1 << 16;
/// The most layers of one kind a model file's config may name.
pub const MAX_LAYERS: usize = 1024;

/// What can go wrong with a model file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a safetensors file: {reason}")]
    NotSafetensors { file: String, reason: String },
    #[error("{file}: holds a {found:?} file, expected {expected:?}")]
    WrongFormat { file: String, found: Option<String>, expected: String },
    #[error("{file}: format version {found:?}, this build reads {}", readable_versions(*oldest, *newest))]
    WrongVersion { file: String, found: Option<String>, oldest: u32, newest: u32 },
    #[error("{file}: metadata `{key}`: {reason}")]
    Metadata { file: String, key: String, reason: String },
    #[error("{file}: tensor `{tensor}`: {reason}")]
    Tensor { file: String, tensor: String, reason: String },
    #[error("{file}: {reason}")]
    Model { file: String, reason: String },
}

fn readable_versions(oldest: u32, newest: u32) -> String {
    if oldest == newest {
        format!("version {newest}")
    } else {
        format!("versions {oldest} to {newest}")
    }
}

/// A model file's contents.
pub struct Checkpoint {
    /// Where it came from, for error messages: a path or "embedded …".
    pub file: String,
    pub tensors: HashMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
}

impl Checkpoint {
    /// Parses a file's bytes, checking its format name and version.
    pub fn from_bytes(bytes: &[u8], file: &str, format: &str, version: u32) -> Result<Self, CheckpointError> {
        Self::from_bytes_of_versions(bytes, file, format, version..=version)
    }

    /// [`Self::from_bytes`] for a format whose newer readers still read some older versions.
    pub fn from_bytes_of_versions(
        bytes: &[u8],
        file: &str,
        format: &str,
        versions: std::ops::RangeInclusive<u32>,
    ) -> Result<Self, CheckpointError> {
        let not_safetensors =
            |e: &dyn std::fmt::Display| CheckpointError::NotSafetensors { file: file.into(), reason: e.to_string() };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| not_safetensors(&e))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let found = metadata.get("format").cloned();
        if found.as_deref() != Some(format) {
            return Err(CheckpointError::WrongFormat { file: file.into(), found, expected: format.into() });
        }
        let found = metadata.get("version").cloned();
        if !found.as_deref().and_then(|v| v.parse::<u32>().ok()).is_some_and(|v| versions.contains(&v)) {
            let (oldest, newest) = (*versions.start(), *versions.end());
            return Err(CheckpointError::WrongVersion { file: file.into(), found, oldest, newest });
        }
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| not_safetensors(&e))?;
        Ok(Self { file: file.into(), tensors, metadata })
    }

    /// Reads and parses a file.
    pub fn read(path: &Path, format: &str, version: u32) -> Result<Self, CheckpointError> {
        Self::read_of_versions(path, format, version..=version)
    }

    /// [`Self::read`] for a format whose newer readers still read some older versions.
    pub fn read_of_versions(
        path: &Path,
        format: &str,
        versions: std::ops::RangeInclusive<u32>,
    ) -> Result<Self, CheckpointError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { file: file.clone(), source })?;
        Self::from_bytes_of_versions(&bytes, &file, format, versions)
    }

    /// A JSON metadata entry.
    pub fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, CheckpointError> {
        let text = self.metadata.get(key).ok_or_else(|| self.metadata_error(key, "missing".into()))?;
        serde_json::from_str(text).map_err(|e| self.metadata_error(key, e.to_string()))
    }

    /// A JSON metadata entry that must pass `check` (a model's config, checked before anything
    /// is built from it).
    pub fn json_checked<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> Result<T, CheckpointError> {
        let value = self.json(key)?;
        check(&value).map_err(|reason| self.metadata_error(key, reason))?;
        Ok(value)
    }

    /// A JSON metadata entry that may be absent.
    pub fn json_opt<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CheckpointError> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(text) => serde_json::from_str(text).map(Some).map_err(|e| self.metadata_error(key, e.to_string())),
        }
    }

    /// Checks that every tensor a model expects is present with the right shape and a float
    /// dtype, so a wrong file fails here with the tensor's name rather than deep inside candle.
    pub fn check_tensors(&self, expected: &[(String, Shape)]) -> Result<(), CheckpointError> {
        for (name, shape) in expected {
            let tensor = self.tensors.get(name).ok_or_else(|| self.tensor_error(name, "missing".into()))?;
            if tensor.shape() != shape {
                return Err(self
                    .tensor_error(name, format!("shape {:?}, the config expects {:?}", tensor.dims(), shape.dims())));
            }
            if !matches!(tensor.dtype(), DType::F32 | DType::F16 | DType::BF16 | DType::F64) {
                return Err(self.tensor_error(name, format!("dtype {:?} is not a float type", tensor.dtype())));
            }
            let finite = tensor
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
                .map(|values| values.iter().all(|v| v.is_finite()))
                .unwrap_or(false);
            if !finite {
                return Err(self.tensor_error(name, "holds NaN or infinite values".into()));
            }
        }
        Ok(())
    }

    fn metadata_error(&self, key: &str, reason: String) -> CheckpointError {
        CheckpointError::Metadata { file: self.file.clone(), key: key.into(), reason }
    }

    fn tensor_error(&self, tensor: &str, reason: String) -> CheckpointError {
        CheckpointError::Tensor { file: self.file.clone(), tensor: tensor.into(), reason }
    }
}

/// Writes tensors and metadata (format and version added) to `path` atomically.
pub fn save(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    format: &str,
    version: u32,
    mut metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let file = path.display().to_string();
    metadata.insert("format".into(), format.into());
    metadata.insert("version".into(), version.to_string());
    let mut named: Vec<(&String, &Tensor)> = tensors.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    let bytes = safetensors::serialize(named, Some(metadata))
        .map_err(|e| CheckpointError::NotSafetensors { file: file.clone(), reason: e.to_string() })?;
    crate::fsutil::write_atomically(path, &bytes).map_err(|source| CheckpointError::Io { file, source })
}

/// Every weight a model built by `build` creates, with its shape, sorted by name. Nothing is
/// allocated for the weights (see [`ShapeRecorder`]), so a config that names sizes far beyond
/// its file's weights fails when the shapes are compared, not by exhausting memory first.
pub fn expected_tensors(
    build: impl FnOnce(VarBuilder) -> candle_core::Result<()>,
) -> candle_core::Result<Vec<(String, Shape)>> {
    let shapes = Arc::new(Mutex::new(Vec::new()));
    build(VarBuilder::from_backend(Box::new(ShapeRecorder { shapes: shapes.clone() }), DType::F32, Device::Cpu))?;
    let mut names = shapes.lock().map_err(|_| candle_core::Error::Msg("shape recorder poisoned".into()))?.clone();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(names)
}

/// A weight store that records the name and shape of every weight a model asks for and hands
/// back a view of a single zero broadcast to that shape, so building a model through it
/// allocates nothing of the weights' size.
struct ShapeRecorder {
    shapes: Arc<Mutex<Vec<(String, Shape)>>>,
}

impl SimpleBackend for ShapeRecorder {
    fn get(&self, shape: Shape, name: &str, _: Init, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        self.shapes
            .lock()
            .map_err(|_| candle_core::Error::Msg("shape recorder poisoned".into()))?
            .push((name.to_string(), shape.clone()));
        Tensor::zeros((), dtype, device)?.broadcast_as(shape)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        Err(candle_core::Error::CannotFindTensor { path: name.to_string() })
    }

    fn contains_tensor(&self, _: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of_version(version: u32) -> Vec<u8> {
        let weight = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        let metadata =
            HashMap::from([("format".to_string(), "demo".to_string()), ("version".into(), version.to_string())]);
        safetensors::serialize([("w", &weight)], Some(metadata)).unwrap()
    }

    #[test]
    fn a_reader_takes_the_versions_it_names_and_refuses_the_rest_saying_which_it_reads() {
        for version in [4, 5, 6, 7] {
            let read = Checkpoint::from_bytes_of_versions(&file_of_version(version), "f", "demo", 5..=6);
            if (5..=6).contains(&version) {
                assert_eq!(read.unwrap().metadata["version"], version.to_string());
            } else {
                let message = read.err().unwrap().to_string();
                assert!(
                    message.contains(&format!("\"{version}\"")) && message.contains("versions 5 to 6"),
                    "{message}"
                );
            }
        }
        let exact = Checkpoint::from_bytes(&file_of_version(5), "f", "demo", 6).err().unwrap().to_string();
        assert!(exact.ends_with("this build reads version 6"), "{exact}");
    }
}
