//! `Engine::infill` end to end with the shipped VAE and a small prior trained here on the
//! fixture tunes, with clean context (the properties below hold for any prior, trained well or
//! not): unmasked bars come back note for note with clean and with re-noised known latents, a
//! seed fixes the result, the key constraint holds, a request can be cancelled, and damaged or
//! mismatched weights are refused with a clear error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use candle_core::Device;
use proptest::prelude::*;
use rebar_engine::engine::{revision_options, BarSelection, Engine, EngineError, InfillOptions, Repeats};
use rebar_engine::melody::scale::Scale;
use rebar_engine::melody::{quantize, Melody, Note};
use rebar_engine::midi::{parse, MelodySelector};
use rebar_engine::prior::{PriorConfig, TrainedPrior};
use rebar_engine::sample::{KnownLatents, Sampler, Spacing};
use rebar_engine::vae::MelodyVae;
use rebar_tests::fixtures_dir;
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::eval::quality::{first_sixteen_bars, melody_stats};
use rebar_tools::metrics::OaForm;
use rebar_tools::train::prior::{encode_tunes, train_prior, PriorRun, PriorTrainOptions};
use rebar_tools::train::run::{RunControl, Schedule};

/// The prior file trained once for all tests in this binary.
fn prior_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("rebar-infill-prior-{}", std::process::id()));
        let vae = MelodyVae::embedded(&Device::Cpu).unwrap();
        let data = build_dataset(&fixtures_dir(), &BuildOptions::default()).unwrap();
        let preprocess = vae.preprocess.clone().unwrap();
        let train = encode_tunes(&vae, &data.tunes, 2).unwrap();
        // Scaled as the shipped prior is, so the engine's scale and unscale are under test too.
        let data_scale = 1.0 / train.standard_deviation();
        assert!(data_scale > 2.0, "min–max latents have a small spread: {data_scale}");
        let run = PriorRun {
            config: PriorConfig { data_scale, clean_context: true, ..PriorConfig::tiny(preprocess.prior_dim()) },
            options: PriorTrainOptions {
                schedule: Schedule {
                    steps: 30,
                    batch: 8,
                    lr: 1e-3,
                    warmup: 5,
                    grad_clip: 1.0,
                    seed: 3,
                    eval_every: 30,
                    checkpoint_every: 30,
                    average_decay: 0.9,
                },
                clean_context: 0.5,
                ..PriorTrainOptions::default()
            },
            train,
            valid: encode_tunes(&vae, &data.tunes, 0).unwrap(),
            provenance: serde_json::json!({"data": "fixtures"}),
            vae_preprocess: serde_json::to_value(&preprocess).unwrap(),
            init: None,
            device: Device::Cpu,
        };
        let control =
            RunControl { out_dir: &out, resume: false, max_seconds: None, stop_at_step: None, progress: false };
        train_prior(run, &control).unwrap();
        out.join("prior.safetensors")
    })
}

fn engine() -> Engine {
    let vae = MelodyVae::embedded(&Device::Cpu).unwrap();
    let prior = TrainedPrior::load(prior_path(), &Device::Cpu).unwrap();
    Engine::new(vae, prior).unwrap()
}

fn clip() -> Melody {
    let bytes = std::fs::read(fixtures_dir().join("ryans_jimmy_holmes_reel.mid")).unwrap();
    let file = parse(&bytes).unwrap();
    quantize(&file, file.select(&MelodySelector::MostNotes).unwrap()).unwrap().0
}

fn options(seed: u64) -> InfillOptions {
    InfillOptions {
        variations: 2,
        seed,
        sampler: Sampler::Ddim { steps: 8, eta: 0.0, spacing: Spacing::Uniform },
        ..InfillOptions::default()
    }
}

fn infill(engine: &Engine, clip: &Melody, selection: &BarSelection, options: &InfillOptions) -> Vec<Melody> {
    engine.infill(clip, selection, options, &AtomicBool::new(false), &mut |_| {}).unwrap()
}

