//! The wire protocol as a client in another language sees it: raw lines
//! over the Unix socket, JSON-RPC 2.0's own examples (section 7 of the
//! specification), batches, notifications, the line limit, and many
//! requests in flight on one connection.

use agentd_tests::TestEnv;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    async fn connect(env: &TestEnv) -> Raw {
        let (r, w) = UnixStream::connect(&env.socket).await.unwrap().into_split();
        Raw {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    async fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.unwrap();
        self.writer.write_all(b"\n").await.unwrap();
    }

    async fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).await.unwrap();
        (n > 0).then(|| serde_json::from_str(&line).expect("every reply line is JSON"))
    }

    async fn call(&mut self, line: &str) -> Value {
        self.send(line).await;
        self.recv().await.expect("a reply")
    }
}

fn error_code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {v}"))
}

#[tokio::test]
async fn the_json_rpc_specification_examples_get_the_specified_replies() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let mut c = Raw::connect(&env).await;

    // Non-existent method.
    let r = c
        .call(r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#)
        .await;
    assert_eq!((error_code(&r), &r["id"]), (-32601, &json!("1")));
    // Invalid JSON.
    let r = c
        .call(r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#)
        .await;
    assert_eq!((error_code(&r), &r["id"]), (-32700, &Value::Null));
    // Invalid Request object.
    let r = c
        .call(r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#)
        .await;
    assert_eq!((error_code(&r), &r["id"]), (-32600, &Value::Null));
    // Batch, invalid JSON.
    let r = c
        .call(r#"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]"#)
        .await;
    assert_eq!((error_code(&r), &r["id"]), (-32700, &Value::Null));
    // Empty array: one error, not an array.
    let r = c.call("[]").await;
    assert_eq!((error_code(&r), &r["id"]), (-32600, &Value::Null));
    // An invalid batch, but not empty.
    let r = c.call("[1]").await;
    assert_eq!(r.as_array().unwrap().len(), 1);
    assert_eq!(error_code(&r[0]), -32600);
    // Invalid batch.
    let r = c.call("[1,2,3]").await;
    let codes: Vec<i64> = r.as_array().unwrap().iter().map(error_code).collect();
    assert_eq!(codes, [-32600, -32600, -32600]);
    // A mixed batch: replies for requests only, in any order.
    let r = c
        .call(
            r#"[
            {"jsonrpc": "2.0", "method": "daemon.info", "id": "1"},
            {"jsonrpc": "2.0", "method": "notifications.peek", "params": {}},
            {"jsonrpc": "2.0", "method": "job.list", "params": {"limit": 1}, "id": "2"},
            {"foo": "boo"},
            {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
            {"jsonrpc": "2.0", "method": "daemon.info", "id": "9"}
        ]"#
            .replace('\n', " ")
            .as_str(),
        )
        .await;
    let replies = r.as_array().unwrap();
    assert_eq!(replies.len(), 5);
    let by_id = |id: Value| {
        replies
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("no reply for {id}"))
    };
    assert_eq!(by_id(json!("1"))["result"]["protocol_version"], 1);
    assert!(by_id(json!("2"))["result"]["jobs"].is_array());
    assert_eq!(error_code(by_id(json!("5"))), -32601);
    assert_eq!(error_code(by_id(Value::Null)), -32600);
    assert_eq!(by_id(json!("9"))["result"]["protocol_version"], 1);
    // A batch of notifications gets no reply at all: the next line read is
    // the reply to the request after it.
    c.send(r#"[{"jsonrpc": "2.0", "method": "daemon.info"}, {"jsonrpc": "2.0", "method": "job.list"}]"#).await;
    let r = c
        .call(r#"{"jsonrpc": "2.0", "method": "daemon.info", "id": 42}"#)
        .await;
    assert_eq!(r["id"], 42);
    // Numeric ids are echoed as written.
    let r = c
        .call(r#"{"jsonrpc": "2.0", "method": "daemon.info", "id": 1.5}"#)
        .await;
    assert_eq!(r["id"], json!(1.5));
}

#[tokio::test]
async fn a_notification_runs_its_method_without_a_reply() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let mut c = Raw::connect(&env).await;
    c.send(r#"{"jsonrpc":"2.0","method":"job.submit","params":{"command":"true","session":"nt","label":"fire-and-forget"}}"#).await;
    // The job's end reaches the session's queue; the first line this
    // connection gets is the reply to the wait, not to the notification.
    let r = c
        .call(r#"{"jsonrpc":"2.0","id":1,"method":"notifications.wait","params":{"session":"nt","timeout_ms":30000}}"#)
        .await;
    assert_eq!(r["id"], 1, "the notification got no reply: {r}");
    let n = &r["result"]["notifications"][0];
    assert_eq!(
        (n["command"].as_str(), n["state"].as_str()),
        (Some("true"), Some("succeeded"))
    );
}

#[tokio::test]
async fn an_oversized_line_gets_invalid_request_and_the_connection_closes() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let mut c = Raw::connect(&env).await;
    let big = vec![b'x'; 8 * 1024 * 1024 + 10];
    let (_, r) = tokio::join!(
        async {
            // The daemon may close before reading it all.
            let _ = c.writer.write_all(&big).await;
        },
        async {
            let mut line = String::new();
            c.reader.read_line(&mut line).await.unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            let mut rest = String::new();
            let n = c.reader.read_line(&mut rest).await.unwrap_or(0);
            (v, n)
        }
    );
    let (v, after) = r;
    assert_eq!(error_code(&v), -32600);
    assert_eq!(after, 0, "the connection is closed after the error");
    // The daemon is unharmed.
    let info = daemon
        .client()
        .await
        .call_raw("daemon.info", json!({}))
        .await
        .unwrap();
    assert_eq!(info["protocol_version"], 1);
}

#[tokio::test]
async fn replies_carry_their_ids_while_a_slow_request_is_in_flight() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon();
    let mut c = Raw::connect(&env).await;
    let job = c
        .call(r#"{"jsonrpc":"2.0","id":"submit","method":"job.submit","params":{"command":"sleep 300"}}"#)
        .await;
    let id = job["result"]["id"].as_str().unwrap().to_string();
    c.send(&format!(
        r#"{{"jsonrpc":"2.0","id":"slow","method":"job.wait","params":{{"id":"{id}"}}}}"#
    ))
    .await;
    let r = c
        .call(r#"{"jsonrpc":"2.0","id":"fast","method":"daemon.info"}"#)
        .await;
    assert_eq!(
        r["id"], "fast",
        "a long-poll does not hold up the next request"
    );
    let r = c
        .call(&format!(
            r#"{{"jsonrpc":"2.0","id":"kill","method":"job.kill","params":{{"id":"{id}"}}}}"#
        ))
        .await;
    // Both the kill and the wait reply, each with its own id.
    let other = c.recv().await.unwrap();
    let mut ids = [r["id"].as_str().unwrap(), other["id"].as_str().unwrap()];
    ids.sort();
    assert_eq!(ids, ["kill", "slow"]);
    assert_eq!(r["result"]["state"], "killed");
    assert_eq!(other["result"]["state"], "killed");
}
