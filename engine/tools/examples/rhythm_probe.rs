//! Where generated rhythm varies from frame to frame more than real rhythm does. For the first
//! 16 bars of every tune of a folder and for sets built from them, this prints:
//! - the duration OAs of adjacent 4-bar frames (the paper's form): mean, variance, and the
//!   variance within tunes; by place in the melody; and split by kind of pair: both frames of one
//!   note length (`UU`), one of them (`UV`), neither (`VV`);
//! - per 2-bar window: how often its notes all have one length, its mean note length by octave of
//!   beats, how much that varies within tunes against between them, and how it correlates one and
//!   two windows apart;
//! - the distance in octaves between adjacent windows' mean lengths, and by place how often it is
//!   an octave or more.
//!
//! Sets: the real tunes; their latents decoded (the VAE's ceiling); the same with Gaussian noise
//! added in the prior's scale (how sensitive decoding is to the prior's errors); their windows
//! shuffled across tunes at each place (the real marginals, no relation between neighbours);
//! N(0, I) latents; generation from scratch in one pass and with the revision pass (N sequences
//! each).
//!
//! The generated sets use the shipped engine, changed by comma-separated settings: `ancestral`
//! (the paper's 1000 ancestral steps), a number K (DDIM over K stochastic steps), `no-repeats`
//! (no repeat plan), `no-redraw` (accidental copies kept), `prior=FILE` (another prior file).
//!
//! `cargo run --release -p rebar-tools --example rhythm_probe -- MIDI_DIR [N] [SEED] [SETTINGS]`
use anyhow::Context;
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rebar_engine::engine::{Engine, Repeats, Request, Tuning};
use rebar_engine::melody::Melody;
use rebar_engine::prior::TrainedPrior;
use rebar_engine::sample::{Sampler, Spacing};
use rebar_engine::time::STEPS_PER_BEAT;
use rebar_engine::vae::segments::{melody_from_segments, to_segments};
use rebar_engine::vae::MelodyVae;
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::eval::quality::{evaluate_uncond, first_sixteen_bars};
use rebar_tools::eval::shape::{frames_of_one_length, two_bar_windows, variance_split};
use rebar_tools::metrics::{frame_overlaps, OaForm, OverlapStats};

/// A melody's note lengths in steps, by 2-bar window.
fn window_lengths(melody: &Melody) -> Vec<Vec<u32>> {
    two_bar_windows(melody).iter().map(|w| w.iter().map(|&(_, _, len)| len).collect()).collect()
}

