//! `rebar attribute`: move a melody along a latent attribute vector.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use rebar_engine::midi::write_melody;
use rebar_engine::vae::segments::{melody_from_segments, to_segments};
use rebar_engine::vae::tools::{self, DENSITY};

use super::models::{load_vae, read_melody};
use super::parse::parse_density;

#[derive(clap::Args)]
pub struct AttributeArgs {
    /// The melody to change.
    pub input: PathBuf,
    /// How far to move along the note-density vector: 1 adds the full gap between the densest
    /// and sparsest quarter of the training windows, negative values thin the melody out.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_density)]
    pub density: f32,
    /// Output MIDI file: a new file, or a regular file it replaces atomically. A symbolic link
    /// is followed and its target written; a device, FIFO or folder is refused.
    #[arg(short, long)]
    pub output: PathBuf,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    pub vae: Option<PathBuf>,
}

pub fn run(args: AttributeArgs) -> Result<()> {
    let started = Instant::now();
    let model = load_vae(args.vae.as_deref())?;
    let vector = model.attribute(DENSITY).context("the VAE file has no note-density vector")?.to_vec();
    let melody = read_melody(&args.input)?;
    let segments = to_segments(&melody);
    let changed = melody_from_segments(&tools::apply_attribute(&model, &segments, &vector, args.density)?, &melody);
    write_melody(&changed, &args.output)?;
    println!(
        "density {:+}: {} notes became {} over {} bars; wrote {} in {:.0} ms",
        args.density,
        melody.notes.len(),
        changed.notes.len(),
        changed.bars,
        args.output.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
