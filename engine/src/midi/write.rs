//! Writes a melody, or any notes, as a standard MIDI file: type 1, 480 PPQ, a conductor track with
//! tempo, meter and key, and one note track on channel 1.

use std::path::Path;

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use super::{KeySignature, Meter, MidiError, TickNote};
use crate::melody::Melody;
use crate::time::{bpm_to_micros_per_beat, steps_to_ticks, Step};

/// Ticks per quarter note of written files: divisible by 3 and 4 and what most DAWs use.
pub const WRITE_PPQ: u16 = 480;
/// Velocity of written notes; the grid carries none, and 90 reads as a plain mezzo-forte.
pub const WRITE_VELOCITY: u8 = 90;

/// Encodes the melody as the bytes of a type 1 MIDI file at 480 PPQ.
pub fn melody_to_smf_bytes(melody: &Melody) -> Result<Vec<u8>, MidiError> {
    melody_to_smf_bytes_at(melody, WRITE_PPQ)
}

/// Encodes the melody as the bytes of a type 1 MIDI file at `ppq` ticks per quarter note
/// (at most 32767, the largest a MIDI header holds).
pub fn melody_to_smf_bytes_at(melody: &Melody, ppq: u16) -> Result<Vec<u8>, MidiError> {
    let ppq = ppq.clamp(1, u15::max_value().as_int());
    let notes: Vec<TickNote> = melody
        .notes
        .iter()
        .map(|n| TickNote {
            key: n.pitch,
            start: steps_to_ticks(n.start, ppq),
            end: steps_to_ticks(n.end(), ppq),
            velocity: WRITE_VELOCITY,
        })
        .collect();
    let song = Song {
        bpm: melody.bpm,
        meter: melody.meter,
        key: melody.key,
        length_ticks: steps_to_ticks(Step(melody.steps()), ppq),
    };
    notes_to_smf_bytes(&notes, &song, ppq)
}

/// What a written file says besides its notes.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Song {
    pub bpm: f64,
    pub meter: Meter,
    pub key: Option<KeySignature>,
    /// Where the note track ends, so the file is as long as the clip.
    pub length_ticks: u64,
}

/// Encodes notes (any polyphony, channel 1) as a type 1 MIDI file at `ppq`: a conductor track
/// with tempo, meter and key, then the note track.
pub fn notes_to_smf_bytes(notes: &[TickNote], song: &Song, ppq: u16) -> Result<Vec<u8>, MidiError> {
    let ppq = ppq.clamp(1, u15::max_value().as_int());
    let mut conductor = vec![
        meta(0, MetaMessage::TrackName(b"Rebar")),
        meta(0, MetaMessage::Tempo(u24::new(bpm_to_micros_per_beat(song.bpm)))),
        meta(
            0,
            MetaMessage::TimeSignature(
                song.meter.numerator,
                song.meter.denominator.max(1).trailing_zeros() as u8,
                24,
                8,
            ),
        ),
    ];
    if let Some(key) = song.key {
        conductor.push(meta(0, MetaMessage::KeySignature(key.sharps, key.minor)));
    }
    conductor.push(meta(0, MetaMessage::EndOfTrack));

    // (tick, is_on, pitch, velocity): offs sort before ons at the same tick so repeated pitches
    // re-strike.
    let mut events: Vec<(u64, bool, u8, u8)> = Vec::with_capacity(notes.len() * 2);
    for note in notes {
        events.push((note.start, true, note.key, note.velocity));
        events.push((note.end.max(note.start), false, note.key, 0));
    }
    events.sort();
    let mut notes_track = Vec::with_capacity(events.len() + 2);
    notes_track.push(meta(0, MetaMessage::TrackName(b"Melody")));
    let mut last_tick = 0u64;
    for (tick, is_on, pitch, velocity) in events {
        let delta = u32::try_from(tick - last_tick)
            .ok()
            .filter(|d| *d <= u28::max_value().as_int())
            .ok_or_else(|| MidiError::Write(format!("a gap of {} ticks is too long for MIDI", tick - last_tick)))?;
        last_tick = tick;
        let key = u7::new(pitch.min(127));
        let message = if is_on {
            MidiMessage::NoteOn { key, vel: u7::new(velocity.clamp(1, 127)) }
        } else {
            MidiMessage::NoteOff { key, vel: u7::new(0) }
        };
        notes_track
            .push(TrackEvent { delta: u28::new(delta), kind: TrackEventKind::Midi { channel: u4::new(0), message } });
    }
    // End the track at the end of the last bar, so the file's length is the clip's length.
    let end = song.length_ticks.saturating_sub(last_tick);
    notes_track.push(meta(u32::try_from(end).unwrap_or(0).min(u28::max_value().as_int()), MetaMessage::EndOfTrack));

    let smf = Smf {
        header: Header { format: Format::Parallel, timing: Timing::Metrical(u15::new(ppq)) },
        tracks: vec![conductor, notes_track],
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).map_err(|e| MidiError::Write(e.to_string()))?;
    Ok(bytes)
}

