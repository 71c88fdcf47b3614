//! `rebar eval --task infill|uncond`: the seed paper's Table 1 (Mittal et al., 2021, §4.4–4.5)
//! with its baselines, in one run, scored by [`crate::metrics`].
//!
//! - **infill:** the first 16 bars (8 latents) of every tune of at least 16 bars; bars 1–4 and
//!   13–16 are kept and bars 5–12 infilled. Rows: `test` (the real tunes), `diffusion` (the
//!   default sampler), `interpolation` (slerp between latents 2 and 7), `prior` (N(0, I) in the
//!   VAE latent space, drawn as many times a tune as the diffusion row), and `reconstruction`
//!   (the true latents of bars 5–12, decoded): the ceiling the VAE sets for any prior.
//! - **uncond:** N sequences of 8 latents. Rows: `test`, `diffusion`, `prior`.
//!
//! The reference of eq. 10 is the `test` row itself, the real tunes of the evaluated folder (the
//! same first 16 bars), as in the paper, so that row scores 1 on every column; a training set can
//! be given as a second reference. Every row is scored with the paper's OA and, beside it, the
//! exact one ([`QualityReport`]). Every score comes with its bootstrap standard error
//! ([`Scores::standard_errors`]): the variance columns of 178 validation tunes, or of 1,000
//! generated sequences, are uncertain by several hundredths.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::Tune;
use crate::eval::shape::Shape;
use crate::metrics::{frame_overlaps, OaForm, QualityRow, SetStats};
use rebar_engine::engine::{splice, BarSelection, Engine, EngineError, Request};
use rebar_engine::melody::{tokens, Melody};
use rebar_engine::midi::Meter;
use rebar_engine::random::normal_tensor;
use rebar_engine::time::STEPS_PER_BAR;
use rebar_engine::vae::segments::{melody_from_segments, to_segments};
use rebar_engine::vae::tools::slerp;
use rebar_engine::windows::Window;

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

/// Framewise OA statistics of a set of melodies, in `form`.
pub fn melody_stats(melodies: &[Melody], form: OaForm) -> SetStats {
    SetStats::of(melodies.iter().map(|m| (&m.notes[..], m.bars)), form)
}

/// Scored rows against one reference in one form of OA: the scores, the raw OA statistics behind
/// each (which side of the reference it misses on) and the reference's, and each score's
/// bootstrap standard error.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Scores {
    pub rows: BTreeMap<String, QualityRow>,
    pub oa_stats: BTreeMap<String, SetStats>,
    pub reference_oa_stats: SetStats,
    pub standard_errors: BTreeMap<String, QualityRow>,
    /// Of pairs of rows drawn from the same tunes ("a-b"), the standard error of the difference
    /// of their scores, by the paired bootstrap; empty where rows are not paired.
    pub difference_standard_errors: BTreeMap<String, QualityRow>,
}

/// A row to score: its name, its melodies, and how many consecutive melodies form one
/// independent draw (the variations infilled into one tune share that tune; 1 elsewhere).
type Row = (&'static str, Vec<Melody>, usize);

/// An evaluation's rows of melodies, before scoring, and the pairs of rows drawn from the same
/// tunes, draw for draw, whose differences get the paired bootstrap's standard errors.
pub struct Evaluation {
    rows: Vec<Row>,
    pairs: Vec<(&'static str, &'static str)>,
}

impl Evaluation {
    /// The melodies of the row called `name`.
    pub fn row(&self, name: &str) -> Option<&[Melody]> {
        self.rows.iter().find(|(n, _, _)| *n == name).map(|(_, melodies, _)| &melodies[..])
    }

    /// Every row scored in `form` against `reference`, the same melodies' statistics in `form`.
    pub fn score(&self, reference: &[Melody], form: OaForm) -> Scores {
        score(&self.rows, &self.pairs, &melody_stats(reference, form), form)
    }

    /// Each row's [`Shape`].
    pub fn shapes(&self) -> BTreeMap<String, Shape> {
        self.rows.iter().map(|(name, melodies, _)| (name.to_string(), Shape::of(melodies))).collect()
    }
}

/// What `rebar eval --task infill|uncond` reports: every row scored with the paper's OA against
/// the real tunes evaluated (the figures Table 1 compares), the same with the exact OA, and
/// optionally both against a second reference.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QualityReport {
    /// The reference set of eq. 10, in words.
    pub reference: String,
    /// Scores with [`OaForm::Paper`].
    #[serde(flatten)]
    pub paper_form: Scores,
    /// Scores with [`OaForm::Exact`], against the same reference.
    pub exact_form: Scores,
    pub shape: BTreeMap<String, Shape>,
    /// The second reference, if given.
    pub second_reference: Option<SecondReference>,
}

