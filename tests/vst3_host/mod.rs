//! A minimal, synchronous VST3 host for end-to-end tests of the built plugin.
//!
//! It is one file of more than 500 lines because it is one thing: the host side of one plugin
//! API, whose pieces (loading, the host callbacks, buses, events, transport, state) only make
//! sense together.
//!
//! It loads the plugin binary the way a DAW loads a `.vst3` bundle's module: the module entry
//! (`ModuleEntry`, `InitDll` on Windows, `bundleEntry` on macOS), the
//! plugin factory and its class info, one component queried for its audio processor and edit
//! controller, the event buses, `setupProcessing`, `setActive`, and `process` with parameter
//! changes, note events and a `ProcessContext` transport. It offers the host side a DAW offers:
//! a component handler (counting `IComponentHandler2::setDirty`), parameter change queues, event
//! lists and a memory stream for `getState` / `setState`.
//!
//! Like `tests/clap_host`, everything runs on the calling thread, which the plugin then takes
//! for both its main and its audio thread. The module does not depend on the plugin crate; it
//! only needs the built binary when a test runs.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]
// The bindings' enum constants are unsigned on Linux and signed on Windows, so a cast that one
// platform needs is a no-op on the other.
#![allow(clippy::unnecessary_cast)]

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use vst3::Steinberg::Vst::BusDirections_::{kInput, kOutput};
use vst3::Steinberg::Vst::Event_::EventTypes_::{kLegacyMIDICCOutEvent, kNoteOffEvent, kNoteOnEvent};
use vst3::Steinberg::Vst::MediaTypes_::{kAudio, kEvent};
use vst3::Steinberg::Vst::ProcessContext_::StatesAndFlags_::{
    kCycleActive, kCycleValid, kPlaying, kProjectTimeMusicValid, kTempoValid, kTimeSigValid,
};
use vst3::Steinberg::Vst::{
    Event, IAudioProcessor, IAudioProcessorTrait, IComponent, IComponentHandler, IComponentHandler2,
    IComponentHandler2Trait, IComponentHandlerTrait, IComponentTrait, IEditController, IEditControllerTrait,
    IEventList, IEventListTrait, IMidiMapping, IMidiMappingTrait, IParamValueQueue, IParamValueQueueTrait,
    IParameterChanges, IParameterChangesTrait, ParameterInfo, ProcessContext, ProcessData, ProcessSetup,
};
use vst3::Steinberg::{
    kInvalidArgument, kResultFalse, kResultOk, tresult, FIDString, IBStream, IBStreamTrait, IPluginBaseTrait,
    IPluginFactory, IPluginFactory2, IPluginFactory2Trait, IPluginFactoryTrait, PClassInfo, PClassInfo2, TBool,
};
use vst3::{Class, ComPtr, ComWrapper, Interface};

/// One parameter as the edit controller describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    pub id: u32,
    pub title: String,
    pub flags: i32,
}

/// The host transport for one block, as `ProcessContext`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transport {
    pub playing: bool,
    pub tempo: f64,
    /// Song position at the block's first sample, in quarter notes.
    pub song_pos_beats: f64,
    /// The host loop (cycle) in quarter notes, when active.
    pub loop_beats: Option<(f64, f64)>,
}

/// A note event in or out, at a sample of its block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Note {
    pub time: u32,
    pub on: bool,
    pub key: u8,
    pub channel: u8,
    pub velocity: f32,
}

/// Everything the plugin sent out during one block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub notes: Vec<Note>,
    /// MIDI controller, channel pressure and pitch bend messages (`LegacyMIDICCOutEvent`):
    /// (channel, controller, value).
    pub controllers: Vec<(u8, u8, u8)>,
    /// Any other event type.
    pub other_events: usize,
}

/// One block: its length, transport, parameter changes (id, normalized value, at sample 0) and
/// note events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    pub frames: u32,
    pub transport: Option<Transport>,
    pub params: Vec<(u32, f64)>,
    pub notes: Vec<Note>,
}

// ProcessContext's flags, as its unsigned field takes them.
const TRANSPORT_VALID: u32 = (kTempoValid | kProjectTimeMusicValid | kTimeSigValid) as u32;
const PLAYING: u32 = kPlaying as u32;
const CYCLE: u32 = (kCycleActive | kCycleValid) as u32;

