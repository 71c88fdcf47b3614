//! The shape of a set of melodies: what the paper's mean and variance of adjacent-frame OAs
//! hide. Quantiles of the OAs, the variance split within and between melodies, how much of a
//! set's self-similarity is literal repetition, and per-window means of pitch, length and
//! silence. A diagnostic beside the paper's metric (Mittal et al., 2021, eq. 10), not part of it.

use rebar_engine::melody::Melody;
use rebar_engine::time::{STEPS_PER_BAR, STEPS_PER_BEAT};

use crate::metrics::{frame_overlaps, OaForm, OverlapStats, FRAME_BARS, HOP_BARS};

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
pub fn two_bar_windows(melody: &Melody) -> Vec<Vec<(u32, u8, u32)>> {
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
pub fn variance_split(groups: &[Vec<f64>]) -> [f64; 2] {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eval::quality::{melody_stats, EVAL_BARS};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rebar_engine::melody::Note;
    use rebar_engine::midi::Meter;
    use rebar_engine::time::Step;

    /// 16 bars of notes whose pitches and lengths follow `seed`: every melody a different draw.
    pub(crate) fn varied_melody(seed: u64) -> Melody {
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
