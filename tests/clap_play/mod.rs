//! Playing the built plugin through the [`crate::clap_host`] harness as a DAW would: a
//! playhead that loops the test clip under the host transport block by block, the plugin set up
//! to capture 8 bars and regenerate bars 3–4, and the checks on what comes out.

#![allow(dead_code)] // Each test binary uses a different part of it.

use std::time::{Duration, Instant};

use crate::clap_host::{Block, ClapHost, InNote, OutNote, Transport};
use rebar_tests::{built_plugin, clip_notes, eight_bar_melody, session_from_state};

/// The sample rate most tests activate the plugin at.
pub const SAMPLE_RATE: f64 = 48_000.0;
/// Not a divisor of a bar's length at these tempos, so blocks straddle bar lines and loop ends.
pub const BLOCK: u32 = 441;
/// The clip: 8 bars of 4/4.
pub const CLIP_BEATS: f64 = 32.0;

/// A played stretch of song time, block by block, with the input clip looping under it.
pub struct Playhead {
    pub tempo: f64,
    pub sample_rate: f64,
    /// Samples per block.
    pub block: u32,
    /// The tick grid the host rounds each block's reported song position to (Ardour counts 1,920
    /// ticks a beat, Qtractor 960); `None` reports it exactly.
    pub ticks_per_beat: Option<f64>,
    /// The meter the host reports, and how many quarter notes its reported beat counts: 1 as
    /// CLAP defines it, 2 for a host that counts the half notes of 2/2 (Qtractor does).
    pub meter: (u16, u16),
    pub quarters_per_reported_beat: f64,
    /// Samples played so far in this stretch.
    pub played: u64,
    /// Song beat where the stretch started.
    pub start_beat: f64,
    /// The host loop, if any; the song position wraps from its end to its start.
    pub host_loop: Option<(f64, f64)>,
}

