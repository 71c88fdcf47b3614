//! `rebar eval --task tools`: MusicVAE's latent tools measured (Roberts et al., 2018): how far
//! interpolations between pairs of windows move from the first (its Fig. 3, mean Hamming distance
//! by α), and how many notes windows have after moving along the note-density attribute vector
//! (§5.5).

use std::collections::BTreeMap;

use rebar_engine::vae::tools::{apply_attribute, interpolate, note_count, DENSITY};
use rebar_engine::vae::MelodyVae;
use rebar_engine::windows::Window;

/// Interpolation points from A (α = 0) to B (α = 1).
const ALPHAS: usize = 11;
/// The amounts of the density vector added.
const DENSITY_AMOUNTS: [f32; 5] = [-2.0, -1.0, 0.0, 1.0, 2.0];

/// The figures of the latent tools over a set of windows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LatentToolsReport {
    pub task: &'static str,
    /// Pairs interpolated: the first half of the windows against the second.
    pub n_pairs: usize,
    /// Mean token Hamming distance to A at each of [`ALPHAS`] evenly spaced α.
    pub mean_hamming_to_a_by_alpha: Vec<f64>,
    pub n_windows: usize,
    pub input_mean_notes: f64,
    /// Mean note count after adding each amount of the density vector, by amount ("+1").
    pub mean_notes_by_density_amount: BTreeMap<String, f64>,
}

/// Why the latent tools cannot be measured.
#[derive(Debug, thiserror::Error)]
pub enum LatentToolsError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("the VAE file has no note-density vector")]
    NoDensityVector,
    #[error("no windows to measure")]
    NoWindows,
}

/// Measures `model`'s interpolation and density vector on `windows`.
pub fn measure_latent_tools(model: &MelodyVae, windows: &[Window]) -> Result<LatentToolsReport, LatentToolsError> {
    if windows.is_empty() {
        return Err(LatentToolsError::NoWindows);
    }
    let half = windows.len() / 2;
    let (a, b) = (&windows[..half], &windows[half..2 * half]);
    let clips = interpolate(model, a, b, ALPHAS)?;
    let mean_hamming_to_a_by_alpha = clips
        .iter()
        .map(|clip| {
            let total: usize = clip.iter().zip(a).map(|(x, y)| x.iter().zip(y).filter(|(p, q)| p != q).count()).sum();
            total as f64 / half as f64
        })
        .collect();
    let vector = model.attribute(DENSITY).ok_or(LatentToolsError::NoDensityVector)?.to_vec();
    let mean_notes =
        |windows: &[Window]| windows.iter().map(|w| note_count(w) as f64).sum::<f64>() / windows.len() as f64;
    let mut mean_notes_by_density_amount = BTreeMap::new();
    for amount in DENSITY_AMOUNTS {
        let changed = apply_attribute(model, windows, &vector, amount)?;
        mean_notes_by_density_amount.insert(format!("{amount:+}"), mean_notes(&changed));
    }
    Ok(LatentToolsReport {
        task: "tools",
        n_pairs: half,
        mean_hamming_to_a_by_alpha,
        n_windows: windows.len(),
        input_mean_notes: mean_notes(windows),
        mean_notes_by_density_amount,
    })
}
