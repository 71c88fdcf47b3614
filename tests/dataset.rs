//! `rebar dataset` over real tunes: every count in its summary must match a second, independent
//! count made here straight from the MIDI events with `midly`, using the rules written in the
//! issue (round to the nearest 16th, drop notes shorter than a step, keep the top note of a
//! chord, 2-bar windows at a 1-bar stride with notes and at most 16 silent steps in a row).

// Engine tests: native only (tests/Cargo.toml builds only the plugin host tests for Windows).
#![cfg(not(windows))]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};
use rebar_tests::fixtures_dir;
use rebar_tools::data::{build_dataset, load_dataset, save_dataset, BuildOptions};

/// The independent count of one folder.
#[derive(Debug, Default)]
struct Recount {
    tunes: u64,
    skipped: BTreeMap<String, u64>,
    snapped_onsets: u64,
    dropped_short: u64,
    dropped_polyphony: u64,
    windows_with_notes: u64,
    windows_kept: u64,
    distinct: HashSet<Vec<i32>>,
}

/// Recounts a folder of single-track files (all the fixtures are type 0).
fn recount(dir: &Path) -> Recount {
    let mut count = Recount::default();
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "mid"));
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(smf) = Smf::parse(&bytes) else {
            *count.skipped.entry("malformed MIDI".into()).or_default() += 1;
            continue;
        };
        let Timing::Metrical(ppq) = smf.header.timing else { panic!("fixtures use metrical timing") };
        let ppq = f64::from(ppq.as_int());

        // Raw notes as (start, end, key) in ticks, and the meters.
        let mut meters = Vec::new();
        let mut raw = Vec::new();
        let mut open: Vec<(u8, u64)> = Vec::new();
        let mut tick = 0u64;
        for event in &smf.tracks[0] {
            tick += u64::from(event.delta.as_int());
            match event.kind {
                TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, ..)) => meters.push((n, 1u32 << d)),
                TrackEventKind::Midi { message: MidiMessage::NoteOn { key, vel }, .. } if vel.as_int() > 0 => {
                    open.push((key.as_int(), tick))
                }
                TrackEventKind::Midi {
                    message: MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. },
                    ..
                } => {
                    if let Some(i) = open.iter().position(|(k, _)| *k == key.as_int()) {
                        let (k, start) = open.remove(i);
                        raw.push((start, tick, k));
                    }
                }
                _ => {}
            }
        }
        if let Some((n, d)) = meters.iter().find(|&&(n, d)| !matches!((n, d), (4, 4) | (2, 2) | (2, 4) | (4, 2))) {
            *count.skipped.entry(format!("meter {n}/{d}")).or_default() += 1;
            continue;
        }
        count.tunes += 1;

        // Quantize to steps.
        let mut notes: Vec<(i64, i64, i32)> = Vec::new();
        for (start, end, key) in raw {
            let exact = start as f64 * 4.0 / ppq;
            if (exact - exact.round()).abs() > 1e-9 {
                count.snapped_onsets += 1;
            }
            let (s, e) = (exact.round() as i64, (end as f64 * 4.0 / ppq).round() as i64);
            if e <= s {
                count.dropped_short += 1;
            } else {
                notes.push((s, e, i32::from(key)));
            }
        }
        // Skyline, then cut each note at the next onset.
        notes.sort_by_key(|&(s, _, k)| (s, -k));
        let before = notes.len();
        notes.dedup_by_key(|n| n.0);
        count.dropped_polyphony += (before - notes.len()) as u64;
        for i in 1..notes.len() {
            notes[i - 1].1 = notes[i - 1].1.min(notes[i].0);
        }

        // Per step: the pitch starting there (or -1), and whether a note sounds.
        let steps = notes.iter().map(|n| n.1).max().unwrap_or(0).div_euclid(16) * 16
            + if notes.iter().map(|n| n.1).max().unwrap_or(0) % 16 == 0 { 0 } else { 16 };
        let mut onset = vec![-1i32; steps as usize];
        let mut sounding_pitch = vec![-1i32; steps as usize];
        for &(s, e, k) in &notes {
            onset[s as usize] = k;
            sounding_pitch[s as usize..e as usize].fill(k);
        }
        for bar in 0..(steps / 16 - 1).max(0) {
            let span = (bar * 16) as usize..(bar * 16 + 32) as usize;
            if onset[span.clone()].iter().all(|&k| k < 0) {
                continue;
            }
            count.windows_with_notes += 1;
            // Inside a window a note only sounds from its own onset on.
            let mut silent_run = 0;
            let mut longest = 0;
            let mut current = -1;
            let mut key = Vec::new();
            for step in span {
                if onset[step] >= 0 {
                    current = onset[step];
                } else if sounding_pitch[step] != current {
                    current = -1;
                }
                silent_run = if current < 0 { silent_run + 1 } else { 0 };
                longest = longest.max(silent_run);
                // A window's identity: what starts at each step and what sounds.
                key.push(onset[step] * 1000 + current);
            }
            if longest <= 16 {
                count.windows_kept += 1;
                count.distinct.insert(key);
            }
        }
    }
    count
}

