//! Shared helpers for the end-to-end tests.

use std::path::PathBuf;

/// The folder of real tunes the tests read: public-domain tunes copied from the corpus.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}
