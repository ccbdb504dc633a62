//! `agentd-bench`: the benchmark suite of docs/benchmarks.md. In one run on
//! one machine it builds agentd and agentctl, installs pueue into a cache
//! dir when missing, starts an isolated agentd and an isolated pueued
//! (unlimited parallelism), measures each figure and prints a Markdown table
//! of both tools' medians and their ratio. A full run also writes the table
//! into `docs/benchmarks.md`; `--quick` runs in about a minute (CI runs it
//! so the suite cannot rot) and only prints.
//!
//!     cargo run --release -p agentd-bench            # full run, updates the doc
//!     cargo run --release -p agentd-bench -- --quick

mod agentd_side;
mod figures;
mod history;
mod integrations;
mod procfs;
mod pueue_side;
mod queue;
mod report;
mod sandbox;
mod slurm;
mod stats;
mod steady;

use anyhow::{Context, bail};
use clap::Parser;
use figures::Sizes;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

/// Benchmarks agentd/agentctl side by side with pueue.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Small sizes (about a minute); print the table, do not write the doc
    #[arg(long)]
    quick: bool,
    /// Where the full run writes its table [default: docs/benchmarks.md]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Where pueue is installed (and looked for) [default: target/bench-cache/pueue]
    #[arg(long, value_name = "DIR")]
    pueue_root: Option<PathBuf>,
    /// Use the agentd and agentctl already built in this directory instead
    /// of building them
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Exit 1 when a target is missed
    #[arg(long)]
    strict: bool,
    /// Only the sandbox set-up figures (no pueue needed); prints the rows
    #[arg(long)]
    only_sandbox: bool,
    /// Only the hot-path figures (no pueue needed): submit → notification,
    /// the pipelined burst, big output, capped output and the steady load;
    /// prints the rows
    #[arg(long)]
    only_hot_path: bool,
    /// With --only-hot-path: the `config.toml` of its agentd, for A/B runs
    /// (for instance "[output]\nmax_bytes = 0" turns the output cap off)
    #[arg(long, value_name = "TOML")]
    agentd_config: Option<String>,
    /// Only the dependency-chain figure (no pueue needed); prints the row
    #[arg(long)]
    only_queue: bool,
    /// Only the steady load (10 jobs/s after filling the table to 10,000
    /// finished jobs; no pueue needed); prints the row. Takes --agentd-config
    #[arg(long)]
    only_steady: bool,
    /// How long the steady load runs, in seconds [default: 120, 5 with --quick]
    #[arg(long, value_name = "SECS")]
    steady_secs: Option<u64>,
    /// Only the long-history figures (1,000,000 finished jobs, 20,000
    /// with --quick; no pueue needed); prints the rows
    #[arg(long)]
    only_history: bool,
    /// Only the Slurm executor's figures (a test cluster is started; no
    /// pueue needed); prints the rows
    #[arg(long)]
    only_slurm: bool,
}

