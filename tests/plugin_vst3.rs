//! The built Rebar plugin loaded through its VST3 entry points, the way a VST3 DAW loads it:
//! module entry, factory, component, processor and controller, event buses, `process` with a
//! transport. It checks what a VST3 host sees: a note effect with event buses only; a host that
//! pushes every parameter's value back on load (as Ardour does) makes it send no MIDI, while a
//! controller the user moves still passes through; notes pass through, a clip is captured from
//! positions rounded to the host's ticks, the project is marked modified, a Regenerate plays in
//! the selected bars, and the state brings clip and variation back in a new instance.

mod vst3_host;

use std::time::{Duration, Instant};

use rebar_tests::{built_vst3_module, clip_notes, eight_bar_melody, session_from_state};
use vst3_host::{Block, Note, Output, Transport, Vst3Host};

const SAMPLE_RATE: f64 = 48_000.0;
/// Ardour's default block size.
const BLOCK: u32 = 512;
/// 120 BPM at 48 kHz.
const SAMPLES_PER_BEAT: f64 = 24_000.0;
/// Ardour counts 1,920 ticks a beat and reports positions on that grid.
const TICKS_PER_BEAT: f64 = 1920.0;
/// The clip: 8 bars of 4/4.
const CLIP_BEATS: f64 = 32.0;

fn plugin() -> Vst3Host {
    let mut host = Vst3Host::load(&built_vst3_module()).expect("the built plugin loads as a VST3");
    host.activate(SAMPLE_RATE, BLOCK).expect("the plugin activates");
    host
}

/// Sets parameters by display text, in one stopped block.
fn set(host: &mut Vst3Host, settings: &[(&str, &str)]) {
    let params = settings
        .iter()
        .map(|(title, text)| {
            let id = host.param_id(title).unwrap_or_else(|| panic!("a parameter {title:?}"));
            (id, host.text_to_normalized(id, text).unwrap_or_else(|| panic!("{title:?} takes {text:?}")))
        })
        .collect();
    host.process(&Block { frames: BLOCK, transport: None, params, notes: vec![] }).expect("processes");
}

/// Notes at their sample from the start of a stretch of playback.
type Timed<T> = Vec<(u64, T)>;

/// Plays the clip from the song start for `samples` samples, positions rounded to the host's
/// ticks; returns (sample, note) for every note the plugin sent, and the input's note-ons.
fn play(host: &mut Vst3Host, samples: u64) -> (Timed<Note>, Timed<u8>) {
    let mut events: Vec<(u64, Note)> = Vec::new();
    for pass in 0..=(samples as f64 / SAMPLES_PER_BEAT / CLIP_BEATS) as u64 {
        for (start, length, key) in eight_bar_melody() {
            let beat = pass as f64 * CLIP_BEATS + start;
            let on = (beat * SAMPLES_PER_BEAT).round() as u64;
            let off = ((beat + length) * SAMPLES_PER_BEAT).round() as u64;
            if off < samples {
                events.push((on, Note { time: 0, on: true, key, channel: 0, velocity: 0.8 }));
                events.push((off, Note { time: 0, on: false, key, channel: 0, velocity: 0.0 }));
            }
        }
    }
    events.sort_by_key(|(at, n)| (*at, n.on));
    let input_ons = events.iter().filter(|(_, n)| n.on).map(|(at, n)| (*at, n.key)).collect();
    let mut out = Vec::new();
    let mut played = 0u64;
    let mut next = 0;
    while played < samples {
        let frames = (samples - played).min(u64::from(BLOCK)) as u32;
        let mut notes = Vec::new();
        while next < events.len() && events[next].0 < played + u64::from(frames) {
            notes.push(Note { time: (events[next].0 - played) as u32, ..events[next].1 });
            next += 1;
        }
        let beat = played as f64 / SAMPLES_PER_BEAT;
        let transport = Transport {
            playing: true,
            tempo: 120.0,
            song_pos_beats: (beat * TICKS_PER_BEAT).round() / TICKS_PER_BEAT,
            loop_beats: None,
        };
        let output =
            host.process(&Block { frames, transport: Some(transport), params: vec![], notes }).expect("processes");
        assert_eq!((output.controllers.len(), output.other_events), (0, 0), "only notes come out");
        out.extend(output.notes.into_iter().map(|n| (played + u64::from(n.time), n)));
        played += u64::from(frames);
    }
    (out, input_ons)
}

