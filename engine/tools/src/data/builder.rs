//! `rebar dataset`: walks a folder tree of MIDI files in parallel and builds the training data
//! of both models:
//! - the distinct 2-bar windows for the VAE (see [`super::windows`]), with how often each occurs;
//! - each tune's whole token sequence, tagged with its path, for the prior to crop.
//!
//! One bad file never stops a run: it is skipped and counted under its reason. Transposition
//! augmentation happens at training time, so it does not multiply the cache.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
use rayon::prelude::*;

use rebar_engine::melody::{quantize, tokens, QuantizeReport};
use rebar_engine::midi::{read_file, MelodySelector, MidiError};
use rebar_engine::time::STEPS_PER_BAR;
use rebar_engine::windows::{has_notes, is_training_window, windows, Window, WINDOW_STEPS};

/// How to read each file.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Which part of each file is the melody.
    pub selector: MelodySelector,
    /// Read files that state no meter as 4/4 (MIDI's default) instead of skipping them.
    pub allow_missing_meter: bool,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
}

/// One tune's whole melody as token ids, a whole number of bars long.
#[derive(Clone, Debug, PartialEq)]
pub struct Tune {
    /// The file's path relative to the dataset root, with `/` separators.
    pub id: String,
    pub tokens: Vec<u8>,
}

/// What a build read, skipped and produced. Stored in the cache beside the data.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// `.mid` / `.midi` files found under the root.
    pub files_found: u64,
    /// Files that became tunes.
    pub tunes: u64,
    /// Files skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// One example file per skip reason, with its full error.
    pub skipped_examples: BTreeMap<String, String>,
    /// Grid bars over all tunes.
    pub bars: u64,
    /// 2-bar windows (stride one bar) in which at least one note starts.
    pub windows_with_notes: u64,
    /// Of those, windows in which a chord was reduced to its top note.
    pub windows_with_chords: u64,
    /// Windows with notes and at most one bar of consecutive silence.
    pub windows_kept: u64,
    /// Distinct kept windows: the VAE's training set.
    pub distinct_windows: u64,
    /// Quantization counts summed over all tunes.
    pub quantize: QuantizeReport,
    /// Tunes read as 4/4 because they state no meter (only with `allow_missing_meter`).
    pub meter_assumed: u64,
    /// Wall-clock time of the build.
    pub seconds: f64,
}

/// The training data built from one folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    /// Distinct training windows, in order of first appearance.
    pub windows: Vec<Window>,
    /// How many times each distinct window occurs.
    pub window_counts: Vec<u32>,
    /// Every tune, in path order.
    pub tunes: Vec<Tune>,
    pub summary: Summary,
}

/// Why a file was skipped; its `Display` is the summary's key.
#[derive(Debug, thiserror::Error)]
enum Skip {
    #[error("{0}")]
    Midi(MidiError),
    #[error("no meter stated")]
    MissingMeter,
}

impl Skip {
    /// The reason as a summary key: the kind of error, without file-specific detail.
    fn reason(&self) -> String {
        match self {
            Skip::Midi(MidiError::UnsupportedMeter { meter, .. }) => format!("meter {meter}"),
            Skip::Midi(MidiError::MeterChangeOffBar { .. }) => "meter change off a bar line".into(),
            Skip::Midi(MidiError::Malformed(_)) => "malformed MIDI".into(),
            Skip::Midi(MidiError::Io { .. }) => "unreadable file".into(),
            Skip::Midi(MidiError::NotAFile { .. }) => "not a regular file".into(),
            Skip::Midi(MidiError::TooLarge { .. }) => "file too large".into(),
            Skip::Midi(MidiError::TooManyNotes { .. }) => "too many notes".into(),
            Skip::Midi(MidiError::TooLong { .. }) => "melody too long".into(),
            Skip::Midi(MidiError::NoNotes) => "no notes".into(),
            Skip::Midi(MidiError::SmpteTiming) => "SMPTE timing".into(),
            Skip::Midi(MidiError::TrackNotFound { .. }) => "no such track".into(),
            Skip::Midi(MidiError::Write(_) | MidiError::WriteIo { .. }) => "write error".into(),
            Skip::MissingMeter => "no meter stated".into(),
        }
    }
}

/// One file's contribution before windows from all files are deduplicated.
struct TuneResult {
    tune: Tune,
    report: QuantizeReport,
    windows_with_notes: u64,
    windows_with_chords: u64,
    kept_windows: Vec<Window>,
}