/// `ModuleEntry` on Linux, `bundleEntry` on macOS: called once with the library's handle.
type ModuleEntry = unsafe extern "C" fn(*mut c_void) -> bool;
/// `InitDll` on Windows.
type InitDll = unsafe extern "system" fn() -> bool;
type GetPluginFactory = unsafe extern "system" fn() -> *mut IPluginFactory;

/// One plugin instance loaded from a VST3 module, driven synchronously from the calling thread.
pub struct Vst3Host {
    component: ComPtr<IComponent>,
    processor: ComPtr<IAudioProcessor>,
    controller: ComPtr<IEditController>,
    handler: ComWrapper<ComponentHandler>,
    class_name: String,
    class_category: String,
    class_subcategories: String,
    class_vendor: String,
    sample_rate: f64,
    max_block: u32,
    active: bool,
}

impl Vst3Host {
    /// Loads the module at `path` (the shared library inside a `.vst3` bundle), instantiates the
    /// factory's first class and initializes it. Errors name the step that failed.
    pub fn load(path: &Path) -> Result<Vst3Host, String> {
        if !path.is_file() {
            return Err(format!("VST3 module not found: {}", path.display()));
        }
        // SAFETY: loading a library runs its initialisers; we trust the plugin we just built.
        let library =
            unsafe { libloading::Library::new(path) }.map_err(|e| format!("could not load {}: {e}", path.display()))?;
        // SAFETY: the VST3 module ABI names and types these two entry points.
        let factory = unsafe {
            if cfg!(windows) {
                // Windows modules may export InitDll; a host calls it when there is one.
                if let Ok(init) = library.get::<InitDll>(b"InitDll\0") {
                    if !init() {
                        return Err("InitDll failed".into());
                    }
                }
            } else {
                let name: &[u8] = if cfg!(target_os = "macos") { b"bundleEntry\0" } else { b"ModuleEntry\0" };
                let entry: libloading::Symbol<ModuleEntry> =
                    library.get(name).map_err(|e| format!("no module entry point: {e}"))?;
                if !entry(ptr::null_mut()) {
                    return Err("the module entry point failed".into());
                }
            }
            let get_factory: libloading::Symbol<GetPluginFactory> =
                library.get(b"GetPluginFactory\0").map_err(|e| format!("no GetPluginFactory: {e}"))?;
            ComPtr::from_raw(get_factory()).ok_or("GetPluginFactory returned null")?
        };
        // Keep the module loaded for the rest of the process: a plugin thread may still run in
        // it, and hosts rarely unload modules either.
        std::mem::forget(library);

        // SAFETY: plain COM calls into the factory with valid out-pointers.
        unsafe {
            if factory.countClasses() < 1 {
                return Err("the factory lists no class".into());
            }
            let mut info: PClassInfo = std::mem::zeroed();
            if factory.getClassInfo(0, &mut info) != kResultOk {
                return Err("getClassInfo(0) failed".into());
            }
            let class_name = c_chars(&info.name);
            let class_category = c_chars(&info.category);
            // A host reads the sub-categories (where the plugin sits in its browser) and the
            // vendor from the second factory interface.
            let factory2 = factory.cast::<IPluginFactory2>().ok_or("the factory is no IPluginFactory2")?;
            let mut info2: PClassInfo2 = std::mem::zeroed();
            if factory2.getClassInfo2(0, &mut info2) != kResultOk {
                return Err("getClassInfo2(0) failed".into());
            }
            let class_subcategories = c_chars(&info2.subCategories);
            let class_vendor = c_chars(&info2.vendor);
            let mut object: *mut c_void = ptr::null_mut();
            let created = factory.createInstance(
                info.cid.as_ptr() as FIDString,
                IComponent::IID.as_ptr() as FIDString,
                &mut object,
            );
            if created != kResultOk {
                return Err(format!("createInstance failed ({created})"));
            }
            let component = ComPtr::<IComponent>::from_raw(object as *mut IComponent).ok_or("null component")?;
            if component.initialize(ptr::null_mut()) != kResultOk {
                return Err("IComponent::initialize failed".into());
            }
            let processor = component.cast::<IAudioProcessor>().ok_or("the component is no IAudioProcessor")?;
            let controller = component
                .cast::<IEditController>()
                .ok_or("the component is no IEditController (a separate controller class is not supported here)")?;
            let handler = ComWrapper::new(ComponentHandler::default());
            let handler_ptr = handler.to_com_ptr::<IComponentHandler>().expect("implemented");
            controller.setComponentHandler(handler_ptr.as_ptr());
            Ok(Vst3Host {
                component,
                processor,
                controller,
                handler,
                class_name,
                class_category,
                class_subcategories,
                class_vendor,
                sample_rate: 0.0,
                max_block: 0,
                active: false,
            })
        }
    }

