//! `cargo leptos`, unchanged apart from the dependency versions in Cargo.lock.

use cargo_leptos::config::Cli;
use clap::Parser;

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    // Run as `cargo leptos ...`, cargo passes "leptos" as the first argument.
    let args: Vec<String> = std::env::args()
        .enumerate()
        .filter(|(index, arg)| !(*index == 1 && arg == "leptos"))
        .map(|(_, arg)| arg)
        .collect();
    let cli = Cli::parse_from(&args);
    let verbose = cli.opts().map(|opts| opts.verbose).unwrap_or(0);
    cargo_leptos::logger::setup(verbose, &cli.log);
    cargo_leptos::run(cli).await
}
