//! Rebar as a CLAP + VST3 note-effect plugin: capture the clip played through it, select bars,
//! Regenerate, and hear the new bars in time with the song.
//!
//! - [`clip`]: the clip model and its region on the song timeline;
//! - [`timeline`]: where a block lies on that timeline, from the host transport, whose beats
//!   [`beat_unit`] turns into quarter notes;
//! - [`capture`] and [`schedule`]: recording and playing notes on the audio thread;
//! - [`processor`]: the real-time path of one block;
//! - [`worker`]: the engine on a background thread;
//! - [`session`] and [`params`]: what is saved with the project;
//! - [`editor`]: the window; [`export`]: the clip as a MIDI file; [`drag`]: that file dragged
//!   out of the window.

pub mod beat_unit;
pub mod capture;
pub mod clip;
pub mod drag;
pub mod editor;
pub mod export;
pub mod params;
pub mod processor;
pub mod schedule;
pub mod session;
pub mod timeline;
pub mod worker;

use std::sync::Arc;

use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use parking_lot::Mutex;
use rebar_engine::time::{samples_to_beats, BEATS_PER_BAR};

use crate::beat_unit::BeatUnit;
use crate::clip::Region;
use crate::params::{CaptureSource, PlayMode, RebarParams};
use crate::processor::{BlockSettings, InputEvent, NoteIn, Output, Processor};
use crate::timeline::BlockTimeline;
use crate::worker::{Request, Shared, Status, Worker};

pub struct Rebar {
    params: Arc<RebarParams>,
    shared: Arc<Shared>,
    worker: Option<Worker>,
    processor: Option<Processor>,
    beat_unit: BeatUnit,
}

impl Default for Rebar {
    fn default() -> Self {
        let params = Arc::new(RebarParams::default());
        let shared = Arc::new(Shared { session: params.session.clone(), status: Mutex::new(Status::default()) });
        Self { params, shared, worker: None, processor: None, beat_unit: BeatUnit::default() }
    }
}

impl Rebar {
    /// The host loop in quarter notes, where it is active and not empty.
    fn host_loop(&self, transport: &Transport) -> Option<(f64, f64)> {
        let scale = self.beat_unit.quarters_per_beat();
        transport
            .loop_range_beats()
            .map(|(a, b)| (a * scale, b * scale))
            .filter(|(a, b)| a.is_finite() && b.is_finite() && b > a)
    }

    /// The block's settings from the parameters and the block's host loop (in quarter notes).
    fn settings(&self, host_loop: Option<(f64, f64)>) -> BlockSettings {
        let p = &self.params;
        let bars_param = p.capture_bars.value().clamp(1, clip::MAX_BARS as i32) as u32;
        let region = match (p.capture_source.value(), host_loop) {
            (CaptureSource::HostLoop, Some((start, end))) => Region {
                start_beats: start,
                bars: (((end - start) / f64::from(BEATS_PER_BAR)).ceil() as u32).clamp(1, clip::MAX_BARS),
            },
            _ => Region { start_beats: 0.0, bars: bars_param },
        };
        let first = p.selection_first.value().max(1) as u32 - 1;
        let last = (p.selection_last.value().max(1) as u32 - 1).max(first);
        let selected_bars = (first..=last.min(63)).fold(0u64, |bits, bar| bits | (1 << bar));
        BlockSettings {
            listen: p.listen.value(),
            region,
            replace: p.mode.value() == PlayMode::Replace,
            variation: (!p.play_original.value()).then_some(p.variation.value().max(0) as usize),
            regenerate: p.regenerate.value(),
            request: Request {
                selected_bars,
                variations: p.variations.value().max(1) as u32,
                temperature: p.temperature.value(),
                seed: p.seed.value().max(0) as u64,
                key_root: p.key_root.value(),
                key_scale: p.key_scale.value(),
                stick_to_kept: p.stick_to_kept.value(),
                repeats: p.repeats.value(),
            },
        }
    }
}

impl InputEvent for NoteEvent<()> {
    fn timing(&self) -> u32 {
        NoteEvent::timing(self)
    }

