//! Adds the interval prior (see `rebar_engine::vae::intervals`) to a VAE file written before
//! training saved one, fitted on the training windows of a MIDI folder as `rebar train vae`
//! fits it. The weights and every other entry are kept as they are (checked after writing).
//!
//! `cargo run --release -p rebar-engine --example add_interval_prior -- VAE_IN TRAIN_MIDI_DIR VAE_OUT`
use std::path::PathBuf;

use anyhow::{ensure, Context};
use rebar_engine::checkpoint::{save, Checkpoint};
use rebar_engine::data::{build_dataset, BuildOptions};
use rebar_engine::vae::{IntervalPrior, FORMAT, VERSION};

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, midi_dir, output] = args.as_slice() else {
        anyhow::bail!("usage: add_interval_prior VAE_IN TRAIN_MIDI_DIR VAE_OUT");
    };
    let before = Checkpoint::read(input, FORMAT, VERSION)?;
    let data =
        build_dataset(midi_dir, &BuildOptions::default()).with_context(|| format!("reading {}", midi_dir.display()))?;
    ensure!(!data.windows.is_empty(), "no 2-bar windows in {}", midi_dir.display());
    let prior = IntervalPrior::fit(&data.windows);
    let mut metadata = before.metadata.clone();
    metadata.insert("intervals".into(), serde_json::to_string(&prior)?);
    save(output, &before.tensors, FORMAT, VERSION, metadata)?;

    let after = Checkpoint::read(output, FORMAT, VERSION)?;
    ensure!(after.tensors.len() == before.tensors.len(), "tensor count changed");
    for (name, tensor) in &before.tensors {
        let written = after.tensors.get(name).with_context(|| format!("{name} missing after writing"))?;
        ensure!(tensor.dtype() == written.dtype() && tensor.dims() == written.dims(), "{name} changed shape or type");
        let same = tensor.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?
            == written.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        ensure!(same, "{name} changed");
    }
    println!("{} windows; interval log-probabilities 0..: {:?}", data.windows.len(), prior.log_probs);
    println!("wrote {}", output.display());
    Ok(())
}
