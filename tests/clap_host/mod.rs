//! A minimal, synchronous CLAP host for end-to-end tests of the built plugin.
//!
//! It is one file of more than 500 lines because it is one thing: the host side of one plugin
//! API, whose pieces (loading, the host callbacks, buses, events, transport, state) only make
//! sense together.
//!
//! The unit tests of the plugin crate exercise its Rust code directly; they cannot show that the
//! *shipped binary* behaves when a DAW drives it through the CLAP ABI: that it exports a
//! `clap_entry`, describes itself as a note effect, exposes its parameters, takes automation,
//! reads the transport, turns note events in into note events out, and restores saved state.
//! This module loads the built `.clap` (on Linux just the shared library, so
//! `target/release/librebar_plugin.so` works as well as `target/bundled/Rebar.clap`) at run time
//! with [`clack_host`], and drives it the way a host would, one block at a time.
//!
//! It is deliberately simple: everything runs on the calling thread, which CLAP treats as both
//! the main thread and the audio thread. That keeps tests deterministic (no audio thread racing
//! the assertions) at the cost of not testing cross-thread behaviour. Test files include it with
//! `mod clap_host;` and the module does not depend on the plugin crate, so the tests build even
//! while the plugin does not; they only need its binary when they run.
//!
//! Typical use:
//!
//! ```ignore
//! let mut host = ClapHost::load(&path)?;
//! assert!(host.features().iter().any(|f| f == "note-effect"));
//! host.activate(48_000.0, 512)?;
//! let out = host.process(&Block {
//!     frames: 512,
//!     transport: Some(Transport::playing(120.0, 0.0)),
//!     notes: vec![InNote::on(0, 60, 0.8)],
//!     params: vec![],
//! });
//! ```
//!
//! Things worth knowing about the plugin side (nice-plug's CLAP wrapper):
//! - CLAP parameter values are "plain" values, but nice-plug reports continuous parameters as
//!   `0.0..=1.0` (their *normalized* value) and stepped ones as `0..=step_count`; the min/max in
//!   [`ParamInfo`] say which. [`ClapHost::text_to_value`] converts a display string (such as
//!   `"4"` or `"0.5"`) into that plain value, which avoids guessing the mapping.
//! - Notes come back as CLAP note events (`MidiConfig::Basic` and up); raw MIDI events are also
//!   accepted, in case the plugin's MIDI config changes.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use clack_extensions::params::{ParamInfoBuffer, ParamInfoFlags, PluginParams};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_extensions::thread_check::{HostThreadCheck, HostThreadCheckImpl};
use clack_extensions::timer::{HostTimer, HostTimerImpl, PluginTimer, TimerId};
use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent, ParamValueEvent, TransportEvent, TransportFlags};
use clack_host::events::spaces::CoreEventSpace;
use clack_host::events::{EventFlags, EventHeader, Match, Pckn};
use clack_host::prelude::*;
use clack_host::utils::BeatTime;

/// The host's name as the plugin sees it (`clap_host.name`).
pub const HOST_NAME: &str = "rebar-tests";

/// One parameter as the plugin describes it through the CLAP params extension.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// The stable CLAP parameter id, used in [`Block::params`] and [`ClapHost::set_param`].
    pub id: u32,
    /// The display name (what a DAW shows, and what [`ClapHost::param_id`] looks up).
    pub name: String,
    /// The module path (CLAP's optional grouping, e.g. `"Generation"`); often empty.
    pub module: String,
    /// Minimum plain value.
    pub min: f64,
    /// Maximum plain value.
    pub max: f64,
    /// Default plain value.
    pub default: f64,
    /// Whether the parameter only takes whole values (`CLAP_PARAM_IS_STEPPED`).
    pub stepped: bool,
    /// Whether the host may automate it (`CLAP_PARAM_IS_AUTOMATABLE`).
    pub automatable: bool,
}

/// The host transport for one block, as passed in `clap_process.transport`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transport {
    /// Whether the transport is playing (`CLAP_TRANSPORT_IS_PLAYING`).
    pub playing: bool,
    /// Tempo in beats per minute.
    pub tempo: f64,
    /// Song position at the start of the block, in quarter-note beats.
    pub song_pos_beats: f64,
    /// Loop start and end in beats when the host loops (`CLAP_TRANSPORT_IS_LOOP_ACTIVE`).
    pub loop_beats: Option<(f64, f64)>,
    /// The time signature (numerator, denominator).
    pub meter: (u16, u16),
}

