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
use crate::metrics::{frame_overlaps, OaForm, OverlapStats, QualityRow, SetStats, FRAME_BARS, HOP_BARS};
use rebar_engine::engine::{splice, BarSelection, Engine, EngineError, InfillOptions};
use rebar_engine::melody::{tokens, Melody};
use rebar_engine::midi::Meter;
use rebar_engine::random::normal_tensor;
use rebar_engine::time::{STEPS_PER_BAR, STEPS_PER_BEAT};
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

/// What a mean and a variance hide (a diagnostic beside the paper's metric, not part of it): the
/// spread of the OAs (the paper's form), and how much of a set's self-similarity is literal
/// repetition.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Shape {
    /// The 10th, 25th, 50th, 75th and 90th percentiles of the adjacent-frame pitch OAs.
    pub pitch_oa_quantiles: [f64; 5],
    /// The same of the duration OAs.
    pub duration_oa_quantiles: [f64; 5],
    /// The variance of the pitch OAs (σ²_OA, eq. 10) split by the law of total variance into
    /// [within melodies, between melodies]: how far a melody's OAs spread about its own mean,
    /// and how far melodies' mean self-similarity differs from one to the next (each weighted
    /// by its number of pairs, so the two sum to σ²_OA).
    pub pitch_oa_variance_split: [f64; 2],
    /// The same of the duration OAs.
    pub duration_oa_variance_split: [f64; 2],
    /// Of the 2-bar windows that hold notes, the fraction whose notes repeat another window of the
    /// same melody exactly (same onsets within the window, pitches and lengths).
    pub repeated_windows: f64,
    /// Per melody, the mean number of pairs of equal windows (holding notes, equal as for
    /// `repeated_windows`) by how many windows apart they lie, from 1: where repeats fall
    /// (real tunes repeat at 4 and 8 bars, distances 2 and 4).
    pub repeat_distances: Vec<f64>,
    /// Mean distance in semitones between the mean pitches of adjacent 2-bar windows: how far
    /// the register moves every two bars.
    pub register_step: f64,
    /// Mean distance in beats between the mean note lengths of adjacent 2-bar windows: how far
    /// the rhythm moves every two bars.
    pub rhythm_step: f64,
    /// Of the intervals between consecutive notes, the fraction of each size from 0 to 12
    /// semitones, then of all wider ones (the last entry: the decoder's octave slips): the
    /// melodic motion the interval prior shapes (see [`rebar_engine::vae::intervals`]).
    pub interval_histogram: Vec<f64>,
    /// Of the 4-bar frames that hold notes, the fraction whose notes all have one length: their
    /// duration Gaussian has σ = 0, the metric's extreme case (two such frames overlap fully in
    /// the paper's form whatever their lengths; in the exact form, not at all unless equal).
    pub uniform_rhythm_frames: f64,
    /// Of the adjacent-frame pairs, the fraction whose OA is 1 (to 10⁻⁹), [pitch, duration]:
    /// repeats, and in the paper's form every pair of equal spread.
    pub full_overlap_pairs: [f64; 2],
    /// Mean pitch OA of each pair of adjacent frames, by the pair's place in the melody: where
    /// (at the selection's edges or inside it) self-similarity is lost.
    pub pitch_oa_by_pair: Vec<f64>,
    /// The same of the duration OAs.
    pub duration_oa_by_pair: Vec<f64>,
    /// Mean number of notes starting in each 2-bar window, by window.
    pub notes_by_window: Vec<f64>,
    /// Mean note length in beats of each 2-bar window's notes, by window (over the windows that
    /// hold notes).
    pub beats_by_window: Vec<f64>,
    /// Of each 2-bar window's sixteenth-note steps, the mean share in which no note sounds, by
    /// window: rests, which shorten the note before them.
    pub silence_by_window: Vec<f64>,
}

