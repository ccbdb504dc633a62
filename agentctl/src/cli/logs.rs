//! `agentctl logs`: a job's output (stdout and stderr interleaved) via
//! `job.output`, written to stdout as it comes.
//!
//! `--tail N` shows the last N lines: it asks for a generous byte tail and
//! reaches further back until N lines are in hand or the output's start.
//! `-f` follows with `job.output`'s `wait_ms` long-poll (no sleeping loop)
//! and exits when the job has finished and all its output is written.
//! When agentd goes away meanwhile, `-f` reconnects to the next agentd
//! ([`super::reconnect`]) and goes on from the offset it had reached, so no
//! byte is shown twice or missed.

use super::reconnect::Reconnecting;
use crate::GlobalOpts;
use agentd_proto::methods::{IdParams, JobGet, JobOutput, OutputParams, OutputResult};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  agentctl logs 1a2b3c4d
  agentctl logs --tail 20 1a2b
  agentctl logs -f $(agentctl run -- make -j8)";

/// Largest chunk asked for at once: the protocol's 4 MiB.
const CHUNK: u64 = 4 * 1024 * 1024;
/// Bytes asked for first per line wanted by `--tail` (at least 64 KiB).
const BYTES_PER_LINE: u64 = 256;
/// How long one follow request waits for new output, in ms; the loop then
/// asks again, so this only bounds one request.
const FOLLOW_WAIT_MS: u64 = 60_000;

/// Arguments of `agentctl logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Job id (full, or a unique prefix of 4+ hex characters)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Only the last N lines
    #[arg(long, short = 'n', value_name = "N")]
    pub tail: Option<u64>,
    /// Keep printing output as it comes until the job ends
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// Prints the output.
///
/// Errors: no daemon; an unknown or ambiguous id; writing stdout failed;
/// agentd went away and did not come back within 30 s.
pub async fn run(global: &GlobalOpts, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let mut client = Reconnecting::connect(global.socket_path()).await?;
    // Resolve the prefix once, so the follow loop asks by full id.
    let id = client.call::<JobGet>(&IdParams { id: args.id }).await?.id;
    let mut out = std::io::stdout().lock();
    let mut offset = 0;
    if let Some(n) = args.tail {
        let (text, end) = tail_lines(&mut client, &id, n).await?;
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        offset = end;
    }
    if args.follow {
        follow(&mut client, &id, offset, &mut out).await?;
    } else {
        copy_to_end(&mut client, &id, offset, &mut out).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the job's output from `offset` to `out` as it comes, with
/// `job.output`'s `wait_ms` long-poll (no sleeping loop), until the job has
/// finished and all its output is written; returns the offset reached.
/// Shared by `logs -f` and `run --wait`. When agentd goes away meanwhile,
/// `client` reaches the next one and the loop goes on from the same offset.
///
/// Errors: the daemon's; writing `out` failed; agentd did not come back.
pub async fn follow(
    client: &mut Reconnecting,
    id: &str,
    mut offset: u64,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    loop {
        let chunk = client
            .call::<JobOutput>(&OutputParams {
                id: id.to_string(),
                offset: Some(offset),
                limit: Some(CHUNK),
                tail: None,
                wait_ms: Some(FOLLOW_WAIT_MS),
            })
            .await?;
        say_dropped(offset, &chunk);
        out.write_all(chunk.data.as_bytes())?;
        out.flush()?;
        offset = chunk.next_offset;
        if chunk.complete {
            return Ok(offset);
        }
    }
}

/// Writes the output written so far, from `offset` to its current end.
///
/// Errors: the daemon's; writing `out` failed.
async fn copy_to_end(
    client: &mut Reconnecting,
    id: &str,
    mut offset: u64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    loop {
        let chunk = client
            .call::<JobOutput>(&OutputParams {
                id: id.to_string(),
                offset: Some(offset),
                limit: Some(CHUNK),
                tail: None,
                wait_ms: None,
            })
            .await?;
        say_dropped(offset, &chunk);
        out.write_all(chunk.data.as_bytes())?;
        out.flush()?;
        offset = chunk.next_offset;
        if chunk.data.is_empty() || chunk.next_offset >= chunk.total_bytes {
            return Ok(());
        }
    }
}

/// Says on stderr that the output cap dropped bytes where a read asked for
/// `offset` and got bytes from further on.
fn say_dropped(offset: u64, chunk: &OutputResult) {
    if chunk.offset > offset {
        eprintln!(
            "agentctl: [{} bytes of output dropped here: the job wrote more than agentd's [output] max_bytes]",
            chunk.offset - offset
        );
    }
}

/// The last `n` lines of the job's output and the offset just past them.
/// A final line without a newline counts as a line.
///
/// Errors: the daemon's.
async fn tail_lines(client: &mut Reconnecting, id: &str, n: u64) -> anyhow::Result<(String, u64)> {
    let first = (n.saturating_mul(BYTES_PER_LINE)).clamp(64 * 1024, CHUNK);
    let OutputResult {
        data: mut text,
        offset: mut start,
        next_offset: end,
        dropped,
        ..
    } = client
        .call::<JobOutput>(&OutputParams {
            id: id.to_string(),
            offset: None,
            limit: None,
            tail: Some(first),
            wait_ms: None,
        })
        .await?;
    loop {
        if let Some(cut) = last_lines_start(&text, n) {
            return Ok((text.split_off(cut), end));
        }
        // Nothing before the output's start, nor before the end of what
        // the output cap dropped (the kept head is not the tail).
        let floor = dropped.filter(|d| start >= d.to).map_or(0, |d| d.to);
        if start <= floor || dropped.is_some_and(|d| (d.from..d.to).contains(&start)) {
            return Ok((text, end));
        }
        let from = start.saturating_sub(CHUNK).max(floor);
        let earlier = client
            .call::<JobOutput>(&OutputParams {
                id: id.to_string(),
                offset: Some(from),
                limit: Some(start - from),
                tail: None,
                wait_ms: None,
            })
            .await?;
        text.insert_str(0, &earlier.data);
        start = from;
    }
}

/// Where the last `n` lines of `text` begin, or `None` when `text` holds
/// fewer than `n` complete lines after its first newline (the first line
/// may be cut, so it only counts once the text reaches the output's start).
fn last_lines_start(text: &str, n: u64) -> Option<usize> {
    if n == 0 {
        return Some(text.len());
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut newlines = body.rmatch_indices('\n');
    let mut found = None;
    for _ in 0..n {
        found = Some(newlines.next()?.0);
    }
    found.map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::last_lines_start;

    #[test]
    fn finds_the_last_lines() {
        let text = "cut\na\nb\nc\n";
        assert_eq!(&text[last_lines_start(text, 2).unwrap()..], "b\nc\n");
        assert_eq!(&text[last_lines_start(text, 3).unwrap()..], "a\nb\nc\n");
        // The first line may be the end of a longer one: not enough.
        assert_eq!(last_lines_start(text, 4), None);
        let text = "a\nb";
        assert_eq!(&text[last_lines_start(text, 1).unwrap()..], "b");
        assert_eq!(last_lines_start("x\n", 0), Some(2));
    }
}
