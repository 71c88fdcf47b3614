//! `rebar infill`: rewrite selected bars of a MIDI melody (the main job).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use rebar_engine::engine::BarSelection;

use super::models::read_melody;
use super::parse::parse_range;
use super::sampling::{interval_prior_note, revision_note, SamplingArgs};

#[derive(clap::Args)]
pub struct InfillArgs {
    /// The clip: a MIDI file whose melody (the part with the most notes) is rewritten.
    pub input: PathBuf,
    /// Bars to rewrite, 1-based and inclusive, e.g. 9-16 or 5 (one bar).
    #[arg(long, value_parser = parse_range)]
    pub bars: (u32, u32),
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: InfillArgs) -> Result<()> {
    let started = Instant::now();
    args.sampling.check_output()?;
    let engine = args.sampling.engine()?;
    let loaded = started.elapsed();
    let clip = read_melody(&args.input)?;
    let (first, last) = args.bars;
    anyhow::ensure!(
        first >= 1 && last <= clip.bars,
        "--bars {first}-{last} is outside the clip's bars 1-{}",
        clip.bars
    );
    let request = args.sampling.request(BarSelection::range(first - 1, last - 1, clip.bars));
    let sampling = Instant::now();
    let results = engine.infill(&clip, &request, &std::sync::atomic::AtomicBool::new(false), &mut |_| {})?;
    let sampled = sampling.elapsed();
    let paths = args.sampling.write(&results)?;
    let applied = engine.applied(&request, &request.selection.segments_of_clip(clip.bars));
    println!(
        "rewrote bars {first}-{last} of {} ({} bars) in {} variations with {:?}, context guidance {}, noise scale {} ({} in the opening steps), {}, {}{} (seed {}): models loaded in {:.0} ms, sampled in {:.0} ms",
        args.input.display(),
        clip.bars,
        results.len(),
        engine.tuning().sampler,
        applied.context_guidance,
        applied.noise_scale * request.temperature,
        applied.opening_noise_scale * request.temperature,
        revision_note(&engine, &request, clip.bars),
        interval_prior_note(&engine),
        request.key.as_ref().map_or(String::new(), |k| format!(", key {k}")),
        request.seed,
        loaded.as_secs_f64() * 1e3,
        sampled.as_secs_f64() * 1e3
    );
    for path in paths {
        println!("  wrote {}", path.display());
    }
    Ok(())
}
