//! Newline-delimited framing: one JSON-RPC message per line, UTF-8,
//! terminated by `\n`, at most [`MAX_LINE_BYTES`] bytes (docs/protocol.md,
//! "Transport and framing"). The reader never buffers more than the limit plus one read
//! buffer, whatever the peer sends.

use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// The longest line accepted: 8 MiB, excluding the `\n`. Longer lines get a
/// -32600 error and the connection is closed.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A line was read into the buffer (without its `\n` or a trailing `\r`).
    /// A final line cut off by end of stream counts as a line.
    Line,
    /// The line exceeded the limit; the buffer holds its first bytes. The
    /// stream is left mid-line, so the connection must be closed.
    TooLong,
    /// End of stream before any byte of a new line.
    Eof,
    /// A line was begun but not finished within the torn-line timeout.
    Torn,
}

/// Reads one line into `buf` (cleared first), refusing lines over `max`
/// bytes. Waiting for a line to begin is unbounded; once its first byte has
/// arrived, the rest must follow within `torn_timeout` (when given), else
/// [`Frame::Torn`].
///
/// Errors: the underlying read's I/O error.
pub async fn read_line<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
    torn_timeout: Option<Duration>,
) -> std::io::Result<Frame>
where
    R: AsyncBufRead + Unpin,
{
    buf.clear();
    let mut deadline = None;
    loop {
        let available = match deadline {
            Some(at) => match tokio::time::timeout_at(at, reader.fill_buf()).await {
                Ok(read) => read?,
                Err(_) => return Ok(Frame::Torn),
            },
            None => reader.fill_buf().await?,
        };
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                Frame::Eof
            } else {
                trim_cr(buf);
                Frame::Line
            });
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        if buf.len() + chunk.len() > max {
            let take = max - buf.len();
            buf.extend_from_slice(&chunk[..take]);
            let used = chunk.len();
            reader.consume(used);
            return Ok(Frame::TooLong);
        }
        buf.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(found);
        reader.consume(used);
        if found {
            trim_cr(buf);
            return Ok(Frame::Line);
        }
        if deadline.is_none() {
            deadline = torn_timeout.map(|t| tokio::time::Instant::now() + t);
        }
    }
}

fn trim_cr(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
}

/// Writes `msg` followed by `\n` and flushes. `msg` must hold no newline
/// (serde_json's compact output never does).
///
/// Errors: the underlying write's I/O error.
pub async fn write_line<W>(writer: &mut W, msg: &[u8]) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    debug_assert!(!msg.contains(&b'\n'));
    let mut framed = Vec::with_capacity(msg.len() + 1);
    framed.extend_from_slice(msg);
    framed.push(b'\n');
    writer.write_all(&framed).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, BufReader};

    #[tokio::test(start_paused = true)]
    async fn a_line_left_unfinished_is_torn_after_the_timeout() {
        let (client, server) = tokio::io::duplex(64);
        let mut r = BufReader::new(server);
        let mut client = client;
        client.write_all(b"{\"jsonrpc\"").await.unwrap();
        let mut buf = Vec::new();
        let frame = read_line(&mut r, &mut buf, 1024, Some(Duration::from_secs(30))).await;
        assert_eq!(frame.unwrap(), Frame::Torn);
        drop(client);
    }

    #[tokio::test]
    async fn lines_split_and_limit() {
        let data: &[u8] = b"one\r\ntwo\n0123456789\nlast";
        let mut r = BufReader::with_capacity(4, data);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, 8, None).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"one");
        assert_eq!(
            read_line(&mut r, &mut buf, 8, None).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"two");
        assert_eq!(
            read_line(&mut r, &mut buf, 8, None).await.unwrap(),
            Frame::TooLong
        );
        assert_eq!(buf.len(), 8);
    }

    #[tokio::test]
    async fn eof_and_unterminated_last_line() {
        let mut r = BufReader::new(&b"tail"[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, 8, None).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"tail");
        assert_eq!(
            read_line(&mut r, &mut buf, 8, None).await.unwrap(),
            Frame::Eof
        );
    }
}
