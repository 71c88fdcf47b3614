//! Playing generated bars in time with the host, sample-accurately, on the audio thread.
//!
//! A [`Playback`] is built off the audio thread (by the worker) and handed over whole: the
//! region and bars it was generated for and every variation so far, each as a sorted list of
//! note-on/off events at positions in the region. Per block the [`Scheduler`] finds the events
//! under each span of the [`BlockTimeline`] and turns their positions into sample offsets:
//! sample `k` of a span owns the beats within half a sample of `start + k · beats_per_sample`,
//! so consecutive blocks partition the timeline and no event is played twice or lost. It
//! remembers which generated notes sound, so stops, jumps and variation switches end them.

use crate::clip::{ClipNote, Region};
use crate::timeline::BlockTimeline;

/// A note event of a variation, at a position in the region.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ScheduledEvent {
    pub at: f64,
    pub on: bool,
    pub pitch: u8,
    pub velocity: f32,
    pub channel: u8,
}

/// One variation, ready to play.
#[derive(Clone, Debug, PartialEq)]
pub struct Variation {
    /// The region it was generated on.
    pub region: Region,
    /// Bit `b` set: bar `b` of the region plays the variation.
    pub selected_bars: u64,
    /// Sorted by position; at the same position note-offs come first.
    pub events: Vec<ScheduledEvent>,
}

impl Variation {
    pub fn new(region: Region, selected_bars: u64, notes: &[ClipNote]) -> Self {
        let mut events: Vec<ScheduledEvent> = notes
            .iter()
            .flat_map(|n| {
                let event =
                    |at, on| ScheduledEvent { at, on, pitch: n.pitch, velocity: n.velocity, channel: n.channel };
                [event(n.start, true), event(n.end(), false)]
            })
            .collect();
        events.sort_by(|a, b| a.at.total_cmp(&b.at).then(a.on.cmp(&b.on)));
        Self { region, selected_bars, events }
    }

    /// Whether the variation plays in this bar of its region.
    pub fn is_selected(&self, bar: u32) -> bool {
        crate::clip::bar_is_selected(self.selected_bars, bar)
    }
}

/// Everything the audio thread needs to play generated bars: every variation so far, oldest
/// first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Playback {
    pub variations: Vec<Variation>,
}

/// An event to send this block.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct OutEvent {
    pub timing: u32,
    pub on: bool,
    pub pitch: u8,
    pub velocity: f32,
    pub channel: u8,
}

/// Turns a variation into this block's events. Real-time safe after [`Scheduler::new`].
pub struct Scheduler {
    /// Per pitch, the channel of the generated note sounding on it.
    sounding: [Option<u8>; 128],
    /// This block's events, in time order; capacity fixed at construction.
    pub out: Vec<OutEvent>,
}

impl Scheduler {
    /// Allocates; call it from `activate`.
    pub fn new(capacity: usize) -> Self {
        Self { sounding: [None; 128], out: Vec::with_capacity(capacity) }
    }

    /// Whether any generated note is sounding.
    pub fn is_sounding(&self) -> bool {
        self.sounding.iter().any(Option::is_some)
    }

    /// Note-offs for every sounding generated note, at `timing`.
    pub fn release_all(&mut self, timing: u32) {
        for pitch in 0..128u8 {
            if let Some(channel) = self.sounding[usize::from(pitch)].take() {
                self.push(OutEvent { timing, on: false, pitch, velocity: 0.0, channel });
            }
        }
    }

    /// Appends the events of `variation` under the block to [`Scheduler::out`].
    pub fn render(&mut self, timeline: &BlockTimeline, variation: &Variation) {
        let region = variation.region;
        let length = region.length_beats();
        let bps = timeline.beats_per_sample;
        let mut expected: Option<f64> = None;
        for span in timeline.spans().into_iter().flatten() {
            let origin = region.position(span.start_beats);
            // A host loop that is not the region skips part of it: end what was sounding there.
            let skipped = |e: f64| {
                let gap = (region.position(e) - origin).abs();
                gap.min(length - gap) > 2.0 * bps
            };
            if expected.is_some_and(skipped) {
                self.release_all(span.first_sample);
            }
            expected = Some(span.start_beats + f64::from(span.samples) * bps);
            // Positions this span owns, possibly reaching across the region's start or end. A
            // note-off exactly at the region end belongs with the next pass's start.
            let (from, to) = (origin - 0.5 * bps, origin + (f64::from(span.samples) - 0.5) * bps);
            for shift in [-length, 0.0, length] {
                let (lo, hi) = ((from - shift).max(0.0), (to - shift).min(length + 1e-9));
                if lo >= hi {
                    continue;
                }
                let first = variation.events.partition_point(|e| e.at < lo);
                for event in variation.events[first..].iter().take_while(|e| e.at < hi) {
                    let offset = ((event.at + shift - origin) / bps).round().max(0.0) as u32;
                    let timing = span.first_sample + offset.min(span.samples.saturating_sub(1));
                    self.play(timing, event);
                }
            }
        }
    }