fn one_length(lengths: &[u32]) -> bool {
    lengths.iter().all(|&l| l == lengths[0])
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn correlation(pairs: &[(f64, f64)]) -> f64 {
    let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    let (a, b) = (OverlapStats::of(&a), OverlapStats::of(&b));
    let covariance = mean(&pairs.iter().map(|(x, y)| (x - a.mean) * (y - b.mean)).collect::<Vec<_>>());
    covariance / (a.variance * b.variance).sqrt()
}

fn report(name: &str, melodies: &[Melody]) {
    // Duration OAs by kind of pair.
    let mut by_kind: [Vec<f64>; 3] = Default::default();
    let mut by_melody = Vec::new();
    let mut by_place: [Vec<f64>; 6] = Default::default();
    for melody in melodies {
        let (_, durations) = frame_overlaps(&melody.notes, melody.bars, OaForm::Paper);
        if durations.len() == by_place.len() {
            for (place, &oa) in durations.iter().enumerate() {
                by_place[place].push(oa);
            }
        }
        let kinds: Vec<usize> = frames_of_one_length(melody)
            .windows(2)
            .filter_map(|p| match (p[0], p[1]) {
                (Some(a), Some(b)) => Some(2 - usize::from(a) - usize::from(b)),
                _ => None,
            })
            .collect();
        for (&oa, &kind) in durations.iter().zip(&kinds) {
            by_kind[kind].push(oa);
        }
        by_melody.push(durations);
    }
    let all: Vec<f64> = by_melody.concat();
    let OverlapStats { mean: total_mean, variance: total_var, .. } = OverlapStats::of(&all);
    println!("\n== {name}: {} melodies, {} pairs", melodies.len(), all.len());
    println!(
        "duration OA mean {total_mean:.4} var {total_var:.5} (within {:.5}), share at 1 {:.3}",
        variance_split(&by_melody)[0],
        all.iter().filter(|&&d| (d - 1.0).abs() < 1e-9).count() as f64 / all.len() as f64
    );
    println!(
        "  duration OA by pair place, mean/variance: {}",
        by_place
            .iter()
            .map(|v| OverlapStats::of(v))
            .map(|stats| format!("{:.3}/{:.4}", stats.mean, stats.variance))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (kind, label) in ["UU", "UV", "VV"].iter().enumerate() {
        let values = &by_kind[kind];
        let var_part = values.iter().map(|d| (d - total_mean).powi(2)).sum::<f64>() / all.len() as f64;
        let low = values.iter().filter(|&&d| d < 0.8).count() as f64 / all.len() as f64;
        println!(
            "  {label}: share {:.3}  mean OA {:.4}  part of var {:.5}  pairs below 0.8 (of all) {:.3}",
            values.len() as f64 / all.len() as f64,
            mean(values),
            var_part,
            low
        );
    }
    // Per window: one length, mean length, lag correlations, within/between variance.
    let (mut uniform, mut windows_with_notes) = (0usize, 0usize);
    let (mut lag1, mut lag2) = (Vec::new(), Vec::new());
    let mut log_steps = Vec::new();
    // Per place of a pair of adjacent windows: how many pairs, and how many jump an octave or more.
    let mut jumps = [[0usize; 2]; 7];
    let mut uniform_next = [[0usize; 2]; 2];
    let (mut per_tune, mut all_lengths): (Vec<Vec<f64>>, Vec<f64>) = (Vec::new(), Vec::new());
    for melody in melodies {
        let windows = window_lengths(melody);
        let means: Vec<Option<f64>> = windows
            .iter()
            .map(|w| {
                (!w.is_empty())
                    .then(|| w.iter().map(|&l| f64::from(l) / f64::from(STEPS_PER_BEAT)).sum::<f64>() / w.len() as f64)
            })
            .collect();
        let flags: Vec<Option<bool>> = windows.iter().map(|w| (!w.is_empty()).then(|| one_length(w))).collect();
        for flag in flags.iter().flatten() {
            windows_with_notes += 1;
            uniform += usize::from(*flag);
        }
        for p in flags.windows(2) {
            if let (Some(a), Some(b)) = (p[0], p[1]) {
                uniform_next[usize::from(a)][usize::from(b)] += 1;
            }
        }
        for (k, m) in means.iter().enumerate() {
            if let (Some(a), Some(Some(b))) = (m, means.get(k + 1)) {
                lag1.push((*a, *b));
                let step = (a.log2() - b.log2()).abs();
                log_steps.push(step);
                if let Some(place) = jumps.get_mut(k) {
                    place[0] += 1;
                    place[1] += usize::from(step >= 1.0);
                }
            }
            if let (Some(a), Some(Some(b))) = (m, means.get(k + 2)) {
                lag2.push((*a, *b));
            }
        }
        let present: Vec<f64> = means.iter().flatten().copied().collect();
        all_lengths.extend(&present);
        per_tune.push(present);
    }
    // Histogram of window mean lengths by octave of beats: [< 1/4), [1/4, 1/2), … [≥ 4].
    let mut octaves = [0usize; 6];
    for length in &all_lengths {
        octaves[((length.log2() + 3.0).floor().clamp(0.0, 5.0)) as usize] += 1;
    }
    let mut steps_sorted = log_steps.clone();
    steps_sorted.sort_by(f64::total_cmp);
    let at = |q: f64| steps_sorted.get(((steps_sorted.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0.0);
    println!(
        "window mean length by octave (<1/4, 1/4, 1/2, 1, 2, >=4 beats): {}; |log2 step| 50/90/99%: {:.3} {:.3} {:.3}",
        octaves.iter().map(|c| format!("{:.3}", *c as f64 / all_lengths.len() as f64)).collect::<Vec<_>>().join(" "),
        at(0.5),
        at(0.9),
        at(0.99)
    );
    println!(
        "share of adjacent windows whose mean lengths differ by an octave or more, by place: {}",
        jumps.iter().map(|[n, j]| format!("{:.3}", *j as f64 / (*n).max(1) as f64)).collect::<Vec<_>>().join(" ")
    );
    let overall = mean(&all_lengths);
    let [within, between] = variance_split(&per_tune);
    let p_uu = uniform_next[1][1] as f64 / (uniform_next[1][0] + uniform_next[1][1]).max(1) as f64;
    let p_vu = uniform_next[0][1] as f64 / (uniform_next[0][0] + uniform_next[0][1]).max(1) as f64;
    println!(
        "windows of one length {:.3}; P(next one length | one length) {p_uu:.3}, (| mixed) {p_vu:.3}",
        uniform as f64 / windows_with_notes.max(1) as f64
    );
    println!(
        "window mean length (beats): mean {overall:.3}, variance within tunes {within:.4}, between {between:.4}; \
         lag-1 corr {:.3}, lag-2 corr {:.3}; mean |log2 step| {:.3}",
        correlation(&lag1),
        correlation(&lag2),
        mean(&log_steps)
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().context("usage: rhythm_probe MIDI_DIR [N] [SEED]")?;
    let count: usize = args.get(1).map_or(Ok(400), |a| a.parse()).context("N is a count")?;
    let seed: u64 = args.get(2).map_or(Ok(0), |a| a.parse()).context("SEED is a number")?;
    let device = Device::Cpu;
    let data = build_dataset(std::path::Path::new(&dir), &BuildOptions::default())?;
    let real = first_sixteen_bars(&data.tunes);
    let mut tuning = Tuning::default();
    let mut prior = TrainedPrior::embedded(&device)?;
    let mut request = Request { seed, ..Request::new(rebar_engine::engine::BarSelection::all(16)) };
    for setting in args.get(3).map(|a| a.split(',').collect::<Vec<_>>()).unwrap_or_default() {
        match setting {
            "ancestral" => tuning.sampler = Sampler::Ancestral,
            "no-repeats" => request.repeats = Repeats::Off,
            "no-redraw" => tuning.redraw_copies = 0,
            file if file.starts_with("prior=") => {
                prior = TrainedPrior::load(std::path::Path::new(&file[6..]), &device)?
            }
            k => {
                let steps = k.parse().context("a setting is ancestral, no-repeats, no-redraw or a step count")?;
                tuning.sampler = Sampler::Ddim { steps, eta: 1.0, spacing: Spacing::Uniform };
            }
        }
    }
    let engine = Engine::new(MelodyVae::embedded(&device)?, prior)?.with_tuning(tuning.clone())?;
    report("real tunes", &real);

    let segments: Vec<Vec<_>> = real.iter().map(to_segments).collect();
    let decode = |windows: &[_]| -> anyhow::Result<Vec<_>> {
        let z = engine.vae.encode(windows)?;
        Ok(engine.vae.decode_melody(&z, &|_| true, engine.tuning().interval_weight)?)
    };
    let recon: Vec<Melody> = real
        .iter()
        .zip(&segments)
        .map(|(m, s)| Ok(melody_from_segments(&decode(s)?, m)))
        .collect::<anyhow::Result<_>>()?;
    report("real latents decoded", &recon);

    // The real latents with Gaussian noise of standard deviation σ added in the prior's own
    // scale (where its data has unit variance), decoded: how sensitive the decoding's rhythm is
    // to an error of the size the prior makes.
    let preprocess = engine.vae.preprocess.clone().context("the VAE has no preprocessing")?;
    let data_scale = engine.prior.model.config.data_scale;
    for sigma in [0.1, 0.2, 0.3] {
        let mut noise_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xA5);
        let perturbed: Vec<Melody> = real
            .iter()
            .zip(&segments)
            .map(|(m, s)| {
                let x = (preprocess.to_prior_space(&engine.vae.encode(s)?)? * data_scale)?;
                let noise = rebar_engine::random::normal_tensor(&mut noise_rng, x.dim(0)?, x.dim(1)?, &device)?;
                let x = ((x + (noise * sigma)?)? / data_scale)?;
                let z = preprocess.from_prior_space(&x, &device)?;
                let windows = engine.vae.decode_melody(&z, &|_| true, engine.tuning().interval_weight)?;
                Ok(melody_from_segments(&windows, m))
            })
            .collect::<anyhow::Result<_>>()?;
        report(&format!("real latents + noise σ = {sigma} (prior scale), decoded"), &perturbed);
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut shuffled: Vec<Vec<_>> = segments.clone();
    for place in 0..8 {
        let mut order: Vec<usize> = (0..segments.len()).collect();
        order.shuffle(&mut rng);
        for (to, &from) in order.iter().enumerate() {
            shuffled[to][place] = segments[from][place];
        }
    }
    let shuffled: Vec<Melody> = real.iter().zip(&shuffled).map(|(m, s)| melody_from_segments(s, m)).collect();
    report("real windows shuffled across tunes", &shuffled);

    let z = Tensor::randn(0f32, 1.0, (8 * count, engine.vae.vae.config.latent), &device)?;
    let windows = engine.vae.decode_melody(&z, &|_| true, engine.tuning().interval_weight)?;
    let random: Vec<Melody> = windows.chunks(8).map(|w| melody_from_segments(w, &real[0])).collect();
    report("N(0, I) latents", &random);

    let generated = evaluate_uncond(&engine, &real, count, &request)?;
    report("generated, with the revision pass", generated.row("diffusion").context("diffusion row")?);
    let one_pass = engine.with_tuning(Tuning { revise: false, ..tuning })?;
    let generated = evaluate_uncond(&one_pass, &real, count, &request)?;
    report("generated, one pass", generated.row("diffusion").context("diffusion row")?);
    Ok(())
}
