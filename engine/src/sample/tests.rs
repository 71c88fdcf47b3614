//! The samplers against models whose answer is known: an oracle for all-zero data and the exact
//! model of a constant sequence.

use super::*;
use candle_core::Device;

fn zeros(t: usize, d: usize, device: &Device) -> Result<Tensor> {
    Tensor::zeros((t, d), candle_core::DType::F32, device)
}

/// The noise levels a sampler passed, one per latent of a `[v, t, d]` input: (√ᾱ, √(1 − ᾱ)).
fn per_latent(levels: &[f32], v: usize, t: usize) -> Vec<(f64, f64)> {
    let per = levels.len() / v;
    (0..t)
        .map(|i| f64::from(levels[if per == 1 { 0 } else { i }]))
        .map(|a| (a, (1.0 - a * a).max(0.0).sqrt()))
        .collect()
}

/// A "model" that knows the data is all zeros: ε̂ = x_t / √(1 − ᾱ), 0 for a clean latent.
fn oracle(schedule: &NoiseSchedule) -> impl Fn(&Tensor, &[f32]) -> Result<Tensor> + '_ {
    move |x, levels| {
        let _ = schedule;
        let (v, t, _) = x.dims3()?;
        let factor: Vec<f32> =
            per_latent(levels, v, t).iter().map(|&(_, s)| if s > 0.0 { (1.0 / s) as f32 } else { 0.0 }).collect();
        x.broadcast_mul(&Tensor::from_vec(factor, (1, t, 1), x.device())?)
    }
}

/// The exact ε̂ for data whose latents are all one value c ~ N(0, I): the posterior mean of c
/// given every latent, x̂₀ = Σ (√ᾱ_i / (1 − ᾱ_i)) x_i / (1 + Σ ᾱ_i / (1 − ᾱ_i)), or a clean
/// latent itself when there is one. The generated latents of a perfect infill equal the known.
fn constant_sequence_model(x: &Tensor, levels: &[f32]) -> Result<Tensor> {
    let (v, t, _) = x.dims3()?;
    let levels = per_latent(levels, v, t);
    let x0 = match levels.iter().position(|&(_, s)| s == 0.0) {
        Some(clean) => x.narrow(1, clean, 1)?,
        None => {
            let weights: Vec<f32> = levels.iter().map(|&(a, s)| (a / (s * s)) as f32).collect();
            let precision = 1.0 + levels.iter().map(|&(a, s)| a * a / (s * s)).sum::<f64>();
            (x.broadcast_mul(&Tensor::from_vec(weights, (1, t, 1), x.device())?)?.sum_keepdim(1)? / precision)?
        }
    };
    let (signal, noise): (Vec<f32>, Vec<f32>) =
        levels.iter().map(|&(a, s)| (a as f32, if s > 0.0 { (1.0 / s) as f32 } else { 0.0 })).unzip();
    let signal = Tensor::from_vec(signal, (1, t, 1), x.device())?;
    let inverse_noise = Tensor::from_vec(noise, (1, t, 1), x.device())?;
    (x - x0.broadcast_mul(&signal)?)?.broadcast_mul(&inverse_noise)
}

fn request<'a>(known: &'a Tensor, generate: &'a [bool], sampler: Sampler, seed: u64) -> SampleRequest<'a> {
    SampleRequest {
        known,
        generate,
        variations: 3,
        temperature: 1.0,
        opening_noise: None,
        seed,
        sampler,
        repeats: None,
        context_guidance: 0.0,
    }
}

