//! The JSON-RPC 2.0 envelope: request ids, requests (and notifications,
//! which are requests without an id), responses and error objects.
//!
//! Incoming requests are checked by [`Request::from_value`], which applies
//! the rules of JSON-RPC 2.0 §4 and §5 and says which id (if any could be
//! read) an error response must carry.

use crate::codes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};
use std::fmt;

/// A request id: a string, a number or null (JSON-RPC 2.0 §4). Numbers are
/// kept as written so a reply echoes exactly what the client sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// A numeric id, echoed verbatim.
    Number(Number),
    /// A string id.
    String(String),
    /// `null`: used in error responses when the request's id could not be
    /// determined (parse error, invalid request).
    Null,
}

impl From<u64> for Id {
    fn from(n: u64) -> Self {
        Id::Number(n.into())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
            Id::Null => f.write_str("null"),
        }
    }
}

/// A request or, when `id` is `None`, a notification (no reply is sent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The id echoed in the response; absent for a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    /// The method name, e.g. `job.submit`.
    pub method: String,
    /// The parameters: an object for every agentd method; absent means `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl Request {
    /// A request with an id, as a client sends it.
    pub fn new(id: Id, method: &str, params: Value) -> Self {
        Request {
            jsonrpc: "2.0".into(),
            id: Some(id),
            method: method.into(),
            params: Some(params),
        }
    }

    /// Checks one request object as JSON-RPC 2.0 §4 requires.
    ///
    /// Errors: an `Invalid Request` (-32600) error naming what is wrong,
    /// paired with the id to answer with: the request's id when it is a
    /// valid id, else [`Id::Null`]. A notification that is otherwise invalid
    /// still gets an error reply, as the specification's examples show.
    pub fn from_value(value: Value) -> Result<Request, (Id, RpcError)> {
        let Value::Object(mut obj) = value else {
            return Err((
                Id::Null,
                RpcError::invalid_request("a request must be a JSON object"),
            ));
        };
        let id = match obj.remove("id") {
            None => None,
            Some(Value::Null) => Some(Id::Null),
            Some(Value::String(s)) => Some(Id::String(s)),
            Some(Value::Number(n)) => Some(Id::Number(n)),
            Some(_) => {
                return Err((
                    Id::Null,
                    RpcError::invalid_request("\"id\" must be a string, a number or null"),
                ));
            }
        };
        let reply_id = id.clone().unwrap_or(Id::Null);
        let fail = |msg: &str| Err((reply_id.clone(), RpcError::invalid_request(msg)));
        match obj.remove("jsonrpc") {
            Some(Value::String(v)) if v == "2.0" => {}
            _ => return fail("\"jsonrpc\" must be exactly \"2.0\""),
        }
        let method = match obj.remove("method") {
            Some(Value::String(m)) => m,
            Some(_) => return fail("\"method\" must be a string"),
            None => return fail("\"method\" is missing"),
        };
        let params = match obj.remove("params") {
            None => None,
            Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
            Some(_) => return fail("\"params\" must be an object or an array"),
        };
        if let Some(extra) = obj.keys().next() {
            return fail(&format!("unknown member {extra:?} in the request object"));
        }
        Ok(Request {
            jsonrpc: "2.0".into(),
            id,
            method,
            params,
        })
    }

    /// True when the request is a notification (sent without an id).
    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }
}

/// A response: exactly one of `result` and `error` is present.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The id of the request this answers ([`Id::Null`] when unknown).
    pub id: Id,
    /// The result on success, as JSON text: serialised once by the daemon
    /// and parsed once, into the method's result type, by the client (a
    /// `Value` tree in between made a 10,000-job `job.list` several times
    /// slower; docs/benchmarks.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    /// The error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// A success response.
    pub fn ok(id: Id, result: Box<RawValue>) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// An error response.
    pub fn err(id: Id, error: RpcError) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

/// A JSON-RPC error object: `code` from [`crate::codes`], `message` one
/// readable sentence, `data` optional details (for example
/// `{"field": "cwd"}` or the candidate ids of an ambiguous prefix).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// The error code.
    pub code: i64,
    /// One readable sentence.
    pub message: String,
    /// Optional structured details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with a code and a message and no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// -32700: the line is not valid JSON.
    pub fn parse_error(detail: impl fmt::Display) -> Self {
        Self::new(codes::PARSE_ERROR, format!("Parse error: {detail}"))
    }

    /// -32600 with a reason.
    pub fn invalid_request(reason: impl fmt::Display) -> Self {
        Self::new(codes::INVALID_REQUEST, format!("Invalid Request: {reason}"))
    }

    /// -32601 naming the method.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            codes::METHOD_NOT_FOUND,
            format!("Method not found: {method:?}"),
        )
    }

    /// -32602 naming what is wrong; `field` goes into `data.field` when known.
    pub fn invalid_params(reason: impl fmt::Display, field: Option<&str>) -> Self {
        let err = Self::new(codes::INVALID_PARAMS, format!("Invalid params: {reason}"));
        match field {
            Some(f) => err.with_data(Value::Object(Map::from_iter([(
                "field".to_string(),
                Value::String(f.to_string()),
            )]))),
            None => err,
        }
    }

    /// -32603 with a description of what failed.
    pub fn internal(reason: impl fmt::Display) -> Self {
        Self::new(codes::INTERNAL_ERROR, format!("Internal error: {reason}"))
    }
}

