//! Stage 2 of a pass, plan repeats: which generated 2-bar segments repeat which (kept or
//! generated) segments note for note, before any latent is sampled (see
//! [`crate::sample::repeats`]). Real tunes repeat their 2-bar windows, 4 and 8 bars apart; the
//! prior's repeat head draws a plan as they do, or the plan keeps the form of the bars being
//! replaced.

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::prior::TrainedPrior;
use crate::random::normal_tensor;
use crate::sample::repeats::draw_choice;
use crate::sample::RepeatPlan;

use super::error::EngineError;
use super::predict::predict_in_halves;
use super::request::Repeats;
use super::tuning::AppliedOptions;

/// Mixed into the seed for the repeat plan's draws, so they do not replay the sampler's noise.
const REPEAT_PLAN_STREAM: u64 = 0x7E9E_A7ED;

/// The repeat plan of a pass over `clips` clips, `per_clip` variations each, with `known` their
/// latents per variation: drawn from the head, the input's own repeats, or none.
pub fn repeat_plan(
    prior: &TrainedPrior,
    repeats: Repeats,
    known: &Tensor,
    generate: &[bool],
    (clips, per_clip): (usize, usize),
    seed: u64,
    applied: &AppliedOptions,
) -> Result<Option<RepeatPlan>, EngineError> {
    let (variations, t, _) = known.dims3()?;
    Ok(match repeats {
        Repeats::Drawn => {
            // Every latent of a clip is real (no padding).
            let valid = Tensor::ones((variations, t), candle_core::DType::F32, known.device())?;
            Some(draw_repeats(prior, known, generate, seed, applied, &valid)?)
        }
        Repeats::KeepForm => {
            let mut plan = RepeatPlan::none(0, t);
            for c in 0..clips {
                plan.repeats.extend(RepeatPlan::from_input(&known.get(c * per_clip)?, generate, per_clip)?.repeats);
            }
            Some(plan)
        }
        Repeats::Off => None,
    })
}

/// Every variation's repeat plan (see [`crate::sample::repeats`]), drawn from the repeat head
/// at the start of sampling, one generated latent at a time from the first: generated
/// latents are pure noise at the first step's level, known latents clean (re-noised to that
/// level for a prior without clean context), and a latent drawn as a repeat of a known one
/// is known from then on, so the next draws see it (a second half follows a first half that
/// repeats). Costs one model evaluation per generated latent, except where no draw has changed
/// the input since the last.
pub fn draw_repeats(
    prior: &TrainedPrior,
    known: &Tensor,
    generate: &[bool],
    seed: u64,
    applied: &AppliedOptions,
    valid: &Tensor,
) -> Result<RepeatPlan, EngineError> {
    let model = &prior.model;
    if !model.config.repeat_head {
        return Err(EngineError::NoRepeatHead);
    }
    let (v, t, d) = known.dims3()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ REPEAT_PLAN_STREAM);
    let schedule = &prior.schedule;
    let alpha_bar = schedule.alpha_bar(schedule.steps());
    let start = alpha_bar.sqrt() as f32;
    let (known_level, known_noise) =
        if model.config.clean_context { (1.0, 0.0) } else { (start, (1.0 - alpha_bar).sqrt() as f32) };
    let known_rows: Vec<Vec<f32>> = known.reshape((v * t, d))?.to_vec2::<f32>()?;
    let noise = normal_tensor(&mut rng, v * t, d, known.device())?.flatten_all()?.to_vec1::<f32>()?;
    // Per variation and latent: the model's input row and whether it is known by now.
    let mut x = noise.clone();
    let mut is_known: Vec<bool> = (0..v).flat_map(|_| generate.iter().map(|&g| !g)).collect();
    let set_known = |x: &mut [f32], row: usize, value: &[f32]| {
        for (k, out) in x[row * d..(row + 1) * d].iter_mut().enumerate() {
            *out = known_level * value[k] + known_noise * noise[row * d + k];
        }
    };
    for (row, _) in is_known.iter().enumerate().filter(|(_, &k)| k) {
        set_known(&mut x, row, &known_rows[row]);
    }
    let mut plan = RepeatPlan::none(v, t);
    // The head's output for the current input; a draw that changes the input clears it.
    // Between draws the input is the same, so one pass serves every latent until then. (A
    // pass over only the variations a draw changed was slower for infilling: it splits a
    // smaller batch over the two threads.)
    let mut head: Option<HeadOutput> = None;
    for i in (0..t).filter(|&i| generate[i]) {
        let HeadOutput { gates, has_source, pointers } = match head.take() {
            Some(head) => head,
            None => {
                let levels: Vec<f32> = is_known.iter().map(|&k| if k { known_level } else { start }).collect();
                let input = Tensor::from_slice(&x, (v, t, d), known.device())?;
                let (_, logits) = predict_in_halves(model, &input, &levels, valid, true)?;
                let logits = logits.ok_or(EngineError::NoRepeatHead)?;
                HeadOutput {
                    gates: logits.gate.to_vec2::<f32>()?,
                    has_source: logits.has_source.to_vec2::<f32>()?,
                    pointers: logits.pointer.to_vec3::<f32>()?,
                }
            }
        };
        let mut input_changed = false;
        for s in 0..v {
            if has_source[s][i] == 0.0 {
                continue;
            }
            let gate = gates[s][i] + applied.repeat_offset as f32;
            let pointer: Vec<f32> = pointers[s][i]
                .iter()
                .enumerate()
                .map(|(j, &logit)| logit + applied.repeat_distance_offset(i.abs_diff(j)) as f32)
                .collect();
            let Some(source) = draw_choice(gate, &pointer, &mut rng) else { continue };
            input_changed = true;
            plan.repeats[s][i] = source;
            let root = plan.root(s, i);
            if generate[root] {
                // Tied to a generated latent: the same noise, so the next draws see a pair.
                let (from, to) = ((s * t + root) * d, (s * t + i) * d);
                x.copy_within(from..from + d, to);
            } else {
                is_known[s * t + i] = true;
                set_known(&mut x, s * t + i, &known_rows[s * t + root]);
            }
        }
        if !input_changed {
            head = Some(HeadOutput { gates, has_source, pointers });
        }
    }
    Ok(plan)
}

/// The repeat head's output for one model input, as plain rows: per variation, per latent (see
/// `prior::repeats`).
struct HeadOutput {
    gates: Vec<Vec<f32>>,
    has_source: Vec<Vec<f32>>,
    pointers: Vec<Vec<Vec<f32>>>,
}
