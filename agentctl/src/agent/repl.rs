//! `agentctl chat`: the interactive REPL. rustyline gives line editing and
//! history; the model's text streams to the terminal; each tool call is one
//! line. While the prompt waits, a watcher task prints each background
//! job's end above it (rustyline's external printer) without acking it:
//! the result reaches the model with the next message, and is acked only
//! once that message is persisted. Ctrl-C cancels the turn in flight;
//! `/compact` compacts the conversation now;
//! Ctrl-D or `exit` leaves.

use super::cancel::Cancelled;
use super::notifications;
use super::session::{Session, fresh_name};
use super::sessions;
use super::style::{self, Style};
use super::transcript::{Block, Usage};
use super::turn::{TurnError, Ui};
use crate::GlobalOpts;
use crate::connect;
use agentd_proto::methods::{
    JobList, JobWait, ListParams, NotificationsPeek, NotificationsWait, NotificationsWaitParams,
    PeekParams, WaitParams,
};
use agentd_proto::{Client, JobState};
use rustyline::error::ReadlineError;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Prints a line above the prompt (or plainly when there is no terminal).
type Printer = Arc<Mutex<Option<Box<dyn rustyline::ExternalPrinter + Send>>>>;

fn print_line(printer: &Printer, line: String) {
    let mut guard = printer.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_mut() {
        Some(p) => {
            let _ = p.print(format!("{line}\n"));
        }
        None => println!("{line}"),
    }
}

/// Streams text to stdout; tool lines on lines of their own, each kind of
/// line in its own style ([`Style`]); a spinner until the model's first
/// token; the turn's token usage at its end.
struct ChatUi {
    /// True when the cursor is at the start of a line.
    at_line_start: bool,
    /// How lines look.
    style: Style,
    /// The spinner while a model call has not answered yet.
    spinner: Option<indicatif::ProgressBar>,
    /// Tokens reported by this turn's model calls, summed, and how many.
    turn_usage: (Usage, u32),
}

impl ChatUi {
    fn newline(&mut self) {
        self.stop_spinner();
        if !self.at_line_start {
            println!();
            self.at_line_start = true;
        }
    }

    fn stop_spinner(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }

    /// Ends the turn's output: the spinner goes, and the token usage of
    /// the turn (when the provider reported any) follows on a dim line.
    fn end_turn(&mut self) {
        self.newline();
        let (usage, calls) = std::mem::take(&mut self.turn_usage);
        if calls > 0 {
            println!("{}", self.style.usage(&usage, calls));
        }
    }
}

impl Ui for ChatUi {
    fn text(&mut self, delta: &str) {
        if delta.is_empty() {
            return;
        }
        self.stop_spinner();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(delta.as_bytes());
        let _ = out.flush();
        self.at_line_start = delta.ends_with('\n');
    }
    fn tool(&mut self, line: &str) {
        self.newline();
        println!("{}", self.style.tool(line));
    }
    fn notice(&mut self, line: &str) {
        self.newline();
        println!("{}", self.style.notice(line));
    }
    fn waiting(&mut self) {
        self.stop_spinner();
        self.spinner = Some(style::waiting_spinner());
    }
    fn usage(&mut self, usage: &Usage) {
        self.turn_usage.0.input_tokens += usage.input_tokens;
        self.turn_usage.0.output_tokens += usage.output_tokens;
        self.turn_usage.1 += 1;
    }
}

