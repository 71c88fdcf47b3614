//! Rebar's engine: everything between a MIDI clip and a regenerated one.
//!
//! - [`time`]: the one place musical time units are converted (ticks, beats, steps, samples).
//! - [`midi`]: standard MIDI files in and out.
//! - [`melody`]: the monophonic 16-step note grid and MusicVAE's 90-token vocabulary.
//! - [`data`]: the dataset builder and its cache of training windows and tune sequences.

pub mod data;
pub mod fsutil;
pub mod melody;
pub mod midi;
pub mod time;
