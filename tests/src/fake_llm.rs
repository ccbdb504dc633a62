//! A scripted fake LLM server for the agent's end-to-end tests: the one
//! thing faked. It listens on `127.0.0.1:0`, speaks just enough HTTP/1.1
//! (one request per connection, `Connection: close`), and answers
//!
//! - `POST /v1/messages` (any query string, e.g. Claude Code's
//!   `?beta=true`) as the Anthropic Messages API, streamed as SSE when the
//!   body says `"stream": true`, else as one JSON message;
//!   `POST …/count_tokens` with a fixed count, not recorded;
//! - `POST /chat/completions` (any prefix) as OpenAI chat completions,
//!   streamed when the body says `"stream": true`, else as one completion.
//!
//! [`FakeLlm::set_streaming`]`(false)` makes it answer with whole messages
//! even when a stream was asked for, as some OpenAI-compatible servers do;
//! [`FakeLlm::set_repeat_tool_fields`]`(true)` repeats tool call ids and
//! names in every OpenAI chunk, as others do;
//! [`FakeLlm::set_split_tool_names`]`(true)` splits each name across two
//! chunks, as the stream format allows;
//! [`FakeLlm::set_reject_max_tokens`]`(true)` refuses `max_tokens` as
//! OpenAI's reasoning models do. `GET …/models` lists
//! [`FakeLlm::set_models`] (one model, `fake-model`, unless set); those
//! requests are counted ([`FakeLlm::model_lists`]), not recorded with the
//! model calls. Request headers and arrival
//! times are recorded ([`FakeLlm::headers`], [`FakeLlm::arrivals`]), so a
//! test can check `retry-after` was honoured without sleeping itself.
//!
//! [`FakeLlm::set_max_prompt_bytes`] makes it answer as the real APIs do
//! when a prompt outgrows the context window (Anthropic 400 `prompt is too
//! long`, OpenAI `context_length_exceeded`) once the request's `messages`
//! exceed that many bytes, without using up a scripted reply. Replies
//! report `usage` with input tokens of a quarter of the request's bytes,
//! or what [`FakeLlm::set_input_tokens`] says.
//!
//! Each test queues the replies ([`Reply`]) in order. Every request body is
//! recorded ([`FakeLlm::requests`]) and validated: roles alternate, every
//! `tool_use` is answered by its `tool_result` in the very next user
//! message (OpenAI: every tool call by a `tool` message right after), no
//! Anthropic text block is empty. A
//! request that breaks a rule gets HTTP 400 and is recorded as a violation;
//! [`FakeLlm::requests`] panics if there is any.
//!
//! The server runs on its own thread and runtime, so tests may block.

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Text, then `end_turn`.
    Text(String),
    /// Optional text, then these tool calls `(name, input)`, then
    /// `tool_use`.
    Tools(Option<String>, Vec<(String, Value)>),
    /// An HTTP error with this status and message, with `retry-after: 0`.
    Error(u16, String),
    /// No answer at all: the connection is held open until the client
    /// goes away (to test cancelling a turn in flight).
    Stall,
    /// Anthropic only: optional text and tool calls with this stop reason
    /// (`pause_turn`, `max_tokens`, `refusal`, ...).
    Stop(String, Option<String>, Vec<(String, Value)>),
    /// An HTTP error with this status and message and this `retry-after`
    /// header value.
    ErrorAfter(u16, String, String),
    /// An HTTP error with this status and message and a `retry-after` HTTP
    /// date this many whole seconds after the next full second (so the
    /// client must wait more than this many seconds).
    ErrorAfterDate(u16, String, u64),
    /// A stream cut short: the first half of this text, then the
    /// connection closes (no `message_stop` / `finish_reason` / `[DONE]`).
    Cut(String),
    /// Anthropic stream: `message_start`, then an `error` event of this
    /// type (`overloaded_error`, ...), then the end of the stream.
    StreamError(String),
    /// A stream that sends the first half of this text, then holds the
    /// connection open until the client goes away (to cancel mid-answer).
    Partial(String),
}

