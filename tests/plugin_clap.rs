//! The built Rebar CLAP plugin, loaded through `clack-host` the way a DAW loads it: capture a
//! clip from the transport, press Regenerate through its parameter, wait for the worker, play
//! again and check every output note against the input and the generated variation, sample for
//! sample. Run with a plain transport, a host loop, a tempo change and a null transport.
//!
//! The plugin is built with nice-plug's `assert_process_allocs` (see
//! [`rebar_tests::built_plugin`]), so an allocation or a free inside `process()` aborts the test.

mod clap_host;
mod clap_play;

use std::time::Duration;

use clap_host::{Block, ClapHost, InNote};
use clap_play::*;
use rebar_tests::built_plugin;

/// Plays the clip once to capture it, regenerates bars 3–4, plays it again at `replay_tempo` and
/// checks the output against the input and the variation.
fn capture_regenerate_replay(capture_from_loop: bool, replay_tempo: f64) {
    let mut host = plugin(capture_from_loop);
    let host_loop = capture_from_loop.then_some((0.0, CLIP_BEATS));
    let pass_samples = |tempo: f64| (CLIP_BEATS * SAMPLE_RATE * 60.0 / tempo).round() as u64;

    // Capture: one whole pass, passed through untouched, then a block past its end.
    let mut capture = Playhead::new(120.0, host_loop);
    let samples = pass_samples(120.0);
    let out = capture.play(&mut host, samples + u64::from(BLOCK), true);
    let input = input_keys(&capture.input_events(samples + u64::from(BLOCK)));
    assert_eq!(sorted(keys(&out)), input, "the capture pass passes the input through");

    let variation = regenerate(&mut host);
    assert!(!variation.is_empty(), "the variation has notes");
    for &(start, length, key) in &variation {
        assert!(
            (8.0..16.0).contains(&start) && start + length <= 16.0 + 1e-9,
            "{start} {length} {key} outside bars 3–4"
        );
        assert_eq!(start * 4.0, (start * 4.0).round(), "generated notes lie on the 16th grid");
    }

    // Replay from the top, at the replay tempo: the variation plays in bars 3–4 (replace mode).
    let mut replay = Playhead::new(replay_tempo, host_loop);
    let samples = pass_samples(replay_tempo);
    let out = replay.play(&mut host, samples, true);
    let input = replay.input_events(samples);
    assert_eq!(sorted(keys(&out)), expected_pass(&input, &variation, SAMPLE_RATE * 60.0 / replay_tempo));
    assert_no_hanging_notes(&out);
}

#[test]
fn a_regenerated_variation_replaces_the_selected_bars_sample_for_sample() {
    capture_regenerate_replay(false, 120.0);
}

#[test]
fn capture_follows_the_host_loop_across_wrap_arounds() {
    capture_regenerate_replay(true, 120.0);
}

#[test]
fn the_variation_follows_a_tempo_change() {
    capture_regenerate_replay(false, 100.0);
}

#[test]
fn a_null_transport_passes_input_through_and_generates_nothing() {
    let mut host = plugin(false);
    let mut playhead = Playhead::new(120.0, None);
    let samples = 96_000;
    let out = playhead.play(&mut host, samples, false);
    assert_eq!(sorted(keys(&out)), input_keys(&playhead.input_events(samples)));
    // Nothing was captured, so a Regenerate press brings no variation and breaks nothing.
    let id = host.param_id("Regenerate").expect("a Regenerate parameter");
    host.process(&Block { frames: BLOCK, transport: None, notes: vec![], params: vec![(id, 1.0)] });
    host.process(&Block { frames: BLOCK, transport: None, notes: vec![], params: vec![(id, 0.0)] });
    std::thread::sleep(Duration::from_millis(200));
    let out =
        host.process(&Block { frames: BLOCK, transport: None, notes: vec![InNote::on(7, 64, 0.5)], params: vec![] });
    assert_eq!(out.iter().map(|n| (n.time, n.on, n.key)).collect::<Vec<_>>(), vec![(7, true, 64)]);
    assert_eq!(newest_variation(&mut host), None);
}

#[test]
fn the_session_survives_save_and_reload_into_a_new_instance() {
    let mut host = plugin(false);
    play_capture_pass(&mut host);
    let variation = regenerate(&mut host);
    let saved = host.save_state().expect("the plugin saves its state");

    let mut reloaded = ClapHost::load(&built_plugin()).expect("the built plugin loads");
    reloaded.load_state(&saved).expect("the saved state loads");
    reloaded.activate(SAMPLE_RATE, BLOCK).expect("the plugin activates");
    assert_eq!(newest_variation(&mut reloaded), Some(variation.clone()));
    // The reloaded instance plays the variation without capturing again.
    let mut replay = Playhead::new(120.0, None);
    let samples = (CLIP_BEATS * 24_000.0) as u64;
    let out = replay.play(&mut reloaded, samples, true);
    assert_eq!(
        sorted(keys(&out)),
        expected_pass(&replay.input_events(samples), &variation, SAMPLE_RATE * 60.0 / 120.0)
    );

    // A damaged state loads as an empty session instead of failing or crashing.
    let damaged = String::from_utf8_lossy(&saved).replace("history", "histxry");
    let mut fresh = ClapHost::load(&built_plugin()).expect("the built plugin loads");
    if fresh.load_state(damaged.as_bytes()).is_ok() {
        assert_eq!(newest_variation(&mut fresh), None);
    }
}

