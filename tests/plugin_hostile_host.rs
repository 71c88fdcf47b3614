//! The built Rebar CLAP plugin under a hostile host: nonsense transports, extreme tempos, sample
//! rates and block sizes, meters Rebar does not support, floods of notes and parameter changes,
//! restarts, and damaged saved states. In every case the plugin must not panic, must not
//! allocate on the audio thread (the plugin is built with nice-plug's `assert_process_allocs`,
//! see [`rebar_tests::built_plugin`], which aborts the test on an allocation inside
//! `process()`), must leave no note sounding once the host stops, and must keep working.

mod clap_host;
mod clap_play;

use clap_host::{Block, ClapHost, InNote, OutNote, Transport};
use clap_play::*;
use rebar_tests::built_plugin;

/// A small deterministic generator (xorshift64*), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a host sends when it stops: a stopped transport, so anything Rebar still holds is let go.
fn stop(host: &mut ClapHost) -> Vec<(u64, OutNote)> {
    let frames = host.max_block().min(BLOCK);
    let block = Block { frames, transport: Some(Transport::stopped(120.0, 0.0)), notes: vec![], params: vec![] };
    host.process(&block).into_iter().map(|n| (0, n)).collect()
}

/// Fails if any key got more note-ons than note-offs: a note left sounding. (Extra note-offs are
/// harmless: a jump can cut an input note between its note-on and its note-off.)
fn assert_nothing_left_sounding(out: &[(u64, OutNote)], case: &str) {
    let mut balance = ons_less_offs(out);
    balance.retain(|_, b| *b > 0);
    assert!(balance.is_empty(), "{case}: keys left sounding (note-ons − note-offs): {balance:?}");
}

/// Every played note-on of `notes` paired with a later note-off, keys taken at random.
fn random_notes(rng: &mut Rng, count: usize, frames: u32) -> Vec<InNote> {
    let mut notes = Vec::new();
    for _ in 0..count / 2 {
        let key = 36 + rng.below(60) as u8;
        let on = rng.below(u64::from(frames)) as u32;
        let off = on + rng.below(u64::from(frames - on)) as u32;
        notes.push(InNote::on(on, key, 0.1 + 0.9 * rng.unit()));
        notes.push(InNote::off(off, key));
    }
    notes
}

/// The (time, on, key) of a block's notes, in the order a CLAP host sends them (stably by time).
fn block_keys(notes: &[InNote]) -> Vec<(u32, bool, u8)> {
    let mut keys: Vec<_> = notes.iter().map(|n| (n.time, n.on, n.key)).collect();
    keys.sort_by_key(|k| k.0);
    keys
}

/// Transports that no host should send but some do: NaN, infinite, zero and negative tempos,
/// positions before the song start and far past it, positions that jump backwards every block,
/// and loops that are empty or reversed. Rebar must pass the notes through untouched (nothing
/// was regenerated, so there is nothing to replace them with) and leave nothing sounding.
#[test]
fn nonsense_transports_pass_notes_through_and_leave_nothing_sounding() {
    let mut host = plugin(true);
    let mut rng = Rng(0x5EED_0001);
    let tempos = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -120.0, 1e-300, 1e300, 120.0];
    let positions = [-1e6, -4.0, -1e-9, 0.0, 3.999_999, 1e9, 4e9];
    let mut position = 0.0;
    for step in 0..2_000 {
        let tempo = tempos[rng.below(tempos.len() as u64) as usize];
        position = match rng.below(4) {
            0 => positions[rng.below(positions.len() as u64) as usize],
            1 => position - rng.unit() * 8.0,
            _ => position + 0.0092,
        };
        let mut transport = Transport { playing: rng.below(8) != 0, ..Transport::playing(tempo, position) };
        transport.loop_beats = match rng.below(4) {
            0 => Some((4.0, 4.0)),
            1 => Some((8.0, 0.0)),
            2 => Some((-4.0, 1e9)),
            _ => None,
        };
        let notes = random_notes(&mut rng, 6, BLOCK);
        let block = Block { frames: BLOCK, transport: Some(transport), notes: notes.clone(), params: vec![] };
        let out: Vec<_> = host.process(&block).iter().map(|n| (n.time, n.on, n.key)).collect();
        assert_eq!(out, block_keys(&notes), "block {step}: {transport:?}");
    }
    assert!(stop(&mut host).is_empty());
}

