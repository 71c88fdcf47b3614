//! The ε-prediction transformer over a sequence of 2-bar latents (Mittal et al., 2021, §2.1 and
//! Fig. 1, following the Transformer of Vaswani et al. and WaveGrad's noise conditioning):
//!
//! 1. an input projection of each preprocessed latent to the model width,
//! 2. sinusoidal position encodings (eq. 8) added to it,
//! 3. self-attention encoder layers whose layer norms are FiLM-modulated (scale and shift) by an
//!    encoding of the noise level √ᾱ: the same sinusoids, with √ᾱ scaled by 5000,
//! 4. noise-conditioned residual output layers, and a projection back to latent size.
//!
//! **Copy attention** (`PriorConfig::copy_attention`, our addition): real tunes repeat 2-bar
//! windows note for note (42% of the windows of the validation tunes' first 16 bars repeat
//! another), and a repeated window has exactly the same latent. Noisy latents at levels a_i, a_j
//! that share one clean latent differ, once scaled back by their levels, only by noise:
//! x_i / a_i − x_j / a_j ~ N(0, (σ_i² + σ_j²) I) with σ² = (1 − a²) / a². Every attention head
//! adds g_h · c_ij to its scores, where c_ij = −ln(1 + max(0, ‖x_i / a_i − x_j / a_j‖² /
//! (d (σ_i² + σ_j² + τ)) − 1)) is 0 for a pair that is consistent with being one latent and falls
//! with how far beyond the noise the pair lies, and g_h is learned (from 0). Without it the
//! trained model reconstructed a repeated latent no better than any other, even beside a clean
//! copy (`engine/tools/examples/copy_probe.rs`), and no generated window repeated another.
//!
//! **Copy pointer** (`PriorConfig::copy_pointer`, the pointer-generator output of See et al.,
//! 2017): attention lets the model find a repeat, but reproducing it exactly through layer norms
//! and projections is hard, and a repeat is only a repeat when exact. So the output can point:
//! with π_i = softmax_j≠i(G c_ij) over the other latents and the copies they offer,
//! ẑ_j = x_j / a_j (exact for a clean known latent), x̂₀ᵢ = (1 − λᵢ) x̂₀ᵢ(ε̂) + λᵢ Σ_j π_ij ẑ_j,
//! with a learned gate λᵢ = sigmoid(w · hᵢ + b − 4) (nearly closed at initialization) and gain G;
//! the returned noise estimate is the one that x̂₀ implies, ε̂ᵢ + λᵢ (aᵢ / σᵢ) (x̂₀ᵢ(ε̂) − Σ_j π_ij ẑ_j).
//!
//! Layer norms are written out with plain tensor ops so candle can differentiate them on the CPU.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{linear, ops::softmax, Linear, VarBuilder};

use super::config::PriorConfig;
use super::repeats::{RepeatHead, RepeatLogits};

/// Sinusoidal encodings of `positions` (eq. 8): `[n] → [n, width]`, sines in the first half of
/// the channels and cosines in the second.
pub fn sinusoids(positions: &[f32], width: usize, device: &Device) -> Result<Tensor> {
    let half = width / 2;
    let mut values = Vec::with_capacity(positions.len() * width);
    for &p in positions {
        let freqs = (0..half).map(|i| p / 10_000f32.powf(i as f32 / half as f32));
        let (sin, cos): (Vec<f32>, Vec<f32>) = freqs.map(|a| (a.sin(), a.cos())).unzip();
        values.extend(sin);
        values.extend(cos);
        values.extend(std::iter::repeat_n(0.0, width - 2 * half));
    }
    Tensor::from_vec(values, (positions.len(), width), device)
}

/// Layer norm without learned affine terms (FiLM supplies them): normalizes the last dimension.
fn normalize(xs: &Tensor) -> Result<Tensor> {
    let mean = xs.mean_keepdim(D::Minus1)?;
    let centered = xs.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    centered.broadcast_div(&(var + 1e-5)?.sqrt()?)
}

/// Feature-wise linear modulation of a layer norm by the noise level: LN(x) · (1 + γ) + β.
/// Every norm's γ and β come from one projection of the noise embedding ([`NoiseFilm`]), so a
/// denoising step costs one small matmul for all of them instead of one per norm.
fn film_norm(xs: &Tensor, film: &Film) -> Result<Tensor> {
    normalize(xs)?.broadcast_mul(&film.scale)?.broadcast_add(&film.shift)
}

