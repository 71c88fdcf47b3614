//! The `rebar` binary under hostile input: numbers that are not finite or out of range, MIDI
//! files built to overflow or exhaust memory, and outputs and inputs that are not regular files.
//! Each case ends in a clear error, quickly, and leaves special files as they were.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs rebar, killing it (and failing) if it runs past `limit`.
fn rebar_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebar"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rebar runs");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("rebar {args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn rebar(args: &[&str]) -> Output {
    rebar_within(args, Duration::from_secs(60))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rebar-hostile-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A type 0, 4/4 file at `ppq` of `count` one-tick middle Cs, each 2^28 − 1 ticks (the largest
/// delta a file can state) after the last one's end.
fn far_apart_notes(ppq: u16, count: usize) -> Vec<u8> {
    let mut track = vec![0x00, 0xFF, 0x58, 0x04, 0x04, 0x02, 0x18, 0x08];
    for i in 0..count {
        if i > 0 {
            track.extend([0xFF, 0xFF, 0xFF, 0x7F]);
        } else {
            track.push(0);
        }
        track.extend([0x90, 60, 64, 0x01, 0x80, 60, 0]);
    }
    track.extend([0x00, 0xFF, 0x2F, 0x00]);
    let mut bytes = b"MThd\0\0\0\x06\0\0\0\x01".to_vec();
    bytes.extend(ppq.to_be_bytes());
    bytes.extend(b"MTrk");
    bytes.extend((track.len() as u32).to_be_bytes());
    bytes.extend(track);
    bytes
}

/// A plain 4-bar tune at PPQ 96: sixteen quarter notes climbing from middle C.
fn tune() -> Vec<u8> {
    let mut track = vec![0x00, 0xFF, 0x58, 0x04, 0x04, 0x02, 0x18, 0x08];
    for pitch in 60..76u8 {
        track.extend([0x00, 0x90, pitch, 64, 0x60, 0x80, pitch, 0]);
    }
    track.extend([0x00, 0xFF, 0x2F, 0x00]);
    let mut bytes = b"MThd\0\0\0\x06\0\0\0\x01\0\x60MTrk".to_vec();
    bytes.extend((track.len() as u32).to_be_bytes());
    bytes.extend(track);
    bytes
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success());
}

#[test]
fn notes_past_the_u32_step_range_are_an_error_not_a_panic() {
    let dir = scratch("overflow");
    for count in 17..=20 {
        let path = dir.join(format!("{count}.mid"));
        std::fs::write(&path, far_apart_notes(1, count)).unwrap();
        let out = rebar(&["inspect", path.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(!out.status.success() && !err.contains("panicked"), "{count}: {err}");
        assert!(err.contains("Rebar reads melodies of up to 4096 bars"), "{count}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_53_byte_file_of_far_apart_notes_fails_at_once() {
    let dir = scratch("memory");
    for ppq in [1u16, 2] {
        let path = dir.join(format!("ppq{ppq}.mid"));
        let bytes = far_apart_notes(ppq, 2);
        assert_eq!(bytes.len(), 53);
        std::fs::write(&path, bytes).unwrap();
        // It took 15-20 s and gigabytes; the check comes before anything is allocated.
        let out = rebar_within(&["inspect", path.to_str().unwrap()], Duration::from_secs(10));
        assert!(!out.status.success(), "ppq {ppq}");
        assert!(stderr(&out).contains("up to 4096 bars"), "{}", stderr(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn numbers_that_are_not_finite_or_in_range_are_refused_when_parsed() {
    let dir = scratch("numbers");
    let input = dir.join("in.mid");
    std::fs::write(&input, tune()).unwrap();
    let output = dir.join("out.mid");
    let (input, output) = (input.to_str().unwrap(), output.to_str().unwrap());
    let cases: &[&[&str]] = &[
        &["--repeat-offset", "NaN"],
        &["--repeat-offset", "inf"],
        &["--repeat-offset", "1e300"],
        &["--repeat-distance-offsets", "0.4,NaN"],
        &["--temperature", "NaN"],
        &["--temperature", "inf"],
        &["--temperature=-1"],
        &["--noise-scale", "nan"],
        &["--opening-noise-scale=-inf"],
        &["--context-guidance", "NaN"],
        &["--interval-weight", "inf"],
    ];
    for case in cases {
        let mut args = vec!["infill", input, "--bars", "2", "--variations", "1", "-o", output];
        args.extend_from_slice(case);
        let out = rebar(&args);
        let err = stderr(&out);
        // clap's usage error: the arguments are refused before any model loads.
        assert_eq!(out.status.code(), Some(2), "{case:?}: {err}");
        assert!(err.contains("out of range") && !err.contains("panicked"), "{case:?}: {err}");
    }
    let more: &[&[&str]] = &[
        &["generate", "--bpm", "NaN", "-o", output],
        &["attribute", input, "--density", "NaN", "-o", output],
        &["train", "vae", "--data", input, "--out", output, "--lr", "NaN"],
        &["train", "prior", "--data", input, "--out", output, "--phrase-crops", "inf"],
    ];
    for args in more {
        let out = rebar(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("out of range"), "{args:?}: {err}");
    }
    assert!(!Path::new(output).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn variations_are_capped_at_the_plugin_s_eight() {
    let dir = scratch("variations");
    let output = dir.join("out.mid");
    for count in ["0", "9", "100000"] {
        let out =
            rebar_within(&["generate", "--variations", count, "-o", output.to_str().unwrap()], Duration::from_secs(10));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{count}: {err}");
        assert!(err.contains("Rebar makes 1 to 8 variations at a time"), "{count}: {err}");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn outputs_that_are_not_regular_files_are_refused_before_sampling() {
    use std::os::unix::fs::FileTypeExt;
    let dir = scratch("outputs");
    let fifo = dir.join("pipe.mid");
    mkfifo(&fifo);
    // /dev/full and /dev/null were replaced by regular files, and `-o /dev/null` with two
    // variations wrote /dev/null-1.mid. They are reached through links here, so that a
    // regression replaces a link in the scratch folder rather than a device of the machine.
    let (full, null) = (dir.join("full.mid"), dir.join("null.mid"));
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    std::os::unix::fs::symlink("/dev/null", &null).unwrap();
    for (output, kind) in [(&full, "a character device"), (&null, "a character device"), (&fifo, "a FIFO")] {
        let output = output.to_str().unwrap();
        for variations in ["1", "2"] {
            let out = rebar(&["generate", "--bars", "2", "--variations", variations, "-o", output]);
            let err = stderr(&out);
            assert!(!out.status.success(), "{output}: {err}");
            assert!(err.contains(&format!("cannot write {output}")) && err.contains(kind), "{output}: {err}");
        }
    }
    assert!(std::fs::symlink_metadata(&full).unwrap().file_type().is_symlink());
    assert!(std::fs::symlink_metadata(&null).unwrap().file_type().is_symlink());
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    // Nothing numbered beside them.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
    // A folder on the way that is a file.
    let file = dir.join("file.mid");
    std::fs::write(&file, b"x").unwrap();
    let under = file.join("out.mid");
    let out = rebar(&["generate", "--bars", "2", "-o", under.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(err.contains("file.mid is a regular file, not a folder") && !err.contains("File exists"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_fifo_as_input_is_refused_instead_of_hanging() {
    let dir = scratch("inputs");
    let fifo = dir.join("in.mid");
    mkfifo(&fifo);
    let out = rebar_within(&["inspect", fifo.to_str().unwrap()], Duration::from_secs(10));
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("is a FIFO (named pipe), not a regular file"), "{err}");
    let out = rebar_within(&["inspect", "/dev/zero"], Duration::from_secs(10));
    assert!(stderr(&out).contains("a character device"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The shipped model file at `asset` with one config entry replaced, written to `dir`.
fn model_with_config(asset: &str, key: &str, value: serde_json::Value, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets").join(asset)).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let config = header["__metadata__"]["config"].as_str().unwrap();
    let mut config: serde_json::Value = serde_json::from_str(config).unwrap();
    config[key] = value.clone();
    header["__metadata__"]["config"] = config.to_string().into();
    let header = header.to_string();
    let path = dir.join(format!("{key}-{value}-{asset}"));
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header.as_bytes());
    file.extend(&bytes[8 + header_len..]);
    std::fs::write(&path, file).unwrap();
    path
}

/// A model file whose config names sizes its weights do not have (a 100,000-layer prior asked
/// for 26 GB and aborted; a 60,000-wide one allocated its 14 GB of weights) or that the model
/// cannot run with (no attention heads) is refused at once, naming the entry.
#[test]
fn model_files_whose_config_is_absurd_are_refused_before_anything_is_allocated() {
    let dir = scratch("models");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ryans_jimmy_holmes_reel.mid");
    let out = dir.join("out.mid");
    let cases = [
        ("prior.safetensors", "--prior", "layers", serde_json::json!(100_000), "100000 layers"),
        ("prior.safetensors", "--prior", "width", serde_json::json!(60_000), "tensor `"),
        ("prior.safetensors", "--prior", "ff_width", serde_json::json!(1_000_000_000u64), "ff_width is 1000000000"),
        ("prior.safetensors", "--prior", "heads", serde_json::json!(0), "heads is 0"),
        ("prior.safetensors", "--prior", "heads", serde_json::json!(3), "3 heads do not divide"),
        ("prior.safetensors", "--prior", "data_scale", serde_json::json!(-1.0), "data_scale is -1"),
        ("vae.safetensors", "--vae", "hidden", serde_json::json!(60_000), "tensor `"),
        ("vae.safetensors", "--vae", "residual_layers", serde_json::json!(1_000_000), "1000000 residual layers"),
        ("vae.safetensors", "--vae", "vocab_size", serde_json::json!(10), "a VAE of 10 tokens"),
    ];
    for (asset, flag, key, value, message) in cases {
        let model = model_with_config(asset, key, value, &dir);
        let args = ["infill", fixture.to_str().unwrap(), "--bars", "5-8", flag, model.to_str().unwrap()];
        let output = rebar_within(&[&args[..], &["-o", out.to_str().unwrap()]].concat(), Duration::from_secs(20));
        let err = stderr(&output);
        assert!(!output.status.success() && err.contains(message), "{asset} {key}: {err}");
        assert!(err.contains("metadata `config`") || err.contains("tensor `"), "{asset} {key}: {err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
