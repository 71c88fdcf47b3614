//! `rebar bench`: time the main job.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use rebar_engine::engine::{BarSelection, InfillOptions};
use rebar_engine::melody::Melody;
use rebar_engine::sample::Sampler;

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
    // A real 32-bar clip: a fixture reel, repeated.
    let reel = read_melody(Path::new("tests/fixtures/ryans_jimmy_holmes_reel.mid"))?;
    let mut clip = Melody { notes: Vec::new(), bars: 32, ..reel.clone() };
    for copy in 0..32u32.div_ceil(reel.bars) {
        let offset = rebar_engine::time::Bar(copy * reel.bars).start();
        clip.notes.extend(reel.notes.iter().map(|n| rebar_engine::melody::Note { start: n.start + offset, ..*n }));
    }
    clip.notes.retain(|n| n.end().0 <= 32 * 16);
    let selection = BarSelection::range(12, 19, 32);
    let never = std::sync::atomic::AtomicBool::new(false);
    let time = |selection: &BarSelection, options: InfillOptions, runs: usize| -> Result<(f64, f64)> {
        engine.infill(&clip, selection, &options, &never, &mut |_| {})?; // warm-up
        let mut ms: Vec<f64> = Vec::with_capacity(runs);
        for seed in 0..runs as u64 {
            let started = Instant::now();
            engine.infill(&clip, selection, &InfillOptions { seed, ..options.clone() }, &never, &mut |_| {})?;
            ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        Ok((pick(0.5), pick(0.95)))
    };
    let fast = InfillOptions { variations: 4, ..InfillOptions::default() };
    // The paper's sampler as the paper runs it: one model row per variation, no context guidance.
    let slow = InfillOptions { sampler: Sampler::Ancestral, context_guidance: 0.0, ..fast.clone() };
    let (fast_p50, fast_p95) = time(&selection, fast.clone(), args.runs.max(1))?;
    let (slow_p50, slow_p95) = time(&selection, slow, args.ancestral_runs.max(1))?;
    // Every bar regenerated: generation from scratch, a draft and its revision.
    let (whole_p50, whole_p95) = time(&BarSelection::all(32), fast.clone(), args.runs.max(1))?;
    let applied = engine.applied(&fast, &selection.segments_of_clip(32));
    let report = serde_json::json!({
        "task": "infill 8 bars of a 32-bar clip, 4 variations",
        "threads": candle_core::utils::get_num_threads(),
        "default": {
            "sampler": format!("{:?}", Sampler::DEFAULT),
            "context_guidance": fast.context_guidance,
            "noise_scale": applied.noise_scale,
            "opening_noise_scale": applied.opening_noise_scale,
            "p50_ms": fast_p50, "p95_ms": fast_p95, "runs": args.runs,
        },
        "ancestral": {"sampler": "Ancestral (1000 steps)", "context_guidance": 0.0, "p50_ms": slow_p50, "p95_ms": slow_p95, "runs": args.ancestral_runs},
        "speedup_p50": slow_p50 / fast_p50,
        "whole_clip": {
            "task": "regenerate every bar of the 32-bar clip, 4 variations (draft and revision)",
            "revised": engine.revision_of(&fast, &BarSelection::all(32), 32).is_some(),
            "p50_ms": whole_p50, "p95_ms": whole_p95, "runs": args.runs,
        },
    });
    let text = serde_json::to_string_pretty(&report)?;
    rebar_engine::fsutil::write_atomically(&args.json, text.as_bytes())?;
    println!("{text}");
    Ok(())
}
