//! Records the notes played through the plugin, on the audio thread, into buffers sized once at
//! activation: no allocation, no lock.
//!
//! Capture works in passes over the repeating [`Region`]: a pass that runs uninterrupted from the
//! region start to its end becomes the captured clip. A stop, a jump or a region change abandons
//! the current pass and keeps the last complete one, so a stopped, jumping or absent transport
//! can never leave a half-recorded clip. Notes still held at the region end are cut there and
//! carried into the next pass; a pass without notes does not replace the clip.

use crate::clip::{ClipNote, Region};
use crate::timeline::same_place;

/// Keys × channels: one slot per possible held note.
const SLOTS: usize = 128 * 16;

#[derive(Copy, Clone, Debug)]
struct HeldNote {
    start: f64,
    velocity: f32,
}

/// The capture state machine. Every method is real-time safe.
pub struct Capture {
    region: Region,
    pass: Vec<ClipNote>,
    completed: Vec<ClipNote>,
    held: Box<[Option<HeldNote>; SLOTS]>,
    /// Whether the current pass started at the region start.
    pass_is_whole: bool,
    /// Region position of the last processed moment, while the transport runs continuously.
    last_position: Option<f64>,
    completed_ready: bool,
    /// Notes that did not fit in the buffer during the current pass.
    pub overflowed: bool,
}

impl Capture {
    /// A capture holding at most `capacity` notes per pass. Allocates; call it from `activate`.
    pub fn new(capacity: usize, region: Region) -> Self {
        Self {
            region,
            pass: Vec::with_capacity(capacity),
            completed: Vec::with_capacity(capacity),
            held: Box::new([None; SLOTS]),
            pass_is_whole: false,
            last_position: None,
            completed_ready: false,
            overflowed: false,
        }
    }

    pub fn region(&self) -> Region {
        self.region
    }

    /// Switches to another region, abandoning the pass in progress.
    pub fn set_region(&mut self, region: Region) {
        if region != self.region {
            self.region = region;
            self.interrupt();
        }
    }

    /// The transport stopped, jumped or vanished: the pass in progress cannot complete.
    pub fn interrupt(&mut self) {
        self.pass.clear();
        self.held.fill(None);
        self.pass_is_whole = false;
        self.last_position = None;
        self.overflowed = false;
    }

    /// Moves the capture to song beat `song_beats`, reached continuously from the last call unless
    /// `continuous` is false. Crossing the region end completes the pass.
    pub fn advance(&mut self, song_beats: f64, continuous: bool, beats_per_sample: f64) {
        let mut position = self.region.position(song_beats);
        let length = self.region.length_beats();
        match self.last_position {
            // Far backwards while playing on: the region end was crossed.
            Some(last) if continuous && last - position > length / 2.0 => self.complete_pass(),
            // A hair backwards is the host's rounding: time stands still.
            Some(last) if continuous && same_place(position, last, beats_per_sample) => position = position.max(last),
            Some(last) if continuous && position >= last => {}
            // A jump from the region end to its start is a loop the host did not announce.
            Some(last) if same_place(last, length, beats_per_sample) && same_place(position, 0.0, beats_per_sample) => {
                self.complete_pass()
            }
            _ => {
                self.interrupt();
                // A pass that starts within the host's rounding of the region start is whole. One
                // that starts a hair before the region end is not: it would complete at once and
                // hold a sliver; the whole pass after it starts at the region start.
                self.pass_is_whole = same_place(position, 0.0, beats_per_sample);
            }
        }
        self.last_position = Some(position);
    }

    /// A note-on at song beat `song_beats`, after [`Capture::advance`] to it or a little past
    /// it (to decide which pass the note starts): where that crossed into a new pass, the note
    /// starts the new pass, otherwise it starts on its own beat.
    pub fn note_on(&mut self, channel: u8, key: u8, velocity: f32, song_beats: f64) {
        let Some(position) = self.last_position else { return };
        let own = self.region.position(song_beats);
        let start = if own <= position { own } else { 0.0 };
        let slot = slot(channel, key);
        if self.held[slot].is_some() {
            self.close(slot, start);
        }
        self.held[slot] = Some(HeldNote { start, velocity });
    }

