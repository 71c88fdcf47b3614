//! `rebar bench`: time the main job.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rebar_tools::bench::bench_infill;

use super::models::{load_engine, read_melody};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Where to write the figures.
    #[arg(long)]
    pub json: PathBuf,
    /// Timed runs of the default sampler.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Timed runs of the 1000-step ancestral sampler.
    #[arg(long, default_value_t = 5)]
    pub ancestral_runs: usize,
    /// VAE weights file. Default: the weights built into this binary.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// Prior weights file. Default: the weights built into this binary.
    #[arg(long)]
    pub prior: Option<PathBuf>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let engine = load_engine(args.vae.as_deref(), args.prior.as_deref())?;
    // A real clip: a fixture reel, repeated to 32 bars.
    let reel = read_melody(Path::new("tests/fixtures/ryans_jimmy_holmes_reel.mid"))?;
    let report = bench_infill(engine, &reel, args.runs, args.ancestral_runs)?;
    let text = serde_json::to_string_pretty(&report)?;
    rebar_engine::fsutil::write_atomically(&args.json, text.as_bytes())?;
    println!("{text}");
    Ok(())
}