impl Reply {
    /// Plain text ending the turn.
    pub fn text(t: &str) -> Reply {
        Reply::Text(t.to_string())
    }

    /// One tool call.
    pub fn tool(name: &str, input: Value) -> Reply {
        Reply::Tools(None, vec![(name.to_string(), input)])
    }
}

/// Shared state of the server.
#[derive(Default)]
struct State {
    /// Replies still to give.
    script: VecDeque<Reply>,
    /// Every request body received, in order.
    requests: Vec<Value>,
    /// Every rule broken, as a sentence.
    violations: Vec<String>,
    /// Tool ids handed out so far.
    next_tool: u64,
    /// Answer with whole messages even when the request asks for a stream.
    ignore_stream: bool,
    /// OpenAI streams: repeat each tool call's `id` and `function.name` in
    /// every chunk, as some servers do.
    repeat_tool_fields: bool,
    /// Headers of every request (names lowercased), in order.
    headers: Vec<Vec<(String, String)>>,
    /// When each request was read, in order.
    arrivals: Vec<std::time::Instant>,
    /// OpenAI streams: send each tool name in two fragments.
    split_tool_names: bool,
    /// OpenAI: answer a request carrying `max_tokens` with OpenAI's 400.
    reject_max_tokens: bool,
    /// What `GET …/models` lists; `None`: just `fake-model`.
    models: Option<Vec<String>>,
    /// How many `GET …/models` requests arrived.
    model_lists: usize,
    /// Requests whose `messages` exceed this many bytes are refused as
    /// too long for the context window.
    max_prompt_bytes: Option<usize>,
    /// How many requests were refused so.
    too_long: usize,
    /// Input tokens to report instead of bytes / 4.
    input_tokens: Option<u64>,
}

/// The running server.
pub struct FakeLlm {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Signalled after every request is recorded.
    arrived: Arc<Condvar>,
}

impl FakeLlm {
    /// Starts a server with the given script.
    pub fn start(script: Vec<Reply>) -> FakeLlm {
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            ..State::default()
        }));
        let arrived = Arc::new(Condvar::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        let cv = arrived.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake LLM runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(serve(sock, st.clone(), cv.clone()));
                }
            });
        });
        let addr = rx.recv().expect("fake LLM address");
        FakeLlm {
            addr,
            state,
            arrived,
        }
    }

    /// Blocks until at least `n` requests have arrived (30 s at most, then
    /// panics).
    pub fn wait_for_requests(&self, n: usize) {
        let st = self.state.lock().unwrap();
        let (st, timeout) = self
            .arrived
            .wait_timeout_while(st, std::time::Duration::from_secs(30), |st| {
                st.requests.len() < n
            })
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "only {} requests arrived",
            st.requests.len()
        );
    }

    /// `http://127.0.0.1:PORT` (the Anthropic base URL).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (the OpenAI base URL).
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues more replies.
    pub fn push(&self, replies: Vec<Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Every request body so far. Panics if any request broke the rules.
    pub fn requests(&self) -> Vec<Value> {
        let st = self.state.lock().unwrap();
        assert!(
            st.violations.is_empty(),
            "invalid requests to the model:\n{}",
            st.violations.join("\n")
        );
        st.requests.clone()
    }

    /// `false`: from now on answer with one whole message (Anthropic
    /// `message`, OpenAI `chat.completion`, `content-type:
    /// application/json`) even when the request says `"stream": true`.
    pub fn set_streaming(&self, on: bool) {
        self.state.lock().unwrap().ignore_stream = !on;
    }

    /// `true`: OpenAI streams repeat each tool call's `id` and
    /// `function.name` in every chunk instead of sending them once.
    pub fn set_repeat_tool_fields(&self, on: bool) {
        self.state.lock().unwrap().repeat_tool_fields = on;
    }

    /// `true`: OpenAI streams send each tool call's `function.name` in two
    /// fragments (`"ba"`, then `"sh"`).
    pub fn set_split_tool_names(&self, on: bool) {
        self.state.lock().unwrap().split_tool_names = on;
    }

    /// `true`: an OpenAI request carrying `max_tokens` gets the 400 that
    /// OpenAI's reasoning models give (no scripted reply is used).
    pub fn set_reject_max_tokens(&self, on: bool) {
        self.state.lock().unwrap().reject_max_tokens = on;
    }

    /// The model ids `GET …/models` lists from now on.
    pub fn set_models(&self, ids: &[&str]) {
        self.state.lock().unwrap().models = Some(ids.iter().map(|s| s.to_string()).collect());
    }

    /// How many `GET …/models` requests arrived so far.
    pub fn model_lists(&self) -> usize {
        self.state.lock().unwrap().model_lists
    }

    /// The headers of every request so far (names lowercased).
    pub fn headers(&self) -> Vec<Vec<(String, String)>> {
        self.state.lock().unwrap().headers.clone()
    }

    /// When each request arrived (measured here, in the server).
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.state.lock().unwrap().arrivals.clone()
    }

    /// From now on refuse requests whose `messages` JSON exceeds `bytes`
    /// with the provider's "prompt too long" error (None: never).
    pub fn set_max_prompt_bytes(&self, bytes: Option<usize>) {
        self.state.lock().unwrap().max_prompt_bytes = bytes;
    }

    /// How many requests were refused as too long.
    pub fn too_long(&self) -> usize {
        self.state.lock().unwrap().too_long
    }

    /// From now on report this many input tokens in `usage` (None: a
    /// quarter of the request's bytes).
    pub fn set_input_tokens(&self, tokens: Option<u64>) {
        self.state.lock().unwrap().input_tokens = tokens;
    }

    /// Replies not yet given.
    pub fn remaining(&self) -> usize {
        self.state.lock().unwrap().script.len()
    }
}