    /// A note-off at the current position.
    pub fn note_off(&mut self, channel: u8, key: u8) {
        let Some(position) = self.last_position else { return };
        self.close(slot(channel, key), position);
    }

    /// The notes of the last complete pass, once, right after it completed.
    pub fn take_completed(&mut self) -> Option<&[ClipNote]> {
        if !std::mem::take(&mut self.completed_ready) {
            return None;
        }
        Some(&self.completed)
    }

    fn close(&mut self, slot: usize, position: f64) {
        let Some(held) = self.held[slot].take() else { return };
        let length = position - held.start;
        if length <= 0.0 {
            return;
        }
        self.push(ClipNote {
            start: held.start,
            length,
            pitch: (slot % 128) as u8,
            velocity: held.velocity,
            channel: (slot / 128) as u8,
        });
    }

    fn push(&mut self, note: ClipNote) {
        if self.pass.len() < self.pass.capacity() {
            self.pass.push(note);
        } else {
            self.overflowed = true;
        }
    }

    fn complete_pass(&mut self) {
        let end = self.region.length_beats();
        // Held notes end with the pass and carry on into the next one from its start.
        for slot in 0..SLOTS {
            if let Some(held) = self.held[slot] {
                self.close(slot, end);
                self.held[slot] = Some(HeldNote { start: 0.0, ..held });
            }
        }
        if self.pass_is_whole && !self.pass.is_empty() && !self.overflowed {
            self.pass.sort_unstable_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
            std::mem::swap(&mut self.pass, &mut self.completed);
            self.completed_ready = true;
        }
        self.pass.clear();
        self.pass_is_whole = true;
        self.overflowed = false;
    }
}

