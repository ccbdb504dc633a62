//! Linux signal names as the protocol writes them in `Job.signal` and
//! `Notification.signal` (`"SIGTERM"`), and their numbers.

/// Signals 1–31 in number order, without the `SIG` prefix.
const NAMES: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// The conventional name of signal number `num` (`15` → `"SIGTERM"`), or
/// `SIG<num>` for numbers without one (real-time signals).
pub fn name(num: i32) -> String {
    usize::try_from(num - 1)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("SIG{num}"), |n| format!("SIG{n}"))
}

/// The number of a signal named as [`name`] writes it (`"SIGTERM"` → 15,
/// `"SIG40"` → 40); the `SIG` prefix is optional. `None` for an unknown
/// name or a number outside 1–64.
pub fn number(name: &str) -> Option<u8> {
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    if let Some(i) = NAMES.iter().position(|&n| n == bare) {
        return Some(i as u8 + 1);
    }
    bare.parse::<u8>().ok().filter(|n| (1..=64).contains(n))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_numbers_round_trip() {
        for n in 1..=64 {
            assert_eq!(super::number(&super::name(n)), Some(n as u8));
        }
        assert_eq!(super::name(9), "SIGKILL");
        assert_eq!(super::name(40), "SIG40");
        assert_eq!(super::number("TERM"), Some(15));
        assert_eq!(super::number("SIGNOPE"), None);
    }
}
