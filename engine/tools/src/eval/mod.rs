//! Evaluation: [`recon`]: the VAE's reconstruction accuracy; [`latent_tools`]: its interpolation
//! and attribute vectors; [`quality`]: the paper's Table 1 rows for infilling and unconditional
//! generation, run as one call by [`report`]; [`shape`]: what the metric's means hide;
//! [`figure`]: the infilling figure.

pub mod figure;
pub mod latent_tools;
pub mod quality;
pub mod recon;
pub mod report;
pub mod shape;