impl Transport {
    /// A playing transport at `tempo`, positioned at `song_pos_beats`, not looping.
    pub fn playing(tempo: f64, song_pos_beats: f64) -> Self {
        Self { playing: true, tempo, song_pos_beats, loop_beats: None, meter: (4, 4) }
    }

    /// A stopped transport at `tempo`, positioned at `song_pos_beats`.
    pub fn stopped(tempo: f64, song_pos_beats: f64) -> Self {
        Self { playing: false, tempo, song_pos_beats, loop_beats: None, meter: (4, 4) }
    }

    /// The same transport with the loop `start..end` (in beats) active.
    pub fn looping(mut self, start: f64, end: f64) -> Self {
        self.loop_beats = Some((start, end));
        self
    }

    /// How many beats a block of `frames` samples spans at `sample_rate`: handy to advance
    /// [`Transport::song_pos_beats`] from one block to the next.
    pub fn beats_per_block(&self, frames: u32, sample_rate: f64) -> f64 {
        f64::from(frames) / sample_rate * self.tempo / 60.0
    }

    /// The same transport in another time signature.
    pub fn in_meter(mut self, numerator: u16, denominator: u16) -> Self {
        self.meter = (numerator, denominator);
        self
    }

    /// The CLAP transport struct. Bar start and number follow from the song position, counting
    /// the meter's numerator of beats a bar (CLAP counts bars from 0).
    fn to_clap(self) -> TransportEvent {
        let mut flags =
            TransportFlags::HAS_TEMPO | TransportFlags::HAS_BEATS_TIMELINE | TransportFlags::HAS_TIME_SIGNATURE;
        if self.playing {
            flags |= TransportFlags::IS_PLAYING;
        }
        let (loop_start, loop_end) = match self.loop_beats {
            Some(range) => {
                flags |= TransportFlags::IS_LOOP_ACTIVE;
                range
            }
            None => (0.0, 0.0),
        };
        let beats_per_bar = f64::from(self.meter.0.max(1));
        let bar = (self.song_pos_beats / beats_per_bar).floor();
        TransportEvent {
            header: EventHeader::new_core(0, EventFlags::empty()),
            flags,
            song_pos_beats: BeatTime::from_float(self.song_pos_beats),
            song_pos_seconds: Default::default(),
            tempo: self.tempo,
            tempo_inc: 0.0,
            loop_start_beats: BeatTime::from_float(loop_start),
            loop_end_beats: BeatTime::from_float(loop_end),
            loop_start_seconds: Default::default(),
            loop_end_seconds: Default::default(),
            bar_start: BeatTime::from_float(bar * beats_per_bar),
            bar_number: bar as i32,
            time_signature_numerator: self.meter.0,
            time_signature_denominator: self.meter.1,
        }
    }
}

/// A note event sent to the plugin, as a CLAP note event on note port 0 with `note_id` -1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InNote {
    /// Sample offset within the block; must be below [`Block::frames`].
    pub time: u32,
    /// Note on (`CLAP_EVENT_NOTE_ON`) or off (`CLAP_EVENT_NOTE_OFF`).
    pub on: bool,
    /// MIDI key, 0..=127.
    pub key: u8,
    /// MIDI channel, 0..=15.
    pub channel: u8,
    /// CLAP velocity, 0.0..=1.0.
    pub velocity: f64,
}

impl InNote {
    /// A note-on on channel 0.
    pub fn on(time: u32, key: u8, velocity: f64) -> Self {
        Self { time, on: true, key, channel: 0, velocity }
    }

    /// A note-off on channel 0 (release velocity 0).
    pub fn off(time: u32, key: u8) -> Self {
        Self { time, on: false, key, channel: 0, velocity: 0.0 }
    }
}

/// A note event the plugin produced during one block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutNote {
    /// Sample offset within the block.
    pub time: u32,
    /// Note on or off. A MIDI note-on with velocity 0 is reported as an off; a *CLAP* note-on
    /// with velocity 0 is reported as is (`on: true`), since a CLAP host would start a note.
    pub on: bool,
    /// MIDI key (a CLAP wildcard key, -1, is reported as 255).
    pub key: u8,
    /// MIDI channel (a CLAP wildcard channel, -1, is reported as 255).
    pub channel: u8,
    /// Velocity in 0.0..=1.0 (MIDI velocities are divided by 127).
    pub velocity: f64,
}