/// Every row scored against another reference set (a training set), in both forms.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SecondReference {
    pub reference: String,
    pub paper_form: Scores,
    pub exact_form: Scores,
}

impl QualityReport {
    /// Scores `evaluation` against `reference` (the real tunes evaluated, and that set in words)
    /// and, if given, against a second reference (melodies and words).
    pub fn new(evaluation: &Evaluation, reference: (&[Melody], String), second: Option<(&[Melody], String)>) -> Self {
        let both = |melodies: &[Melody]| {
            (evaluation.score(melodies, OaForm::Paper), evaluation.score(melodies, OaForm::Exact))
        };
        let (paper_form, exact_form) = both(reference.0);
        let second_reference = second.map(|(melodies, reference)| {
            let (paper_form, exact_form) = both(melodies);
            SecondReference { reference, paper_form, exact_form }
        });
        Self { reference: reference.1, paper_form, exact_form, shape: evaluation.shapes(), second_reference }
    }
}

/// Scores rows of melodies in `form` against `truth`. `pairs` names rows drawn from the same
/// tunes, draw for draw, whose differences get the paired bootstrap's standard errors.
fn score(rows: &[Row], pairs: &[(&str, &str)], truth: &SetStats, form: OaForm) -> Scores {
    let draws: BTreeMap<&str, Vec<Draw>> =
        rows.iter().map(|(name, melodies, per_draw)| (*name, draws_of(melodies, *per_draw, form))).collect();
    let oa_stats: BTreeMap<String, SetStats> = draws
        .iter()
        .map(|(name, draws)| {
            let pitch: Vec<f64> = draws.iter().flat_map(|(p, _)| p.iter().copied()).collect();
            let duration: Vec<f64> = draws.iter().flat_map(|(_, d)| d.iter().copied()).collect();
            (name.to_string(), SetStats::of_overlaps(&pitch, &duration))
        })
        .collect();
    let standard_errors =
        draws.iter().map(|(name, draws)| (name.to_string(), bootstrap_standard_errors(draws, truth))).collect();
    let difference_standard_errors = pairs
        .iter()
        .map(|(a, b)| (format!("{a}-{b}"), paired_difference_standard_errors(&draws[a], &draws[b], truth)))
        .collect();
    let rows = oa_stats.iter().map(|(name, stats)| (name.clone(), QualityRow::score(stats, truth))).collect();
    Scores { rows, oa_stats, reference_oa_stats: *truth, standard_errors, difference_standard_errors }
}

/// Rounds of the bootstrap behind [`Scores::standard_errors`].
const BOOTSTRAP_ROUNDS: usize = 200;

/// One independent draw of a row: the pitch and duration OAs of its melodies.
type Draw = (Vec<f64>, Vec<f64>);

/// A row's melodies as draws of `per_draw` consecutive melodies, their OAs in `form`.
fn draws_of(melodies: &[Melody], per_draw: usize, form: OaForm) -> Vec<Draw> {
    melodies
        .chunks(per_draw.max(1))
        .map(|draw| {
            let (mut pitch, mut duration) = (Vec::new(), Vec::new());
            for melody in draw {
                let (p, d) = frame_overlaps(&melody.notes, melody.bars, form);
                pitch.extend(p);
                duration.extend(d);
            }
            (pitch, duration)
        })
        .collect()
}

