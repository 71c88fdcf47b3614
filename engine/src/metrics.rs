//! The seed paper's quality metric (Mittal et al., 2021, §4.4): framewise self-similarity of
//! pitch and duration.
//!
//! - A melody is cut into 4-bar frames with a 2-bar hop; a frame holds the notes whose onset lies
//!   inside it.
//! - Each frame's pitches (MIDI numbers) and durations (in beats; OA does not depend on the unit)
//!   are summarized as a Gaussian N(μ, σ²).
//! - Adjacent frames are compared by the overlapping area of their Gaussians (eq. 9),
//!   OA = ∫ min(p₁, p₂).
//! - Over a set of melodies, the OAs have a mean μ_OA and a variance σ²_OA. Against the same
//!   figures of the training set (μ_GT, σ²_GT), eq. 10 gives
//!   Consistency = max(0, 1 − |μ_OA − μ_GT| / μ_GT) and Variance = max(0, 1 − |σ²_OA − σ²_GT| / σ²_GT).

use crate::melody::Note;
use crate::time::{STEPS_PER_BAR, STEPS_PER_BEAT};

/// Bars per frame.
pub const FRAME_BARS: u32 = 4;
/// Bars between frame starts.
pub const HOP_BARS: u32 = 2;
/// A frame whose notes all share one value has σ = 0; this floor (in the feature's unit) keeps
/// its Gaussian defined: two such frames overlap fully when equal and not at all otherwise.
const MIN_STD: f64 = 1e-3;

/// Mean and standard deviation of a frame feature.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Gaussian {
    pub mean: f64,
    pub std: f64,
}

impl Gaussian {
    /// Fits values; None for an empty frame.
    pub fn fit(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        Some(Self { mean, std: var.sqrt().max(MIN_STD) })
    }

    fn pdf(&self, x: f64) -> f64 {
        (-0.5 * ((x - self.mean) / self.std).powi(2)).exp() / (self.std * (2.0 * std::f64::consts::PI).sqrt())
    }

    fn cdf(&self, x: f64) -> f64 {
        if x == f64::INFINITY {
            return 1.0;
        }
        if x == f64::NEG_INFINITY {
            return 0.0;
        }
        0.5 * (1.0 + libm::erf((x - self.mean) / (self.std * std::f64::consts::SQRT_2)))
    }
}

/// The overlapping area of two Gaussians (eq. 9), ∫ min(p₁, p₂), in closed form: the densities
/// cross at most twice, and between crossings the smaller density's mass is summed.
pub fn overlapping_area(a: Gaussian, b: Gaussian) -> f64 {
    // p_a(x) = p_b(x) ⇔ A x² + B x + C = 0 (from equating the log densities).
    let (va, vb) = (a.std * a.std, b.std * b.std);
    let quad_a = 1.0 / vb - 1.0 / va;
    let quad_b = 2.0 * (a.mean / va - b.mean / vb);
    let quad_c = b.mean * b.mean / vb - a.mean * a.mean / va + 2.0 * (b.std / a.std).ln();
    let mut crossings: Vec<f64> = if quad_a.abs() < 1e-12 {
        if quad_b.abs() < 1e-12 {
            vec![]
        } else {
            vec![-quad_c / quad_b]
        }
    } else {
        let disc = quad_b * quad_b - 4.0 * quad_a * quad_c;
        if disc < 0.0 {
            vec![]
        } else {
            vec![(-quad_b - disc.sqrt()) / (2.0 * quad_a), (-quad_b + disc.sqrt()) / (2.0 * quad_a)]
        }
    };
    crossings.sort_by(f64::total_cmp);
    let mut bounds = vec![f64::NEG_INFINITY];
    bounds.extend(crossings);
    bounds.push(f64::INFINITY);
    let mut area = 0.0;
    for pair in bounds.windows(2) {
        let (lo, hi) = (pair[0], pair[1]);
        let probe = match (lo.is_finite(), hi.is_finite()) {
            (true, true) => 0.5 * (lo + hi),
            (true, false) => lo + 1.0 + a.std.max(b.std),
            (false, true) => hi - 1.0 - a.std.max(b.std),
            (false, false) => a.mean,
        };
        let smaller = if a.pdf(probe) <= b.pdf(probe) { a } else { b };
        area += smaller.cdf(hi) - smaller.cdf(lo);
    }
    area.clamp(0.0, 1.0)
}

/// Pitch and duration OAs of every pair of adjacent frames of one melody of `bars` bars.
pub fn frame_overlaps(notes: &[Note], bars: u32) -> (Vec<f64>, Vec<f64>) {
    let mut frames: Vec<(Option<Gaussian>, Option<Gaussian>)> = Vec::new();
    let mut start = 0;
    while start + FRAME_BARS <= bars {
        let (lo, hi) = (start * STEPS_PER_BAR, (start + FRAME_BARS) * STEPS_PER_BAR);
        let inside: Vec<&Note> = notes.iter().filter(|n| n.start.0 >= lo && n.start.0 < hi).collect();
        let pitches: Vec<f64> = inside.iter().map(|n| f64::from(n.pitch)).collect();
        let durations: Vec<f64> = inside.iter().map(|n| f64::from(n.len.0) / f64::from(STEPS_PER_BEAT)).collect();
        frames.push((Gaussian::fit(&pitches), Gaussian::fit(&durations)));
        start += HOP_BARS;
    }
    let (mut pitch, mut duration) = (Vec::new(), Vec::new());
    for pair in frames.windows(2) {
        if let ((Some(p1), Some(d1)), (Some(p2), Some(d2))) = (pair[0], pair[1]) {
            pitch.push(overlapping_area(p1, p2));
            duration.push(overlapping_area(d1, d2));
        }
    }
    (pitch, duration)
}

