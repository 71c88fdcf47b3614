//! Reads a standard MIDI file (type 0, 1 or 2, any PPQ) into timed notes per part, plus the
//! tempo, meter and key events. Nothing here quantizes; see [`crate::melody::quantize`](mod@crate::melody::quantize).

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};

use super::{KeySignature, Meter, MidiError};
use crate::time::micros_per_beat_to_bpm;

/// One sounding note, timed in ticks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TickNote {
    pub key: u8,
    pub start: u64,
    pub end: u64,
    pub velocity: u8,
}

/// The notes of one track, or of one channel where a track mixes channels (as type 0 files do).
#[derive(Clone, Debug)]
pub struct Part {
    /// Index of the track (`MTrk` chunk) in the file.
    pub track: usize,
    /// The channel, where the track was split by channel.
    pub channel: Option<u8>,
    /// The track's name, or "" if it has none.
    pub name: String,
    /// Notes sorted by start, then key.
    pub notes: Vec<TickNote>,
}

impl Part {
    /// A label that tells parts apart: the name, with the channel where the track was split.
    pub fn label(&self) -> String {
        let name = if self.name.is_empty() { format!("track {}", self.track) } else { self.name.clone() };
        match self.channel {
            Some(channel) => format!("{name} (ch {})", channel + 1),
            None => name,
        }
    }
}

/// Which part holds the melody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MelodySelector {
    /// The part with the most notes.
    #[default]
    MostNotes,
    /// The part at this index in [`MidiFile::parts`].
    Index(usize),
    /// The first part whose label contains this text, ignoring case.
    Name(String),
}

impl std::str::FromStr for MelodySelector {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<usize>() {
            Ok(index) => MelodySelector::Index(index),
            Err(_) => MelodySelector::Name(s.to_string()),
        })
    }
}

/// A parsed MIDI file: its note-bearing parts and its tempo, meter and key changes, all timed in
/// ticks at `ppq`.
#[derive(Clone, Debug)]
pub struct MidiFile {
    /// 0, 1 or 2.
    pub format: u8,
    /// Ticks per quarter note.
    pub ppq: u16,
    /// Number of `MTrk` chunks, including those with no notes.
    pub track_count: usize,
    /// Parts that hold at least one note, in track order.
    pub parts: Vec<Part>,
    /// (tick, beats per minute), sorted by tick.
    pub tempos: Vec<(u64, f64)>,
    /// (tick, meter), sorted by tick.
    pub meters: Vec<(u64, Meter)>,
    /// (tick, key), sorted by tick.
    pub keys: Vec<(u64, KeySignature)>,
    /// The tick of the last event in any track.
    pub end_tick: u64,
}

impl MidiFile {
    /// The tempo in force at the start, or MIDI's default of 120 BPM.
    pub fn initial_bpm(&self) -> f64 {
        self.tempos.first().filter(|(tick, _)| *tick == 0).map_or(120.0, |(_, bpm)| *bpm)
    }

    /// Picks the melody part.
    pub fn select(&self, selector: &MelodySelector) -> Result<&Part, MidiError> {
        let available = || {
            let labels: Vec<String> =
                self.parts.iter().enumerate().map(|(i, p)| format!("{i}: {}", p.label())).collect();
            if labels.is_empty() {
                "no parts with notes".to_string()
            } else {
                format!("parts {}", labels.join(", "))
            }
        };
        match selector {
            MelodySelector::MostNotes => {
                // The first of equals wins, so the choice is stable.
                let mut best: Option<&Part> = None;
                for part in &self.parts {
                    if best.is_none_or(|b| part.notes.len() > b.notes.len()) {
                        best = Some(part);
                    }
                }
                best.ok_or(MidiError::NoNotes)
            }
            MelodySelector::Index(index) => self
                .parts
                .get(*index)
                .ok_or_else(|| MidiError::TrackNotFound { wanted: index.to_string(), available: available() }),
            MelodySelector::Name(name) => {
                let wanted = name.to_lowercase();
                self.parts
                    .iter()
                    .find(|p| p.label().to_lowercase().contains(&wanted))
                    .ok_or_else(|| MidiError::TrackNotFound { wanted: name.clone(), available: available() })
            }
        }
    }
}

/// Reads and parses a MIDI file from disk.
pub fn read_file(path: &Path) -> Result<MidiFile, MidiError> {
    let bytes = std::fs::read(path).map_err(|source| MidiError::Io { path: path.to_path_buf(), source })?;
    parse(&bytes)
}

