//! Rebar's engine: everything between a MIDI clip and a regenerated one.
//!
//! - [`engine`]: the one entry point the plugin uses, [`engine::Engine::infill`].
//! - [`time`]: the one place musical time units are converted (ticks, beats, steps, samples).
//! - [`midi`]: standard MIDI files in and out.
//! - [`melody`]: the monophonic 16-step note grid and MusicVAE's 90-token vocabulary.
//! - [`metrics`]: the paper's framewise overlapping-area Consistency and Variance.
//! - [`data`]: the dataset builder and its cache of training windows and tune sequences.
//! - [`vae`]: the 2-bar melody VAE; [`prior`]: the latent diffusion prior; [`sample`]: its samplers; [`train`]: CPU training; [`eval`]: measurements;
//!   [`checkpoint`]: self-describing model files.

pub mod checkpoint;
pub mod data;
pub mod engine;
pub mod eval;
pub mod fsutil;
pub mod melody;
pub mod metrics;
pub mod midi;
pub mod prior;
pub mod sample;
pub mod time;
pub mod train;
pub mod vae;
