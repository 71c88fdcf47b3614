//! The dataset cache: one safetensors file that describes itself.
//!
//! Tensors: `windows` (u8, `[N, 32]`), `window_counts` (u32, `[N]`), `tune_tokens` (u8, all tunes
//! end to end) and `tune_offsets` (u32, [T + 1]: tune i is `tune_tokens[offsets[i]..offsets[i+1]]`).
//! Metadata: `format`, `version`, `tune_ids` (a JSON array) and `summary` (JSON).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::builder::{Dataset, Summary, Tune};
use rebar_engine::windows::{Window, WINDOW_STEPS};

/// Names the kind of file, so a weights file passed by mistake is caught.
pub const FORMAT: &str = "rebar-dataset";
/// Bumped whenever the layout or the meaning of a field changes.
pub const VERSION: u32 = 1;

/// What can go wrong reading or writing a cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a Rebar dataset cache: {reason}", path.display())]
    NotADataset { path: PathBuf, reason: String },
    #[error("{}: dataset cache version {found}, but this build reads version {VERSION}; rebuild it with `rebar dataset`", path.display())]
    Version { path: PathBuf, found: String },
    #[error("{}: tensor `{name}`: {reason}", path.display())]
    Tensor { path: PathBuf, name: &'static str, reason: String },
}

/// Writes the dataset to `path` atomically.
pub fn save_dataset(dataset: &Dataset, path: &Path) -> Result<(), CacheError> {
    let io_error = |source| CacheError::Io { path: path.to_path_buf(), source };
    let windows: Vec<u8> = dataset.windows.iter().flatten().copied().collect();
    let counts: Vec<u8> = dataset.window_counts.iter().flat_map(|c| c.to_le_bytes()).collect();
    let tokens: Vec<u8> = dataset.tunes.iter().flat_map(|t| t.tokens.iter().copied()).collect();
    let mut offsets = vec![0u32];
    for tune in &dataset.tunes {
        offsets.push(offsets[offsets.len() - 1] + tune.tokens.len() as u32);
    }
    let offsets: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();

    fn view<'a>(dtype: Dtype, shape: Vec<usize>, data: &'a [u8], path: &Path) -> Result<TensorView<'a>, CacheError> {
        TensorView::new(dtype, shape, data)
            .map_err(|e| CacheError::NotADataset { path: path.to_path_buf(), reason: e.to_string() })
    }
    let tensors = vec![
        ("windows", view(Dtype::U8, vec![dataset.windows.len(), WINDOW_STEPS], &windows, path)?),
        ("window_counts", view(Dtype::U32, vec![dataset.window_counts.len()], &counts, path)?),
        ("tune_tokens", view(Dtype::U8, vec![tokens.len()], &tokens, path)?),
        ("tune_offsets", view(Dtype::U32, vec![dataset.tunes.len() + 1], &offsets, path)?),
    ];
    let ids: Vec<&str> = dataset.tunes.iter().map(|t| t.id.as_str()).collect();
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("tune_ids".to_string(), serde_json::to_string(&ids).expect("strings serialize")),
        ("summary".to_string(), serde_json::to_string(&dataset.summary).expect("summary serializes")),
    ]);
    let bytes = safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| CacheError::NotADataset { path: path.to_path_buf(), reason: e.to_string() })?;
    rebar_engine::fsutil::write_atomically(path, &bytes).map_err(io_error)
}

