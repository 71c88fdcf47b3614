//! Rebar's engine: everything between a MIDI clip and a regenerated one, and nothing else. It is
//! what the plugin links; building datasets, training, evaluation and the command line live in
//! `rebar-tools`.
//!
//! - [`engine`]: the one entry point the plugin uses, [`engine::Engine::infill`].
//! - [`time`]: the one place musical time units are converted (ticks, beats, steps, samples).
//! - [`midi`]: standard MIDI files in and out.
//! - [`melody`]: the monophonic 16-step note grid and MusicVAE's 90-token vocabulary.
//! - [`windows`]: the 2-bar windows of a melody that become one latent each.
//! - [`vae`]: the 2-bar melody VAE; [`prior`]: the latent diffusion prior; [`sample`]: its samplers.
//! - [`checkpoint`]: self-describing model files; [`random`]: seeded noise and initial weights.
//! - [`fsutil`]: writing files without losing the old one.

pub mod checkpoint;
pub mod engine;
pub mod fsutil;
pub mod melody;
pub mod midi;
pub mod prior;
pub mod random;
pub mod sample;
pub mod time;
pub mod vae;
pub mod windows;
