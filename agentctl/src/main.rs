//! `agentctl`: parses the command line and runs it. Errors are printed as
//! `agentctl: error: …` and exit 1; usage errors exit 2 (clap).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = agentctl::Cli::parse();
    // One thread: every command waits on agentd (or the model) more than
    // it computes, and starting worker threads would cost each short
    // command more than it could gain (docs/benchmarks.md).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agentctl: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(agentctl::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agentctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
