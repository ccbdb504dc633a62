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

/// The conventional name of signal number `num` (`SIGTERM`).
pub use agentd_proto::signal::name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse("term"), Some(Signal::TERM));
        assert_eq!(parse("SIGKILL"), Some(Signal::KILL));
        assert_eq!(parse("USR1"), None);
    }
}
