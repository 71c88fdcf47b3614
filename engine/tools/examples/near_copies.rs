//! How closely infilled bars copy the kept ones. For every tune of a folder with 16 bars, bars
//! 5–12 are infilled (4 variations, the default sampler, as `rebar eval --task infill`), and each
//! of the 2-bar windows 3–6 is compared token by token with the nearest kept window (windows
//! 1, 2, 7, 8): exact copies, near copies (1–2 of 32 tokens differ), loose ones (3–6) and new
//! material, beside the same counts for the real tunes' own windows 3–6.
//!
//! `cargo run --release -p rebar-tools --example near_copies -- MIDI_DIR`
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use candle_core::Device;
use rebar_engine::engine::{Engine, Request};
use rebar_engine::prior::TrainedPrior;
use rebar_engine::vae::segments::to_segments;
use rebar_engine::vae::MelodyVae;
use rebar_engine::windows::Window;
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::eval::quality::{first_sixteen_bars, infill_selection};

const KEPT: [usize; 4] = [0, 1, 6, 7];
const LABELS: [&str; 4] = ["exact", "1-2 tokens", "3-6 tokens", "more"];

/// Which of the four bins the nearest kept window's token distance falls in.
fn bin(window: &Window, segments: &[Window]) -> usize {
    let distance =
        KEPT.iter().map(|&k| window.iter().zip(&segments[k]).filter(|(a, b)| a != b).count()).min().unwrap_or(32);
    match distance {
        0 => 0,
        1..=2 => 1,
        3..=6 => 2,
        _ => 3,
    }
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os().nth(1).context("usage: near_copies MIDI_DIR")?;
    let data = build_dataset(std::path::Path::new(&dir), &BuildOptions::default())?;
    let engine = Engine::new(MelodyVae::embedded(&Device::Cpu)?, TrainedPrior::embedded(&Device::Cpu)?)?;
    let selection = infill_selection();
    let (mut real, mut generated) = ([0usize; 4], [0usize; 4]);
    for (i, tune) in first_sixteen_bars(&data.tunes).iter().enumerate() {
        let segments = to_segments(tune);
        for window in &segments[2..6] {
            real[bin(window, &segments)] += 1;
        }
        let request = Request { seed: i as u64, ..Request::new(selection.clone()) };
        for result in engine.infill(tune, &request, &AtomicBool::new(false), &mut |_| {})? {
            for window in &to_segments(&result)[2..6] {
                generated[bin(window, &segments)] += 1;
            }
        }
    }
    for (name, counts) in [("real", real), ("generated", generated)] {
        let total = counts.iter().sum::<usize>().max(1) as f64;
        let shares: Vec<String> =
            LABELS.iter().zip(counts).map(|(label, c)| format!("{label} {:.3}", c as f64 / total)).collect();
        println!("{name:>9}: {}", shares.join(", "));
    }
    Ok(())
}
