//! Training data: [`windows`] says which 2-bar windows MusicVAE trains on, [`builder`] walks a
//! folder of MIDI files into a [`Dataset`], and [`cache`] stores it as one versioned file.

pub mod builder;
pub mod cache;
pub mod windows;

pub use builder::{build_dataset, BuildOptions, Dataset, Summary, Tune};
pub use cache::{load_dataset, save_dataset, CacheError};