/// One norm's modulation, `[b, 1, w]` (one noise level per sequence) or `[b, t, w]` (one per
/// latent) each.
struct Film {
    scale: Tensor,
    shift: Tensor,
}

/// Projects the noise embedding to every norm's (1 + γ, β): weight name `film`.
#[derive(Clone, Debug)]
struct NoiseFilm {
    projection: Linear,
    norms: usize,
}

impl NoiseFilm {
    fn new(width: usize, norms: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { projection: linear(width, 2 * width * norms, vb.pp("film"))?, norms })
    }

    /// `noise` `[u, w]`: the embeddings of the distinct levels; `which` `[b, t']` (u32): the
    /// level of each sequence (t' = 1) or latent (t' = t). Projecting only the distinct levels
    /// keeps infilling with clean context (two levels) as cheap as one level per sequence.
    fn forward(&self, noise: &Tensor, which: &Tensor) -> Result<Vec<Film>> {
        let width = noise.dim(1)?;
        let (b, t) = which.dims2()?;
        let distinct = self.projection.forward(noise)?;
        // [b·t', norms · 2w] → [b, t', norms, 2, w]: norm n's scale is [:, :, n, 0], its shift [:, :, n, 1].
        let all = distinct.index_select(&which.flatten_all()?, 0)?.reshape((b, t, self.norms, 2, width))?;
        (0..self.norms)
            .map(|n| {
                let norm = all.narrow(2, n, 1)?.squeeze(2)?;
                Ok(Film { scale: (norm.narrow(2, 0, 1)?.squeeze(2)? + 1.0)?, shift: norm.narrow(2, 1, 1)?.squeeze(2)? })
            })
            .collect()
    }
}

/// The distinct values of `levels` and, for each level, the index of its value.
fn distinct_levels(levels: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let mut distinct: Vec<f32> = Vec::new();
    let which = levels
        .iter()
        .map(|level| match distinct.iter().position(|d| d.to_bits() == level.to_bits()) {
            Some(i) => i as u32,
            None => {
                distinct.push(*level);
                distinct.len() as u32 - 1
            }
        })
        .collect();
    (distinct, which)
}

/// Added to the noise variance of a pair in the copy bias, so that two clean latents count as
/// copies only when (nearly) equal: in the prior's unit-variance scale, a mean squared difference
/// per dimension of 0.01.
const COPY_TOLERANCE: f64 = 0.01;

/// The copy gains are stored divided by this, so that AdamW, whose steps are about the learning
/// rate in size whatever a weight's scale, moves the effective gain by useful amounts (a few
/// units) within a thousand steps.
const COPY_GAIN_SCALE: f64 = 10.0;

/// What the copy parts work from: every latent's level a (kept off 0), `[b, t, 1]`, the latent
/// scaled back by it, ẑ = x / a (the copy it offers), `[b, t, d]`, and the copy bias c_ij of
/// every pair (module doc), `[b, 1, t, t]`.
struct Copies {
    signal: Tensor,
    sources: Tensor,
    bias: Tensor,
}

impl Copies {
    /// From `x_t` `[b, t, d]` and the latents' levels √ᾱ `[b, t]`.
    fn new(x_t: &Tensor, levels: &Tensor) -> Result<Self> {
        let d = x_t.dim(2)?;
        let levels = levels.clamp(1e-3f32, 1f32)?;
        let squared_levels = levels.sqr()?;
        let signal = levels.unsqueeze(2)?;
        let sources = x_t.broadcast_div(&signal)?;
        // σ² = (1 − a²) / a², [b, t]
        let noise_variance = ((1.0 - &squared_levels)?.relu()? / &squared_levels)?;
        let norms = sources.sqr()?.sum_keepdim(2)?;
        // ‖ẑ_i − ẑ_j‖², [b, t, t]
        let distance = (norms.broadcast_add(&norms.transpose(1, 2)?)?
            - (sources.matmul(&sources.transpose(1, 2)?)? * 2.0)?)?
            .relu()?;
        let spread = (noise_variance.unsqueeze(2)?.broadcast_add(&noise_variance.unsqueeze(1)?)? + COPY_TOLERANCE)?;
        let excess = ((distance / (spread * d as f64)?)? - 1.0)?.relu()?;
        let bias = ((excess + 1.0)?.log()?.neg()?).unsqueeze(1)?;
        Ok(Self { signal, sources, bias })
    }
}

