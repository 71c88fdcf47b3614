//! The built Rebar CLAP plugin, loaded through `clack-host` the way a DAW loads it: capture a
//! clip from the transport, press Regenerate through its parameter, wait for the worker, play
//! again and check every output note against the input and the generated variation, sample for
//! sample. Run with a plain transport, a host loop, a tempo change and a null transport.
//!
//! The plugin is built here with nice-plug's `assert_process_allocs`, so an allocation or a free
//! inside `process()` aborts the test. It goes to its own target directory, so this build never
//! waits on (or replaces) the workspace's own release build.

mod clap_host;

use std::time::{Duration, Instant};

use clap_host::{Block, ClapHost, InNote, OutNote, Transport};
use rebar_tests::{built_plugin, clip_notes, eight_bar_melody, session_from_state};

const SAMPLE_RATE: f64 = 48_000.0;
/// Not a divisor of a bar's length at these tempos, so blocks straddle bar lines and loop ends.
const BLOCK: u32 = 441;
/// The clip: 8 bars of 4/4.
const CLIP_BEATS: f64 = 32.0;

/// A played stretch of song time, block by block, with the input clip looping under it.
struct Playhead {
    tempo: f64,
    sample_rate: f64,
    /// Samples per block.
    block: u32,
    /// The tick grid the host rounds each block's reported song position to (Ardour counts 1,920
    /// ticks a beat, Qtractor 960); `None` reports it exactly.
    ticks_per_beat: Option<f64>,
    /// The meter the host reports, and how many quarter notes its reported beat counts: 1 as
    /// CLAP defines it, 2 for a host that counts the half notes of 2/2 (Qtractor does).
    meter: (u16, u16),
    quarters_per_reported_beat: f64,
    /// Samples played so far in this stretch.
    played: u64,
    /// Song beat where the stretch started.
    start_beat: f64,
    /// The host loop, if any; the song position wraps from its end to its start.
    host_loop: Option<(f64, f64)>,
}

impl Playhead {
    /// A stretch from the song start at [`SAMPLE_RATE`] in blocks of [`BLOCK`], reported exactly.
    fn new(tempo: f64, host_loop: Option<(f64, f64)>) -> Self {
        Self {
            tempo,
            sample_rate: SAMPLE_RATE,
            block: BLOCK,
            ticks_per_beat: None,
            meter: (4, 4),
            quarters_per_reported_beat: 1.0,
            played: 0,
            start_beat: 0.0,
            host_loop,
        }
    }

    fn beats_per_sample(&self) -> f64 {
        self.tempo / 60.0 / self.sample_rate
    }

    /// The song beat at `sample` samples into the stretch (wrapping at the loop end).
    fn song_beat(&self, sample: u64) -> f64 {
        let beat = self.start_beat + sample as f64 * self.beats_per_sample();
        match self.host_loop {
            Some((a, b)) if beat >= b => a + (beat - a) % (b - a),
            _ => beat,
        }
    }

    /// The sample (into the stretch) where each input note event falls, for `samples` samples:
    /// the clip repeats every [`CLIP_BEATS`].
    fn input_events(&self, samples: u64) -> Vec<(u64, InNote)> {
        let samples_per_beat = 1.0 / self.beats_per_sample();
        let mut events = Vec::new();
        let passes = (samples as f64 / samples_per_beat / CLIP_BEATS).ceil() as u64 + 1;
        for pass in 0..passes {
            for &(start, length, key) in &eight_bar_melody() {
                let song = pass as f64 * CLIP_BEATS + start - self.start_beat;
                if song < 0.0 {
                    continue;
                }
                let on = (song * samples_per_beat).round() as u64;
                let off = ((song + length) * samples_per_beat).round() as u64;
                if off < samples {
                    events.push((on, InNote::on(0, key, 0.8)));
                    events.push((off, InNote::off(0, key)));
                }
            }
        }
        events.sort_by_key(|(t, n)| (*t, n.on));
        events
    }

