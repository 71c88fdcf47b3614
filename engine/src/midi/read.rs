//! Reads a standard MIDI file (type 0, 1 or 2, any PPQ) into timed notes per part, plus the
//! tempo, meter and key events. Nothing here quantizes; see [`crate::melody::quantize`](mod@crate::melody::quantize).
//!
//! A file may come from anywhere, so reading it is bounded: only regular files are read (a FIFO
//! or a device would block or never end), at most [`MAX_FILE_BYTES`] of them, with at most
//! [`MAX_NOTES`] notes, and a track that breaks off inside an event is an error rather than a
//! shorter tune.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
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

/// The largest MIDI file read: 16 MiB, far above any melody (a long orchestral file is a few
/// hundred kilobytes), and small enough that the parsed events stay within a few hundred MB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The most notes read from one file, over all its tracks.
pub const MAX_NOTES: usize = 1 << 20;

/// Reads and parses a MIDI file from disk. A symbolic link is followed; anything but a regular
/// file (a folder, a FIFO, a device) is refused without reading from it.
pub fn read_file(path: &Path) -> Result<MidiFile, MidiError> {
    let io = |source| MidiError::Io { path: path.to_path_buf(), source };
    let file = open_without_blocking(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(MidiError::NotAFile {
            path: path.to_path_buf(),
            kind: crate::fsutil::kind_of(&metadata.file_type()),
        });
    }
    let too_large = |bytes| MidiError::TooLarge { path: path.to_path_buf(), bytes, max: MAX_FILE_BYTES };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    parse(&bytes)
}

/// Opens a file for reading without waiting for a writer, as opening a FIFO would; the caller
/// then refuses it by its type. Reads from a regular file ignore the flag.
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Parses the bytes of a standard MIDI file.
pub fn parse(bytes: &[u8]) -> Result<MidiFile, MidiError> {
    check_ticks_timing(bytes)?;
    check_not_truncated(bytes)?;
    check_events_whole(bytes)?;
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
    let mut notes = 0usize;
    for (track_index, track) in smf.tracks.iter().enumerate() {
        read_track(track_index, track, &mut file, &mut notes)?;
    }
    file.tempos.sort_by_key(|(tick, _)| *tick);
    file.meters.sort_by_key(|(tick, _)| *tick);
    file.keys.sort_by_key(|(tick, _)| *tick);
    Ok(file)
}

/// Refuses SMPTE timing (the header's division word with its top bit set) before midly reads
/// it: Rebar does not read such files anyway, and midly 0.5 negates the frame rate as an `i8`,
/// which overflows (a panic where overflow is checked) for a rate byte of 0x80.
fn check_ticks_timing(bytes: &[u8]) -> Result<(), MidiError> {
    // The header chunk opens the file, or follows a RIFF (RMID) wrapper's 20 bytes.
    let header = [0, 20].into_iter().find(|&at| bytes.get(at..at + 4) == Some(b"MThd"));
    match header.and_then(|at| bytes.get(at + 12)) {
        Some(division_high) if division_high & 0x80 != 0 => Err(MidiError::SmpteTiming),
        _ => Ok(()),
    }
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
            // A chunk name is four bytes of anything in a corrupt file: print them escaped.
            let id = header[..4].escape_ascii();
            return Err(MidiError::Malformed(format!(
                "truncated: chunk {index} ({id}) declares {declared} bytes but only {remaining} remain"
            )));
        }
        at += 8 + declared;
        index += 1;
    }
    Ok(())
}

