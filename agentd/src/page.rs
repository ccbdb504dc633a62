//! Paged replies: how big an entry's JSON is, so a page of `job.list` or
//! `notifications.*` stops before its reply grows past
//! [`agentd_proto::methods::MAX_PAGE_BYTES`] (docs/protocol.md,
//! "Methods"; docs/limits.md).

use serde::Serialize;

/// Counts bytes written to it and keeps none.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length in bytes of `value`'s compact JSON, plus one for the comma
/// that separates it from its neighbour in an array. Serialises without
/// allocating.
pub fn json_len<T: Serialize>(value: &T) -> usize {
    let mut c = Counter(1);
    serde_json::to_writer(&mut c, value).expect("protocol objects always serialise");
    c.0
}
