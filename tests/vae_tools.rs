//! The shipped VAE on real tunes: it reconstructs them, and its interpolation and attribute
//! vector have the defining properties of MusicVAE §5.4–5.5. Measured on the fixture tunes (a
//! fresh clone has no corpus); BENCHMARKS.md has the same measurements over the valid split.

// Engine tests: native only (tests/Cargo.toml builds only the plugin host tests for Windows).
#![cfg(not(windows))]

use candle_core::Device;
use rebar_engine::vae::tools::{apply_attribute, interpolate, note_count, DENSITY};
use rebar_engine::vae::MelodyVae;
use rebar_engine::windows::Window;
use rebar_tests::fixtures_dir;
use rebar_tools::data::{build_dataset, BuildOptions};
use rebar_tools::eval::recon::reconstruction_accuracy;

fn model() -> MelodyVae {
    MelodyVae::embedded(&Device::Cpu).unwrap()
}

fn windows() -> Vec<Window> {
    build_dataset(&fixtures_dir(), &BuildOptions::default()).unwrap().windows
}

fn hamming(a: &Window, b: &Window) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

#[test]
fn the_shipped_vae_reconstructs_real_tunes() {
    let model = model();
    let accuracy = reconstruction_accuracy(&model.vae, &windows(), &Device::Cpu).unwrap();
    assert!(accuracy >= 0.95, "accuracy {accuracy}");
}

#[test]
fn interpolation_endpoints_reconstruct_the_inputs() {
    let model = model();
    let windows = windows();
    let (a, b) = (&windows[..6], &windows[windows.len() - 6..]);
    let clips = interpolate(&model, a, b, 5).unwrap();
    assert_eq!(clips.len(), 5);
    assert_eq!(clips[0], model.decode(&model.encode(a).unwrap()).unwrap());
    assert_eq!(clips[4], model.decode(&model.encode(b).unwrap()).unwrap());
    let agreement = |x: &[Window], y: &[Window]| {
        1.0 - x.iter().zip(y).map(|(p, q)| hamming(p, q)).sum::<usize>() as f64 / (x.len() * 32) as f64
    };
    assert!(agreement(&clips[0], a) >= 0.9 && agreement(&clips[4], b) >= 0.9);
}

#[test]
fn the_distance_from_a_rises_monotonically_along_the_interpolation() {
    let model = model();
    let windows = windows();
    let half = windows.len() / 2;
    // Many pairs: each window of the first half with one of the second half.
    let (a, b) = (&windows[..half], &windows[half..2 * half]);
    let clips = interpolate(&model, a, b, 11).unwrap();
    let mean_distance: Vec<f64> = clips
        .iter()
        .map(|clip| clip.iter().zip(a).map(|(x, y)| hamming(x, y) as f64).sum::<f64>() / half as f64)
        .collect();
    assert!(mean_distance.windows(2).all(|w| w[1] >= w[0]), "{mean_distance:?}");
    assert!(mean_distance[10] > mean_distance[0] + 5.0, "{mean_distance:?}");
}

#[test]
fn the_density_vector_adds_notes_on_average_and_its_negative_removes_them() {
    let model = model();
    let windows = windows();
    let vector = model.attribute(DENSITY).expect("the shipped VAE has a density vector").to_vec();
    let mean_notes = |amount: f32| {
        let changed = apply_attribute(&model, &windows, &vector, amount).unwrap();
        changed.iter().map(|w| note_count(w) as f64).sum::<f64>() / changed.len() as f64
    };
    let (sparser, same, denser) = (mean_notes(-1.0), mean_notes(0.0), mean_notes(1.0));
    assert!(sparser < same && same < denser, "{sparser} {same} {denser}");
}

#[test]
fn the_latent_tools_evaluation_reports_what_the_tools_do() {
    use rebar_tools::eval::latent_tools::measure_latent_tools;
    let windows = windows();
    let report = measure_latent_tools(&model(), &windows).unwrap();
    assert_eq!((report.n_windows, report.n_pairs), (windows.len(), windows.len() / 2));
    // Along α the decodings move away from A: from its reconstruction to B's.
    let by_alpha = &report.mean_hamming_to_a_by_alpha;
    assert_eq!(by_alpha.len(), 11);
    assert!(by_alpha[0] < 4.0 && by_alpha[10] > by_alpha[0] + 5.0, "{by_alpha:?}");
    // The density vector adds notes; its negative removes them.
    let notes = &report.mean_notes_by_density_amount;
    assert!(notes["+2"] > report.input_mean_notes && notes["-2"] < report.input_mean_notes, "{notes:?}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["task"], "tools");
    assert!(measure_latent_tools(&model(), &[]).is_err());
}