    fn play(&mut self, timing: u32, event: &ScheduledEvent) {
        let slot = &mut self.sounding[usize::from(event.pitch & 127)];
        if event.on {
            // Retrigger: end the sounding note before starting it again.
            if let Some(channel) = slot.replace(event.channel) {
                self.push(OutEvent { timing, on: false, pitch: event.pitch, velocity: 0.0, channel });
            }
            self.push(OutEvent {
                timing,
                on: true,
                pitch: event.pitch,
                velocity: event.velocity,
                channel: event.channel,
            });
        } else if let Some(channel) = slot.take() {
            // Only end notes this scheduler started: playback may begin in the middle of one.
            self.push(OutEvent { timing, on: false, pitch: event.pitch, velocity: 0.0, channel });
        }
    }

    fn push(&mut self, event: OutEvent) {
        if self.out.len() < self.out.capacity() {
            self.out.push(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f32 = 48_000.0; // 120 BPM: 24,000 samples per beat

    fn note(start: f64, length: f64, pitch: u8) -> ClipNote {
        ClipNote { start, length, pitch, velocity: 0.75, channel: 0 }
    }

    fn block(start: f64, samples: u32, host_loop: Option<(f64, f64)>) -> BlockTimeline {
        BlockTimeline::new(true, Some(start), Some(120.0), RATE, samples, host_loop).unwrap()
    }

    /// Plays `blocks` consecutive blocks of `size` samples from `start`, collecting (absolute
    /// sample, on, pitch).
    fn play(variation: &Variation, start: f64, size: u32, blocks: u32) -> Vec<(u64, bool, u8)> {
        let mut scheduler = Scheduler::new(256);
        let mut got = Vec::new();
        let mut beat = start;
        for b in 0..blocks {
            scheduler.out.clear();
            let timeline = block(beat, size, None);
            scheduler.render(&timeline, variation);
            got.extend(scheduler.out.iter().map(|e| (u64::from(b * size + e.timing), e.on, e.pitch)));
            beat = timeline.expected_next_start();
        }
        got
    }

    #[test]
    fn events_land_on_their_exact_samples_whatever_the_block_size() {
        let region = Region { start_beats: 0.0, bars: 1 };
        let variation = Variation::new(region, 1, &[note(0.5, 1.0, 60), note(2.25, 0.25, 62)]);
        let expected = vec![(12_000, true, 60), (36_000, false, 60), (54_000, true, 62), (60_000, false, 62)];
        for size in [64, 100, 512, 4096] {
            let blocks = 96_000 / size + 1;
            assert_eq!(play(&variation, 0.0, size, blocks), expected, "block size {size}");
        }
    }

    #[test]
    fn the_region_repeats_and_an_event_at_its_start_plays_every_pass() {
        let region = Region { start_beats: 0.0, bars: 1 };
        let variation = Variation::new(region, 1, &[note(0.0, 1.0, 60)]);
        // Exactly two passes: the third pass's note-on at sample 192,000 lies past the end.
        let got = play(&variation, 0.0, 500, 2 * 96_000 / 500);
        assert_eq!(got, vec![(0, true, 60), (24_000, false, 60), (96_000, true, 60), (120_000, false, 60)]);
    }

    #[test]
    fn a_host_loop_wrapping_inside_a_block_plays_the_loop_start_at_the_wrap_sample() {
        let region = Region { start_beats: 0.0, bars: 1 };
        let variation = Variation::new(region, 1, &[note(0.0, 0.5, 60), note(3.75, 0.25, 64)]);
        let mut scheduler = Scheduler::new(16);
        // Half a beat before the loop end of 4 beats, one beat long: wraps at sample 12,000.
        scheduler.render(&block(3.5, 24_000, Some((0.0, 4.0))), &variation);
        let got: Vec<(u32, bool, u8)> = scheduler.out.iter().map(|e| (e.timing, e.on, e.pitch)).collect();
        assert_eq!(got, vec![(6_000, true, 64), (12_000, false, 64), (12_000, true, 60)]);
    }

    #[test]
    fn release_all_ends_exactly_the_sounding_notes() {
        let region = Region { start_beats: 0.0, bars: 1 };
        let variation = Variation::new(region, 1, &[note(0.0, 2.0, 60), note(0.0, 0.5, 64)]);
        let mut scheduler = Scheduler::new(16);
        scheduler.render(&block(0.0, 24_000, None), &variation);
        scheduler.out.clear();
        scheduler.release_all(7);
        assert_eq!(scheduler.out, vec![OutEvent { timing: 7, on: false, pitch: 60, velocity: 0.0, channel: 0 }]);
        assert!(!scheduler.is_sounding());
    }

    #[test]
    fn a_full_event_buffer_drops_events_instead_of_growing() {
        let region = Region { start_beats: 0.0, bars: 1 };
        let notes: Vec<ClipNote> = (0..16).map(|i| note(f64::from(i) * 0.25, 0.25, 60 + i as u8)).collect();
        let mut scheduler = Scheduler::new(4);
        scheduler.render(&block(0.0, 96_000, None), &Variation::new(region, 1, &notes));
        assert_eq!((scheduler.out.len(), scheduler.out.capacity()), (4, 4));
    }
}
