//! Context guidance: classifier-free guidance (Ho & Salimans, 2022, eq. 6) with the clean
//! context as the condition. Every step predicts ε twice from one batch, once with the known
//! latents clean (ε_c) and once re-noised to the step's level as in Algorithm 1 (ε_r), and steps
//! with ε̃ = ε_r + w (ε_c − ε_r). A prior trained with clean context on part of its crops is
//! both models at once, as CFG's condition dropout makes one network both. w = 1 is clean
//! context throughout; w > 1 follows the kept bars more closely than either. It costs a second
//! row per variation in every evaluation.

use candle_core::{Result, Tensor};

/// ε̃ = ε_r + w (ε_c − ε_r) from one model call over `[clean; renoised]` :
/// the clean branch gives each known latent level 1, the re-noised one gives every latent the
/// step's level.
pub fn context_guided_noise(
    predict_noise: &dyn Fn(&Tensor, &[f32]) -> Result<Tensor>,
    generate: &[Vec<bool>],
    clean: &Tensor,
    renoised: &Tensor,
    alpha_bar: f64,
    weight: f64,
) -> Result<Tensor> {
    let v = clean.dim(0)?;
    let level = alpha_bar.sqrt() as f32;
    let clean_levels = generate.iter().flatten().map(|&generated| if generated { level } else { 1.0 });
    let levels: Vec<f32> = clean_levels.chain(std::iter::repeat_n(level, generate.iter().flatten().count())).collect();
    let both = predict_noise(&Tensor::cat(&[clean, renoised], 0)?, &levels)?;
    let (eps_clean, eps_renoised) = (both.narrow(0, 0, v)?, both.narrow(0, v, v)?);
    &eps_renoised + ((eps_clean - &eps_renoised)? * weight)?
}
