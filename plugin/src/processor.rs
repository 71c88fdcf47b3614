//! The real-time path, one block at a time: adopt a finished playback, send a Regenerate
//! press to the worker, capture the input, pass it through (muting the selected bars in replace
//! mode) and merge in the chosen variation's events in time order.
//!
//! Everything here is sized in [`Processor::new`] (called from `activate`); a block never
//! allocates, frees, locks or waits. It is independent of the plugin API, so tests drive it
//! without a host.

use std::sync::atomic::Ordering;

use crossbeam_channel::TrySendError;

use crate::capture::Capture;
use crate::clip::Region;
use crate::schedule::{OutEvent, Playback, Scheduler};
use crate::timeline::{same_place, BlockTimeline};
use crate::worker::{AudioEnds, Request, ToWorker};

/// Notes a capture pass can hold.
pub const CAPTURE_CAPACITY: usize = 8192;
/// Generated events a block can hold.
const BLOCK_EVENTS: usize = 1024;
/// Positions closer than this are the same up to float error (a host's exact positions and
/// Rebar's sum of block lengths).
const FLOAT_SLACK_BEATS: f64 = 1e-9;

/// How a block should behave, read from the parameters.
#[derive(Copy, Clone, Debug)]
pub struct BlockSettings {
    /// Capture passes replace the clip.
    pub listen: bool,
    /// Where capture listens.
    pub region: Region,
    /// Mute the input in the variation's bars.
    pub replace: bool,
    /// 0 follows the newest variation, n plays the n-th; `None` plays the original.
    pub variation: Option<usize>,
    /// The Regenerate trigger's current state; a rising edge sends `request`.
    pub regenerate: bool,
    pub request: Request,
}

/// A note event as the processor sees it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum NoteIn {
    On {
        channel: u8,
        key: u8,
        velocity: f32,
    },
    Off {
        channel: u8,
        key: u8,
    },
    /// A note-off for every key (a wildcard off): ends muting too.
    AllOff,
}

/// An input event: its sample, and what it is if it is a note.
pub trait InputEvent: Copy {
    fn timing(&self) -> u32;
    fn note(&self) -> Option<NoteIn>;
}

/// What the block sends out.
pub enum Output<E> {
    /// An input event, unchanged.
    Pass(E),
    Generated(OutEvent),
}

/// The audio thread's state.
pub struct Processor {
    ends: AudioEnds,
    capture: Capture,
    scheduler: Scheduler,
    playback: Box<Playback>,
    /// Input notes muted at their note-on, so their note-off is muted too.
    muted: Box<[bool; 2048]>,
    regenerate_was_on: bool,
    expected_start: Option<f64>,
    playing_variation: Option<usize>,
    bpm: f64,
}

impl Processor {
    /// Allocates every buffer a block will use.
    pub fn new(ends: AudioEnds, region: Region) -> Self {
        Self {
            ends,
            capture: Capture::new(CAPTURE_CAPACITY, region),
            scheduler: Scheduler::new(BLOCK_EVENTS),
            playback: Box::default(),
            muted: Box::new([false; 2048]),
            regenerate_was_on: false,
            expected_start: None,
            playing_variation: None,
            bpm: 120.0,
        }
    }

