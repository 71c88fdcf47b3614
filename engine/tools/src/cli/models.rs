//! The models a subcommand runs: the weights files given, or the ones built into the binary, and
//! the melody of a MIDI file as the engine reads it.

use std::path::Path;

use anyhow::{Context, Result};
use rebar_engine::engine::Engine;
use rebar_engine::melody::{quantize, Melody};
use rebar_engine::midi::{read_file, MelodySelector};
use rebar_engine::prior::TrainedPrior;
use rebar_engine::vae::MelodyVae;

/// The VAE at `path`, or the embedded one.
pub fn load_vae(path: Option<&Path>) -> Result<MelodyVae> {
    let device = candle_core::Device::Cpu;
    Ok(match path {
        Some(path) => MelodyVae::load(path, &device)?,
        None => MelodyVae::embedded(&device)?,
    })
}

/// The prior at `path`, or the embedded one.
pub fn load_prior(path: Option<&Path>, device: &candle_core::Device) -> Result<TrainedPrior> {
    Ok(match path {
        Some(path) => TrainedPrior::load(path, device)?,
        None => TrainedPrior::embedded(device)?,
    })
}

/// The melody of a MIDI file (its part with the most notes).
pub fn read_melody(path: &Path) -> Result<Melody> {
    let file = read_file(path).with_context(|| format!("reading {}", path.display()))?;
    let part = file
        .select(&MelodySelector::MostNotes)
        .with_context(|| format!("choosing the melody of {}", path.display()))?;
    Ok(quantize(&file, part).with_context(|| format!("quantizing {}", path.display()))?.0)
}

/// The engine from these weights files, or the embedded ones.
pub fn load_engine(vae: Option<&Path>, prior: Option<&Path>) -> Result<Engine> {
    let vae = load_vae(vae)?;
    let prior = load_prior(prior, &vae.device)?;
    Ok(Engine::new(vae, prior)?)
}
