//! `Engine::infill` end to end with the shipped VAE and a small prior trained here on the
//! fixture tunes, with clean context (the properties below hold for any prior, trained well or
//! not): unmasked bars come back note for note with and without context guidance, a seed fixes
//! the result, the key constraint holds, a request can be cancelled, and damaged or mismatched
//! weights are refused with a clear error.
//!
//! It is one file of a little more than 500 lines because its tests share one trained prior,
//! which each test binary would otherwise train again.

// Engine tests: native only (tests/Cargo.toml builds only the plugin host tests for Windows).
#![cfg(not(windows))]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use candle_core::Device;
use proptest::prelude::*;
use rebar_engine::engine::{BarSelection, Engine, EngineError, NoiseScales, Repeats, Request, Tuning};
use rebar_engine::melody::scale::Scale;
use rebar_engine::melody::{quantize, Melody, Note};
use rebar_engine::midi::{parse, MelodySelector};
use rebar_engine::prior::{PriorConfig, TrainedPrior};
use rebar_engine::sample::{Sampler, Spacing};
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

/// The tests' tuning: the shipped one with a short deterministic sampler.
fn test_tuning() -> Tuning {
    Tuning { sampler: Sampler::Ddim { steps: 8, eta: 0.0, spacing: Spacing::Uniform }, ..Tuning::default() }
}

/// The shipped VAE and the test prior with `tuning`.
fn tuned(tuning: Tuning) -> Engine {
    let vae = MelodyVae::embedded(&Device::Cpu).unwrap();
    let prior = TrainedPrior::load(prior_path(), &Device::Cpu).unwrap();
    Engine::new(vae, prior).unwrap().with_tuning(tuning).unwrap()
}

fn engine() -> Engine {
    tuned(test_tuning())
}

fn clip() -> Melody {
    let bytes = std::fs::read(fixtures_dir().join("ryans_jimmy_holmes_reel.mid")).unwrap();
    let file = parse(&bytes).unwrap();
    quantize(&file, file.select(&MelodySelector::MostNotes).unwrap()).unwrap().0
}

/// Two variations of `selection` with `seed`.
fn request(selection: &BarSelection, seed: u64) -> Request {
    Request { variations: 2, seed, ..Request::new(selection.clone()) }
}

fn infill(engine: &Engine, clip: &Melody, request: &Request) -> Vec<Melody> {
    engine.infill(clip, request, &AtomicBool::new(false), &mut |_| {}).unwrap()
}