/// Softmax over the last dimension. candle's fused `softmax_last_dim` has no backward pass:
/// gradients silently stop at it, so the queries and keys of priors v1–v4 never trained and their
/// attention patterns stayed those of the random initialization. When gradients are tracked
/// (training, reconstruction guidance), the softmax is built from differentiable ops; otherwise
/// the fused kernel, which is faster, computes the same values.
fn attention_weights(scores: &Tensor) -> Result<Tensor> {
    if scores.track_op() {
        softmax(scores, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(scores)
    }
}

/// The copy pointer (module doc): weight names `pointer.gate`, `pointer.gain`.
#[derive(Clone, Debug)]
struct CopyPointer {
    gate: Linear,
    gain: Tensor,
}

/// Subtracted from the gate's logit, so that a gate whose weights start at 0 lets through
/// sigmoid(−4) ≈ 2% of the pointed-at latents: the model starts close to one without a pointer.
const GATE_OFFSET: f64 = 4.0;

impl CopyPointer {
    fn new(width: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            gate: linear(width, 1, vb.pp("gate"))?,
            gain: vb.get_with_hints(1, "gain", candle_nn::Init::Const(0.0))?,
        })
    }

    /// `eps` `[b, t, d]`: the model's own noise estimate; `hidden` `[b, t, w]`: the features it
    /// was projected from; `x_t` as in [`Copies::new`]; `mask_bias` `[b, 1, 1, t]`.
    fn forward(
        &self,
        eps: &Tensor,
        hidden: &Tensor,
        x_t: &Tensor,
        copies: &Copies,
        mask_bias: &Tensor,
    ) -> Result<Tensor> {
        let t = x_t.dim(1)?;
        let signal = &copies.signal;
        // σ, kept off 0 for clean latents.
        let noise = (1.0 - signal.sqr()?)?.relu()?.sqrt()?.clamp(1e-3f32, 1f32)?;
        // A latent does not point at itself or at padding.
        let own: Vec<f32> = (0..t * t).map(|k| if k / t == k % t { -1e9 } else { 0.0 }).collect();
        let own = Tensor::from_vec(own, (1, 1, t, t), x_t.device())?;
        let logits = copies
            .bias
            .broadcast_mul(&(&self.gain * COPY_GAIN_SCALE)?)?
            .broadcast_add(mask_bias)?
            .broadcast_add(&own)?;
        let copied = attention_weights(&logits)?.squeeze(1)?.matmul(&copies.sources)?; // Σ_j π_ij ẑ_j
        let gate = candle_nn::ops::sigmoid(&(self.gate.forward(hidden)? - GATE_OFFSET)?)?; // λ, [b, t, 1]
        let own_x0 = (x_t - eps.broadcast_mul(&noise)?)?.broadcast_div(signal)?;
        eps + (own_x0 - copied)?.broadcast_mul(&(gate * (signal / noise)?)?)?
    }
}

/// Multi-head self-attention with a key padding mask and, when the config asks for it, a learned
/// per-head weight `copy_gain` of the copy bias.
#[derive(Clone, Debug)]
struct SelfAttention {
    qkv: Linear,
    out: Linear,
    copy_gain: Option<Tensor>,
    heads: usize,
}

impl SelfAttention {
    fn new(cfg: &PriorConfig, vb: VarBuilder) -> Result<Self> {
        let copy_gain = if cfg.copy_attention {
            Some(vb.get_with_hints(cfg.heads, "copy_gain", candle_nn::Init::Const(0.0))?)
        } else {
            None
        };
        Ok(Self {
            qkv: linear(cfg.width, 3 * cfg.width, vb.pp("qkv"))?,
            out: linear(cfg.width, cfg.width, vb.pp("out"))?,
            copy_gain,
            heads: cfg.heads,
        })
    }

