//! Where one audio block lies on the song's beat timeline, from the host transport: the beat at
//! the block's first sample (`pos_beats`), the beats per sample at the block's tempo, and the
//! host loop. A block that crosses the loop end is split into two spans, so every sample offset
//! maps to exactly one song beat and every song beat inside the block to one sample offset.
//!
//! Conversions go through [`rebar_engine::time`], the one place time units are converted.

use rebar_engine::time::samples_to_beats;

/// A contiguous stretch of a block on the song timeline.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Span {
    /// The block sample at which the span begins.
    pub first_sample: u32,
    /// Samples in the span.
    pub samples: u32,
    /// Song beat at `first_sample`.
    pub start_beats: f64,
}

/// One block of audio placed on the song timeline.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct BlockTimeline {
    pub start_beats: f64,
    pub beats_per_sample: f64,
    pub samples: u32,
    /// The host loop `[start, end)` in beats, where it is active and not empty.
    pub host_loop: Option<(f64, f64)>,
}

impl BlockTimeline {
    /// The block's place from what the host reported, or `None` when the transport is stopped or
    /// says too little (no position, no tempo, nonsense values) to place notes.
    pub fn new(
        playing: bool,
        pos_beats: Option<f64>,
        tempo: Option<f64>,
        sample_rate: f32,
        samples: u32,
        host_loop: Option<(f64, f64)>,
    ) -> Option<Self> {
        let (start_beats, bpm) = (pos_beats?, tempo?);
        let sane =
            start_beats.is_finite() && bpm.is_finite() && bpm > 0.0 && sample_rate.is_finite() && sample_rate > 0.0;
        if !playing || !sane {
            return None;
        }
        let host_loop = host_loop.filter(|(a, b)| a.is_finite() && b.is_finite() && b > a);
        Some(Self {
            start_beats,
            beats_per_sample: samples_to_beats(1.0, bpm, f64::from(sample_rate)),
            samples,
            host_loop,
        })
    }

    /// The song beat at which the next block should start if playback simply continues.
    pub fn expected_next_start(&self) -> f64 {
        let end = self.start_beats + f64::from(self.samples) * self.beats_per_sample;
        match self.host_loop {
            Some((loop_start, loop_end)) if self.start_beats < loop_end && end >= loop_end => {
                loop_start + (end - loop_end)
            }
            _ => end,
        }
    }

    /// The block's spans: one, or two where the host loop wraps inside the block.
    pub fn spans(&self) -> [Option<Span>; 2] {
        let whole = Span { first_sample: 0, samples: self.samples, start_beats: self.start_beats };
        let Some((loop_start, loop_end)) = self.host_loop else {
            return [Some(whole), None];
        };
        let end = self.start_beats + f64::from(self.samples) * self.beats_per_sample;
        if self.start_beats >= loop_end || end <= loop_end {
            return [Some(whole), None];
        }
        // The first sample at or after the loop end plays the loop start.
        let wrap = (((loop_end - self.start_beats) / self.beats_per_sample).ceil() as u32).min(self.samples);
        let first = Span { first_sample: 0, samples: wrap, start_beats: self.start_beats };
        let overshoot = self.start_beats + f64::from(wrap) * self.beats_per_sample - loop_end;
        let second = Span { first_sample: wrap, samples: self.samples - wrap, start_beats: loop_start + overshoot };
        [Some(first), (second.samples > 0).then_some(second)]
    }

    /// The song beat at a sample offset of the block.
    pub fn beat_at(&self, sample: u32) -> f64 {
        self.spans()
            .into_iter()
            .flatten()
            .rev()
            .find(|span| sample >= span.first_sample)
            .map(|span| span.start_beats + f64::from(sample - span.first_sample) * self.beats_per_sample)
            .unwrap_or(self.start_beats)
    }
}

/// How far apart two song beats may be and still be the same place: a 64th of a beat, or two
/// samples where that is more. Hosts report a block's position rounded to their own tick grid
/// (Ardour counts 1,920 ticks a beat, Qtractor 960, older sequencers 96), so two blocks played
/// back to back may seem up to a tick apart. A jump the user makes (a click in the ruler, a loop
/// wrap the host did not announce) is far larger.
pub fn position_tolerance(beats_per_sample: f64) -> f64 {
    const HOST_TICK_BEATS: f64 = 1.0 / 64.0;
    (beats_per_sample * 2.0).max(HOST_TICK_BEATS) + 1e-9
}

/// Whether two song beats are the same place, allowing for the host's rounding.
pub fn same_place(a: f64, b: f64, beats_per_sample: f64) -> bool {
    (a - b).abs() <= position_tolerance(beats_per_sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(start: f64, samples: u32, host_loop: Option<(f64, f64)>) -> BlockTimeline {
        // 120 BPM at 48 kHz: 24,000 samples per beat.
        BlockTimeline::new(true, Some(start), Some(120.0), 48_000.0, samples, host_loop).unwrap()
    }

    #[test]
    fn a_stopped_or_incomplete_transport_places_nothing() {
        assert!(BlockTimeline::new(false, Some(0.0), Some(120.0), 48_000.0, 512, None).is_none());
        assert!(BlockTimeline::new(true, None, Some(120.0), 48_000.0, 512, None).is_none());
        assert!(BlockTimeline::new(true, Some(0.0), None, 48_000.0, 512, None).is_none());
        assert!(BlockTimeline::new(true, Some(f64::NAN), Some(120.0), 48_000.0, 512, None).is_none());
        assert!(BlockTimeline::new(true, Some(0.0), Some(0.0), 48_000.0, 512, None).is_none());
    }

    #[test]
    fn a_block_inside_the_loop_is_one_span() {
        let b = block(1.0, 24_000, Some((0.0, 4.0)));
        assert_eq!(b.spans(), [Some(Span { first_sample: 0, samples: 24_000, start_beats: 1.0 }), None]);
        assert_eq!(b.expected_next_start(), 2.0);
        assert_eq!(b.beat_at(12_000), 1.5);
    }

    #[test]
    fn a_block_across_the_loop_end_wraps_to_the_loop_start() {
        // Starts half a beat before the loop end, lasts one beat.
        let b = block(3.5, 24_000, Some((0.0, 4.0)));
        let [first, second] = b.spans();
        assert_eq!(first, Some(Span { first_sample: 0, samples: 12_000, start_beats: 3.5 }));
        assert_eq!(second, Some(Span { first_sample: 12_000, samples: 12_000, start_beats: 0.0 }));
        assert_eq!(b.expected_next_start(), 0.5);
        assert_eq!(b.beat_at(18_000), 0.25);
    }

    #[test]
    fn positions_rounded_to_a_host_tick_are_the_same_place_and_a_real_jump_is_not() {
        let bps = 1.0 / 24_000.0;
        for ticks in [96.0, 960.0, 1920.0] {
            // The next block's start as the host reports it: rounded to its tick grid.
            let exact: f64 = 10.0 + 512.0 * bps;
            let reported = (exact * ticks).round() / ticks;
            assert!(same_place(reported, exact, bps), "{ticks} ticks a beat");
            assert!(same_place((exact * ticks).floor() / ticks, exact, bps), "{ticks} ticks, truncated");
        }
        // A 32nd note away is a jump.
        assert!(!same_place(10.0, 10.125, bps));
    }
}
