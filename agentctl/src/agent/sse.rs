//! Server-sent events: turns the bytes of a `text/event-stream` body, fed
//! in chunks as they arrive, into `(event, data)` pairs (WHATWG rules:
//! `data:` lines joined by `\n`, comments and `id:`/`retry:` ignored, an
//! empty line ends an event, CRLF or LF line ends).

/// One event: its `event:` name (empty when absent) and its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, or `""`.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// An incremental parser; feed it chunks, collect events.
#[derive(Default)]
pub struct Parser {
    /// Bytes of an incomplete line.
    buf: Vec<u8>,
    /// The event being built.
    event: String,
    /// Its data lines so far.
    data: Vec<String>,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if let Some(ev) = self.line(&line) {
                events.push(ev);
            }
        }
        events
    }

    /// Ends the stream: an event not closed by an empty line is returned.
    pub fn finish(&mut self) -> Option<Event> {
        if !self.buf.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            if let Some(ev) = self.line(line.trim_end_matches('\r')) {
                return Some(ev);
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        Some(Event { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut p = Parser::new();
        let mut got = p.feed(b"event: ping\r\ndata: {}\r\n\r\n: comment\nevent: message_");
        got.extend(p.feed(b"start\ndata: {\"a\":"));
        got.extend(p.feed(b"1}\n\n"));
        got.extend(p.feed(b"data: one\ndata: two\n\ndata:[DONE]\n\n"));
        assert_eq!(
            got,
            vec![
                Event {
                    event: "ping".into(),
                    data: "{}".into()
                },
                Event {
                    event: "message_start".into(),
                    data: "{\"a\":1}".into()
                },
                Event {
                    event: "".into(),
                    data: "one\ntwo".into()
                },
                Event {
                    event: "".into(),
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn unterminated_last_event_is_returned_at_finish() {
        let mut p = Parser::new();
        assert!(p.feed(b"event: x\ndata: y").is_empty());
        assert_eq!(
            p.finish(),
            Some(Event {
                event: "x".into(),
                data: "y".into()
            })
        );
    }
}