/// The bootstrap (Efron, 1979): in every round the draws are resampled with replacement, the
/// same indices for every row (so rows drawn from the same tunes stay paired), and each row is
/// rescored. Returns, per round, each row's four scores. Rows must hold as many draws.
fn bootstrap_scores(rows: &[&[Draw]], truth: &SetStats) -> Vec<Vec<[f64; 4]>> {
    let count = rows[0].len();
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_SEED);
    (0..BOOTSTRAP_ROUNDS)
        .map(|_| {
            let picks: Vec<usize> = (0..count).map(|_| rng.random_range(0..count)).collect();
            rows.iter()
                .map(|draws| {
                    let (mut pitch, mut duration) = (Vec::new(), Vec::new());
                    for &k in &picks {
                        pitch.extend_from_slice(&draws[k].0);
                        duration.extend_from_slice(&draws[k].1);
                    }
                    let row = QualityRow::score(&SetStats::of_overlaps(&pitch, &duration), truth);
                    [row.pitch_consistency, row.pitch_variance, row.duration_consistency, row.duration_variance]
                })
                .collect()
        })
        .collect()
}

/// The standard deviation of each column over the rounds, as a row.
fn deviation_of(rounds: &[[f64; 4]]) -> QualityRow {
    let deviation = |column: usize| {
        let mean = rounds.iter().map(|r| r[column]).sum::<f64>() / rounds.len() as f64;
        (rounds.iter().map(|r| (r[column] - mean).powi(2)).sum::<f64>() / (rounds.len() - 1) as f64).sqrt()
    };
    QualityRow {
        pitch_consistency: deviation(0),
        pitch_variance: deviation(1),
        duration_consistency: deviation(2),
        duration_variance: deviation(3),
    }
}

/// The standard error of each of a row's four scores, by the bootstrap over its draws. The
/// variance columns hang on the few frame pairs whose OA is near 0, so one run's figure can sit
/// several hundredths from another seed's; this says how far.
fn bootstrap_standard_errors(draws: &[Draw], truth: &SetStats) -> QualityRow {
    if draws.len() < 2 {
        return NO_SPREAD;
    }
    let rounds: Vec<[f64; 4]> = bootstrap_scores(&[draws], truth).into_iter().map(|row| row[0]).collect();
    deviation_of(&rounds)
}

/// The standard error of the difference `a − b` of two rows' scores drawn from the same tunes
/// (draw k of each from tune k), by the paired bootstrap: whether a row beats another by more
/// than the tunes' own spread. Zeros where the rows hold different numbers of draws.
fn paired_difference_standard_errors(a: &[Draw], b: &[Draw], truth: &SetStats) -> QualityRow {
    if a.len() != b.len() || a.len() < 2 {
        return NO_SPREAD;
    }
    let rounds: Vec<[f64; 4]> = bootstrap_scores(&[a, b], truth)
        .into_iter()
        .map(|rows| [0, 1, 2, 3].map(|column| rows[0][column] - rows[1][column]))
        .collect();
    deviation_of(&rounds)
}

/// The standard errors of rows too small to resample (fewer than 2 draws) or not paired.
const NO_SPREAD: QualityRow =
    QualityRow { pitch_consistency: 0.0, pitch_variance: 0.0, duration_consistency: 0.0, duration_variance: 0.0 };

/// The bootstrap's own seed, so a run's standard errors are reproducible.
const BOOTSTRAP_SEED: u64 = 0xB007_5742;

/// The rows of an infilling evaluation, and the first tunes' four versions (original,
/// diffusion, interpolation, prior) for the figure.
pub struct InfillReport {
    pub evaluation: Evaluation,
    pub examples: Vec<[Melody; 4]>,
}

