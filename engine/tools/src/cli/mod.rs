//! The `rebar` subcommands, one file each, and what several of them share: the value parsers,
//! the models they load, and the sampling controls.

pub mod attribute;
pub mod bench;
pub mod dataset;
pub mod eval;
pub mod generate;
pub mod infill;
pub mod inspect;
pub mod interpolate;
pub mod models;
pub mod parse;
pub mod sampling;
pub mod train;
pub mod train_prior;
pub mod train_vae;
