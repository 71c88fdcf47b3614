//! Latent preprocessing for the diffusion prior (Mittal et al., 2021, §3.1): the prior does not
//! model every VAE dimension, only the informative ones, each scaled linearly to [−1, 1].
//!
//! - **Statistics:** over the training windows' posterior means μ, per dimension: the mean, the
//!   min and max, and the average KL(q(z_d|x) ‖ N(0, 1)).
//! - **Selection rule:** keep the dimensions whose average KL is at least [`MIN_KEPT_KL`] nats.
//!   A dimension below that carries (almost) no information about the window: the posterior sits
//!   on the prior whatever the input, as in MusicVAE's collapsed dimensions, of which the paper
//!   kept 42 of 512. Ties to the paper: it ranks by the same signal (how far q moves from the prior).
//! - **Scaling:** x = 2 (μ − min) / (max − min) − 1 on each kept dimension.
//! - **Inverse:** μ = min + (x + 1)(max − min) / 2 on kept dimensions; the dropped ones get their
//!   training mean. The inverse is exact on kept dimensions.

use candle_core::{Device, Result, Tensor};

/// A dimension whose average KL is below this many nats is treated as unused.
pub const MIN_KEPT_KL: f32 = 0.05;

/// The fitted statistics and the selection, saved with the weights.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatentPreprocess {
    /// Indices of the kept latent dimensions, ascending.
    pub kept: Vec<usize>,
    /// Mean of μ over the training windows, per latent dimension.
    pub mean: Vec<f32>,
    /// Minimum of μ per latent dimension.
    pub min: Vec<f32>,
    /// Maximum of μ per latent dimension.
    pub max: Vec<f32>,
    /// Average KL per latent dimension, in nats.
    pub kl: Vec<f32>,
    /// The threshold the selection used.
    pub min_kept_kl: f32,
}

impl LatentPreprocess {
    /// Fits the statistics from posterior means `mu` `[n, latent]` and per-dimension average KL.
    pub fn fit(mu: &Tensor, kl_per_dim: &[f32]) -> Result<Self> {
        let mean = mu.mean(0)?.to_vec1::<f32>()?;
        let min = mu.min(0)?.to_vec1::<f32>()?;
        let max = mu.max(0)?.to_vec1::<f32>()?;
        let kept = (0..kl_per_dim.len()).filter(|&d| kl_per_dim[d] >= MIN_KEPT_KL && max[d] > min[d]).collect();
        Ok(Self { kept, mean, min, max, kl: kl_per_dim.to_vec(), min_kept_kl: MIN_KEPT_KL })
    }

    /// Dimensions the prior models.
    pub fn prior_dim(&self) -> usize {
        self.kept.len()
    }

    /// VAE latents `[n, latent]` to prior space `[n, kept]`, in [−1, 1] on the training data.
    pub fn to_prior_space(&self, z: &Tensor) -> Result<Tensor> {
        let (n, _) = z.dims2()?;
        let rows = z.to_vec2::<f32>()?;
        let mut out = Vec::with_capacity(n * self.kept.len());
        for row in &rows {
            for &d in &self.kept {
                out.push(2.0 * (row[d] - self.min[d]) / (self.max[d] - self.min[d]) - 1.0);
            }
        }
        Tensor::from_vec(out, (n, self.kept.len()), z.device())
    }

    /// Prior-space vectors `[n, kept]` back to VAE latents `[n, latent]`.
    pub fn from_prior_space(&self, x: &Tensor, device: &Device) -> Result<Tensor> {
        let (n, _) = x.dims2()?;
        let rows = x.to_vec2::<f32>()?;
        let latent = self.mean.len();
        let mut out = Vec::with_capacity(n * latent);
        for row in &rows {
            let mut z = self.mean.clone();
            for (k, &d) in self.kept.iter().enumerate() {
                z[d] = self.min[d] + (row[k] + 1.0) * 0.5 * (self.max[d] - self.min[d]);
            }
            out.extend(z);
        }
        Tensor::from_vec(out, (n, latent), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_dimensions_scale_to_the_unit_interval_and_invert_exactly() {
        let device = Device::Cpu;
        let mu = Tensor::new(&[[1.0f32, 5.0, 0.0], [3.0, -5.0, 0.0], [2.0, 0.0, 0.0]], &device).unwrap();
        let pre = LatentPreprocess::fit(&mu, &[1.0, 2.0, 0.0]).unwrap();
        assert_eq!(pre.kept, vec![0, 1]);
        let x = pre.to_prior_space(&mu).unwrap();
        assert_eq!(x.to_vec2::<f32>().unwrap(), vec![vec![-1.0, 1.0], vec![1.0, -1.0], vec![0.0, 0.0]]);
        let back = pre.from_prior_space(&x, &device).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), mu.to_vec2::<f32>().unwrap());
    }
}
