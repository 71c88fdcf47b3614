//! Stage 5 of a pass, redraw: a generated segment that the repeat plan leaves new but that
//! comes back note for note as another segment is an accidental copy. The plan draws a tune's
//! repeats at the rate and distances real tunes have them; context guidance copies the kept bars
//! next to the selection by itself on top: a 2-bar window repeating its neighbour, which real
//! tunes almost never do. Such segments are sampled again, everything else kept.

use std::sync::atomic::AtomicBool;

use candle_core::Tensor;

use crate::prior::NoiseSchedule;
use crate::sample::{sample, RepeatPlan, SampleRequest, Sampler};
use crate::windows::Window;

use super::decode::Decoder;
use super::error::EngineError;

/// Mixed into the seed of the passes that redraw accidental copies, plus the round.
const COPY_REDRAW_STREAM: u64 = 0xC0B1_ED5E_6E47;

/// Up to `rounds` rounds of redrawing the accidental copies among `windows` (every variation's
/// decoding), each round sampling only the variations that have one. `sampled` holds every
/// variation's latents, `roots` the segment each one ends up equal to in its repeat plan, and
/// `pass` the request of the pass being redrawn. Returns the latents after the last round;
/// `windows` is kept up to date. `progress` gets the fraction of the rounds done.
#[allow(clippy::too_many_arguments)]
pub fn redraw_copies(
    predict: &dyn Fn(&Tensor, &[f32]) -> candle_core::Result<Tensor>,
    schedule: &NoiseSchedule,
    pass: &SampleRequest<'_>,
    mut sampled: Tensor,
    windows: &mut [Vec<Window>],
    (roots, generate): (&[Vec<usize>], &[bool]),
    (rounds, decoder): (usize, &Decoder<'_>),
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(f32),
) -> Result<Tensor, EngineError> {
    let (variations, t) = (windows.len(), generate.len());
    for round in 0..rounds {
        let copies: Vec<Vec<bool>> =
            (0..variations).map(|v| accidental_copies(&windows[v], &roots[v], generate)).collect();
        let redrawn: Vec<usize> = (0..variations).filter(|&v| copies[v].contains(&true)).collect();
        if redrawn.is_empty() {
            break;
        }
        // A redrawn segment takes the latents the plan ties to it along.
        let follows = |v: usize, i: usize| copies[v][roots[v][i]];
        let flags: Vec<bool> = redrawn.iter().flat_map(|&v| (0..t).map(move |i| follows(v, i))).collect();
        let ties = RepeatPlan {
            repeats: redrawn
                .iter()
                .map(|&v| (0..t).map(|i| if follows(v, i) { roots[v][i] } else { i }).collect())
                .collect(),
        };
        let rows = Tensor::new(redrawn.iter().map(|&v| v as u32).collect::<Vec<_>>().as_slice(), sampled.device())?;
        let known = sampled.index_select(&rows, 0)?;
        let request = SampleRequest {
            known: &known,
            generate: &flags,
            variations: redrawn.len(),
            seed: (pass.seed ^ COPY_REDRAW_STREAM).wrapping_add(round as u64),
            repeats: Some(&ties),
            sampler: redraw_sampler(pass.sampler),
            context_guidance: 0.0,
            // A redraw is a short pass amid settled segments: one scale throughout.
            opening_noise: None,
            ..*pass
        };
        let redrawn_latents = sample(predict, schedule, &request, cancel, &mut |_| {})?;
        let mut latents: Vec<Tensor> = (0..variations).map(|v| sampled.get(v)).collect::<candle_core::Result<_>>()?;
        for (k, &v) in redrawn.iter().enumerate() {
            latents[v] = redrawn_latents.get(k)?;
            windows[v] = decoder.variation(v, &latents[v])?;
        }
        sampled = Tensor::stack(&latents, 0)?;
        progress((round + 1) as f32 / rounds as f32);
    }
    Ok(sampled)
}

/// The sampler of a redraw: half the steps of `sampler` (rounded up). A redraw regenerates a
/// segment or two amid settled ones, and its cost comes on top of the request's. It runs as the
/// paper's Algorithm 1, the known latents re-noised at every step, without context guidance:
/// under guidance the redrawn segment copies its neighbours again.
fn redraw_sampler(sampler: Sampler) -> Sampler {
    match sampler {
        Sampler::Ddim { steps, eta, spacing } => Sampler::Ddim { steps: steps.div_ceil(2), eta, spacing },
        Sampler::Ancestral => Sampler::Ancestral,
    }
}

/// Per segment: whether it is an accidental copy, one the repeat plan leaves new (`roots[i] ==
/// i`, see [`RepeatPlan::root`]) that decodes note for note as an earlier segment or a kept one
/// does (`windows`: every segment's decoding), other than those the plan ties to it. Of two
/// equal new segments only the later counts, so the earlier stays.
fn accidental_copies(windows: &[Window], roots: &[usize], generate: &[bool]) -> Vec<bool> {
    let kept_like = |j: usize| !generate[roots[j]];
    (0..windows.len())
        .map(|i| {
            generate[i]
                && roots[i] == i
                && (0..windows.len())
                    .any(|j| j != i && roots[j] != i && (j < i || kept_like(j)) && windows[j] == windows[i])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::melody::tokens::Token;

    #[test]
    fn accidental_copies_are_new_segments_that_come_back_as_another_unplanned() {
        let window = |pitch: u8| -> Window { std::array::from_fn(|i| if i == 0 { Token::On(pitch).id() } else { 0 }) };
        let generate = [false, true, true, true, true, false];
        // Segment 1 copies the kept 0; 2 and 3 are equal, so only the later is a copy; 4 copies
        // the kept 5, which lies after it.
        let windows = [window(60), window(60), window(62), window(62), window(65), window(65)];
        let new = [0, 1, 2, 3, 4, 5];
        assert_eq!(accidental_copies(&windows, &new, &generate), [false, true, false, true, true, false]);
        // The plan ties 3 to 2 and draws 1 as a repeat of the kept 0: planned, not accidental.
        // Segment 4 equals the kept 5 and is still a copy.
        let planned = [0, 0, 2, 2, 4, 5];
        assert_eq!(accidental_copies(&windows, &planned, &generate), [false, false, false, false, true, false]);
        // All different: nothing to redraw.
        let different = [window(60), window(61), window(62), window(63), window(64), window(65)];
        assert_eq!(accidental_copies(&different, &new, &generate), [false; 6]);
    }
}
