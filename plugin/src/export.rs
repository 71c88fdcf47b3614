//! The clip with a chosen variation as a standard MIDI file (type 1, 480 PPQ, tempo and 4/4),
//! ready to drop on a DAW track.

use std::path::{Path, PathBuf};

use rebar_engine::midi::{notes_to_smf_bytes, Meter, MidiError, Song, TickNote, WRITE_PPQ};
use rebar_engine::time::{beats_to_ticks, BEATS_PER_BAR};

use crate::clip::{bar_is_selected, Clip, ClipNote};
use crate::session::Generation;

/// The notes heard with `variation` playing in replace mode: the clip's notes outside the
/// variation's bars (cut where those bars begin) and the variation's notes inside them.
pub fn merged_notes(clip: &Clip, variation: Option<&Generation>) -> Vec<ClipNote> {
    let Some(variation) = variation else { return clip.notes.clone() };
    let bar_of = |beat: f64| clip.region.bar_at(beat);
    let selected = |bar: u32| bar_is_selected(variation.selected_bars, bar);
    let mut notes: Vec<ClipNote> = clip
        .notes
        .iter()
        .filter(|n| !selected(bar_of(n.start)))
        .map(|n| {
            let next_selected = (bar_of(n.start) + 1..clip.region.bars).find(|&b| selected(b));
            let cut = next_selected.map(|b| f64::from(b * BEATS_PER_BAR)).unwrap_or(f64::INFINITY);
            ClipNote { length: n.length.min(cut - n.start), ..*n }
        })
        .collect();
    notes.extend(variation.clip.notes.iter().copied());
    notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
    notes
}

/// The MIDI file's bytes.
pub fn to_smf_bytes(clip: &Clip, variation: Option<&Generation>) -> Result<Vec<u8>, MidiError> {
    let notes: Vec<TickNote> = merged_notes(clip, variation)
        .iter()
        .map(|n| TickNote {
            key: n.pitch.min(127),
            start: beats_to_ticks(n.start, WRITE_PPQ),
            end: beats_to_ticks(n.end(), WRITE_PPQ),
            velocity: (n.velocity * 127.0).round().clamp(1.0, 127.0) as u8,
        })
        .collect();
    let song = Song {
        bpm: clip.bpm,
        meter: Meter::FOUR_FOUR,
        key: None,
        length_ticks: beats_to_ticks(clip.region.length_beats(), WRITE_PPQ),
    };
    notes_to_smf_bytes(&notes, &song, WRITE_PPQ)
}

/// Where exports go: `~/Music/Rebar` (or the home folder's equivalent), else the temp folder.
pub fn export_dir() -> PathBuf {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"));
    match home {
        Some(home) => Path::new(&home).join("Music").join("Rebar"),
        None => std::env::temp_dir().join("Rebar"),
    }
}

/// Writes the file into `dir` under a name that says which variation it holds; returns its path.
pub fn write(dir: &Path, clip: &Clip, variation: Option<(usize, &Generation)>) -> Result<PathBuf, String> {
    let bytes = to_smf_bytes(clip, variation.map(|(_, g)| g)).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = match variation {
        Some((index, _)) => format!("rebar-{stamp}-variation-{}.mid", index + 1),
        None => format!("rebar-{stamp}-original.mid"),
    };
    let path = dir.join(name);
    rebar_engine::fsutil::write_atomically(&path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{note, Region};
    use rebar_engine::midi::parse;

    #[test]
    fn the_export_holds_the_input_outside_and_the_variation_inside_the_selection() {
        let region = Region { start_beats: 0.0, bars: 3 };
        // A note held from bar 1 into bar 2, a note in bar 2 (replaced), a note in bar 3.
        let clip = Clip { region, notes: vec![note(2.0, 4.0, 60), note(5.0, 1.0, 62), note(8.0, 1.0, 64)], bpm: 100.0 };
        let generated = Generation {
            clip: Clip { region, notes: vec![note(4.0, 2.0, 70)], bpm: 100.0 },
            selected_bars: 0b010,
            seed: 0,
        };
        let merged = merged_notes(&clip, Some(&generated));
        assert_eq!(merged, vec![note(2.0, 2.0, 60), note(4.0, 2.0, 70), note(8.0, 1.0, 64)]);

        let file = parse(&to_smf_bytes(&clip, Some(&generated)).unwrap()).unwrap();
        assert_eq!(file.ppq, 480);
        let part = &file.parts[0];
        let got: Vec<(u8, u64, u64)> = part.notes.iter().map(|n| (n.key, n.start, n.end)).collect();
        assert_eq!(got, vec![(60, 960, 1920), (70, 1920, 2880), (64, 3840, 4320)]);
        assert!((file.initial_bpm() - 100.0).abs() < 0.01);
    }
}