    /// The class's name, as a DAW lists it.
    pub fn class_name(&self) -> &str {
        &self.class_name
    }

    /// The class's category (`"Audio Module Class"` for a plugin).
    pub fn class_category(&self) -> &str {
        &self.class_category
    }

    /// The class's sub-categories, `|`-separated (`PClassInfo2::subCategories`).
    pub fn class_subcategories(&self) -> &str {
        &self.class_subcategories
    }

    /// The class's vendor (`PClassInfo2::vendor`).
    pub fn class_vendor(&self) -> &str {
        &self.class_vendor
    }

    /// How many buses of a media type (`audio` or events) the component has in one direction.
    pub fn bus_count(&self, audio: bool, input: bool) -> i32 {
        let media = if audio { kAudio } else { kEvent } as i32;
        let direction = if input { kInput } else { kOutput } as i32;
        // SAFETY: a plain COM call.
        unsafe { self.component.getBusCount(media, direction) }
    }

    /// Sets up processing and activates the component and its event buses.
    pub fn activate(&mut self, sample_rate: f64, max_block: u32) -> Result<(), String> {
        let mut setup = ProcessSetup {
            processMode: 0,        // kRealtime
            symbolicSampleSize: 0, // kSample32
            maxSamplesPerBlock: max_block as i32,
            sampleRate: sample_rate,
        };
        // SAFETY: plain COM calls with valid pointers.
        unsafe {
            if self.processor.setupProcessing(&mut setup) != kResultOk {
                return Err("setupProcessing failed".into());
            }
            for direction in [kInput, kOutput] {
                for index in 0..self.component.getBusCount(kEvent as i32, direction as i32) {
                    self.component.activateBus(kEvent as i32, direction as i32, index, 1);
                }
            }
            if self.component.setActive(1) != kResultOk {
                return Err("setActive(true) failed".into());
            }
            self.processor.setProcessing(1);
        }
        self.sample_rate = sample_rate;
        self.max_block = max_block;
        self.active = true;
        Ok(())
    }

    /// Stops processing and deactivates the component.
    pub fn deactivate(&mut self) {
        if self.active {
            // SAFETY: plain COM calls.
            unsafe {
                self.processor.setProcessing(0);
                self.component.setActive(0);
            }
            self.active = false;
        }
    }

    /// Every parameter the edit controller reports.
    pub fn params(&self) -> Vec<ParamInfo> {
        // SAFETY: plain COM calls with valid out-pointers.
        unsafe {
            (0..self.controller.getParameterCount())
                .filter_map(|index| {
                    let mut info: ParameterInfo = std::mem::zeroed();
                    (self.controller.getParameterInfo(index, &mut info) == kResultOk).then(|| ParamInfo {
                        id: info.id,
                        title: String::from_utf16_lossy(&info.title).trim_end_matches('\0').to_string(),
                        flags: info.flags,
                    })
                })
                .collect()
        }
    }

    /// The id of the parameter titled `title`.
    pub fn param_id(&self, title: &str) -> Option<u32> {
        self.params().into_iter().find(|p| p.title == title).map(|p| p.id)
    }

    /// The controller's normalized value of a parameter.
    pub fn param_normalized(&self, id: u32) -> f64 {
        // SAFETY: a plain COM call.
        unsafe { self.controller.getParamNormalized(id) }
    }

    /// The normalized value the controller gives a display string, such as `"3"` or `"Replace"`.
    pub fn text_to_normalized(&self, id: u32, text: &str) -> Option<f64> {
        let mut wide: Vec<u16> = text.encode_utf16().collect();
        wide.push(0);
        let mut value = 0.0;
        // SAFETY: a NUL-terminated UTF-16 string and a valid out-pointer.
        let result = unsafe { self.controller.getParamValueByString(id, wide.as_mut_ptr(), &mut value) };
        (result == kResultOk).then_some(value)
    }

    /// The parameter a MIDI controller (0–127; 128 channel pressure, 129 pitch bend) maps to
    /// on `channel`, through `IMidiMapping`, as a host asks before it turns a CC into a change.
    pub fn midi_controller_param(&self, channel: i16, controller: i16) -> Option<u32> {
        let mapping = self.component.cast::<IMidiMapping>()?;
        let mut id = 0;
        // SAFETY: a plain COM call with a valid out-pointer.
        let result = unsafe { mapping.getMidiControllerAssignment(0, channel, controller, &mut id) };
        (result == kResultOk).then_some(id)
    }

