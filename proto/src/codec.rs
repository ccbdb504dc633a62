//! Newline-delimited framing: one JSON-RPC message per line, UTF-8,
//! terminated by `\n`, at most [`MAX_LINE_BYTES`] bytes (DESIGN.md, "Wire
//! protocol v1"). The reader never buffers more than the limit plus one read
//! buffer, whatever the peer sends.

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
}

/// Reads one line into `buf` (cleared first), refusing lines over `max`
/// bytes.
///
/// Errors: the underlying read's I/O error.
pub async fn read_line<R>(reader: &mut R, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Frame>
where
    R: AsyncBufRead + Unpin,
{
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
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
    use tokio::io::BufReader;

    #[tokio::test]
    async fn lines_split_and_limit() {
        let data: &[u8] = b"one\r\ntwo\n0123456789\nlast";
        let mut r = BufReader::with_capacity(4, data);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, 8).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"one");
        assert_eq!(read_line(&mut r, &mut buf, 8).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"two");
        assert_eq!(
            read_line(&mut r, &mut buf, 8).await.unwrap(),
            Frame::TooLong
        );
        assert_eq!(buf.len(), 8);
    }

    #[tokio::test]
    async fn eof_and_unterminated_last_line() {
        let mut r = BufReader::new(&b"tail"[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, 8).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"tail");
        assert_eq!(read_line(&mut r, &mut buf, 8).await.unwrap(), Frame::Eof);
    }
}
