//! The cost of the real-time path per 512-sample block, through the same `Processor` the plugin's
//! `process()` runs: idle (transport playing, nothing generated, no input) and while playing a
//! dense variation with input passing through. `cargo bench -p rebar-plugin --bench process`.

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_channel::bounded;
use rebar_plugin::clip::{ClipNote, Region};
use rebar_plugin::params::{KeyRoot, RepeatMode, ScaleKind};
use rebar_plugin::processor::{BlockSettings, InputEvent, NoteIn, Processor, CAPTURE_CAPACITY};
use rebar_plugin::schedule::{Playback, Variation};
use rebar_plugin::timeline::BlockTimeline;
use rebar_plugin::worker::{AudioEnds, Request};

#[derive(Copy, Clone)]
struct Ev(u32, NoteIn);

impl InputEvent for Ev {
    fn timing(&self) -> u32 {
        self.0
    }
    fn note(&self) -> Option<NoteIn> {
        Some(self.1)
    }
}

const BLOCK: u32 = 512;

fn processor(with_variation: bool) -> (Processor, BlockSettings) {
    let (to_worker, inbox) = bounded(64);
    let (playback_tx, playbacks) = bounded(2);
    let (empty_tx, empty_clips) = bounded(2);
    empty_tx.send(Vec::with_capacity(CAPTURE_CAPACITY)).unwrap();
    let region = Region { start_beats: 0.0, bars: 8 };
    if with_variation {
        // Sixteenth notes through bars 5–8: the densest a generated melody gets.
        let notes: Vec<ClipNote> = (0..64)
            .map(|i| ClipNote {
                start: 16.0 + f64::from(i) * 0.25,
                length: 0.25,
                pitch: 60 + (i % 12) as u8,
                velocity: 0.8,
                channel: 0,
            })
            .collect();
        playback_tx.send(Box::new(Playback { variations: vec![Variation::new(region, 0b1111_0000, &notes)] })).unwrap();
    }
    // The worker's side stays alive and drains, as the real worker does.
    std::thread::spawn(move || while inbox.recv().is_ok() {});
    std::mem::forget((playback_tx, empty_tx));
    let settings = BlockSettings {
        listen: true,
        region,
        replace: true,
        variation: Some(0),
        regenerate: false,
        request: Request {
            selected_bars: 0b1111_0000,
            variations: 4,
            temperature: 1.0,
            seed: 1,
            key_root: KeyRoot::Any,
            key_scale: ScaleKind::Major,
            stick_to_kept: false,
            repeats: RepeatMode::Drawn,
        },
    };
    (
        Processor::new(AudioEnds { to_worker, playbacks, empty_clips, session_changed: Default::default() }, region),
        settings,
    )
}

fn bench(c: &mut Criterion) {
    for (name, with_variation) in
        [("process 512 samples, idle", false), ("process 512 samples, playing a variation", true)]
    {
        let (mut processor, settings) = processor(with_variation);
        let mut beat = 0.0f64;
        let mut sink = 0u32;
        c.bench_function(name, |b| {
            b.iter(|| {
                let timeline = BlockTimeline::new(true, Some(beat), Some(120.0), 48_000.0, BLOCK, Some((0.0, 32.0)));
                // Playing: the clip's own notes come in too (a note every eighth).
                let input = [
                    Ev(0, NoteIn::On { channel: 0, key: 50, velocity: 0.5 }),
                    Ev(400, NoteIn::Off { channel: 0, key: 50 }),
                ];
                let mut events = input.iter().copied().take(if with_variation { 2 } else { 0 });
                processor.process(timeline, Some(120.0), &settings, || events.next(), |_| sink += 1);
                beat = timeline.map(|t| t.expected_next_start()).unwrap_or(0.0);
            })
        });
        std::hint::black_box(sink);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