impl Playhead {
    /// A stretch from the song start at [`SAMPLE_RATE`] in blocks of [`BLOCK`], reported exactly.
    pub fn new(tempo: f64, host_loop: Option<(f64, f64)>) -> Self {
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

    pub fn beats_per_sample(&self) -> f64 {
        self.tempo / 60.0 / self.sample_rate
    }

    /// The song beat at `sample` samples into the stretch (wrapping at the loop end).
    pub fn song_beat(&self, sample: u64) -> f64 {
        let beat = self.start_beat + sample as f64 * self.beats_per_sample();
        match self.host_loop {
            Some((a, b)) if beat >= b => a + (beat - a) % (b - a),
            _ => beat,
        }
    }

    /// The sample (into the stretch) where each input note event falls, for `samples` samples:
    /// the clip repeats every [`CLIP_BEATS`].
    pub fn input_events(&self, samples: u64) -> Vec<(u64, InNote)> {
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
    pub fn play(&mut self, host: &mut ClapHost, samples: u64, transport: bool) -> Vec<(u64, OutNote)> {
        let end = self.played + samples;
        // The events from the stretch start, less those played by earlier calls.
        let events = self.input_events(end);
        let mut next = events.partition_point(|(at, _)| *at < self.played);
        let mut out = Vec::new();
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

/// Plays one pass of the clip from the song start at 120 BPM, at [`SAMPLE_RATE`], and a block
/// past its end so the pass completes: what a musician does to have Rebar capture the clip.
pub fn play_capture_pass(host: &mut ClapHost) -> Vec<(u64, OutNote)> {
    let samples = (CLIP_BEATS * SAMPLE_RATE * 60.0 / 120.0) as u64 + u64::from(BLOCK);
    Playhead::new(120.0, None).play(host, samples, true)
}

/// A loaded, activated plugin set up to capture 8 bars and regenerate bars 3–4 in one variation.
pub fn plugin(capture_from_loop: bool) -> ClapHost {
    plugin_at(SAMPLE_RATE, BLOCK, capture_from_loop)
}

/// [`plugin`], activated at `sample_rate` for blocks of up to `max_block` samples.
pub fn plugin_at(sample_rate: f64, max_block: u32, capture_from_loop: bool) -> ClapHost {
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

pub fn set(host: &mut ClapHost, name: &str, text: &str) {
    let id = host.param_id(name).unwrap_or_else(|| panic!("the plugin has a parameter {name:?}"));
    let value = host.text_to_value(id, text).unwrap_or_else(|| panic!("{name:?} takes {text:?}"));
    host.set_param(id, value);
}

/// The saved session, as JSON.
pub fn saved_session(host: &mut ClapHost) -> Option<serde_json::Value> {
    session_from_state(&host.save_state().ok()?)
}

/// The saved session's newest variation: its (start beat, length, pitch) notes.
pub fn newest_variation(host: &mut ClapHost) -> Option<Vec<(f64, f64, u8)>> {
    clip_notes(&saved_session(host)?["history"].as_array()?.last()?["clip"])
}

/// The saved session's captured clip: its (start beat, length, pitch) notes.
pub fn captured_clip(host: &mut ClapHost) -> Option<Vec<(f64, f64, u8)>> {
    clip_notes(&saved_session(host)?["clip"])
}

/// Processes stopped-transport blocks, as a host does between passes, until `done` holds or
/// `seconds` pass; returns whether it held.
pub fn wait_for(host: &mut ClapHost, seconds: u64, mut done: impl FnMut(&mut ClapHost) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stopped = Some(Transport::stopped(120.0, 0.0));
    let frames = host.max_block().min(64);
    while Instant::now() < deadline {
        host.process(&Block { frames, transport: stopped, notes: vec![], params: vec![] });
        if done(host) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Presses Regenerate (on for one block, then off) and waits for the worker's variation,
/// processing stopped-transport blocks meanwhile as a host would.
pub fn regenerate(host: &mut ClapHost) -> Vec<(f64, f64, u8)> {
    let before = newest_variation(host);
    let id = host.param_id("Regenerate").expect("a Regenerate parameter");
    let stopped = Some(Transport::stopped(120.0, 0.0));
    let frames = host.max_block().min(BLOCK);
    host.process(&Block { frames, transport: stopped, notes: vec![], params: vec![(id, 1.0)] });
    host.process(&Block { frames, transport: stopped, notes: vec![], params: vec![(id, 0.0)] });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        host.process(&Block { frames, transport: stopped, notes: vec![], params: vec![] });
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
pub fn keys(notes: &[(u64, OutNote)]) -> Vec<(u64, bool, u8)> {
    notes.iter().map(|(t, n)| (*t, n.on, n.key)).collect()
}

/// (sample, on, key) of input notes, sorted, for comparing with [`keys`].
pub fn input_keys(notes: &[(u64, InNote)]) -> Vec<(u64, bool, u8)> {
    sorted(notes.iter().map(|(t, n)| (*t, n.on, n.key)).collect())
}

/// What a pass from the song start must sound like: the input outside bars 3–4, the variation
/// inside, at the samples its beats fall on at `samples_per_beat`.
pub fn expected_pass(
    input: &[(u64, InNote)],
    variation: &[(f64, f64, u8)],
    samples_per_beat: f64,
) -> Vec<(u64, bool, u8)> {
    // A note on the sample nearest a bar line belongs to the bar it starts (half a sample of
    // slack, as the plugin rounds it).
    let in_selection = |sample: u64| (8.0..16.0).contains(&((sample as f64 + 0.5) / samples_per_beat));
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

/// Asserts two sorted note streams are equal, naming only the notes in one and not the other.
pub fn assert_same_notes(got: &[(u64, bool, u8)], want: &[(u64, bool, u8)], case: &str) {
    let only_got: Vec<_> = got.iter().filter(|n| !want.contains(n)).take(10).collect();
    let only_want: Vec<_> = want.iter().filter(|n| !got.contains(n)).take(10).collect();
    assert!(
        got == want,
        "{case}: {} notes, {} expected; only played: {only_got:?}; only expected: {only_want:?}",
        got.len(),
        want.len()
    );
}

pub fn sorted(mut notes: Vec<(u64, bool, u8)>) -> Vec<(u64, bool, u8)> {
    notes.sort();
    notes
}

pub fn assert_no_hanging_notes(out: &[(u64, OutNote)]) {
    let mut sounding = ons_less_offs(out);
    sounding.retain(|_, count| *count != 0);
    assert!(sounding.is_empty(), "notes left sounding (key: ons − offs): {sounding:?}");
}

/// Per key, note-ons less note-offs.
pub fn ons_less_offs(out: &[(u64, OutNote)]) -> std::collections::BTreeMap<u8, i64> {
    let mut balance = std::collections::BTreeMap::new();
    for (_, n) in out {
        *balance.entry(n.key).or_default() += if n.on { 1 } else { -1 };
    }
    balance
}

/// Waits for the worker to store the captured clip and checks it is [`eight_bar_melody`], each
/// time to within 1/1000 beat or, where a sample is longer, a sample (`beats_per_sample`).
pub fn assert_captured_the_melody(host: &mut ClapHost, case: &str, beats_per_sample: f64) {
    let tolerance = (1e-3f64).max(beats_per_sample * 1.001);
    assert!(wait_for(host, 10, |h| captured_clip(h).is_some()), "{case}: nothing captured");
    let captured = captured_clip(host).expect("checked");
    let expected = eight_bar_melody();
    assert_eq!(captured.len(), expected.len(), "{case}: captured {captured:?}");
    for (got, want) in captured.iter().zip(&expected) {
        let close = (got.0 - want.0).abs() < tolerance && (got.1 - want.1).abs() < tolerance && got.2 == want.2;
        assert!(close, "{case}: captured {got:?} for {want:?}");
    }
}