    /// `xs` `[b, t, w]`, `mask_bias` `[b, 1, 1, t]` (0 for real latents, −1e9 for padding),
    /// `copy_bias` `[b, 1, t, t]`.
    fn forward(&self, xs: &Tensor, mask_bias: &Tensor, copy_bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, w) = xs.dims3()?;
        let head_dim = w / self.heads;
        // [b, t, 3w] → [3, b, heads, t, head_dim]
        let qkv = self.qkv.forward(xs)?.reshape((b, t, 3, self.heads, head_dim))?.permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (qkv.get(0)?.contiguous()?, qkv.get(1)?.contiguous()?, qkv.get(2)?.contiguous()?);
        let mut scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?.broadcast_add(mask_bias)?;
        if let (Some(gain), Some(copy_bias)) = (&self.copy_gain, copy_bias) {
            let gain = (gain.reshape((1, self.heads, 1, 1))? * COPY_GAIN_SCALE)?;
            scores = (scores + copy_bias.broadcast_mul(&gain)?)?;
        }
        let attended = attention_weights(&scores)?.matmul(&v)?; // [b, heads, t, head_dim]
        self.out.forward(&attended.transpose(1, 2)?.reshape((b, t, w))?)
    }
}

/// One pre-norm encoder layer: x + Attn(FiLM(LN(x))), then x + FF(FiLM(LN(x))).
#[derive(Clone, Debug)]
struct EncoderLayer {
    attention: SelfAttention,
    ff_in: Linear,
    ff_out: Linear,
}

/// FiLM-modulated norms per encoder layer (before attention, before the feed-forward block).
const NORMS_PER_LAYER: usize = 2;

impl EncoderLayer {
    fn new(cfg: &PriorConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            attention: SelfAttention::new(cfg, vb.pp("attention"))?,
            ff_in: linear(cfg.width, cfg.ff_width, vb.pp("ff_in"))?,
            ff_out: linear(cfg.ff_width, cfg.width, vb.pp("ff_out"))?,
        })
    }

    /// `films`: the attention norm's modulation, then the feed-forward norm's.
    fn forward(&self, xs: &Tensor, films: &[Film], mask_bias: &Tensor, copy_bias: Option<&Tensor>) -> Result<Tensor> {
        let xs = (xs + self.attention.forward(&film_norm(xs, &films[0])?, mask_bias, copy_bias)?)?;
        let ff = self.ff_out.forward(&self.ff_in.forward(&film_norm(&xs, &films[1])?)?.relu()?)?;
        xs + ff
    }
}

/// A noise-conditioned residual output layer: x + W relu(FiLM(LN(x))).
#[derive(Clone, Debug)]
struct OutputLayer {
    dense: Linear,
}

impl OutputLayer {
    fn new(width: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { dense: linear(width, width, vb.pp("dense"))? })
    }

    fn forward(&self, xs: &Tensor, film: &Film) -> Result<Tensor> {
        xs + self.dense.forward(&film_norm(xs, film)?.relu()?)?
    }
}

/// ε̂(x_t, √ᾱ): weight names `input`, `noise_mlp.*`, `film` (the modulation of every norm, in
/// order: each encoder layer's two, each output layer's, the final norm's), `layers.N.*`
/// (`layers.N.attention.copy_gain` with copy attention), `pointer.*` (with the copy pointer),
/// `output_layers.N.*`, `output`.
#[derive(Clone, Debug)]
pub struct PriorTransformer {
    input: Linear,
    noise_in: Linear,
    noise_out: Linear,
    film: NoiseFilm,
    layers: Vec<EncoderLayer>,
    output_layers: Vec<OutputLayer>,
    output: Linear,
    pointer: Option<CopyPointer>,
    repeats: Option<RepeatHead>,
    pub config: PriorConfig,
}

