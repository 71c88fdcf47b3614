//! `cargo xtask bundle rebar-plugin --release [--target TRIPLE]`: builds the plugin and packs it
//! as `.clap` and `.vst3` bundles under `target/bundled/`, named through `bundler.toml`.
//!
//! - Linux (no `--target`): `Rebar.clap` and `Rebar.vst3/Contents/x86_64-linux/Rebar.so`.
//! - Windows, cross-built on Linux: `--target x86_64-pc-windows-gnu`, with mingw-w64's linker
//!   (`.cargo/config.toml` links its C runtime statically): `Rebar.clap` and
//!   `Rebar.vst3/Contents/x86_64-win/Rebar.vst3`.
//! - macOS, built on a Mac: `--target aarch64-apple-darwin` or `x86_64-apple-darwin` (or none).
//!
//! Each build replaces what `target/bundled/` held.

fn main() -> nice_plug_xtask::Result<()> {
    nice_plug_xtask::main()
}