#[test]
fn the_summary_matches_an_independent_recount_of_real_tunes() {
    let dataset = build_dataset(&fixtures_dir(), &BuildOptions::default()).unwrap();
    let summary = &dataset.summary;
    let expected = recount(&fixtures_dir());

    assert_eq!(summary.files_found, 8);
    assert_eq!(summary.tunes, expected.tunes);
    assert_eq!(summary.skipped, expected.skipped);
    assert_eq!(summary.quantize.snapped_onsets, expected.snapped_onsets);
    assert_eq!(summary.quantize.dropped_short, expected.dropped_short);
    assert_eq!(summary.quantize.dropped_polyphony, expected.dropped_polyphony);
    assert_eq!(summary.windows_with_notes, expected.windows_with_notes);
    assert_eq!(summary.windows_kept, expected.windows_kept);
    assert_eq!(summary.distinct_windows, expected.distinct.len() as u64);
    assert_eq!(dataset.window_counts.iter().map(|&c| u64::from(c)).sum::<u64>(), summary.windows_kept);

    // The fixtures were chosen to exercise each path; make sure they still do.
    assert!(expected.snapped_onsets > 0 && expected.dropped_polyphony > 0);
    assert_eq!(summary.skipped.get("meter 6/8"), Some(&1));
    assert_eq!(summary.tunes, 6);
}

#[test]
fn each_tune_is_kept_whole_as_a_whole_number_of_bars() {
    let dataset = build_dataset(&fixtures_dir(), &BuildOptions::default()).unwrap();
    let mut ids: Vec<&str> = dataset.tunes.iter().map(|t| t.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids.len(), 6);
    assert!(ids.contains(&"oneills_john_mitchel.mid"));
    for tune in &dataset.tunes {
        assert!(!tune.tokens.is_empty() && tune.tokens.len() % 16 == 0, "{}", tune.id);
    }
}

#[test]
fn the_cache_reads_back_exactly_what_was_built() {
    let dataset = build_dataset(&fixtures_dir(), &BuildOptions::default()).unwrap();
    let path = std::env::temp_dir().join(format!("rebar-e2e-{}.safetensors", std::process::id()));
    save_dataset(&dataset, &path).unwrap();
    let loaded = load_dataset(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, dataset);
}

#[test]
fn a_corrupt_or_truncated_file_is_skipped_and_the_rest_still_build() {
    let dir = std::env::temp_dir().join(format!("rebar-e2e-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("garbage.mid"), b"MThd this is not midi").unwrap();
    let real = std::fs::read(fixtures_dir().join("bach_bwv281_soprano.mid")).unwrap();
    std::fs::write(dir.join("truncated.MID"), &real[..real.len() / 2]).unwrap();
    std::fs::write(dir.join("empty.midi"), b"").unwrap();

    let clean = build_dataset(&fixtures_dir(), &BuildOptions::default()).unwrap();
    let dirty = build_dataset(&dir, &BuildOptions::default()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(dirty.summary.files_found, clean.summary.files_found + 3);
    assert_eq!(dirty.summary.tunes, clean.summary.tunes);
    assert_eq!(dirty.summary.skipped.get("malformed MIDI"), Some(&3));
    assert_eq!(dirty.windows, clean.windows);
}
