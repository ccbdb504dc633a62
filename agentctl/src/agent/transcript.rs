//! The conversation and its transcript file: one JSON message per line in
//! `<state dir>/sessions/<name>.jsonl`, appended and flushed after every
//! message, so a later `agentctl` run continues where this one stopped.
//!
//! Messages are kept in a provider-neutral shape close to Anthropic's
//! (content blocks: text, tool_use, tool_result); each provider converts.
//! Bookkeeping fields make background delivery exactly-once across
//! crashes: `bg_jobs` (jobs whose notification this message carries),
//! `fg_jobs` (jobs whose result reached the model as a `bash` tool result,
//! so their notification is not repeated) and, for the record, `bg_seq`
//! (the highest notification `seq` handled with this message). Job ids
//! (UUIDs) rather than seqs decide what was delivered, so a daemon whose
//! state was reset, restarting seqs at 1, cannot make results vanish.
//!
//! The file is append-only. Besides messages it holds records
//! ([`Record`]): a prompt withdrawn because its turn was cancelled before
//! the model answered, and compactions, each carrying the view that
//! replaces the messages before it. [`Transcript::view`] is what the model
//! is sent; [`Transcript::messages`] is the full history, which decides
//! what was delivered (so compaction never redelivers a result).

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Who sent a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person (and tool results, and background results).
    User,
    /// The model.
    Assistant,
}

/// One content block of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool to run.
    ToolUse {
        /// The provider's id for this call, echoed in the result.
        id: String,
        /// Tool name (docs/agent.md, "Tools").
        name: String,
        /// The tool's input object.
        input: Value,
    },
    /// The answer to a `ToolUse`, in the next user message.
    ToolResult {
        /// The `ToolUse` id it answers.
        tool_use_id: String,
        /// The result text shown to the model.
        content: String,
        /// True when the tool failed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

impl Block {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Block {
        Block::Text { text: text.into() }
    }
}

/// One message of the conversation, as stored on a transcript line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Sender.
    pub role: Role,
    /// Content blocks, in order.
    pub content: Vec<Block>,
    /// Highest notification `seq` delivered (or skipped) with this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bg_seq: Option<u64>,
    /// Full ids of jobs whose notification this message delivers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bg_jobs: Vec<String>,
    /// The `dropped_up_to_seq` of the drops this message told the model
    /// of (agentd's pending cap dropped results unread), so a run that
    /// died before its ack does not tell them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bg_dropped_seq: Option<u64>,
    /// Full ids of jobs whose result this message gave as a `bash` tool
    /// result; their notifications are acked without being shown again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fg_jobs: Vec<String>,
    /// The provider's token counts for the call that produced this
    /// (assistant) message: the size of the context it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// Token counts a provider reported for one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the request (system, tools and messages; cached ones
    /// included).
    pub input_tokens: u64,
    /// Tokens of the reply.
    pub output_tokens: u64,
}

/// A transcript line that is not a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The user message at this index (among all messages) belongs to a
    /// turn cancelled before the model answered: its text is never sent
    /// (its tool results, if any, still are).
    Withdrawn {
        /// Index of the message in [`Transcript::messages`].
        message: usize,
    },
    /// The conversation was compacted.
    Compaction(Compaction),
}

/// A compaction: `view` replaces the first `upto` messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Compaction {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// How many messages of the full history it replaces.
    pub upto: usize,
    /// How many messages of the view before it went into the summary.
    pub summarised: usize,
    /// Estimated context size before and after, in tokens.
    pub tokens_before: u64,
    /// See `tokens_before`.
    pub tokens_after: u64,
    /// The summary as a user message, then the kept messages (old large
    /// tool results elided).
    pub view: Vec<Message>,
    /// For each message of `view`, the index in the full history it
    /// copies, if any (so a later [`Record::Withdrawn`] applies to it).
    #[serde(default)]
    pub origins: Vec<Option<usize>>,
}

/// One line of the file.
#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Message(Message),
    Record(Record),
}

impl Message {
    /// A message with no bookkeeping fields.
    pub fn new(role: Role, content: Vec<Block>) -> Message {
        Message {
            role,
            content,
            bg_seq: None,
            bg_jobs: Vec::new(),
            bg_dropped_seq: None,
            fg_jobs: Vec::new(),
            usage: None,
        }
    }

    /// The message without its bookkeeping (as copied into a view).
    pub fn bare(&self) -> Message {
        Message::new(self.role, self.content.clone())
    }

