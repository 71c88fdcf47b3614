//! The built Rebar CLAP plugin, loaded through `clack-host` the way a DAW loads it: capture a
//! clip from the transport, press Regenerate through its parameter, wait for the worker, play
//! again and check every output note against the input and the generated variation, sample for
//! sample. Run with a plain transport, a host loop, a tempo change and a null transport.
//!
//! The plugin is built here with nice-plug's `assert_process_allocs`, so an allocation or a free
//! inside `process()` aborts the test. It goes to its own target directory, so this build never
//! waits on (or replaces) the workspace's own release build.

mod clap_host;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clap_host::{Block, ClapHost, InNote, OutNote, Transport};

const SAMPLE_RATE: f64 = 48_000.0;
/// Not a divisor of a bar's length at these tempos, so blocks straddle bar lines and loop ends.
const BLOCK: u32 = 441;
/// The clip: 8 bars of 4/4.
const CLIP_BEATS: f64 = 32.0;

/// The plugin binary, built once per test run with allocation checks on.
fn plugin_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let target = root.join("target").join("e2e");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(&root)
                .args(["build", "--release", "-p", "rebar-plugin", "--lib", "--features", "assert_process_allocs"])
                .env("CARGO_TARGET_DIR", &target)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the plugin failed");
            let name = if cfg!(target_os = "macos") {
                "librebar_plugin.dylib"
            } else if cfg!(windows) {
                "rebar_plugin.dll"
            } else {
                "librebar_plugin.so"
            };
            target.join("release").join(name)
        })
        .clone()
}

/// One beat of the input clip's melody: a note on every beat and one on every off-beat eighth,
/// each half as long as the gap to the next.
fn input_notes() -> Vec<(f64, f64, u8)> {
    let scale = [60u8, 62, 64, 65, 67, 69, 71, 72];
    (0..64)
        .map(|eighth| {
            let start = f64::from(eighth) * 0.5;
            (start, 0.25, scale[(eighth as usize * 3) % scale.len()])
        })
        .collect()
}

/// A played stretch of song time, block by block, with the input clip looping under it.
struct Playhead {
    tempo: f64,
    /// Samples played so far in this stretch.
    played: u64,
    /// Song beat where the stretch started.
    start_beat: f64,
    /// The host loop, if any; the song position wraps from its end to its start.
    host_loop: Option<(f64, f64)>,
}

impl Playhead {
    fn beats_per_sample(&self) -> f64 {
        self.tempo / 60.0 / SAMPLE_RATE
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
            for &(start, length, key) in &input_notes() {
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
            let frames = (end - self.played).min(u64::from(BLOCK)) as u32;
            let mut notes = Vec::new();
            while next < events.len() && events[next].0 < self.played + u64::from(frames) {
                let (at, mut note) = events[next];
                note.time = (at - self.played) as u32;
                notes.push(note);
                next += 1;
            }
            let song_pos_beats = self.song_beat(self.played);
            let transport = transport.then(|| {
                let t = Transport::playing(self.tempo, song_pos_beats);
                match self.host_loop {
                    Some((a, b)) => t.looping(a, b),
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
    let mut host = ClapHost::load(&plugin_binary()).expect("the built plugin loads");
    host.activate(SAMPLE_RATE, BLOCK).expect("the plugin activates");
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

/// The saved session's newest variation: its (start beat, length, pitch) notes.
fn newest_variation(host: &mut ClapHost) -> Option<Vec<(f64, f64, u8)>> {
    let bytes = host.save_state().ok()?;
    // nice-plug's CLAP stream holds a length prefix, then the JSON state.
    let json = &bytes[bytes.iter().position(|&b| b == b'{')?..];
    let state: serde_json::Value = serde_json::from_slice(json).ok()?;
    let session: serde_json::Value = serde_json::from_str(state["fields"]["session"].as_str()?).ok()?;
    let newest = session["history"].as_array()?.last()?.clone();
    newest["clip"]["notes"]
        .as_array()?
        .iter()
        .map(|n| Some((n["start"].as_f64()?, n["length"].as_f64()?, u8::try_from(n["pitch"].as_u64()?).ok()?)))
        .collect()
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
    let mut capture = Playhead { tempo: 120.0, played: 0, start_beat: 0.0, host_loop };
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
    let mut replay = Playhead { tempo: replay_tempo, played: 0, start_beat: 0.0, host_loop };
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
    let mut playhead = Playhead { tempo: 120.0, played: 0, start_beat: 0.0, host_loop: None };
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
    let mut capture = Playhead { tempo: 120.0, played: 0, start_beat: 0.0, host_loop: None };
    capture.play(&mut host, (CLIP_BEATS * 24_000.0) as u64 + u64::from(BLOCK), true);
    let variation = regenerate(&mut host);
    let saved = host.save_state().expect("the plugin saves its state");

    let mut reloaded = ClapHost::load(&plugin_binary()).expect("the built plugin loads");
    reloaded.load_state(&saved).expect("the saved state loads");
    reloaded.activate(SAMPLE_RATE, BLOCK).expect("the plugin activates");
    assert_eq!(newest_variation(&mut reloaded), Some(variation.clone()));
    // The reloaded instance plays the variation without capturing again.
    let mut replay = Playhead { tempo: 120.0, played: 0, start_beat: 0.0, host_loop: None };
    let samples = (CLIP_BEATS * 24_000.0) as u64;
    let out = replay.play(&mut reloaded, samples, true);
    assert_eq!(sorted(keys(&out)), expected_pass(&replay.input_events(samples), &variation, 120.0));

    // A damaged state loads as an empty session instead of failing or crashing.
    let damaged = String::from_utf8_lossy(&saved).replace("history", "histxry");
    let mut fresh = ClapHost::load(&plugin_binary()).expect("the built plugin loads");
    if fresh.load_state(damaged.as_bytes()).is_ok() {
        assert_eq!(newest_variation(&mut fresh), None);
    }
}