/// The same after a variation exists, in replace mode: whatever the transport does, each
/// note-on that comes out is matched by a note-off once the host stops.
#[test]
fn a_transport_jumping_about_during_a_variation_leaves_no_note_hanging() {
    let mut host = plugin(false);
    play_capture_pass(&mut host);
    regenerate(&mut host);

    let mut rng = Rng(0x5EED_0002);
    let mut out = Vec::new();
    let mut playhead = Playhead::new(120.0, None);
    for _ in 0..300 {
        // Play a stretch from a random place, at a random tempo, then jump.
        playhead.start_beat = rng.unit() * 40.0 - 4.0;
        playhead.tempo = [60.0, 120.0, 240.0, f64::NAN][rng.below(4) as usize];
        playhead.played = 0;
        let samples = rng.below(20_000) + 1;
        if playhead.tempo.is_nan() {
            let block = Block {
                frames: BLOCK,
                transport: Some(Transport::playing(f64::NAN, playhead.start_beat)),
                notes: vec![],
                params: vec![],
            };
            out.extend(host.process(&block).into_iter().map(|n| (0, n)));
        } else {
            out.extend(playhead.play(&mut host, samples, true));
        }
    }
    out.extend(stop(&mut host));
    assert_nothing_left_sounding(&out, "jumps during a variation");
}

/// Tempo 1 and 999 BPM, 8 kHz and 384 kHz, blocks of 1 and 8,192 samples: the clip passes
/// through, is captured, and a regenerated variation plays in its bars at the right samples.
#[test]
fn extreme_tempos_sample_rates_and_block_sizes_capture_and_play_in_time() {
    let cases = [(1.0, 8_000.0, 8_192), (1.0, 384_000.0, 8_192), (999.0, 384_000.0, 8_192), (999.0, 8_000.0, 1)];
    for (tempo, sample_rate, block) in cases {
        let case = format!("{tempo} BPM, {sample_rate} Hz, blocks of {block}");
        let mut host = plugin_at(sample_rate, block, false);
        let pass = (CLIP_BEATS * sample_rate * 60.0 / tempo).round() as u64;
        let mut capture = Playhead { sample_rate, block, ..Playhead::new(tempo, None) };
        let out = capture.play(&mut host, pass + u64::from(block), true);
        let input = input_keys(&capture.input_events(pass + u64::from(block)));
        assert_eq!(sorted(keys(&out)), input, "{case}: notes pass through");
        assert_captured_the_melody(&mut host, &case, capture.beats_per_sample());

        let variation = regenerate(&mut host);
        let mut replay = Playhead { sample_rate, block, ..Playhead::new(tempo, None) };
        let out = replay.play(&mut host, pass, true);
        let samples_per_beat = sample_rate * 60.0 / tempo;
        let expected = expected_pass(&replay.input_events(pass), &variation, samples_per_beat);
        assert_same_notes(&sorted(keys(&out)), &expected, &format!("{case}: the variation plays in time"));
        assert_no_hanging_notes(&out);
    }
}

/// Meters Rebar does not handle (it works in 4/4; a 2/2 bar is the same length) and meters no
/// host should report: the notes pass through untouched and nothing is left sounding.
#[test]
fn unsupported_meters_pass_notes_through() {
    for meter in [(3, 4), (6, 8), (7, 8), (5, 4), (12, 16), (0, 0), (4, 0), (0, 4), (u16::MAX, 1), (1, u16::MAX)] {
        let mut host = plugin(false);
        let mut playhead = Playhead { meter, ..Playhead::new(120.0, None) };
        let samples = 2 * (CLIP_BEATS * 24_000.0) as u64;
        let out = playhead.play(&mut host, samples, true);
        assert_eq!(sorted(keys(&out)), input_keys(&playhead.input_events(samples)), "{meter:?}");
        assert!(stop(&mut host).is_empty(), "{meter:?}");
    }
}

