//! The seed paper's quality metric (Mittal et al., 2021, §4.4, <https://arxiv.org/abs/2103.16091>):
//! framewise self-similarity of pitch and duration, as the authors' released code computes it
//! (magenta/symbolic-music-diffusion, `utils/metrics.py`).
//!
//! - A melody is cut into 4-bar frames with a 2-bar hop; a frame holds the notes whose onset lies
//!   inside it.
//! - Each frame's pitches (MIDI numbers) and durations (a note's end minus its start as written,
//!   in seconds at [`METRIC_BPM`]) are summarized as a Gaussian N(μ, σ²), σ² the population
//!   variance.
//! - Adjacent frames are compared by the overlapping area of their Gaussians (eq. 9). The
//!   reported figure, [`OaForm::Paper`], is the released code's closed form: one crossing point
//!   c and a 10⁻⁶ added to the variances. It is not the exact area: where the two variances are
//!   equal, c falls at 0, so two frames of equal spread at positive means (two frames whose
//!   values all coincide, σ² = 0, among them) overlap fully whatever their means.
//!   [`OaForm::Exact`] is ∫ min(p₁, p₂) itself, reported beside it.
//! - Over a set of melodies, the OAs have a mean μ_OA and a variance σ²_OA. Against the same
//!   figures of a reference set (μ_GT, σ²_GT; `rebar eval` uses the real tunes of the evaluated
//!   folder, the paper's ground truth), eq. 10 gives
//!   Consistency = max(0, 1 − |μ_OA − μ_GT| / μ_GT) and Variance = max(0, 1 − |σ²_OA − σ²_GT| / σ²_GT).

use rebar_engine::melody::Note;
use rebar_engine::time::STEPS_PER_BAR;

/// Bars per frame.
pub const FRAME_BARS: u32 = 4;
/// Bars between frame starts.
pub const HOP_BARS: u32 = 2;
/// The tempo at which durations are measured in seconds: magenta's default 120 quarter notes a
/// minute, at which the paper's generated sequences are written. The tunes here carry no tempo,
/// and every melody `rebar eval` scores is written at 120 bpm; the unit matters only through
/// the paper form's 10⁻⁶.
pub const METRIC_BPM: f64 = 120.0;
/// Added to both variances by the paper's closed form (in the feature's squared unit).
const PAPER_EPS: f64 = 1e-6;
/// The exact form's floor on σ (in the feature's unit), which keeps a frame of coinciding values
/// defined: two such frames overlap fully when equal and not at all otherwise.
const MIN_STD: f64 = 1e-3;

/// Which closed form of eq. 9 an OA is computed by.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OaForm {
    /// The authors' released `overlapping_area`: the figure Table 1 reports.
    Paper,
    /// ∫ min(p₁, p₂), with σ floored at 10⁻³ (in the feature's unit).
    Exact,
}

/// Mean and population variance of a frame feature.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Gaussian {
    pub mean: f64,
    pub variance: f64,
}

impl Gaussian {
    /// Fits values; None for an empty frame.
    pub fn fit(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        Some(Self { mean, variance })
    }

    /// σ, floored as the exact form needs.
    fn floored_std(&self) -> f64 {
        self.variance.sqrt().max(MIN_STD)
    }

    /// The log density (up to the constant ln √(2π)): densities of floored σ underflow to 0 a
    /// few units from their mean, and would then compare as equal.
    fn log_pdf(&self, x: f64) -> f64 {
        let std = self.floored_std();
        -0.5 * ((x - self.mean) / std).powi(2) - std.ln()
    }

    fn cdf(&self, x: f64) -> f64 {
        if x == f64::INFINITY {
            return 1.0;
        }
        if x == f64::NEG_INFINITY {
            return 0.0;
        }
        0.5 * (1.0 + libm::erf((x - self.mean) / (self.floored_std() * std::f64::consts::SQRT_2)))
    }
}

/// The overlapping area of two Gaussians (eq. 9) in the given form.
pub fn overlapping_area(a: Gaussian, b: Gaussian, form: OaForm) -> f64 {
    match form {
        OaForm::Paper => paper_overlapping_area(a, b),
        OaForm::Exact => exact_overlapping_area(a, b),
    }
}