    /// How often the plugin has called `IComponentHandler2::setDirty(true)`.
    pub fn dirty_marks(&self) -> u32 {
        self.handler.dirty_marks.load(Ordering::SeqCst)
    }

    /// Parameter edits the plugin announced through `performEdit`.
    pub fn performed_edits(&self) -> usize {
        self.handler.edits.load(Ordering::SeqCst)
    }

    /// Runs one block.
    pub fn process(&mut self, block: &Block) -> Result<Output, String> {
        if !self.active {
            return Err("process called before activate".into());
        }
        if block.frames == 0 || block.frames > self.max_block {
            return Err(format!("a block of {} frames is outside 1..={}", block.frames, self.max_block));
        }
        let changes = ComWrapper::new(ParameterChanges::default());
        for &(id, value) in &block.params {
            changes
                .queues
                .borrow_mut()
                .push(ComWrapper::new(ParamQueue { id, points: RefCell::new(vec![(0, value)]) }));
        }
        let input = ComWrapper::new(EventList::default());
        let mut notes = block.notes.clone();
        notes.sort_by_key(|n| n.time);
        for note in &notes {
            input.events.borrow_mut().push(note_event(note));
        }
        let output = ComWrapper::new(EventList::default());

        // SAFETY: ProcessContext is plain data; zero is a valid (empty) value for every field.
        let mut context: ProcessContext = unsafe { std::mem::zeroed() };
        if let Some(t) = block.transport {
            context.sampleRate = self.sample_rate;
            context.tempo = t.tempo;
            context.projectTimeMusic = t.song_pos_beats;
            context.projectTimeSamples = (t.song_pos_beats * 60.0 / t.tempo * self.sample_rate).round() as i64;
            context.timeSigNumerator = 4;
            context.timeSigDenominator = 4;
            context.state = TRANSPORT_VALID;
            if t.playing {
                context.state |= PLAYING;
            }
            if let Some((start, end)) = t.loop_beats {
                context.cycleStartMusic = start;
                context.cycleEndMusic = end;
                context.state |= CYCLE;
            }
        }
        let changes_ptr = changes.to_com_ptr::<IParameterChanges>().expect("implemented");
        let input_ptr = input.to_com_ptr::<IEventList>().expect("implemented");
        let output_ptr = output.to_com_ptr::<IEventList>().expect("implemented");
        let mut data = ProcessData {
            processMode: 0,
            symbolicSampleSize: 0,
            numSamples: block.frames as i32,
            numInputs: 0,
            numOutputs: 0,
            inputs: ptr::null_mut(),
            outputs: ptr::null_mut(),
            inputParameterChanges: changes_ptr.as_ptr(),
            outputParameterChanges: ptr::null_mut(),
            inputEvents: input_ptr.as_ptr(),
            outputEvents: output_ptr.as_ptr(),
            processContext: if block.transport.is_some() { &mut context } else { ptr::null_mut() },
        };
        // SAFETY: every pointer in `data` outlives the call.
        let result = unsafe { self.processor.process(&mut data) };
        if result != kResultOk {
            return Err(format!("process failed ({result})"));
        }
        let mut out = Output::default();
        for event in output.events.borrow().iter() {
            let note = |on: bool, channel: i16, pitch: i16, velocity: f32| Note {
                time: event.sampleOffset as u32,
                on,
                key: pitch as u8,
                channel: channel as u8,
                velocity,
            };
            // SAFETY: the union field read is the one the event's type names.
            unsafe {
                match i64::from(event.r#type) {
                    t if t == i64::from(kNoteOnEvent) => {
                        let e = event.__field0.noteOn;
                        out.notes.push(note(true, e.channel, e.pitch, e.velocity));
                    }
                    t if t == i64::from(kNoteOffEvent) => {
                        let e = event.__field0.noteOff;
                        out.notes.push(note(false, e.channel, e.pitch, e.velocity));
                    }
                    t if t == i64::from(kLegacyMIDICCOutEvent) => {
                        let e = event.__field0.midiCCOut;
                        out.controllers.push((e.channel as u8, e.controlNumber, e.value as u8));
                    }
                    _ => out.other_events += 1,
                }
            }
        }
        out.notes.sort_by_key(|n| n.time);
        Ok(out)
    }

