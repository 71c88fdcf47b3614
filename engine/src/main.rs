//! `rebar`: the command line of Rebar's engine. Each subcommand is a thin argument struct over a
//! library call.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use rebar_engine::data::{build_dataset, save_dataset, BuildOptions};
use rebar_engine::melody::{quantize, roll};
use rebar_engine::midi::{read_file, MelodySelector};
use rebar_engine::time::ticks_to_steps;

/// Rebar rewrites selected bars of a MIDI melody with latent diffusion.
#[derive(Parser)]
#[command(name = "rebar", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a MIDI file's tracks, tempo, meter and key, and its melody as a text piano roll.
    Inspect(InspectArgs),
    /// Build a training cache from a folder tree of MIDI files.
    ///
    /// Every 2-bar window (stride one bar) with notes and at most one bar of consecutive silence
    /// becomes a VAE training window (deduplicated); every tune's whole melody is kept for the
    /// prior. Files in meters other than 4/4, 2/2, 2/4 and 4/2 are skipped and counted.
    Dataset(DatasetArgs),
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The MIDI file (type 0 or 1, any PPQ).
    file: PathBuf,
    /// The melody part: its index in the list printed, or text in its name. Default: the part
    /// with the most notes.
    #[arg(long)]
    track: Option<MelodySelector>,
}

#[derive(clap::Args)]
struct DatasetArgs {
    /// Folder to search, recursively, for .mid and .midi files.
    #[arg(long)]
    midi_dir: PathBuf,
    /// Where to write the cache (a safetensors file).
    #[arg(long)]
    out: PathBuf,
    /// The melody part of each file: an index or text in its name. Default: the part with the
    /// most notes.
    #[arg(long)]
    track: Option<MelodySelector>,
    /// Read files that state no meter as 4/4 (MIDI's default) instead of skipping them.
    #[arg(long)]
    allow_missing_meter: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Inspect(args) => inspect(args),
        Command::Dataset(args) => dataset(args),
    }
}

fn inspect(args: InspectArgs) -> Result<()> {
    let file = read_file(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    println!(
        "{}: type {}, {} ticks per quarter note, {} tracks",
        args.file.display(),
        file.format,
        file.ppq,
        file.track_count
    );
    let bar_of = |tick| ticks_to_steps(tick, file.ppq) / 16.0 + 1.0;
    for (tick, bpm) in &file.tempos {
        println!("  tempo {bpm:.2} BPM at bar {:.2}", bar_of(*tick));
    }
    if file.meters.is_empty() {
        println!("  no meter stated (MIDI default 4/4)");
    }
    for (tick, meter) in &file.meters {
        println!("  meter {meter} at bar {:.2}", bar_of(*tick));
    }
    for (tick, key) in &file.keys {
        println!("  key {key} at bar {:.2}", bar_of(*tick));
    }
    println!("parts:");
    for (index, part) in file.parts.iter().enumerate() {
        println!("  {index}: {} ({} notes)", part.label(), part.notes.len());
    }

    let selector = args.track.unwrap_or_default();
    let part = file.select(&selector).with_context(|| format!("choosing the melody of {}", args.file.display()))?;
    let (melody, report) = quantize(&file, part).with_context(|| format!("quantizing {}", args.file.display()))?;
    println!(
        "melody: {} ({} bars of 16 steps, {} notes; {} off-grid onsets snapped, {} short notes and {} chord notes dropped, {} moved by octaves)\n",
        part.label(),
        melody.bars,
        melody.notes.len(),
        report.snapped_onsets,
        report.dropped_short,
        report.dropped_polyphony,
        report.octave_shifted
    );
    print!("{}", roll::render(&melody));
    Ok(())
}

fn dataset(args: DatasetArgs) -> Result<()> {
    let started = Instant::now();
    let options = BuildOptions {
        selector: args.track.unwrap_or_default(),
        allow_missing_meter: args.allow_missing_meter,
        progress: true,
    };
    let dataset =
        build_dataset(&args.midi_dir, &options).with_context(|| format!("walking {}", args.midi_dir.display()))?;
    anyhow::ensure!(dataset.summary.files_found > 0, "no .mid or .midi files under {}", args.midi_dir.display());
    save_dataset(&dataset, &args.out)?;
    println!("{}", dataset.summary.render());
    if let Some(path) = args.summary_json {
        let json = serde_json::to_string_pretty(&dataset.summary)?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("wrote {} in {:.1} s", args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}