/// Reads one request, answers it, closes.
async fn serve(mut sock: TcpStream, state: Arc<Mutex<State>>, arrived: Arc<Condvar>) {
    let Some((path, headers, body)) = read_request(&mut sock).await else {
        return;
    };
    let arrived_at = std::time::Instant::now();
    // The query string (Claude Code asks for `/v1/messages?beta=true`)
    // does not change what is asked.
    let path = path.split('?').next().unwrap_or_default().to_string();
    if path.ends_with("/count_tokens") {
        // Claude Code counts tokens now and then: a fixed count, not
        // recorded with the model calls.
        let response = json_response(&json!({"input_tokens": 1000}));
        let _ = sock.write_all(response.as_bytes()).await;
        let _ = sock.shutdown().await;
        return;
    }
    if path.ends_with("/models") {
        let ids = {
            let mut st = state.lock().unwrap();
            st.model_lists += 1;
            st.models
                .clone()
                .unwrap_or_else(|| vec!["fake-model".into()])
        };
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "object": "model", "owned_by": "fake"}))
            .collect();
        let response = json_response(&json!({"object": "list", "data": data}));
        let _ = sock.write_all(response.as_bytes()).await;
        let _ = sock.shutdown().await;
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let openai = path.ends_with("/chat/completions");
    let rejected = openai && {
        let mut st = state.lock().unwrap();
        let rejected = st.reject_max_tokens && body.get("max_tokens").is_some();
        if rejected {
            st.requests.push(body.clone());
        }
        rejected
    };
    if rejected {
        arrived.notify_all();
        let msg = "Unsupported parameter: 'max_tokens' is not supported with this model. \
                   Use 'max_completion_tokens' instead.";
        let body = json!({"error": {"message": msg, "type": "invalid_request_error",
            "param": "max_tokens", "code": "unsupported_parameter"}})
        .to_string();
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(response.as_bytes()).await;
        let _ = sock.shutdown().await;
        return;
    }
    let (reply, problems, tool_base, stream, repeat, split, too_long, input_tokens) = {
        let mut st = state.lock().unwrap();
        let stream = body["stream"] == json!(true) && !st.ignore_stream;
        st.requests.push(body.clone());
        st.headers.push(headers);
        st.arrivals.push(arrived_at);
        let problems = if openai {
            validate_openai(&body)
        } else {
            validate_anthropic(&body)
        };
        let nth = st.requests.len();
        st.violations
            .extend(problems.iter().map(|p| format!("request {nth}: {p}")));
        let size = body["messages"].to_string().len();
        let too_long = problems.is_empty() && st.max_prompt_bytes.is_some_and(|max| size > max);
        if too_long {
            st.too_long += 1;
        }
        let input_tokens = st.input_tokens.unwrap_or(body.to_string().len() as u64 / 4);
        let reply = if problems.is_empty() && !too_long {
            st.script.pop_front()
        } else {
            None
        };
        if reply.is_none() && problems.is_empty() && !too_long {
            st.violations
                .push(format!("request {nth}: the script is exhausted"));
        }
        let base = st.next_tool;
        st.next_tool += 10;
        (
            reply,
            problems,
            base,
            stream,
            st.repeat_tool_fields,
            st.split_tool_names,
            too_long,
            input_tokens,
        )
    };
    arrived.notify_all();
    if too_long {
        let body = if openai {
            json!({"error": {"message": "This model's maximum context length is 1000 tokens. \
                However, your messages resulted in 2000 tokens.", "type": "invalid_request_error",
                "param": "messages", "code": "context_length_exceeded"}})
        } else {
            json!({"type": "error", "error": {"type": "invalid_request_error",
                "message": "prompt is too long: 2000 tokens > 1000 maximum"}})
        }
        .to_string();
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(response.as_bytes()).await;
        let _ = sock.shutdown().await;
        return;
    }
    let reply = match reply {
        Some(r) => r,
        None => {
            let msg = if problems.is_empty() {
                "fake LLM: script exhausted".to_string()
            } else {
                format!("fake LLM: invalid request: {}", problems.join("; "))
            };
            Reply::Error(400, msg)
        }
    };
    if let Reply::Partial(text) = &reply {
        let events = if openai {
            openai_cut(text)
        } else {
            anthropic_cut(text)
        };
        let _ = sock.write_all(sse_response(&events).as_bytes()).await;
        let _ = sock.flush().await;
    }
    if let Reply::Stall | Reply::Partial(_) = reply {
        let mut sink = [0u8; 1024];
        while let Ok(n) = sock.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
        return;
    }
    let error = |status: &u16, msg: &str, retry_after: &str| {
        let body =
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}})
                .to_string();
        format!(
            "HTTP/1.1 {status} Error\r\ncontent-type: application/json\r\nretry-after: {retry_after}\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let response = match (&reply, openai) {
        (Reply::Error(status, msg), _) => error(status, msg, "0"),
        (Reply::ErrorAfter(status, msg, after), _) => error(status, msg, after),
        (Reply::ErrorAfterDate(status, msg, secs), _) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            error(status, msg, &http_date(now + 1 + secs))
        }
        (Reply::Cut(text), true) => sse_response(&openai_cut(text)),
        (Reply::Cut(text), false) => sse_response(&anthropic_cut(text)),
        (Reply::StreamError(kind), _) => sse_response(&[
            (
                "message_start".to_string(),
                json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message",
                    "role": "assistant", "content": [], "model": "fake", "stop_reason": null}}),
            ),
            (
                "error".to_string(),
                json!({"type": "error", "error": {"type": kind, "message": "fake stream error"}}),
            ),
        ]),
        (_, true) if stream => sse_response(&with_usage(
            openai_events(&reply, tool_base, repeat, split),
            true,
            input_tokens,
        )),
        (_, false) if stream => sse_response(&with_usage(
            anthropic_events(&reply, tool_base),
            false,
            input_tokens,
        )),
        (_, true) => {
            let mut v = openai_completion(&reply, tool_base);
            v["usage"] = json!({"prompt_tokens": input_tokens, "completion_tokens": 5});
            json_response(&v)
        }
        (_, false) => {
            let mut v = anthropic_message(&reply, tool_base);
            v["usage"] = json!({"input_tokens": input_tokens, "output_tokens": 5});
            json_response(&v)
        }
    };
    let _ = sock.write_all(response.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// A stream's events with `usage` reporting `input_tokens`: Anthropic's in
/// `message_start`; OpenAI's as the chunk without choices that
/// `stream_options.include_usage` asks for, before `[DONE]`.
fn with_usage(
    mut events: Vec<(String, Value)>,
    openai: bool,
    input_tokens: u64,
) -> Vec<(String, Value)> {
    if openai {
        let at = events.len().saturating_sub(1);
        events.insert(
            at,
            (
                String::new(),
                json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake",
                    "choices": [], "usage": {"prompt_tokens": input_tokens, "completion_tokens": 5}}),
            ),
        );
    } else if let Some((_, start)) = events.iter_mut().find(|(n, _)| n == "message_start") {
        start["message"]["usage"] = json!({"input_tokens": input_tokens, "output_tokens": 1});
    }
    events
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since the epoch.
fn http_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The path, headers (names lowercased) and body of one request
/// (Content-Length bodies only).
async fn read_request(sock: &mut TcpStream) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let path = head.split_whitespace().nth(1)?.to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, buf[header_end..header_end + len].to_vec()))
}

