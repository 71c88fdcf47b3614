//! Rebar as a CLAP + VST3 note-effect plugin.
//!
//! The plugin itself (capture, worker, scheduling, editor) is built in its own issue; this crate
//! holds its place in the workspace so `cargo xtask bundle` and the layout are in place from the
//! start. It already shares the engine's time module, the one place time units are converted.

pub use rebar_engine::time;