    fn note(&self) -> Option<NoteIn> {
        match *self {
            NoteEvent::NoteOn { channel, key, velocity, .. } => match (channel.number(), key.number()) {
                (Some(channel), Some(key)) => Some(NoteIn::On { channel, key, velocity }),
                _ => None,
            },
            NoteEvent::NoteOff { channel, key, .. } => match (channel.number(), key.number()) {
                (Some(channel), Some(key)) => Some(NoteIn::Off { channel, key }),
                _ => Some(NoteIn::AllOff),
            },
            _ => None,
        }
    }
}

fn to_note_event(event: schedule::OutEvent) -> NoteEvent<()> {
    let (channel, key) = (Channel::Number(event.channel), Key::Number(event.pitch));
    if event.on {
        NoteEvent::NoteOn { timing: event.timing, voice_id: VoiceID::Wildcard, channel, key, velocity: event.velocity }
    } else {
        NoteEvent::NoteOff { timing: event.timing, voice_id: VoiceID::Wildcard, channel, key, velocity: 0.0 }
    }
}

impl Plugin for Rebar {
    const NAME: &'static str = "Rebar";
    const VENDOR: &'static str = "Rebar";
    const URL: &'static str = "https://example.invalid/rebar";
    const EMAIL: &'static str = "rebar@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    // A note effect: MIDI in, MIDI out, no audio.
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
        main_input_channels: None,
        main_output_channels: None,
        aux_input_ports: &[],
        aux_output_ports: &[],
        names: PortNames::const_default(),
    }];
    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::MidiCCs;
    const SAMPLE_ACCURATE_AUTOMATION: bool = true;

    type Editor = nice_plug_egui::EguiEditor<editor::RebarEditor>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(self.params.clone(), self.shared.clone())
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        _buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        // Everything the audio thread uses is allocated here. A restored project's session is
        // already in place, so the worker's first playback is its history.
        self.processor = None;
        self.worker = None;
        match Worker::start(self.shared.clone(), processor::CAPTURE_CAPACITY) {
            Ok((worker, ends)) => {
                let region = Region { start_beats: 0.0, bars: self.params.capture_bars.value().max(1) as u32 };
                self.processor = Some(Processor::new(ends, region));
                self.worker = Some(worker);
                true
            }
            Err(e) => {
                nice_error!("Rebar could not start its worker thread: {e}");
                false
            }
        }
    }

    fn deactivate(&mut self) {
        self.processor = None;
        self.worker = None;
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let transport = context.transport();
        let samples = buffer.samples() as u32;
        let block = match (transport.playing, transport.pos_beats(), transport.tempo) {
            (true, Some(position), Some(bpm)) => Some((
                position,
                transport.time_sig_denominator,
                samples_to_beats(f64::from(samples), bpm, f64::from(transport.sample_rate)),
            )),
            _ => None,
        };
        self.beat_unit.observe(block);
        let host_loop = self.host_loop(transport);
        let timeline = BlockTimeline::new(
            transport.playing,
            transport.pos_beats().map(|p| p * self.beat_unit.quarters_per_beat()),
            transport.tempo,
            transport.sample_rate,
            samples,
            host_loop,
        );
        let tempo = transport.tempo;
        let settings = self.settings(host_loop);
        let Some(processor) = self.processor.as_mut() else {
            while let Some(event) = context.next_event() {
                let _ = context.try_send_event(event);
            }
            return ProcessStatus::Normal;
        };
        // Reading input and sending output both need the context, in alternation.
        let context = std::cell::RefCell::new(context);
        processor.process(
            timeline,
            tempo,
            &settings,
            || context.borrow_mut().next_event(),
            |out| {
                let event = match out {
                    Output::Pass(event) => event,
                    Output::Generated(event) => to_note_event(event),
                };
                let _ = context.borrow_mut().try_send_event(event);
            },
        );
        let context = context.into_inner();
        if processor.take_session_changed() {
            context.mark_state_dirty();
        }
        ProcessStatus::Normal
    }
}

impl ClapPlugin for Rebar {
    const CLAP_ID: &'static str = "invalid.example.rebar";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Rewrites selected bars of a MIDI clip with latent diffusion");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::NoteEffect, ClapFeature::Utility];
}

impl Vst3Plugin for Rebar {
    const VST3_CLASS_ID: [u8; 16] = *b"RebarLatentDiff1";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Instrument, Vst3SubCategory::Tools];
}

nice_export_clap!(Rebar);
nice_export_vst3!(Rebar);