fn slot(channel: u8, key: u8) -> usize {
    usize::from(channel & 15) * 128 + usize::from(key & 127)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BPS: f64 = 1.0 / 24_000.0; // 120 BPM at 48 kHz

    fn capture() -> Capture {
        Capture::new(64, Region { start_beats: 0.0, bars: 1 })
    }

    /// Plays `notes` (start, length, key) over `passes` passes of a 1-bar region in 0.25-beat steps.
    fn play(capture: &mut Capture, from: f64, to: f64, notes: &[(f64, f64, u8)]) -> Vec<Vec<ClipNote>> {
        let mut completed = Vec::new();
        let mut beat = from;
        while beat < to {
            capture.advance(beat, true, BPS);
            let position = beat.rem_euclid(4.0);
            for &(start, length, key) in notes {
                if (position - (start + length).rem_euclid(4.0)).abs() < 1e-9 {
                    capture.note_off(0, key);
                }
                if (position - start).abs() < 1e-9 {
                    capture.note_on(0, key, 0.5, beat);
                }
            }
            if let Some(done) = capture.take_completed() {
                completed.push(done.to_vec());
            }
            beat += 0.25;
        }
        completed
    }

    #[test]
    fn a_whole_pass_becomes_the_clip() {
        let mut c = capture();
        let done = play(&mut c, 0.0, 4.5, &[(0.0, 1.0, 60), (2.0, 1.5, 62)]);
        assert_eq!(done.len(), 1);
        let got: Vec<(f64, f64, u8)> = done[0].iter().map(|n| (n.start, n.length, n.pitch)).collect();
        assert_eq!(got, vec![(0.0, 1.0, 60), (2.0, 1.5, 62)]);
    }

    #[test]
    fn a_pass_joined_midway_is_not_kept_but_the_next_one_is() {
        let mut c = capture();
        let done = play(&mut c, 2.5, 8.25, &[(0.0, 1.0, 60), (3.0, 0.5, 64)]);
        // The first pass began at 2.5 and is dropped; the pass from 4.0 to 8.0 completes.
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].len(), 2);
    }

    #[test]
    fn a_jump_or_stop_abandons_the_pass() {
        let mut c = capture();
        c.advance(0.0, true, BPS);
        c.note_on(0, 60, 0.5, 0.0);
        c.advance(1.0, true, BPS);
        c.note_off(0, 60);
        c.advance(2.0, false, BPS); // the host jumped
        c.advance(3.9, true, BPS);
        c.advance(0.1 + 4.0, true, BPS);
        assert!(c.take_completed().is_none());
    }

    #[test]
    fn a_note_held_over_the_region_end_is_cut_there_and_carried_on() {
        let mut c = capture();
        let done = play(&mut c, 0.0, 8.5, &[(3.0, 2.0, 67)]);
        assert_eq!(done.len(), 2);
        assert_eq!((done[0][0].start, done[0][0].length), (3.0, 1.0));
        // The second pass sees the carried part at its start and the new onset at 3.0.
        let second: Vec<(f64, f64)> = done[1].iter().map(|n| (n.start, n.length)).collect();
        assert_eq!(second, vec![(0.0, 1.0), (3.0, 1.0)]);
    }

    #[test]
    fn a_loop_the_host_does_not_announce_completes_the_pass() {
        let mut c = capture();
        c.advance(0.0, false, BPS);
        c.note_on(0, 60, 0.5, 0.0);
        c.advance(2.0, true, BPS);
        c.note_off(0, 60);
        // The block ended a rounding error short of the region end; the host then jumped back.
        c.advance(4.0 - 1e-12, true, BPS);
        c.advance(0.0, false, BPS);
        let done = c.take_completed().expect("the pass completed");
        assert_eq!(done.iter().map(|n| (n.start, n.length)).collect::<Vec<_>>(), vec![(0.0, 2.0)]);
    }

    #[test]
    fn a_pass_starting_a_hair_before_the_region_end_is_not_whole() {
        let mut c = capture();
        // Play starts (after a rounding pre-roll) just before the region start, i.e. its end.
        c.advance(-1e-4, false, BPS);
        c.note_on(0, 72, 0.5, -1e-4);
        c.advance(0.0, true, BPS);
        c.note_off(0, 72);
        assert!(c.take_completed().is_none(), "a sliver of a pass became the clip");
        // The pass from the region start is whole.
        let done = play(&mut c, 0.0, 4.5, &[(1.0, 1.0, 60)]);
        assert_eq!(done.len(), 1);
    }

    #[test]
    fn a_note_on_a_hair_before_the_region_end_starts_the_next_pass() {
        let mut c = capture();
        let done = play(&mut c, 0.0, 3.9, &[(1.0, 1.0, 60)]);
        assert!(done.is_empty());
        // The note-on's sample is the one nearest the region end, a rounding error short of it:
        // advanced half a sample past it, the capture completes the pass and starts the note
        // at the next pass's start, not as a sliver at this one's end.
        let beat = 4.0 - 1e-7;
        c.advance(beat + 0.5 * BPS, true, BPS);
        c.note_on(0, 64, 0.5, beat);
        let done = c.take_completed().expect("the pass completed");
        assert_eq!(done.iter().map(|n| (n.start, n.pitch)).collect::<Vec<_>>(), vec![(1.0, 60)]);
        c.advance(4.5, true, BPS);
        c.note_off(0, 64);
        // Elsewhere the note starts on its own beat.
        c.advance(5.0 + 0.5 * BPS, true, BPS);
        c.note_on(0, 65, 0.5, 5.0);
        c.advance(6.0, true, BPS);
        c.note_off(0, 65);
        c.advance(7.5, true, BPS);
        c.advance(8.25, true, BPS);
        let done = c.take_completed().expect("the second pass completed");
        assert_eq!(
            done.iter().map(|n| (n.start, n.length, n.pitch)).collect::<Vec<_>>(),
            [(0.0, 0.5, 64), (1.0, 1.0, 65)]
        );
    }

    #[test]
    fn a_full_buffer_drops_the_pass_instead_of_growing() {
        let mut c = Capture::new(2, Region { start_beats: 0.0, bars: 1 });
        let done = play(&mut c, 0.0, 4.5, &[(0.0, 0.5, 60), (1.0, 0.5, 61), (2.0, 0.5, 62)]);
        assert!(done.is_empty());
        assert_eq!(c.pass.capacity(), 2);
    }
}