fn json_response(body: &Value) -> String {
    let body = body.to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn sse_response(events: &[(String, Value)]) -> String {
    let mut out = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         connection: close\r\n\r\n",
    );
    for (name, data) in events {
        if !name.is_empty() {
            out.push_str(&format!("event: {name}\n"));
        }
        match data {
            Value::String(raw) => out.push_str(&format!("data: {raw}\n\n")),
            data => out.push_str(&format!("data: {data}\n\n")),
        }
    }
    out
}

fn parts(reply: &Reply) -> (Option<String>, Vec<(String, Value)>) {
    match reply {
        Reply::Text(t) => (Some(t.clone()), Vec::new()),
        Reply::Tools(t, calls) | Reply::Stop(_, t, calls) => (t.clone(), calls.clone()),
        Reply::Cut(t) | Reply::Partial(t) => (Some(t.clone()), Vec::new()),
        Reply::Error(..)
        | Reply::ErrorAfter(..)
        | Reply::ErrorAfterDate(..)
        | Reply::StreamError(..)
        | Reply::Stall => (None, Vec::new()),
    }
}

/// The Anthropic stop reason of a reply.
fn stop_reason(reply: &Reply) -> String {
    match reply {
        Reply::Stop(stop, ..) => stop.clone(),
        Reply::Tools(_, calls) if !calls.is_empty() => "tool_use".into(),
        _ => "end_turn".into(),
    }
}

