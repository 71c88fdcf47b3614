//! `rebar eval --task infill|uncond`: the seed paper's Table 1 (Mittal et al., 2021, §4.4–4.5)
//! with its baselines, in one run, scored by [`crate::metrics`] against the training set's
//! statistics saved with the prior.
//!
//! - **infill:** the first 16 bars (8 latents) of every tune of at least 16 bars; bars 1–4 and
//!   13–16 are kept and bars 5–12 infilled. Rows: `test` (the real tunes), `diffusion` (the
//!   default sampler), `interpolation` (slerp between latents 2 and 7), `prior` (N(0, I) in the
//!   VAE latent space), and `reconstruction` (the true latents of bars 5–12, decoded): the
//!   ceiling the VAE sets for any prior.
//! - **uncond:** N sequences of 8 latents. Rows: `test`, `diffusion`, `prior`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::Tune;
use crate::engine::{splice, BarSelection, Engine, EngineError, InfillOptions};
use crate::melody::{tokens, Melody};
use crate::metrics::{QualityRow, SetStats};
use crate::midi::Meter;
use crate::time::STEPS_PER_BAR;
use crate::train::normal_tensor;
use crate::vae::segments::{melody_from_segments, to_segments};
use crate::vae::tools::slerp;

/// Bars of every evaluated sequence: 8 latents.
pub const EVAL_BARS: u32 = 16;
/// The infilled bars, 0-based inclusive: bars 5–12.
pub const INFILL_BARS: (u32, u32) = (4, 11);

/// The first 16 bars of every tune that has them, as melodies.
pub fn first_sixteen_bars(tunes: &[Tune]) -> Vec<Melody> {
    let steps = (EVAL_BARS * STEPS_PER_BAR) as usize;
    tunes
        .iter()
        .filter(|t| t.tokens.len() >= steps)
        .map(|t| Melody {
            notes: tokens::decode(&t.tokens[..steps]),
            bars: EVAL_BARS,
            bpm: 120.0,
            meter: Meter::FOUR_FOUR,
            key: None,
        })
        .collect()
}

/// Framewise OA statistics of a set of melodies.
pub fn melody_stats(melodies: &[Melody]) -> SetStats {
    SetStats::of(melodies.iter().map(|m| (&m.notes[..], m.bars)))
}

/// Scored rows, and the raw OA statistics behind each score (which side of the truth it misses on).
pub struct Scores {
    pub rows: BTreeMap<String, QualityRow>,
    pub stats: BTreeMap<String, SetStats>,
}

/// Scores rows of melodies against the training statistics.
fn score(rows: &[(&str, Vec<Melody>)], truth: &SetStats) -> Scores {
    let stats: BTreeMap<String, SetStats> =
        rows.iter().map(|(name, melodies)| (name.to_string(), melody_stats(melodies))).collect();
    let rows = stats.iter().map(|(name, stats)| (name.clone(), QualityRow::score(stats, truth))).collect();
    Scores { rows, stats }
}

/// The scored rows of an infilling evaluation, and the first tunes' four versions (original,
/// diffusion, interpolation, prior) for the figure.
pub struct InfillReport {
    pub scores: Scores,
    pub examples: Vec<[Melody; 4]>,
}

/// Tunes drawn in the figure.
const FIGURE_EXAMPLES: usize = 3;

/// The infilling evaluation over `melodies` (16 bars each).
pub fn evaluate_infill(
    engine: &Engine,
    melodies: &[Melody],
    truth: &SetStats,
    options: &InfillOptions,
) -> Result<InfillReport, EngineError> {
    let selection = BarSelection::range(INFILL_BARS.0, INFILL_BARS.1, EVAL_BARS);
    let generate = selection.segments(8);
    let never = AtomicBool::new(false);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let latent = engine.vae.vae.config.latent;
    let (mut diffusion, mut interpolation, mut prior, mut reconstruction) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, melody) in melodies.iter().enumerate() {
        let per_tune = InfillOptions { seed: options.seed.wrapping_add(i as u64), ..options.clone() };
        diffusion.extend(engine.infill(melody, &selection, &per_tune, &never, &mut |_| {})?);

        let segments = to_segments(melody);
        let encoded = engine.vae.encode(&segments)?;
        let windows = engine.vae.decode(&encoded)?;
        reconstruction.push(splice(melody, &melody_from_segments(&windows, melody), &selection));
        let z = encoded.to_vec2::<f32>()?;
        // Latents 2 and 7 (1-based) frame the gap; the four between move evenly from one to the other.
        let mut interpolated = z.clone();
        for (k, row) in interpolated.iter_mut().enumerate().filter(|(k, _)| generate[*k]) {
            *row = slerp(&z[1], &z[6], (k - 1) as f32 / 5.0);
        }
        let rows: Vec<f32> = interpolated.into_iter().flatten().collect();
        let windows = engine.vae.decode(&Tensor::from_vec(rows, (8, latent), engine.device())?)?;
        interpolation.push(splice(melody, &melody_from_segments(&windows, melody), &selection));

        let noise = normal_tensor(&mut rng, 8, latent, engine.device())?;
        let windows = engine.vae.decode(&noise)?;
        prior.push(splice(melody, &melody_from_segments(&windows, melody), &selection));
    }
    let per_tune = options.variations.max(1);
    let examples = (0..melodies.len().min(FIGURE_EXAMPLES))
        .map(|i| [melodies[i].clone(), diffusion[i * per_tune].clone(), interpolation[i].clone(), prior[i].clone()])
        .collect();
    let scores = score(
        &[
            ("test", melodies.to_vec()),
            ("diffusion", diffusion),
            ("interpolation", interpolation),
            ("prior", prior),
            ("reconstruction", reconstruction),
        ],
        truth,
    );
    Ok(InfillReport { scores, examples })
}

/// The unconditional evaluation: `count` generated sequences of 8 latents against `test`.
pub fn evaluate_uncond(
    engine: &Engine,
    test: &[Melody],
    count: usize,
    truth: &SetStats,
    options: &InfillOptions,
) -> Result<Scores, EngineError> {
    let silence = Melody { notes: Vec::new(), bars: EVAL_BARS, bpm: 120.0, meter: Meter::FOUR_FOUR, key: None };
    let all = BarSelection::all(EVAL_BARS);
    let never = AtomicBool::new(false);
    // Batches of 16 variations share a forward pass.
    let mut diffusion = Vec::with_capacity(count);
    let mut batch = 0u64;
    while diffusion.len() < count {
        let variations = (count - diffusion.len()).min(16);
        let batch_options = InfillOptions { variations, seed: options.seed.wrapping_add(batch), ..options.clone() };
        diffusion.extend(engine.infill(&silence, &all, &batch_options, &never, &mut |_| {})?);
        batch += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let latent = engine.vae.vae.config.latent;
    let mut prior = Vec::with_capacity(count);
    for _ in 0..count {
        let windows = engine.vae.decode(&normal_tensor(&mut rng, 8, latent, engine.device())?)?;
        prior.push(melody_from_segments(&windows, &silence));
    }
    Ok(score(&[("test", test.to_vec()), ("diffusion", diffusion), ("prior", prior)], truth))
}
