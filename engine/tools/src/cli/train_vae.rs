//! `rebar train vae`: train the 2-bar melody VAE.

use std::time::Instant;

use anyhow::Result;
use rebar_engine::vae::VaeConfig;
use rebar_tools::data::load_dataset;
use rebar_tools::train::vae::{train_vae, VaeRun, VaeTrainOptions};

use super::parse::parse_non_negative;
use super::train::RunArgs;

#[derive(clap::Args)]
pub struct TrainVaeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// β: the weight of the KL term once annealed.
    #[arg(long, default_value_t = VaeTrainOptions::default().beta, value_parser = parse_non_negative)]
    pub beta: f64,
    /// Free bits: KL nats per window that cost nothing.
    #[arg(long, default_value_t = VaeTrainOptions::default().free_bits, value_parser = parse_non_negative)]
    pub free_bits: f64,
    /// Steps over which β rises from 0.
    #[arg(long, default_value_t = VaeTrainOptions::default().kl_anneal_steps)]
    pub kl_anneal_steps: u64,
    /// Largest random transposition, in semitones either way.
    #[arg(long, default_value_t = VaeTrainOptions::default().transpose)]
    pub transpose: u8,
    /// Hidden width of encoder and decoder.
    #[arg(long, default_value_t = VaeConfig::melody_2bar().hidden)]
    pub hidden: usize,
    /// Residual hidden layers on each side.
    #[arg(long, default_value_t = VaeConfig::melody_2bar().residual_layers)]
    pub residual_layers: usize,
    /// Latent dimensions.
    #[arg(long, default_value_t = VaeConfig::melody_2bar().latent)]
    pub latent: usize,
    /// Token embedding width in the encoder.
    #[arg(long, default_value_t = VaeConfig::melody_2bar().embed_dim)]
    pub embed_dim: usize,
    /// A note stored with the weights' provenance (for example the data's licence).
    #[arg(long)]
    pub note: Option<String>,
}

pub fn run(args: TrainVaeArgs) -> Result<()> {
    let device = args.run.device()?;
    let train = load_dataset(&args.run.data)?;
    let valid = args.run.valid.as_deref().map(load_dataset).transpose()?;
    let config = VaeConfig {
        hidden: args.hidden,
        residual_layers: args.residual_layers,
        latent: args.latent,
        embed_dim: args.embed_dim,
        ..VaeConfig::melody_2bar()
    };
    let options = VaeTrainOptions {
        schedule: args.run.schedule(VaeTrainOptions::default().schedule),
        beta: args.beta,
        free_bits: args.free_bits,
        kl_anneal_steps: args.kl_anneal_steps,
        transpose: args.transpose,
    };
    let provenance = serde_json::json!({
        "data": args.run.data.display().to_string(),
        "tunes": train.summary.tunes,
        "distinct_windows": train.windows.len(),
        "seed": args.run.seed,
        "note": args.note,
    });
    println!(
        "training the VAE on {} distinct windows ({} validation), {} steps of {}",
        train.windows.len(),
        valid.as_ref().map_or(0, |v| v.windows.len()),
        options.schedule.steps,
        options.schedule.batch
    );
    let started = Instant::now();
    let run = VaeRun {
        config,
        options,
        train: &train.windows,
        valid: valid.as_ref().map_or(&[][..], |v| &v.windows[..]),
        provenance,
        device,
    };
    let last = train_vae(run, &args.run.control())?;
    println!("{}", serde_json::to_string(&last)?);
    println!(
        "stopped at step {} after {:.1} s in this process; model in {}",
        last.step,
        started.elapsed().as_secs_f64(),
        args.run.out.join("vae.safetensors").display()
    );
    Ok(())
}