fn anthropic_events(reply: &Reply, tool_base: u64) -> Vec<(String, Value)> {
    let (text, calls) = parts(reply);
    let mut ev = vec![(
        "message_start".to_string(),
        json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message",
            "role": "assistant", "content": [], "model": "fake", "stop_reason": null,
            "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    )];
    ev.push(("ping".into(), json!({"type": "ping"})));
    let mut index = 0;
    if let Some(t) = text {
        ev.push(("content_block_start".into(),
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        // Split the text to exercise delta accumulation.
        let mid = t
            .char_indices()
            .nth(t.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        for piece in [&t[..mid], &t[mid..]] {
            ev.push(("content_block_delta".into(),
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})));
        }
        ev.push((
            "content_block_stop".into(),
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for (i, (name, input)) in calls.iter().enumerate() {
        let id = format!("toolu_{}", tool_base + i as u64);
        ev.push((
            "content_block_start".into(),
            json!({"type": "content_block_start", "index": index, "content_block":
                {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ));
        let s = input.to_string();
        let mid = s.len() / 2;
        let mid = (0..=mid)
            .rev()
            .find(|&m| s.is_char_boundary(m))
            .unwrap_or(0);
        for piece in [&s[..mid], &s[mid..]] {
            ev.push((
                "content_block_delta".into(),
                json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        ev.push((
            "content_block_stop".into(),
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    let stop = stop_reason(reply);
    ev.push((
        "message_delta".into(),
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": 5}}),
    ));
    ev.push(("message_stop".into(), json!({"type": "message_stop"})));
    ev
}

fn anthropic_message(reply: &Reply, tool_base: u64) -> Value {
    let (text, calls) = parts(reply);
    let mut content = Vec::new();
    if let Some(t) = text {
        content.push(json!({"type": "text", "text": t}));
    }
    for (i, (name, input)) in calls.iter().enumerate() {
        content.push(
            json!({"type": "tool_use", "id": format!("toolu_{}", tool_base + i as u64),
            "name": name, "input": input}),
        );
    }
    let stop = stop_reason(reply);
    json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
        "content": content, "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 1}})
}

fn openai_completion(reply: &Reply, tool_base: u64) -> Value {
    let (text, calls) = parts(reply);
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = calls
            .iter()
            .enumerate()
            .map(|(i, (name, input))| {
                json!({"id": format!("call_{}", tool_base + i as u64), "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}})
            })
            .collect();
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    json!({"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
}

/// The first half of `text`.
fn first_half(text: &str) -> &str {
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    &text[..mid]
}

/// An Anthropic stream that stops after the first half of `text`.
fn anthropic_cut(text: &str) -> Vec<(String, Value)> {
    vec![
        (
            "message_start".to_string(),
            json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message",
                "role": "assistant", "content": [], "model": "fake", "stop_reason": null}}),
        ),
        (
            "content_block_start".into(),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta".into(),
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": first_half(text)}}),
        ),
    ]
}

/// An OpenAI stream that stops after the first half of `text`.
fn openai_cut(text: &str) -> Vec<(String, Value)> {
    [
        json!({"role": "assistant", "content": ""}),
        json!({"content": first_half(text)}),
    ]
    .into_iter()
    .map(|delta| {
        (
            String::new(),
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": null}]}),
        )
    })
    .collect()
}

fn openai_events(reply: &Reply, tool_base: u64, repeat: bool, split: bool) -> Vec<(String, Value)> {
    let (text, calls) = parts(reply);
    let chunk = |delta: Value, finish: Value| {
        (
            String::new(),
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
            "model": "fake", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    let mut ev = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if let Some(t) = text {
        let mid = t
            .char_indices()
            .nth(t.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        for piece in [&t[..mid], &t[mid..]] {
            ev.push(chunk(json!({"content": piece}), Value::Null));
        }
    }
    for (i, (name, input)) in calls.iter().enumerate() {
        let id = format!("call_{}", tool_base + i as u64);
        let s = input.to_string();
        let mid = s.len() / 2;
        let mid = (0..=mid)
            .rev()
            .find(|&m| s.is_char_boundary(m))
            .unwrap_or(0);
        let half = name.len() / 2;
        let (first_name, rest_name) = if split {
            (&name[..half], &name[half..])
        } else {
            (name.as_str(), "")
        };
        ev.push(chunk(
            json!({"tool_calls": [{"index": i, "id": id, "type": "function",
            "function": {"name": first_name, "arguments": &s[..mid]}}]}),
            Value::Null,
        ));
        let second = if split {
            json!({"tool_calls": [{"index": i, "function": {"name": rest_name, "arguments": &s[mid..]}}]})
        } else if repeat {
            json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                "function": {"name": name, "arguments": &s[mid..]}}]})
        } else {
            json!({"tool_calls": [{"index": i, "function": {"arguments": &s[mid..]}}]})
        };
        ev.push(chunk(second, Value::Null));
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    ev.push(chunk(json!({}), json!(finish)));
    ev.push((String::new(), Value::String("[DONE]".into())));
    ev
}

/// The rules of the Anthropic Messages API this project relies on.
pub fn validate_anthropic(body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(messages) = body["messages"].as_array() else {
        return vec!["no messages array".into()];
    };
    if messages.is_empty() {
        problems.push("messages is empty".into());
    }
    if body["model"].as_str().is_none_or(str::is_empty) {
        problems.push("no model".into());
    }
    if body["max_tokens"].as_u64().is_none() {
        problems.push("no max_tokens".into());
    }
    let mut expected_role = "user";
    let mut open_tool_uses: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        if role != expected_role {
            problems.push(format!(
                "message {i} has role {role:?}, expected {expected_role:?}"
            ));
        }
        let content = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(a) => a.clone(),
            _ => Vec::new(),
        };
        if content.is_empty() {
            problems.push(format!("message {i} has empty content"));
        }
        // The real API: "text content blocks must be non-empty".
        if content
            .iter()
            .any(|b| b["type"] == "text" && b["text"].as_str().is_none_or(str::is_empty))
        {
            problems.push(format!("message {i} has an empty text block"));
        }
        if role == "user" {
            let results: Vec<String> = content
                .iter()
                .filter(|b| b["type"] == "tool_result")
                .filter_map(|b| b["tool_use_id"].as_str().map(str::to_string))
                .collect();
            let mut want = open_tool_uses.clone();
            let mut got = results.clone();
            want.sort();
            got.sort();
            if want != got {
                problems.push(format!(
                    "message {i}: tool_results {got:?} do not answer the previous tool_uses {want:?}"
                ));
            }
            let first_non_result = content
                .iter()
                .position(|b| b["type"] != "tool_result")
                .unwrap_or(content.len());
            if content[first_non_result..]
                .iter()
                .any(|b| b["type"] == "tool_result")
            {
                problems.push(format!("message {i}: tool_result blocks must come first"));
            }
            open_tool_uses.clear();
        } else {
            open_tool_uses = content
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .filter_map(|b| b["id"].as_str().map(str::to_string))
                .collect();
            for b in content.iter().filter(|b| b["type"] == "tool_use") {
                if !b["input"].is_object() {
                    problems.push(format!("message {i}: tool_use input is not an object"));
                }
            }
        }
        expected_role = if role == "user" { "assistant" } else { "user" };
    }
    // An assistant message may close the list only to be continued
    // (prefill, or after `pause_turn`), never with a tool call open.
    if messages
        .last()
        .is_some_and(|m| m["role"] != "user" && m.to_string().contains("\"tool_use\""))
    {
        problems.push("the last message is an assistant tool call".into());
    }
    problems
}

/// The rules of OpenAI chat completions this project relies on.
pub fn validate_openai(body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(messages) = body["messages"].as_array() else {
        return vec!["no messages array".into()];
    };
    let mut open_calls: Vec<String> = Vec::new();
    let mut prev = "";
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        match role {
            "system" if i == 0 => {}
            "tool" => {
                let id = m["tool_call_id"].as_str().unwrap_or("").to_string();
                match open_calls.iter().position(|c| *c == id) {
                    Some(p) => {
                        open_calls.remove(p);
                    }
                    None => problems.push(format!(
                        "message {i}: tool result {id:?} answers no open call"
                    )),
                }
            }
            "user" | "assistant" => {
                if !open_calls.is_empty() {
                    problems.push(format!(
                        "message {i}: tool calls {open_calls:?} left unanswered"
                    ));
                    open_calls.clear();
                }
                if role == prev && role == "assistant" {
                    problems.push(format!("message {i}: two assistant messages in a row"));
                }
                if role == "assistant" {
                    open_calls = m["tool_calls"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["id"].as_str().map(str::to_string))
                        .collect();
                    for c in m["tool_calls"].as_array().into_iter().flatten() {
                        let args = c["function"]["arguments"].as_str().unwrap_or("");
                        if serde_json::from_str::<Value>(args).is_err() {
                            problems.push(format!("message {i}: tool call arguments are not JSON"));
                        }
                    }
                }
            }
            other => problems.push(format!("message {i}: unexpected role {other:?}")),
        }
        prev = role;
    }
    if !open_calls.is_empty() {
        problems.push(format!("tool calls {open_calls:?} left unanswered"));
    }
    if messages.last().is_some_and(|m| m["role"] == "assistant") {
        problems.push("the last message is from the assistant".into());
    }
    problems
}
