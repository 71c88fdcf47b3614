//! Rebar's window (nice-plug-egui): the piano roll with bar selection, Regenerate, the creative
//! controls, variation browsing with A/B, export, and the worker's status.
//!
//! Every control writes through the host's parameter API (begin/set/end), so the host records it
//! and can automate it; the window itself holds no state that matters.

pub mod roll;
pub mod theme;

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Align, Button, Color32, ComboBox, CornerRadius, DragValue, Layout, RichText, Sense, Ui, Vec2};
use nice_plug::context::gui::GuiContext;
use nice_plug::prelude::*;
use nice_plug_egui::{create_egui_editor, EguiEditor, EguiNiceSettings, NiceEguiApp, RepaintNotifier};
use raw_window_handle::{HasWindowHandle, RawWindowHandle};

use crate::drag::FileDrag;
use crate::params::RebarParams;
use crate::worker::Shared;

/// How long the Regenerate trigger stays on so the audio thread sees it in some block.
const TRIGGER_HOLD: Duration = Duration::from_millis(120);

/// The "Stick to kept" checkbox's tooltip.
const STICK_HINT: &str =
    "Let more new phrases repeat the unselected bars note for note: the new bars follow them more closely";

pub struct RebarEditor {
    params: Arc<RebarParams>,
    shared: Arc<Shared>,
    gui: Option<GuiContext>,
    drag_from: Option<u32>,
    release_trigger_at: Option<Instant>,
    /// What the last export or drag did, for the status line.
    last_export: Option<Result<String, String>>,
    file_drag: Option<FileDrag>,
}

/// The editor for the plugin's `editor()`.
pub fn create(params: Arc<RebarParams>, shared: Arc<Shared>) -> Option<EguiEditor<RebarEditor>> {
    let app = RebarEditor::new(params.clone(), shared);
    let settings = EguiNiceSettings { title: "Rebar".into(), ..Default::default() };
    create_egui_editor(params.editor_state.clone(), RepaintNotifier::new(), settings, app)
}

impl RebarEditor {
    pub fn new(params: Arc<RebarParams>, shared: Arc<Shared>) -> Self {
        Self {
            params,
            shared,
            gui: None,
            drag_from: None,
            release_trigger_at: None,
            last_export: None,
            file_drag: None,
        }
    }
}

/// Sets a parameter as one host gesture.
fn set<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

fn label(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(text).size(11.0).color(theme::TEXT_DIM));
}

fn int_control(ui: &mut Ui, setter: &ParamSetter, param: &IntParam, text: &str, range: std::ops::RangeInclusive<i32>) {
    ui.vertical(|ui| {
        label(ui, text);
        let mut value = param.value();
        if ui.add(DragValue::new(&mut value).range(range).speed(0.1)).changed() {
            set(setter, param, value);
        }
    });
}

fn enum_control<T: Enum + PartialEq + Copy + 'static>(
    ui: &mut Ui,
    setter: &ParamSetter,
    param: &EnumParam<T>,
    text: &str,
    width: f32,
) {
    ui.vertical(|ui| {
        label(ui, text);
        let current = param.value();
        ComboBox::from_id_salt(text).width(width).selected_text(T::variants()[current.to_index()]).show_ui(ui, |ui| {
            for (index, name) in T::variants().iter().enumerate() {
                let choice = T::from_index(index);
                if ui.selectable_label(choice == current, *name).clicked() {
                    set(setter, param, choice);
                }
            }
        });
    });
}

impl NiceEguiApp for RebarEditor {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        theme::apply(&egui_ctx);
        self.gui = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        let window = frame.baseview_window().window_handle().ok().map(|handle| handle.as_raw());
        self.draw(ui, &setter, window);
    }
}