/// Reads a dataset cache, checking its format, version and every tensor's shape.
pub fn load_dataset(path: &Path) -> Result<Dataset, CacheError> {
    let bytes = std::fs::read(path).map_err(|source| CacheError::Io { path: path.to_path_buf(), source })?;
    let not_dataset = |reason: String| CacheError::NotADataset { path: path.to_path_buf(), reason };
    let tensor_error = |name, reason: String| CacheError::Tensor { path: path.to_path_buf(), name, reason };

    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| not_dataset(e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(not_dataset(format!("its format is {:?}", metadata.get("format"))));
    }
    let version = metadata.get("version").cloned().unwrap_or_default();
    if version != VERSION.to_string() {
        return Err(CacheError::Version { path: path.to_path_buf(), found: version });
    }
    let tune_ids: Vec<String> = serde_json::from_str(metadata.get("tune_ids").map_or("", String::as_str))
        .map_err(|e| not_dataset(format!("bad tune_ids: {e}")))?;
    let summary: Summary = serde_json::from_str(metadata.get("summary").map_or("", String::as_str))
        .map_err(|e| not_dataset(format!("bad summary: {e}")))?;

    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| not_dataset(e.to_string()))?;
    let read = |name: &'static str, dtype: Dtype| -> Result<(Vec<usize>, &[u8]), CacheError> {
        let view = tensors.tensor(name).map_err(|e| tensor_error(name, e.to_string()))?;
        if view.dtype() != dtype {
            return Err(tensor_error(name, format!("dtype {:?}, expected {dtype:?}", view.dtype())));
        }
        Ok((view.shape().to_vec(), view.data()))
    };
    let u32s = |data: &[u8]| -> Vec<u32> {
        data.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    };

    let (shape, window_bytes) = read("windows", Dtype::U8)?;
    if shape.len() != 2 || shape[1] != WINDOW_STEPS {
        return Err(tensor_error("windows", format!("shape {shape:?}, expected [N, {WINDOW_STEPS}]")));
    }
    let windows: Vec<Window> =
        window_bytes.chunks_exact(WINDOW_STEPS).map(|c| c.try_into().expect("chunks are window-sized")).collect();
    let window_counts = u32s(read("window_counts", Dtype::U32)?.1);
    if window_counts.len() != windows.len() {
        return Err(tensor_error(
            "window_counts",
            format!("{} counts for {} windows", window_counts.len(), windows.len()),
        ));
    }
    let tokens = read("tune_tokens", Dtype::U8)?.1;
    let offsets = u32s(read("tune_offsets", Dtype::U32)?.1);
    let offsets_valid = offsets.len() == tune_ids.len() + 1
        && offsets.first() == Some(&0)
        && offsets.windows(2).all(|w| w[0] <= w[1])
        && offsets.last().is_some_and(|&end| end as usize == tokens.len());
    if !offsets_valid {
        return Err(tensor_error(
            "tune_offsets",
            format!("do not split {} tokens into {} tunes", tokens.len(), tune_ids.len()),
        ));
    }
    let tunes = tune_ids
        .into_iter()
        .zip(offsets.windows(2))
        .map(|(id, span)| Tune { id, tokens: tokens[span[0] as usize..span[1] as usize].to_vec() })
        .collect();
    Ok(Dataset { windows, window_counts, tunes, summary })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("rebar-cache-{}-{name}", std::process::id()))
    }

    fn small_dataset() -> Dataset {
        let mut window = [0u8; WINDOW_STEPS];
        window[0] = 41;
        Dataset {
            windows: vec![window],
            window_counts: vec![3],
            tunes: vec![
                Tune { id: "a/one.mid".into(), tokens: vec![41; 32] },
                Tune { id: "two.mid".into(), tokens: vec![0; 48] },
            ],
            summary: Summary { files_found: 2, tunes: 2, ..Default::default() },
        }
    }

    #[test]
    fn a_dataset_survives_a_round_trip_through_the_cache() {
        let path = temp_path("roundtrip.safetensors");
        save_dataset(&small_dataset(), &path).unwrap();
        assert_eq!(load_dataset(&path).unwrap(), small_dataset());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_cache_gives_an_error_naming_it() {
        let path = temp_path("garbage.safetensors");
        std::fs::write(&path, b"definitely not safetensors").unwrap();
        let err = load_dataset(&path).unwrap_err();
        assert!(matches!(err, CacheError::NotADataset { .. }));
        assert!(err.to_string().contains("garbage.safetensors"));
        std::fs::remove_file(path).unwrap();
    }
}