/// Everything the host sends for one `process` call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    /// Block length in samples (`clap_process.frames_count`); at most the `max_block` given to
    /// [`ClapHost::activate`].
    pub frames: u32,
    /// `None` passes a null transport pointer, as hosts do when they have no timeline.
    pub transport: Option<Transport>,
    /// Note events, in any order: they are sorted by time (stably) before sending.
    pub notes: Vec<InNote>,
    /// `(param id, plain value)` automation, sent as `CLAP_EVENT_PARAM_VALUE` at sample 0, before
    /// any note.
    pub params: Vec<(u32, f64)>,
}

/// The callbacks the plugin may make from any thread. The harness only records main-thread
/// callback requests and serves them itself (see [`ClapHost::idle`]); restart and process
/// requests are recorded so a test could look at them, but need no action here.
#[derive(Default)]
struct HostShared {
    callback_requested: AtomicBool,
    restart_requested: AtomicBool,
    /// `clap_host_state.mark_dirty` calls: how often the plugin said the project needs saving.
    dirty_marks: AtomicU32,
    /// Whether `request_callback` is answered. Some hosts (Qtractor 0.9) never answer it; a
    /// plugin must then get its main-thread work done another way (a timer).
    ignores_callbacks: AtomicBool,
    /// Timers the plugin registered through `clap_host_timer_support`; each ticks on every
    /// [`ClapHost::idle`].
    timers: Mutex<Vec<u32>>,
    /// Inside `process`: the thread-check extension then calls this thread the audio thread and
    /// not the main thread, as a DAW's threads would be, so the plugin posts main-thread work
    /// (through `request_callback` or its timers) instead of doing it inline.
    processing: AtomicBool,
}

impl HostThreadCheckImpl for HostShared {
    fn is_main_thread(&self) -> bool {
        !self.processing.load(Ordering::SeqCst)
    }

    fn is_audio_thread(&self) -> bool {
        self.processing.load(Ordering::SeqCst)
    }
}

impl SharedHandler<'_> for HostShared {
    fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::SeqCst);
    }

    fn request_process(&self) {
        // Always processing while active: nothing to wake up.
    }

    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

/// The host handler types. The host extensions offered are `state`, so the plugin can mark the
/// project modified, `timer-support`, and `thread-check`, which tells the plugin it is on the
/// audio thread while it processes. nice-plug also queries the host's params, latency and
/// voice-info extensions but works without them.
struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = HostShared;
    type MainThread<'a> = HostMainThread<'a>;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostState>().register::<HostTimer>().register::<HostThreadCheck>();
    }
}

/// The main-thread side: counts `mark_dirty` calls, as a DAW would enable its Save command.
struct HostMainThread<'a> {
    shared: &'a HostShared,
}

impl<'a> MainThreadHandler<'a> for HostMainThread<'a> {}

impl HostStateImpl for HostMainThread<'_> {
    fn mark_dirty(&self) {
        self.shared.dirty_marks.fetch_add(1, Ordering::SeqCst);
    }
}

impl HostTimerImpl for HostMainThread<'_> {
    fn register_timer(&self, _period_ms: u32) -> Result<TimerId, HostError> {
        let mut timers = self.shared.timers.lock().unwrap_or_else(|e| e.into_inner());
        let id = timers.iter().max().map_or(1, |max| max + 1);
        timers.push(id);
        Ok(TimerId(id))
    }

    fn unregister_timer(&self, timer_id: TimerId) -> Result<(), HostError> {
        self.shared.timers.lock().unwrap_or_else(|e| e.into_inner()).retain(|id| *id != timer_id.0);
        Ok(())
    }
}

/// One plugin instance loaded from a CLAP binary, driven synchronously from the calling thread.
///
/// Not `Send`: CLAP ties an instance to the thread that created it (its main thread).
pub struct ClapHost {
    /// `Some` between [`ClapHost::activate`] and [`ClapHost::deactivate`]. Dropped before
    /// `instance`: clack leaks an instance whose processor is still alive.
    processor: Option<StartedPluginAudioProcessor<TestHost>>,
    instance: PluginInstance<TestHost>,
    plugin_id: String,
    plugin_name: String,
    features: Vec<String>,
    params_ext: Option<PluginParams>,
    state_ext: Option<PluginState>,
    params: Vec<ParamInfo>,
    /// Automation queued by [`ClapHost::set_param`] for the next block.
    pending_params: Vec<(u32, f64)>,
    input_events: EventBuffer,
    output_events: EventBuffer,
    sample_rate: f64,
    max_block: u32,
    steady_time: u64,
}

