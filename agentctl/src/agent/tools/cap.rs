//! Keeping tool output within what the model should read: at most
//! [`MAX_CHARS`] characters, the head and the tail kept with a marker
//! between them saying how much was left out.

/// Most characters of one tool result.
pub const MAX_CHARS: usize = 50_000;

/// `text` if it has at most `max` characters; else its first and last
/// parts (together `max` characters minus the marker) around a marker line.
pub fn cap(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let marker_room = 80;
    let keep = max.saturating_sub(marker_room);
    let head_n = keep / 2;
    let tail_n = keep - head_n;
    let head: String = text.chars().take(head_n).collect();
    let tail: String = text.chars().skip(total - tail_n).collect();
    format!(
        "{head}\n[... {} characters omitted ...]\n{tail}",
        total - head_n - tail_n
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(cap("abc", 10), "abc");
    }

    #[test]
    fn long_text_keeps_head_and_tail_within_the_limit() {
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
        assert!(out.contains("characters omitted"));
    }
}