/// Mean and variance of a set of OA values.
#[derive(Copy, Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OverlapStats {
    pub mean: f64,
    pub variance: f64,
    pub count: usize,
}

impl OverlapStats {
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        Self { mean, variance, count: values.len() }
    }
}

/// Pitch and duration OA statistics of a set of melodies.
#[derive(Copy, Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SetStats {
    pub pitch: OverlapStats,
    pub duration: OverlapStats,
}

impl SetStats {
    /// Over melodies given as (notes, bars).
    pub fn of<'a>(melodies: impl IntoIterator<Item = (&'a [Note], u32)>) -> Self {
        let (mut pitch, mut duration) = (Vec::new(), Vec::new());
        for (notes, bars) in melodies {
            let (p, d) = frame_overlaps(notes, bars);
            pitch.extend(p);
            duration.extend(d);
        }
        Self::of_overlaps(&pitch, &duration)
    }

    /// Over the adjacent-frame OAs of a set, pitch and duration.
    pub fn of_overlaps(pitch: &[f64], duration: &[f64]) -> Self {
        Self { pitch: OverlapStats::of(pitch), duration: OverlapStats::of(duration) }
    }
}

/// Eq. 10 for one feature.
fn consistency_and_variance(generated: OverlapStats, truth: OverlapStats) -> (f64, f64) {
    let consistency = (1.0 - (generated.mean - truth.mean).abs() / truth.mean).max(0.0);
    let variance = (1.0 - (generated.variance - truth.variance).abs() / truth.variance).max(0.0);
    (consistency, variance)
}

/// One row of the paper's Table 1.
#[derive(Copy, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityRow {
    pub pitch_consistency: f64,
    pub pitch_variance: f64,
    pub duration_consistency: f64,
    pub duration_variance: f64,
}

impl QualityRow {
    /// Scores a set against the training set's statistics.
    pub fn score(generated: &SetStats, truth: &SetStats) -> Self {
        let (pitch_consistency, pitch_variance) = consistency_and_variance(generated.pitch, truth.pitch);
        let (duration_consistency, duration_variance) = consistency_and_variance(generated.duration, truth.duration);
        Self { pitch_consistency, pitch_variance, duration_consistency, duration_variance }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Step;

    fn gaussian(mean: f64, std: f64) -> Gaussian {
        Gaussian { mean, std }
    }

    /// ∫ min(p₁, p₂) by the midpoint rule, to check the closed form.
    fn numeric_oa(a: Gaussian, b: Gaussian) -> f64 {
        let (lo, hi) = (a.mean.min(b.mean) - 12.0 * a.std.max(b.std), a.mean.max(b.mean) + 12.0 * a.std.max(b.std));
        let n = 200_000;
        let dx = (hi - lo) / n as f64;
        (0..n).map(|i| lo + (i as f64 + 0.5) * dx).map(|x| a.pdf(x).min(b.pdf(x)) * dx).sum()
    }

    #[test]
    fn identical_gaussians_overlap_fully() {
        assert!((overlapping_area(gaussian(60.0, 3.0), gaussian(60.0, 3.0)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn equal_widths_follow_the_erf_formula() {
        // OA = 1 − erf(|μ₁ − μ₂| / (2√2 σ)) for equal σ.
        let oa = overlapping_area(gaussian(0.0, 1.0), gaussian(2.0, 1.0));
        assert!((oa - (1.0 - libm::erf(2.0 / (2.0 * std::f64::consts::SQRT_2)))).abs() < 1e-9, "{oa}");
    }

    #[test]
    fn the_closed_form_matches_numeric_integration_for_unequal_widths() {
        for (a, b) in [
            (gaussian(60.0, 2.0), gaussian(62.0, 5.0)),
            (gaussian(0.5, 0.1), gaussian(1.0, 0.6)),
            (gaussian(70.0, 4.0), gaussian(50.0, 1.0)),
        ] {
            let (closed, numeric) = (overlapping_area(a, b), numeric_oa(a, b));
            assert!((closed - numeric).abs() < 1e-4, "{a:?} {b:?}: {closed} vs {numeric}");
            assert!((overlapping_area(b, a) - closed).abs() < 1e-12);
        }
    }

    #[test]
    fn sixteen_bars_give_seven_frames_and_six_adjacent_pairs() {
        let notes: Vec<Note> =
            (0..64).map(|i| Note { pitch: 60 + (i % 5) as u8, start: Step(i * 4), len: Step(2 + i % 3) }).collect();
        let (pitch, duration) = frame_overlaps(&notes, 16);
        assert_eq!((pitch.len(), duration.len()), (6, 6));
    }

    #[test]
    fn a_set_scored_against_itself_is_perfect() {
        let notes: Vec<Note> = (0..40)
            .map(|i| Note { pitch: 55 + (i * 7 % 12) as u8, start: Step(i * 6), len: Step(1 + i % 4) })
            .collect();
        let stats = SetStats::of([(&notes[..], 16), (&notes[..20], 16)]);
        let row = QualityRow::score(&stats, &stats);
        assert_eq!(
            row,
            QualityRow {
                pitch_consistency: 1.0,
                pitch_variance: 1.0,
                duration_consistency: 1.0,
                duration_variance: 1.0
            }
        );
    }
}
