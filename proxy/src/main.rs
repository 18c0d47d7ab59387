//! The `portcullis` binary. Everything lives in the library so tests can run it in-process.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    proxy::cli::run(proxy::cli::Cli::parse()).await
}
