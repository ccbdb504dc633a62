//! The job CLI's `drain` and `notifications` on a session an agent owns.
//! An agent session's results are owed to its model: what `drain` takes
//! the model never sees. So on a session that has an agent transcript both
//! commands warn on stderr, and `drain` refuses without `--force`.

use super::session::sessions_dir;

/// The session the job CLI uses when none is given (agentd's default).
pub const JOB_CLI_DEFAULT: &str = "default";

/// True when `session` has an agent transcript on disk.
pub fn has_transcript(session: &str) -> bool {
    sessions_dir().is_ok_and(|d| d.join(format!("{session}.jsonl")).is_file())
}

/// Checks a `drain` (`consumes`) or `notifications` (`!consumes`) of
/// `session` (None: the job CLI's default) before it runs; warns on stderr
/// when the session belongs to an agent.
///
/// Errors: `drain` of an agent's session without `force`; the message says
/// what to do instead.
pub fn check_taking(session: Option<&str>, consumes: bool, force: bool) -> anyhow::Result<()> {
    let name = session.unwrap_or(JOB_CLI_DEFAULT);
    if !has_transcript(name) {
        return Ok(());
    }
    if !consumes {
        eprintln!(
            "agentctl: note: session {name} belongs to an agent (it has a transcript); these \
             results are still owed to its model, and `agentctl drain` would take them from it"
        );
        return Ok(());
    }
    if !force {
        anyhow::bail!(
            "session {name} belongs to an agent (it has a transcript): what drain takes, the \
             model will never see. Look without taking with `agentctl notifications --session \
             {name}`, or take them anyway with `agentctl drain --session {name} --force`"
        );
    }
    eprintln!(
        "agentctl: warning: session {name} belongs to an agent; the model will not see the \
         results drained here"
    );
    Ok(())
}