/// The answer to a line that is not UTF-8 but, decoded lossily, is one
/// valid request object: its id and -32602 naming the strings that held
/// invalid bytes (`params.command is not valid UTF-8`, `data.field`
/// `command`), or -32600 when the method or id held them (id null if the
/// id did). `Some(None)` for a notification: no reply. `None` when the line
/// is UTF-8 or not such a request, so it stays a parse error (-32700).
pub fn invalid_utf8_request(line: &[u8]) -> Option<Option<Response>> {
    if std::str::from_utf8(line).is_ok() {
        return None;
    }
    let lossy = String::from_utf8_lossy(line);
    let value: Value = serde_json::from_str(&lossy).ok()?;
    let mut bad = Vec::new();
    replaced_strings(&value, String::new(), &mut bad);
    let request = Request::from_value(value).ok()?;
    if bad.is_empty() {
        return None;
    }
    let reply = |id: Id, err: RpcError| request.id.as_ref().map(|_| Response::err(id, err));
    let names = bad.join(", ");
    if bad
        .iter()
        .all(|p| p.starts_with("params.") || p.starts_with("params["))
    {
        // `params.env.A` is in field `env`; by-position params have none.
        let field = bad[0]
            .strip_prefix("params.")
            .map(|rest| top_field(rest).to_string());
        let err = RpcError::invalid_params(format!("{names} is not valid UTF-8"), field.as_deref());
        Some(reply(request.id.clone().unwrap_or(Id::Null), err))
    } else {
        // The method or the id itself is damaged: the id cannot be trusted.
        let id = if bad.iter().any(|p| p == "id") {
            Id::Null
        } else {
            request.id.clone().unwrap_or(Id::Null)
        };
        let err = RpcError::invalid_request(format!("{names} is not valid UTF-8"));
        Some(Some(Response::err(id, err)))
    }
}

/// Collects the paths (`params.command`, `params.env.A`) of the strings
/// and keys holding U+FFFD, which lossy decoding put where invalid bytes
/// were.
fn replaced_strings(value: &Value, path: String, out: &mut Vec<String>) {
    const MARK: char = char::REPLACEMENT_CHARACTER;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains(MARK) => out.push(path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                replaced_strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains(MARK) {
                    out.push(join(key));
                } else {
                    replaced_strings(item, join(key), out);
                }
            }
        }
        _ => {}
    }
}

/// Decodes a request's params into the method's params type; absent (or
/// `null`) params read as `{}`.
///
/// Errors: -32602 naming the field in the message and in `data.field`:
/// params given as an array (by position), a missing or mistyped field, an
/// unknown field.
pub fn decode_params<P: serde::de::DeserializeOwned>(params: Option<Value>) -> Result<P, RpcError> {
    let value = match params {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Array(_)) => {
            return Err(RpcError::invalid_params(
                "params must be an object (by-name), not an array",
                None,
            ));
        }
        Some(v) => v,
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing or unknown field is reported at the object itself
        // (path "."), with the field's name back-quoted in serde's message.
        let (field, msg) = match path.as_str() {
            "." | "" => (field_of(&inner), inner),
            _ => (
                Some(top_field(&path).to_string()),
                format!("{path}: {inner}"),
            ),
        };
        RpcError::invalid_params(&msg, field.as_deref())
    })
}

