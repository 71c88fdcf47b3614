//! Training the VAE for real, on a tiny model and the fixture tunes: the loss falls, a run is
//! deterministic given its seed, an interrupted run resumes to exactly the same weights, and a
//! damaged weights file is refused with an error naming the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use rebar_engine::checkpoint::{self, Checkpoint};
use rebar_engine::vae::{MelodyVae, VaeConfig, FORMAT, VERSION};
use rebar_engine::windows::Window;
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::train::run::{RunControl, Schedule};
use rebar_tools::train::vae::{train_vae, VaeRun, VaeTrainOptions, TRAIN_FORMAT, TRAIN_VERSION};

fn fixture_windows() -> Vec<Window> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    build_dataset(&dir, &BuildOptions::default()).unwrap().windows
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rebar-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(steps: u64) -> VaeTrainOptions {
    VaeTrainOptions {
        schedule: Schedule {
            steps,
            batch: 16,
            lr: 1e-3,
            warmup: 2,
            grad_clip: 1.0,
            seed: 11,
            eval_every: 5,
            checkpoint_every: 5,
            average_decay: 0.0,
        },
        kl_anneal_steps: 10,
        ..VaeTrainOptions::default()
    }
}

fn run(windows: &[Window], out: &Path, steps: u64, resume: bool, stop_at_step: Option<u64>) -> f64 {
    let run = VaeRun {
        config: VaeConfig::tiny(),
        options: options(steps),
        train: windows,
        valid: windows,
        provenance: serde_json::json!({"data": "fixtures"}),
        device: Device::Cpu,
    };
    let control = RunControl { out_dir: out, resume, max_seconds: None, stop_at_step, progress: false };
    train_vae(run, &control).unwrap().metrics["valid_accuracy"]
}

fn weights(dir: &Path) -> HashMap<String, Vec<f32>> {
    let saved = Checkpoint::read(&dir.join("checkpoint.safetensors"), TRAIN_FORMAT, TRAIN_VERSION).unwrap();
    saved.tensors.iter().map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

#[test]
fn training_lowers_the_loss_and_the_model_file_loads() {
    let windows = fixture_windows();
    let out = temp_dir("learns");
    let accuracy = run(&windows, &out, 60, false, None);
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let losses: Vec<f64> =
        log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap()).collect();
    assert!(losses.last().unwrap() < &(losses[0] * 0.8), "{losses:?}");
    let model = MelodyVae::load(&out.join("vae.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(model.vae.config, VaeConfig::tiny());
    assert!(model.preprocess.is_some() && model.attribute("density").is_some());
    // Measured on the same windows, through the loaded (f16) file.
    let reloaded = rebar_tools::eval::recon::reconstruction_accuracy(&model.vae, &windows, &Device::Cpu).unwrap();
    assert!((reloaded - accuracy).abs() < 0.02, "{reloaded} vs {accuracy}");
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn the_same_seed_gives_the_same_run_and_a_resumed_run_matches_an_uninterrupted_one() {
    let windows = fixture_windows();
    let (straight, again, resumed) = (temp_dir("straight"), temp_dir("again"), temp_dir("resumed"));
    run(&windows, &straight, 12, false, None);
    run(&windows, &again, 12, false, None);
    run(&windows, &resumed, 12, false, Some(7));
    assert_ne!(weights(&resumed), weights(&straight), "the interrupted run stopped early");
    run(&windows, &resumed, 12, true, None);
    assert_eq!(weights(&straight), weights(&again));
    assert_eq!(weights(&straight), weights(&resumed));
    for dir in [straight, again, resumed] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_damaged_weights_file_is_refused_naming_the_file_and_tensor() {
    let windows = fixture_windows();
    let out = temp_dir("damaged");
    run(&windows, &out, 5, false, None);
    let good = Checkpoint::read(&out.join("vae.safetensors"), FORMAT, VERSION).unwrap();

    let broken = out.join("broken.safetensors");
    let mut tensors = good.tensors.clone();
    tensors.remove("decoder.to_logits.weight");
    checkpoint::save(&broken, &tensors, FORMAT, VERSION, good.metadata.clone()).unwrap();
    let err = MelodyVae::load(&broken, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("broken.safetensors") && err.contains("decoder.to_logits.weight"), "{err}");

    let mut tensors = good.tensors.clone();
    tensors.insert(
        "encoder.input.weight".into(),
        candle_core::Tensor::zeros((3, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    checkpoint::save(&broken, &tensors, FORMAT, VERSION, good.metadata.clone()).unwrap();
    let err = MelodyVae::load(&broken, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("encoder.input.weight") && err.contains("shape"), "{err}");

    std::fs::write(&broken, b"not a model").unwrap();
    let err = MelodyVae::load(&broken, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("broken.safetensors"), "{err}");

    // A dataset cache is a safetensors file too, but not a VAE.
    let cache = out.join("cache.safetensors");
    rebar_tools::data::save_dataset(
        &build_dataset(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures"),
            &BuildOptions::default(),
        )
        .unwrap(),
        &cache,
    )
    .unwrap();
    let err = MelodyVae::load(&cache, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("rebar-dataset") && err.contains("rebar-vae"), "{err}");
    std::fs::remove_dir_all(out).unwrap();
}