impl RebarEditor {
    /// The whole window; separate from `ui` so a preview can draw it with any setter. `window`
    /// is the native window a drag to a track starts from.
    pub fn draw(&mut self, ui: &mut Ui, setter: &ParamSetter, window: Option<RawWindowHandle>) {
        let p = self.params.clone();
        if self.release_trigger_at.is_some_and(|t| Instant::now() >= t) {
            set(setter, &p.regenerate, false);
            self.release_trigger_at = None;
        }
        let status = self.shared.status.lock().clone();
        let session = self.shared.session.read().clone();
        if let Some(report) = self.file_drag.as_mut().and_then(FileDrag::finished) {
            self.last_export = Some(report);
            self.file_drag = None;
        }
        if status.working || self.release_trigger_at.is_some() || self.file_drag.is_some() {
            ui.ctx().request_repaint_after(Duration::from_millis(50));
        } else {
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }

        egui::Frame::new().fill(theme::BACKGROUND).inner_margin(14.0).show(ui, |ui| {
            ui.set_min_size(ui.available_size());
            // Header: name, status, Regenerate.
            ui.horizontal(|ui| {
                ui.label(RichText::new("REBAR").size(22.0).strong().color(theme::TEXT));
                ui.label(RichText::new("latent diffusion bar rewriter").size(12.0).color(theme::TEXT_DIM));
                ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                    let busy = status.working || self.release_trigger_at.is_some();
                    let text = RichText::new(if busy { "Working…" } else { "Regenerate" })
                        .size(15.0)
                        .strong()
                        .color(Color32::WHITE);
                    let button = Button::new(text)
                        .fill(theme::ACCENT)
                        .corner_radius(CornerRadius::same(6))
                        .min_size(Vec2::new(140.0, 34.0));
                    if ui.add_enabled(!busy, button).clicked() {
                        set(setter, &p.regenerate, true);
                        self.release_trigger_at = Some(Instant::now() + TRIGGER_HOLD);
                    }
                    ui.add_space(12.0);
                    let (dot, line) = match (&status.last_error, status.working, status.last_latency_ms) {
                        (Some(error), _, _) => (theme::ERROR, error.clone()),
                        (None, true, _) => (theme::ACCENT, "generating".to_string()),
                        (None, false, Some(ms)) => (theme::OK, format!("idle · last {ms:.0} ms")),
                        (None, false, None) => (theme::OK, "idle".to_string()),
                    };
                    ui.label(RichText::new(line).size(12.0).color(theme::TEXT_DIM));
                    let (dot_rect, _) = ui.allocate_exact_size(Vec2::splat(10.0), egui::Sense::hover());
                    ui.painter().circle_filled(dot_rect.center(), 4.0, dot);
                });
            });
            ui.add_space(10.0);

            // Controls.
            egui::Frame::new().fill(theme::PANEL).corner_radius(CornerRadius::same(6)).inner_margin(10.0).show(
                ui,
                |ui| {
                    ui.horizontal(|ui| {
                        ui.spacing_mut().item_spacing.x = 14.0;
                        int_control(ui, setter, &p.variations, "Variations", 1..=8);
                        ui.vertical(|ui| {
                            label(ui, "Temperature");
                            let mut t = p.temperature.value();
                            if ui.add(DragValue::new(&mut t).range(0.5..=1.5).speed(0.01).fixed_decimals(2)).changed() {
                                set(setter, &p.temperature, t);
                            }
                        });
                        int_control(ui, setter, &p.seed, "Seed", 0..=9999);
                        enum_control(ui, setter, &p.key_root, "Key", 70.0);
                        enum_control(ui, setter, &p.key_scale, "Scale", 110.0);
                        ui.vertical(|ui| {
                            label(ui, "Stick to kept");
                            let mut stick = p.stick_to_kept.value();
                            if ui.checkbox(&mut stick, "").on_hover_text(STICK_HINT).changed() {
                                set(setter, &p.stick_to_kept, stick);
                            }
                        });
                        enum_control(ui, setter, &p.repeats, "Repeats", 90.0);
                        enum_control(ui, setter, &p.mode, "Mode", 80.0);
                        enum_control(ui, setter, &p.capture_source, "Capture", 150.0);
                        int_control(ui, setter, &p.capture_bars, "Bars", 1..=crate::clip::MAX_BARS as i32);
                        ui.vertical(|ui| {
                            label(ui, "Listen");
                            let mut listen = p.listen.value();
                            if ui.checkbox(&mut listen, "").changed() {
                                set(setter, &p.listen, listen);
                            }
                        });
                    });
                },
            );
            ui.add_space(10.0);

            // Variation browser, A/B and export.
            let count = session.history.len();
            let chosen = match p.variation.value() {
                0 => count.checked_sub(1),
                n => (n as usize <= count).then(|| n as usize - 1),
            };
            ui.horizontal(|ui| {
                let (first, last) = (p.selection_first.value(), p.selection_last.value());
                ui.label(RichText::new(format!("Bars {first}–{last}")).size(13.0).color(theme::TEXT));
                ui.add_space(16.0);
                if ui.add_enabled(chosen.is_some_and(|c| c > 0), Button::new("Prev")).clicked() {
                    set(setter, &p.variation, chosen.unwrap_or(0) as i32);
                }
                let caption = match chosen {
                    Some(c) => format!("Variation {} of {count}", c + 1),
                    None => "No variations yet".to_string(),
                };
                ui.label(RichText::new(caption).size(13.0).color(theme::TEXT));
                if ui.add_enabled(chosen.is_some_and(|c| c + 1 < count), Button::new("Next")).clicked() {
                    set(setter, &p.variation, chosen.unwrap_or(0) as i32 + 2);
                }
                if ui.selectable_label(p.variation.value() == 0, "Latest").clicked() {
                    set(setter, &p.variation, 0);
                }
                let original = p.play_original.value();
                if ui.selectable_label(original, "A/B: original").clicked() {
                    set(setter, &p.play_original, !original);
                }
                ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                    let variation = chosen.filter(|_| !original).map(|c| (c, &session.history[c]));
                    let export = || {
                        session
                            .clip
                            .as_ref()
                            .map(|clip| crate::export::write(&crate::export::export_dir(), clip, variation))
                    };
                    let can_export = session.clip.is_some();
                    let drag = ui
                        .add_enabled(
                            can_export && self.file_drag.is_none(),
                            Button::new("Drag to track").sense(Sense::drag()),
                        )
                        .on_hover_text(crate::drag::TOOLTIP);
                    if drag.drag_started() {
                        // The file is written first: a drop target reads it the moment it lands.
                        match export() {
                            Some(Ok(path)) => match FileDrag::start(path, window) {
                                Ok(file_drag) => self.file_drag = Some(file_drag),
                                Err(e) => self.last_export = Some(Err(e)),
                            },
                            Some(Err(e)) => self.last_export = Some(Err(e)),
                            None => {}
                        }
                    }
                    if ui.add_enabled(can_export, Button::new("Export .mid")).clicked() {
                        self.last_export = export().map(|written| written.map(|p| format!("saved {}", p.display())));
                    }
                    match &self.last_export {
                        Some(Ok(done)) => ui.label(RichText::new(done).size(11.0).color(theme::TEXT_DIM)),
                        Some(Err(e)) => ui.label(RichText::new(e).size(11.0).color(theme::ERROR)),
                        None => ui.label(""),
                    };
                });
            });
            ui.add_space(8.0);

            // Piano roll.
            let variation = chosen.filter(|_| !p.play_original.value()).map(|c| &session.history[c]);
            let view = roll::RollView {
                clip: session.clip.as_ref(),
                variation: variation.map(|g| (g.clip.notes.as_slice(), g.selected_bars)),
                selection: (p.selection_first.value().max(1) as u32 - 1, p.selection_last.value().max(1) as u32 - 1),
                fallback_bars: p.capture_bars.value().max(1) as u32,
            };
            if let Some((first, last)) = roll::show(ui, &view, &mut self.drag_from) {
                set(setter, &p.selection_first, first as i32 + 1);
                set(setter, &p.selection_last, last as i32 + 1);
            }
        });
    }
}
