//! `rebar`: the command line of Rebar's engine and tools. Each subcommand lives in its own file
//! under `cli/`, a thin argument struct over a library call.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};

use cli::train::TrainCommand;
use cli::{attribute, bench, dataset, eval, generate, infill, inspect, interpolate, train_prior, train_vae};

/// Rebar rewrites selected bars of a MIDI melody with latent diffusion.
#[derive(Parser)]
#[command(name = "rebar", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a MIDI file's tracks, tempo, meter and key, and its melody as a text piano roll.
    Inspect(inspect::InspectArgs),
    /// Build a training cache from a folder tree of MIDI files.
    ///
    /// Every 2-bar window (stride one bar) with notes and at most one bar of consecutive silence
    /// becomes a VAE training window (deduplicated); every tune's whole melody is kept for the
    /// prior. Files in meters other than 4/4, 2/2, 2/4 and 4/2 are skipped and counted.
    Dataset(dataset::DatasetArgs),
    /// Train a model on a dataset cache, in the background-friendly way: progress on the
    /// terminal (JSON log lines when not a terminal), atomic checkpoints, exact `--resume`.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Measure a model on a folder of MIDI files and write the figures as JSON.
    Eval(eval::EvalArgs),
    /// Morph one melody into another: spherical interpolation of their latents, 2-bar segment by
    /// segment (MusicVAE §2.1.2). Writes the steps one after another into one MIDI file.
    Interpolate(interpolate::InterpolateArgs),
    /// Move a melody along a latent attribute vector (MusicVAE §5.5), such as note density.
    Attribute(attribute::AttributeArgs),
    /// Rewrite selected bars of a MIDI melody with the diffusion prior (the main job).
    Infill(infill::InfillArgs),
    /// Generate new melodies from scratch with the diffusion prior.
    Generate(generate::GenerateArgs),
    /// Time infilling 8 bars of a 32-bar clip with 4 variations: the default sampler and the
    /// 1000-step ancestral sampler without context guidance (the paper's) in the same run
    /// (p50, p95, ratio).
    Bench(bench::BenchArgs),
}

/// `rebar inspect … | head` closes the pipe before rebar is done writing. Rust ignores SIGPIPE,
/// so the next `println!` would panic; with the signal's default action restored, rebar ends
/// as Unix tools do, silently.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Training frees and allocates the same tens of megabytes of activations every step. glibc
/// returns blocks above its mmap threshold (and a large free heap top) to the kernel at once, so
/// the next step page-faults them in again, zeroed: a third of a CPU training step's time in
/// `perf`. Keeping freed memory in the heap trains about 1.5 times
/// as fast at batch 1024; the peak memory is the same, it is only not given back between steps.
fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any thread exists or allocates; mallopt only
    // changes glibc's thresholds, and a refused value leaves the default in place.
    unsafe {
        // The largest threshold glibc accepts on 64-bit: 32 MiB.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 1 << 30);
    }
}

fn main() -> Result<()> {
    end_quietly_on_a_closed_pipe();
    keep_freed_memory_for_reuse();
    match Cli::parse().command {
        Command::Inspect(args) => inspect::run(args),
        Command::Dataset(args) => dataset::run(args),
        Command::Train(TrainCommand::Vae(args)) => train_vae::run(args),
        Command::Train(TrainCommand::Prior(args)) => train_prior::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Interpolate(args) => interpolate::run(args),
        Command::Attribute(args) => attribute::run(args),
        Command::Infill(args) => infill::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
