//! Which bars of a clip to regenerate, and which 2-bar segments that makes the model regenerate.

use crate::time::BARS_PER_SEGMENT;
use crate::vae::segments::segment_count;

/// Which bars of a clip to regenerate: one flag per bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarSelection {
    pub bars: Vec<bool>,
}

impl BarSelection {
    /// Bars `first..=last` (0-based) of a clip of `total` bars.
    pub fn range(first: u32, last: u32, total: u32) -> Self {
        Self { bars: (0..total).map(|bar| bar >= first && bar <= last).collect() }
    }

    /// Every bar of a clip of `total` bars.
    pub fn all(total: u32) -> Self {
        Self { bars: vec![true; total as usize] }
    }

    pub fn is_selected(&self, bar: u32) -> bool {
        self.bars.get(bar as usize).copied().unwrap_or(false)
    }

    /// The selected bars, 0-based, in order.
    pub fn selected(&self) -> Vec<u32> {
        (0..self.bars.len() as u32).filter(|&bar| self.is_selected(bar)).collect()
    }

    /// Per 2-bar segment: whether any of its bars is selected. The model works in 2-bar
    /// segments, so a segment with one selected bar is regenerated whole (the odd-bar rule).
    pub fn segments(&self, segment_count: usize) -> Vec<bool> {
        (0..segment_count as u32)
            .map(|s| (0..BARS_PER_SEGMENT).any(|b| self.is_selected(s * BARS_PER_SEGMENT + b)))
            .collect()
    }

    /// [`Self::segments`] of a clip of `bars` bars, cut as [`crate::vae::segments::to_segments`]
    /// cuts it.
    pub fn segments_of_clip(&self, bars: u32) -> Vec<bool> {
        self.segments(segment_count(bars))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_starting_on_an_odd_bar_regenerates_both_segments_it_touches() {
        // Bars 2..=3 (0-based) of 6: segment 1 holds bars 2-3 only.
        assert_eq!(BarSelection::range(2, 3, 6).segments(3), vec![false, true, false]);
        // Bars 1..=2 touch segments 0 and 1.
        assert_eq!(BarSelection::range(1, 2, 6).segments(3), vec![true, true, false]);
    }
}