/// Picks the field name out of serde's messages about the object itself
/// (`missing field `x``, `unknown field `x``), which name the field first.
fn field_of(msg: &str) -> Option<String> {
    if !(msg.starts_with("missing field") || msg.starts_with("unknown field")) {
        return None;
    }
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

/// The params field a path starts in: `env` of `env.A`, `states` of
/// `states[0]`.
fn top_field(path: &str) -> &str {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_checks_follow_the_spec() {
        let ok = Request::from_value(json!({"jsonrpc":"2.0","method":"a","id":1})).unwrap();
        assert_eq!(ok.id, Some(Id::from(1)));
        let note = Request::from_value(json!({"jsonrpc":"2.0","method":"a"})).unwrap();
        assert!(note.is_notification());
        let (id, err) =
            Request::from_value(json!({"jsonrpc":"2.0","method":1,"params":"bar"})).unwrap_err();
        assert_eq!((id, err.code), (Id::Null, codes::INVALID_REQUEST));
        let (id, err) =
            Request::from_value(json!({"jsonrpc":"1.0","method":"a","id":"x"})).unwrap_err();
        assert_eq!(
            (id, err.code),
            (Id::String("x".into()), codes::INVALID_REQUEST)
        );
        let (id, _) = Request::from_value(json!(1)).unwrap_err();
        assert_eq!(id, Id::Null);
    }

    #[test]
    fn params_errors_name_the_field_not_the_value() {
        use crate::methods::*;
        fn field_and_message<P: serde::de::DeserializeOwned + fmt::Debug>(
            params: Value,
        ) -> (Value, String) {
            let e = decode_params::<P>(Some(params)).unwrap_err();
            assert_eq!(e.code, codes::INVALID_PARAMS);
            (e.data.unwrap()["field"].clone(), e.message)
        }
        let cases: Vec<(&str, (Value, String))> = vec![
            (
                "tail_bytes",
                field_and_message::<SubmitParams>(json!({"command":"true","tail_bytes":-1})),
            ),
            (
                "timeout_secs",
                field_and_message::<SubmitParams>(json!({"command":"true","timeout_secs":"5"})),
            ),
            (
                "env",
                field_and_message::<SubmitParams>(json!({"command":"true","env":{"A":5}})),
            ),
            (
                "command",
                field_and_message::<SubmitParams>(json!({"command":7})),
            ),
            ("command", field_and_message::<SubmitParams>(json!({}))),
            (
                "comand",
                field_and_message::<SubmitParams>(json!({"comand":"x"})),
            ),
            (
                "offset",
                field_and_message::<OutputParams>(json!({"id":"abcd","offset":-1})),
            ),
            (
                "wait_ms",
                field_and_message::<OutputParams>(json!({"id":"abcd","wait_ms":-1})),
            ),
            (
                "limit",
                field_and_message::<ListParams>(json!({"limit":-1})),
            ),
            (
                "states",
                field_and_message::<ListParams>(json!({"states":["bogus"]})),
            ),
            ("max", field_and_message::<PeekParams>(json!({"max":-1}))),
            (
                "up_to_seq",
                field_and_message::<AckParams>(json!({"up_to_seq":-1})),
            ),
            (
                "timeout_ms",
                field_and_message::<NotificationsWaitParams>(json!({"timeout_ms":-1})),
            ),
            (
                "jobs",
                field_and_message::<ShutdownParams>(json!({"jobs":"maybe"})),
            ),
        ];
        for (field, (got, message)) in cases {
            assert_eq!(got, json!(field), "{message}");
            assert!(message.contains(field), "{message:?} names {field}");
        }
    }

    #[test]
    fn invalid_utf8_is_named_by_its_path() {
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"m\",\"params\":{\"env\":{\"A\":\"\xff\"},\"c\":\"\xfe\"}}";
        let reply = invalid_utf8_request(line).unwrap().unwrap();
        assert_eq!(reply.id, Id::from(7));
        let err = reply.error.unwrap();
        assert_eq!(err.code, codes::INVALID_PARAMS);
        assert!(
            err.message
                .contains("params.c, params.env.A is not valid UTF-8"),
            "{}",
            err.message
        );
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"m\"}";
        let reply = invalid_utf8_request(line).unwrap().unwrap();
        assert_eq!(
            (reply.id, reply.error.unwrap().code),
            (Id::Null, codes::INVALID_REQUEST)
        );
        assert!(
            invalid_utf8_request(b"{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[\"\xff\"]}")
                .unwrap()
                .is_none()
        );
        assert!(invalid_utf8_request(b"{\"a\xff").is_none());
        assert!(invalid_utf8_request(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}").is_none());
    }

    #[test]
    fn response_serialises_one_of_result_and_error() {
        let ok = Response::ok(Id::from(3), RawValue::from_string("{}".into()).unwrap());
        let r = serde_json::to_value(ok).unwrap();
        assert_eq!(r, json!({"jsonrpc":"2.0","id":3,"result":{}}));
        let e = serde_json::to_value(Response::err(Id::Null, RpcError::parse_error("x"))).unwrap();
        assert_eq!(e["error"]["code"], json!(-32700));
        assert!(e.get("result").is_none());
    }
}