/// The notes that start in a bar.
fn notes_in_bar(melody: &Melody, bar: u32) -> Vec<Note> {
    melody.notes.iter().filter(|n| n.start.0 / 16 == bar).copied().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn unmasked_bars_come_back_note_for_note_for_random_masks(mask in prop::collection::vec(any::<bool>(), 1..17), seed in 0u64..1000) {
        let engine = engine();
        let clip = clip();
        let mut bars: Vec<bool> = mask.iter().copied().cycle().take(clip.bars as usize).collect();
        bars[0] = true;
        let selection = BarSelection { bars };
        // Context guidance (the default), clean known latents, and Algorithm 1's re-noised ones
        // (with reconstruction guidance).
        let options = match seed % 3 {
            0 => options(seed),
            1 => InfillOptions { known: KnownLatents::Clean, context_guidance: 0.0, ..options(seed) },
            _ => InfillOptions { known: KnownLatents::Renoised, guidance: 1.0, context_guidance: 0.0, ..options(seed) },
        };
        for result in infill(&engine, &clip, &selection, &options) {
            prop_assert_eq!(result.bars, clip.bars);
            for bar in (0..clip.bars).filter(|&b| !selection.is_selected(b)) {
                // Same onsets and pitches; lengths are the input's, cut only where a selected bar begins.
                let (kept, original) = (notes_in_bar(&result, bar), notes_in_bar(&clip, bar));
                prop_assert_eq!(kept.len(), original.len(), "bar {}", bar);
                for (k, o) in kept.iter().zip(&original) {
                    prop_assert_eq!((k.pitch, k.start), (o.pitch, o.start));
                    let cut_at_selection = k.len < o.len && selection.is_selected(k.end().0 / 16);
                    prop_assert!(k.len == o.len || cut_at_selection, "{:?} vs {:?}", k, o);
                }
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_clips_and_another_seed_does_not() {
    let engine = engine();
    let clip = clip();
    let selection = BarSelection::range(4, 11, clip.bars);
    let a = infill(&engine, &clip, &selection, &options(7));
    assert_eq!(a, infill(&engine, &clip, &selection, &options(7)));
    assert_ne!(a, infill(&engine, &clip, &selection, &options(8)));
    assert_eq!(a.len(), 2);
    // The shipped sampler draws fresh noise at every step (η = 1); the seed fixes that too.
    let shipped = |seed| InfillOptions { variations: 2, seed, ..InfillOptions::default() };
    let b = infill(&engine, &clip, &selection, &shipped(7));
    assert_eq!(b, infill(&engine, &clip, &selection, &shipped(7)));
    assert_ne!(b, infill(&engine, &clip, &selection, &shipped(8)));
}

#[test]
fn the_key_constraint_is_never_violated_in_generated_bars() {
    let engine = engine();
    let clip = clip();
    let scale: Scale = "Eb phrygian".parse().unwrap();
    // Some bars, and every bar (a draft and its revision).
    for selection in [BarSelection::range(2, 9, clip.bars), BarSelection::all(clip.bars)] {
        for seed in 0..4 {
            let constrained = InfillOptions { key: Some(scale.clone()), pitch_range: Some((55, 80)), ..options(seed) };
            for result in infill(&engine, &clip, &selection, &constrained) {
                for note in result.notes.iter().filter(|n| selection.is_selected(n.start.0 / 16)) {
                    assert!(scale.contains(note.pitch) && (55..=80).contains(&note.pitch), "{note:?}");
                }
            }
        }
    }
}

/// Intervals wider than an octave between consecutive notes that both start in selected bars.
fn wide_leaps_in_selection(melody: &Melody, selection: &BarSelection) -> usize {
    let selected: Vec<&Note> = melody.notes.iter().filter(|n| selection.is_selected(n.start.0 / 16)).collect();
    selected.windows(2).filter(|pair| pair[0].pitch.abs_diff(pair[1].pitch) > 12).count()
}

#[test]
fn the_interval_prior_keeps_generated_bars_within_octave_leaps() {
    // The small prior here decodes to wild melodies, so per-step argmax leaps beyond an octave;
    // a weight far above any log-probability gap leaves no such leap in generated bars.
    let engine = engine();
    let clip = clip();
    let selection = BarSelection::range(4, 11, clip.bars);
    let run = |interval_weight| {
        let options = InfillOptions { interval_weight, repeats: Repeats::Off, variations: 4, ..options(5) };
        infill(&engine, &clip, &selection, &options)
            .iter()
            .map(|m| wide_leaps_in_selection(m, &selection))
            .sum::<usize>()
    };
    assert!(run(0.0) > 0, "no wide leap to remove: the check below would prove nothing");
    assert_eq!(run(1000.0), 0);
}

#[test]
fn a_cancelled_request_stops_with_a_cancelled_error() {
    let engine = engine();
    let clip = clip();
    let cancel = AtomicBool::new(false);
    let slow = InfillOptions { sampler: Sampler::Ancestral, ..options(1) };
    let mut steps_seen = 0;
    let result = engine.infill(&clip, &BarSelection::all(clip.bars), &slow, &cancel, &mut |_| {
        steps_seen += 1;
        cancel.store(true, Ordering::Relaxed);
    });
    assert!(matches!(result, Err(EngineError::Cancelled)), "{:?}", result.map(|r| r.len()));
    assert_eq!(steps_seen, 1);
}

#[test]
fn bad_requests_get_clear_errors() {
    let engine = engine();
    let clip = clip();
    let none = BarSelection { bars: vec![false; clip.bars as usize] };
    assert!(matches!(
        engine.infill(&clip, &none, &options(0), &AtomicBool::new(false), &mut |_| {}),
        Err(EngineError::EmptySelection)
    ));
    let huge = Melody { bars: 200, ..clip.clone() };
    let err =
        engine.infill(&huge, &BarSelection::all(200), &options(0), &AtomicBool::new(false), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("200 bars"), "{err}");
}

#[test]
fn clean_context_is_refused_for_a_prior_not_trained_for_it() {
    let vae = MelodyVae::embedded(&Device::Cpu).unwrap();
    let mut prior = TrainedPrior::load(prior_path(), &Device::Cpu).unwrap();
    prior.model.config.clean_context = false;
    let engine = Engine::new(vae, prior).unwrap();
    let clip = clip();
    let selection = BarSelection::range(2, 5, clip.bars);
    let clean = InfillOptions { known: KnownLatents::Clean, context_guidance: 0.0, ..options(0) };
    let result = engine.infill(&clip, &selection, &clean, &AtomicBool::new(false), &mut |_| {});
    assert!(matches!(result, Err(EngineError::NoCleanContext)), "{:?}", result.map(|r| r.len()));
    // The default works with any prior: without clean context it is Algorithm 1 at every step
    // (the repeat plan then sees re-noised known latents too), the same as without guidance.
    let default = infill(&engine, &clip, &selection, &options(0));
    let unguided = infill(&engine, &clip, &selection, &InfillOptions { context_guidance: 0.0, ..options(0) });
    assert_eq!(default.len(), 2);
    assert_eq!(default, unguided);
}

#[test]
fn conflicting_or_meaningless_guidance_is_refused_with_a_clear_error() {
    let engine = engine();
    let clip = clip();
    let selection = BarSelection::range(2, 5, clip.bars);
    let run = |options: InfillOptions| engine.infill(&clip, &selection, &options, &AtomicBool::new(false), &mut |_| {});
    let both = run(InfillOptions { guidance: 1.0, ..options(0) });
    assert!(matches!(both, Err(EngineError::TwoGuidances)), "{:?}", both.map(|r| r.len()));
    for weight in [-1.0, f64::NAN, f64::INFINITY] {
        let result = run(InfillOptions { context_guidance: weight, ..options(0) });
        assert!(matches!(result, Err(EngineError::BadContextGuidance(_))), "{weight}: {:?}", result.map(|r| r.len()));
    }
    assert_eq!(run(InfillOptions { guidance: 1.0, context_guidance: 0.0, ..options(0) }).unwrap().len(), 2);
    for weight in [-1.0, f64::NAN, f64::INFINITY] {
        let result = run(InfillOptions { interval_weight: weight, ..options(0) });
        assert!(matches!(result, Err(EngineError::BadIntervalWeight(_))), "{weight}: {:?}", result.map(|r| r.len()));
    }
}

#[test]
fn clean_known_latents_turn_context_guidance_off() {
    let engine = engine();
    let clip = clip();
    let selection = BarSelection::range(4, 11, clip.bars);
    let clean = |context_guidance| InfillOptions { known: KnownLatents::Clean, context_guidance, ..options(3) };
    let guided = infill(&engine, &clip, &selection, &options(3));
    let clean_default = infill(&engine, &clip, &selection, &clean(InfillOptions::DEFAULT_CONTEXT_GUIDANCE));
    assert_eq!(clean_default, infill(&engine, &clip, &selection, &clean(0.0)));
    assert_ne!(clean_default, guided);
}

#[test]
fn context_guidance_applies_only_next_to_kept_bars() {
    let engine = engine();
    let clip = clip();
    let guided = options(5);
    let weight = InfillOptions::DEFAULT_CONTEXT_GUIDANCE;
    assert_eq!(engine.applied(&guided, &[false, true, true, false]).context_guidance, weight);
    assert_eq!(engine.applied(&guided, &[true; 4]).context_guidance, 0.0);
    let clean = InfillOptions { known: KnownLatents::Clean, ..options(5) };
    assert_eq!(engine.applied(&clean, &[false, true]).context_guidance, 0.0);
    // From scratch nothing is kept to guide by: in one pass any weight gives the same clips.
    let everything = BarSelection::all(clip.bars);
    let unguided = InfillOptions { context_guidance: 0.0, ..options(5) };
    let one_pass = |options: &InfillOptions| InfillOptions { revise: false, ..options.clone() };
    assert_eq!(
        infill(&engine, &clip, &everything, &one_pass(&guided)),
        infill(&engine, &clip, &everything, &one_pass(&unguided))
    );
    // Next to kept bars it acts.
    let middle = BarSelection::range(4, 11, clip.bars);
    assert_ne!(infill(&engine, &clip, &middle, &guided), infill(&engine, &clip, &middle, &unguided));
}

#[test]
fn what_is_calibrated_next_to_kept_bars_acts_only_there() {
    let engine = engine();
    let defaults = options(5);
    let next_to_kept = engine.applied(&defaults, &[false, true, true, false]);
    assert_eq!(next_to_kept.noise_scale, InfillOptions::CALIBRATED_GUIDED_NOISE_SCALE);
    // One scale throughout unless a request asks for a calmer opening.
    assert_eq!(next_to_kept.opening_noise_scale, InfillOptions::CALIBRATED_GUIDED_NOISE_SCALE);
    assert_eq!(next_to_kept.repeat_offset, InfillOptions::CALIBRATED_GUIDED_REPEAT_OFFSET);
    assert_eq!(next_to_kept.repeat_distance_offsets, InfillOptions::CALIBRATED_REPEAT_DISTANCE_OFFSETS);
    assert_eq!(next_to_kept.redraw_copies, InfillOptions::DEFAULT_REDRAW_COPIES);
    // From scratch: the draft's pass...
    let from_scratch = engine.applied(&defaults, &[true; 4]);
    assert_eq!((from_scratch.noise_scale, from_scratch.repeat_offset), (1.0, InfillOptions::CALIBRATED_REPEAT_OFFSET));
    assert_eq!(from_scratch.opening_noise_scale, 1.0);
    assert!(from_scratch.repeat_distance_offsets.is_empty());
    assert_eq!(from_scratch.redraw_copies, 0);
    // ...and the revision's, which is guided by the draft's own ends but keeps scale 1.
    let revision = engine.applied(&revision_options(&defaults), &[false, true, true, false]);
    assert_eq!(revision.context_guidance, InfillOptions::DEFAULT_CONTEXT_GUIDANCE);
    assert_eq!((revision.noise_scale, revision.repeat_offset), (1.0, InfillOptions::CALIBRATED_REVISION_REPEAT_OFFSET));
    assert_eq!(revision.opening_noise_scale, 1.0);
    assert!(revision.repeat_distance_offsets.is_empty());
    assert_eq!(revision.redraw_copies, 0);
    // Without context guidance the scale is 1 next to kept bars too; a request's own scale
    // wins everywhere.
    let unguided = InfillOptions { context_guidance: 0.0, ..options(5) };
    assert_eq!(engine.applied(&unguided, &[false, true]).noise_scale, 1.0);
    assert_eq!(engine.applied(&unguided, &[false, true]).opening_noise_scale, 1.0);
    let own = InfillOptions { noise_scale: Some(0.8), ..options(5) };
    assert_eq!(engine.applied(&own, &[false, true]).noise_scale, 0.8);
    assert_eq!(engine.applied(&revision_options(&own), &[false, true]).noise_scale, 0.8);
    assert_eq!(engine.applied(&own, &[false, true]).opening_noise_scale, 0.8);
    assert_eq!(engine.applied(&own, &[true, true]).opening_noise_scale, 0.8);
    assert_eq!(engine.applied(&revision_options(&own), &[false, true]).opening_noise_scale, 0.8);
    let own_opening = InfillOptions { opening_noise_scale: Some(0.6), ..own.clone() };
    assert_eq!(engine.applied(&own_opening, &[false, true]).opening_noise_scale, 0.6);
    assert_eq!(engine.applied(&own_opening, &[true, true]).opening_noise_scale, 0.6);
    // And it changes the result next to kept bars.
    let clip = clip();
    let middle = BarSelection::range(4, 11, clip.bars);
    let at_one = InfillOptions { noise_scale: Some(1.0), ..options(5) };
    assert_ne!(infill(&engine, &clip, &middle, &defaults), infill(&engine, &clip, &middle, &at_one));
    // The opening scales fresh noise, which only a stochastic sampler draws (η > 0).
    let stochastic = InfillOptions { sampler: Sampler::DEFAULT, ..options(5) };
    let calm_opening = InfillOptions { opening_noise_scale: Some(0.3), ..stochastic.clone() };
    assert_ne!(infill(&engine, &clip, &middle, &stochastic), infill(&engine, &clip, &middle, &calm_opening));
    let deterministic = InfillOptions { opening_noise_scale: Some(0.3), ..options(5) };
    assert_eq!(infill(&engine, &clip, &middle, &defaults), infill(&engine, &clip, &middle, &deterministic));
}

#[test]
fn generation_from_scratch_revises_the_middle_of_each_draft_from_its_own_ends() {
    let engine = engine();
    // The reel's first 16 bars.
    let reel = clip();
    let notes = reel.notes.iter().filter(|n| n.start.0 < 16 * 16);
    let notes = notes.map(|n| Note { len: rebar_engine::time::Step(n.len.0.min(16 * 16 - n.start.0)), ..*n }).collect();
    let clip = Melody { notes, bars: 16, ..reel };
    let everything = BarSelection::all(16);
    // 8 segments: the first and last 2 are kept, bars 5-12 are regenerated, as in the infilling
    // evaluation; only the selected bars among them.
    let revision = |selection: &BarSelection, options: &InfillOptions| engine.revision_of(options, selection, 16);
    assert_eq!(revision(&everything, &options(1)).map(|m| m.selected()), Some((4..12).collect()));
    let all_but_bar_6 = BarSelection { bars: (0..16).map(|b| b != 5).collect() };
    let middle = revision(&all_but_bar_6, &options(1)).unwrap();
    assert_eq!(middle.selected(), [4, 6, 7, 8, 9, 10, 11]);
    // 32 bars: 16 segments, 4 kept at each end.
    let long = engine.revision_of(&options(1), &BarSelection::all(32), 32).unwrap();
    assert_eq!(long.selected(), (8..24).collect::<Vec<u32>>());
    // Not where bars are kept, where it is off, without guidance, or with no middle to revise.
    assert!(revision(&BarSelection::range(0, 11, 16), &options(1)).is_none());
    assert!(revision(&everything, &InfillOptions { revise: false, ..options(1) }).is_none());
    assert!(revision(&everything, &InfillOptions { context_guidance: 0.0, ..options(1) }).is_none());
    assert!(engine.revision_of(&options(1), &BarSelection::all(4), 4).is_none());
    assert!(engine.revision_of(&options(1), &BarSelection::all(6), 6).is_some());

    // Each result is its draft (the one-pass result of the same seed) with the middle
    // regenerated: the opening and close come back note for note, the middle changes, and the
    // revision is as deterministic as the draft.
    let revised = infill(&engine, &clip, &all_but_bar_6, &options(3));
    let drafts = infill(&engine, &clip, &all_but_bar_6, &InfillOptions { revise: false, ..options(3) });
    assert_eq!(revised, infill(&engine, &clip, &all_but_bar_6, &options(3)));
    assert_eq!(revised.len(), drafts.len());
    for (result, draft) in revised.iter().zip(&drafts) {
        for bar in (0..4).chain(12..16) {
            assert_eq!(notes_in_bar(result, bar), notes_in_bar(draft, bar), "bar {}", bar + 1);
        }
        // The unselected bar is the input's, in the draft and after the revision.
        let kept: Vec<(u8, u32)> = notes_in_bar(&clip, 5).iter().map(|n| (n.pitch, n.start.0)).collect();
        assert_eq!(notes_in_bar(result, 5).iter().map(|n| (n.pitch, n.start.0)).collect::<Vec<_>>(), kept);
    }
    let middle_of = |m: &Melody| [4, 6, 7, 8, 9, 10, 11].map(|bar| notes_in_bar(m, bar));
    assert!(revised.iter().zip(&drafts).any(|(r, d)| middle_of(r) != middle_of(d)));
}

#[test]
fn keeping_the_form_repeats_what_the_replaced_bars_repeated() {
    let engine = engine();
    let reel = clip();
    // The reel's first 2 bars again in bars 5-6 (0-based 4-5), every note cut at its bar lines.
    let cut = |notes: &[Note], from: u32, to: u32| -> Vec<Note> {
        let inside = notes.iter().filter(|n| (from * 16..to * 16).contains(&n.start.0));
        inside.map(|n| Note { len: rebar_engine::time::Step(n.len.0.min(to * 16 - n.start.0)), ..*n }).collect()
    };
    let shifted = |n: Note| Note { start: rebar_engine::time::Step(n.start.0 + 64), ..n };
    let mut notes = cut(&reel.notes, 0, 4);
    notes.extend(cut(&reel.notes, 0, 2).into_iter().map(shifted));
    notes.extend(cut(&reel.notes, 6, reel.bars));
    let clip = Melody { notes, ..reel };
    let selection = BarSelection::range(4, 7, clip.bars);
    let keep = InfillOptions { repeats: Repeats::KeepForm, ..options(5) };
    for result in infill(&engine, &clip, &selection, &keep) {
        for bar in 0..2 {
            let again: Vec<Note> = notes_in_bar(&result, bar + 4).into_iter().collect();
            let first: Vec<Note> = notes_in_bar(&clip, bar).into_iter().map(shifted).collect();
            assert_eq!(again, first, "bar {}", bar + 5);
        }
    }
    // Drawn repeats need the repeat head; without it the request is refused, and Off still works.
    let vae = MelodyVae::embedded(&Device::Cpu).unwrap();
    let mut prior = TrainedPrior::load(prior_path(), &Device::Cpu).unwrap();
    prior.model.config.repeat_head = false;
    let headless = Engine::new(vae, prior).unwrap();
    let drawn = headless.infill(&clip, &selection, &options(0), &AtomicBool::new(false), &mut |_| {});
    assert!(matches!(drawn, Err(EngineError::NoRepeatHead)), "{:?}", drawn.map(|r| r.len()));
    let off = InfillOptions { repeats: Repeats::Off, ..options(0) };
    assert_eq!(infill(&headless, &clip, &selection, &off).len(), 2);
}

#[test]
fn a_corrupt_prior_file_is_refused_with_an_error_naming_it() {
    let path = prior_path().with_file_name("corrupt.safetensors");
    let mut bytes = std::fs::read(prior_path()).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, &bytes).unwrap();
    let err = TrainedPrior::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("corrupt.safetensors"), "{err}");
    // A VAE file is not a prior.
    let vae_path = path.with_file_name("vae.safetensors");
    std::fs::write(&vae_path, rebar_engine::vae::EMBEDDED_VAE).unwrap();
    let err = TrainedPrior::load(&vae_path, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("rebar-vae") && err.contains("rebar-prior"), "{err}");
}

#[test]
fn a_vae_file_with_a_broken_interval_prior_is_refused_by_name() {
    use rebar_engine::checkpoint::{save, Checkpoint};
    use rebar_engine::vae::{EMBEDDED_VAE, FORMAT, VERSION};
    let shipped = Checkpoint::from_bytes(EMBEDDED_VAE, "embedded", FORMAT, VERSION).unwrap();
    assert!(MelodyVae::embedded(&Device::Cpu).unwrap().intervals.is_some(), "the shipped VAE has its interval prior");
    let path = prior_path().with_file_name("broken-intervals.safetensors");
    let mut metadata = shipped.metadata.clone();
    metadata.insert("intervals".into(), r#"{"log_probs": [-1.0, 2.5]}"#.into());
    save(&path, &shipped.tensors, FORMAT, VERSION, metadata).unwrap();
    let err = MelodyVae::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("broken-intervals.safetensors") && err.contains("intervals"), "{err}");
}

#[test]
fn new_segments_that_come_back_as_copies_of_others_are_redrawn() {
    // The shipped weights: under context guidance they copy the reel's kept bars by themselves
    // (the test prior is too rough to).
    let engine = Engine::embedded().unwrap();
    let clip = clip();
    let selection = BarSelection::range(4, 11, clip.bars);
    // A 2-bar segment's notes, as (onset within it, pitch, length).
    let segment = |m: &Melody, s: u32| -> Vec<(u32, u8, u32)> {
        let notes = m.notes.iter().filter(|n| n.start.0 / 32 == s);
        notes.map(|n| (n.start.0 % 32, n.pitch, n.len.0)).collect()
    };
    let segments = clip.bars.div_ceil(2);
    // Without repeats drawn, every generated segment (2-5) is meant to be new material.
    let copies = |redraw_copies: usize| -> usize {
        (0..6)
            .map(|seed| {
                let options = InfillOptions { repeats: Repeats::Off, redraw_copies, ..options(seed) };
                infill(&engine, &clip, &selection, &options)
                    .iter()
                    .map(|m| {
                        (2..6).filter(|&s| (0..segments).any(|o| o != s && segment(m, o) == segment(m, s))).count()
                    })
                    .sum::<usize>()
            })
            .sum()
    };
    let (kept, redrawn) = (copies(0), copies(3));
    assert!(kept > 0, "no copies to redraw: the check could not fail");
    assert!(redrawn < kept, "{redrawn} copies after redrawing, {kept} before");
}

#[test]
fn progress_rises_to_one_for_infilling_and_for_generation_from_scratch() {
    let engine = engine();
    let clip = clip();
    for selection in [BarSelection::range(4, 11, clip.bars), BarSelection::all(clip.bars)] {
        let mut seen: Vec<f32> = Vec::new();
        engine.infill(&clip, &selection, &options(2), &AtomicBool::new(false), &mut |f| seen.push(f)).unwrap();
        assert!(seen.len() > 2, "{seen:?}");
        assert!(seen.windows(2).all(|pair| pair[0] <= pair[1]), "{seen:?}");
        assert!(seen.iter().all(|f| (0.0..=1.0).contains(f)), "{seen:?}");
        assert_eq!(seen.last(), Some(&1.0));
    }
}

#[test]
fn the_infilling_evaluation_draws_the_prior_row_as_often_as_the_diffusion_row() {
    use rebar_tools::eval::quality::evaluate_infill;
    let engine = engine();
    let data = build_dataset(&fixtures_dir(), &BuildOptions::default()).unwrap();
    let melodies = first_sixteen_bars(&data.tunes);
    assert!(!melodies.is_empty(), "the fixtures hold a tune of 16 bars");
    let pairs = |variations: usize| {
        let report = evaluate_infill(&engine, &melodies, &InfillOptions { variations, ..options(5) }).unwrap();
        let scores = report.evaluation.score(&melodies, OaForm::Paper);
        let count = |row: &str| scores.oa_stats[row].pitch.count;
        (count("prior"), count("diffusion"), count("interpolation"))
    };
    let (prior_once, _, interpolation_once) = pairs(1);
    let (prior, diffusion, interpolation) = pairs(3);
    // Interpolation is one deterministic infill a tune; the prior row is drawn three times a tune,
    // like the diffusion row. Its kept bars alone give two frame pairs a draw; silent random
    // middles could lose the rest, so the counts are compared with that slack.
    assert_eq!(interpolation, interpolation_once);
    assert!(prior > 2 * prior_once && prior >= 2 * 3 * melodies.len(), "{prior} against {prior_once}");
    assert!(prior * 2 > diffusion && diffusion * 2 > prior, "{prior} against {diffusion}");
}

#[test]
fn the_quality_report_scores_against_the_real_tunes_evaluated_in_both_forms() {
    use rebar_tools::eval::quality::{evaluate_infill, QualityReport};
    let engine = engine();
    let data = build_dataset(&fixtures_dir(), &BuildOptions::default()).unwrap();
    let melodies = first_sixteen_bars(&data.tunes);
    let report = evaluate_infill(&engine, &melodies, &options(6)).unwrap();
    let quality = QualityReport::new(&report.evaluation, (&melodies, "test: the fixtures".into()), None);
    assert_eq!(quality.reference, "test: the fixtures");
    // The real tunes are the reference: their own row is perfect in either form.
    for (scores, form) in [(&quality.paper_form, OaForm::Paper), (&quality.exact_form, OaForm::Exact)] {
        let test = scores.rows["test"];
        let columns = [test.pitch_consistency, test.pitch_variance, test.duration_consistency, test.duration_variance];
        assert_eq!(columns, [1.0; 4]);
        assert_eq!(scores.reference_oa_stats, melody_stats(&melodies, form));
    }
    let json = serde_json::to_value(&quality).unwrap();
    assert_eq!(json["reference"], "test: the fixtures");
    assert!(json["rows"]["diffusion"].is_object() && json["exact_form"]["rows"]["diffusion"].is_object(), "{json}");
}