impl Shape {
    pub fn of(melodies: &[Melody]) -> Self {
        let (mut pitch, mut duration) = (Vec::new(), Vec::new());
        let (mut pitch_by_melody, mut duration_by_melody) = (Vec::new(), Vec::new());
        let (mut repeated, mut windows_with_notes) = (0usize, 0usize);
        let mut repeat_distances: Vec<usize> = Vec::new();
        let (mut register_steps, mut rhythm_steps) = (Steps::default(), Steps::default());
        let mut interval_counts = [0usize; OCTAVE as usize + 2];
        let (mut uniform_frames, mut frames) = (0usize, 0usize);
        let (mut pitch_by_pair, mut duration_by_pair) = (Means::default(), Means::default());
        let (mut notes_by_window, mut beats_by_window) = (Means::default(), Means::default());
        let mut silence_by_window = Means::default();
        for melody in melodies {
            let (p, d) = frame_overlaps(&melody.notes, melody.bars, OaForm::Paper);
            // Pairs are only listed when both frames hold notes, so places are comparable only
            // when every frame does; those melodies are nearly all of a real set.
            if p.len() + 1 == ((melody.bars.saturating_sub(FRAME_BARS)) / HOP_BARS + 1) as usize {
                pitch_by_pair.add(p.iter().copied().map(Some));
                duration_by_pair.add(d.iter().copied().map(Some));
            }
            pitch.extend(&p);
            duration.extend(&d);
            pitch_by_melody.push(p);
            duration_by_melody.push(d);
            for pair in melody.notes.windows(2) {
                interval_counts[usize::from(pair[0].pitch.abs_diff(pair[1].pitch).min(OCTAVE + 1))] += 1;
            }
            let windows = two_bar_windows(melody);
            for uniform in one_length_frames_of_windows(&windows).into_iter().flatten() {
                frames += 1;
                uniform_frames += usize::from(uniform);
            }
            notes_by_window.add(windows.iter().map(|w| Some(w.len() as f64)));
            // An empty window has no mean length.
            beats_by_window.add(windows.iter().map(|w| {
                let steps: u32 = w.iter().map(|&(_, _, len)| len).sum();
                (!w.is_empty()).then(|| f64::from(steps) / f64::from(STEPS_PER_BEAT) / w.len() as f64)
            }));
            silence_by_window.add(silence_of_windows(melody).into_iter().map(Some));
            for (i, window) in windows.iter().enumerate().filter(|(_, w)| !w.is_empty()) {
                windows_with_notes += 1;
                repeated += usize::from(windows.iter().enumerate().any(|(j, other)| j != i && other == window));
                for distance in (1..windows.len() - i).filter(|d| &windows[i + d] == window) {
                    if repeat_distances.len() < distance {
                        repeat_distances.resize(distance, 0);
                    }
                    repeat_distances[distance - 1] += 1;
                }
            }
            register_steps.add(&window_means(&windows, |&(_, pitch, _)| f64::from(pitch)));
            rhythm_steps.add(&window_means(&windows, |&(_, _, len)| f64::from(len) / f64::from(STEPS_PER_BEAT)));
        }
        Self {
            pitch_oa_quantiles: quantiles(&mut pitch),
            duration_oa_quantiles: quantiles(&mut duration),
            pitch_oa_variance_split: variance_split(&pitch_by_melody),
            duration_oa_variance_split: variance_split(&duration_by_melody),
            repeated_windows: repeated as f64 / windows_with_notes.max(1) as f64,
            repeat_distances: repeat_distances.iter().map(|&n| n as f64 / melodies.len().max(1) as f64).collect(),
            register_step: register_steps.mean(),
            rhythm_step: rhythm_steps.mean(),
            uniform_rhythm_frames: uniform_frames as f64 / frames.max(1) as f64,
            full_overlap_pairs: [&pitch, &duration]
                .map(|oas| oas.iter().filter(|oa| **oa > 1.0 - 1e-9).count() as f64 / oas.len().max(1) as f64),
            interval_histogram: {
                let intervals = interval_counts.iter().sum::<usize>().max(1) as f64;
                interval_counts.iter().map(|&c| c as f64 / intervals).collect()
            },
            pitch_oa_by_pair: pitch_by_pair.means(),
            duration_oa_by_pair: duration_by_pair.means(),
            notes_by_window: notes_by_window.means(),
            beats_by_window: beats_by_window.means(),
            silence_by_window: silence_by_window.means(),
        }
    }
}

/// Running means of rows of values, element by element; a missing value is left out of its
/// element's mean.
#[derive(Default)]
struct Means {
    sums: Vec<f64>,
    counts: Vec<usize>,
}

