//! The piano roll: a bar ruler, the captured clip, the chosen variation over it and the bar
//! selection, which the user sets by clicking or dragging across bars.

use egui::{Align2, Color32, CornerRadius, FontId, Pos2, Rect, Sense, Stroke, StrokeKind, Ui, Vec2};

use crate::clip::{bar_is_selected, Clip, ClipNote};
use crate::editor::theme;
use rebar_engine::time::BEATS_PER_BAR;

/// Height of the bar ruler above the notes.
const RULER: f32 = 22.0;

/// What the roll shows.
pub struct RollView<'a> {
    pub clip: Option<&'a Clip>,
    /// The variation's notes and the bars they fill.
    pub variation: Option<(&'a [ClipNote], u64)>,
    /// Selected bars, 0-based inclusive.
    pub selection: (u32, u32),
    /// Bars to draw when nothing is captured yet.
    pub fallback_bars: u32,
}

/// Draws the roll; returns a new selection when the user dragged one.
pub fn show(ui: &mut Ui, view: &RollView<'_>, drag_from: &mut Option<u32>) -> Option<(u32, u32)> {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, CornerRadius::same(6), theme::ROLL_BACKGROUND);

    let bars = view.clip.map(|c| c.region.bars).unwrap_or(view.fallback_bars).max(1);
    let beats = f64::from(bars * BEATS_PER_BAR);
    let notes_rect = Rect::from_min_max(rect.min + Vec2::new(0.0, RULER), rect.max);
    let bar_width = rect.width() / bars as f32;
    let x_of = |beat: f64| rect.left() + (beat / beats) as f32 * rect.width();

    // Pitch range: the clip's and the variation's notes with a margin, at least two octaves.
    let all_notes =
        view.clip.map(|c| c.notes.as_slice()).unwrap_or(&[]).iter().chain(view.variation.map(|v| v.0).unwrap_or(&[]));
    let (mut low, mut high) = all_notes.fold((127u8, 0u8), |(lo, hi), n| (lo.min(n.pitch), hi.max(n.pitch)));
    if low > high {
        (low, high) = (60, 72);
    }
    let middle = (u16::from(low) + u16::from(high)) / 2;
    let span = (high - low).max(24) + 4;
    let low = middle.saturating_sub(u16::from(span) / 2) as f32;
    let row = notes_rect.height() / f32::from(span);
    let y_of = |pitch: u8| notes_rect.bottom() - (f32::from(pitch) - low + 1.0) * row;

    // Selected bars, then bar and beat lines.
    let (first, last) = view.selection;
    if first < bars {
        let shade = Rect::from_min_max(
            Pos2::new(rect.left() + first as f32 * bar_width, rect.top()),
            Pos2::new(rect.left() + (last.min(bars - 1) + 1) as f32 * bar_width, rect.bottom()),
        );
        painter.rect_filled(shade, CornerRadius::ZERO, theme::SELECTION);
    }
    for pitch in (low as u8..=(low as u8).saturating_add(span)).filter(|p| p % 12 == 0) {
        let y = y_of(pitch) + row;
        painter.line_segment(
            [Pos2::new(rect.left(), y), Pos2::new(rect.right(), y)],
            Stroke::new(1.0, theme::OCTAVE_LINE),
        );
        painter.text(
            Pos2::new(rect.left() + 4.0, y - 2.0),
            Align2::LEFT_BOTTOM,
            format!("C{}", i32::from(pitch) / 12 - 1),
            FontId::proportional(10.0),
            theme::TEXT_DIM,
        );
    }
    for beat in 0..=bars * BEATS_PER_BAR {
        let x = x_of(f64::from(beat));
        let (color, top) = if beat % BEATS_PER_BAR == 0 {
            (theme::BAR_LINE, rect.top())
        } else {
            (theme::BEAT_LINE, notes_rect.top())
        };
        painter.line_segment([Pos2::new(x, top), Pos2::new(x, rect.bottom())], Stroke::new(1.0, color));
    }
    let ruler = Rect::from_min_max(rect.min, Pos2::new(rect.right(), notes_rect.top()));
    painter.rect_filled(ruler, CornerRadius { nw: 6, ne: 6, sw: 0, se: 0 }, theme::RULER);
    for bar in 0..bars {
        let label_every = ((bars as f32 * 28.0 / rect.width()).ceil() as u32).max(1);
        if bar % label_every == 0 {
            let color = if (first..=last).contains(&bar) { theme::ACCENT } else { theme::TEXT_DIM };
            painter.text(
                Pos2::new(rect.left() + bar as f32 * bar_width + 5.0, ruler.center().y),
                Align2::LEFT_CENTER,
                (bar + 1).to_string(),
                FontId::proportional(12.0),
                color,
            );
        }
    }

    // Notes: the clip dimmed where the variation replaces it, then the variation.
    let replaced = |bar: u32| view.variation.is_some_and(|(_, bits)| bar_is_selected(bits, bar));
    let draw = |note: &ClipNote, fill: Color32| {
        let r = Rect::from_min_max(
            Pos2::new(x_of(note.start) + 0.5, y_of(note.pitch)),
            Pos2::new((x_of(note.end()) - 0.5).max(x_of(note.start) + 2.0), y_of(note.pitch) + row.max(2.0)),
        );
        painter.rect_filled(r.intersect(notes_rect), CornerRadius::same(2), fill);
    };
    if let Some(clip) = view.clip {
        for note in &clip.notes {
            let fill = if replaced(clip.region.bar_at(note.start)) { theme::NOTE_REPLACED } else { theme::NOTE };
            draw(note, fill);
        }
    }
    if let Some((notes, _)) = view.variation {
        for note in notes {
            draw(note, theme::ACCENT);
        }
    }
    if view.clip.is_none() {
        painter.text(
            notes_rect.center(),
            Align2::CENTER_CENTER,
            "Play your clip through Rebar to capture it",
            FontId::proportional(15.0),
            theme::TEXT_DIM,
        );
    }
    painter.rect_stroke(rect, CornerRadius::same(6), Stroke::new(1.0, theme::BORDER), StrokeKind::Inside);

    // Click or drag across bars to select them.
    let bar_at = |pos: Pos2| (((pos.x - rect.left()) / bar_width).floor().max(0.0) as u32).min(bars - 1);
    let pointer = response.interact_pointer_pos();
    if response.drag_started() || response.clicked() {
        *drag_from = pointer.map(bar_at);
    }
    let selection = match (*drag_from, pointer) {
        (Some(from), Some(pos)) if response.dragged() || response.clicked() || response.drag_stopped() => {
            let to = bar_at(pos);
            Some((from.min(to), from.max(to)))
        }
        _ => None,
    };
    if response.drag_stopped() || response.clicked() {
        *drag_from = None;
    }
    selection
}