/// A thousand note events in one block, while capturing: every one passes through, in order.
#[test]
fn a_thousand_notes_in_one_block_pass_through() {
    let mut host = plugin_at(SAMPLE_RATE, 8_192, false);
    let mut rng = Rng(0x5EED_0003);
    let mut position = 0.0;
    for _ in 0..8 {
        let notes = random_notes(&mut rng, 1_000, 8_192);
        let transport = Transport::playing(120.0, position);
        position += transport.beats_per_block(8_192, SAMPLE_RATE);
        let block = Block { frames: 8_192, transport: Some(transport), notes: notes.clone(), params: vec![] };
        let out: Vec<_> = host.process(&block).iter().map(|n| (n.time, n.on, n.key)).collect();
        assert_eq!(out, block_keys(&notes));
    }
    assert!(stop(&mut host).is_empty());
}

/// Every parameter set to a random value every block, Regenerate pressed at random so that
/// regenerations run while the parameters keep changing: nothing breaks, nothing hangs, and once
/// the host stops automating, a sane Regenerate still brings a variation.
#[test]
fn parameters_changed_every_block_break_nothing() {
    let mut host = plugin(false);
    let regenerate_id = host.param_id("Regenerate").expect("a Regenerate parameter");
    let params: Vec<_> = host.params().iter().map(|p| (p.id, p.min, p.max, p.stepped)).collect();
    let mut rng = Rng(0x5EED_0004);
    let mut playhead = Playhead::new(120.0, None);
    let mut out = Vec::new();
    for block in 0..3 * (CLIP_BEATS * 24_000.0) as u64 / u64::from(BLOCK) {
        for &(id, min, max, stepped) in &params {
            let value = min + rng.unit() * (max - min);
            host.set_param(id, if stepped { value.round() } else { value });
        }
        // Regenerate is pressed now and then, not at random: a press a block would queue
        // regenerations for minutes; these run while the other parameters keep changing.
        host.set_param(regenerate_id, if block % 150 == 40 { 1.0 } else { 0.0 });
        out.extend(playhead.play(&mut host, u64::from(BLOCK), true));
    }
    out.extend(stop(&mut host));
    assert_nothing_left_sounding(&out, "random parameters");

    // Back to a sane setup: once the worker has worked through the presses above (the history
    // stops changing), capture a clean pass and regenerate.
    let mut last = saved_session(&mut host).map(|s| s["history"].clone());
    for _ in 0..60 {
        wait_for(&mut host, 3, |_| false);
        let now = saved_session(&mut host).map(|s| s["history"].clone());
        if now == last {
            break;
        }
        last = now;
    }
    for (name, text) in [("First bar", "3"), ("Last bar", "4"), ("Variations", "1"), ("Capture bars", "8")] {
        set(&mut host, name, text);
    }
    for (name, text) in [("Capture", "Bars from song start"), ("Mode", "Replace"), ("Listen", "On")] {
        set(&mut host, name, text);
    }
    play_capture_pass(&mut host);
    assert!(!regenerate(&mut host).is_empty());
}

/// A host that restarts the plugin over and over (activate, a few blocks, deactivate), and one
/// that loads a saved project while the plugin plays: it keeps passing notes and playing
/// variations, and nothing is left sounding.
#[test]
fn restarts_and_a_state_loaded_mid_playback_break_nothing() {
    let mut host = plugin(false);
    play_capture_pass(&mut host);
    let variation = regenerate(&mut host);
    let saved = host.save_state().expect("the plugin saves its state");

    for cycle in 0..50 {
        host.deactivate();
        host.activate(SAMPLE_RATE, BLOCK).expect("the plugin activates again");
        let mut playhead = Playhead { start_beat: f64::from(cycle % 8) * 4.0, ..Playhead::new(120.0, None) };
        let mut out = playhead.play(&mut host, 4 * u64::from(BLOCK), true);
        out.extend(stop(&mut host));
        assert_nothing_left_sounding(&out, &format!("restart {cycle}"));
    }
    assert_eq!(newest_variation(&mut host), Some(variation.clone()));

    // Another instance plays the bars with the variation; the project is loaded halfway in.
    let mut other = plugin(false);
    let mut playhead = Playhead::new(120.0, None);
    let mut out = playhead.play(&mut other, 12 * 24_000, true);
    other.load_state(&saved).expect("the saved state loads while playing");
    out.extend(playhead.play(&mut other, 12 * 24_000, true));
    out.extend(stop(&mut other));
    assert_nothing_left_sounding(&out, "a project loaded mid-playback");
    assert_eq!(newest_variation(&mut other), Some(variation));
}