impl Means {
    fn add(&mut self, row: impl IntoIterator<Item = Option<f64>>) {
        for (k, value) in row.into_iter().enumerate() {
            if self.sums.len() <= k {
                self.sums.resize(k + 1, 0.0);
                self.counts.resize(k + 1, 0);
            }
            if let Some(value) = value {
                self.sums[k] += value;
                self.counts[k] += 1;
            }
        }
    }

    fn means(&self) -> Vec<f64> {
        self.sums.iter().zip(&self.counts).map(|(sum, &count)| sum / count.max(1) as f64).collect()
    }
}

/// The mean of `value` over each 2-bar window's notes, in order, leaving out windows without
/// notes.
fn window_means(windows: &[Vec<(u32, u8, u32)>], value: impl Fn(&(u32, u8, u32)) -> f64) -> Vec<f64> {
    windows.iter().filter(|w| !w.is_empty()).map(|w| w.iter().map(&value).sum::<f64>() / w.len() as f64).collect()
}

/// The running mean of the distances between adjacent values of sequences.
#[derive(Default)]
struct Steps {
    sum: f64,
    pairs: usize,
}

impl Steps {
    fn add(&mut self, values: &[f64]) {
        for pair in values.windows(2) {
            self.sum += (pair[1] - pair[0]).abs();
            self.pairs += 1;
        }
    }

    fn mean(&self) -> f64 {
        self.sum / self.pairs.max(1) as f64
    }
}

/// Semitones in an octave.
const OCTAVE: u8 = 12;

/// A melody's notes by 2-bar window, as (onset within the window, pitch, length).
fn two_bar_windows(melody: &Melody) -> Vec<Vec<(u32, u8, u32)>> {
    let window_steps = 2 * STEPS_PER_BAR;
    let mut windows = vec![Vec::new(); melody.bars.div_ceil(2) as usize];
    for note in &melody.notes {
        if let Some(window) = windows.get_mut((note.start.0 / window_steps) as usize) {
            window.push((note.start.0 % window_steps, note.pitch, note.len.0));
        }
    }
    windows
}

/// Per 2-bar window of `melody`: the share of its steps in which no note sounds.
fn silence_of_windows(melody: &Melody) -> Vec<f64> {
    let window_steps = 2 * STEPS_PER_BAR;
    let steps = (melody.bars.div_ceil(2) * window_steps) as usize;
    let mut sounding = vec![false; steps];
    for note in &melody.notes {
        let (start, end) = (note.start.0 as usize, (note.end().0 as usize).min(steps));
        sounding.get_mut(start.min(end)..end).into_iter().flatten().for_each(|s| *s = true);
    }
    sounding.chunks(window_steps as usize).map(|w| w.iter().filter(|s| !**s).count() as f64 / w.len() as f64).collect()
}

/// Per 4-bar frame (2-bar hop, as the metric's): whether its notes all have one length, or
/// `None` for a frame without notes.
pub fn frames_of_one_length(melody: &Melody) -> Vec<Option<bool>> {
    one_length_frames_of_windows(&two_bar_windows(melody))
}

/// [`frames_of_one_length`] from a melody's [`two_bar_windows`].
fn one_length_frames_of_windows(windows: &[Vec<(u32, u8, u32)>]) -> Vec<Option<bool>> {
    windows
        .windows(2)
        .map(|frame| {
            let mut lengths = frame.iter().flatten().map(|&(_, _, len)| len);
            lengths.next().map(|first| lengths.all(|len| len == first))
        })
        .collect()
}

/// The population variance of all `groups`' values together, as [the groups' mean variance
/// about their own means, the variance of the group means about the overall mean], each group
/// weighted by its size: the two sum to the whole (the law of total variance).
fn variance_split(groups: &[Vec<f64>]) -> [f64; 2] {
    let count = groups.iter().map(Vec::len).sum::<usize>();
    if count == 0 {
        return [0.0; 2];
    }
    let overall = groups.iter().flatten().sum::<f64>() / count as f64;
    let (mut within, mut between) = (0.0, 0.0);
    for group in groups.iter().filter(|g| !g.is_empty()) {
        let stats = OverlapStats::of(group);
        within += group.len() as f64 * stats.variance;
        between += group.len() as f64 * (stats.mean - overall).powi(2);
    }
    [within / count as f64, between / count as f64]
}

