//! Decoding and checking params. Every error is -32602 and names the field
//! in its message and in `error.data.field`.

use agentd_proto::RpcError;

/// Longest session name, in characters (docs/protocol.md: 1–128 of
/// `[A-Za-z0-9._-]`).
pub const MAX_SESSION_LEN: usize = 128;
/// Longest timeout or wait accepted, in seconds: 30 days. Longer ones are
/// refused as absurd rather than silently capped.
pub const MAX_TIMEOUT_SECS: f64 = 30.0 * 24.0 * 3600.0;

/// Decodes a params object; absent params read as `{}`. Lives in proto
/// (so the fuzz target and other servers share it); see
/// [`agentd_proto::message::decode_params`].
pub use agentd_proto::message::decode_params as decode;

/// True for a valid session or group name: 1–128 chars of
/// `[A-Za-z0-9._-]`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SESSION_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The session name, `"default"` when absent.
///
/// Errors: empty, longer than 128 chars, or a char outside
/// `[A-Za-z0-9._-]`.
pub fn session(s: Option<String>) -> Result<String, RpcError> {
    name("session", s)
}

/// The group name, `"default"` when absent; the same rules as a session
/// name.
///
/// Errors: as [`session`], naming `group`.
pub fn group(g: Option<String>) -> Result<String, RpcError> {
    name("group", g)
}

fn name(field: &str, s: Option<String>) -> Result<String, RpcError> {
    let s = s.unwrap_or_else(|| "default".to_string());
    if is_name(&s) {
        Ok(s)
    } else {
        Err(RpcError::invalid_params(
            format!("{field} {s:?} must be 1-{MAX_SESSION_LEN} characters of A-Z a-z 0-9 . _ -"),
            Some(field),
        ))
    }
}

/// A duration in seconds that must be finite, > 0 (or >= 0 when
/// `zero_ok`) and at most [`MAX_TIMEOUT_SECS`].
///
/// Errors: -32602 naming `field`.
pub fn seconds(field: &str, v: f64, zero_ok: bool) -> Result<f64, RpcError> {
    let low_ok = if zero_ok { v >= 0.0 } else { v > 0.0 };
    if v.is_finite() && low_ok && v <= MAX_TIMEOUT_SECS {
        Ok(v)
    } else {
        let bound = if zero_ok { ">= 0" } else { "> 0" };
        Err(RpcError::invalid_params(
            format!(
                "{field} must be a number of seconds {bound} and at most {MAX_TIMEOUT_SECS} (30 days), got {v}"
            ),
            Some(field),
        ))
    }
}

/// A wait in milliseconds that must be at most [`MAX_TIMEOUT_SECS`].
///
/// Errors: -32602 naming `field`.
pub fn millis(field: &str, v: u64) -> Result<std::time::Duration, RpcError> {
    let max = MAX_TIMEOUT_SECS as u64 * 1000;
    if v <= max {
        Ok(std::time::Duration::from_millis(v))
    } else {
        Err(RpcError::invalid_params(
            format!("{field} must be a number of milliseconds at most {max} (30 days), got {v}"),
            Some(field),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::methods::SubmitParams;
    use serde_json::json;

    #[test]
    fn errors_name_the_field() {
        let e = decode::<SubmitParams>(Some(json!({"comand": "x"}))).unwrap_err();
        assert_eq!(e.data, Some(json!({"field": "comand"})));
        let e = decode::<SubmitParams>(Some(json!({}))).unwrap_err();
        assert_eq!(e.data, Some(json!({"field": "command"})));
        assert!(decode::<SubmitParams>(Some(json!(["x"]))).is_err());
    }

    #[test]
    fn session_names() {
        assert_eq!(session(None).unwrap(), "default");
        assert!(session(Some("a.b_c-1".into())).is_ok());
        assert!(session(Some("".into())).is_err());
        assert!(session(Some("a b".into())).is_err());
        assert!(session(Some("x".repeat(129))).is_err());
    }
}
