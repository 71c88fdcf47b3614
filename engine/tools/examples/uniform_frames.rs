//! Where infilling makes rhythmically uniform frames. For every tune of a folder with 16 bars,
//! bars 5–12 are infilled (4 variations, the default sampler, as `rebar eval --task infill`),
//! and each 4-bar frame (2-bar hop, as the metric's) is marked uniform when its notes all have
//! one length. Prints, by frame, the share of uniform frames in the real tunes and in the
//! infills, split by whether the tune's kept frames (bars 1–4 and 13–16) are uniform.
//! A context guidance weight other than the default, and `off` to draw no repeats, can follow.
//!
//! `cargo run --release -p rebar-tools --example uniform_frames -- MIDI_DIR [WEIGHT] [off]`
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use candle_core::Device;
use rebar_engine::engine::{Engine, Repeats, Request, Tuning};
use rebar_engine::prior::TrainedPrior;
use rebar_engine::vae::MelodyVae;
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::eval::quality::{first_sixteen_bars, infill_selection};
use rebar_tools::eval::shape::frames_of_one_length;

const FRAMES: usize = 7;

#[derive(Default)]
struct Tally {
    uniform: [usize; FRAMES],
    frames: [usize; FRAMES],
}

impl Tally {
    fn add(&mut self, flags: &[Option<bool>]) {
        for (f, flag) in flags.iter().enumerate() {
            if let Some(u) = flag {
                self.frames[f] += 1;
                self.uniform[f] += usize::from(*u);
            }
        }
    }

    fn line(&self) -> String {
        (0..FRAMES)
            .map(|f| format!("{:.3}", self.uniform[f] as f64 / self.frames[f].max(1) as f64))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().context("usage: uniform_frames MIDI_DIR [WEIGHT] [off]")?;
    let mut tuning = Tuning::default();
    if let Some(weight) = args.get(1) {
        tuning.context_guidance = weight.parse().context("WEIGHT is a number")?;
    }
    let mut base = Request { variations: 4, ..Request::new(infill_selection()) };
    if args.get(2).is_some_and(|a| a == "off") {
        base.repeats = Repeats::Off;
    }
    let data = build_dataset(std::path::Path::new(&dir), &BuildOptions::default())?;
    let engine =
        Engine::new(MelodyVae::embedded(&Device::Cpu)?, TrainedPrior::embedded(&Device::Cpu)?)?.with_tuning(tuning)?;
    // [kept frames uniform: 0 none, 1 one, 2 both] × [real, generated]
    let mut tallies: [[Tally; 2]; 3] = Default::default();
    let mut tunes = [0usize; 3];
    for (i, tune) in first_sixteen_bars(&data.tunes).iter().enumerate() {
        let real = frames_of_one_length(tune);
        let group = usize::from(real[0] == Some(true)) + usize::from(real[FRAMES - 1] == Some(true));
        tunes[group] += 1;
        tallies[group][0].add(&real);
        let request = Request { seed: i as u64, ..base.clone() };
        for result in engine.infill(tune, &request, &AtomicBool::new(false), &mut |_| {})? {
            tallies[group][1].add(&frames_of_one_length(&result));
        }
    }
    for (group, name) in
        ["no kept frame uniform", "one kept frame uniform", "both kept frames uniform"].iter().enumerate()
    {
        println!("{name} ({} tunes)", tunes[group]);
        println!("       real: {}", tallies[group][0].line());
        println!("  generated: {}", tallies[group][1].line());
    }
    Ok(())
}
