//! How big the conversation is, in tokens: the provider's own count for the
//! last call (`usage`, stored on the assistant message it produced) plus an
//! estimate of what was added since (bytes / 4, the usual rule of thumb for
//! English and code), and the context window each model has.

use super::provider::ToolSpec;
use super::transcript::Message;

/// Bytes per token for the estimate of text the provider has not counted.
pub const BYTES_PER_TOKEN: u64 = 4;

/// Compaction starts when the estimate reaches this share of the window
/// (percent): the remaining 20% leaves room for the reply (`max_tokens`)
/// and for the estimate being off.
pub const THRESHOLD_PERCENT: u64 = 80;

/// Context window of a model, in tokens, when the config file does not set
/// `context_window_tokens`. From the providers' model pages: Claude models
/// 200k; GPT-4.1 about 1M; GPT-5 400k; o1/o3/o4 200k; GPT-4o and others
/// 128k (a local server's window may be smaller: set the key then).
pub fn default_window(model: &str) -> u64 {
    let m = model.to_ascii_lowercase();
    let table: [(&str, u64); 6] = [
        ("claude", 200_000),
        ("gpt-4.1", 1_047_576),
        ("gpt-5", 400_000),
        ("o1", 200_000),
        ("o3", 200_000),
        ("o4", 200_000),
    ];
    table
        .iter()
        .find(|(prefix, _)| m.starts_with(prefix))
        .map_or(128_000, |(_, n)| *n)
}

/// The token count at which compaction starts for a window.
pub fn threshold(window: u64) -> u64 {
    window / 100 * THRESHOLD_PERCENT
}

/// Estimated tokens of a message's content (its JSON, bytes / 4).
pub fn message_tokens(m: &Message) -> u64 {
    let bytes = serde_json::to_string(&m.content).map_or(0, |s| s.len() as u64);
    bytes.div_ceil(BYTES_PER_TOKEN)
}

/// Estimated size of a request carrying `view`, in tokens: the input and
/// output tokens the provider reported for the newest assistant message
/// that has them, plus the estimate for the messages after it; without
/// any report, the estimate of everything (system prompt and tools
/// included).
pub fn estimate(system: &str, tools: &[ToolSpec], view: &[Message]) -> u64 {
    let last = view
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, m)| m.usage.map(|u| (i, u)));
    match last {
        Some((i, u)) => {
            u.input_tokens + u.output_tokens + view[i + 1..].iter().map(message_tokens).sum::<u64>()
        }
        None => {
            let fixed = system.len() as u64
                + tools
                    .iter()
                    .map(|t| (t.description.len() + t.input_schema.to_string().len()) as u64)
                    .sum::<u64>();
            fixed.div_ceil(BYTES_PER_TOKEN) + view.iter().map(message_tokens).sum::<u64>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::transcript::{Block, Role, Usage};

    #[test]
    fn reported_usage_counts_and_only_later_messages_are_estimated() {
        let mut a = Message::new(Role::Assistant, vec![Block::text("hi")]);
        a.usage = Some(Usage {
            input_tokens: 1000,
            output_tokens: 10,
        });
        let later = Message::new(Role::User, vec![Block::text("x".repeat(400))]);
        let view = vec![
            Message::new(Role::User, vec![Block::text("y".repeat(40_000))]),
            a,
            later.clone(),
        ];
        assert_eq!(estimate("", &[], &view), 1010 + message_tokens(&later));
        assert!(estimate("", &[], &view[..1]) >= 10_000);
    }

    #[test]
    fn windows_come_from_the_model_name() {
        assert_eq!(default_window("claude-sonnet-4-5"), 200_000);
        assert_eq!(default_window("gpt-4o-mini"), 128_000);
        assert_eq!(threshold(200_000), 160_000);
    }
}
