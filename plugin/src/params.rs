//! The plugin's parameters, with stable IDs a host can automate or map to a controller, and the
//! session that persists with the host project.
//!
//! `regenerate` is a trigger: each change from off to on asks for new variations, so a host, a
//! MIDI-mapped button or a test can drive Rebar without its window.

use std::sync::Arc;

use nice_plug::prelude::*;
use nice_plug_egui::EguiEditorState;
use parking_lot::RwLock;
use rebar_engine::engine::Request;

use crate::session::Session;

/// The most variations kept in the history; the oldest go first.
pub const MAX_HISTORY: i32 = 64;

#[derive(Params)]
pub struct RebarParams {
    /// The editor window's size.
    pub editor_state: Arc<EguiEditorState>,

    /// The captured clip and the variation history.
    #[persist = "session"]
    pub session: Arc<RwLock<Session>>,

    #[id = "regenerate"]
    pub regenerate: BoolParam,

    /// First and last selected bar, 1-based and inclusive.
    #[id = "sel-first"]
    pub selection_first: IntParam,
    #[id = "sel-last"]
    pub selection_last: IntParam,

    #[id = "variations"]
    pub variations: IntParam,
    #[id = "temperature"]
    pub temperature: FloatParam,
    #[id = "seed"]
    pub seed: IntParam,

    #[id = "key-root"]
    pub key_root: EnumParam<KeyRoot>,
    #[id = "key-scale"]
    pub key_scale: EnumParam<ScaleKind>,
    /// Let more new 2-bar phrases repeat kept ones note for note (what context guidance copies
    /// from them is kept, not redrawn, and without the extra noise of guided bars, see
    /// `worker::STICKY_REDRAW_COPIES` and `worker::STICKY_NOISE_SCALE`): the new bars follow
    /// the kept ones more closely.
    #[id = "stick"]
    pub stick_to_kept: BoolParam,
    /// Whether new bars repeat other bars note for note, and which.
    #[id = "repeats"]
    pub repeats: EnumParam<RepeatMode>,

    #[id = "mode"]
    pub mode: EnumParam<PlayMode>,

    /// Which variation plays: 0 follows the newest, n picks the n-th of the history.
    #[id = "variation"]
    pub variation: IntParam,
    /// A/B: play the original clip instead of the variation.
    #[id = "original"]
    pub play_original: BoolParam,

    /// Capture the host loop, or a number of bars from the song start.
    #[id = "capture-source"]
    pub capture_source: EnumParam<CaptureSource>,
    #[id = "capture-bars"]
    pub capture_bars: IntParam,
    /// Keep listening: each complete pass replaces the captured clip. Off freezes it.
    #[id = "listen"]
    pub listen: BoolParam,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayMode {
    /// Mute the input in the selected bars and play the variation there.
    Replace,
    /// Play the variation on top of the input.
    Layer,
}

/// How regenerated bars repeat (the engine's `Repeats`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatMode {
    /// The model decides which new 2-bar phrases repeat kept or other new ones, as tunes do.
    Drawn,
    /// New phrases repeat where the phrases they replace repeated.
    #[name = "Keep form"]
    KeepForm,
    /// Every new phrase is new material.
    #[name = "All new"]
    AllNew,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureSource {
    #[name = "Host loop"]
    HostLoop,
    #[name = "Bars from song start"]
    Bars,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRoot {
    #[name = "Any key"]
    Any,
    C,
    #[name = "C#"]
    CSharp,
    D,
    #[name = "Eb"]
    EFlat,
    E,
    F,
    #[name = "F#"]
    FSharp,
    G,
    #[name = "Ab"]
    AFlat,
    A,
    #[name = "Bb"]
    BFlat,
    B,
}

impl KeyRoot {
    /// The root as the engine's scale parser spells it, or `None` for no constraint.
    pub fn spelling(self) -> Option<&'static str> {
        const NAMES: [&str; 12] = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
        self.to_index().checked_sub(1).map(|i| NAMES[i])
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleKind {
    Major,
    Minor,
    Dorian,
    Phrygian,
    Lydian,
    Mixolydian,
    Locrian,
    #[name = "Harmonic minor"]
    HarmonicMinor,
    Pentatonic,
}

impl ScaleKind {
    /// The mode as the engine's scale parser spells it.
    pub fn spelling(self) -> &'static str {
        const NAMES: [&str; 9] =
            ["major", "minor", "dorian", "phrygian", "lydian", "mixolydian", "locrian", "harmonic-minor", "pentatonic"];
        NAMES[self.to_index()]
    }
}

impl Default for RebarParams {
    fn default() -> Self {
        let bars = IntRange::Linear { min: 1, max: crate::clip::MAX_BARS as i32 };
        Self {
            editor_state: EguiEditorState::from_size(nice_plug::editor::dpi::LogicalSize::new(1000.0, 580.0), 1.0),
            session: Arc::new(RwLock::new(Session::default())),
            regenerate: BoolParam::new("Regenerate", false),
            selection_first: IntParam::new("First bar", 5, bars),
            selection_last: IntParam::new("Last bar", 8, bars),
            variations: IntParam::new(
                "Variations",
                4,
                IntRange::Linear { min: 1, max: Request::MAX_USER_VARIATIONS as i32 },
            ),
            temperature: FloatParam::new("Temperature", 1.0, FloatRange::Linear { min: 0.5, max: 1.5 })
                .with_step_size(0.01),
            seed: IntParam::new("Seed", 1, IntRange::Linear { min: 0, max: 9999 }),
            key_root: EnumParam::new("Key", KeyRoot::Any),
            key_scale: EnumParam::new("Scale", ScaleKind::Major),
            stick_to_kept: BoolParam::new("Stick to kept bars", false),
            repeats: EnumParam::new("Repeats", RepeatMode::Drawn),
            mode: EnumParam::new("Mode", PlayMode::Replace),
            variation: IntParam::new("Variation", 0, IntRange::Linear { min: 0, max: MAX_HISTORY }),
            play_original: BoolParam::new("Play original", false),
            capture_source: EnumParam::new("Capture", CaptureSource::HostLoop),
            capture_bars: IntParam::new("Capture bars", 8, bars),
            listen: BoolParam::new("Listen", true),
        }
    }
}