    /// The message's text blocks joined by newlines.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        parts.join("\n")
    }

    /// Ids of the tool calls in this message.
    pub fn tool_use_ids(&self) -> Vec<String> {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A session's conversation, mirrored to its transcript file.
pub struct Transcript {
    /// Every message, oldest first, as persisted.
    messages: Vec<Message>,
    /// Indexes of withdrawn user messages.
    withdrawn: HashSet<usize>,
    /// The last compaction, if any.
    compaction: Option<Compaction>,
    /// The open transcript file (append mode).
    file: File,
    /// Its path, for messages.
    path: PathBuf,
}

impl Transcript {
    /// Opens (creating if absent) the transcript at `path` and loads it.
    /// A last line cut mid-write is dropped.
    ///
    /// Errors: the directory or file cannot be created or read; a line
    /// other than the last is not a message.
    pub fn open(path: &Path) -> anyhow::Result<Transcript> {
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let (loaded, valid_len) = load(path)?;
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // Drop a torn last line, and end a whole last line cut just before
        // its newline, so the next append starts on a fresh line.
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > valid_len {
            file.set_len(valid_len)
                .with_context(|| format!("cannot repair {}", path.display()))?;
        } else if len + 1 == valid_len {
            (&file)
                .write_all(b"\n")
                .with_context(|| format!("cannot repair {}", path.display()))?;
        }
        Ok(loaded.into_transcript(file, path))
    }

    /// Loads the transcript at `path` without repairing or locking it (for
    /// `agentctl sessions show`, which may look at a session in use). Its
    /// [`Transcript::push`] fails.
    ///
    /// Errors: the file cannot be read; a line other than the last is not
    /// a message.
    pub fn open_read_only(path: &Path) -> anyhow::Result<Transcript> {
        let (loaded, _) = load(path)?;
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(loaded.into_transcript(file, path))
    }

    /// The messages so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The transcript's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last compaction, if any.
    pub fn compaction(&self) -> Option<&Compaction> {
        self.compaction.as_ref()
    }

    /// What the model is sent: the last compaction's view, then the
    /// messages after it, withdrawn prompts without their text. Each
    /// message comes with the index in [`Transcript::messages`] it
    /// copies, if any.
    pub fn view_with_origins(&self) -> Vec<(Message, Option<usize>)> {
        let (mut out, start): (Vec<(Message, Option<usize>)>, usize) = match &self.compaction {
            Some(c) => (
                c.view
                    .iter()
                    .cloned()
                    .zip(c.origins.iter().copied().chain(std::iter::repeat(None)))
                    .collect(),
                c.upto.min(self.messages.len()),
            ),
            None => (Vec::new(), 0),
        };
        out.extend(
            self.messages[start..]
                .iter()
                .enumerate()
                .map(|(i, m)| (m.clone(), Some(start + i))),
        );
        for (m, origin) in &mut out {
            if origin.is_some_and(|i| self.withdrawn.contains(&i)) {
                m.content.retain(|b| !matches!(b, Block::Text { .. }));
            }
        }
        out
    }

    /// [`Transcript::view_with_origins`] without the origins.
    pub fn view(&self) -> Vec<Message> {
        self.view_with_origins()
            .into_iter()
            .map(|(m, _)| m)
            .collect()
    }

    /// Writes one line, flushed and synced to disk.
    fn append(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Appends a message: writes its line, flushes and syncs it to disk,
    /// then keeps it in memory.
    ///
    /// Errors: the write or sync fails.
    pub fn push(&mut self, message: Message) -> anyhow::Result<()> {
        self.append(&message)?;
        self.messages.push(message);
        Ok(())
    }

    /// Records that the user message at `index` is withdrawn (its turn
    /// was cancelled before the model answered).
    ///
    /// Errors: the write fails.
    pub fn withdraw(&mut self, index: usize) -> anyhow::Result<()> {
        self.append(&Record::Withdrawn { message: index })?;
        self.withdrawn.insert(index);
        Ok(())
    }

    /// Appends a compaction record; from now on [`Transcript::view`]
    /// starts from its view.
    ///
    /// Errors: the write fails.
    pub fn push_compaction(&mut self, compaction: Compaction) -> anyhow::Result<()> {
        self.append(&Record::Compaction(compaction.clone()))?;
        self.compaction = Some(compaction);
        Ok(())
    }

    /// Jobs whose end the model already has (as a background result or as
    /// a `bash` result): their notifications are acked, not shown again.
    pub fn handled_jobs(&self) -> HashSet<String> {
        self.messages
            .iter()
            .flat_map(|m| m.bg_jobs.iter().chain(&m.fg_jobs).cloned())
            .collect()
    }

    /// The drops (their `dropped_up_to_seq`) the model was told of.
    pub fn told_drops(&self) -> HashSet<u64> {
        self.messages
            .iter()
            .filter_map(|m| m.bg_dropped_seq)
            .collect()
    }

    /// Tool calls of the last message left without a result (the run was
    /// cut mid-turn): one error result each, to open the next user message.
    pub fn unanswered(&self) -> Vec<Block> {
        match self.messages.last() {
            Some(m) if m.role == Role::Assistant => m
                .tool_use_ids()
                .into_iter()
                .map(|id| Block::ToolResult {
                    tool_use_id: id,
                    content: "error: interrupted: agentctl stopped before this tool call \
                              finished; it may or may not have taken effect"
                        .into(),
                    is_error: true,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The text of the newest assistant message, if any.
    pub fn last_assistant_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .map(Message::text)
    }
}

/// What [`load`] read.
#[derive(Default)]
struct Loaded {
    messages: Vec<Message>,
    withdrawn: HashSet<usize>,
    compaction: Option<Compaction>,
}

impl Loaded {
    fn into_transcript(self, file: File, path: &Path) -> Transcript {
        Transcript {
            messages: self.messages,
            withdrawn: self.withdrawn,
            compaction: self.compaction,
            file,
            path: path.to_path_buf(),
        }
    }
}

/// Reads the lines of `path` (none when it does not exist); also returns
/// the byte length of its good lines. A last line cut mid-write is
/// skipped.
fn load(path: &Path) -> anyhow::Result<(Loaded, u64)> {
    let mut out = Loaded::default();
    let mut valid_len = 0u64;
    let Ok(f) = File::open(path) else {
        return Ok((out, 0));
    };
    let lines: Vec<Vec<u8>> = BufReader::new(f)
        .split(b'\n')
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let count = lines.len();
    for (i, bytes) in lines.iter().enumerate() {
        // Lengths count the bytes on disk, not their lossy decoding
        // (which grows each invalid byte to three), so a repair
        // cuts the file where the good lines end.
        let line = String::from_utf8_lossy(bytes);
        if line.trim().is_empty() {
            valid_len += bytes.len() as u64 + 1;
            continue;
        }
        match serde_json::from_str::<Line>(&line) {
            Ok(l) => {
                match l {
                    Line::Message(m) => out.messages.push(m),
                    Line::Record(Record::Withdrawn { message }) => {
                        out.withdrawn.insert(message);
                    }
                    Line::Record(Record::Compaction(c)) => out.compaction = Some(c),
                }
                valid_len += bytes.len() as u64 + 1;
            }
            Err(_) if i + 1 == count => break,
            Err(e) => {
                anyhow::bail!("{} line {}: not a message: {e}", path.display(), i + 1)
            }
        }
    }
    Ok((out, valid_len))
}

/// The messages to send: consecutive messages of one role merged (a run
/// cut after persisting a user message leaves two in a row), tool results
/// first in each user message, and empty messages dropped.
pub fn request_messages(messages: &[Message]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    for m in messages.iter().filter(|m| !m.content.is_empty()) {
        match out.last_mut() {
            Some(last) if last.role == m.role => last.content.extend(m.content.iter().cloned()),
            _ => out.push(Message::new(m.role, m.content.clone())),
        }
    }
    for m in out.iter_mut().filter(|m| m.role == Role::User) {
        m.content
            .sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
    }
    // A conversation must open with the user.
    while out.first().is_some_and(|m| m.role == Role::Assistant) {
        out.remove(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found by the `transcript_loading` fuzz target: a good line holding a
    /// byte that is not UTF-8, then a torn last line. The repair cut the
    /// file two bytes too late, leaving the torn line's start, so the next
    /// message appended was glued to it and lost at the next load.
    #[test]
    fn a_repair_after_a_line_with_invalid_utf8_cuts_at_the_right_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut data =
            b"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\xffb\"}]}\n".to_vec();
        let good = data.len();
        data.extend_from_slice(b"{\"role\":\"assistant\",\"con");
        std::fs::write(&path, &data).unwrap();
        let mut t = Transcript::open(&path).unwrap();
        assert_eq!(t.messages().len(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), &data[..good]);
        t.push(Message::new(Role::Assistant, vec![Block::text("kept")]))
            .unwrap();
        drop(t);
        let t = Transcript::open(&path).unwrap();
        assert_eq!(t.messages().len(), 2);
        assert_eq!(t.messages()[1].text(), "kept");
    }

    fn tool_use(id: &str) -> Block {
        Block::ToolUse {
            id: id.into(),
            name: "bash".into(),
            input: json!({"command": "ls"}),
        }
    }

    #[test]
    fn cut_transcript_is_repaired_with_error_results() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        {
            let mut t = Transcript::open(&path).unwrap();
            t.push(Message::new(Role::User, vec![Block::text("hi")]))
                .unwrap();
            t.push(Message::new(
                Role::Assistant,
                vec![Block::text("sure"), tool_use("a"), tool_use("b")],
            ))
            .unwrap();
        }
        // A torn half line at the end, as a kill mid-write leaves.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"role\":\"us")
            .unwrap();
        let mut t = Transcript::open(&path).unwrap();
        assert_eq!(t.messages().len(), 2);
        let repair = t.unanswered();
        assert_eq!(repair.len(), 2);
        assert!(
            matches!(&repair[0], Block::ToolResult { tool_use_id, is_error: true, .. } if tool_use_id == "a")
        );
        t.push(Message::new(Role::User, repair)).unwrap();
        let again = Transcript::open(&path).unwrap();
        assert_eq!(again.messages().len(), 3);
        assert!(again.unanswered().is_empty());
    }

    #[test]
    fn a_last_line_without_its_newline_is_kept_and_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(
            &path,
            r#"{"role":"user","content":[{"type":"text","text":"a"}]}"#,
        )
        .unwrap();
        let mut t = Transcript::open(&path).unwrap();
        assert_eq!(t.messages().len(), 1);
        t.push(Message::new(Role::Assistant, vec![Block::text("b")]))
            .unwrap();
        assert_eq!(Transcript::open(&path).unwrap().messages().len(), 2);
    }

    #[test]
    fn request_merges_consecutive_user_messages_results_first() {
        let msgs = vec![
            Message::new(Role::User, vec![Block::text("one")]),
            Message::new(Role::Assistant, vec![tool_use("x")]),
            Message::new(Role::User, vec![Block::text("bg")]),
            Message::new(
                Role::User,
                vec![Block::ToolResult {
                    tool_use_id: "x".into(),
                    content: "ok".into(),
                    is_error: false,
                }],
            ),
        ];
        let req = request_messages(&msgs);
        assert_eq!(req.len(), 3);
        assert!(matches!(req[2].content[0], Block::ToolResult { .. }));
        assert_eq!(req[2].content.len(), 2);
    }

    #[test]
    fn the_view_starts_from_the_last_compaction_and_drops_withdrawn_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.jsonl");
        let mut t = Transcript::open(&path).unwrap();
        let mut delivered = Message::new(Role::User, vec![Block::text("old")]);
        delivered.bg_jobs = vec!["job-1".into()];
        t.push(delivered).unwrap();
        t.push(Message::new(Role::Assistant, vec![Block::text("a")]))
            .unwrap();
        t.push(Message::new(Role::User, vec![Block::text("kept")]))
            .unwrap();
        t.push_compaction(Compaction {
            at: "now".into(),
            upto: 3,
            summarised: 2,
            tokens_before: 100,
            tokens_after: 10,
            view: vec![
                Message::new(Role::User, vec![Block::text("SUMMARY")]),
                Message::new(Role::User, vec![Block::text("kept")]),
            ],
            origins: vec![None, Some(2)],
        })
        .unwrap();
        t.push(Message::new(Role::User, vec![Block::text("after")]))
            .unwrap();
        // The prompt copied into the compaction's view is withdrawn too.
        t.withdraw(2).unwrap();
        drop(t);
        let t = Transcript::open(&path).unwrap();
        let texts: Vec<String> = t.view().iter().map(Message::text).collect();
        assert_eq!(texts, ["SUMMARY", "", "after"]);
        assert_eq!(t.messages().len(), 4);
        assert!(
            t.handled_jobs().contains("job-1"),
            "the full history decides"
        );
        assert_eq!(t.compaction().unwrap().summarised, 2);
    }

    #[test]
    fn handled_jobs_are_those_delivered_or_reported_by_bash() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Transcript::open(&dir.path().join("t.jsonl")).unwrap();
        let mut m = Message::new(Role::User, vec![Block::text("x")]);
        m.bg_seq = Some(7);
        m.bg_jobs = vec!["bg".into()];
        m.fg_jobs = vec!["job".into()];
        t.push(m).unwrap();
        t.push(Message::new(Role::Assistant, vec![Block::text("y")]))
            .unwrap();
        let handled = Transcript::open(&dir.path().join("t.jsonl"))
            .unwrap()
            .handled_jobs();
        assert_eq!(handled.len(), 2);
        assert!(handled.contains("job") && handled.contains("bg"));
    }
}
