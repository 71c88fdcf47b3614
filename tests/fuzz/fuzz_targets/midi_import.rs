//! Fuzzes MIDI import end to end: parse, pick the melody, quantize, tokenize, decode and write
//! back. Any input may fail with a typed error; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rebar_engine::melody::{quantize, tokens, Melody};
use rebar_engine::midi::{melody_to_smf_bytes, parse, MelodySelector};

fuzz_target!(|bytes: &[u8]| {
    let Ok(file) = parse(bytes) else { return };
    let Ok(part) = file.select(&MelodySelector::MostNotes) else { return };
    let Ok((melody, _)) = quantize(&file, part) else { return };
    let ids = tokens::encode(&melody.notes, melody.steps());
    let decoded = Melody { notes: tokens::decode(&ids), ..melody };
    let _ = melody_to_smf_bytes(&decoded);
});
