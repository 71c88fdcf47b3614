//! What the prior's probes (`context_probe`, `copy_probe`) share: their command line, the models,
//! and the first 8 latents of every validation tune long enough, in the prior's scale.

use rebar_engine::prior::TrainedPrior;
use rebar_engine::vae::MelodyVae;
use rebar_tools::data::cache::load_dataset;
use rebar_tools::train::prior::encode_tunes;

/// Latents per crop: the evaluation's 16 bars.
pub const CROP: usize = 8;

pub struct Probe {
    pub prior: TrainedPrior,
    /// Each crop's `CROP × dim` values, row-major, times the prior's `data_scale`.
    pub crops: Vec<Vec<f32>>,
    /// Dimensions of one latent.
    pub dim: usize,
}

/// Reads `VALID_CACHE PRIOR_FILE` from the command line of the example `name`.
pub fn load(name: &str) -> anyhow::Result<Probe> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 3, "usage: {name} VALID_CACHE PRIOR_FILE");
    let device = candle_core::Device::Cpu;
    let vae = MelodyVae::embedded(&device)?;
    let prior = TrainedPrior::load(std::path::Path::new(&args[2]), &device)?;
    let scale = prior.model.config.data_scale;
    let data = encode_tunes(&vae, &load_dataset(std::path::Path::new(&args[1]))?.tunes, 0)?;
    let dim = data.dim;
    let crops = data
        .sequences
        .iter()
        .filter(|s| s.len() >= CROP * dim)
        .map(|s| s[..CROP * dim].iter().map(|v| (f64::from(*v) * scale) as f32).collect())
        .collect();
    Ok(Probe { prior, crops, dim })
}