#[test]
fn a_plan_makes_repeats_of_known_latents_known_and_ties_repeats_of_generated_ones() {
    let schedule = NoiseSchedule::default();
    let known = Tensor::new(&[[0.5f32, -0.5], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], &Device::Cpu).unwrap();
    let generate = [false, true, true, true];
    // Variation 0: latent 2 repeats the known 0, latent 3 the generated 1; the others plain.
    let plan = RepeatPlan { repeats: vec![vec![0, 1, 0, 1], vec![0, 1, 2, 3], vec![0, 1, 2, 3]] };
    // Under context guidance too: its clean branch shows the known latents as they are.
    for context_guidance in [0.0, 1.0] {
        let predict = |x: &Tensor, _: &[f32]| x * 0.3;
        let request = SampleRequest {
            context_guidance,
            repeats: Some(&plan),
            ..request(&known, &generate, Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform }, 4)
        };
        let out = sample(&predict, &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
        let out = out.to_vec3::<f32>().unwrap();
        assert_eq!(out[0][2], vec![0.5, -0.5]);
        assert_eq!(out[0][3], out[0][1]);
        assert_ne!(out[0][1], vec![0.0, 0.0]);
        assert_ne!(out[1][2], out[1][0]);
        assert_ne!(out[1][3], out[1][1]);
    }
}

#[test]
fn ddim_visits_evenly_spaced_steps_down_to_one() {
    let schedule = NoiseSchedule::default();
    assert_eq!(
        timesteps(Sampler::Ddim { steps: 4, eta: 0.0, spacing: Spacing::Uniform }, &schedule),
        vec![1000, 750, 500, 250]
    );
    assert_eq!(timesteps(Sampler::Ancestral, &schedule).len(), 1000);
    let quadratic = timesteps(Sampler::Ddim { steps: 20, eta: 0.0, spacing: Spacing::Quadratic }, &schedule);
    assert_eq!((quadratic.len(), quadratic[0], quadratic[18], quadratic[19]), (20, 1000, 10, 3));
    assert!(quadratic.windows(2).all(|w| w[0] > w[1]));
}

#[test]
fn known_latents_come_back_exactly_and_generated_ones_follow_the_model() {
    let schedule = NoiseSchedule::default();
    let known = Tensor::new(&[[0.5f32, -0.5], [0.9, 0.1], [0.3, 0.3]], &Device::Cpu).unwrap();
    let generate = [false, true, false];
    for sampler in [
        Sampler::Ancestral,
        Sampler::Ddim { steps: 20, eta: 0.0, spacing: Spacing::Uniform },
        Sampler::Ddim { steps: 20, eta: 1.0, spacing: Spacing::Uniform },
        Sampler::Ddim { steps: 20, eta: 0.0, spacing: Spacing::Quadratic },
    ] {
        for context_guidance in [0.0, 1.0, 3.0] {
            let predict = oracle(&schedule);
            let out = sample(
                &predict,
                &schedule,
                &SampleRequest { context_guidance, ..request(&known, &generate, sampler, 3) },
                &AtomicBool::new(false),
                &mut |_| {},
            )
            .unwrap();
            let out = out.to_vec3::<f32>().unwrap();
            for variation in &out {
                assert_eq!(variation[0], vec![0.5, -0.5]);
                assert_eq!(variation[2], vec![0.3, 0.3]);
                // The oracle's data is zero, so the generated latent ends near zero.
                assert!(variation[1].iter().all(|v| v.abs() < 0.05), "{sampler:?} {variation:?}");
            }
        }
    }
}

