//! `rebar dataset`: build a training cache from a folder tree of MIDI files.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use rebar_engine::midi::MelodySelector;
use rebar_tools::data::{build_dataset, save_dataset, BuildOptions};

#[derive(clap::Args)]
pub struct DatasetArgs {
    /// Folder to search, recursively, for .mid and .midi files.
    #[arg(long)]
    pub midi_dir: PathBuf,
    /// Where to write the cache (a safetensors file).
    #[arg(long)]
    pub out: PathBuf,
    /// The melody part of each file: an index or text in its name. Default: the part with the
    /// most notes.
    #[arg(long)]
    pub track: Option<MelodySelector>,
    /// Read files that state no meter as 4/4 (MIDI's default) instead of skipping them.
    #[arg(long)]
    pub allow_missing_meter: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
}

pub fn run(args: DatasetArgs) -> Result<()> {
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
        rebar_engine::fsutil::write_atomically(&path, json.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("wrote {} in {:.1} s", args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}
