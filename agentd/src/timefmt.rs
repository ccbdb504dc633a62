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

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_milliseconds() {
        let a = "2026-11-22T04:14:50.100Z";
        let b = "2026-11-22T04:14:51.350Z";
        assert_eq!(super::millis_between(a, b), Some(1250));
        assert!(super::now().ends_with('Z'));
    }
}
