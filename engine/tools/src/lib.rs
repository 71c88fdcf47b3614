//! Rebar's tools: everything that makes, trains and measures the engine's models, over the
//! inference library `rebar-engine`. The `rebar` command line is a thin layer over these.
//!
//! - [`data`]: the dataset builder and its cache of training windows and tune sequences.
//! - [`train`]: CPU training of the VAE and the prior.
//! - [`metrics`]: the paper's framewise overlapping-area Consistency and Variance.
//! - [`eval`]: measurements of reconstruction and of infilling and generation quality.
//! - [`bench`]: the latency of the main job.

pub mod bench;
pub mod data;
pub mod eval;
pub mod metrics;
pub mod train;
