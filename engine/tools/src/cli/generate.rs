//! `rebar generate`: generate new melodies from scratch.

use std::time::Instant;

use anyhow::Result;
use rebar_engine::engine::BarSelection;
use rebar_engine::melody::Melody;

use super::parse::parse_bpm;
use super::sampling::{interval_prior_note, revision_note, SamplingArgs};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Length in bars (rounded up to an even number, at most 64).
    #[arg(long, default_value_t = 16)]
    pub bars: u32,
    /// Tempo of the written file, 1 to 1000 BPM.
    #[arg(long, default_value_t = 120.0, value_parser = parse_bpm)]
    pub bpm: f64,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let started = Instant::now();
    args.sampling.check_output()?;
    let engine = args.sampling.engine()?;
    let bars = args.bars.clamp(2, engine.max_bars()).div_ceil(2) * 2;
    let silence =
        Melody { notes: Vec::new(), bars, bpm: args.bpm, meter: rebar_engine::midi::Meter::FOUR_FOUR, key: None };
    let request = args.sampling.request(BarSelection::all(bars));
    let sampling = Instant::now();
    let results = engine.infill(&silence, &request, &std::sync::atomic::AtomicBool::new(false), &mut |_| {})?;
    let sampled = sampling.elapsed();
    let paths = args.sampling.write(&results)?;
    println!(
        "generated {} melodies of {bars} bars with {:?}, {}, {} (seed {}) in {:.0} ms ({:.0} ms in all)",
        results.len(),
        engine.tuning().sampler,
        revision_note(&engine, &request, bars),
        interval_prior_note(&engine),
        request.seed,
        sampled.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
    for path in paths {
        println!("  wrote {}", path.display());
    }
    Ok(())
}