impl ClapHost {
    /// Loads the CLAP binary at `path`, instantiates the first plugin of its factory, and reads
    /// its parameter list. The plugin is left inactive: call [`ClapHost::activate`] next.
    ///
    /// Errors are strings naming the step that failed and the path, so a test that cannot find
    /// or load the binary says why.
    pub fn load(path: &Path) -> Result<ClapHost, String> {
        if !path.is_file() {
            return Err(format!("CLAP binary not found: {}", path.display()));
        }
        // SAFETY: loading a library runs its initialisers; we trust the plugin we just built.
        let entry = unsafe { PluginEntry::load(path) }
            .map_err(|e| format!("could not load CLAP entry from {}: {e}", path.display()))?;
        // Keep the library loaded (and its entry initialised) until the process exits. clack
        // calls `clap_entry.deinit` and unloads the library when the last `PluginEntry` goes;
        // doing that between tests would re-initialise the plugin's statics (logger, threads)
        // and risks unloading code that a plugin thread still runs. One leaked handle per load
        // is cheap.
        std::mem::forget(entry.clone());

        let factory =
            entry.get_plugin_factory().ok_or_else(|| format!("{} exposes no CLAP plugin factory", path.display()))?;
        let descriptor = factory
            .plugin_descriptors()
            .next()
            .ok_or_else(|| format!("the plugin factory of {} lists no plugin", path.display()))?;
        let id_c =
            descriptor.id().ok_or_else(|| format!("the first plugin in {} has no id", path.display()))?.to_owned();
        let plugin_id = id_c.to_string_lossy().into_owned();
        let plugin_name = descriptor.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let features = descriptor.features().map(|f| f.to_string_lossy().into_owned()).collect();

        let host_info = HostInfo::new(HOST_NAME, "Rebar", "https://example.invalid/rebar", "0.1.0")
            .map_err(|e| format!("invalid host info: {e}"))?;
        let mut instance = PluginInstance::<TestHost>::new(
            |_| HostShared::default(),
            |shared| HostMainThread { shared },
            &entry,
            &id_c,
            &host_info,
        )
        .map_err(|e| format!("could not instantiate plugin {plugin_id}: {e}"))?;

        let handle = instance.plugin_handle();
        let params_ext: Option<PluginParams> = handle.get_extension();
        let state_ext: Option<PluginState> = handle.get_extension();

        let mut host = ClapHost {
            processor: None,
            instance,
            plugin_id,
            plugin_name,
            features,
            params_ext,
            state_ext,
            params: Vec::new(),
            pending_params: Vec::new(),
            // Preallocated so the host side rarely allocates inside the plugin's process call.
            input_events: EventBuffer::with_capacity(256),
            output_events: EventBuffer::with_capacity(1024),
            sample_rate: 0.0,
            max_block: 0,
            steady_time: 0,
        };
        host.params = host.query_params();
        host.idle();
        Ok(host)
    }

    /// The plugin's CLAP id (its descriptor's `id`).
    pub fn plugin_id(&self) -> &str {
        &self.plugin_id
    }

    /// The plugin's display name (its descriptor's `name`).
    pub fn plugin_name(&self) -> &str {
        &self.plugin_name
    }

    /// The descriptor's feature strings, e.g. `"note-effect"`, `"utility"`.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Whether the plugin implements the CLAP state extension.
    pub fn has_state(&self) -> bool {
        self.state_ext.is_some()
    }

    /// Activates the plugin for `sample_rate` and blocks of 1..=`max_block` frames, and starts
    /// processing. Deactivates first if already active (as a host does on a rate change).
    pub fn activate(&mut self, sample_rate: f64, max_block: u32) -> Result<(), String> {
        self.deactivate();
        let config = PluginAudioConfiguration { sample_rate, min_frames_count: 1, max_frames_count: max_block };
        let stopped = self
            .instance
            .activate(|_, _| (), config)
            .map_err(|e| format!("could not activate {}: {e}", self.plugin_id))?;
        let started = match stopped.start_processing() {
            Ok(started) => started,
            Err(e) => {
                let message = format!("{} refused to start processing: {e}", self.plugin_id);
                self.instance.deactivate(e.into_stopped_processor());
                return Err(message);
            }
        };
        self.processor = Some(started);
        self.sample_rate = sample_rate;
        self.max_block = max_block;
        self.steady_time = 0;
        self.idle();
        Ok(())
    }