/// Parses the bytes of a standard MIDI file.
pub fn parse(bytes: &[u8]) -> Result<MidiFile, MidiError> {
    check_not_truncated(bytes)?;
    let smf = Smf::parse(bytes).map_err(|e| MidiError::Malformed(e.to_string()))?;
    let ppq = match smf.header.timing {
        Timing::Metrical(ppq) if ppq.as_int() > 0 => ppq.as_int(),
        Timing::Metrical(_) => return Err(MidiError::Malformed("zero ticks per quarter note".into())),
        Timing::Timecode(..) => return Err(MidiError::SmpteTiming),
    };
    let format = match smf.header.format {
        midly::Format::SingleTrack => 0,
        midly::Format::Parallel => 1,
        midly::Format::Sequential => 2,
    };

    let mut file = MidiFile {
        format,
        ppq,
        track_count: smf.tracks.len(),
        parts: Vec::new(),
        tempos: Vec::new(),
        meters: Vec::new(),
        keys: Vec::new(),
        end_tick: 0,
    };
    for (track_index, track) in smf.tracks.iter().enumerate() {
        read_track(track_index, track, &mut file);
    }
    file.tempos.sort_by_key(|(tick, _)| *tick);
    file.meters.sort_by_key(|(tick, _)| *tick);
    file.keys.sort_by_key(|(tick, _)| *tick);
    Ok(file)
}

/// midly reads a cut-off track as far as it goes; a file cut short (a failed download or copy)
/// should say so instead of loading as a shorter tune, so check every chunk is whole.
fn check_not_truncated(bytes: &[u8]) -> Result<(), MidiError> {
    let mut at = 0usize;
    let mut index = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 8) else {
            return Err(MidiError::Malformed(format!("truncated: chunk {index} header is cut off")));
        };
        let declared = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let remaining = bytes.len() - at - 8;
        if declared > remaining {
            let id = String::from_utf8_lossy(&header[..4]);
            return Err(MidiError::Malformed(format!(
                "truncated: chunk {index} ({id}) declares {declared} bytes but only {remaining} remain"
            )));
        }
        at += 8 + declared;
        index += 1;
    }
    Ok(())
}

/// Pairs note-ons with note-offs in one track and collects its meta events.
fn read_track(track_index: usize, track: &[midly::TrackEvent<'_>], file: &mut MidiFile) {
    let mut tick = 0u64;
    let mut name = String::new();
    // Notes still sounding, by (channel, key), oldest first.
    let mut open: HashMap<(u8, u8), VecDeque<(u64, u8)>> = HashMap::new();
    let mut notes_by_channel: [Vec<TickNote>; 16] = Default::default();

    for event in track {
        tick += u64::from(event.delta.as_int());
        match event.kind {
            TrackEventKind::Midi { channel, message } => {
                let channel = channel.as_int();
                let (key, velocity) = match message {
                    MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int()),
                    MidiMessage::NoteOff { key, .. } => (key.as_int(), 0),
                    _ => continue,
                };
                let stack = open.entry((channel, key)).or_default();
                if velocity > 0 {
                    stack.push_back((tick, velocity));
                } else if let Some((start, velocity)) = stack.pop_front() {
                    notes_by_channel[usize::from(channel)].push(TickNote { key, start, end: tick, velocity });
                }
            }
            TrackEventKind::Meta(meta) => match meta {
                MetaMessage::Tempo(micros) => {
                    file.tempos.push((tick, micros_per_beat_to_bpm(micros.as_int())));
                }
                MetaMessage::TimeSignature(numerator, denominator_log2, _, _) => {
                    // Denominators past 2^7 do not exist in music; clamp so a corrupt byte cannot overflow.
                    let denominator = 1u8 << denominator_log2.min(7);
                    file.meters.push((tick, Meter { numerator, denominator }));
                }
                MetaMessage::KeySignature(sharps, minor) => {
                    file.keys.push((tick, KeySignature { sharps, minor }));
                }
                MetaMessage::TrackName(bytes) if name.is_empty() => {
                    name = String::from_utf8_lossy(bytes).trim().to_string();
                }
                _ => {}
            },
            _ => {}
        }
    }
    // A note left open sounds until the end of its track.
    for ((channel, key), stack) in open {
        for (start, velocity) in stack {
            notes_by_channel[usize::from(channel)].push(TickNote { key, start, end: tick, velocity });
        }
    }
    file.end_tick = file.end_tick.max(tick);

    let channels: Vec<usize> = (0..16).filter(|&c| !notes_by_channel[c].is_empty()).collect();
    let split = channels.len() > 1;
    for channel in channels {
        let mut notes = std::mem::take(&mut notes_by_channel[channel]);
        notes.sort_by_key(|n| (n.start, n.key, n.end));
        file.parts.push(Part {
            track: track_index,
            channel: split.then_some(channel as u8),
            name: name.clone(),
            notes,
        });
    }
}
