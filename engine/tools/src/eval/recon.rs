//! Reconstruction accuracy, as in MusicVAE's Table 1: the fraction of steps whose token the
//! argmax decoding of the posterior mean gets right, over a set of 2-bar windows.

use candle_core::{Device, Result};

use rebar_engine::vae::{windows_tensor, Vae};
use rebar_engine::windows::{Window, WINDOW_STEPS};

/// Windows per forward pass: large enough for efficient matmuls, small enough to bound memory.
const EVAL_BATCH: usize = 1024;

/// Per-step accuracy of `decode(encode_mean(x))` over `windows`.
pub fn reconstruction_accuracy(vae: &Vae, windows: &[Window], device: &Device) -> Result<f64> {
    if windows.is_empty() {
        return Ok(0.0);
    }
    let mut correct = 0u64;
    for chunk in windows.chunks(EVAL_BATCH) {
        let ids = windows_tensor(chunk, device)?;
        let decoded = vae.decode(&vae.encode_mean(&ids)?)?;
        correct += u64::from(decoded.eq(&ids)?.to_dtype(candle_core::DType::U32)?.sum_all()?.to_scalar::<u32>()?);
    }
    Ok(correct as f64 / (windows.len() * WINDOW_STEPS) as f64)
}
