//! Shared helpers for the end-to-end tests.

use std::path::PathBuf;

/// The folder of real tunes the tests read: public-domain tunes copied from the corpus.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The plugin library (one binary with both the CLAP and the VST3 entry points) that `cargo
/// test` built for this run, beside the test binaries: a dev-dependency of this crate, with
/// nice-plug's `assert_process_allocs` and the test profile's debug assertions, so an allocation
/// or a free inside `process()` aborts the test.
pub fn built_plugin() -> PathBuf {
    let name = if cfg!(target_os = "macos") {
        "librebar_plugin.dylib"
    } else if cfg!(windows) {
        "rebar_plugin.dll"
    } else {
        "librebar_plugin.so"
    };
    let test_binary = std::env::current_exe().expect("the test binary knows its path");
    let library = test_binary.parent().expect("the test binary is in a folder").join(name);
    assert!(library.is_file(), "{} is missing: run the tests with `cargo test`, which builds it", library.display());
    library
}

/// The clip the plugin tests play: 8 bars of 4/4, a note on every eighth, each a sixteenth long,
/// as (start beat, length in beats, key).
pub fn eight_bar_melody() -> Vec<(f64, f64, u8)> {
    let scale = [60u8, 62, 64, 65, 67, 69, 71, 72];
    (0..64)
        .map(|eighth| {
            let start = f64::from(eighth) * 0.5;
            (start, 0.25, scale[(eighth as usize * 3) % scale.len()])
        })
        .collect()
}

/// The session inside a saved plugin state (CLAP or VST3: nice-plug's JSON, after any length
/// prefix), as JSON.
pub fn session_from_state(bytes: &[u8]) -> Option<serde_json::Value> {
    let json = &bytes[bytes.iter().position(|&b| b == b'{')?..];
    let state: serde_json::Value = serde_json::from_slice(json).ok()?;
    serde_json::from_str(state["fields"]["session"].as_str()?).ok()
}

/// A saved clip's (start beat, length, pitch) notes.
pub fn clip_notes(clip: &serde_json::Value) -> Option<Vec<(f64, f64, u8)>> {
    clip["notes"]
        .as_array()?
        .iter()
        .map(|n| Some((n["start"].as_f64()?, n["length"].as_f64()?, u8::try_from(n["pitch"].as_u64()?).ok()?)))
        .collect()
}

/// Whether the real host program `tool` is on the PATH. When it is not, the test prints that it
/// skips, unless the environment variable `require` is `1` (as `.ci/run` sets it), which makes a
/// missing host a failure.
pub fn host_available(tool: &str, require: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        let required = std::env::var(require).is_ok_and(|v| v == "1");
        assert!(!required, "{require}=1 but {tool} is not installed");
        eprintln!("skipping: {tool} is not installed; set {require}=1 to fail instead");
    }
    found
}