/// A baseline's latents as one melody, decoded as the engine decodes the diffusion row's (the same
/// interval weight), so the rows differ only in where their latents come from.
fn decode(engine: &Engine, z: &Tensor) -> Result<Vec<Window>, EngineError> {
    Ok(engine.vae.decode_melody(z, &|_| true, engine.tuning().interval_weight)?)
}

/// Tunes drawn in the figure.
const FIGURE_EXAMPLES: usize = 3;

/// The bars the infilling evaluation regenerates: [`INFILL_BARS`] of [`EVAL_BARS`].
pub fn infill_selection() -> BarSelection {
    BarSelection::range(INFILL_BARS.0, INFILL_BARS.1, EVAL_BARS)
}

/// The infilling evaluation over `melodies` (16 bars each): `request`'s controls (its variations
/// per tune, seed, temperature, pitches and repeats) on [`infill_selection`].
pub fn evaluate_infill(engine: &Engine, melodies: &[Melody], request: &Request) -> Result<InfillReport, EngineError> {
    let selection = infill_selection();
    let generate = selection.segments_of_clip(EVAL_BARS);
    let never = AtomicBool::new(false);
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let latent = engine.vae.vae.config.latent;
    // Infills a tune, and as many prior draws, so the two rows' variance columns are as certain.
    let per_tune = request.variations.max(1);
    let (mut diffusion, mut interpolation, mut prior, mut reconstruction) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, melody) in melodies.iter().enumerate() {
        let tune_request =
            Request { selection: selection.clone(), seed: request.seed.wrapping_add(i as u64), ..request.clone() };
        diffusion.extend(engine.infill(melody, &tune_request, &never, &mut |_| {})?);

        let segments = to_segments(melody);
        let encoded = engine.vae.encode(&segments)?;
        let windows = decode(engine, &encoded)?;
        reconstruction.push(splice(melody, &melody_from_segments(&windows, melody), &selection));
        let z = encoded.to_vec2::<f32>()?;
        // Latents 2 and 7 (1-based) frame the gap; the four between move evenly from one to the other.
        let mut interpolated = z.clone();
        for (k, row) in interpolated.iter_mut().enumerate().filter(|(k, _)| generate[*k]) {
            *row = slerp(&z[1], &z[6], (k - 1) as f32 / 5.0);
        }
        let rows: Vec<f32> = interpolated.into_iter().flatten().collect();
        let windows = decode(engine, &Tensor::from_vec(rows, (8, latent), engine.device())?)?;
        interpolation.push(splice(melody, &melody_from_segments(&windows, melody), &selection));

        for _ in 0..per_tune {
            let noise = normal_tensor(&mut rng, 8, latent, engine.device())?;
            let windows = decode(engine, &noise)?;
            prior.push(splice(melody, &melody_from_segments(&windows, melody), &selection));
        }
    }
    let examples = (0..melodies.len().min(FIGURE_EXAMPLES))
        .map(|i| {
            let (infill, draw) = (diffusion[i * per_tune].clone(), prior[i * per_tune].clone());
            [melodies[i].clone(), infill, interpolation[i].clone(), draw]
        })
        .collect();
    let evaluation = Evaluation {
        rows: vec![
            ("test", melodies.to_vec(), 1),
            ("diffusion", diffusion, per_tune),
            ("interpolation", interpolation, 1),
            ("prior", prior, per_tune),
            ("reconstruction", reconstruction, 1),
        ],
        // Every baseline row is drawn from the same tunes as the diffusion row.
        pairs: vec![("diffusion", "interpolation"), ("diffusion", "prior")],
    };
    Ok(InfillReport { evaluation, examples })
}

/// Seed s of the unconditional evaluation draws its batches from seeds s · this + 0, 1, 2, …
const UNCOND_SEED_SPACING: u64 = 0x9E37_79B9_7F4A_7C15;

