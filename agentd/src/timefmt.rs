//! Timestamps as the protocol writes them: RFC 3339 in UTC with millisecond
//! precision, e.g. `2026-11-22T04:14:50.123Z`.

use time::OffsetDateTime;
use time::macros::format_description;

/// Formats a UTC time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("formatting a UTC time cannot fail")
}

/// Now, formatted.
pub fn now() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// Milliseconds between two timestamps written by [`rfc3339`]; `None` when
/// either does not parse.
pub fn millis_between(start: &str, end: &str) -> Option<u64> {
    use time::format_description::well_known::Rfc3339;
    let a = OffsetDateTime::parse(start, &Rfc3339).ok()?;
    let b = OffsetDateTime::parse(end, &Rfc3339).ok()?;
    u64::try_from((b - a).whole_milliseconds()).ok()
}

/// The timestamp `ms` milliseconds before `ts` (both as [`rfc3339`]
/// writes them); `None` when `ts` does not parse.
pub fn minus_millis(ts: &str, ms: u64) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    let t = OffsetDateTime::parse(ts, &Rfc3339).ok()?;
    Some(rfc3339(t - time::Duration::milliseconds(ms as i64)))
}

/// The wall-clock time a process started, from its `starttime` (clock
/// ticks after boot, field 22 of `/proc/<pid>/stat`) and the boot time
/// (`btime` in `/proc/stat`); `None` when `/proc/stat` cannot be read.
pub fn from_boot_ticks(ticks: u64) -> Option<String> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let ms = btime as i128 * 1000 + (ticks as i128 * 1000 / hz as i128);
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok()?;
    Some(rfc3339(t))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_milliseconds() {
        let a = "2026-11-22T04:14:50.100Z";
        let b = "2026-11-22T04:14:51.350Z";
        assert_eq!(super::millis_between(a, b), Some(1250));
        assert!(super::now().ends_with('Z'));
        assert_eq!(
            super::minus_millis(b, 1250).as_deref(),
            Some("2026-11-22T04:14:50.100Z")
        );
        assert!(super::from_boot_ticks(0).is_some_and(|t| t < super::now()));
    }
}