    /// Plays `samples` samples; returns every output note at its sample into the stretch.
    fn play(&mut self, host: &mut ClapHost, samples: u64, transport: bool) -> Vec<(u64, OutNote)> {
        let events = self.input_events(samples);
        let mut next = 0;
        let mut out = Vec::new();
        let end = self.played + samples;
        while self.played < end {
            let frames = (end - self.played).min(u64::from(self.block)) as u32;
            let mut notes = Vec::new();
            while next < events.len() && events[next].0 < self.played + u64::from(frames) {
                let (at, mut note) = events[next];
                note.time = (at - self.played) as u32;
                notes.push(note);
                next += 1;
            }
            let reported = self.song_beat(self.played) / self.quarters_per_reported_beat;
            let song_pos_beats = match self.ticks_per_beat {
                Some(ticks) => (reported * ticks).round() / ticks,
                None => reported,
            };
            let transport = transport.then(|| {
                let t = Transport::playing(self.tempo, song_pos_beats).in_meter(self.meter.0, self.meter.1);
                match self.host_loop {
                    Some((a, b)) => t.looping(a / self.quarters_per_reported_beat, b / self.quarters_per_reported_beat),
                    None => t,
                }
            });
            let block = Block { frames, transport, notes, params: vec![] };
            for note in host.process(&block) {
                out.push((self.played + u64::from(note.time), note));
            }
            self.played += u64::from(frames);
        }
        out
    }
}

/// A loaded, activated plugin set up to capture 8 bars and regenerate bars 3–4 in one variation.
fn plugin(capture_from_loop: bool) -> ClapHost {
    plugin_at(SAMPLE_RATE, BLOCK, capture_from_loop)
}

/// [`plugin`], activated at `sample_rate` for blocks of up to `max_block` samples.
fn plugin_at(sample_rate: f64, max_block: u32, capture_from_loop: bool) -> ClapHost {
    let mut host = ClapHost::load(&built_plugin()).expect("the built plugin loads");
    host.activate(sample_rate, max_block).expect("the plugin activates");
    let source = if capture_from_loop { "Host loop" } else { "Bars from song start" };
    for (name, text) in [
        ("First bar", "3"),
        ("Last bar", "4"),
        ("Variations", "1"),
        ("Capture bars", "8"),
        ("Capture", source),
        ("Mode", "Replace"),
    ] {
        set(&mut host, name, text);
    }
    host
}

fn set(host: &mut ClapHost, name: &str, text: &str) {
    let id = host.param_id(name).unwrap_or_else(|| panic!("the plugin has a parameter {name:?}"));
    let value = host.text_to_value(id, text).unwrap_or_else(|| panic!("{name:?} takes {text:?}"));
    host.set_param(id, value);
}

/// The saved session, as JSON.
fn saved_session(host: &mut ClapHost) -> Option<serde_json::Value> {
    session_from_state(&host.save_state().ok()?)
}

/// The saved session's newest variation: its (start beat, length, pitch) notes.
fn newest_variation(host: &mut ClapHost) -> Option<Vec<(f64, f64, u8)>> {
    clip_notes(&saved_session(host)?["history"].as_array()?.last()?["clip"])
}

/// The saved session's captured clip: its (start beat, length, pitch) notes.
fn captured_clip(host: &mut ClapHost) -> Option<Vec<(f64, f64, u8)>> {
    clip_notes(&saved_session(host)?["clip"])
}