    /// The largest block the plugin was activated for.
    pub fn max_block(&self) -> u32 {
        self.max_block
    }

    /// Whether [`ClapHost::activate`] succeeded and the plugin is processing.
    pub fn is_active(&self) -> bool {
        self.processor.is_some()
    }

    /// Stops processing and deactivates the plugin; nothing happens if it is not active.
    pub fn deactivate(&mut self) {
        if let Some(started) = self.processor.take() {
            let stopped = started.stop_processing();
            self.instance.deactivate(stopped);
        }
        self.idle();
    }

    /// The parameter list, read through the params extension when the plugin was loaded
    /// (nice-plug's list never changes at run time). Empty if the plugin has no params extension.
    pub fn params(&self) -> &[ParamInfo] {
        &self.params
    }

    /// The id of the parameter whose display name is `name` (exact match).
    pub fn param_id(&self, name: &str) -> Option<u32> {
        self.params.iter().find(|p| p.name == name).map(|p| p.id)
    }

    /// The parameter with id `id`.
    pub fn param(&self, id: u32) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.id == id)
    }

    /// Queues automation of `id` to `value` (a plain value) for the next [`ClapHost::process`]
    /// call, where it is sent as a `CLAP_EVENT_PARAM_VALUE` at sample 0, exactly like host
    /// automation. Same as putting it in [`Block::params`].
    pub fn set_param(&mut self, id: u32, value: f64) {
        self.pending_params.push((id, value));
    }

    /// The parameter's current plain value as the plugin reports it (`clap_plugin_params.get_value`).
    pub fn param_value(&mut self, id: u32) -> Option<f64> {
        let ext = self.params_ext?;
        let id = ClapId::from_raw(id)?;
        ext.get_value(&self.instance.plugin_handle(), id)
    }

    /// The plugin's display string for `value` of parameter `id` (`value_to_text`).
    pub fn value_to_text(&mut self, id: u32, value: f64) -> Option<String> {
        let ext = self.params_ext?;
        let id = ClapId::from_raw(id)?;
        let mut buffer = [0u8; 256];
        let text = ext.value_to_text(&self.instance.plugin_handle(), id, value, &mut buffer).ok()?;
        Some(String::from_utf8_lossy(text).into_owned())
    }

    /// The plain value the plugin parses from the display string `text` (`text_to_value`).
    /// Useful because nice-plug's plain values are normalized, not the values the UI shows.
    pub fn text_to_value(&mut self, id: u32, text: &str) -> Option<f64> {
        let ext = self.params_ext?;
        let id = ClapId::from_raw(id)?;
        let text = CString::new(text).ok()?;
        ext.text_to_value(&self.instance.plugin_handle(), id, &text)
    }

    /// Runs one block and returns the notes the plugin emitted, sorted (stably) by time.
    ///
    /// # Panics
    /// If the block is invalid or the plugin reports a processing error; see
    /// [`ClapHost::try_process`] for the non-panicking form.
    pub fn process(&mut self, block: &Block) -> Vec<OutNote> {
        match self.try_process(block) {
            Ok(notes) => notes,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs one block: sends the queued and the block's parameter changes at sample 0, then the
    /// block's notes by time, with the block's transport, no audio ports and
    /// `frames_count = block.frames`. Afterwards serves any main-thread callback the plugin asked
    /// for. Returns the notes the plugin emitted, sorted (stably) by time.
    pub fn try_process(&mut self, block: &Block) -> Result<Vec<OutNote>, String> {
        if self.processor.is_none() {
            return Err("process called before activate".into());
        }
        if block.frames == 0 || block.frames > self.max_block {
            return Err(format!(
                "block of {} frames is outside 1..={} (the max_block given to activate)",
                block.frames, self.max_block
            ));
        }
        if let Some(note) = block.notes.iter().find(|n| n.time >= block.frames) {
            return Err(format!("note event at sample {} in a block of {} frames", note.time, block.frames));
        }

        // Input events must be sorted by time. Params go first, all at sample 0.
        self.input_events.clear();
        let params = std::mem::take(&mut self.pending_params);
        for &(id, value) in params.iter().chain(&block.params) {
            let id = ClapId::from_raw(id).ok_or_else(|| format!("invalid parameter id {id}"))?;
            self.input_events.push(&ParamValueEvent::new(0, id, Pckn::match_all(), value));
        }
        let mut notes = block.notes.clone();
        notes.sort_by_key(|n| n.time); // stable: same-time events keep their order
        for note in &notes {
            let pckn = Pckn::new(0u16, u16::from(note.channel), u16::from(note.key), Match::All);
            if note.on {
                self.input_events.push(&NoteOnEvent::new(note.time, pckn, note.velocity));
            } else {
                self.input_events.push(&NoteOffEvent::new(note.time, pckn, note.velocity));
            }
        }
        self.output_events.clear();

        let transport = block.transport.map(Transport::to_clap);
        // No audio ports, but clack derives `frames_count` from the buffers it is given, and
        // gives 0 for empty ones; an empty set of raw port buffers carrying the frame count is
        // the way to say "N frames, no ports".
        // SAFETY: there are no channel buffers, so none can be shorter than `frames`.
        let audio_in = unsafe { InputAudioBuffers::from_raw_buffers(&[], block.frames) };
        let mut audio_out = OutputAudioBuffers::empty();
        let processor = self.processor.as_mut().expect("checked above");
        self.instance.access_shared_handler(|shared| shared.processing.store(true, Ordering::SeqCst));
        let status = processor.process(
            &audio_in,
            &mut audio_out,
            &self.input_events.as_input(),
            &mut self.output_events.as_output(),
            Some(self.steady_time),
            transport.as_ref(),
        );
        self.instance.access_shared_handler(|shared| shared.processing.store(false, Ordering::SeqCst));
        self.steady_time += u64::from(block.frames);
        self.idle();
        status.map_err(|e| format!("{} failed to process a block: {e}", self.plugin_id))?;

        let mut out = Vec::new();
        for event in self.output_events.iter() {
            let time = event.header().time();
            match event.as_core_event() {
                Some(CoreEventSpace::NoteOn(e)) => out.push(OutNote {
                    time,
                    on: true,
                    key: match_u8(e.key()),
                    channel: match_u8(e.channel()),
                    velocity: e.velocity(),
                }),
                Some(CoreEventSpace::NoteOff(e)) => out.push(OutNote {
                    time,
                    on: false,
                    key: match_u8(e.key()),
                    channel: match_u8(e.channel()),
                    velocity: e.velocity(),
                }),
                Some(CoreEventSpace::Midi(e)) => {
                    let [status, key, velocity] = e.data();
                    let on = match status & 0xF0 {
                        0x90 => velocity > 0,
                        0x80 => false,
                        _ => continue,
                    };
                    out.push(OutNote { time, on, key, channel: status & 0x0F, velocity: f64::from(velocity) / 127.0 });
                }
                _ => {}
            }
        }
        out.sort_by_key(|n| n.time);
        Ok(out)
    }

    /// Serves a pending `request_callback` by calling the plugin's `on_main_thread`, as a host's
    /// event loop would. Called after every block and lifecycle step; call it directly when
    /// waiting for the plugin's background work without processing.
    pub fn idle(&mut self) {
        let (requested, timers) = self.instance.access_shared_handler(|shared| {
            let requested = shared.callback_requested.swap(false, Ordering::SeqCst)
                && !shared.ignores_callbacks.load(Ordering::SeqCst);
            (requested, shared.timers.lock().unwrap_or_else(|e| e.into_inner()).clone())
        });
        if requested {
            self.instance.call_on_main_thread_callback();
        }
        let handle = self.instance.plugin_handle();
        if let Some(timer) = handle.get_extension::<PluginTimer>() {
            for id in timers {
                timer.on_timer(&handle, TimerId(id));
            }
        }
    }

    /// Stops answering `request_callback`, as Qtractor 0.9 does: the plugin's main-thread
    /// requests are then served only through the timers it registered.
    pub fn ignore_callback_requests(&mut self) {
        self.instance.access_shared_handler(|shared| shared.ignores_callbacks.store(true, Ordering::SeqCst));
    }

    /// Whether the plugin has called `request_restart` since load (a host would then
    /// deactivate and reactivate it).
    pub fn restart_requested(&self) -> bool {
        self.instance.access_shared_handler(|shared| shared.restart_requested.load(Ordering::SeqCst))
    }

    /// How often the plugin has called `clap_host_state.mark_dirty` since load: each call is a
    /// change a DAW would offer to save.
    pub fn dirty_marks(&self) -> u32 {
        self.instance.access_shared_handler(|shared| shared.dirty_marks.load(Ordering::SeqCst))
    }

    /// Saves the plugin's state through the CLAP state extension (what a DAW stores in the
    /// project file).
    pub fn save_state(&mut self) -> Result<Vec<u8>, String> {
        let ext = self.state_ext.ok_or_else(|| format!("{} has no CLAP state extension", self.plugin_id))?;
        let mut bytes = Vec::new();
        ext.save(&self.instance.plugin_handle(), &mut bytes)
            .map_err(|e| format!("{} failed to save its state: {e}", self.plugin_id))?;
        self.idle();
        Ok(bytes)
    }

    /// Loads a state saved by [`ClapHost::save_state`] (possibly from another instance), as a
    /// DAW does when it opens a project.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let ext = self.state_ext.ok_or_else(|| format!("{} has no CLAP state extension", self.plugin_id))?;
        let mut reader = bytes;
        ext.load(&self.instance.plugin_handle(), &mut reader)
            .map_err(|e| format!("{} failed to load a state of {} bytes: {e}", self.plugin_id, bytes.len()))?;
        self.idle();
        Ok(())
    }

    /// Reads every parameter's info through the params extension.
    fn query_params(&mut self) -> Vec<ParamInfo> {
        let Some(ext) = self.params_ext else {
            return Vec::new();
        };
        let handle = self.instance.plugin_handle();
        let mut buffer = ParamInfoBuffer::new();
        (0..ext.count(&handle))
            .filter_map(|index| {
                let info = ext.get_info(&handle, index, &mut buffer)?;
                Some(ParamInfo {
                    id: info.id.get(),
                    name: String::from_utf8_lossy(info.name).into_owned(),
                    module: String::from_utf8_lossy(info.module).into_owned(),
                    min: info.min_value,
                    max: info.max_value,
                    default: info.default_value,
                    stepped: info.flags.contains(ParamInfoFlags::IS_STEPPED),
                    automatable: info.flags.contains(ParamInfoFlags::IS_AUTOMATABLE),
                })
            })
            .collect()
    }
}