/// Real hosts report each block's song position rounded to their tick grid, so back-to-back
/// blocks seem a few samples apart. Capture must still catch a whole pass at every block size
/// and sample rate, from the song start and from a host loop, and the notes must pass through.
#[test]
fn capture_catches_the_clip_when_the_host_rounds_positions_to_its_ticks() {
    let cases = [
        (64, 44_100.0, 960.0, false),
        (256, 48_000.0, 1920.0, false),
        (512, 48_000.0, 1920.0, true),
        (1000, 48_000.0, 1920.0, false),
        (1024, 48_000.0, 1920.0, false),
        (1024, 44_100.0, 960.0, true),
        (2048, 88_200.0, 960.0, false),
        (4096, 96_000.0, 1920.0, true),
        (4096, 44_100.0, 960.0, false),
    ];
    for (block, sample_rate, ticks, from_loop) in cases {
        let case = format!("{block} samples, {sample_rate} Hz, {ticks} ticks a beat, host loop {from_loop}");
        let mut host = plugin_at(sample_rate, block, from_loop);
        let mut playhead = Playhead {
            sample_rate,
            block,
            ticks_per_beat: Some(ticks),
            ..Playhead::new(120.0, from_loop.then_some((0.0, CLIP_BEATS)))
        };
        let samples = (CLIP_BEATS * sample_rate / 2.0) as u64 + u64::from(block);
        let out = playhead.play(&mut host, samples, true);
        assert_eq!(sorted(keys(&out)), input_keys(&playhead.input_events(samples)), "{case}: notes pass through");
        assert_captured_the_melody(&mut host, &case, playhead.beats_per_sample());
    }
}

/// Qtractor reports positions in the meter's beat, half notes in 2/2, with the tempo in quarter
/// notes. Rebar must notice and still capture the clip (its first pass goes by while it
/// measures; the next one is caught).
#[test]
fn capture_catches_the_clip_from_a_host_counting_half_notes_in_two_two() {
    for block in [1000, 1024] {
        let mut host = plugin_at(SAMPLE_RATE, block, false);
        let mut playhead = Playhead {
            block,
            ticks_per_beat: Some(960.0),
            meter: (2, 2),
            quarters_per_reported_beat: 2.0,
            ..Playhead::new(120.0, None)
        };
        let samples = 2 * (CLIP_BEATS * 24_000.0) as u64 + u64::from(block);
        let out = playhead.play(&mut host, samples, true);
        assert_eq!(sorted(keys(&out)), input_keys(&playhead.input_events(samples)), "{block}: notes pass through");
        assert_captured_the_melody(&mut host, &format!("{block} samples"), playhead.beats_per_sample());
    }
}

/// A DAW offers to save a project only when it knows something changed: a captured clip and
/// new variations change what Rebar saves, so each marks the project modified; a pass that
/// captures the same clip again, and a project being loaded, do not.
#[test]
fn capturing_and_regenerating_mark_the_project_modified() {
    let mut host = plugin(false);
    marks_the_project_modified(&mut host);
}

/// The same with a host that never answers `request_callback` (Qtractor 0.9): the call to mark
/// the project modified still gets made, from the plugin's timer.
#[test]
fn a_host_that_ignores_callback_requests_still_hears_the_project_changed() {
    let mut host = plugin(false);
    host.ignore_callback_requests();
    marks_the_project_modified(&mut host);
}

fn marks_the_project_modified(host: &mut ClapHost) {
    let mut playhead = Playhead::new(120.0, None);
    let pass = (CLIP_BEATS * 24_000.0) as u64;
    playhead.play(host, pass + u64::from(BLOCK), true);
    assert!(wait_for(host, 10, |h| h.dirty_marks() > 0), "capturing did not mark the project modified");
    let after_capture = host.dirty_marks();

    // The same clip again is no change.
    let mut again = Playhead::new(120.0, None);
    again.play(host, pass + u64::from(BLOCK), true);
    assert!(!wait_for(host, 1, |h| h.dirty_marks() > after_capture), "an unchanged clip marked the project");

    regenerate(host);
    assert!(wait_for(host, 10, |h| h.dirty_marks() > after_capture), "new variations did not mark the project");

    let saved = host.save_state().expect("the plugin saves its state");
    let mut reloaded = ClapHost::load(&built_plugin()).expect("the built plugin loads");
    reloaded.load_state(&saved).expect("the saved state loads");
    reloaded.activate(SAMPLE_RATE, BLOCK).expect("the plugin activates");
    assert!(!wait_for(&mut reloaded, 1, |h| h.dirty_marks() > 0), "loading a project marked it modified");
}

/// The tests above rely on nice-plug's allocation checker being in the plugin they load: a
/// build without debug assertions silently leaves it out. Under Wine they load the release
/// bundle a user installs, which has no checker, so there this check does not apply.
#[test]
#[cfg_attr(windows, ignore = "under Wine the tests load the release bundle, built without the allocation checker")]
fn the_plugin_under_test_aborts_on_allocations_in_process() {
    let library = std::fs::read(built_plugin()).expect("the built plugin reads");
    let checker = b"AllocDisabler";
    assert!(
        library.windows(checker.len()).any(|w| w == checker),
        "the plugin under test was built without nice-plug's allocation checker"
    );
}
