//! How long a host takes to scan and instantiate the built plugin: `ClapHost::load` opens the
//! binary, reads the CLAP entry and descriptor, creates and initializes an instance and reads
//! every parameter; `activate` then starts the worker. The first load in a fresh process (the
//! host's real scan, the shared library mapped from disk) is printed before the repeated
//! measurements.
//!
//! `cargo build --release -p rebar-plugin && cargo bench -p rebar-tests --bench plugin_scan`
//! (or point `REBAR_CLAP` at a built `Rebar.clap`).

// Built as a bench, the harness's own #[test] self-checks are compiled out, leaving their import.
#[allow(unused_imports)]
#[path = "../clap_host/mod.rs"]
mod clap_host;

use std::path::PathBuf;
use std::time::Instant;

use clap_host::ClapHost;
use criterion::{criterion_group, criterion_main, Criterion};

fn plugin_path() -> PathBuf {
    std::env::var_os("REBAR_CLAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/librebar_plugin.so"))
}

fn scan(c: &mut Criterion) {
    let path = plugin_path();
    let started = Instant::now();
    let first = ClapHost::load(&path).unwrap_or_else(|e| panic!("{e} (build the plugin first)"));
    println!("first load, scan and instantiation in this process: {:.2} ms", started.elapsed().as_secs_f64() * 1e3);
    drop(first);

    c.bench_function("plugin load + init + parameter scan", |b| {
        b.iter(|| ClapHost::load(&path).expect("the plugin loads"))
    });
    c.bench_function("plugin load + init + activate (starts the worker)", |b| {
        b.iter(|| {
            let mut host = ClapHost::load(&path).expect("the plugin loads");
            host.activate(48_000.0, 512).expect("the plugin activates");
            host
        })
    });
}

criterion_group!(benches, scan);
criterion_main!(benches);