/// Four latents: the outer two known at (1.5, −1), the middle two generated.
#[test]
fn each_variation_can_have_its_own_known_latents() {
    let schedule = NoiseSchedule::default();
    // Three clips, one variation each, under context guidance and a plan that ties latent 2
    // to latent 1 in the second variation.
    let known = Tensor::new(
        &[
            [[0.5f32, -0.5], [0.0, 0.0], [0.0, 0.0]],
            [[-1.0, 1.0], [0.0, 0.0], [0.0, 0.0]],
            [[2.0, 0.25], [0.0, 0.0], [0.0, 0.0]],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let generate = [false, true, true];
    let plan = RepeatPlan { repeats: vec![vec![0, 1, 2], vec![0, 1, 1], vec![0, 1, 2]] };
    let sampler = Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform };
    let request =
        SampleRequest { repeats: Some(&plan), context_guidance: 3.0, ..request(&known, &generate, sampler, 4) };
    let out = sample(&oracle(&schedule), &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let out = out.to_vec3::<f32>().unwrap();
    assert_eq!(
        [out[0][0].clone(), out[1][0].clone(), out[2][0].clone()],
        [vec![0.5, -0.5], vec![-1.0, 1.0], vec![2.0, 0.25]]
    );
    assert_eq!(out[1][2], out[1][1]);
    // One clip per variation: a count that does not match is refused.
    let two = SampleRequest { variations: 2, ..request };
    assert!(sample(&oracle(&schedule), &schedule, &two, &AtomicBool::new(false), &mut |_| {}).is_err());
}

fn two_new_between_two_known() -> (Tensor, [bool; 4]) {
    let known = Tensor::new(&[[1.5f32, -1.0], [0.0, 0.0], [0.0, 0.0], [1.5, -1.0]], &Device::Cpu).unwrap();
    (known, [false, true, true, false])
}

#[test]
fn context_guidance_brings_infills_closer_to_what_the_known_latents_imply() {
    let schedule = NoiseSchedule::default();
    let (known, generate) = two_new_between_two_known();
    let sampler = Sampler::Ddim { steps: 20, eta: 0.0, spacing: Spacing::Uniform };
    let error = |context_guidance: f64| {
        let request = SampleRequest { context_guidance, ..request(&known, &generate, sampler, 11) };
        let out = sample(&constant_sequence_model, &schedule, &request, &AtomicBool::new(false), &mut |_| {});
        let out = out.unwrap().to_vec3::<f32>().unwrap();
        let misses = out.iter().flat_map(|v| [&v[1], &v[2]]).flat_map(|row| [row[0] - 1.5, row[1] + 1.0]);
        misses.map(|m| m.abs()).fold(0f32, f32::max)
    };
    // Weight 1 is clean context throughout, where this model knows the answer exactly; the
    // shipped weight 3 extrapolates past it and still lands closer than Algorithm 1 alone.
    let (algorithm_1, clean, guided) = (error(0.0), error(1.0), error(3.0));
    assert!(clean < 1e-4, "clean context: {clean}");
    assert!(guided < algorithm_1 && algorithm_1 > 0.1, "guided {guided} vs Algorithm 1 alone {algorithm_1}");
}

#[test]
fn context_guidance_asks_for_both_branches_in_one_batch_and_at_weight_one_is_clean_context() {
    let schedule = NoiseSchedule::default();
    let (known, generate) = two_new_between_two_known();
    let sampler = Sampler::Ddim { steps: 10, eta: 0.0, spacing: Spacing::Uniform };
    let calls = std::cell::Cell::new(0);
    let checked = |x: &Tensor, levels: &[f32]| {
        let (rows, t, _) = x.dims3()?;
        assert_eq!((rows, levels.len()), (6, 6 * t), "3 variations, clean then re-noised");
        let (clean, renoised) = levels.split_at(3 * t);
        assert!(clean.chunks(t).all(|row| row[0] == 1.0 && row[3] == 1.0 && row[1] < 1.0 && row[1] == row[2]));
        assert!(renoised.iter().all(|&level| level == renoised[0] && level < 1.0));
        assert_eq!(x.get(0)?.get(0)?.to_vec1::<f32>()?, vec![1.5, -1.0]);
        calls.set(calls.get() + 1);
        constant_sequence_model(x, levels)
    };
    let run = |predict: &dyn Fn(&Tensor, &[f32]) -> Result<Tensor>, context_guidance: f64| {
        let request = SampleRequest { context_guidance, ..request(&known, &generate, sampler, 5) };
        sample(predict, &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap().to_vec3::<f32>().unwrap()
    };
    let guided = run(&checked, 1.0);
    assert_eq!(calls.get(), 10);
    // At weight 1 the step follows the clean branch alone: the constant sequence exactly.
    for generated in guided.iter().flat_map(|v| [&v[1], &v[2]]) {
        assert!((generated[0] - 1.5).abs() < 1e-4 && (generated[1] + 1.0).abs() < 1e-4, "{generated:?}");
    }
    assert_eq!(guided[0][0], vec![1.5, -1.0]);
    assert_eq!(guided[2][3], vec![1.5, -1.0]);
    // Nothing known: nothing to guide by, so one row per variation as without guidance.
    let all = [true; 4];
    let plain = |x: &Tensor, levels: &[f32]| {
        assert_eq!(x.dim(0)?, 3);
        constant_sequence_model(x, levels)
    };
    let request = SampleRequest { context_guidance: 3.0, ..request(&known, &all, sampler, 5) };
    sample(&plain, &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
}

#[test]
fn the_same_seed_gives_the_same_samples_and_another_seed_does_not() {
    let schedule = NoiseSchedule::default();
    let known = zeros(4, 2, &Device::Cpu).unwrap();
    let generate = [true; 4];
    let run = |seed| {
        let predict = |x: &Tensor, _: &[f32]| x * 0.1;
        sample(
            &predict,
            &schedule,
            &request(&known, &generate, Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform }, seed),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap()
        .to_vec3::<f32>()
        .unwrap()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn the_opening_s_temperature_scales_the_fresh_noise_of_the_first_steps_only() {
    let schedule = NoiseSchedule::default();
    let known = zeros(4, 2, &Device::Cpu).unwrap();
    let generate = [true; 4];
    let sampler = Sampler::Ddim { steps: 10, eta: 1.0, spacing: Spacing::Uniform };
    // What the model sees at every step. Every noise draw takes the same values from the
    // seed's stream whatever its temperature, so runs differ only where a temperature does.
    let inputs = |temperature: f64, opening_noise: Option<OpeningNoise>| {
        let seen = std::cell::RefCell::new(Vec::new());
        let predict = |x: &Tensor, _: &[f32]| {
            seen.borrow_mut().push(x.flatten_all()?.to_vec1::<f32>()?);
            x * 0.1
        };
        let request = SampleRequest { temperature, opening_noise, ..request(&known, &generate, sampler, 3) };
        sample(&predict, &schedule, &request, &AtomicBool::new(false), &mut |_| {}).unwrap();
        seen.into_inner()
    };
    let opening = |fraction, temperature| Some(OpeningNoise { fraction, temperature });
    // Half the steps calm (temperature 0), the rest at 1; against all ten calm.
    let half = inputs(1.0, opening(0.5, 0.0));
    let all = inputs(1.0, opening(1.0, 0.0));
    // Steps 0-4 draw their fresh noise at 0 in both, step 5 at 1 in the first only: the
    // inputs agree up to step 5 and part at step 6, the first to see step 5's noise.
    assert_eq!(half[..6], all[..6]);
    assert_ne!(half[6], all[6]);
    // The initial noise keeps the request's temperature: the first step sees it.
    assert!(half[0].iter().any(|&v| v != 0.0));
    // An opening at the request's own temperature, or over no steps, changes nothing.
    let plain = inputs(1.0, None);
    assert_eq!(inputs(1.0, opening(0.5, 1.0)), plain);
    assert_eq!(inputs(1.0, opening(0.0, 0.0)), plain);
    assert_ne!(half, plain);
}

#[test]
fn a_set_cancel_flag_stops_sampling() {
    let schedule = NoiseSchedule::default();
    let known = zeros(2, 2, &Device::Cpu).unwrap();
    let cancel = AtomicBool::new(false);
    let mut calls = 0;
    let predict = |x: &Tensor, _: &[f32]| x * 0.0;
    let result =
        sample(&predict, &schedule, &request(&known, &[true, true], Sampler::Ancestral, 1), &cancel, &mut |done| {
            calls += 1;
            if done > 0.01 {
                cancel.store(true, Ordering::Relaxed);
            }
        });
    assert!(matches!(result, Err(SampleError::Cancelled)));
    assert!(calls < 20);
}