/// Processes stopped-transport blocks, as a host does between passes, until `done` holds or
/// `seconds` pass; returns whether it held.
fn wait_for(host: &mut ClapHost, seconds: u64, mut done: impl FnMut(&mut ClapHost) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stopped = Some(Transport::stopped(120.0, 0.0));
    while Instant::now() < deadline {
        // 64 samples: no more than any test activates the plugin for.
        host.process(&Block { frames: 64, transport: stopped, notes: vec![], params: vec![] });
        if done(host) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Presses Regenerate (on for one block, then off) and waits for the worker's variation,
/// processing stopped-transport blocks meanwhile as a host would.
fn regenerate(host: &mut ClapHost) -> Vec<(f64, f64, u8)> {
    let before = newest_variation(host);
    let id = host.param_id("Regenerate").expect("a Regenerate parameter");
    let stopped = Some(Transport::stopped(120.0, 0.0));
    host.process(&Block { frames: BLOCK, transport: stopped, notes: vec![], params: vec![(id, 1.0)] });
    host.process(&Block { frames: BLOCK, transport: stopped, notes: vec![], params: vec![(id, 0.0)] });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        host.process(&Block { frames: BLOCK, transport: stopped, notes: vec![], params: vec![] });
        if let Some(now) = newest_variation(host).filter(|now| Some(now) != before.as_ref()) {
            return now;
        }
        if Instant::now() > deadline {
            let state = host.save_state().unwrap_or_default();
            let text = String::from_utf8_lossy(&state);
            panic!("the worker gave no variation within a minute; the state: {}", &text[..text.len().min(3000)]);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (sample, on, key) of output notes, for comparing streams.
fn keys(notes: &[(u64, OutNote)]) -> Vec<(u64, bool, u8)> {
    notes.iter().map(|(t, n)| (*t, n.on, n.key)).collect()
}

/// (sample, on, key) of input notes, sorted, for comparing with [`keys`].
fn input_keys(notes: &[(u64, InNote)]) -> Vec<(u64, bool, u8)> {
    sorted(notes.iter().map(|(t, n)| (*t, n.on, n.key)).collect())
}

/// What the third pass must sound like: the input outside bars 3–4, the variation inside, at the
/// samples its beats fall on at `tempo`; `offset` is the song beat where the stretch starts.
fn expected_pass(input: &[(u64, InNote)], variation: &[(f64, f64, u8)], tempo: f64) -> Vec<(u64, bool, u8)> {
    let samples_per_beat = SAMPLE_RATE * 60.0 / tempo;
    let in_selection = |sample: u64| (8.0..16.0).contains(&(sample as f64 / samples_per_beat));
    let mut expected: Vec<(u64, bool, u8)> = Vec::new();
    // Replace mode mutes input notes that start in the selection, with their note-offs.
    let mut muted = std::collections::HashSet::new();
    for (t, n) in input {
        if n.on {
            if in_selection(*t) {
                muted.insert(n.key);
                continue;
            }
        } else if muted.remove(&n.key) {
            continue;
        }
        expected.push((*t, n.on, n.key));
    }
    for &(start, length, key) in variation {
        expected.push(((start * samples_per_beat).round() as u64, true, key));
        expected.push((((start + length) * samples_per_beat).round() as u64, false, key));
    }
    expected.sort();
    expected
}

fn sorted(mut notes: Vec<(u64, bool, u8)>) -> Vec<(u64, bool, u8)> {
    notes.sort();
    notes
}

fn assert_no_hanging_notes(out: &[(u64, OutNote)]) {
    let mut sounding = std::collections::HashMap::<u8, i32>::new();
    for (_, n) in out {
        *sounding.entry(n.key).or_default() += if n.on { 1 } else { -1 };
    }
    sounding.retain(|_, count| *count != 0);
    assert!(sounding.is_empty(), "notes left sounding (key: ons − offs): {sounding:?}");
}

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
    assert_eq!(sorted(keys(&out)), expected_pass(&input, &variation, replay_tempo));
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
    let mut capture = Playhead::new(120.0, None);
    capture.play(&mut host, (CLIP_BEATS * 24_000.0) as u64 + u64::from(BLOCK), true);
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
    assert_eq!(sorted(keys(&out)), expected_pass(&replay.input_events(samples), &variation, 120.0));

    // A damaged state loads as an empty session instead of failing or crashing.
    let damaged = String::from_utf8_lossy(&saved).replace("history", "histxry");
    let mut fresh = ClapHost::load(&built_plugin()).expect("the built plugin loads");
    if fresh.load_state(damaged.as_bytes()).is_ok() {
        assert_eq!(newest_variation(&mut fresh), None);
    }
}

/// Waits for the worker to store the captured clip and checks it is [`eight_bar_melody`].
fn assert_captured_the_melody(host: &mut ClapHost, case: &str) {
    assert!(wait_for(host, 10, |h| captured_clip(h).is_some()), "{case}: nothing captured");
    let captured = captured_clip(host).expect("checked");
    let expected = eight_bar_melody();
    assert_eq!(captured.len(), expected.len(), "{case}: captured {captured:?}");
    for (got, want) in captured.iter().zip(&expected) {
        let close = (got.0 - want.0).abs() < 1e-3 && (got.1 - want.1).abs() < 1e-3 && got.2 == want.2;
        assert!(close, "{case}: captured {got:?} for {want:?}");
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
        assert_captured_the_melody(&mut host, &case);
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
        assert_captured_the_melody(&mut host, &format!("{block} samples"));
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