/// The 10th, 25th, 50th, 75th and 90th percentiles (nearest rank), zeros for no values.
fn quantiles(values: &mut [f64]) -> [f64; 5] {
    if values.is_empty() {
        return [0.0; 5];
    }
    values.sort_by(f64::total_cmp);
    [0.1, 0.25, 0.5, 0.75, 0.9].map(|q| values[((q * values.len() as f64) as usize).min(values.len() - 1)])
}

/// The rows of an infilling evaluation, and the first tunes' four versions (original,
/// diffusion, interpolation, prior) for the figure.
pub struct InfillReport {
    pub evaluation: Evaluation,
    pub examples: Vec<[Melody; 4]>,
}

/// A baseline's latents as one melody, decoded as the engine decodes the diffusion row's (the same
/// interval weight), so the rows differ only in where their latents come from.
fn decode(engine: &Engine, z: &Tensor, options: &InfillOptions) -> Result<Vec<Window>, EngineError> {
    Ok(engine.vae.decode_melody(z, &|_| true, options.interval_weight)?)
}

/// Tunes drawn in the figure.
const FIGURE_EXAMPLES: usize = 3;

/// The bars the infilling evaluation regenerates: [`INFILL_BARS`] of [`EVAL_BARS`].
pub fn infill_selection() -> BarSelection {
    BarSelection::range(INFILL_BARS.0, INFILL_BARS.1, EVAL_BARS)
}

