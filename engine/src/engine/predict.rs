//! The prior's noise prediction for a pass, on two threads: what the sampler and the repeat
//! plan call at every step.

use candle_core::Tensor;

use crate::prior::repeats::RepeatLogits;
use crate::prior::PriorTransformer;

/// ε̂ for a batch of variations (levels per variation or per latent), computed as two halves on
/// two threads. With a handful of variations the matmuls are too small for candle to spread over
/// cores itself, so splitting the batch is what uses the second core.
/// With `repeats`, the repeat head's logits come too (see [`PriorTransformer::forward_with_repeats`]).
pub fn predict_in_halves(
    model: &PriorTransformer,
    x: &Tensor,
    levels: &[f32],
    valid: &Tensor,
    repeats: bool,
) -> candle_core::Result<(Tensor, Option<RepeatLogits>)> {
    let batch = x.dim(0)?;
    if batch < 2 {
        return model.forward_with_repeats(x, levels, valid, repeats);
    }
    let half = batch / 2;
    let (x_a, x_b) = (x.narrow(0, 0, half)?, x.narrow(0, half, batch - half)?);
    let (valid_a, valid_b) = (valid.narrow(0, 0, half)?, valid.narrow(0, half, batch - half)?);
    let (levels_a, levels_b) = levels.split_at(half * (levels.len() / batch));
    let (a, b) = std::thread::scope(|scope| {
        let first = scope.spawn(|| model.forward_with_repeats(&x_a, levels_a, &valid_a, repeats));
        let second = model.forward_with_repeats(&x_b, levels_b, &valid_b, repeats);
        (first.join(), second)
    });
    let (eps_a, logits_a) = a.map_err(|_| candle_core::Error::Msg("a sampling thread panicked".into()))??;
    let (eps_b, logits_b) = b?;
    let logits = match (logits_a, logits_b) {
        (Some(a), Some(b)) => Some(RepeatLogits::cat(&a, &b)?),
        _ => None,
    };
    Ok((Tensor::cat(&[eps_a, eps_b], 0)?, logits))
}
