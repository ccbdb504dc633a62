//! Fuzzes what agentd does with bytes from a client before any method runs:
//! line framing (`codec::read_line`, with a tiny read buffer so lines split
//! across reads), JSON parsing, JSON-RPC request checks
//! (`Request::from_value`, batches included) and the typed params of every
//! method (`message::decode_params`, as the daemon's dispatcher uses it),
//! and the answer to a request holding bytes that are not UTF-8
//! (`message::invalid_utf8_request`). Nothing may panic, and framing must keep
//! its promises: no line longer than the limit, no newline inside a line.

#![no_main]

use agentd_proto::codec::{Frame, read_line};
use agentd_proto::codes;
use agentd_proto::message::{decode_params as decode, invalid_utf8_request};
use agentd_proto::methods::*;
use agentd_proto::{Method, Request};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tokio::io::BufReader;

const MAX: usize = 4096;

fn params_of<M: Method>(params: &Option<Value>) {
    let _ = decode::<M::Params>(params.clone());
}

fn decode_line(line: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        // Not UTF-8 (or not JSON): answered as invalid params or request
        // when it is a request with bad bytes, else a parse error.
        if let Some(Some(reply)) = invalid_utf8_request(line) {
            let code = reply.error.expect("an error reply").code;
            assert!(code == codes::INVALID_PARAMS || code == codes::INVALID_REQUEST);
            assert!(std::str::from_utf8(line).is_err());
        }
        return;
    };
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for item in items {
        let Ok(request) = Request::from_value(item) else {
            continue;
        };
        let p = &request.params;
        params_of::<DaemonInfo>(p);
        params_of::<DaemonShutdown>(p);
        params_of::<JobSubmit>(p);
        params_of::<JobGet>(p);
        params_of::<JobList>(p);
        params_of::<JobOutput>(p);
        params_of::<JobKill>(p);
        params_of::<JobWait>(p);
        params_of::<NotificationsPeek>(p);
        params_of::<NotificationsAck>(p);
        params_of::<NotificationsDrain>(p);
        params_of::<NotificationsWait>(p);
    }
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let mut reader = BufReader::with_capacity(7, data);
        let mut buf = Vec::new();
        loop {
            match read_line(&mut reader, &mut buf, MAX, None).await {
                Ok(Frame::Line) => {
                    assert!(buf.len() <= MAX);
                    assert!(!buf.contains(&b'\n'));
                    decode_line(&buf);
                }
                Ok(Frame::TooLong) => {
                    assert_eq!(buf.len(), MAX);
                    break;
                }
                Ok(Frame::Eof) => break,
                Ok(Frame::Torn) => unreachable!("no torn timeout was set"),
                Err(e) => panic!("reading from memory failed: {e}"),
            }
        }
    });
});
