//! `agentctl`: parses the command line and runs it. Errors are printed as
//! `agentctl: …` in people's words (`agentctl::errors`), or as the
//! protocol's error object when `--json` was asked for, and exit 1; usage
//! errors exit 2 (clap).

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = agentctl::Cli::command().get_matches();
    let json = agentctl::errors::json_requested(&matches);
    let cli = agentctl::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // One thread: every command waits on agentd (or the model) more than
    // it computes, and starting worker threads would cost each short
    // command more than it could gain (docs/benchmarks.md).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agentctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(agentctl::run(cli)) {
        Ok(code) => code,
        Err(e) if json => {
            eprintln!("{}", agentctl::errors::json(&e));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("agentctl: {}", agentctl::errors::human(&e));
            ExitCode::FAILURE
        }
    }
}
