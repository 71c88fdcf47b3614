//! The piano-roll figure of `rebar eval --task infill`, like the seed paper's Fig. 2: for a few
//! tunes (columns), the original and its diffusion, interpolation and prior infills (rows, top to
//! bottom), with the infilled bars shaded. Row colours: original black, diffusion blue,
//! interpolation orange, prior red. The figure has no text, so no font is needed to draw it.

use std::path::Path;

use plotters::prelude::*;

use rebar_engine::melody::Melody;
use rebar_engine::time::STEPS_PER_BAR;

/// Pixels per 16th step and per semitone.
const STEP_PX: i32 = 2;
const PITCH_PX: i32 = 3;
/// Lowest and highest pitch drawn: the corpus's range (MIDI 48–93) with a margin.
const LOW_PITCH: i32 = 45;
const HIGH_PITCH: i32 = 96;
/// Gap between panels.
const GAP_PX: i32 = 12;

/// Row colours: original, diffusion, interpolation, prior.
const ROW_COLOURS: [RGBColor; 4] =
    [RGBColor(20, 20, 20), RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(214, 39, 40)];

/// Draws `columns` (each: original, diffusion, interpolation, prior) with `shaded` bars
/// (0-based, inclusive) to a PNG at `path`.
pub fn infill_figure(path: &Path, columns: &[[&Melody; 4]], shaded: (u32, u32)) -> Result<(), String> {
    let bars = columns.iter().flat_map(|c| c.iter().map(|m| m.bars)).max().unwrap_or(16) as i32;
    let panel_w = bars * STEPS_PER_BAR as i32 * STEP_PX;
    let panel_h = (HIGH_PITCH - LOW_PITCH) * PITCH_PX;
    let width = columns.len() as i32 * (panel_w + GAP_PX) + GAP_PX;
    let height = 4 * (panel_h + GAP_PX) + GAP_PX;
    let root = BitMapBackend::new(path, (width as u32, height as u32)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    for (col, melodies) in columns.iter().enumerate() {
        for (row, melody) in melodies.iter().enumerate() {
            let x0 = GAP_PX + col as i32 * (panel_w + GAP_PX);
            let y0 = GAP_PX + row as i32 * (panel_h + GAP_PX);
            let step_x = |step: u32| x0 + step as i32 * STEP_PX;
            root.draw(&Rectangle::new([(x0, y0), (x0 + panel_w, y0 + panel_h)], RGBColor(248, 248, 248).filled()))
                .map_err(err)?;
            let (first, last) = (shaded.0 * STEPS_PER_BAR, (shaded.1 + 1) * STEPS_PER_BAR);
            root.draw(&Rectangle::new(
                [(step_x(first), y0), (step_x(last), y0 + panel_h)],
                RGBColor(225, 232, 240).filled(),
            ))
            .map_err(err)?;
            for bar in 0..=bars as u32 {
                let x = step_x(bar * STEPS_PER_BAR);
                root.draw(&PathElement::new(vec![(x, y0), (x, y0 + panel_h)], RGBColor(200, 200, 200))).map_err(err)?;
            }
            for note in &melody.notes {
                let pitch = i32::from(note.pitch).clamp(LOW_PITCH, HIGH_PITCH - 1);
                let y = y0 + (HIGH_PITCH - 1 - pitch) * PITCH_PX;
                let rect = [(step_x(note.start.0), y), (step_x(note.end().0) - 1, y + PITCH_PX - 1)];
                root.draw(&Rectangle::new(rect, ROW_COLOURS[row].filled())).map_err(err)?;
            }
        }
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebar_engine::melody::Note;
    use rebar_engine::midi::Meter;
    use rebar_engine::time::Step;

    #[test]
    fn the_figure_is_a_png_of_the_expected_size() {
        let melody = Melody {
            notes: vec![Note { pitch: 60, start: Step(0), len: Step(4) }],
            bars: 16,
            bpm: 120.0,
            meter: Meter::FOUR_FOUR,
            key: None,
        };
        let path = std::env::temp_dir().join(format!("rebar-figure-{}.png", std::process::id()));
        infill_figure(&path, &[[&melody; 4], [&melody; 4]], (4, 11)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        assert_eq!(width as i32, 2 * (16 * 16 * STEP_PX + GAP_PX) + GAP_PX);
    }
}