/// midly stops reading a track quietly at the first event it cannot read (one cut off by the
/// chunk's end, or corrupt), so a damaged track would load as a shorter one, or as none. Read
/// each track's events once more and say where one breaks off. Bytes after an End of Track
/// event are not part of the track and are not checked.
fn check_events_whole(bytes: &[u8]) -> Result<(), MidiError> {
    let (_, tracks) = midly::parse(bytes).map_err(|e| MidiError::Malformed(e.to_string()))?;
    for (index, track) in tracks.enumerate() {
        let mut events = track.map_err(|e| MidiError::Malformed(e.to_string()))?;
        let length = events.unread().len();
        loop {
            let left = events.unread().len();
            match events.next() {
                Some(Ok(event)) if matches!(event.kind, TrackEventKind::Meta(MetaMessage::EndOfTrack)) => break,
                Some(Ok(_)) => {}
                Some(Err(_)) | None if left > 0 => {
                    return Err(MidiError::Malformed(format!(
                        "track {index} breaks off in an incomplete or corrupt event at byte {} of its {length}",
                        length - left
                    )));
                }
                _ => break,
            }
        }
    }
    Ok(())
}

/// Pairs note-ons with note-offs in one track and collects its meta events; `notes` counts the
/// notes of the whole file against [`MAX_NOTES`].
fn read_track(
    track_index: usize,
    track: &[midly::TrackEvent<'_>],
    file: &mut MidiFile,
    notes: &mut usize,
) -> Result<(), MidiError> {
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
                    // Every note-on becomes a note, closed here or at the track's end.
                    *notes += 1;
                    if *notes > MAX_NOTES {
                        return Err(MidiError::TooManyNotes { max: MAX_NOTES });
                    }
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
                    // The denominator is stored as a power of two; past 2^7 it is no note value
                    // (and no u8), so say what the file holds rather than print a wrong meter.
                    if denominator_log2 > 7 {
                        return Err(MidiError::Malformed(format!(
                            "a time signature {numerator}/2^{denominator_log2} at tick {tick}: its denominator is no note value"
                        )));
                    }
                    file.meters.push((tick, Meter { numerator, denominator: 1u8 << denominator_log2 }));
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::melody::{quantize, MAX_BARS};

    /// A type 0 file at `ppq` with one track of these event bytes.
    fn smf(ppq: u16, track: &[u8]) -> Vec<u8> {
        let mut bytes = b"MThd\0\0\0\x06\0\0\0\x01".to_vec();
        bytes.extend(ppq.to_be_bytes());
        bytes.extend(b"MTrk");
        bytes.extend((track.len() as u32).to_be_bytes());
        bytes.extend(track);
        bytes
    }

    /// A 4/4 track of `count` one-tick notes (middle C), each `gap` ticks after the last one's end.
    fn far_apart_notes(count: usize, gap: [u8; 4]) -> Vec<u8> {
        let mut track = vec![0x00, 0xFF, 0x58, 0x04, 0x04, 0x02, 0x18, 0x08];
        for i in 0..count {
            if i > 0 {
                track.extend(gap);
            } else {
                track.push(0);
            }
            track.extend([0x90, 60, 64, 0x01, 0x80, 60, 0]);
        }
        track.extend([0x00, 0xFF, 0x2F, 0x00]);
        track
    }

    /// The largest delta time a MIDI file can state, 2^28 − 1 ticks.
    const MAX_DELTA: [u8; 4] = [0xFF, 0xFF, 0xFF, 0x7F];

    #[test]
    fn smpte_timing_is_refused_even_at_a_frame_rate_midly_cannot_negate() {
        // Found by fuzzing: a division word of 0x8060 (frame rate byte -128) panicked in midly.
        for division in [0x8060, 0xE728, 0xFF01] {
            let err = parse(&smf(division, &far_apart_notes(1, MAX_DELTA))).unwrap_err();
            assert!(matches!(err, MidiError::SmpteTiming), "{division:#x}: {err}");
        }
    }

    #[test]
    fn notes_2_to_the_28_ticks_apart_are_a_too_long_error_not_gigabytes() {
        // 53 bytes, two notes 2^28 − 1 ticks apart: 2^30 steps at PPQ 1 took gigabytes.
        for ppq in [1, 2] {
            let bytes = smf(ppq, &far_apart_notes(2, MAX_DELTA));
            assert_eq!(bytes.len(), 53);
            let file = parse(&bytes).unwrap();
            let err = quantize(&file, &file.parts[0]).unwrap_err();
            assert!(matches!(err, MidiError::TooLong { max: MAX_BARS, .. }), "{err}");
            assert!(err.to_string().contains("up to 4096 bars"), "{err}");
        }
    }

    #[test]
    fn steps_past_u32_are_a_too_long_error_not_a_wrapped_length() {
        // 17-20 notes 2^28 ticks apart at PPQ 1 pass 2^32 steps: the length wrapped to 0 bars
        // and the piano roll indexed an empty grid.
        for count in 17..=20 {
            let file = parse(&smf(1, &far_apart_notes(count, MAX_DELTA))).unwrap();
            let err = quantize(&file, &file.parts[0]).unwrap_err();
            assert!(matches!(err, MidiError::TooLong { .. }), "{count}: {err}");
        }
        // A melody just inside the limit still reads: a note ending at the last step.
        let last_tick = u64::from(MAX_BARS) * 4;
        let mut track = vec![0x00, 0x90, 60, 64];
        track.extend(variable_length(last_tick as u32));
        track.extend([0x80, 60, 0, 0x00, 0xFF, 0x2F, 0x00]);
        let file = parse(&smf(1, &track)).unwrap();
        assert_eq!(quantize(&file, &file.parts[0]).unwrap().0.bars, MAX_BARS);
    }

    fn variable_length(mut value: u32) -> Vec<u8> {
        let mut bytes = vec![(value & 0x7F) as u8];
        value >>= 7;
        while value > 0 {
            bytes.insert(0, (value & 0x7F) as u8 | 0x80);
            value >>= 7;
        }
        bytes
    }

    #[test]
    fn a_track_cut_off_inside_an_event_says_so_instead_of_having_no_notes() {
        // The chunk ends after a note-on's status and key: its velocity is missing.
        let err = parse(&smf(96, &[0x00, 0x90, 60])).unwrap_err();
        assert!(err.to_string().contains("track 0 breaks off"), "{err}");
        // Bytes after End of Track are not part of the track.
        let mut track = vec![0x00, 0x90, 60, 64, 0x60, 0x80, 60, 0, 0x00, 0xFF, 0x2F, 0x00];
        track.extend([0x00, 0x90]);
        assert_eq!(parse(&smf(96, &track)).unwrap().parts[0].notes.len(), 1);
    }

    #[test]
    fn a_meter_exponent_past_7_is_named_not_printed_as_128() {
        let track = [0x00, 0xFF, 0x58, 0x04, 0x04, 0x08, 0x18, 0x08, 0x00, 0xFF, 0x2F, 0x00];
        let err = parse(&smf(96, &track)).unwrap_err();
        assert!(err.to_string().contains("4/2^8"), "{err}");
        assert!(!err.to_string().contains("/128"), "{err}");
    }

    #[test]
    fn a_cut_off_chunk_s_binary_name_is_printed_escaped() {
        let mut bytes = smf(96, &[0x00, 0xFF, 0x2F, 0x00]);
        bytes.extend([0x01, 0x1B, b'[', 0xFF, 0, 0, 0, 9]);
        let err = parse(&bytes).unwrap_err().to_string();
        assert!(err.contains(r"(\x01\x1b[\xff)"), "{err}");
        assert!(!err.contains('\u{1b}'), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_without_waiting_for_a_writer() {
        let dir = std::env::temp_dir().join(format!("rebar-read-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("in.mid");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let (send, receive) = std::sync::mpsc::channel();
        let reader = fifo.clone();
        // Opening a FIFO for reading blocked until a writer came: run it aside with a deadline.
        std::thread::spawn(move || send.send(read_file(&reader).map(|_| ()).map_err(|e| e.to_string())));
        let result = receive.recv_timeout(std::time::Duration::from_secs(10)).expect("reading a FIFO returns");
        std::fs::remove_dir_all(&dir).unwrap();
        let err = result.unwrap_err();
        assert!(err.contains("is a FIFO (named pipe), not a regular file"), "{err}");
        let err = read_file(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(err, MidiError::NotAFile { kind: "a character device", .. }), "{err}");
    }
}
