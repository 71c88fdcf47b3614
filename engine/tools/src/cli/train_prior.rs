//! `rebar train prior`: train the diffusion prior over the VAE's latents.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rebar_engine::prior::PriorConfig;
use rebar_tools::data::load_dataset;
use rebar_tools::train::prior::{encode_tunes, train_prior, LossWeighting, PriorRun, PriorTrainOptions};

use super::models::load_vae;
use super::parse::{parse_fraction, parse_non_negative};
use super::train::RunArgs;

#[derive(clap::Args)]
pub struct TrainPriorArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// VAE weights whose latents the prior models. Default: the weights built into this binary.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// Transformer width.
    #[arg(long, default_value_t = PriorConfig::small(0).width)]
    pub width: usize,
    /// Self-attention layers.
    #[arg(long, default_value_t = PriorConfig::small(0).layers)]
    pub layers: usize,
    /// Hidden width of each feed-forward block.
    #[arg(long, default_value_t = PriorConfig::small(0).ff_width)]
    pub ff_width: usize,
    /// Model the latents as the VAE preprocessing leaves them, in [−1, 1], instead of scaled to
    /// unit standard deviation (how prior v2 and earlier were trained).
    #[arg(long)]
    pub unscaled: bool,
    /// Fraction of training crops with some latents kept clean, so the prior can infill from
    /// clean known latents [default: 0, the paper's objective alone].
    #[arg(long, value_parser = parse_fraction)]
    pub clean_context: Option<f64>,
    /// Start from these weights instead of random ones: a prior file, or a training checkpoint
    /// (its weight average). The architecture and data scale come from it.
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// With --init-from a prior without copy attention, the copy pointer or the repeat head: add
    /// them (the copy weights start at 0, where the model computes nearly what the initial one
    /// did). New runs always have them.
    #[arg(long, requires = "init_from")]
    pub add_copy: bool,
    /// Weight of the repeat head's loss beside the ε loss.
    #[arg(long, default_value_t = PriorTrainOptions::default().repeat_weight, value_parser = parse_non_negative)]
    pub repeat_weight: f64,
    /// Fraction of crops that start on an 8-bar line from the tune's start.
    #[arg(long, default_value_t = PriorTrainOptions::default().phrase_crops, value_parser = parse_fraction)]
    pub phrase_crops: f64,
    /// Draw the other crops by their last latent, uniformly over the tune, so that crops end on a
    /// tune's ending no more often than a latent is one.
    #[arg(long)]
    pub uniform_crop_ends: bool,
    /// How the ε loss weighs the noise levels: `epsilon`, the paper's; `v`, the v-prediction
    /// loss, which also counts what the model makes of a latent the noise drowns.
    #[arg(long, value_enum, default_value_t = LossWeighting::Epsilon)]
    pub loss_weighting: LossWeighting,
}

