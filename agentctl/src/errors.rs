//! Errors in people's words. agentd answers in the protocol's terms (a
//! JSON-RPC code, a message meant for any client, structured `data`);
//! agentctl turns each into one sentence saying what is wrong and what to
//! do next (`no job ffff (agentctl jobs --all lists them)`). This is the
//! one place that maps codes to words; docs/cli.md ("Errors") lists them.
//!
//! Scripts keep the codes: a command given `--json` prints a failure as
//! the protocol's error object on stderr instead ([`json`]).

use agentd_proto::{ClientError, RpcError, codes};
use serde_json::{Value, json};

/// Where job ids come from, added to every error about one.
const WHERE_IDS_ARE: &str = "agentctl jobs --all lists them";

/// The error as one line for people (without the `agentctl: ` prefix):
/// the causes joined by `: ` as anyhow's `{:#}` does, with agentd's error
/// reply said in words.
pub fn human(err: &anyhow::Error) -> String {
    err.chain()
        .map(|cause| match cause.downcast_ref::<ClientError>() {
            Some(e) => human_client(e),
            None => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// A client error in words: agentd's error replies by their code, the
/// others (cannot connect, connection lost) as they are.
pub fn human_client(err: &ClientError) -> String {
    match err {
        ClientError::Rpc(e) => say(e),
        other => other.to_string(),
    }
}

/// The error for `--json`: `{"error": {"code", "message", "data"}}` with
/// agentd's error object as the protocol sends it, or `code` null and the
/// human sentence for an error that did not come from agentd.
pub fn json(err: &anyhow::Error) -> String {
    let rpc = err
        .chain()
        .find_map(|cause| match cause.downcast_ref::<ClientError>() {
            Some(ClientError::Rpc(e)) => Some(e),
            _ => None,
        });
    let error = match rpc {
        Some(e) => json!({ "code": e.code, "message": e.message, "data": e.data }),
        None => json!({ "code": null, "message": human(err), "data": null }),
    };
    json!({ "error": error }).to_string()
}

/// True when the command line asked for `--json` output (on any
/// subcommand that has the flag), so a failure is printed as [`json`].
pub fn json_requested(matches: &clap::ArgMatches) -> bool {
    let mut m = matches;
    loop {
        if let Ok(Some(true)) = m.try_get_one::<bool>("json") {
            return true;
        }
        match m.subcommand() {
            Some((_, sub)) => m = sub,
            None => return false,
        }
    }
}

/// One of agentd's error replies in words.
fn say(e: &RpcError) -> String {
    let data = |key: &str| e.data.as_ref().and_then(|d| d.get(key));
    let text = |key: &str| data(key).and_then(Value::as_str);
    let message = |prefix: &str| {
        e.message
            .strip_prefix(prefix)
            .unwrap_or(&e.message)
            .to_string()
    };
    match e.code {
        codes::JOB_NOT_FOUND => match (text("id"), text("field")) {
            (Some(id), Some("after")) => {
                format!("--after {id}: no such job, so nothing was submitted ({WHERE_IDS_ARE})")
            }
            (Some(id), _) => format!("no job {id} ({WHERE_IDS_ARE})"),
            (None, _) => format!("{} ({WHERE_IDS_ARE})", e.message),
        },
        codes::AMBIGUOUS_ID => {
            let candidates: Vec<&str> = data("candidates")
                .and_then(Value::as_array)
                .map(|c| c.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match text("id") {
                Some(id) if !candidates.is_empty() => format!(
                    "{id} could be any of {}; give more of the id",
                    candidates.join(", ")
                ),
                _ => format!("{}; give more of the id", e.message),
            }
        }
        codes::INVALID_PARAMS => match (text("field"), text("id")) {
            (Some("id"), Some(id)) => format!(
                "{id} is not a job id: ids are hex, and a prefix needs 4 or more \
                 characters ({WHERE_IDS_ARE})"
            ),
            _ => message("Invalid params: "),
        },
        codes::SHUTTING_DOWN => {
            "agentd is shutting down; run this again once it is up (agentctl daemon status)".into()
        }
        codes::INTERNAL_ERROR => format!(
            "agentd failed: {} (its log says more: agentctl daemon log, or journalctl --user -u agentd)",
            message("Internal error: ")
        ),
        _ => e.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: i64, message: &str, data: Value) -> anyhow::Error {
        let mut e = RpcError::new(code, message);
        if !data.is_null() {
            e = e.with_data(data);
        }
        ClientError::Rpc(e).into()
    }

    #[test]
    fn protocol_errors_are_said_in_words() {
        let e = rpc(
            codes::JOB_NOT_FOUND,
            "no job with id \"ffff\"",
            json!({"id": "ffff"}),
        );
        assert_eq!(human(&e), "no job ffff (agentctl jobs --all lists them)");
        let e = rpc(
            codes::JOB_NOT_FOUND,
            "after: no job with id \"ffff\"",
            json!({"id": "ffff", "field": "after"}),
        );
        assert_eq!(
            human(&e),
            "--after ffff: no such job, so nothing was submitted (agentctl jobs --all lists them)"
        );
        let e = rpc(
            codes::INVALID_PARAMS,
            "Invalid params: job id \"zz\" is not …",
            json!({"field": "id", "id": "zz"}),
        );
        assert!(human(&e).starts_with("zz is not a job id: "));
        let e = rpc(
            codes::INVALID_PARAMS,
            "Invalid params: timeout_secs must be > 0",
            json!({"field": "timeout_secs"}),
        );
        assert_eq!(human(&e), "timeout_secs must be > 0");
        let e = rpc(
            codes::AMBIGUOUS_ID,
            "job id prefix \"0f6c\" is ambiguous: …",
            json!({"id": "0f6c", "candidates": ["0f6c2f4e", "0f6c91aa"]}),
        );
        assert_eq!(
            human(&e),
            "0f6c could be any of 0f6c2f4e, 0f6c91aa; give more of the id"
        );
        // Context around the reply stays.
        let e = e.context("waiting for 0f6c");
        assert!(human(&e).starts_with("waiting for 0f6c: 0f6c could be"));
    }

    #[test]
    fn json_keeps_the_protocol_code() {
        let e = rpc(
            codes::JOB_NOT_FOUND,
            "no job with id \"ffff\"",
            json!({"id": "ffff"}),
        );
        let v: Value = serde_json::from_str(&json(&e)).unwrap();
        assert_eq!(v["error"]["code"], codes::JOB_NOT_FOUND);
        assert_eq!(v["error"]["data"]["id"], "ffff");
        let v: Value = serde_json::from_str(&json(&anyhow::anyhow!("no agentd"))).unwrap();
        assert_eq!(v["error"]["code"], Value::Null);
        assert_eq!(v["error"]["message"], "no agentd");
    }
}