    /// Processes one block: `next` yields the input events in time order, `send` takes the
    /// output in time order.
    pub fn process<E: InputEvent>(
        &mut self,
        timeline: Option<BlockTimeline>,
        tempo: Option<f64>,
        settings: &BlockSettings,
        mut next: impl FnMut() -> Option<E>,
        mut send: impl FnMut(Output<E>),
    ) {
        self.scheduler.out.clear();
        self.adopt_new_playback();
        if settings.regenerate && !self.regenerate_was_on {
            // A full queue drops the press rather than wait; the worker is busy anyway.
            let _ = self.ends.to_worker.try_send(ToWorker::Regenerate(settings.request));
        }
        self.regenerate_was_on = settings.regenerate;
        if let Some(bpm) = tempo.filter(|t| t.is_finite() && *t > 0.0) {
            self.bpm = bpm;
        }

        // A block the host placed within its rounding of where the last one ended continues it,
        // and starts exactly there: blocks then tile the timeline, so no note at a block edge
        // is played twice or skipped, and capture sees time only move forwards. A host that
        // reports exact positions keeps them, which also stops float error adding up.
        let continuous = match (timeline, self.expected_start) {
            (Some(t), Some(expected)) => same_place(t.start_beats, expected, t.beats_per_sample),
            _ => false,
        };
        let timeline = match (timeline, self.expected_start) {
            (Some(t), Some(expected)) if continuous && (t.start_beats - expected).abs() > FLOAT_SLACK_BEATS => {
                Some(BlockTimeline { start_beats: expected, ..t })
            }
            _ => timeline,
        };
        // A jump or a switch of variation silences what the scheduler left sounding.
        let variation_index = self.variation_index(settings);
        if !continuous || variation_index != self.playing_variation {
            self.scheduler.release_all(0);
            self.playing_variation = variation_index;
        }
        let variation = variation_index.and_then(|i| self.playback.variations.get(i));
        if let (Some(t), Some(v)) = (timeline.as_ref(), variation) {
            self.scheduler.render(t, v);
        }

        if settings.listen {
            self.capture.set_region(settings.region);
        }
        let listen = settings.listen && timeline.is_some();
        if listen {
            let t = timeline.as_ref().expect("checked");
            self.capture.advance(t.start_beats, continuous, t.beats_per_sample);
        } else {
            self.capture.interrupt();
        }

        let mut generated = 0;
        while let Some(event) = next() {
            while let Some(out) = self.scheduler.out.get(generated).filter(|o| o.timing <= event.timing()) {
                send(Output::Generated(*out));
                generated += 1;
            }
            let beat = timeline.as_ref().map(|t| t.beat_at(event.timing()));
            let note = event.note();
            // Half a sample of slack for a note-on: one played on the sample of a bar line belongs
            // to the bar it starts, whatever the last bits of the block's position say. So it is
            // muted by that bar's selection, and one on the sample of the capture region's end
            // starts the next pass rather than leaving a sliver at the end of this one (a
            // note-off there still ends its note in this pass).
            let slack = match (note, timeline.as_ref()) {
                (Some(NoteIn::On { .. }), Some(t)) => 0.5 * t.beats_per_sample,
                _ => 0.0,
            };
            // The capture catches up to a note's beat before recording it.
            let capturing = listen && matches!(note, Some(NoteIn::On { .. } | NoteIn::Off { .. }));
            if let (true, Some(beat), Some(t)) = (capturing, beat, timeline.as_ref()) {
                self.capture.advance(beat + slack, true, t.beats_per_sample);
            }
            let pass = match note {
                Some(NoteIn::On { channel, key, velocity }) => {
                    if let (true, Some(beat)) = (capturing, beat) {
                        self.capture.note_on(channel, key, velocity, beat);
                    }
                    let mute = settings.replace
                        && match (variation, beat) {
                            (Some(v), Some(beat)) => v.is_selected(v.region.bar_at(v.region.position(beat + slack))),
                            _ => false,
                        };
                    self.muted[slot(channel, key)] = mute;
                    !mute
                }
                Some(NoteIn::Off { channel, key }) => {
                    if capturing {
                        self.capture.note_off(channel, key);
                    }
                    !std::mem::replace(&mut self.muted[slot(channel, key)], false)
                }
                Some(NoteIn::AllOff) => {
                    self.muted.fill(false);
                    true
                }
                None => true,
            };
            if pass {
                send(Output::Pass(event));
            }
        }
        for out in &self.scheduler.out[generated..] {
            send(Output::Generated(*out));
        }

        if let Some(t) = timeline.as_ref() {
            if listen {
                self.capture.advance(t.expected_next_start(), true, t.beats_per_sample);
            }
            self.expected_start = Some(t.expected_next_start());
        } else {
            self.expected_start = None;
        }
        self.hand_over_capture();
    }

    /// Whether the saved session changed since the last call (a new clip or new variations):
    /// the host should then mark the project modified.
    pub fn take_session_changed(&self) -> bool {
        self.ends.session_changed.swap(false, Ordering::Relaxed)
    }

    /// Note-offs for every generated note still sounding, e.g. when processing stops.
    pub fn release(&mut self, mut send: impl FnMut(OutEvent)) {
        self.scheduler.out.clear();
        self.scheduler.release_all(0);
        self.scheduler.out.iter().for_each(|e| send(*e));
        self.scheduler.out.clear();
        self.expected_start = None;
    }

    fn variation_index(&self, settings: &BlockSettings) -> Option<usize> {
        let count = self.playback.variations.len();
        match settings.variation? {
            0 => count.checked_sub(1),
            n => (n <= count).then(|| n - 1),
        }
    }