impl Drop for ClapHost {
    /// Stops processing and deactivates before the instance is destroyed: clack will not
    /// destroy (it leaks) an instance whose audio processor is still alive.
    fn drop(&mut self) {
        self.deactivate();
    }
}

/// A CLAP key or channel as a `u8`; the wildcard (-1) becomes 255.
fn match_u8(value: Match<u16>) -> u8 {
    value.into_specific().map_or(u8::MAX, |v| u8::try_from(v).unwrap_or(u8::MAX))
}

#[cfg(test)]
mod self_check {
    use super::*;

    #[test]
    fn missing_binary_is_a_clear_error() {
        let path = Path::new("/nonexistent/Rebar.clap");
        let err = ClapHost::load(path).err().expect("loading a missing file must fail");
        assert!(err.contains("/nonexistent/Rebar.clap"), "{err}");
    }

    #[test]
    fn non_library_is_a_clear_error() {
        // A file that exists but is no shared library: the loader's error is passed on.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let err = ClapHost::load(&path).err().expect("loading a non-library must fail");
        assert!(err.contains("could not load CLAP entry"), "{err}");
    }

    #[test]
    fn transport_is_fixed_point_beats_in_four_four() {
        let clap = Transport::playing(120.0, 9.5).looping(8.0, 16.0).to_clap();
        let raw = clap.as_raw();
        assert_eq!(raw.song_pos_beats, (9.5 * (1i64 << 31) as f64) as i64);
        assert_eq!(raw.loop_start_beats, 8 << 31);
        assert_eq!(raw.loop_end_beats, 16 << 31);
        assert_eq!(raw.bar_start, 8 << 31);
        assert_eq!(raw.bar_number, 2);
        assert_eq!((raw.tsig_num, raw.tsig_denom), (4, 4));
        let flags = clap.flags;
        assert!(flags.contains(TransportFlags::IS_PLAYING | TransportFlags::IS_LOOP_ACTIVE));
        assert!(flags.contains(TransportFlags::HAS_TEMPO | TransportFlags::HAS_BEATS_TIMELINE));
        assert!(!Transport::stopped(120.0, 0.0).to_clap().flags.contains(TransportFlags::IS_PLAYING));
    }
}
