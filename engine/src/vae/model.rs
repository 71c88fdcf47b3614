//! The 2-bar melody VAE (MusicVAE, Roberts et al., ICML 2018, §2–3), reshaped for two CPU cores:
//! MusicVAE's bidirectional-LSTM encoder and autoregressive LSTM decoder train at about 11
//! windows/s in candle on one core, so both sides here are residual MLPs and the decoder is
//! non-autoregressive (all 32 steps' logits at once from z); its reconstruction accuracy is in
//! BENCHMARKS.md.
//!
//! - Encoder q(z|x): token embeddings, flattened → MLP → (μ, log σ²) (MusicVAE eq. 6–7).
//! - Decoder p(x|z): z → MLP → one 90-way distribution per step.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};

use super::config::VaeConfig;

/// A hidden layer with a skip connection: x + relu(W x + b).
#[derive(Clone, Debug)]
struct Residual {
    linear: Linear,
}

impl Residual {
    fn new(width: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { linear: linear(width, width, vb)? })
    }
}

impl Module for Residual {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs + self.linear.forward(xs)?.relu()?
    }
}

/// q(z | x): a window of token ids to the mean and log-variance of its latent.
#[derive(Clone, Debug)]
pub struct Encoder {
    embed: Embedding,
    input: Linear,
    layers: Vec<Residual>,
    to_latent: Linear,
    latent: usize,
}

impl Encoder {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.residual_layers)
            .map(|i| Residual::new(cfg.hidden, vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self {
            embed: embedding(cfg.vocab_size, cfg.embed_dim, vb.pp("embed"))?,
            input: linear(cfg.steps * cfg.embed_dim, cfg.hidden, vb.pp("input"))?,
            layers,
            to_latent: linear(cfg.hidden, 2 * cfg.latent, vb.pp("to_latent"))?,
            latent: cfg.latent,
        })
    }

    /// Token ids `[batch, steps]` (u32) to `(mu, log_var)`, each `[batch, latent]`.
    pub fn forward(&self, ids: &Tensor) -> Result<(Tensor, Tensor)> {
        let (batch, _steps) = ids.dims2()?;
        // [batch, steps, embed] → [batch, steps * embed]
        let xs = self.embed.forward(ids)?.reshape((batch, ()))?;
        let mut xs = self.input.forward(&xs)?.relu()?;
        for layer in &self.layers {
            xs = layer.forward(&xs)?;
        }
        let stats = self.to_latent.forward(&xs)?;
        Ok((stats.narrow(1, 0, self.latent)?, stats.narrow(1, self.latent, self.latent)?))
    }
}

/// p(x | z): a latent to per-step logits over the vocabulary.
#[derive(Clone, Debug)]
pub struct Decoder {
    from_latent: Linear,
    layers: Vec<Residual>,
    to_logits: Linear,
    steps: usize,
    vocab_size: usize,
}

impl Decoder {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.residual_layers)
            .map(|i| Residual::new(cfg.hidden, vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self {
            from_latent: linear(cfg.latent, cfg.hidden, vb.pp("from_latent"))?,
            layers,
            to_logits: linear(cfg.hidden, cfg.steps * cfg.vocab_size, vb.pp("to_logits"))?,
            steps: cfg.steps,
            vocab_size: cfg.vocab_size,
        })
    }

    /// Latents `[batch, latent]` to logits `[batch, steps, vocab]`.
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let (batch, _latent) = z.dims2()?;
        let mut xs = self.from_latent.forward(z)?.relu()?;
        for layer in &self.layers {
            xs = layer.forward(&xs)?;
        }
        self.to_logits.forward(&xs)?.reshape((batch, self.steps, self.vocab_size))
    }

    /// The most likely token id at every step: `[batch, steps]` (u32).
    pub fn argmax(&self, z: &Tensor) -> Result<Tensor> {
        self.forward(z)?.argmax(D::Minus1)?.to_dtype(DType::U32)
    }
}

/// The whole VAE. Weight names: `encoder.*`, `decoder.*`.
#[derive(Clone, Debug)]
pub struct Vae {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub config: VaeConfig,
}

impl Vae {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            encoder: Encoder::new(cfg, vb.pp("encoder"))?,
            decoder: Decoder::new(cfg, vb.pp("decoder"))?,
            config: cfg.clone(),
        })
    }

    /// Posterior means of token windows `[batch, steps]`: the deterministic encoding.
    pub fn encode_mean(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.encoder.forward(ids)?.0)
    }

    /// The argmax reconstruction of latents `[batch, latent]`.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.argmax(z)
    }
}
