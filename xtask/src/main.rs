//! `cargo xtask bundle rebar-plugin --release`: builds the plugin and packs it as `.clap` and
//! `.vst3` bundles under `target/bundled/`, named through `bundler.toml`.

fn main() -> nice_plug_xtask::Result<()> {
    nice_plug_xtask::main()
}