pub fn run(args: TrainPriorArgs) -> Result<()> {
    let device = args.run.device()?;
    let vae = load_vae(args.vae.as_deref())?;
    let preprocess = vae.preprocess.clone().context("the VAE file has no latent preprocessing")?;
    let defaults = PriorTrainOptions::default();
    let options = PriorTrainOptions {
        schedule: args.run.schedule(defaults.schedule.clone()),
        clean_context: args.clean_context.unwrap_or(defaults.clean_context),
        repeat_weight: args.repeat_weight,
        phrase_crops: args.phrase_crops,
        uniform_crop_ends: args.uniform_crop_ends,
        loss_weighting: args.loss_weighting,
        ..defaults
    };
    anyhow::ensure!((0.0..=1.0).contains(&options.clean_context), "--clean-context is a fraction from 0 to 1");
    let started = Instant::now();
    let train_data = load_dataset(&args.run.data)?;
    let train = encode_tunes(&vae, &train_data.tunes, options.transpose)?;
    let valid = match &args.run.valid {
        Some(path) => encode_tunes(&vae, &load_dataset(path)?.tunes, 0)?,
        None => rebar_tools::train::prior::LatentSequences { sequences: Vec::new(), dim: preprocess.prior_dim() },
    };
    println!(
        "encoded {} training sequences (tunes × transpositions) and {} validation tunes into {}-dim latents in {:.1} s",
        train.sequences.len(),
        valid.sequences.len(),
        preprocess.prior_dim(),
        started.elapsed().as_secs_f64()
    );
    let spread = train.standard_deviation();
    let init = args.init_from.as_deref().map(initial_weights).transpose()?;
    let resumed = resumed_config(&args)?;
    let config = match (&init, &resumed) {
        (Some((config, _)), _) => PriorConfig {
            clean_context: options.clean_context > 0.0,
            copy_attention: config.copy_attention || args.add_copy,
            copy_pointer: config.copy_pointer || args.add_copy,
            repeat_head: config.repeat_head || args.add_copy,
            ..config.clone()
        },
        (None, resumed) => PriorConfig {
            width: args.width,
            layers: args.layers,
            ff_width: args.ff_width,
            data_scale: match resumed {
                Some(saved) => saved.data_scale,
                None if args.unscaled => 1.0,
                None => 1.0 / spread,
            },
            clean_context: resumed.as_ref().map_or(options.clean_context > 0.0, |saved| saved.clean_context),
            copy_attention: resumed.as_ref().is_none_or(|saved| saved.copy_attention),
            copy_pointer: resumed.as_ref().is_none_or(|saved| saved.copy_pointer),
            repeat_head: resumed.as_ref().is_none_or(|saved| saved.repeat_head),
            ..PriorConfig::small(preprocess.prior_dim())
        },
    };
    anyhow::ensure!(
        config.latent_dim == preprocess.prior_dim(),
        "the initial weights model {}-dim latents, this VAE's are {}-dim",
        config.latent_dim,
        preprocess.prior_dim()
    );
    println!("latent standard deviation {spread:.4}: the prior models latents × {:.4}", config.data_scale);
    let run = PriorRun {
        config,
        options,
        train,
        valid,
        provenance: serde_json::json!({
            "data": args.run.data.display().to_string(),
            "tunes": train_data.summary.tunes,
            "vae": vae.provenance,
            "seed": args.run.seed,
            "init_from": args.init_from.as_ref().map(|p| p.display().to_string()),
        }),
        vae_preprocess: serde_json::to_value(&preprocess)?,
        init: init.map(|(_, weights)| weights),
        device,
    };
    let last = train_prior(run, &args.run.control())?;
    println!("{}", serde_json::to_string(&last)?);
    println!("model in {}", args.run.out.join("prior.safetensors").display());
    Ok(())
}

/// The architecture and weights to fine-tune from: a prior file, or a prior training checkpoint's
/// weight average (its raw weights when it kept no average).
pub fn initial_weights(path: &Path) -> Result<(PriorConfig, HashMap<String, candle_core::Tensor>)> {
    use rebar_engine::checkpoint::Checkpoint;
    use rebar_engine::prior::{FORMAT, OLDEST_VERSION, VERSION};
    let checkpoint = match Checkpoint::read_of_versions(path, FORMAT, OLDEST_VERSION..=VERSION) {
        Ok(model) => model,
        Err(_) => {
            let mut saved =
                Checkpoint::read(path, rebar_tools::train::prior::TRAIN_FORMAT, rebar_tools::train::run::TRAIN_VERSION)
                    .with_context(|| {
                        format!("{} is neither a prior file nor a prior training checkpoint", path.display())
                    })?;
            let averaged: HashMap<String, candle_core::Tensor> = saved
                .tensors
                .iter()
                .filter_map(|(name, t)| name.strip_prefix("average.").map(|n| (n.to_string(), t.clone())))
                .collect();
            if !averaged.is_empty() {
                saved.tensors = averaged;
            }
            saved
        }
    };
    Ok((checkpoint.json("config")?, checkpoint.tensors))
}

/// The saved config of the run being resumed, if resuming: it keeps its `data_scale` (the
/// encoder's float sums may differ in the last bits from run to run), `clean_context`,
/// `copy_attention`, `copy_pointer` and `repeat_head`.
pub fn resumed_config(args: &TrainPriorArgs) -> Result<Option<PriorConfig>> {
    if !args.run.resume {
        return Ok(None);
    }
    let saved = rebar_engine::checkpoint::Checkpoint::read(
        &args.run.control().checkpoint_path(),
        rebar_tools::train::prior::TRAIN_FORMAT,
        rebar_tools::train::run::TRAIN_VERSION,
    )?;
    Ok(Some(saved.json::<PriorConfig>("config")?))
}
