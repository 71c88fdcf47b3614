//! Latent-space tools of MusicVAE (Roberts et al., 2018):
//! - **Interpolation** (§2.1.2, §5.4): spherical interpolation between two melodies' latents,
//!   2-bar segment by segment, decoded at each step.
//! - **Attribute vectors** (§5.5): the mean latent of windows that have an attribute in
//!   abundance minus the mean latent of windows that lack it; adding a multiple of it to a
//!   melody's latents moves the melody along that attribute. Rebar ships a note-density vector:
//!   the windows in the top quarter by onset count minus those in the bottom quarter.

use candle_core::{Result, Tensor};

use super::MelodyVae;
use crate::melody::tokens::Token;
use crate::windows::Window;

/// The name of the shipped note-density attribute.
pub const DENSITY: &str = "density";

/// Spherical linear interpolation between `a` and `b` at `t` ∈ [0, 1] (Shoemake, 1985), which
/// keeps intermediate latents at a typical norm for a Gaussian latent; it falls back to linear
/// interpolation when the two are (nearly) parallel.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    let cos = if na > 0.0 && nb > 0.0 { a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (na * nb) } else { 1.0 };
    let omega = cos.clamp(-1.0, 1.0).acos();
    let (wa, wb) = if omega.sin().abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin())
    };
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

/// Interpolates from melody `a` to melody `b` (as segments) in `steps` decoded clips, the first
/// at t = 0 and the last at t = 1. Clips have as many segments as the shorter melody.
pub fn interpolate(model: &MelodyVae, a: &[Window], b: &[Window], steps: usize) -> Result<Vec<Vec<Window>>> {
    let count = a.len().min(b.len());
    let za = model.encode(&a[..count])?.to_vec2::<f32>()?;
    let zb = model.encode(&b[..count])?.to_vec2::<f32>()?;
    let mut clips = Vec::with_capacity(steps);
    for i in 0..steps {
        let t = if steps > 1 { i as f32 / (steps - 1) as f32 } else { 0.0 };
        let rows: Vec<f32> = za.iter().zip(&zb).flat_map(|(x, y)| slerp(x, y, t)).collect();
        let z = Tensor::from_vec(rows, (count, model.vae.config.latent), &model.device)?;
        clips.push(model.decode(&z)?);
    }
    Ok(clips)
}

/// Number of note onsets in a window.
pub fn note_count(window: &[u8]) -> usize {
    window.iter().filter(|&&id| matches!(Token::from_id(id), Token::On(_))).count()
}

/// The note-density attribute vector from training windows: mean latent of the densest quarter
/// minus mean latent of the sparsest quarter (by onset count).
pub fn density_vector(model: &MelodyVae, windows: &[Window]) -> Result<Vec<f32>> {
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| note_count(&windows[i]));
    let quarter = (windows.len() / 4).max(1);
    let mean_of = |indices: &[usize]| -> Result<Vec<f32>> {
        let picked: Vec<Window> = indices.iter().map(|&i| windows[i]).collect();
        model.encode(&picked)?.mean(0)?.to_vec1::<f32>()
    };
    let sparse = mean_of(&order[..quarter])?;
    let dense = mean_of(&order[order.len() - quarter..])?;
    Ok(dense.iter().zip(&sparse).map(|(d, s)| d - s).collect())
}

/// Moves segments along an attribute vector by `amount` (1.0 = the full dense-minus-sparse gap).
pub fn apply_attribute(model: &MelodyVae, segments: &[Window], vector: &[f32], amount: f32) -> Result<Vec<Window>> {
    let z = model.encode(segments)?;
    let shift =
        Tensor::from_vec(vector.iter().map(|v| v * amount).collect::<Vec<f32>>(), (1, vector.len()), &model.device)?;
    model.decode(&z.broadcast_add(&shift)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slerp_hits_its_endpoints_and_keeps_the_norm_between_orthogonal_unit_vectors() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        assert_eq!(slerp(&a, &b, 0.0), a.to_vec());
        let end = slerp(&a, &b, 1.0);
        assert!((end[0] - 0.0).abs() < 1e-6 && (end[1] - 1.0).abs() < 1e-6);
        let mid = slerp(&a, &b, 0.5);
        assert!((mid[0].hypot(mid[1]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn slerp_of_parallel_vectors_is_linear() {
        assert_eq!(slerp(&[2.0, 0.0], &[4.0, 0.0], 0.5), vec![3.0, 0.0]);
    }
}