    /// Swaps in a playback from the worker and sends the old one back to be freed there.
    fn adopt_new_playback(&mut self) {
        // Only take a new playback when the old one can certainly go back.
        if self.ends.to_worker.is_full() {
            return;
        }
        let Ok(new) = self.ends.playbacks.try_recv() else { return };
        self.scheduler.release_all(0);
        self.playing_variation = None;
        let old = std::mem::replace(&mut self.playback, new);
        if let Err(TrySendError::Full(message) | TrySendError::Disconnected(message)) =
            self.ends.to_worker.try_send(ToWorker::Dispose(old))
        {
            // Unreachable while only this thread sends; leak rather than free here.
            std::mem::forget(message);
        }
    }

    /// Sends a completed capture pass to the worker in a recycled buffer.
    fn hand_over_capture(&mut self) {
        if self.ends.to_worker.is_full() || self.ends.empty_clips.is_empty() {
            return; // keep the pass for later
        }
        let region = self.capture.region();
        let Some(notes) = self.capture.take_completed() else { return };
        let Ok(mut buffer) = self.ends.empty_clips.try_recv() else { return };
        buffer.clear();
        // The buffer was allocated with the capture's capacity, so this never reallocates.
        buffer.extend_from_slice(&notes[..notes.len().min(buffer.capacity())]);
        let message = ToWorker::Captured { notes: buffer, region, bpm: self.bpm };
        if let Err(TrySendError::Full(message) | TrySendError::Disconnected(message)) =
            self.ends.to_worker.try_send(message)
        {
            std::mem::forget(message);
        }
    }
}

