//! The `rebar` binary as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn rebar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rebar")).args(args).output().expect("rebar runs")
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name);
    path.to_string_lossy().into_owned()
}

#[test]
fn every_command_has_help() {
    for args in [&["--help"][..], &["inspect", "--help"], &["dataset", "--help"]] {
        let out = rebar(args);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: rebar"), "{args:?}");
    }
}

#[test]
fn inspect_prints_meta_events_and_a_numbered_piano_roll() {
    let out = rebar(&["inspect", &fixture("oneills_john_mitchel.mid")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("meter 4/4 at bar 1.00"), "{text}");
    assert!(text.contains("key "), "{text}");
    assert!(text.contains("|1 ") && text.contains("|5 "), "{text}");
    assert!(text.contains('#'), "{text}");
}

#[test]
fn a_reader_that_stops_early_ends_rebar_quietly() {
    // `rebar generate … | head -0`: the reader is gone before rebar prints what it did (it
    // loads the models and samples first), so the first line already meets a closed pipe.
    let out_dir = std::env::temp_dir().join(format!("rebar-cli-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebar"))
        .args(["generate", "--bars", "4", "--variations", "1", "-o"])
        .arg(out_dir.join("out.mid"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&out_dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Ended by SIGPIPE (13 on Linux and macOS), as `cat` would be.
        assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
    }
}

#[test]
fn inspect_of_a_corrupt_file_fails_with_a_message_naming_it() {
    let path = std::env::temp_dir().join(format!("rebar-cli-corrupt-{}.mid", std::process::id()));
    std::fs::write(&path, b"MThd\0\0\0\x06garbage").unwrap();
    let out = rebar(&["inspect", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rebar-cli-corrupt") && err.contains("MIDI"), "{err}");
}

#[test]
fn dataset_writes_a_cache_and_a_json_summary() {
    let dir = std::env::temp_dir().join(format!("rebar-cli-dataset-{}", std::process::id()));
    let (cache, json) = (dir.join("fixtures.safetensors"), dir.join("summary.json"));
    let out = rebar(&[
        "dataset",
        "--midi-dir",
        &fixture(""),
        "--out",
        cache.to_str().unwrap(),
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let loaded = rebar_tools::data::load_dataset(&cache).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(summary["distinct_windows"].as_u64(), Some(loaded.windows.len() as u64));
    assert!(String::from_utf8_lossy(&out.stdout).contains("distinct windows"));
}