/// Eq. 9 as the authors' released code computes it. With μ_a ≤ μ_b and ε = 10⁻⁶:
/// s = √((μ_a − μ_b)² + 2 (σ²_a − σ²_b) ln(√(σ²_a + ε) / √(σ²_b + ε))),
/// c = (μ_b σ²_a − σ_b (μ_a σ_b + σ_a s)) / (σ²_a − σ²_b + ε), the one crossing point used, and
/// OA = 1 − ½ erf((c − μ_a) / (√2 √(σ²_a + ε))) + ½ erf((c − μ_b) / (√2 √(σ²_b + ε))).
pub fn paper_overlapping_area(a: Gaussian, b: Gaussian) -> f64 {
    let (lo, hi) = if b.mean < a.mean { (b, a) } else { (a, b) };
    let (mu_a, mu_b, var_a, var_b) = (lo.mean, hi.mean, lo.variance, hi.variance);
    let (sd_a, sd_b) = (var_a.sqrt(), var_b.sqrt());
    let s = ((mu_a - mu_b).powi(2)
        + 2.0 * (var_a - var_b) * ((var_a + PAPER_EPS).sqrt() / (var_b + PAPER_EPS).sqrt()).ln())
    .sqrt();
    let c = (mu_b * var_a - sd_b * (mu_a * sd_b + sd_a * s)) / (var_a - var_b + PAPER_EPS);
    let sqrt2 = std::f64::consts::SQRT_2;
    1.0 - 0.5 * libm::erf((c - mu_a) / (sqrt2 * (var_a + PAPER_EPS).sqrt()))
        + 0.5 * libm::erf((c - mu_b) / (sqrt2 * (var_b + PAPER_EPS).sqrt()))
}

/// The overlapping area of two Gaussians (eq. 9), ∫ min(p₁, p₂), in closed form: the densities
/// cross at most twice, and between crossings the smaller density's mass is summed.
pub fn exact_overlapping_area(a: Gaussian, b: Gaussian) -> f64 {
    // p_a(x) = p_b(x) ⇔ A x² + B x + C = 0 (from equating the log densities).
    let (sa, sb) = (a.floored_std(), b.floored_std());
    let (va, vb) = (sa * sa, sb * sb);
    let quad_a = 1.0 / vb - 1.0 / va;
    let quad_b = 2.0 * (a.mean / va - b.mean / vb);
    let quad_c = b.mean * b.mean / vb - a.mean * a.mean / va + 2.0 * (sb / sa).ln();
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
            (true, false) => lo + 1.0 + sa.max(sb),
            (false, true) => hi - 1.0 - sa.max(sb),
            (false, false) => a.mean,
        };
        let smaller = if a.log_pdf(probe) <= b.log_pdf(probe) { a } else { b };
        area += smaller.cdf(hi) - smaller.cdf(lo);
    }
    area.clamp(0.0, 1.0)
}

/// A note's duration as the metric measures it: end minus start, in seconds at [`METRIC_BPM`].
fn seconds(note: &Note) -> f64 {
    note.len.beats() * 60.0 / METRIC_BPM
}

