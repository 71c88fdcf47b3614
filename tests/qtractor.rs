//! Rebar's CLAP in a real DAW: Qtractor 0.9.31, headless (Xvfb, JACK's dummy driver, and a stand-in
//! for the ALSA sequencer it insists on), driven by `tests/hosts/qtractor/run.sh`. A session
//! plays 8 bars of a MIDI clip through Rebar; the test passes when Rebar captured the clip, the
//! project counts as modified after the capture (Qtractor's window title), and opening Rebar's
//! editor logs no "could not get the resize hints". It runs in 4/4 and in 2/2, where Qtractor
//! reports positions in half notes.
//!
//! Without Qtractor and its helpers (package list in `run.sh`) the tests print why and pass,
//! unless `REBAR_REQUIRE_QTRACTOR=1`, which makes their absence a failure.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

fn qtractor_in(numerator: u32, denominator: u32) {
    // One Qtractor at a time: each plays in real time and needs the CPU to keep up.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !rebar_tests::host_available("qtractor", "REBAR_REQUIRE_QTRACTOR") {
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hosts").join("qtractor").join("run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args([numerator.to_string(), denominator.to_string()])
        .env("REBAR_CLAP", rebar_tests::built_plugin())
        .output()
        .expect("bash runs");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "Qtractor in {numerator}/{denominator} (exit {:?}):\n{report}", out.status.code());
}

#[test]
fn qtractor_in_four_four() {
    qtractor_in(4, 4);
}

#[test]
fn qtractor_in_two_two() {
    qtractor_in(2, 2);
}
