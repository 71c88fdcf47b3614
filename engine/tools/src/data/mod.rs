//! Training data: [`builder`] walks a folder of MIDI files into a [`Dataset`] (its 2-bar windows
//! as [`rebar_engine::windows`] chooses them), and [`cache`] stores it as one versioned file.

pub mod builder;
pub mod cache;

pub use builder::{build_dataset, BuildOptions, Dataset, Summary, Tune};
pub use cache::{load_dataset, save_dataset, CacheError};
