//! Fuzzes loading model files, as `--vae` and `--prior` read them: the safetensors header, the
//! JSON config and metadata, and the tensors' names, shapes and values. Random bytes rarely get
//! past the header, so most inputs are edits of small valid files (a tiny VAE and a tiny prior,
//! with the shipped files' metadata): overwrite, insert or delete bytes in the header (the
//! header's length is kept in step, so the edits reach the config and the shapes), or cut the
//! file short. Any input may be refused with an error; none may panic or exhaust memory.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use libfuzzer_sys::fuzz_target;
use rebar_engine::prior::{PriorConfig, PriorTransformer, TrainedPrior};
use rebar_engine::vae::{MelodyVae, Vae, VaeConfig};

/// The shipped files, for their metadata (preprocessing, metric statistics, provenance).
const SHIPPED_VAE: &[u8] = include_bytes!("../../../assets/vae.safetensors");
const SHIPPED_PRIOR: &[u8] = include_bytes!("../../../assets/prior.safetensors");

/// A model file with `build`'s weights (randomly initialized) and `shipped`'s metadata, with
/// `config` as its config.
fn tiny_file(shipped: &[u8], config: String, build: impl FnOnce(VarBuilder) -> candle_core::Result<()>) -> Vec<u8> {
    let varmap = VarMap::new();
    build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).expect("the tiny model builds");
    let tensors: HashMap<String, Tensor> =
        varmap.data().lock().expect("not poisoned").iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
    let (_, header) = safetensors::SafeTensors::read_metadata(shipped).expect("the shipped file parses");
    let mut metadata = header.metadata().clone().expect("the shipped file has metadata");
    metadata.insert("config".into(), config);
    let mut named: Vec<_> = tensors.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    safetensors::serialize(named, Some(metadata)).expect("the tiny model serializes")
}

fn tiny_vae() -> &'static [u8] {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        let config = VaeConfig::tiny();
        let json = serde_json::to_string(&config).expect("a config serializes");
        tiny_file(SHIPPED_VAE, json, |vb| Vae::new(&config, vb).map(|_| ()))
    })
}

fn tiny_prior() -> &'static [u8] {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        let config = PriorConfig::tiny(8);
        let json = serde_json::to_string(&config).expect("a config serializes");
        tiny_file(SHIPPED_PRIOR, json, |vb| PriorTransformer::new(&config, vb).map(|_| ()))
    })
}

/// Applies the edit script `edits` to `file`: each edit is an opcode byte and a 2-byte offset
/// into the header (or the file, for a cut), and a value byte.
fn edited(file: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut file = file.to_vec();
    for edit in edits.chunks_exact(4) {
        let header_len = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
        let at = 8 + usize::from(u16::from_le_bytes([edit[1], edit[2]])) % header_len.max(1);
        let set_header_len = |file: &mut Vec<u8>, len: usize| file[..8].copy_from_slice(&(len as u64).to_le_bytes());
        match edit[0] % 4 {
            0 if at < file.len() => file[at] = edit[3],
            1 if at <= file.len() => {
                file.insert(at, edit[3]);
                set_header_len(&mut file, header_len + 1);
            }
            2 if at < file.len() && header_len > 1 => {
                file.remove(at);
                set_header_len(&mut file, header_len - 1);
            }
            3 => {
                let cut = usize::from(u16::from_le_bytes([edit[1], edit[2]])) * 64 % file.len().max(1);
                file.truncate(cut.max(8));
                return file;
            }
            _ => {}
        }
    }
    file
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let file = match mode % 3 {
        0 => rest.to_vec(),
        1 => edited(tiny_vae(), rest),
        _ => edited(tiny_prior(), rest),
    };
    let _ = MelodyVae::from_bytes(&file, "fuzzed", &Device::Cpu);
    let _ = TrainedPrior::from_bytes(&file, "fuzzed", &Device::Cpu);
});