fn slot(channel: u8, key: u8) -> usize {
    usize::from(channel & 15) * 128 + usize::from(key & 127)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::ClipNote;
    use crate::params::{KeyRoot, RepeatMode, ScaleKind};
    use crate::schedule::Variation;
    use crossbeam_channel::{bounded, Receiver, Sender};

    #[derive(Copy, Clone, Debug, PartialEq)]
    struct Ev {
        timing: u32,
        note: NoteIn,
    }

    impl InputEvent for Ev {
        fn timing(&self) -> u32 {
            self.timing
        }
        fn note(&self) -> Option<NoteIn> {
            Some(self.note)
        }
    }

    struct Rig {
        processor: Processor,
        worker_inbox: Receiver<ToWorker>,
        playbacks: Sender<Box<Playback>>,
    }

    fn rig() -> Rig {
        let (to_worker, worker_inbox) = bounded(8);
        let (playbacks, playback_rx) = bounded(2);
        let (empty_tx, empty_clips) = bounded(2);
        empty_tx.send(Vec::with_capacity(CAPTURE_CAPACITY)).unwrap();
        std::mem::forget(empty_tx); // keep the channel open
        let ends = AudioEnds { to_worker, playbacks: playback_rx, empty_clips, session_changed: Default::default() };
        Rig { processor: Processor::new(ends, Region { start_beats: 0.0, bars: 1 }), worker_inbox, playbacks }
    }

    fn settings(regenerate: bool) -> BlockSettings {
        BlockSettings {
            listen: true,
            region: Region { start_beats: 0.0, bars: 1 },
            replace: true,
            variation: Some(0),
            regenerate,
            request: Request {
                selected_bars: 1,
                variations: 2,
                temperature: 1.0,
                seed: 7,
                key_root: KeyRoot::Any,
                key_scale: ScaleKind::Major,
                stick_to_kept: false,
                repeats: RepeatMode::Drawn,
            },
        }
    }

    /// 120 BPM at 48 kHz: 24,000 samples a beat; a 1-bar region is 96,000 samples.
    fn timeline(start: f64, samples: u32) -> Option<BlockTimeline> {
        BlockTimeline::new(true, Some(start), Some(120.0), 48_000.0, samples, None)
    }

    /// Runs one block; returns (timing, is_generated, note).
    fn run(rig: &mut Rig, t: Option<BlockTimeline>, s: &BlockSettings, input: &[Ev]) -> Vec<(u32, bool, NoteIn)> {
        let mut events = input.iter().copied();
        let mut out = Vec::new();
        rig.processor.process(
            t,
            Some(120.0),
            s,
            || events.next(),
            |o| match o {
                Output::Pass(e) => out.push((e.timing, false, e.note)),
                Output::Generated(g) => out.push((
                    g.timing,
                    true,
                    if g.on {
                        NoteIn::On { channel: g.channel, key: g.pitch, velocity: g.velocity }
                    } else {
                        NoteIn::Off { channel: g.channel, key: g.pitch }
                    },
                )),
            },
        );
        out
    }

    fn on(timing: u32, key: u8) -> Ev {
        Ev { timing, note: NoteIn::On { channel: 0, key, velocity: 0.5 } }
    }
    fn off(timing: u32, key: u8) -> Ev {
        Ev { timing, note: NoteIn::Off { channel: 0, key } }
    }

    #[test]
    fn input_passes_through_and_a_whole_pass_reaches_the_worker() {
        let mut rig = rig();
        let s = settings(false);
        // One bar in four blocks of one beat, a note in each beat, then the next bar's first block.
        for beat in 0..5u32 {
            let input = [on(0, 60 + beat as u8), off(12_000, 60 + beat as u8)];
            let out = run(&mut rig, timeline(f64::from(beat), 24_000), &s, &input);
            assert_eq!(out, input.iter().map(|e| (e.timing, false, e.note)).collect::<Vec<_>>());
        }
        match rig.worker_inbox.try_recv() {
            Ok(ToWorker::Captured { notes, region, .. }) => {
                assert_eq!(region.bars, 1);
                let keys: Vec<(f64, f64, u8)> = notes.iter().map(|n| (n.start, n.length, n.pitch)).collect();
                assert_eq!(keys, vec![(0.0, 0.5, 60), (1.0, 0.5, 61), (2.0, 0.5, 62), (3.0, 0.5, 63)]);
            }
            _ => panic!("no capture reached the worker"),
        }
    }

    #[test]
    fn replace_mode_mutes_the_selected_bars_and_plays_the_variation_on_time() {
        let mut rig = rig();
        let region = Region { start_beats: 0.0, bars: 2 };
        let generated = [ClipNote { start: 4.5, length: 1.0, pitch: 72, velocity: 0.8, channel: 0 }];
        // Bar 2 (index 1) is the variation's.
        rig.playbacks.send(Box::new(Playback { variations: vec![Variation::new(region, 0b10, &generated)] })).unwrap();
        let s = BlockSettings { region, ..settings(false) };
        // Bar 1, beat 0: input passes.
        let out = run(&mut rig, timeline(0.0, 24_000), &s, &[on(100, 60), off(200, 60)]);
        assert_eq!(
            out,
            vec![
                (100, false, NoteIn::On { channel: 0, key: 60, velocity: 0.5 }),
                (200, false, NoteIn::Off { channel: 0, key: 60 })
            ]
        );
        // Jump to bar 2, beat 4 (a discontinuity is fine): input muted, the variation plays at 4.5 and ends at 5.5.
        let out = run(&mut rig, timeline(4.0, 24_000), &s, &[on(0, 62), on(20_000, 64)]);
        assert_eq!(out, vec![(12_000, true, NoteIn::On { channel: 0, key: 72, velocity: 0.8 })]);
        let out = run(&mut rig, timeline(5.0, 24_000), &s, &[off(10, 62), off(30, 64)]);
        assert_eq!(out, vec![(12_000, true, NoteIn::Off { channel: 0, key: 72 })]);
    }

    #[test]
    fn a_stop_releases_generated_notes_and_a_null_transport_passes_input() {
        let mut rig = rig();
        let region = Region { start_beats: 0.0, bars: 1 };
        let generated = [ClipNote { start: 0.0, length: 3.0, pitch: 70, velocity: 0.8, channel: 0 }];
        rig.playbacks.send(Box::new(Playback { variations: vec![Variation::new(region, 0b1, &generated)] })).unwrap();
        let s = settings(false);
        let out = run(&mut rig, timeline(0.0, 512), &s, &[]);
        assert_eq!(out, vec![(0, true, NoteIn::On { channel: 0, key: 70, velocity: 0.8 })]);
        let out = run(&mut rig, None, &s, &[on(5, 61)]);
        assert_eq!(
            out,
            vec![
                (0, true, NoteIn::Off { channel: 0, key: 70 }),
                (5, false, NoteIn::On { channel: 0, key: 61, velocity: 0.5 })
            ]
        );
        // The old playback went back to the worker to be freed there.
        assert!(rig.worker_inbox.try_iter().any(|m| matches!(m, ToWorker::Dispose(_))));
    }

    #[test]
    fn regenerate_fires_once_per_press() {
        let mut rig = rig();
        for pressed in [false, true, true, false, true] {
            run(&mut rig, None, &settings(pressed), &[]);
        }
        let requests: Vec<Request> = rig
            .worker_inbox
            .try_iter()
            .filter_map(|m| if let ToWorker::Regenerate(r) = m { Some(r) } else { None })
            .collect();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].seed, 7);
    }
}
