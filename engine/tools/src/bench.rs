//! The latency of the main job, as `rebar bench` reports it: infilling 8 bars of a 32-bar clip
//! in 4 variations with the default sampler, against the paper's 1000-step ancestral sampler in
//! the same run, and regenerating every bar (a draft and its revision). p50 and p95 of
//! wall-clock time per call.

use std::time::Instant;

use rebar_engine::engine::{BarSelection, Engine, EngineError, Request, Tuning};
use rebar_engine::melody::{Melody, Note};
use rebar_engine::sample::Sampler;
use rebar_engine::time::Bar;

/// Times the engine on `reel` repeated to 32 bars: `runs` calls of the shipped tuning (and of
/// whole-clip generation), `ancestral_runs` of the ancestral sampler, after one warm-up call
/// each. `engine` comes with the shipped tuning, and the paper's sampler is timed on a copy of
/// it with that sampler. Returns the figures as JSON.
pub fn bench_infill(
    engine: Engine,
    reel: &Melody,
    runs: usize,
    ancestral_runs: usize,
) -> Result<serde_json::Value, EngineError> {
    let (runs, ancestral_runs) = (runs.max(1), ancestral_runs.max(1));
    let mut clip = Melody { notes: Vec::new(), bars: 32, ..reel.clone() };
    for copy in 0..32u32.div_ceil(reel.bars) {
        let offset = Bar(copy * reel.bars).start();
        clip.notes.extend(reel.notes.iter().map(|n| Note { start: n.start + offset, ..*n }));
    }
    clip.notes.retain(|n| n.end().0 <= 32 * 16);
    let selection = BarSelection::range(12, 19, 32);
    let never = std::sync::atomic::AtomicBool::new(false);
    let time = |engine: &Engine, request: Request, runs: usize| -> Result<(f64, f64), EngineError> {
        engine.infill(&clip, &request, &never, &mut |_| {})?; // warm-up
        let mut ms: Vec<f64> = Vec::with_capacity(runs);
        for seed in 0..runs as u64 {
            let started = Instant::now();
            engine.infill(&clip, &Request { seed, ..request.clone() }, &never, &mut |_| {})?;
            ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        Ok((pick(0.5), pick(0.95)))
    };
    let fast = Request { variations: 4, ..Request::new(selection.clone()) };
    let shipped = engine.tuning().clone();
    let (fast_p50, fast_p95) = time(&engine, fast.clone(), runs)?;
    // Every bar regenerated: generation from scratch, a draft and its revision.
    let whole = Request { selection: BarSelection::all(32), ..fast.clone() };
    let (whole_p50, whole_p95) = time(&engine, whole.clone(), runs)?;
    let applied = engine.applied(&fast, &selection.segments_of_clip(32));
    let revised = engine.revision_of(&whole, 32).is_some();
    // The paper's sampler as the paper runs it: one model row per variation, no context guidance.
    let paper = Tuning { sampler: Sampler::Ancestral, context_guidance: 0.0, ..shipped.clone() };
    let (slow_p50, slow_p95) = time(&engine.with_tuning(paper)?, fast.clone(), ancestral_runs)?;
    let report = serde_json::json!({
        "task": "infill 8 bars of a 32-bar clip, 4 variations",
        "threads": candle_core::utils::get_num_threads(),
        "default": {
            "sampler": format!("{:?}", shipped.sampler),
            "context_guidance": shipped.context_guidance,
            "noise_scale": applied.noise_scale,
            "opening_noise_scale": applied.opening_noise_scale,
            "p50_ms": fast_p50, "p95_ms": fast_p95, "runs": runs,
        },
        "ancestral": {"sampler": "Ancestral (1000 steps)", "context_guidance": 0.0, "p50_ms": slow_p50, "p95_ms": slow_p95, "runs": ancestral_runs},
        "speedup_p50": slow_p50 / fast_p50,
        "whole_clip": {
            "task": "regenerate every bar of the 32-bar clip, 4 variations (draft and revision)",
            "revised": revised,
            "p50_ms": whole_p50, "p95_ms": whole_p95, "runs": runs,
        },
    });
    Ok(report)
}
