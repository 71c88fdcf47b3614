//! The 2-bar melody VAE (MusicVAE, Roberts et al., ICML 2018, §2–3), reshaped for two CPU cores:
//! MusicVAE's bidirectional-LSTM encoder and autoregressive LSTM decoder train at about 11
//! windows/s in candle on one core, so both sides here are residual MLPs and the decoder is
//! non-autoregressive (all 32 steps' logits at once from z), optionally with a small autoregressive
//! context head over a window of previous tokens. See BENCHMARKS.md for the measured trade-offs.
//!
//! - Encoder q(z|x): token embeddings, flattened → MLP → (μ, log σ²) (MusicVAE eq. 6–7).
//! - Decoder p(x|z): z → MLP → one 90-way distribution per step, corrected by the context head.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};

use super::config::{ContextConfig, VaeConfig};
use crate::melody::tokens::Token;

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
///
/// The trunk gives every step's logits from z alone. With a [`ContextHead`] each step's logits
/// also see the tokens decoded before it (MusicVAE's autoregression, kept cheap: a fixed window
/// of previous tokens, not a recurrent state). Why: a latent between two rhythms makes the
/// factorized trunk pick each step from whichever rhythm leads there, which mixes them; with the
/// context, once a note has started the next steps know how long it has lasted.
#[derive(Clone, Debug)]
pub struct Decoder {
    from_latent: Linear,
    layers: Vec<Residual>,
    to_logits: Linear,
    context: Option<ContextHead>,
    steps: usize,
    vocab_size: usize,
}

impl Decoder {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.residual_layers)
            .map(|i| Residual::new(cfg.hidden, vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        let context =
            cfg.context.as_ref().map(|context| ContextHead::new(cfg, context, vb.pp("context"))).transpose()?;
        Ok(Self {
            from_latent: linear(cfg.latent, cfg.hidden, vb.pp("from_latent"))?,
            layers,
            to_logits: linear(cfg.hidden, cfg.steps * cfg.vocab_size, vb.pp("to_logits"))?,
            context,
            steps: cfg.steps,
            vocab_size: cfg.vocab_size,
        })
    }

    /// The trunk: latents `[batch, latent]` to logits `[batch, steps, vocab]` from z alone.
    fn trunk(&self, z: &Tensor) -> Result<Tensor> {
        let (batch, _latent) = z.dims2()?;
        let mut xs = self.from_latent.forward(z)?.relu()?;
        for layer in &self.layers {
            xs = layer.forward(&xs)?;
        }
        self.to_logits.forward(&xs)?.reshape((batch, self.steps, self.vocab_size))
    }

    /// Training logits `[batch, steps, vocab]` of latents `[batch, latent]`, each step given the
    /// true tokens `[batch, steps]` (u32) before it (teacher forcing). A decoder without context
    /// ignores the tokens.
    pub fn forward(&self, z: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let trunk = self.trunk(z)?;
        match &self.context {
            Some(head) => head.teacher_forced(&trunk, z, &targets.to_vec2::<u32>()?),
            None => Ok(trunk),
        }
    }

    /// The most likely token id at every step: `[batch, steps]` (u32). With a context head this
    /// is greedy: each step takes the best token given the ones already chosen.
    pub fn argmax(&self, z: &Tensor) -> Result<Tensor> {
        self.argmax_allowed(z, &vec![true; self.vocab_size])
    }

    /// The most likely allowed token at every step; `allowed` has one flag per token id.
    pub fn argmax_allowed(&self, z: &Tensor, allowed: &[bool]) -> Result<Tensor> {
        let bias: Vec<f32> = allowed.iter().map(|&ok| if ok { 0.0 } else { f32::NEG_INFINITY }).collect();
        let bias = Tensor::from_vec(bias, self.vocab_size, z.device())?;
        let trunk = self.trunk(z)?;
        match &self.context {
            Some(head) => head.greedy(&trunk, z, &bias),
            None => trunk.broadcast_add(&bias)?.argmax(D::Minus1)?.to_dtype(DType::U32),
        }
    }
}

/// The autoregressive part of the decoder: a step's logits are the trunk's plus a small MLP of
/// the trunk's distribution at that step, a per-step projection of z, the `window` previous
/// tokens, the steps since the last note-on or rest, and the step's position.
#[derive(Clone, Debug)]
struct ContextHead {
    token_embed: Embedding,
    elapsed_embed: Embedding,
    position_embed: Embedding,
    from_latent: Linear,
    hidden: Linear,
    to_logits: Linear,
    window: usize,
    embed_dim: usize,
    steps: usize,
    vocab_size: usize,
}

