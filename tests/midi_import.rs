//! MIDI import on real and broken files: real tunes read as expected, and corrupt, truncated or
//! empty input gives a typed error, never a panic.

// Engine tests: native only (tests/Cargo.toml builds only the plugin host tests for Windows).
#![cfg(not(windows))]

use proptest::prelude::*;
use rebar_engine::melody::quantize;
use rebar_engine::midi::{parse, MelodySelector, Meter, MidiError};
use rebar_tests::fixtures_dir;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

/// Parses and quantizes; any failure must be a typed error.
fn import(bytes: &[u8]) -> Result<usize, MidiError> {
    let file = parse(bytes)?;
    let part = file.select(&MelodySelector::MostNotes)?;
    Ok(quantize(&file, part)?.0.notes.len())
}

#[test]
fn a_real_two_four_tune_reads_with_its_tempo_meter_and_key() {
    let file = parse(&fixture("fife_yankee_doodle.mid")).unwrap();
    assert_eq!((file.format, file.ppq), (0, 10080));
    assert_eq!(file.meters, vec![(0, Meter { numerator: 2, denominator: 4 })]);
    assert!((file.initial_bpm() - 180.0).abs() < 1e-3);
    let (melody, _) = quantize(&file, &file.parts[0]).unwrap();
    assert_eq!(melody.meter, Meter { numerator: 2, denominator: 4 });
    // Every note is on the keyboard and the melody never overlaps itself.
    assert!(melody.notes.windows(2).all(|w| w[0].end() <= w[1].start));
    assert!(melody.notes.iter().all(|n| (21..=108).contains(&n.pitch) && n.len.0 >= 1));
}

#[test]
fn a_six_eight_tune_is_a_typed_error_naming_the_meter() {
    let err = import(&fixture("airds_barring_of_the_door_6-8.mid")).unwrap_err();
    assert!(matches!(err, MidiError::UnsupportedMeter { meter: Meter { numerator: 6, denominator: 8 }, .. }));
    assert!(err.to_string().contains("6/8"), "{err}");
}

#[test]
fn empty_input_is_malformed() {
    assert!(matches!(parse(&[]), Err(MidiError::Malformed(_))));
}

#[test]
fn every_truncation_of_a_real_file_reads_or_fails_cleanly() {
    for name in ["airds_major_graham.mid", "fife_duke_of_yorks_march_mixed_meter.mid"] {
        let bytes = fixture(name);
        for len in 0..bytes.len() {
            let _ = import(&bytes[..len]);
        }
    }
}

#[test]
fn a_zero_ppq_header_is_malformed() {
    let mut zero_ppq = fixture("bach_bwv281_soprano.mid");
    zero_ppq[12] = 0;
    zero_ppq[13] = 0;
    assert!(matches!(parse(&zero_ppq), Err(MidiError::Malformed(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = import(&bytes);
    }

    #[test]
    fn flipped_bytes_in_a_real_file_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = fixture("oneills_four_leaved_shamrock.mid");
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let _ = import(&bytes);
    }
}
