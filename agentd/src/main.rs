//! `agentd`: runs the daemon in the foreground until SIGTERM, SIGINT or
//! `daemon.shutdown`. Logs go to stderr, filtered by `RUST_LOG` (default
//! `info`). `agentd spawner` (hidden) forks the jobs' shims, see
//! [`agentd::spawner`].

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let mut args = agentd::Args::parse();
    if let Some(agentd::config::Subcommand::Spawner) = args.command.take() {
        // The spawner forks job shims: single-threaded, so no logging
        // setup and no runtime.
        return agentd::spawner::run();
    }
    agentd::daemon::cloexec_inherited_fds();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // Before the runtime's threads exist.
    agentd::memory::limit_malloc_arenas();
    let result = agentd::Config::from_args(args).and_then(|config| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .max_blocking_threads(agentd::memory::BLOCKING_THREADS)
            .build()?
            .block_on(async {
                let stop = stop_signal()?;
                agentd::run(config, stop).await
            })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agentd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Registers for SIGTERM and SIGINT now (so a signal that arrives while
/// the daemon starts is not lost) and resolves on the first of them.
///
/// Errors: the signal handlers cannot be installed.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; stopping"),
            _ = int.recv() => tracing::info!("SIGINT received; stopping"),
        }
    })
}