/// The notes that start in a bar.
fn notes_in_bar(melody: &Melody, bar: u32) -> Vec<Note> {
    melody.notes.iter().filter(|n| n.start.0 / 16 == bar).copied().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn unmasked_bars_come_back_note_for_note_for_random_masks(mask in prop::collection::vec(any::<bool>(), 1..17), seed in 0u64..1000) {
        // Context guidance (the default) and Algorithm 1 alone.
        let engine = match seed % 2 {
            0 => engine(),
            _ => tuned(Tuning { context_guidance: 0.0, ..test_tuning() }),
        };
        let clip = clip();
        let mut bars: Vec<bool> = mask.iter().copied().cycle().take(clip.bars as usize).collect();
        bars[0] = true;
        let selection = BarSelection { bars };
        for result in infill(&engine, &clip, &request(&selection, seed)) {
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
    let a = infill(&engine, &clip, &request(&selection, 7));
    assert_eq!(a, infill(&engine, &clip, &request(&selection, 7)));
    assert_ne!(a, infill(&engine, &clip, &request(&selection, 8)));
    assert_eq!(a.len(), 2);
    // The shipped sampler draws fresh noise at every step (η = 1); the seed fixes that too.
    let shipped = tuned(Tuning::default());
    let b = infill(&shipped, &clip, &request(&selection, 7));
    assert_eq!(b, infill(&shipped, &clip, &request(&selection, 7)));
    assert_ne!(b, infill(&shipped, &clip, &request(&selection, 8)));
}

#[test]
fn the_key_constraint_is_never_violated_in_generated_bars() {
    let engine = engine();
    let clip = clip();
    let scale: Scale = "Eb phrygian".parse().unwrap();
    // Some bars, and every bar (a draft and its revision).
    for selection in [BarSelection::range(2, 9, clip.bars), BarSelection::all(clip.bars)] {
        for seed in 0..4 {
            let constrained =
                Request { key: Some(scale.clone()), pitch_range: Some((55, 80)), ..request(&selection, seed) };
            for result in infill(&engine, &clip, &constrained) {
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
    let clip = clip();
    let selection = BarSelection::range(4, 11, clip.bars);
    let run = |interval_weight| {
        let engine = tuned(Tuning { interval_weight, ..test_tuning() });
        let request = Request { repeats: Repeats::Off, variations: 4, ..request(&selection, 5) };
        infill(&engine, &clip, &request).iter().map(|m| wide_leaps_in_selection(m, &selection)).sum::<usize>()
    };
    assert!(run(0.0) > 0, "no wide leap to remove: the check below would prove nothing");
    assert_eq!(run(1000.0), 0);
}

#[test]
fn a_cancelled_request_stops_with_a_cancelled_error() {
    let engine = tuned(Tuning { sampler: Sampler::Ancestral, ..test_tuning() });
    let clip = clip();
    let cancel = AtomicBool::new(false);
    let mut steps_seen = 0;
    let result = engine.infill(&clip, &request(&BarSelection::all(clip.bars), 1), &cancel, &mut |_| {
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
        engine.infill(&clip, &request(&none, 0), &AtomicBool::new(false), &mut |_| {}),
        Err(EngineError::EmptySelection)
    ));
    let huge = Melody { bars: 200, ..clip.clone() };
    let err = engine.infill(&huge, &request(&BarSelection::all(200), 0), &AtomicBool::new(false), &mut |_| {});
    let err = err.unwrap_err();
    assert!(err.to_string().contains("200 bars"), "{err}");
}

#[test]
fn a_prior_without_clean_context_infills_by_algorithm_1() {
    let without_clean_context = |tuning: Tuning| {
        let vae = MelodyVae::embedded(&Device::Cpu).unwrap();
        let mut prior = TrainedPrior::load(prior_path(), &Device::Cpu).unwrap();
        prior.model.config.clean_context = false;
        Engine::new(vae, prior).unwrap().with_tuning(tuning).unwrap()
    };
    let clip = clip();
    let asked = request(&BarSelection::range(2, 5, clip.bars), 0);
    // The default works with any prior: without clean context it is Algorithm 1 at every step
    // (the repeat plan then sees re-noised known latents too), the same as without guidance.
    let default = infill(&without_clean_context(test_tuning()), &clip, &asked);
    let unguided = infill(&without_clean_context(Tuning { context_guidance: 0.0, ..test_tuning() }), &clip, &asked);
    assert_eq!(default.len(), 2);
    assert_eq!(default, unguided);
}

#[test]
fn a_tuning_that_makes_no_sense_is_refused_with_a_clear_error() {
    for weight in [-1.0, f64::NAN, f64::INFINITY] {
        let result = Engine::embedded().unwrap().with_tuning(Tuning { context_guidance: weight, ..test_tuning() });
        assert!(matches!(result, Err(EngineError::BadContextGuidance(_))), "{weight}");
        let result = Engine::embedded().unwrap().with_tuning(Tuning { interval_weight: weight, ..test_tuning() });
        assert!(matches!(result, Err(EngineError::BadIntervalWeight(_))), "{weight}");
    }
}

#[test]
fn context_guidance_applies_only_next_to_kept_bars() {
    let engine = engine();
    let clip = clip();
    let middle = BarSelection::range(4, 11, clip.bars);
    let weight = test_tuning().context_guidance;
    assert_eq!(engine.applied(&request(&middle, 5), &[false, true, true, false]).context_guidance, weight);
    assert_eq!(engine.applied(&request(&middle, 5), &[true; 4]).context_guidance, 0.0);
    // From scratch nothing is kept to guide by: in one pass any weight gives the same clips.
    let everything = request(&BarSelection::all(clip.bars), 5);
    let one_pass = |context_guidance| tuned(Tuning { revise: false, context_guidance, ..test_tuning() });
    assert_eq!(infill(&one_pass(weight), &clip, &everything), infill(&one_pass(0.0), &clip, &everything));
    // Next to kept bars it acts.
    let unguided = tuned(Tuning { context_guidance: 0.0, ..test_tuning() });
    assert_ne!(infill(&engine, &clip, &request(&middle, 5)), infill(&unguided, &clip, &request(&middle, 5)));
}

#[test]
fn what_is_calibrated_next_to_kept_bars_acts_only_there() {
    let engine = engine();
    let shipped = Tuning::default();
    let clip = clip();
    let middle = BarSelection::range(4, 11, clip.bars);
    let asked = request(&middle, 5);
    let next_to_kept = engine.applied(&asked, &[false, true, true, false]);
    assert_eq!(next_to_kept.noise_scale, shipped.noise_scale.guided);
    // One scale throughout unless the tuning asks for a calmer opening.
    assert_eq!(next_to_kept.opening_noise_scale, shipped.noise_scale.guided);
    assert_eq!(next_to_kept.repeat_offset, shipped.repeat_offset.guided);
    assert_eq!(next_to_kept.repeat_distance_offsets, shipped.repeat_distance_offsets);
    assert_eq!(next_to_kept.redraw_copies, shipped.redraw_copies);
    // From scratch: the draft's pass...
    let from_scratch = engine.applied(&asked, &[true; 4]);
    assert_eq!((from_scratch.noise_scale, from_scratch.repeat_offset), (1.0, shipped.repeat_offset.unguided));
    assert_eq!(from_scratch.opening_noise_scale, 1.0);
    assert!(from_scratch.repeat_distance_offsets.is_empty());
    assert_eq!(from_scratch.redraw_copies, 0);
    // ...and the revision's, which is guided by the draft's own ends but keeps scale 1.
    let whole = request(&BarSelection::all(16), 5);
    let (_, revision) = engine.revision_applied(&whole, 16).unwrap();
    assert_eq!(revision.context_guidance, shipped.context_guidance);
    assert_eq!((revision.noise_scale, revision.repeat_offset), (1.0, shipped.repeat_offset.revision));
    assert_eq!(revision.opening_noise_scale, 1.0);
    assert!(revision.repeat_distance_offsets.is_empty());
    assert_eq!(revision.redraw_copies, 0);
    // Without context guidance the scale is 1 next to kept bars too; a tuning's own scale wins
    // everywhere.
    let unguided = tuned(Tuning { context_guidance: 0.0, ..test_tuning() });
    assert_eq!(unguided.applied(&asked, &[false, true]).noise_scale, 1.0);
    assert_eq!(unguided.applied(&asked, &[false, true]).opening_noise_scale, 1.0);
    let own = tuned(Tuning { noise_scale: NoiseScales::all(0.8), ..test_tuning() });
    assert_eq!(own.applied(&asked, &[false, true]).noise_scale, 0.8);
    assert_eq!(own.revision_applied(&whole, 16).unwrap().1.noise_scale, 0.8);
    assert_eq!(own.applied(&asked, &[false, true]).opening_noise_scale, 0.8);
    assert_eq!(own.applied(&asked, &[true, true]).opening_noise_scale, 0.8);
    assert_eq!(own.revision_applied(&whole, 16).unwrap().1.opening_noise_scale, 0.8);
    let own_opening =
        tuned(Tuning { noise_scale: NoiseScales::all(0.8), opening_noise_scale: Some(0.6), ..test_tuning() });
    assert_eq!(own_opening.applied(&asked, &[false, true]).opening_noise_scale, 0.6);
    assert_eq!(own_opening.applied(&asked, &[true, true]).opening_noise_scale, 0.6);
    // And it changes the result next to kept bars.
    let at_one = tuned(Tuning { noise_scale: NoiseScales::all(1.0), ..test_tuning() });
    assert_ne!(infill(&engine, &clip, &asked), infill(&at_one, &clip, &asked));
    // So does Stick to kept, which keeps the prior's own scale and guidance's copies.
    let sticky = Request { stick_to_kept: true, ..asked.clone() };
    assert_eq!(engine.applied(&sticky, &[false, true]).noise_scale, Tuning::STICK_TO_KEPT_NOISE_SCALE);
    assert_ne!(infill(&engine, &clip, &asked), infill(&engine, &clip, &sticky));
    // The opening scales fresh noise, which only a stochastic sampler draws (η > 0).
    let stochastic = tuned(Tuning::default());
    let calm_opening = tuned(Tuning { opening_noise_scale: Some(0.3), ..Tuning::default() });
    assert_ne!(infill(&stochastic, &clip, &asked), infill(&calm_opening, &clip, &asked));
    let deterministic = tuned(Tuning { opening_noise_scale: Some(0.3), ..test_tuning() });
    assert_eq!(infill(&engine, &clip, &asked), infill(&deterministic, &clip, &asked));
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
    let revision = |engine: &Engine, selection: &BarSelection| engine.revision_of(&request(selection, 1), 16);
    assert_eq!(revision(&engine, &everything).map(|m| m.selected()), Some((4..12).collect()));
    let all_but_bar_6 = BarSelection { bars: (0..16).map(|b| b != 5).collect() };
    let middle = revision(&engine, &all_but_bar_6).unwrap();
    assert_eq!(middle.selected(), [4, 6, 7, 8, 9, 10, 11]);
    // 32 bars: 16 segments, 4 kept at each end.
    let long = engine.revision_of(&request(&BarSelection::all(32), 1), 32).unwrap();
    assert_eq!(long.selected(), (8..24).collect::<Vec<u32>>());
    // Not where bars are kept, where it is off, without guidance, or with no middle to revise.
    let one_pass = tuned(Tuning { revise: false, ..test_tuning() });
    assert!(revision(&engine, &BarSelection::range(0, 11, 16)).is_none());
    assert!(revision(&one_pass, &everything).is_none());
    assert!(revision(&tuned(Tuning { context_guidance: 0.0, ..test_tuning() }), &everything).is_none());
    assert!(engine.revision_of(&request(&BarSelection::all(4), 1), 4).is_none());
    assert!(engine.revision_of(&request(&BarSelection::all(6), 1), 6).is_some());

    // Each result is its draft (the one-pass result of the same seed) with the middle
    // regenerated: the opening and close come back note for note, the middle changes, and the
    // revision is as deterministic as the draft.
    let revised = infill(&engine, &clip, &request(&all_but_bar_6, 3));
    let drafts = infill(&one_pass, &clip, &request(&all_but_bar_6, 3));
    assert_eq!(revised, infill(&engine, &clip, &request(&all_but_bar_6, 3)));
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
    let keep = Request { repeats: Repeats::KeepForm, ..request(&selection, 5) };
    for result in infill(&engine, &clip, &keep) {
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
    let drawn = headless.infill(&clip, &request(&selection, 0), &AtomicBool::new(false), &mut |_| {});
    assert!(matches!(drawn, Err(EngineError::NoRepeatHead)), "{:?}", drawn.map(|r| r.len()));
    let off = Request { repeats: Repeats::Off, ..request(&selection, 0) };
    assert_eq!(infill(&headless, &clip, &off).len(), 2);
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
fn a_prior_trained_with_places_in_the_tune_is_refused_instead_of_loaded_without_them() {
    use rebar_engine::checkpoint::{save, Checkpoint};
    use rebar_engine::prior::{FORMAT, OLDEST_VERSION, VERSION};
    let trained = Checkpoint::read_of_versions(prior_path(), FORMAT, OLDEST_VERSION..=VERSION).unwrap();
    let width = trained.json::<PriorConfig>("config").unwrap().width;
    let mut tensors = trained.tensors.clone();
    tensors.insert(
        "tune_position".into(),
        candle_core::Tensor::zeros((16, width), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let path = prior_path().with_file_name("places.safetensors");
    save(&path, &tensors, FORMAT, VERSION, trained.metadata.clone()).unwrap();
    let err = TrainedPrior::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("places.safetensors") && err.contains("places in the tune"), "{err}");
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
        let engine = Engine::embedded().unwrap().with_tuning(Tuning { redraw_copies, ..test_tuning() }).unwrap();
        (0..6)
            .map(|seed| {
                let request = Request { repeats: Repeats::Off, ..request(&selection, seed) };
                infill(&engine, &clip, &request)
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
        engine.infill(&clip, &request(&selection, 2), &AtomicBool::new(false), &mut |f| seen.push(f)).unwrap();
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
        let asked = Request { variations, ..request(&BarSelection::all(16), 5) };
        let report = evaluate_infill(&engine, &melodies, &asked).unwrap();
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
    let report = evaluate_infill(&engine, &melodies, &request(&BarSelection::all(16), 6)).unwrap();
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