impl ContextHead {
    fn new(cfg: &VaeConfig, context: &ContextConfig, vb: VarBuilder) -> Result<Self> {
        let inputs = cfg.vocab_size + (context.window + 3) * context.embed_dim;
        Ok(Self {
            // One more id than the vocabulary: "before the window".
            token_embed: embedding(cfg.vocab_size + 1, context.embed_dim, vb.pp("token_embed"))?,
            elapsed_embed: embedding(cfg.steps + 1, context.embed_dim, vb.pp("elapsed_embed"))?,
            position_embed: embedding(cfg.steps, context.embed_dim, vb.pp("position_embed"))?,
            from_latent: linear(cfg.latent, cfg.steps * context.embed_dim, vb.pp("from_latent"))?,
            hidden: linear(inputs, context.hidden, vb.pp("hidden"))?,
            to_logits: linear(context.hidden, cfg.vocab_size, vb.pp("to_logits"))?,
            window: context.window,
            embed_dim: context.embed_dim,
            steps: cfg.steps,
            vocab_size: cfg.vocab_size,
        })
    }

    /// Logits of `n` steps, each given its trunk logits `[n, vocab]`, latent features
    /// `[n, embed]` and context (`StepContexts` of `n` rows).
    fn forward(&self, trunk: &Tensor, latent_features: &Tensor, contexts: &StepContexts) -> Result<Tensor> {
        let n = trunk.dim(0)?;
        let device = trunk.device();
        let tokens = Tensor::from_vec(contexts.tokens.clone(), (n, self.window), device)?;
        let elapsed = Tensor::from_vec(contexts.elapsed.clone(), n, device)?;
        let position = Tensor::from_vec(contexts.position.clone(), n, device)?;
        let xs = Tensor::cat(
            &[
                // The head reads the trunk's distribution as given (candle's fused softmax has
                // no backward pass anyway); the trunk learns through the sum below.
                &candle_nn::ops::softmax_last_dim(&trunk.detach())?,
                latent_features,
                &self.token_embed.forward(&tokens)?.reshape((n, ()))?,
                &self.elapsed_embed.forward(&elapsed)?,
                &self.position_embed.forward(&position)?,
            ],
            1,
        )?;
        trunk + self.to_logits.forward(&self.hidden.forward(&xs)?.relu()?)?
    }

    /// Per-step projections of the latents: `[batch, steps, embed]`.
    fn latent_features(&self, z: &Tensor) -> Result<Tensor> {
        self.from_latent.forward(z)?.reshape((z.dim(0)?, self.steps, self.embed_dim))
    }

    /// Logits `[batch, steps, vocab]` with every step given the true tokens before it.
    fn teacher_forced(&self, trunk: &Tensor, z: &Tensor, targets: &[Vec<u32>]) -> Result<Tensor> {
        let (batch, steps, vocab) = trunk.dims3()?;
        let mut contexts = StepContexts::default();
        for ids in targets {
            for step in 0..steps {
                contexts.push(ids, step, self.window, self.vocab_size);
            }
        }
        let features = self.latent_features(z)?.reshape((batch * steps, self.embed_dim))?;
        self.forward(&trunk.reshape((batch * steps, vocab))?, &features, &contexts)?.reshape((batch, steps, vocab))
    }

    /// Greedy decoding, one step at a time, of the logits plus `bias` `[vocab]`: `[batch, steps]`.
    fn greedy(&self, trunk: &Tensor, z: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (batch, steps, _vocab) = trunk.dims3()?;
        let features = self.latent_features(z)?;
        let mut ids = vec![vec![0u32; steps]; batch];
        for step in 0..steps {
            let mut contexts = StepContexts::default();
            for row in &ids {
                contexts.push(row, step, self.window, self.vocab_size);
            }
            let at_step = |xs: &Tensor| xs.narrow(1, step, 1)?.squeeze(1)?.contiguous();
            let logits = self.forward(&at_step(trunk)?, &at_step(&features)?, &contexts)?;
            let best = logits.broadcast_add(bias)?.argmax(D::Minus1)?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
            for (row, id) in ids.iter_mut().zip(best) {
                row[step] = id;
            }
        }
        Tensor::from_vec(ids.concat(), (batch, steps), trunk.device())
    }
}

