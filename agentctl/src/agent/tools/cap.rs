//! Keeping tool output within what the model should read: at most
//! [`MAX_CHARS`] characters, the head and the tail kept with one marker
//! between them saying how much was left out.

/// Most characters of one tool result.
pub const MAX_CHARS: usize = 50_000;

/// Characters kept free for the marker line.
const MARKER_ROOM: usize = 80;

/// Bytes read from each end of a long job output: enough for
/// [`MAX_CHARS`] characters of up to 4 bytes each, plus 4 so that a
/// character cut at the edge of the window is never among those kept.
pub const WINDOW_BYTES: u64 = (MAX_CHARS * 4 + 4) as u64;

/// How many characters of head and of tail fit in `max` with the marker.
fn split(max: usize) -> (usize, usize) {
    let keep = max.saturating_sub(MARKER_ROOM);
    let head = keep / 2;
    (head, keep - head)
}

/// The first `n` characters of `s`.
fn first_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// The last `n` characters of `s`.
fn last_chars(s: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    s.char_indices()
        .rev()
        .nth(n - 1)
        .map_or(s, |(i, _)| &s[i..])
}

/// `text` if it has at most `max` characters; else its first and last
/// characters (together at most `max` with the marker) around the marker
/// `[... N characters omitted ...]`, N exact.
pub fn cap(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let (head_n, tail_n) = split(max);
    format!(
        "{}\n[... {} characters omitted ...]\n{}",
        first_chars(text, head_n),
        total - head_n - tail_n,
        last_chars(text, tail_n)
    )
}

/// A long output read as two windows, `head` (its first
/// [`WINDOW_BYTES`], as lossy UTF-8) and `tail` (its last
/// [`WINDOW_BYTES`]), of `total_bytes` in all: the head's first and the
/// tail's last characters (together at most `max` with the marker) around
/// the marker `[... N bytes omitted ...]`. N counts bytes, since the
/// middle is never read; it is exact for UTF-8 output (an invalid byte
/// sequence, shown as U+FFFD, is counted as 3 bytes). A character cut by
/// a window's edge is never kept: the windows hold 4 bytes more than the
/// kept characters can need.
pub fn windows(head: &str, tail: &str, total_bytes: u64, max: usize) -> String {
    let (head_n, tail_n) = split(max);
    let head = first_chars(head, head_n);
    let tail = last_chars(tail, tail_n);
    let omitted = total_bytes.saturating_sub((head.len() + tail.len()) as u64);
    format!("{head}\n[... {omitted} bytes omitted ...]\n{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(cap("abc", 10), "abc");
    }

    #[test]
    fn long_text_keeps_head_and_tail_with_the_true_count() {
        let text: String = (0..100_000)
            .map(|i| {
                if i < 10 {
                    'H'
                } else if i >= 99_990 {
                    'T'
                } else {
                    'é'
                }
            })
            .collect();
        let out = cap(&text, MAX_CHARS);
        assert!(out.chars().count() <= MAX_CHARS);
        assert!(out.starts_with("HHHHHHHHHH"));
        assert!(out.ends_with("TTTTTTTTTT"));
        let (head, rest) = out.split_once("\n[... ").unwrap();
        let (n, tail) = rest.split_once(" characters omitted ...]\n").unwrap();
        let n: usize = n.parse().unwrap();
        assert_eq!(head.chars().count() + n + tail.chars().count(), 100_000);
    }

    #[test]
    fn windows_give_one_marker_with_the_omitted_bytes_and_never_split_a_char() {
        // 300,000 bytes of 1-, 2-, 3- and 4-byte characters.
        let unit = "aé€😀"; // 10 bytes
        let text: String = std::iter::repeat_n(unit, 30_000).collect();
        let bytes = text.as_bytes();
        let w = WINDOW_BYTES as usize;
        // Windows cut where they fall, as agentd reads them (lossy UTF-8).
        let head = String::from_utf8_lossy(&bytes[..w]);
        let tail = String::from_utf8_lossy(&bytes[bytes.len() - w..]);
        assert!(head.ends_with('\u{FFFD}') || tail.starts_with('\u{FFFD}'));
        let out = windows(&head, &tail, bytes.len() as u64, MAX_CHARS);
        assert!(out.chars().count() <= MAX_CHARS, "{}", out.chars().count());
        assert!(!out.contains('\u{FFFD}'));
        assert_eq!(out.matches("omitted").count(), 1);
        let (h, rest) = out.split_once("\n[... ").unwrap();
        let (n, t) = rest.split_once(" bytes omitted ...]\n").unwrap();
        let n: usize = n.parse().unwrap();
        assert!(text.starts_with(h) && text.ends_with(t));
        assert_eq!(h.len() + n + t.len(), bytes.len());
        assert!(h.chars().count() > 20_000 && t.chars().count() > 20_000);
    }
}