/// Processes stopped blocks until `done` holds or `seconds` pass; returns whether it held.
fn wait_for(host: &mut Vst3Host, seconds: u64, mut done: impl FnMut(&mut Vst3Host) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stopped = Transport { playing: false, tempo: 120.0, song_pos_beats: 0.0, loop_beats: None };
    while Instant::now() < deadline {
        host.process(&Block { frames: BLOCK, transport: Some(stopped), params: vec![], notes: vec![] })
            .expect("processes");
        if done(host) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn newest_variation(host: &Vst3Host) -> Option<Vec<(f64, f64, u8)>> {
    let session = session_from_state(&host.save_state().ok()?)?;
    clip_notes(&session["history"].as_array()?.last()?["clip"])
}

fn captured_clip(host: &Vst3Host) -> Option<Vec<(f64, f64, u8)>> {
    clip_notes(&session_from_state(&host.save_state().ok()?)?["clip"])
}

/// Checks one replayed pass in replace mode with bars 3–4 selected: outside them the input's
/// note-ons, inside them the variation's.
fn assert_plays_variation(out: &[(u64, Note)], input_ons: &[(u64, u8)], variation: &[(f64, f64, u8)]) {
    let in_selection = |sample: u64| (8.0..16.0).contains(&(sample as f64 / SAMPLES_PER_BEAT));
    let mut got: Vec<(u64, u8)> = out.iter().filter(|(_, n)| n.on).map(|(at, n)| (*at, n.key)).collect();
    let mut want: Vec<(u64, u8)> = input_ons.iter().copied().filter(|(at, _)| !in_selection(*at)).collect();
    want.extend(variation.iter().map(|&(start, _, key)| ((start * SAMPLES_PER_BEAT).round() as u64, key)));
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn the_vst3_is_a_note_effect_with_event_buses_only() {
    let host = plugin();
    assert_eq!(host.class_name(), "Rebar");
    assert_eq!(host.class_category(), "Audio Module Class");
    // VST3 has no note-effect sub-category: Rebar declares itself an instrument tool, so hosts
    // offer it on instrument tracks.
    assert_eq!(host.class_subcategories(), "Instrument|Tools");
    assert_eq!(host.class_vendor(), "Rebar");
    assert_eq!((host.bus_count(true, true), host.bus_count(true, false)), (0, 0), "no audio buses");
    assert_eq!((host.bus_count(false, true), host.bus_count(false, false)), (1, 1), "one event bus each way");
    for title in ["Regenerate", "First bar", "Last bar", "Variations", "Mode"] {
        assert!(host.param_id(title).is_some(), "a parameter {title:?}");
    }
}

/// Ardour reads every parameter's value from the controller when it loads a session and sends
/// them all to the processor in its first block: Rebar's own and the 2,080 that carry MIDI
/// controllers in VST3. That must not reach the instrument after Rebar as MIDI (it once sent
/// sustain on, all notes off and mono mode on four channels) nor allocate on the audio thread;
/// a controller the user moves afterwards still passes through.
#[test]
fn a_host_pushing_every_parameter_back_on_load_sends_no_midi() {
    let mut host = plugin();
    let params = host.params();
    assert!(params.len() > 2000, "the MIDI controller parameters are there: {}", params.len());
    let sync: Vec<(u32, f64)> = params.iter().map(|p| (p.id, host.param_normalized(p.id))).collect();
    let out = host.process(&Block { frames: BLOCK, transport: None, params: sync, notes: vec![] }).expect("processes");
    assert_eq!(out, Output::default(), "a parameter sync sent MIDI");

    let sustain = host.midi_controller_param(0, 64).expect("CC 64 maps to a parameter");
    let pedal = |value: f64| Block { frames: BLOCK, transport: None, params: vec![(sustain, value)], notes: vec![] };
    let out = host.process(&pedal(1.0)).expect("processes");
    assert_eq!(out.controllers, vec![(0, 64, 127)], "a played controller passes through");
    let out = host.process(&pedal(0.0)).expect("processes");
    assert_eq!(out.controllers, vec![(0, 64, 0)]);
}

#[test]
fn capture_regenerate_and_reload_through_vst3() {
    let mut host = plugin();
    set(
        &mut host,
        &[
            ("First bar", "3"),
            ("Last bar", "4"),
            ("Variations", "1"),
            ("Capture", "Bars from song start"),
            ("Capture bars", "8"),
        ],
    );
    let pass = (CLIP_BEATS * SAMPLES_PER_BEAT) as u64;
    let (out, input_ons) = play(&mut host, pass + u64::from(BLOCK));
    let out_ons: Vec<(u64, u8)> = out.iter().filter(|(_, n)| n.on).map(|(at, n)| (*at, n.key)).collect();
    assert_eq!(out_ons, input_ons, "every note passes through");
    assert!(wait_for(&mut host, 10, |h| captured_clip(h).is_some()), "nothing captured");
    assert_eq!(captured_clip(&host).expect("checked").len(), eight_bar_melody().len());
    assert!(wait_for(&mut host, 5, |h| h.dirty_marks() > 0), "capturing did not mark the project modified");
    let after_capture = host.dirty_marks();

    let regenerate = host.param_id("Regenerate").expect("a Regenerate parameter");
    for value in [1.0, 0.0] {
        let press = Block { frames: BLOCK, transport: None, params: vec![(regenerate, value)], notes: vec![] };
        host.process(&press).expect("processes");
    }
    assert!(wait_for(&mut host, 60, |h| newest_variation(h).is_some()), "no variation within a minute");
    let variation = newest_variation(&host).expect("checked");
    assert!(!variation.is_empty());
    assert!(wait_for(&mut host, 5, |h| h.dirty_marks() > after_capture), "a variation did not mark the project");

    let (out, input_ons) = play(&mut host, pass);
    assert_plays_variation(&out, &input_ons, &variation);

    // The project reopened: a new instance gets the saved state and plays the variation as is.
    let saved = host.save_state().expect("getState");
    let mut reloaded = Vst3Host::load(&built_vst3_module()).expect("the built plugin loads");
    reloaded.load_state(&saved).expect("setState");
    reloaded.activate(SAMPLE_RATE, BLOCK).expect("the plugin activates");
    set(&mut reloaded, &[("First bar", "3"), ("Last bar", "4"), ("Capture", "Bars from song start")]);
    assert_eq!(newest_variation(&reloaded), Some(variation.clone()));
    let (out, input_ons) = play(&mut reloaded, pass);
    assert_plays_variation(&out, &input_ons, &variation);
    assert_eq!(reloaded.dirty_marks(), 0, "opening a project marked it modified");
}

/// VST3 carries the song position and the loop as floating point, so a host can send NaN and
/// infinities (CLAP's fixed-point positions cannot): the notes pass through untouched, and the
/// allocation checker stays quiet.
#[test]
fn nan_and_infinite_positions_pass_notes_through() {
    let mut host = plugin();
    let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1e300, 1e300];
    for (i, &value) in odd.iter().cycle().take(200).enumerate() {
        let transport = match i % 4 {
            0 => Transport { playing: true, tempo: 120.0, song_pos_beats: value, loop_beats: None },
            1 => Transport { playing: true, tempo: value, song_pos_beats: i as f64, loop_beats: None },
            2 => Transport { playing: true, tempo: 120.0, song_pos_beats: i as f64, loop_beats: Some((value, 8.0)) },
            _ => Transport { playing: true, tempo: 120.0, song_pos_beats: i as f64, loop_beats: Some((0.0, value)) },
        };
        let key = 48 + (i % 24) as u8;
        let notes = vec![
            Note { time: 3, on: true, key, channel: 0, velocity: 0.8 },
            Note { time: 300, on: false, key, channel: 0, velocity: 0.0 },
        ];
        let block = Block { frames: BLOCK, transport: Some(transport), params: vec![], notes: notes.clone() };
        let out = host.process(&block).expect("processes");
        let keys = |notes: &[Note]| notes.iter().map(|n| (n.time, n.on, n.key)).collect::<Vec<_>>();
        assert_eq!(keys(&out.notes), keys(&notes), "{transport:?}");
    }
}
