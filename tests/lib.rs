//! Shared helpers for the end-to-end tests.

use std::path::PathBuf;

/// The folder of real tunes the tests read: public-domain tunes copied from the corpus.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The plugin binary the host tests load (one library with both the CLAP and the VST3 entry
/// points).
///
/// Natively, the library `cargo test` built for this run beside the test binaries: a
/// dev-dependency of this crate, with nice-plug's `assert_process_allocs` and the test profile's
/// debug assertions, so an allocation or a free inside `process()` aborts the test.
///
/// On Windows (under Wine), the bundle a Windows user installs, `target/bundled/Rebar.clap`,
/// built beforehand by `cargo xtask bundle rebar-plugin --release --target
/// x86_64-pc-windows-gnu`: a release build, without the allocation checker.
pub fn built_plugin() -> PathBuf {
    if cfg!(windows) {
        return bundled(&["Rebar.clap"]);
    }
    let name = if cfg!(target_os = "macos") { "librebar_plugin.dylib" } else { "librebar_plugin.so" };
    let library = test_binary_dir().join(name);
    assert!(library.is_file(), "{} is missing: run the tests with `cargo test`, which builds it", library.display());
    library
}

/// The module a DAW loads from `Rebar.vst3`: natively the same library as [`built_plugin`], on
/// Windows the one inside the bundle's `Contents/x86_64-win/`.
pub fn built_vst3_module() -> PathBuf {
    if cfg!(windows) {
        bundled(&["Rebar.vst3", "Contents", "x86_64-win", "Rebar.vst3"])
    } else {
        built_plugin()
    }
}

/// The folder of the running test binary: `target/<triple>/<profile>/deps`.
fn test_binary_dir() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary knows its path");
    test_binary.parent().expect("the test binary is in a folder").to_path_buf()
}

/// A path under `target/bundled/`, which `cargo xtask bundle` writes.
fn bundled(parts: &[&str]) -> PathBuf {
    let deps = test_binary_dir();
    // target/<triple>/<profile>/deps when cross-built, target/<profile>/deps otherwise.
    let levels = if cfg!(windows) { 3 } else { 2 };
    let target = deps.ancestors().nth(levels).expect("the test binary is under target/").to_path_buf();
    let path = parts.iter().fold(target.join("bundled"), |path, part| path.join(part));
    assert!(
        path.is_file(),
        "{} is missing: build the bundles first (cargo xtask bundle rebar-plugin --release --target {})",
        path.display(),
        if cfg!(windows) { "x86_64-pc-windows-gnu" } else { "<this platform>" }
    );
    path
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
