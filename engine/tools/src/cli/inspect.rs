//! `rebar inspect`: print a MIDI file's tracks, tempo, meter and key, and its melody as a text piano roll.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rebar_engine::melody::{quantize, roll};
use rebar_engine::midi::{read_file, MelodySelector};
use rebar_engine::time::ticks_to_steps;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The MIDI file (type 0 or 1, any PPQ).
    pub file: PathBuf,
    /// The melody part: its index in the list printed, or text in its name. Default: the part
    /// with the most notes.
    #[arg(long)]
    pub track: Option<MelodySelector>,
}

pub fn run(args: InspectArgs) -> Result<()> {
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
