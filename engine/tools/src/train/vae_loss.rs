//! The VAE objective with free bits (MusicVAE, Roberts et al., 2018, eq. 3–4):
//!
//! loss = E_q[−log p(x|z)] + β · max(KL(q(z|x) ‖ N(0, I)) − τ, 0)
//!
//! averaged over the batch, where τ is the free-bits budget in nats. The KL of a diagonal
//! Gaussian against N(0, I) is ½ Σ (μ² + σ² − log σ² − 1).

use candle_core::{Result, Tensor, D};
use candle_nn::ops::log_softmax;

/// The terms of one batch's loss, each a scalar tensor (per window, averaged over the batch).
pub struct VaeLoss {
    /// What the optimizer minimizes.
    pub total: Tensor,
    /// Reconstruction cross-entropy in nats per window.
    pub reconstruction: Tensor,
    /// KL divergence in nats per window.
    pub kl: Tensor,
}

/// Per-window KL(N(μ, σ²) ‖ N(0, I)): `[batch]`.
pub fn kl_per_window(mu: &Tensor, log_var: &Tensor) -> Result<Tensor> {
    let terms = ((mu.sqr()? + log_var.exp()?)? - log_var)?;
    (terms - 1.0)?.sum(D::Minus1)? * 0.5
}

/// Per-dimension KL averaged over the batch: `[latent]`. Used to find the informative dimensions.
pub fn kl_per_dimension(mu: &Tensor, log_var: &Tensor) -> Result<Tensor> {
    let terms = ((mu.sqr()? + log_var.exp()?)? - log_var)?;
    ((terms - 1.0)? * 0.5)?.mean(0)
}

/// Summed cross-entropy over steps, per window: logits `[batch, steps, vocab]`, targets
/// `[batch, steps]` (u32) → `[batch]`.
pub fn reconstruction_per_window(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let log_probs = log_softmax(logits, D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(D::Minus1)?, D::Minus1)?.squeeze(D::Minus1)?;
    picked.sum(D::Minus1)?.neg()
}

/// The free-bits ELBO of eq. 3–4.
pub fn vae_loss(
    logits: &Tensor,
    targets: &Tensor,
    mu: &Tensor,
    log_var: &Tensor,
    beta: f64,
    free_bits: f64,
) -> Result<VaeLoss> {
    let reconstruction = reconstruction_per_window(logits, targets)?;
    let kl = kl_per_window(mu, log_var)?;
    let kl_cost = (&kl - free_bits)?.relu()?;
    let total = (reconstruction.mean_all()? + (kl_cost.mean_all()? * beta)?)?;
    Ok(VaeLoss { total, reconstruction: reconstruction.mean_all()?, kl: kl.mean_all()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The prior once lost its attention's gradients to an op without a backward pass; the VAE's
    /// training objective must reach every weight.
    #[test]
    fn every_vae_weight_gets_a_gradient() {
        use rand::{Rng, SeedableRng};
        let device = Device::Cpu;
        let varmap = candle_nn::VarMap::new();
        let cfg = rebar_engine::vae::VaeConfig::tiny();
        let vae = rebar_engine::vae::Vae::new(
            &cfg,
            candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &device),
        )
        .unwrap();
        rebar_engine::random::seeded_init(&varmap, 1).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let ids: Vec<u32> = (0..4 * cfg.steps).map(|_| rng.random_range(0..cfg.vocab_size as u32)).collect();
        let ids = Tensor::from_vec(ids, (4, cfg.steps), &device).unwrap();
        let (mu, log_var) = vae.encoder.forward(&ids).unwrap();
        let eps = rebar_engine::random::normal_tensor(&mut rng, 4, cfg.latent, &device).unwrap();
        let z = (&mu + ((&log_var * 0.5).unwrap().exp().unwrap() * eps).unwrap()).unwrap();
        let logits = vae.decoder.forward(&z).unwrap();
        let loss = vae_loss(&logits, &ids, &mu, &log_var, 1.0, 0.0).unwrap();
        crate::train::assert_every_weight_gets_a_gradient(&varmap, &loss.total);
    }

    #[test]
    fn the_kl_of_the_prior_against_itself_is_zero() {
        let zeros = Tensor::zeros((3, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        let kl = kl_per_window(&zeros, &zeros).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(kl, vec![0.0; 3]);
    }

    #[test]
    fn the_kl_of_a_shifted_unit_gaussian_is_half_the_squared_shift() {
        let mu = Tensor::new(&[[2.0f32, 0.0]], &Device::Cpu).unwrap();
        let log_var = Tensor::zeros((1, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let kl = kl_per_window(&mu, &log_var).unwrap().to_vec1::<f32>().unwrap();
        assert!((kl[0] - 2.0).abs() < 1e-6);
    }

    #[test]
    fn uniform_logits_cost_log_vocab_per_step() {
        let logits = Tensor::zeros((1, 4, 90), candle_core::DType::F32, &Device::Cpu).unwrap();
        let targets = Tensor::new(&[[0u32, 5, 89, 1]], &Device::Cpu).unwrap();
        let nll = reconstruction_per_window(&logits, &targets).unwrap().to_vec1::<f32>().unwrap();
        assert!((nll[0] - 4.0 * 90f32.ln()).abs() < 1e-4);
    }

    #[test]
    fn kl_below_the_free_bits_costs_nothing() {
        let device = Device::Cpu;
        let logits = Tensor::zeros((1, 1, 90), candle_core::DType::F32, &device).unwrap();
        let targets = Tensor::new(&[[0u32]], &device).unwrap();
        let mu = Tensor::new(&[[2.0f32]], &device).unwrap(); // KL = 2 nats
        let log_var = Tensor::zeros((1, 1), candle_core::DType::F32, &device).unwrap();
        let under = vae_loss(&logits, &targets, &mu, &log_var, 1.0, 3.0).unwrap();
        let over = vae_loss(&logits, &targets, &mu, &log_var, 1.0, 1.0).unwrap();
        let recon = 90f32.ln();
        assert!((under.total.to_scalar::<f32>().unwrap() - recon).abs() < 1e-5);
        assert!((over.total.to_scalar::<f32>().unwrap() - (recon + 1.0)).abs() < 1e-5);
    }
}
