//! Fuzzes agentctl's transcript loader (`Transcript::open`) on whatever a
//! crash, a full disk or an editor may have left in a session file: it must
//! load or refuse with an error, never panic, and its repair must keep its
//! promises: the file afterwards is a prefix of what was there (plus at most
//! one `\n`), opening it again gives the same messages, and a message
//! appended after the repair is read back as one more message. The messages
//! then prepared for a model request open with the user and alternate roles.

#![no_main]

use agentctl::agent::transcript::{Block, Message, Role, Transcript, request_messages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("session.jsonl");
    std::fs::write(&path, data).expect("writing the transcript");
    let Ok(mut transcript) = Transcript::open(&path) else {
        assert_eq!(
            std::fs::read(&path).unwrap(),
            data,
            "a refused file is left as it was"
        );
        return;
    };
    let messages = transcript.messages().to_vec();
    let repaired = std::fs::read(&path).unwrap();
    let newline_added = repaired.len() == data.len() + 1 && repaired.starts_with(data);
    assert!(
        data.starts_with(&repaired) || newline_added,
        "the repaired file is a prefix of the original, or it plus a newline"
    );
    assert!(
        repaired.is_empty() || repaired.ends_with(b"\n"),
        "the repaired file ends on a line"
    );

    let sent = request_messages(&messages);
    assert!(sent.first().is_none_or(|m| m.role == Role::User));
    assert!(sent.windows(2).all(|w| w[0].role != w[1].role));

    transcript
        .push(Message::new(Role::User, vec![Block::text("appended")]))
        .expect("appending");
    drop(transcript);
    let again = Transcript::open(&path).expect("a repaired transcript opens");
    assert_eq!(again.messages().len(), messages.len() + 1);
    assert_eq!(&again.messages()[..messages.len()], &messages[..]);
});