/// Writes the melody to `path`, through a temporary file so a failed write never leaves half a file.
pub fn write_melody(melody: &Melody, path: &Path) -> Result<(), MidiError> {
    let bytes = melody_to_smf_bytes(melody)?;
    crate::fsutil::write_atomically(path, &bytes)
        .map_err(|source| MidiError::WriteIo { path: path.to_path_buf(), source })
}

fn meta(delta: u32, message: MetaMessage<'static>) -> TrackEvent<'static> {
    TrackEvent { delta: u28::new(delta), kind: TrackEventKind::Meta(message) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::melody::tokens;
    use crate::melody::{quantize, Note};
    use crate::midi::{parse, KeySignature, MelodySelector, Meter};
    use proptest::prelude::*;

    fn melody_from(notes: Vec<Note>, meter: Meter) -> Melody {
        Melody {
            bars: Melody::bars_to_hold(&notes),
            notes,
            bpm: 96.0,
            meter,
            key: Some(KeySignature { sharps: 2, minor: false }),
        }
    }

    fn meters() -> impl Strategy<Value = Meter> {
        prop::sample::select(vec![
            Meter::FOUR_FOUR,
            Meter { numerator: 2, denominator: 2 },
            Meter { numerator: 2, denominator: 4 },
            Meter { numerator: 4, denominator: 2 },
        ])
    }

    proptest! {
        #[test]
        fn on_grid_melodies_survive_midi_grid_tokens_grid_midi(
            notes in tokens::tests::monophonic_notes().prop_filter("has notes", |n| !n.is_empty()),
            meter in meters(),
            ppq_quarter in 1u16..8000,
        ) {
            let original = melody_from(notes, meter);
            let bytes = melody_to_smf_bytes_at(&original, ppq_quarter * 4).unwrap();

            let file = parse(&bytes).unwrap();
            let (read_back, report) = quantize(&file, file.select(&MelodySelector::MostNotes).unwrap()).unwrap();
            prop_assert_eq!(report.snapped_onsets + report.dropped_short + report.dropped_polyphony, 0);
            prop_assert_eq!(&read_back, &original);

            let ids = tokens::encode(&read_back.notes, read_back.steps());
            let again = Melody { notes: tokens::decode(&ids), ..read_back.clone() };
            prop_assert_eq!(&again, &original);
            prop_assert_eq!(melody_to_smf_bytes_at(&again, ppq_quarter * 4).unwrap(), bytes);
        }
    }

    #[test]
    fn written_files_are_type_1_at_480_ppq_with_tempo_and_meter() {
        let melody =
            melody_from(vec![Note { pitch: 67, start: Step(4), len: Step(8) }], Meter { numerator: 2, denominator: 2 });
        let file = parse(&melody_to_smf_bytes(&melody).unwrap()).unwrap();
        assert_eq!((file.format, file.ppq), (1, 480));
        assert_eq!(file.meters, vec![(0, Meter { numerator: 2, denominator: 2 })]);
        assert!((file.initial_bpm() - 96.0).abs() < 1e-3);
        assert_eq!(file.parts[0].notes[0].start, 480);
        assert_eq!(file.end_tick, 4 * 480);
    }

    #[test]
    fn a_failed_write_says_it_could_not_write() {
        let dir = std::env::temp_dir().join(format!("rebar-write-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file.mid");
        std::fs::write(&file, b"x").unwrap();
        let melody = melody_from(vec![Note { pitch: 60, start: Step(0), len: Step(4) }], Meter::FOUR_FOUR);
        let err = write_melody(&melody, &file.join("out.mid")).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.starts_with("cannot write "), "{err}");
        assert!(err.contains("file.mid is a regular file, not a folder"), "{err}");
    }
}