    /// The component's state, as a DAW stores it in the project.
    pub fn save_state(&self) -> Result<Vec<u8>, String> {
        let stream = ComWrapper::new(MemoryStream::default());
        let ptr = stream.to_com_ptr::<IBStream>().expect("implemented");
        // SAFETY: the stream outlives the call.
        if unsafe { self.component.getState(ptr.as_ptr()) } != kResultOk {
            return Err("getState failed".into());
        }
        let bytes = stream.bytes.borrow().clone();
        Ok(bytes)
    }

    /// Loads a saved state into the component, as a DAW does when it opens a project.
    pub fn load_state(&self, bytes: &[u8]) -> Result<(), String> {
        let stream = ComWrapper::new(MemoryStream { bytes: RefCell::new(bytes.to_vec()), position: Cell::new(0) });
        let ptr = stream.to_com_ptr::<IBStream>().expect("implemented");
        // SAFETY: the stream outlives the call.
        match unsafe { self.component.setState(ptr.as_ptr()) } {
            r if r == kResultOk => Ok(()),
            r => Err(format!("setState failed ({r})")),
        }
    }
}

impl Drop for Vst3Host {
    fn drop(&mut self) {
        self.deactivate();
        // SAFETY: plain COM calls; the component is not used afterwards.
        unsafe {
            self.controller.setComponentHandler(ptr::null_mut());
            self.component.terminate();
        }
    }
}