/// Saved states that are damaged (cut short, bytes flipped, fields of the wrong type, absurd
/// sizes) or from another version of Rebar: loading either refuses them or starts an empty
/// session, the plugin keeps processing, and the parameters saved beside a damaged session
/// still load.
#[test]
fn damaged_and_foreign_states_load_safely() {
    let mut host = plugin(false);
    set(&mut host, "First bar", "5");
    set(&mut host, "Last bar", "6");
    play_capture_pass(&mut host);
    regenerate(&mut host);
    let saved = host.save_state().expect("the plugin saves its state");
    // nice-plug's CLAP state: the JSON's length (8 bytes, little-endian), then the JSON.
    let (length, json) = saved.split_at(8);
    assert_eq!(u64::from_le_bytes(length.try_into().unwrap()), json.len() as u64, "a length-prefixed state");
    let text = String::from_utf8(json.to_vec()).expect("nice-plug saves JSON");
    let framed = |json: &str| [&(json.len() as u64).to_le_bytes()[..], json.as_bytes()].concat();

    let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in (0..saved.len()).step_by((saved.len() / 40).max(1)) {
        damaged.push((format!("cut at {cut}"), saved[..cut].to_vec()));
    }
    let mut rng = Rng(0x5EED_0005);
    for i in 0..40 {
        let mut bytes = saved.clone();
        for _ in 0..1 + i % 4 {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] = rng.below(256) as u8;
        }
        damaged.push((format!("flipped bytes {i}"), bytes));
    }
    for (name, bytes) in &damaged {
        let mut fresh = ClapHost::load(&built_plugin()).expect("the built plugin loads");
        let _ = fresh.load_state(bytes);
        plays_after_loading(&mut fresh, name);
    }

    // A session damaged inside an intact state: the session starts empty, the parameters beside
    // it load.
    let edits = [
        ("a future session version", r#"\"version\":1"#, r#"\"version\":2"#),
        ("an older session version", r#"\"version\":1"#, r#"\"version\":0"#),
        ("a session version of the wrong type", r#"\"version\":1"#, r#"\"version\":\"one\""#),
        ("a clip of 10^9 bars", r#"\"bars\":8"#, r#"\"bars\":1000000000"#),
        ("a negative pitch", r#"\"pitch\":"#, r#"\"pitch\":-"#),
        ("a NaN start", r#"\"start\":"#, r#"\"start\":NaN,\"x\":"#),
        ("a huge start", r#"\"start\":"#, r#"\"start\":1e308,\"x\":"#),
        ("a renamed history", "history", "histxry"),
        ("a session that is not JSON", r#""session":""#, r#""session":"]]"#),
    ];
    for (name, from, to) in edits {
        assert!(text.contains(from), "{name}: the saved state has no {from}");
        let mut fresh = ClapHost::load(&built_plugin()).expect("the built plugin loads");
        fresh.load_state(&framed(&text.replacen(from, to, 1))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let first = fresh.param_id("First bar").expect("a First bar parameter");
        let value = fresh.param_value(first).expect("First bar has a value");
        assert_eq!(fresh.value_to_text(first, value).as_deref(), Some("5"), "{name}: the parameters load");
        assert_eq!(saved_session(&mut fresh).map(|s| s["clip"].is_null()), Some(true), "{name}: the session is empty");
        plays_after_loading(&mut fresh, name);
    }

    // A state from a later Rebar loads what it can.
    let future = text.replacen(r#""version":""#, r#""version":"99."#, 1);
    assert_ne!(future, text, "the saved state names Rebar's version");
    let mut fresh = ClapHost::load(&built_plugin()).expect("the built plugin loads");
    fresh.load_state(&framed(&future)).expect("a later version's state loads");
    plays_after_loading(&mut fresh, "a later version");
}

/// Activates a plugin that just loaded a (possibly damaged) state and plays a pass through it:
/// the notes come out, and none is left sounding.
fn plays_after_loading(host: &mut ClapHost, case: &str) {
    host.activate(SAMPLE_RATE, BLOCK).unwrap_or_else(|e| panic!("{case}: {e}"));
    let mut playhead = Playhead::new(120.0, None);
    let samples = (CLIP_BEATS * 24_000.0) as u64;
    let mut out = playhead.play(host, samples, true);
    assert!(!out.is_empty(), "{case}: nothing played");
    out.extend(stop(host));
    assert_nothing_left_sounding(&out, case);
}
