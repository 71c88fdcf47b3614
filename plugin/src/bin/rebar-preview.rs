//! Opens Rebar's editor in a window of its own, outside any host, on a real clip with real
//! generated variations: how the README screenshot is made, and a quick way to work on the GUI.
//!
//! `cargo run --release -p rebar-plugin --bin rebar-preview -- tests/fixtures/ryans_jimmy_holmes_reel.mid`
//! (add `--seconds N` to close it after N seconds, e.g. under Xvfb for a screenshot).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use nice_plug::context::gui::GuiContextInner;
use nice_plug::prelude::*;
use nice_plug_egui::{EguiWindow, EguiWindowSettings};
use parking_lot::Mutex;
use rebar_engine::engine::{BarSelection, Engine, Request};
use rebar_engine::midi::{read_file, MelodySelector};
use rebar_plugin::clip::{Clip, Region};
use rebar_plugin::editor::{theme, RebarEditor};
use rebar_plugin::params::RebarParams;
use rebar_plugin::session::{Generation, Session};
use rebar_plugin::worker::{Shared, Status};

/// Parameter changes go straight to the parameters, as a host would apply them.
struct PreviewContext;

impl GuiContextInner for PreviewContext {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    unsafe fn raw_begin_set_parameter(&self, _param: ParamPtr) {}
    unsafe fn raw_set_parameter_normalized(&self, param: ParamPtr, normalized: f32) {
        // SAFETY: the pointer comes from the live parameters owned by this program.
        unsafe { param._internal_set_normalized_value(normalized) };
    }
    unsafe fn raw_end_set_parameter(&self, _param: ParamPtr) {}
    fn get_state(&self) -> PluginState {
        PluginState { version: String::new(), params: BTreeMap::new(), fields: BTreeMap::new() }
    }
    fn set_state(&self, _state: PluginState) {}
    fn request_restart(&self) {}
}

struct Preview {
    editor: RebarEditor,
    context: PreviewContext,
}

impl nice_plug_egui::App for Preview {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        theme::apply(&egui_ctx);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        let setter = ParamSetter::new(&self.context);
        self.editor.draw(ui, &setter, None);
    }
}

/// The clip of a MIDI file, bars 1–16, and four variations of bars 5–8 from the shipped models.
fn demo_session(path: &str) -> Result<(Session, Status), String> {
    let file = read_file(std::path::Path::new(path)).map_err(|e| e.to_string())?;
    let part = file.select(&MelodySelector::MostNotes).map_err(|e| e.to_string())?;
    let (mut melody, _) = rebar_engine::melody::quantize(&file, part).map_err(|e| e.to_string())?;
    melody.bars = melody.bars.min(16);
    melody.notes.retain(|n| n.end().0 <= melody.bars * 16);
    let region = Region { start_beats: 0.0, bars: melody.bars };
    let notes = Clip::generated_notes(&melody, |_| true, 0.7, 0);
    let clip = Clip { region, notes, bpm: melody.bpm };

    let started = Instant::now();
    let engine = Engine::embedded().map_err(|e| e.to_string())?;
    let selection = BarSelection::range(4, 7, melody.bars);
    let request = Request { variations: 4, seed: 1, ..Request::new(selection.clone()) };
    let never = std::sync::atomic::AtomicBool::new(false);
    let variations = engine.infill(&clip.to_melody(), &request, &never, &mut |_| {}).map_err(|e| e.to_string())?;
    let selected_bars = 0b1111_0000;
    let mut session = Session { clip: Some(clip.clone()), ..Session::default() };
    session.push_generations(variations.iter().enumerate().map(|(i, m)| Generation {
        clip: Clip { notes: Clip::generated_notes(m, |b| selection.is_selected(b), 0.7, 0), ..clip.clone() },
        selected_bars,
        seed: 1 + i as u64,
    }));
    let status =
        Status { last_latency_ms: Some(started.elapsed().as_secs_f64() * 1e3), revision: 1, ..Status::default() };
    Ok((session, status))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds =
        args.iter().position(|a| a == "--seconds").and_then(|i| args.get(i + 1)).and_then(|s| s.parse::<u64>().ok());
    let clip = args.iter().find(|a| a.ends_with(".mid"));

    let params = Arc::new(RebarParams::default());
    let (session, status) = match clip.map(|path| demo_session(path)) {
        Some(Ok(loaded)) => loaded,
        Some(Err(e)) => (Session::default(), Status { last_error: Some(e), ..Status::default() }),
        None => (Session::default(), Status::default()),
    };
    *params.session.write() = session;
    let shared = Arc::new(Shared { session: params.session.clone(), status: Mutex::new(status) });

    if let Some(seconds) = seconds {
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            std::process::exit(0);
        });
    }
    let size = params.editor_state.size();
    let settings = EguiWindowSettings::new().with_title("Rebar (preview)").with_size(size).with_resizable(false);
    let app = Preview { editor: RebarEditor::new(params, shared), context: PreviewContext };
    match EguiWindow::create(settings, app) {
        Ok(window) => {
            if let Err(e) = window.run_until_closed() {
                eprintln!("the preview window failed: {e:?}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("could not open the preview window: {e:?}");
            std::process::exit(1);
        }
    }
}