fn c_chars(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn note_event(note: &Note) -> Event {
    // SAFETY: Event is plain data; zero is a valid value for every field.
    let mut event: Event = unsafe { std::mem::zeroed() };
    event.sampleOffset = note.time as i32;
    if note.on {
        event.r#type = kNoteOnEvent as u16;
        event.__field0.noteOn.channel = i16::from(note.channel);
        event.__field0.noteOn.pitch = i16::from(note.key);
        event.__field0.noteOn.velocity = note.velocity;
        event.__field0.noteOn.noteId = -1;
    } else {
        event.r#type = kNoteOffEvent as u16;
        event.__field0.noteOff.channel = i16::from(note.channel);
        event.__field0.noteOff.pitch = i16::from(note.key);
        event.__field0.noteOff.velocity = note.velocity;
        event.__field0.noteOff.noteId = -1;
    }
    event
}

/// The host's component handler: records edits and `setDirty` calls. Atomic, since a plugin may
/// call it from its own event-loop thread.
#[derive(Default)]
struct ComponentHandler {
    edits: AtomicUsize,
    dirty_marks: AtomicU32,
}

impl Class for ComponentHandler {
    type Interfaces = (IComponentHandler, IComponentHandler2);
}

impl IComponentHandlerTrait for ComponentHandler {
    unsafe fn beginEdit(&self, _id: u32) -> tresult {
        kResultOk
    }
    unsafe fn performEdit(&self, _id: u32, _value: f64) -> tresult {
        self.edits.fetch_add(1, Ordering::SeqCst);
        kResultOk
    }
    unsafe fn endEdit(&self, _id: u32) -> tresult {
        kResultOk
    }
    unsafe fn restartComponent(&self, _flags: i32) -> tresult {
        kResultOk
    }
}

impl IComponentHandler2Trait for ComponentHandler {
    unsafe fn setDirty(&self, state: TBool) -> tresult {
        if state != 0 {
            self.dirty_marks.fetch_add(1, Ordering::SeqCst);
        }
        kResultOk
    }
    unsafe fn requestOpenEditor(&self, _name: FIDString) -> tresult {
        kResultFalse
    }
    unsafe fn startGroupEdit(&self) -> tresult {
        kResultOk
    }
    unsafe fn finishGroupEdit(&self) -> tresult {
        kResultOk
    }
}

/// One parameter's changes within a block.
struct ParamQueue {
    id: u32,
    points: RefCell<Vec<(i32, f64)>>,
}

impl Class for ParamQueue {
    type Interfaces = (IParamValueQueue,);
}

impl IParamValueQueueTrait for ParamQueue {
    unsafe fn getParameterId(&self) -> u32 {
        self.id
    }
    unsafe fn getPointCount(&self) -> i32 {
        self.points.borrow().len() as i32
    }
    unsafe fn getPoint(&self, index: i32, offset: *mut i32, value: *mut f64) -> tresult {
        match self.points.borrow().get(index as usize) {
            Some(&(at, v)) if !offset.is_null() && !value.is_null() => {
                *offset = at;
                *value = v;
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }
    unsafe fn addPoint(&self, offset: i32, value: f64, index: *mut i32) -> tresult {
        let mut points = self.points.borrow_mut();
        points.push((offset, value));
        if !index.is_null() {
            *index = points.len() as i32 - 1;
        }
        kResultOk
    }
}

/// A block's parameter changes, one queue per parameter.
#[derive(Default)]
struct ParameterChanges {
    queues: RefCell<Vec<ComWrapper<ParamQueue>>>,
}

impl Class for ParameterChanges {
    type Interfaces = (IParameterChanges,);
}

impl IParameterChangesTrait for ParameterChanges {
    unsafe fn getParameterCount(&self) -> i32 {
        self.queues.borrow().len() as i32
    }
    unsafe fn getParameterData(&self, index: i32) -> *mut IParamValueQueue {
        match self.queues.borrow().get(index as usize) {
            // The queue stays alive in `queues`; VST3 hands this out without a reference.
            Some(queue) => queue.as_com_ref::<IParamValueQueue>().map_or(ptr::null_mut(), |r| r.as_ptr()),
            None => ptr::null_mut(),
        }
    }
    unsafe fn addParameterData(&self, id: *const u32, index: *mut i32) -> *mut IParamValueQueue {
        if id.is_null() {
            return ptr::null_mut();
        }
        let queue = ComWrapper::new(ParamQueue { id: *id, points: RefCell::new(Vec::new()) });
        let raw = queue.as_com_ref::<IParamValueQueue>().map_or(ptr::null_mut(), |r| r.as_ptr());
        let mut queues = self.queues.borrow_mut();
        queues.push(queue);
        if !index.is_null() {
            *index = queues.len() as i32 - 1;
        }
        raw
    }
}

/// A list of events, in or out.
#[derive(Default)]
struct EventList {
    events: RefCell<Vec<Event>>,
}

impl Class for EventList {
    type Interfaces = (IEventList,);
}

impl IEventListTrait for EventList {
    unsafe fn getEventCount(&self) -> i32 {
        self.events.borrow().len() as i32
    }
    unsafe fn getEvent(&self, index: i32, event: *mut Event) -> tresult {
        match self.events.borrow().get(index as usize) {
            Some(e) if !event.is_null() => {
                *event = *e;
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }
    unsafe fn addEvent(&self, event: *mut Event) -> tresult {
        if event.is_null() {
            return kInvalidArgument;
        }
        self.events.borrow_mut().push(*event);
        kResultOk
    }
}

/// An `IBStream` over bytes in memory.
#[derive(Default)]
struct MemoryStream {
    bytes: RefCell<Vec<u8>>,
    position: Cell<usize>,
}

impl Class for MemoryStream {
    type Interfaces = (IBStream,);
}

impl IBStreamTrait for MemoryStream {
    unsafe fn read(&self, buffer: *mut c_void, count: i32, read: *mut i32) -> tresult {
        let bytes = self.bytes.borrow();
        let start = self.position.get().min(bytes.len());
        let n = (count.max(0) as usize).min(bytes.len() - start);
        ptr::copy_nonoverlapping(bytes[start..].as_ptr(), buffer as *mut u8, n);
        self.position.set(start + n);
        if !read.is_null() {
            *read = n as i32;
        }
        kResultOk
    }
    unsafe fn write(&self, buffer: *mut c_void, count: i32, written: *mut i32) -> tresult {
        let n = count.max(0) as usize;
        let data = std::slice::from_raw_parts(buffer as *const u8, n);
        let mut bytes = self.bytes.borrow_mut();
        let start = self.position.get();
        if bytes.len() < start + n {
            bytes.resize(start + n, 0);
        }
        bytes[start..start + n].copy_from_slice(data);
        self.position.set(start + n);
        if !written.is_null() {
            *written = n as i32;
        }
        kResultOk
    }
    unsafe fn seek(&self, pos: i64, mode: i32, result: *mut i64) -> tresult {
        // kIBSeekSet, kIBSeekCur, kIBSeekEnd
        let base = match mode {
            0 => 0,
            1 => self.position.get() as i64,
            2 => self.bytes.borrow().len() as i64,
            _ => return kInvalidArgument,
        };
        let target = (base + pos).max(0) as usize;
        self.position.set(target);
        if !result.is_null() {
            *result = target as i64;
        }
        kResultOk
    }
    unsafe fn tell(&self, pos: *mut i64) -> tresult {
        if pos.is_null() {
            return kInvalidArgument;
        }
        *pos = self.position.get() as i64;
        kResultOk
    }
}