/// Runs the REPL.
///
/// Errors: config, agentd, transcript or terminal errors.
pub async fn run(
    global: &GlobalOpts,
    session: Option<String>,
    continue_: bool,
    workdir: Option<PathBuf>,
    sandbox: Option<agentd_proto::SandboxMode>,
) -> anyhow::Result<ExitCode> {
    let mut config = super::load_config().await?;
    config.apply_sandbox_flag(sandbox);
    let workdir = super::workdir(workdir)?;
    let name = match (session, continue_) {
        (Some(name), _) => name,
        (None, true) => match sessions::list()?.into_iter().next() {
            Some(s) => s.name,
            None => fresh_name(),
        },
        (None, false) => fresh_name(),
    };
    let client = Arc::new(connect::connect(&global.socket_path()).await?);
    let mut s = Session::open(&name, &workdir, client.clone(), config).await?;
    println!(
        "Session {name} ({} messages) in {} with {}. Ctrl-C cancels a turn; Ctrl-D or `exit` leaves.",
        s.transcript.messages().len(),
        s.tools.workdir.display(),
        s.provider.model()
    );
    let mut editor = rustyline::DefaultEditor::new()?;
    let printer: Printer =
        Arc::new(Mutex::new(editor.create_external_printer().ok().map(|p| {
            Box::new(p) as Box<dyn rustyline::ExternalPrinter + Send>
        })));
    let mut shown: Arc<Mutex<HashSet<u64>>> = Arc::default();
    // One SIGINT stream for the whole REPL: a Ctrl-C that arrived while no
    // turn ran (a terminal rustyline cannot put in raw mode) is drained
    // before each turn so it does not cancel the next one.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let style = Style::for_stdout();
    let mut ui = ChatUi {
        at_line_start: true,
        style,
        spinner: None,
        turn_usage: Default::default(),
    };
    loop {
        let watcher = tokio::spawn(watch(
            global.socket_path(),
            s.name.clone(),
            s.transcript.handled_jobs(),
            shown.clone(),
            printer.clone(),
            style,
        ));
        let (ed, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline("> ");
            (editor, line)
        })
        .await?;
        editor = ed;
        watcher.abort();
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if matches!(trimmed, "exit" | "quit") {
            break;
        }
        let _ = editor.add_history_entry(trimmed);
        if trimmed == "/compact" {
            let _ = tokio::time::timeout(std::time::Duration::ZERO, interrupt.recv()).await;
            let outcome = tokio::select! {
                r = super::compact::on_demand(&mut s) => Some(r),
                _ = interrupt.recv() => None,
            };
            match outcome {
                Some(Ok(line)) => println!("{line}"),
                Some(Err(TurnError::Provider(e))) => println!("agentctl: {e}"),
                Some(Err(TurnError::Other(e))) => println!("agentctl: error: {e:#}"),
                None => println!("(cancelled: the conversation is unchanged)"),
            }
            continue;
        }
        s.pending.push(Block::text(trimmed));
        let _ = tokio::time::timeout(std::time::Duration::ZERO, interrupt.recv()).await;
        let outcome = tokio::select! {
            r = s.turn(&mut ui) => Some(r),
            _ = interrupt.recv() => None,
        };
        ui.end_turn();
        match outcome {
            Some(Ok(_)) => {}
            Some(Err(TurnError::Provider(e))) => println!("agentctl: {e}"),
            Some(Err(TurnError::Other(e))) => println!("agentctl: error: {e:#}"),
            None => {
                let what = s.cancel()?;
                println!("{}", cancel_note(&what));
            }
        }
        // Results delivered to the model need no more showing.
        shown = Arc::default();
    }
    Ok(ExitCode::SUCCESS)
}

/// The line shown after Ctrl-C.
fn cancel_note(what: &Cancelled) -> &'static str {
    match what {
        Cancelled::PromptWithdrawn => "(cancelled: the model never saw that prompt; it is dropped)",
        Cancelled::AnswerKept => "(cancelled: the answer so far is kept)",
        Cancelled::ToolsAnswered | Cancelled::Nothing => "(cancelled)",
    }
}

/// How long one of the watcher's long-polls lasts (60 s). agentd answers a
/// long-poll even after its client has gone, so a watcher aborted at the
/// end of a prompt leaves its connection open on agentd's side until then;
/// short enough that prompts typed in a hurry do not pile them up.
const WATCH_POLL_MS: u64 = 60_000;

/// Prints each of the session's background results once as it arrives,
/// without acking. It uses connections of its own, one per round of
/// waits, so the waits it leaves behind when aborted at the end of the
/// prompt never take request slots from the session's own connection. `notifications.wait` returns at once while anything is
/// pending, so once a result is shown and waits for the next message the
/// watcher long-polls the session's live jobs with `job.wait` instead.
async fn watch(
    socket: PathBuf,
    session: String,
    handled: HashSet<String>,
    shown: Arc<Mutex<HashSet<u64>>>,
    printer: Printer,
    style: Style,
) -> anyhow::Result<()> {
    loop {
        // A connection per round: the waits of the last round that are
        // still pending (the other jobs' `job.wait`) end with it.
        let client = Arc::new(Client::connect(&socket).await?);
        let pending = client
            .call::<NotificationsPeek>(&PeekParams {
                session: Some(session.clone()),
                after_seq: None,
                max: Some(notifications::MAX_PER_CALL),
            })
            .await?
            .notifications;
        for n in &pending {
            let new = shown
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(n.seq);
            if new && !handled.contains(&n.job_id) {
                print_line(&printer, style.background(n));
            }
        }
        if pending.is_empty() {
            client
                .call::<NotificationsWait>(&NotificationsWaitParams {
                    session: Some(session.clone()),
                    timeout_ms: WATCH_POLL_MS,
                    max: None,
                })
                .await?;
            continue;
        }
        let live = client
            .call::<JobList>(&ListParams {
                states: Some(JobState::LIVE.to_vec()),
                session: Some(session.clone()),
                limit: Some(64),
                group: None,
                cursor: None,
            })
            .await?
            .jobs;
        if live.is_empty() {
            return Ok(());
        }
        let mut waits = tokio::task::JoinSet::new();
        for job in live {
            let client = client.clone();
            waits.spawn(async move {
                client
                    .call::<JobWait>(&WaitParams {
                        id: job.id,
                        timeout_secs: Some(WATCH_POLL_MS as f64 / 1000.0),
                    })
                    .await
            });
        }
        waits.join_next().await;
    }
}
