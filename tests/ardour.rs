//! Rebar's VST3 in a real DAW: Ardour 7, headless (`ardour7-lua` with the "None (Dummy)" audio
//! backend), driven by `tests/hosts/ardour/run.sh`. Ardour's own scanner indexes the bundle, a
//! session script builds a MIDI track (a Lua note source, Rebar, a Lua note counter) and, at one
//! engine block size:
//!
//! - plays 8 bars: every input note comes out of Rebar, and nothing else;
//! - presses Regenerate and plays again: bars 1-4 still pass the input, bars 5-8 play the
//!   variation instead (a clip was captured and the model ran);
//! - saves, reloads the session and plays again without a new Regenerate: no event that is not
//!   a note comes out, and bars 5-8 play the same variation (clip and variations were restored).
//!
//! Ardour hands a plugin song positions rounded to its tick grid and splits its cycles in its own
//! way, and its session save/restore is the path users take, so this checks what the CLAP test's
//! simulated host cannot. Each block size is a test of its own (256, 512, 1024 samples at 48 kHz);
//! they run one after another, each in real time (about a minute).
//!
//! Without `ardour7-lua` on the PATH (Debian/Ubuntu package `ardour`) the tests print why and
//! pass, unless `REBAR_REQUIRE_ARDOUR=1`, which makes a missing Ardour a failure.
//! `REBAR_VST3_BUNDLE` names a built `Rebar.vst3` to test; without it the tests bundle the
//! plugin library the other end-to-end tests build, so the bundle matches the source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether Ardour's Lua session tool is installed: `ARDOUR_LUA`, or `ardour7-lua` on the PATH.
fn ardour_available() -> bool {
    match std::env::var_os("ARDOUR_LUA") {
        Some(path) => Path::new(&path).is_file(),
        None => rebar_tests::host_available("ardour7-lua", "REBAR_REQUIRE_ARDOUR"),
    }
}

/// The VST3 bundle under test: `REBAR_VST3_BUNDLE`, or a bundle laid out around the plugin
/// library `cargo test` built (with nice-plug's allocation checker, so an allocation on Ardour's
/// audio thread fails the run too), so nothing is built twice.
fn bundle() -> PathBuf {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("REBAR_VST3_BUNDLE") {
                return PathBuf::from(path);
            }
            let library = rebar_tests::built_plugin();
            let bundle = library.parent().expect("a folder").join("Rebar.vst3");
            let module = bundle.join("Contents").join(format!("{}-linux", std::env::consts::ARCH));
            std::fs::create_dir_all(&module).expect("the bundle folder is created");
            std::fs::copy(&library, module.join("Rebar.so")).expect("the module is copied");
            bundle
        })
        .clone()
}

/// Runs the Ardour session at one block size and fails with the runner's report unless every
/// check passed.
fn ardour_at(block: u32) {
    // One Ardour at a time: each plays in real time and needs the CPU to keep up.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !ardour_available() {
        return;
    }
    let bundle = bundle();
    assert!(bundle.is_dir(), "no VST3 bundle at {}", bundle.display());

    let script = root().join("tests").join("hosts").join("ardour").join("run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(block.to_string())
        .env("REBAR_VST3_BUNDLE", &bundle)
        .output()
        .expect("bash runs");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    let failed: Vec<&str> = report.lines().filter(|l| l.starts_with("CHECK FAIL")).collect();
    assert!(
        out.status.success(),
        "Ardour at {block}-sample blocks: {} (exit {:?}); failed checks:\n{}",
        report.lines().rev().find(|l| l.starts_with("ardour block=")).or(report.lines().last()).unwrap_or(""),
        out.status.code(),
        failed.join("\n"),
    );
}

#[test]
fn ardour_block_256() {
    ardour_at(256);
}

#[test]
fn ardour_block_512() {
    ardour_at(512);
}

#[test]
fn ardour_block_1024() {
    ardour_at(1024);
}
