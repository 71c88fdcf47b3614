//! Rebar's colours and egui style: a dark, low-contrast studio look with one accent colour for
//! what Rebar generated.

use egui::{Color32, Context, CornerRadius, Stroke, Visuals};

pub const BACKGROUND: Color32 = Color32::from_rgb(0x17, 0x19, 0x1d);
pub const PANEL: Color32 = Color32::from_rgb(0x20, 0x23, 0x29);
pub const ROLL_BACKGROUND: Color32 = Color32::from_rgb(0x1c, 0x1f, 0x24);
pub const RULER: Color32 = Color32::from_rgb(0x26, 0x2a, 0x31);
pub const BORDER: Color32 = Color32::from_rgb(0x33, 0x38, 0x41);
pub const BAR_LINE: Color32 = Color32::from_rgb(0x3a, 0x40, 0x4a);
pub const BEAT_LINE: Color32 = Color32::from_rgb(0x25, 0x29, 0x2f);
pub const OCTAVE_LINE: Color32 = Color32::from_rgb(0x2c, 0x31, 0x38);
pub const SELECTION: Color32 = Color32::from_rgba_premultiplied(0x06, 0x1a, 0x19, 0x20);
pub const NOTE: Color32 = Color32::from_rgb(0x8f, 0x9b, 0xad);
pub const NOTE_REPLACED: Color32 = Color32::from_rgb(0x44, 0x4b, 0x56);
pub const ACCENT: Color32 = Color32::from_rgb(0x2e, 0xc4, 0xb6);
pub const TEXT: Color32 = Color32::from_rgb(0xe4, 0xe7, 0xec);
pub const TEXT_DIM: Color32 = Color32::from_rgb(0x8a, 0x93, 0xa0);
pub const OK: Color32 = Color32::from_rgb(0x5c, 0xc9, 0x7b);
pub const ERROR: Color32 = Color32::from_rgb(0xe5, 0x6b, 0x6f);

/// Installs the style.
pub fn apply(ctx: &Context) {
    let mut visuals = Visuals::dark();
    visuals.panel_fill = BACKGROUND;
    visuals.window_fill = PANEL;
    visuals.extreme_bg_color = ROLL_BACKGROUND;
    visuals.selection.bg_fill = ACCENT.linear_multiply(0.6);
    visuals.selection.stroke = Stroke::new(1.0, ACCENT);
    for widget in [&mut visuals.widgets.inactive, &mut visuals.widgets.hovered, &mut visuals.widgets.active] {
        widget.corner_radius = CornerRadius::same(4);
    }
    visuals.widgets.inactive.weak_bg_fill = Color32::from_rgb(0x2a, 0x2e, 0x35);
    visuals.widgets.inactive.bg_fill = Color32::from_rgb(0x2a, 0x2e, 0x35);
    ctx.set_visuals(visuals);
}
