//! `rebar interpolate`: morph one melody into another through the VAE's latents.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use rebar_engine::midi::write_melody;
use rebar_engine::vae::segments::{melody_from_segments, to_segments};
use rebar_engine::vae::tools;

use super::models::{load_vae, read_melody};

#[derive(clap::Args)]
pub struct InterpolateArgs {
    /// The melody to start from.
    pub a: PathBuf,
    /// The melody to end at. Both are cut to the shorter one's length.
    pub b: PathBuf,
    /// Number of clips, including both ends (at least 2).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Output MIDI file: a new file, or a regular file it replaces atomically. A symbolic link
    /// is followed and its target written; a device, FIFO or folder is refused.
    #[arg(short, long)]
    pub output: PathBuf,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    pub vae: Option<PathBuf>,
}

pub fn run(args: InterpolateArgs) -> Result<()> {
    anyhow::ensure!(args.steps >= 2, "--steps must be at least 2 (both ends)");
    let started = Instant::now();
    let model = load_vae(args.vae.as_deref())?;
    let (a, b) = (read_melody(&args.a)?, read_melody(&args.b)?);
    let clips = tools::interpolate(&model, &to_segments(&a), &to_segments(&b), args.steps)?;
    let joined: Vec<_> = clips.iter().flatten().copied().collect();
    write_melody(&melody_from_segments(&joined, &a), &args.output)?;
    println!(
        "wrote {} clips of {} bars from {} to {} into {} in {:.0} ms",
        args.steps,
        clips[0].len() * 2,
        args.a.display(),
        args.b.display(),
        args.output.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