/// Pitch and duration OAs (in `form`) of every pair of adjacent frames of one melody of `bars`
/// bars.
pub fn frame_overlaps(notes: &[Note], bars: u32, form: OaForm) -> (Vec<f64>, Vec<f64>) {
    let mut frames: Vec<(Option<Gaussian>, Option<Gaussian>)> = Vec::new();
    let mut start = 0;
    while start + FRAME_BARS <= bars {
        let (lo, hi) = (start * STEPS_PER_BAR, (start + FRAME_BARS) * STEPS_PER_BAR);
        let inside: Vec<&Note> = notes.iter().filter(|n| n.start.0 >= lo && n.start.0 < hi).collect();
        let pitches: Vec<f64> = inside.iter().map(|n| f64::from(n.pitch)).collect();
        let durations: Vec<f64> = inside.iter().map(|n| seconds(n)).collect();
        frames.push((Gaussian::fit(&pitches), Gaussian::fit(&durations)));
        start += HOP_BARS;
    }
    let (mut pitch, mut duration) = (Vec::new(), Vec::new());
    for pair in frames.windows(2) {
        if let ((Some(p1), Some(d1)), (Some(p2), Some(d2))) = (pair[0], pair[1]) {
            pitch.push(overlapping_area(p1, p2, form));
            duration.push(overlapping_area(d1, d2, form));
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
    /// Over melodies given as (notes, bars), in `form`.
    pub fn of<'a>(melodies: impl IntoIterator<Item = (&'a [Note], u32)>, form: OaForm) -> Self {
        let (mut pitch, mut duration) = (Vec::new(), Vec::new());
        for (notes, bars) in melodies {
            let (p, d) = frame_overlaps(notes, bars, form);
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
    /// Scores a set against a reference set's statistics (the same form of OA).
    pub fn score(generated: &SetStats, truth: &SetStats) -> Self {
        let (pitch_consistency, pitch_variance) = consistency_and_variance(generated.pitch, truth.pitch);
        let (duration_consistency, duration_variance) = consistency_and_variance(generated.duration, truth.duration);
        Self { pitch_consistency, pitch_variance, duration_consistency, duration_variance }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebar_engine::time::Step;

    fn gaussian(mean: f64, variance: f64) -> Gaussian {
        Gaussian { mean, variance }
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() < 1e-12
    }

    /// ∫ min(p₁, p₂) by the midpoint rule, to check the exact closed form.
    fn numeric_oa(a: Gaussian, b: Gaussian) -> f64 {
        let spread = a.floored_std().max(b.floored_std());
        let (lo, hi) = (a.mean.min(b.mean) - 12.0 * spread, a.mean.max(b.mean) + 12.0 * spread);
        let n = 200_000;
        let dx = (hi - lo) / n as f64;
        let pdf = |g: Gaussian, x: f64| g.log_pdf(x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (0..n).map(|i| lo + (i as f64 + 0.5) * dx).map(|x| pdf(a, x).min(pdf(b, x)) * dx).sum()
    }

    // The expected values below were computed by hand from the formulas in the docs, in Python
    // with math.erf.

    #[test]
    fn the_paper_form_matches_hand_computed_values_in_either_order() {
        for (a, b, want) in [
            (gaussian(60.0, 4.0), gaussian(62.0, 25.0), 0.6441645433296804),
            // Equal widths: c falls at 0 (μ_a here), not midway, so this is not the exact 0.3173.
            (gaussian(0.0, 1.0), gaussian(2.0, 1.0), 0.5227501859391592),
            (gaussian(0.5, 0.01), gaussian(1.0, 0.36), 0.331198226911286),
            (gaussian(70.0, 16.0), gaussian(50.0, 1.0), 5.180723440506574e-05),
            (gaussian(60.0, 9.0), gaussian(60.0, 9.0), 1.0),
            // Equal widths at positive means: c falls at 0, and the overlap is full.
            (gaussian(60.5, 0.25), gaussian(61.5, 0.25), 1.0),
            // One frame of coinciding values against a spread one.
            (gaussian(0.25, 0.0), gaussian(0.5, 0.0625), 0.6570652709075331),
        ] {
            let (ab, ba) = (paper_overlapping_area(a, b), paper_overlapping_area(b, a));
            assert!(close(ab, want) && close(ba, want), "{a:?} {b:?}: {ab} / {ba}, not {want}");
        }
    }

    #[test]
    fn in_the_paper_form_frames_of_coinciding_values_overlap_fully_whatever_their_means() {
        for (mean_a, mean_b) in [(0.25, 0.5), (60.0, 72.0), (0.125, 2.0), (1.0, 1.0)] {
            let oa = paper_overlapping_area(gaussian(mean_a, 0.0), gaussian(mean_b, 0.0));
            assert!(close(oa, 1.0), "{mean_a} {mean_b}: {oa}");
        }
    }

    #[test]
    fn the_exact_form_matches_hand_computed_values() {
        for (a, b, want) in [
            (gaussian(60.0, 9.0), gaussian(60.0, 9.0), 1.0),
            // Equal widths: 1 − erf(|μ₁ − μ₂| / (2√2 σ)).
            (gaussian(0.0, 1.0), gaussian(2.0, 1.0), 0.31731050786291415),
            (gaussian(60.0, 4.0), gaussian(62.0, 25.0), 0.5485543164405424),
            // Coinciding values: fully when equal, not at all otherwise.
            (gaussian(0.5, 0.0), gaussian(0.5, 0.0), 1.0),
            (gaussian(0.5, 0.0), gaussian(2.0, 0.0), 0.0),
            (gaussian(0.25, 0.0), gaussian(0.5, 0.0), 0.0),
        ] {
            let (ab, ba) = (exact_overlapping_area(a, b), exact_overlapping_area(b, a));
            assert!((ab - want).abs() < 1e-9 && (ba - want).abs() < 1e-9, "{a:?} {b:?}: {ab} / {ba}, not {want}");
        }
    }

    #[test]
    fn the_exact_form_matches_numeric_integration_for_unequal_widths() {
        for (a, b) in [
            (gaussian(60.0, 4.0), gaussian(62.0, 25.0)),
            (gaussian(0.5, 0.01), gaussian(1.0, 0.36)),
            (gaussian(70.0, 16.0), gaussian(50.0, 1.0)),
        ] {
            let (closed, numeric) = (exact_overlapping_area(a, b), numeric_oa(a, b));
            assert!((closed - numeric).abs() < 1e-4, "{a:?} {b:?}: {closed} vs {numeric}");
            assert!((exact_overlapping_area(b, a) - closed).abs() < 1e-12);
        }
    }

    /// 8 bars, 3 frames: bars 1–2 hold four quarter notes (60, 62, 64, 65), bars 3–4 nothing,
    /// bars 5–6 and 7–8 one whole note of 67 each. Frame 1 is four notes of one length (0.5 s),
    /// frame 2 a single note (2 s), frame 3 two equal notes.
    fn three_frames() -> Vec<Note> {
        let mut notes: Vec<Note> = [60, 62, 64, 65]
            .iter()
            .zip(0..)
            .map(|(&pitch, k)| Note { pitch, start: Step(4 * k), len: Step(4) })
            .collect();
        notes.extend([64, 96].map(|start| Note { pitch: 67, start: Step(start), len: Step(16) }));
        notes
    }

    #[test]
    fn frames_with_a_single_note_or_coinciding_values_score_as_computed_by_hand() {
        let notes = three_frames();
        // Frame 1: pitch N(62.75, 3.6875), duration N(0.5 s, 0); frame 2: N(67, 0), N(2 s, 0).
        let (pitch, duration) = frame_overlaps(&notes, 8, OaForm::Paper);
        assert_eq!((pitch.len(), duration.len()), (2, 2));
        assert!(close(pitch[0], 0.5061936930208936), "{pitch:?}");
        assert!(close(pitch[1], 1.0) && close(duration[0], 1.0) && close(duration[1], 1.0), "{pitch:?} {duration:?}");
        let (pitch, duration) = frame_overlaps(&notes, 8, OaForm::Exact);
        assert!((pitch[0] - 0.00016822975194230594).abs() < 1e-9, "{pitch:?}");
        assert!((pitch[1] - 1.0).abs() < 1e-9, "{pitch:?}");
        assert!(duration[0].abs() < 1e-9 && (duration[1] - 1.0).abs() < 1e-9, "{duration:?}");
    }

    #[test]
    fn durations_are_seconds_at_the_metric_tempo() {
        // A quarter note at 120 bpm lasts half a second.
        assert_eq!(seconds(&Note { pitch: 60, start: Step(0), len: Step(4) }), 0.5);
    }

    #[test]
    fn sixteen_bars_give_seven_frames_and_six_adjacent_pairs() {
        let notes: Vec<Note> =
            (0..64).map(|i| Note { pitch: 60 + (i % 5) as u8, start: Step(i * 4), len: Step(2 + i % 3) }).collect();
        for form in [OaForm::Paper, OaForm::Exact] {
            let (pitch, duration) = frame_overlaps(&notes, 16, form);
            assert_eq!((pitch.len(), duration.len()), (6, 6));
        }
    }

    #[test]
    fn a_set_scored_against_itself_is_perfect() {
        let notes: Vec<Note> = (0..40)
            .map(|i| Note { pitch: 55 + (i * 7 % 12) as u8, start: Step(i * 6), len: Step(1 + i % 4) })
            .collect();
        let stats = SetStats::of([(&notes[..], 16), (&notes[..20], 16)], OaForm::Paper);
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