/// The infilling evaluation over `melodies` (16 bars each).
pub fn evaluate_infill(
    engine: &Engine,
    melodies: &[Melody],
    options: &InfillOptions,
) -> Result<InfillReport, EngineError> {
    let selection = infill_selection();
    let generate = selection.segments_of_clip(EVAL_BARS);
    let never = AtomicBool::new(false);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let latent = engine.vae.vae.config.latent;
    // Infills a tune, and as many prior draws, so the two rows' variance columns are as certain.
    let per_tune = options.variations.max(1);
    let (mut diffusion, mut interpolation, mut prior, mut reconstruction) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, melody) in melodies.iter().enumerate() {
        let tune_options = InfillOptions { seed: options.seed.wrapping_add(i as u64), ..options.clone() };
        diffusion.extend(engine.infill(melody, &selection, &tune_options, &never, &mut |_| {})?);

        let segments = to_segments(melody);
        let encoded = engine.vae.encode(&segments)?;
        let windows = decode(engine, &encoded, options)?;
        reconstruction.push(splice(melody, &melody_from_segments(&windows, melody), &selection));
        let z = encoded.to_vec2::<f32>()?;
        // Latents 2 and 7 (1-based) frame the gap; the four between move evenly from one to the other.
        let mut interpolated = z.clone();
        for (k, row) in interpolated.iter_mut().enumerate().filter(|(k, _)| generate[*k]) {
            *row = slerp(&z[1], &z[6], (k - 1) as f32 / 5.0);
        }
        let rows: Vec<f32> = interpolated.into_iter().flatten().collect();
        let windows = decode(engine, &Tensor::from_vec(rows, (8, latent), engine.device())?, options)?;
        interpolation.push(splice(melody, &melody_from_segments(&windows, melody), &selection));

        for _ in 0..per_tune {
            let noise = normal_tensor(&mut rng, 8, latent, engine.device())?;
            let windows = decode(engine, &noise, options)?;
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

/// The unconditional evaluation: `count` generated sequences of 8 latents beside `test`.
pub fn evaluate_uncond(
    engine: &Engine,
    test: &[Melody],
    count: usize,
    options: &InfillOptions,
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
        let seed = options.seed.wrapping_mul(UNCOND_SEED_SPACING).wrapping_add(batch);
        let batch_options = InfillOptions { variations, seed, ..options.clone() };
        diffusion.extend(engine.infill(&silence, &all, &batch_options, &never, &mut |_| {})?);
        batch += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let latent = engine.vae.vae.config.latent;
    let mut prior = Vec::with_capacity(count);
    for _ in 0..count {
        let windows = decode(engine, &normal_tensor(&mut rng, 8, latent, engine.device())?, options)?;
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
    use rebar_engine::melody::Note;
    use rebar_engine::time::Step;

    /// 16 bars of notes whose pitches and lengths follow `seed`: every melody a different draw.
    fn varied_melody(seed: u64) -> Melody {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut notes = Vec::new();
        let mut at = 0;
        while at < EVAL_BARS * STEPS_PER_BAR {
            let len = [1, 2, 2, 4, 6, 8][rng.random_range(0..6)];
            notes.push(Note { pitch: rng.random_range(60..76), start: Step(at), len: Step(len) });
            at += len;
        }
        notes.retain(|n| n.end().0 <= EVAL_BARS * STEPS_PER_BAR);
        Melody { notes, bars: EVAL_BARS, bpm: 120.0, meter: Meter::FOUR_FOUR, key: None }
    }

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

    #[test]
    fn the_oa_variance_splits_into_within_and_between_melodies_summing_to_the_whole() {
        let melodies: Vec<Melody> = (0..30).map(varied_melody).collect();
        let stats = melody_stats(&melodies, OaForm::Paper);
        let shape = Shape::of(&melodies);
        for (split, whole) in [
            (shape.pitch_oa_variance_split, stats.pitch.variance),
            (shape.duration_oa_variance_split, stats.duration.variance),
        ] {
            assert!(split[0] > 0.0 && split[1] > 0.0, "{split:?}");
            assert!((split[0] + split[1] - whole).abs() < 1e-12, "{split:?} against {whole}");
        }
        // One melody many times over: every melody's mean is the same, nothing lies between them.
        let copies = vec![varied_melody(7); 5];
        let [within, between] = Shape::of(&copies).pitch_oa_variance_split;
        assert!(within > 0.0 && between.abs() < 1e-15, "{within} {between}");
        assert_eq!(variance_split(&[vec![0.0, 2.0], vec![4.0, 6.0]]), [1.0, 4.0]);
        assert_eq!(variance_split(&[]), [0.0, 0.0]);
    }

    #[test]
    fn the_shape_counts_repeated_windows_and_register_moves() {
        // One quarter note per 2-bar window; window 5 repeats window 1.
        let pitches = [60u8, 61, 62, 63, 60, 65, 66, 67];
        let notes = pitches
            .iter()
            .enumerate()
            .map(|(k, &pitch)| Note { pitch, start: Step(k as u32 * 2 * STEPS_PER_BAR), len: Step(4) })
            .collect();
        let melody = Melody { notes, bars: EVAL_BARS, bpm: 120.0, meter: Meter::FOUR_FOUR, key: None };
        let shape = Shape::of(&[melody]);
        assert_eq!(shape.repeated_windows, 2.0 / 8.0);
        assert_eq!(shape.repeat_distances, vec![0.0, 0.0, 0.0, 1.0]);
        assert!((shape.register_step - 13.0 / 7.0).abs() < 1e-12);
        // Every window's one note lasts a beat: the rhythm never moves.
        assert_eq!(shape.rhythm_step, 0.0);
        assert!(shape.pitch_oa_quantiles.windows(2).all(|q| q[0] <= q[1]));
        // Every window holds one note of one beat: each frame's durations are equal, so every
        // adjacent pair of frames overlaps fully in duration.
        assert_eq!((shape.notes_by_window.clone(), shape.beats_by_window.clone()), (vec![1.0; 8], vec![1.0; 8]));
        // A quarter note sounds 4 of a window's 32 steps.
        assert_eq!(shape.silence_by_window, vec![28.0 / 32.0; 8]);
        assert_eq!(shape.duration_oa_by_pair.len(), 6);
        assert!(shape.duration_oa_by_pair.iter().all(|oa| (oa - 1.0).abs() < 1e-6), "{:?}", shape.duration_oa_by_pair);
        // Frames of equal pitch spread overlap fully in the paper's form (its crossing point
        // falls at 0); those whose spreads differ do not.
        let pitch = &shape.pitch_oa_by_pair;
        assert!(
            pitch[..2].iter().all(|oa| (oa - 1.0).abs() < 1e-6) && pitch[2..5].iter().all(|oa| *oa < 1.0),
            "{pitch:?}"
        );
    }
}
