//! `agentctl clean`: removes finished jobs in bulk (`job.prune`): by age,
//! keeping the newest N, by session; `--dry-run` only counts. Jobs whose
//! result is still pending (not yet taken by `drain` or an agent) stay.

use crate::{GlobalOpts, connect};
use agentd_proto::methods::{JobPrune, PruneParams};
use clap::Args;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl clean --older-than 7d
  agentctl clean --keep 100 --session review
  agentctl clean --dry-run";

/// Arguments of `agentctl clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Only jobs that finished longer ago than this: 90s, 30m, 12h, 7d, 2w
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<f64>,
    /// Keep the newest N finished jobs (of the session, with --session)
    #[arg(long, value_name = "N")]
    pub keep: Option<u64>,
    /// Only jobs of this session
    #[arg(long, short = 's', value_name = "NAME")]
    pub session: Option<String>,
    /// Say what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// A duration as `clean` takes it: a number with a unit `s`, `m`, `h`, `d`
/// or `w` (a bare number is seconds); in seconds.
///
/// Errors: anything else, in words.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?}; use s, m, h, d or w (as in 7d)"
            ));
        }
    };
    match num.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n * scale),
        _ => Err(format!(
            "{s:?} is not a duration such as 90s, 30m, 12h, 7d or 2w"
        )),
    }
}

/// Bytes for people: `812 B`, `3.1 KiB`, `4.0 MiB`, `1.2 GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Prunes and prints `removed N jobs (SIZE of output)`, or with
/// `--dry-run` `would remove …`.
///
/// Errors: no daemon; an invalid session name.
pub async fn run(global: &GlobalOpts, args: CleanArgs) -> anyhow::Result<ExitCode> {
    let client = connect::connect(&global.socket_path()).await?;
    let result = client
        .call::<JobPrune>(&PruneParams {
            older_than_secs: args.older_than,
            keep_last: args.keep,
            session: args.session,
            states: None,
            dry_run: Some(args.dry_run),
        })
        .await?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let jobs = if result.removed == 1 { "job" } else { "jobs" };
    println!(
        "{verb} {} finished {jobs} ({} of output)",
        result.removed,
        size(result.bytes_freed)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("7d"), Ok(604_800.0));
        assert_eq!(parse_duration("90"), Ok(90.0));
        assert_eq!(parse_duration("1.5h"), Ok(5400.0));
        assert!(parse_duration("7y").is_err());
        assert!(parse_duration("-1d").is_err());
        assert_eq!(size(3 * 1024 * 1024 + 100_000), "3.1 MiB");
    }
}