/// The workspace root (this crate lives in `bench/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// Cargo: the one that runs us (`cargo run` sets `CARGO`), else on PATH.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds agentd and agentctl in this binary's profile and returns the
/// directory they are in (this binary's own).
fn build_binaries() -> anyhow::Result<PathBuf> {
    let mut cmd = Command::new(cargo());
    cmd.args(["build", "-p", "agentd", "-p", "agentctl"])
        .current_dir(workspace());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build -p agentd -p agentctl failed ({status})");
    }
    let exe = std::env::current_exe()?;
    Ok(exe.parent().context("executable's dir")?.to_path_buf())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(all_met) if all_met || !args.strict => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("agentd-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the sandbox figures alone against a fresh agentd and prints them;
/// true when their targets were met.
fn only_sandbox(bin_dir: &Path, sizes: Sizes) -> anyhow::Result<bool> {
    let Alone {
        tmp,
        agentd: _agentd,
        rt,
        client,
        ..
    } = Alone::start(bin_dir, None)?;
    let cwd = tmp.path().display().to_string();
    let rows = vec![
        rt.block_on(sandbox::submit_round_trip(&client, sizes.cli_samples, &cwd))?,
        rt.block_on(sandbox::burst(&client, sizes.burst / 3, &cwd))?,
    ];
    let header = format!(
        "Sandbox set-up only, {}; agentd {} (release build); command: `cargo run --release -p agentd-bench -- --only-sandbox`. Medians.",
        procfs::machine(),
        env!("CARGO_PKG_VERSION"),
    );
    print!("{}", report::table(&rows, &header));
    Ok(rows.iter().all(report::Row::met))
}

/// Runs the hot-path figures alone against a fresh agentd (started with
/// `config`) and prints them; true when their targets were met.
/// The capped-output figure: a fresh agentd under `root/capped` with
/// `[output] max_bytes` = `sizes.capped_output.1`, stopped on return.
fn capped_output(
    rt: &tokio::runtime::Runtime,
    bin_dir: &Path,
    root: &Path,
    sizes: Sizes,
) -> anyhow::Result<report::Row> {
    std::fs::create_dir_all(root.join("capped"))?;
    let capped = agentd_side::Agentd::start_with_config(
        bin_dir,
        &root.join("capped"),
        Some(&format!(
            "[output]\nmax_bytes = {}\n",
            sizes.capped_output.1
        )),
    )?;
    let client = rt.block_on(capped.client())?;
    rt.block_on(figures::capped_output(&capped, &client, sizes))
}

/// An agentd of its own for an `--only-*` run: its temp dir, its config
/// (`\n` in the flag's text made a newline), a runtime and a client.
struct Alone {
    tmp: tempfile::TempDir,
    config: Option<String>,
    agentd: agentd_side::Agentd,
    rt: tokio::runtime::Runtime,
    client: Arc<agentd_proto::Client>,
}

impl Alone {
    /// Starts `bin_dir/agentd` with `config` (`--agentd-config`) in a new
    /// temp dir and connects to it.
    ///
    /// Errors: the temp dir, the daemon or the connection.
    fn start(bin_dir: &Path, config: Option<&str>) -> anyhow::Result<Alone> {
        let tmp = tempfile::Builder::new().prefix("agentd-bench-").tempdir()?;
        std::fs::create_dir_all(tmp.path().join("agentd"))?;
        let config = config.map(|c| c.replace("\\n", "\n"));
        let agentd = agentd_side::Agentd::start_with_config(
            bin_dir,
            &tmp.path().join("agentd"),
            config.as_deref(),
        )?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = Arc::new(rt.block_on(agentd.client())?);
        Ok(Alone {
            tmp,
            config,
            agentd,
            rt,
            client,
        })
    }
}

fn only_hot_path(bin_dir: &Path, sizes: Sizes, config: Option<&str>) -> anyhow::Result<bool> {
    let Alone {
        tmp,
        config,
        agentd,
        rt,
        client,
    } = Alone::start(bin_dir, config)?;
    let mut rows = Vec::new();
    let step = |name: &str| eprintln!("agentd-bench: {name} ...");
    step("submit to notification");
    rows.push(rt.block_on(figures::latency_alone(&client, sizes.latency_samples * 4))?);
    step("pipelined burst");
    rows.push(rt.block_on(figures::burst(&client, sizes))?);
    step("steady load");
    rows.push(rt.block_on(steady::steady(
        &agentd,
        &client,
        10,
        sizes.steady,
        Some(10_000),
    ))?);
    step("big output");
    rows.push(rt.block_on(figures::big_output(&agentd, &client, sizes))?);
    step("capped output");
    drop(client);
    drop(agentd);
    rows.push(capped_output(&rt, bin_dir, tmp.path(), sizes)?);
    let header = format!(
        "Hot path only, {}; agentd {} (release build); config {:?}; command: `cargo run --release -p agentd-bench -- --only-hot-path`. Medians.",
        procfs::machine(),
        env!("CARGO_PKG_VERSION"),
        config.unwrap_or_default(),
    );
    print!("{}", report::table(&rows, &header));
    Ok(rows.iter().all(report::Row::met))
}

/// Runs the steady load alone (after filling the table to the default
/// `max_finished_jobs`) and prints its row; true when its target was met.
fn only_steady(bin_dir: &Path, sizes: Sizes, config: Option<&str>) -> anyhow::Result<bool> {
    let Alone {
        tmp: _tmp,
        config,
        agentd,
        rt,
        client,
    } = Alone::start(bin_dir, config)?;
    eprintln!("agentd-bench: steady load ...");
    let row = rt.block_on(steady::steady(
        &agentd,
        &client,
        10,
        sizes.steady,
        Some(10_000),
    ))?;
    let header = format!(
        "Steady load only, {}; agentd {} (release build); config {:?}; command: `cargo run --release -p agentd-bench -- --only-steady`.",
        procfs::machine(),
        env!("CARGO_PKG_VERSION"),
        config.unwrap_or_default(),
    );
    print!("{}", report::table(std::slice::from_ref(&row), &header));
    Ok(row.met())
}

/// Runs the long-history figures alone and prints them; true when their
/// targets were met.
fn only_history(bin_dir: &Path, sizes: history::HistorySizes) -> anyhow::Result<bool> {
    let tmp = tempfile::Builder::new().prefix("agentd-bench-").tempdir()?;
    let rows = history::figures(bin_dir, &tmp.path().join("history"), sizes)?;
    let header = format!(
        "Long history only, {}; agentd {} (release build); command: `cargo run --release -p agentd-bench -- --only-history{}`. Medians.",
        procfs::machine(),
        env!("CARGO_PKG_VERSION"),
        if sizes.jobs < history::HistorySizes::FULL.jobs {
            " --quick"
        } else {
            ""
        },
    );
    print!("{}", report::table(&rows, &header));
    Ok(rows.iter().all(report::Row::met))
}

/// Runs the dependency-chain figure alone against a fresh agentd and
/// prints it; true when its target was met.
fn only_queue(bin_dir: &Path, sizes: Sizes) -> anyhow::Result<bool> {
    let Alone {
        tmp,
        agentd: _agentd,
        rt,
        client,
        ..
    } = Alone::start(bin_dir, None)?;
    let cwd = tmp.path().display().to_string();
    let rows = vec![rt.block_on(queue::chain(&client, sizes.chain, &cwd))?];
    let header = format!(
        "Dependency chain only, {}; agentd {} (release build); command: `cargo run --release -p agentd-bench -- --only-queue`. Wall time.",
        procfs::machine(),
        env!("CARGO_PKG_VERSION"),
    );
    print!("{}", report::table(&rows, &header));
    Ok(rows.iter().all(report::Row::met))
}

/// Slurm figures' samples: each job takes about a second.
fn slurm_samples(sizes: Sizes) -> usize {
    (sizes.latency_samples / 2).max(4)
}

/// Runs the Slurm figures alone and prints them; true when their targets
/// were met (or Slurm is not here: skipped, said on stderr).
fn only_slurm(bin_dir: &Path, sizes: Sizes) -> anyhow::Result<bool> {
    let rows = slurm::figures(bin_dir, slurm_samples(sizes), sizes.idle * 3)?;
    let header = format!(
        "Slurm executor only, {}; agentd {} (release build) and a one-node Slurm of tests/slurm/cluster.sh; command: `cargo run --release -p agentd-bench -- --only-slurm`. Medians.",
        procfs::machine(),
        env!("CARGO_PKG_VERSION"),
    );
    if !rows.is_empty() {
        print!("{}", report::table(&rows, &header));
    }
    Ok(rows.iter().all(report::Row::met))
}

/// Runs every figure; true when every target was met.
fn run(args: &Args) -> anyhow::Result<bool> {
    if cfg!(debug_assertions) {
        eprintln!("agentd-bench: a debug build measures debug binaries; use --release for numbers");
    }
    let mut sizes = if args.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };
    if let Some(secs) = args.steady_secs {
        sizes.steady = std::time::Duration::from_secs(secs);
    }
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir
            .canonicalize()
            .with_context(|| format!("--bin-dir {}", dir.display()))?,
        None => build_binaries()?,
    };
    if args.only_sandbox {
        return only_sandbox(&bin_dir, sizes);
    }
    if args.only_hot_path {
        return only_hot_path(&bin_dir, sizes, args.agentd_config.as_deref());
    }
    if args.only_queue {
        return only_queue(&bin_dir, sizes);
    }
    if args.only_steady {
        return only_steady(&bin_dir, sizes, args.agentd_config.as_deref());
    }
    let history_sizes = if args.quick {
        history::HistorySizes::QUICK
    } else {
        history::HistorySizes::FULL
    };
    if args.only_history {
        return only_history(&bin_dir, history_sizes);
    }
    if args.only_slurm {
        return only_slurm(&bin_dir, sizes);
    }
    let pueue_root = args
        .pueue_root
        .clone()
        .unwrap_or_else(|| workspace().join("target/bench-cache/pueue"));
    pueue_side::ensure_installed(&cargo(), &pueue_root)?;

    let tmp = tempfile::Builder::new().prefix("agentd-bench-").tempdir()?;
    std::fs::create_dir_all(tmp.path().join("agentd"))?;
    let agentd = agentd_side::Agentd::start(&bin_dir, &tmp.path().join("agentd"))?;
    let pueue = pueue_side::Pueue::start(&pueue_root, &tmp.path().join("pueue"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = Arc::new(rt.block_on(agentd.client())?);

    let mut rows = Vec::new();
    let step = |name: &str| eprintln!("agentd-bench: {name} ...");
    step("filling both tables");
    rt.block_on(figures::fill(&client, &pueue, sizes))?;
    step("submit round trips");
    rows.push(figures::submit_round_trip(&agentd, &pueue, sizes)?);
    step("submit to notification");
    rows.push(rt.block_on(figures::notification_latency(&client, &pueue, sizes))?);
    pueue.wait_all_done()?;
    step("listing");
    rows.push(figures::list_cli(&agentd, &pueue, sizes)?);
    let jobs = rt
        .block_on(client.call::<agentd_proto::methods::DaemonInfo>(&Default::default()))?
        .jobs
        .total as usize;
    rows.push(figures::rss(&agentd, &pueue, jobs)?);
    step("idle CPU");
    rows.push(figures::idle_cpu(&agentd, &pueue, sizes, jobs)?);
    drop(pueue);
    step("pipelined burst");
    rows.push(rt.block_on(figures::burst(&client, sizes))?);
    rows.push(rt.block_on(figures::list_all(&agentd, &client, sizes))?);
    step("steady load");
    rows.push(rt.block_on(steady::steady(
        &agentd,
        &client,
        10,
        sizes.steady,
        (!args.quick).then_some(10_000),
    ))?);
    step("sandbox set-up");
    let cwd = tmp.path().display().to_string();
    rows.push(rt.block_on(sandbox::submit_round_trip(&client, sizes.cli_samples, &cwd))?);
    rows.push(rt.block_on(sandbox::burst(&client, sizes.burst / 3, &cwd))?);
    step("dependency chain");
    rows.push(rt.block_on(queue::chain(&client, sizes.chain, &cwd))?);
    step("agent integrations");
    rows.push(integrations::hook_nothing_pending(
        &agentd,
        sizes.cli_samples,
    )?);
    rows.push(integrations::mcp_run_round_trip(
        &agentd,
        &rt,
        &client,
        sizes.cli_samples,
    )?);
    step("big output");
    rows.push(rt.block_on(figures::big_output(&agentd, &client, sizes))?);
    step("Slurm executor");
    rows.extend(slurm::figures(
        &bin_dir,
        slurm_samples(sizes),
        sizes.idle * 3,
    )?);
    step("capped output");
    drop(client);
    drop(agentd);
    rows.push(capped_output(&rt, &bin_dir, tmp.path(), sizes)?);
    step("long history");
    rows.extend(history::figures(
        &bin_dir,
        &tmp.path().join("history"),
        history_sizes,
    )?);

    let date = time::OffsetDateTime::now_utc().date();
    let header = format!(
        "{} run of {date} on {}; agentd {} (release build) against pueue {}; command: `cargo run --release -p agentd-bench{}`. Medians.",
        if args.quick { "Quick" } else { "Full" },
        procfs::machine(),
        env!("CARGO_PKG_VERSION"),
        pueue_side::VERSION,
        if args.quick { " -- --quick" } else { "" },
    );
    let table = report::table(&rows, &header);
    print!("{table}");
    if !args.quick || args.out.is_some() {
        let doc = args
            .out
            .clone()
            .unwrap_or_else(|| workspace().join("docs/benchmarks.md"));
        report::update_doc(&doc, &table)?;
        eprintln!("agentd-bench: wrote {}", doc.display());
    }
    Ok(rows.iter().all(report::Row::met))
}