/// What the context head sees of a batch of steps, row by row.
#[derive(Default)]
struct StepContexts {
    /// `window` ids per row, oldest first; the vocabulary size stands for "before the window".
    tokens: Vec<u32>,
    /// Steps since the last note-on or rest before the step; 0 when there was none.
    elapsed: Vec<u32>,
    position: Vec<u32>,
}

impl StepContexts {
    /// Adds the context of step `step` of the window `ids` (only `ids[..step]` is read).
    fn push(&mut self, ids: &[u32], step: usize, window: usize, vocab_size: usize) {
        for back in (1..=window).rev() {
            self.tokens.push(if back <= step { ids[step - back] } else { vocab_size as u32 });
        }
        let hold = u32::from(Token::Hold.id());
        let last_event = ids[..step].iter().rposition(|&id| id != hold);
        self.elapsed.push(last_event.map_or(0, |at| (step - at) as u32));
        self.position.push(step as u32);
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    fn decoder_with_context() -> Decoder {
        let cfg =
            VaeConfig { context: Some(ContextConfig { window: 4, embed_dim: 4, hidden: 16 }), ..VaeConfig::tiny() };
        let varmap = VarMap::new();
        let decoder = Decoder::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
        crate::train::seeded_init(&varmap, 3).unwrap();
        decoder
    }

    fn latents(seed: u64) -> Tensor {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        crate::train::normal_tensor(&mut rng, 3, VaeConfig::tiny().latent, &Device::Cpu).unwrap()
    }

    /// Teacher forcing must not leak the answer: step t's logits depend on the tokens before t
    /// only, and (for the head to be of any use) they do depend on those.
    #[test]
    fn a_steps_logits_see_only_the_tokens_before_it() {
        let decoder = decoder_with_context();
        let z = latents(1);
        let steps = VaeConfig::tiny().steps;
        let base: Vec<u32> = (0..3 * steps as u32).map(|i| (i * 7) % 90).collect();
        let changed_from = 10;
        let mut other = base.clone();
        for row in 0..3 {
            for step in changed_from..steps {
                other[row * steps + step] = (other[row * steps + step] + 1) % 90;
            }
        }
        let logits = |ids: Vec<u32>| {
            decoder
                .forward(&z, &Tensor::from_vec(ids, (3, steps), &Device::Cpu).unwrap())
                .unwrap()
                .to_vec3::<f32>()
                .unwrap()
        };
        let (a, b) = (logits(base), logits(other));
        for row in 0..3 {
            for step in 0..=changed_from {
                assert_eq!(a[row][step], b[row][step], "row {row} step {step}");
            }
            assert_ne!(a[row][changed_from + 1], b[row][changed_from + 1]);
        }
    }

    /// Greedy decoding and teacher forcing are the same model: fed its own greedy output, the
    /// teacher-forced argmax gives that output back.
    #[test]
    fn greedy_decoding_agrees_with_teacher_forcing_on_its_own_output() {
        let decoder = decoder_with_context();
        let z = latents(2);
        let greedy = decoder.argmax(&z).unwrap();
        let forced = decoder.forward(&z, &greedy).unwrap().argmax(D::Minus1).unwrap().to_dtype(DType::U32).unwrap();
        assert_eq!(forced.to_vec2::<u32>().unwrap(), greedy.to_vec2::<u32>().unwrap());
    }

    #[test]
    fn constrained_greedy_decoding_emits_only_allowed_tokens() {
        let decoder = decoder_with_context();
        let allowed: Vec<bool> = (0..90).map(|id| id < 2 || id % 3 == 0).collect();
        let ids = decoder.argmax_allowed(&latents(3), &allowed).unwrap().to_vec2::<u32>().unwrap();
        assert!(ids.iter().flatten().all(|&id| allowed[id as usize]), "{ids:?}");
    }

    /// Files written before the context head existed have no `context` in their config.
    #[test]
    fn a_config_without_a_context_reads_as_the_factorized_decoder() {
        let mut json = serde_json::to_value(VaeConfig::melody_2bar()).unwrap();
        json.as_object_mut().unwrap().remove("context");
        let config: VaeConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config.context, None);
    }
}
