//! Encoding and decoding a 32-bar clip (16 segments) with the shipped VAE, as the plugin does
//! for every request. Run on one core as BENCHMARKS.md records:
//! `RAYON_NUM_THREADS=1 cargo bench -p rebar-engine --bench vae`.

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use rebar_engine::melody::{quantize, Melody};
use rebar_engine::midi::{parse, MelodySelector};
use rebar_engine::vae::segments::to_segments;
use rebar_engine::vae::MelodyVae;

/// A real 32-bar clip: a fixture reel, repeated until it is 32 bars long.
fn clip_of_32_bars() -> Melody {
    let bytes = include_bytes!("../../tests/fixtures/ryans_jimmy_holmes_reel.mid");
    let file = parse(bytes).expect("fixture parses");
    let (mut melody, _) = quantize(&file, file.select(&MelodySelector::MostNotes).unwrap()).unwrap();
    let original = melody.clone();
    while melody.bars < 32 {
        let offset = rebar_engine::time::Bar(melody.bars).start();
        melody
            .notes
            .extend(original.notes.iter().map(|n| rebar_engine::melody::Note { start: n.start + offset, ..*n }));
        melody.bars += original.bars;
    }
    melody.notes.retain(|n| n.end().0 <= 32 * 16);
    melody.bars = 32;
    melody
}

fn encode_decode(c: &mut Criterion) {
    let model = MelodyVae::embedded(&Device::Cpu).expect("shipped weights load");
    let segments = to_segments(&clip_of_32_bars());
    assert_eq!(segments.len(), 16);
    c.bench_function("vae encode+decode 32 bars (16 segments)", |b| {
        b.iter(|| model.decode(&model.encode(&segments).unwrap()).unwrap())
    });
}

criterion_group!(benches, encode_decode);
criterion_main!(benches);