impl PriorTransformer {
    pub fn new(cfg: &PriorConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            input: linear(cfg.latent_dim, cfg.width, vb.pp("input"))?,
            noise_in: linear(cfg.width, cfg.width, vb.pp("noise_mlp").pp("in"))?,
            noise_out: linear(cfg.width, cfg.width, vb.pp("noise_mlp").pp("out"))?,
            film: NoiseFilm::new(cfg.width, NORMS_PER_LAYER * cfg.layers + cfg.output_layers + 1, vb.clone())?,
            layers: (0..cfg.layers).map(|i| EncoderLayer::new(cfg, vb.pp("layers").pp(i))).collect::<Result<_>>()?,
            output_layers: (0..cfg.output_layers)
                .map(|i| OutputLayer::new(cfg.width, vb.pp("output_layers").pp(i)))
                .collect::<Result<_>>()?,
            output: linear(cfg.width, cfg.latent_dim, vb.pp("output"))?,
            pointer: if cfg.copy_pointer { Some(CopyPointer::new(cfg.width, vb.pp("pointer"))?) } else { None },
            repeats: if cfg.repeat_head { Some(RepeatHead::new(cfg.width, vb.pp("repeats"))?) } else { None },
            config: cfg.clone(),
        })
    }

    /// Predicts the noise in `x_t` `[b, t, latent_dim]` at noise levels `sqrt_alpha_bar`, one per
    /// sequence (`[b]`) or one per latent (`[b, t]` row-major; a clean known latent has level 1),
    /// attending only to positions where `valid` `[b, t]` (f32, 1 or 0) is 1.
    pub fn forward(&self, x_t: &Tensor, sqrt_alpha_bar: &[f32], valid: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with_repeats(x_t, sqrt_alpha_bar, valid, false)?.0)
    }

    /// [`Self::forward`], and with `repeats` (and a model with the repeat head) also the repeat
    /// head's logits (see [`super::repeats`]).
    pub fn forward_with_repeats(
        &self,
        x_t: &Tensor,
        sqrt_alpha_bar: &[f32],
        valid: &Tensor,
        repeats: bool,
    ) -> Result<(Tensor, Option<RepeatLogits>)> {
        let (b, t, _latent) = x_t.dims3()?;
        let device = x_t.device();
        let width = self.config.width;

        let positions: Vec<f32> = (0..t).map(|p| p as f32).collect();
        let position_encoding = sinusoids(&positions, width, device)?.unsqueeze(0)?; // [1, t, w]
        let mut xs = self.input.forward(x_t)?.broadcast_add(&position_encoding)?;

        let per_latent = match sqrt_alpha_bar.len() {
            n if n == b => 1,
            n if n == b * t => t,
            n => candle_core::bail!("{n} noise levels for {b} sequences of {t} latents"),
        };
        let (distinct, which) = distinct_levels(sqrt_alpha_bar);
        let scaled: Vec<f32> = distinct.iter().map(|a| a * self.config.noise_scale as f32).collect();
        let noise = sinusoids(&scaled, width, device)?; // [u, w]
        let noise = self.noise_out.forward(&self.noise_in.forward(&noise)?.relu()?)?;
        let films = self.film.forward(&noise, &Tensor::from_vec(which, (b, per_latent), device)?)?;
        let (layer_films, rest) = films.split_at(NORMS_PER_LAYER * self.layers.len());
        let (output_films, final_film) = rest.split_at(self.output_layers.len());

        // [b, t] of 1/0 → [b, 1, 1, t] of 0/−1e9
        let mask_bias = ((valid.to_dtype(DType::F32)? - 1.0)? * 1e9)?.reshape((b, 1, 1, t))?;
        let levels = Tensor::from_vec(sqrt_alpha_bar.to_vec(), (b, per_latent), device)?.broadcast_as((b, t))?;
        let levels = levels.contiguous()?;
        // The repeat head reads the copy bias too, but only when its logits are asked for.
        let copies = if self.config.copy_attention || self.config.copy_pointer || (self.config.repeat_head && repeats) {
            Some(Copies::new(x_t, &levels)?)
        } else {
            None
        };
        let attention_copy_bias = copies.as_ref().filter(|_| self.config.copy_attention).map(|c| &c.bias);
        for (layer, films) in self.layers.iter().zip(layer_films.chunks(NORMS_PER_LAYER)) {
            xs = layer.forward(&xs, films, &mask_bias, attention_copy_bias)?;
        }
        for (layer, film) in self.output_layers.iter().zip(output_films) {
            xs = layer.forward(&xs, film)?;
        }
        let hidden = film_norm(&xs, &final_film[0])?;
        let eps = self.output.forward(&hidden)?;
        let repeat_logits = match (&self.repeats, &copies) {
            (Some(head), Some(copies)) if repeats => {
                let levels = levels.flatten_all()?.to_vec1::<f32>()?;
                let valid = valid.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                Some(head.forward(&hidden, &copies.bias, &levels, &valid)?)
            }
            _ => None,
        };
        let eps = match (&self.pointer, &copies) {
            (Some(pointer), Some(copies)) if t > 1 => pointer.forward(&eps, &hidden, x_t, copies, &mask_bias)?,
            _ => eps,
        };
        Ok((eps, repeat_logits))
    }
}

#[cfg(test)]
mod tests;