/// Builds the dataset from every MIDI file under `root`.
pub fn build_dataset(root: &Path, options: &BuildOptions) -> std::io::Result<Dataset> {
    let started = Instant::now();
    let files = midi_files_under(root)?;

    let progress = if options.progress {
        ProgressBar::new(files.len() as u64).with_style(
            ProgressStyle::with_template("{spinner} {wide_bar} {pos}/{len} files, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let results: Vec<(PathBuf, Result<TuneResult, Skip>)> = files
        .par_iter()
        .progress_with(progress.clone())
        .map(|path| (path.clone(), read_tune(root, path, options)))
        .collect();
    progress.finish_and_clear();

    let mut dataset = Dataset::default();
    let summary = &mut dataset.summary;
    summary.files_found = files.len() as u64;
    let mut index_of: HashMap<Window, usize> = HashMap::new();
    for (path, result) in results {
        match result {
            Ok(tune) => {
                summary.tunes += 1;
                summary.bars += (tune.tune.tokens.len() / STEPS_PER_BAR as usize) as u64;
                summary.windows_with_notes += tune.windows_with_notes;
                summary.windows_with_chords += tune.windows_with_chords;
                summary.windows_kept += tune.kept_windows.len() as u64;
                summary.quantize.accumulate(&tune.report);
                summary.meter_assumed += u64::from(tune.report.meter_assumed);
                for window in tune.kept_windows {
                    let index = *index_of.entry(window).or_insert_with(|| {
                        dataset.windows.push(window);
                        dataset.window_counts.push(0);
                        dataset.windows.len() - 1
                    });
                    dataset.window_counts[index] += 1;
                }
                dataset.tunes.push(tune.tune);
            }
            Err(skip) => {
                let reason = skip.reason();
                *summary.skipped.entry(reason.clone()).or_default() += 1;
                summary.skipped_examples.entry(reason).or_insert_with(|| format!("{}: {skip}", path.display()));
            }
        }
    }
    summary.distinct_windows = dataset.windows.len() as u64;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(dataset)
}

/// Every `.mid` / `.midi` file under `root` (any case), in a stable order.
pub fn midi_files_under(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name() {
        let entry = entry.map_err(std::io::Error::other)?;
        let is_midi = entry
            .path()
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"));
        if entry.file_type().is_file() && is_midi {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// Reads one file into a tune and its windows.
fn read_tune(root: &Path, path: &Path, options: &BuildOptions) -> Result<TuneResult, Skip> {
    let file = read_file(path).map_err(Skip::Midi)?;
    if file.meters.is_empty() && !options.allow_missing_meter {
        return Err(Skip::MissingMeter);
    }
    let part = file.select(&options.selector).map_err(Skip::Midi)?;
    let (melody, report) = quantize(&file, part).map_err(Skip::Midi)?;
    let ids = tokens::encode(&melody.notes, melody.steps());

    let mut result = TuneResult {
        tune: Tune { id: relative_id(root, path), tokens: Vec::new() },
        report,
        windows_with_notes: 0,
        windows_with_chords: 0,
        kept_windows: Vec::new(),
    };
    for (bar, window) in windows(&ids) {
        if !has_notes(window) {
            continue;
        }
        result.windows_with_notes += 1;
        let span = bar * STEPS_PER_BAR..bar * STEPS_PER_BAR + WINDOW_STEPS as u32;
        if result.report.chord_steps.iter().any(|step| span.contains(&step.0)) {
            result.windows_with_chords += 1;
        }
        if is_training_window(window) {
            let mut owned: Window = [0; WINDOW_STEPS];
            owned.copy_from_slice(window);
            result.kept_windows.push(owned);
        }
    }
    result.tune.tokens = ids;
    Ok(result)
}

/// The path relative to the root, with `/` separators on every platform.
fn relative_id(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

impl Summary {
    /// A human-readable report, as `rebar dataset` prints it.
    pub fn render(&self) -> String {
        let q = &self.quantize;
        let percent = |part: u64, whole: u64| if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 };
        let mut lines = vec![
            format!("files found          {}", self.files_found),
            format!("tunes read           {} ({} bars)", self.tunes, self.bars),
            format!("files skipped        {}", self.skipped.values().sum::<u64>()),
        ];
        for (reason, count) in &self.skipped {
            lines.push(format!("  {count:>6}  {reason}   e.g. {}", self.skipped_examples[reason]));
        }
        lines.extend([
            format!("notes read           {}", q.notes_in),
            format!(
                "off-grid onsets      {} snapped ({:.2}%)",
                q.snapped_onsets,
                percent(q.snapped_onsets, q.notes_in)
            ),
            format!(
                "notes dropped        {} shorter than a step, {} under a chord's top note",
                q.dropped_short, q.dropped_polyphony
            ),
            format!("octave-shifted notes {}", q.octave_shifted),
            format!(
                "windows with notes   {} ({} with a chord reduced to its top note)",
                self.windows_with_notes, self.windows_with_chords
            ),
            format!("windows kept         {} (at most one bar of consecutive silence)", self.windows_kept),
            format!("distinct windows     {}", self.distinct_windows),
        ]);
        if self.meter_assumed > 0 {
            lines.push(format!("meter assumed 4/4    {} tunes", self.meter_assumed));
        }
        lines.push(format!("time                 {:.1} s", self.seconds));
        lines.join("\n")
    }
}
