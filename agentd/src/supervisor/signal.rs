//! Signal names as the protocol writes them: `job.kill` takes `TERM`,
//! `INT`, `HUP` or `KILL` (with or without `SIG`, any case); a job ended by a
//! signal reports its name, e.g. `"SIGKILL"`.

use rustix::process::Signal;

/// The signals `job.kill` accepts, by wire name.
const KILLABLE: [(&str, Signal); 4] = [
    ("TERM", Signal::TERM),
    ("INT", Signal::INT),
    ("HUP", Signal::HUP),
    ("KILL", Signal::KILL),
];

/// Parses a `job.kill` signal name; `None` for any other name.
pub fn parse(name: &str) -> Option<Signal> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    KILLABLE.iter().find(|(n, _)| *n == bare).map(|(_, s)| *s)
}

/// The names `job.kill` accepts, for error messages.
pub fn accepted() -> String {
    KILLABLE.map(|(n, _)| n).join(", ")
}

/// The conventional name of signal number `num` on Linux (`SIGTERM`), or
/// `SIG<num>` for numbers without one (real-time signals).
pub fn name(num: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(num - 1)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("SIG{num}"), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse("term"), Some(Signal::TERM));
        assert_eq!(parse("SIGKILL"), Some(Signal::KILL));
        assert_eq!(parse("USR1"), None);
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(15), "SIGTERM");
        assert_eq!(name(40), "SIG40");
    }
}
