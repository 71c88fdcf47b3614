//! Evaluation commands' measurements. [`recon`]: the VAE's reconstruction accuracy;
//! [`quality`]: the paper's Table 1 for infilling and unconditional generation; [`figure`]:
//! its piano-roll figure.

pub mod figure;
pub mod quality;
pub mod recon;