/// The unconditional evaluation: `count` generated sequences of 8 latents beside `test`, with
/// `request`'s seed, temperature, pitches and repeats.
pub fn evaluate_uncond(
    engine: &Engine,
    test: &[Melody],
    count: usize,
    request: &Request,
) -> Result<Evaluation, EngineError> {
    let silence = Melody { notes: Vec::new(), bars: EVAL_BARS, bpm: 120.0, meter: Meter::FOUR_FOUR, key: None };
    let all = BarSelection::all(EVAL_BARS);
    let never = AtomicBool::new(false);
    // Batches of 16 variations share a forward pass.
    let mut diffusion = Vec::with_capacity(count);
    let mut batch = 0u64;
    while diffusion.len() < count {
        let variations = (count - diffusion.len()).min(16);
        // Seeds far apart per run: seed s + 1 must not replay seed s's batches shifted by one.
        let seed = request.seed.wrapping_mul(UNCOND_SEED_SPACING).wrapping_add(batch);
        let batch_request = Request { selection: all.clone(), variations, seed, ..request.clone() };
        diffusion.extend(engine.infill(&silence, &batch_request, &never, &mut |_| {})?);
        batch += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let latent = engine.vae.vae.config.latent;
    let mut prior = Vec::with_capacity(count);
    for _ in 0..count {
        let windows = decode(engine, &normal_tensor(&mut rng, 8, latent, engine.device())?)?;
        prior.push(melody_from_segments(&windows, &silence));
    }
    // The generated rows are not drawn from the test tunes: nothing is paired.
    Ok(Evaluation {
        rows: vec![("test", test.to_vec(), 1), ("diffusion", diffusion, 1), ("prior", prior, 1)],
        pairs: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::shape::tests::varied_melody;

    #[test]
    fn bootstrap_errors_vanish_for_identical_or_paired_draws_and_shrink_with_more_draws() {
        let truth = melody_stats(&(0..50).map(varied_melody).collect::<Vec<_>>(), OaForm::Paper);
        let same = vec![varied_melody(1); 40];
        let melodies = |seeds: std::ops::Range<u64>| seeds.map(varied_melody).collect::<Vec<_>>();
        let zero = bootstrap_standard_errors(&draws_of(&same, 1, OaForm::Paper), &truth);
        let zeros = [zero.pitch_consistency, zero.pitch_variance, zero.duration_consistency, zero.duration_variance];
        assert!(zeros.iter().all(|e| e.abs() < 1e-12), "{zeros:?}");
        let few = bootstrap_standard_errors(&draws_of(&melodies(0..40), 1, OaForm::Paper), &truth);
        let many = bootstrap_standard_errors(&draws_of(&melodies(0..640), 1, OaForm::Paper), &truth);
        // 16 times the draws: about a quarter of the error, as 1 / √n has it (less for the
        // variance columns, which fold at the truth: |σ² − σ²_GT|).
        for (f, m) in [(few.pitch_variance, many.pitch_variance), (few.duration_consistency, many.duration_consistency)]
        {
            assert!(f > 0.0 && m > 0.0 && m < f / 2.0 && m > f / 8.0, "{f} vs {m}");
        }
        // Paired rows are resampled together: a row against itself differs by exactly 0 in
        // every round, against another row by a spread of its own.
        let varied = draws_of(&melodies(0..40), 1, OaForm::Paper);
        let itself = paired_difference_standard_errors(&varied, &varied, &truth);
        assert_eq!([itself.pitch_variance, itself.duration_variance], [0.0, 0.0]);
        let other = draws_of(&melodies(100..140), 1, OaForm::Paper);
        let apart = paired_difference_standard_errors(&varied, &other, &truth);
        assert!(apart.pitch_variance > few.pitch_variance / 2.0, "{apart:?}");
        // Draws of several melodies are resampled whole: 40 draws of 16 count as 40, not 640.
        let grouped = (0..640).map(|k| varied_melody(k / 16)).collect::<Vec<_>>();
        let grouped = bootstrap_standard_errors(&draws_of(&grouped, 16, OaForm::Paper), &truth);
        assert!(grouped.duration_consistency > 2.0 * many.duration_consistency, "{grouped:?} vs {many:?}");
    }
}
