//! The world of an agent test: a real agentd in a [`TestEnv`], the model
//! faked by a [`FakeLlm`], and `agentctl` commands pointed at both. Every
//! request the fake received is validated when the world is dropped, so a
//! test fails on an invalid request whatever it asserts.

use crate::fake_llm::{FakeLlm, Reply};
use crate::{Daemon, TestEnv, mkfifo, run};
use agentd_proto::methods::{
    JobList, JobWait, ListParams, NotificationsPeek, PeekParams, WaitParams,
};
use agentd_proto::{Client, Job};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The Anthropic API key the world's `agentctl` gets; no file or job may
/// hold it.
pub const ANTHROPIC_KEY: &str = "sk-ant-test-SECRET-4242";
/// The OpenAI API key the world's `agentctl` gets.
pub const OPENAI_KEY: &str = "sk-openai-test-SECRET-1717";

/// A test's agentd, fake model and runtime.
pub struct World {
    /// The fake model server.
    pub llm: FakeLlm,
    /// A runtime for the protocol calls of synchronous tests.
    pub rt: tokio::runtime::Runtime,
    /// The daemon (a test may take it to kill or restart it).
    pub daemon: Option<Daemon>,
    /// The environment.
    pub env: TestEnv,
}

impl World {
    /// A world whose model answers with `script`, in order.
    pub fn new(script: Vec<Reply>) -> World {
        World::with_daemon(script, |_| {})
    }

    /// A world whose agentd is started after `configure` adjusts its
    /// command.
    pub fn with_daemon(script: Vec<Reply>, configure: impl FnOnce(&mut Command)) -> World {
        let env = TestEnv::new();
        let daemon = env.start_daemon_with(configure);
        World {
            llm: FakeLlm::start(script),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime"),
            daemon: Some(daemon),
            env,
        }
    }

    /// `agentctl` with the fake model as its Anthropic base URL and both
    /// API keys set.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.env.agentctl();
        cmd.env("ANTHROPIC_BASE_URL", self.llm.url())
            .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
            .env("OPENAI_API_KEY", OPENAI_KEY);
        cmd
    }

    /// `agentctl ask --session SESSION PROMPT`: (exit code, stdout, stderr).
    pub fn ask(&self, session: &str, prompt: &str) -> (i32, String, String) {
        run(self.cmd().args(["ask", "--session", session, prompt]))
    }

    /// A protocol client of the world's daemon.
    ///
    /// Panics when the test took the daemon.
    pub fn client(&self) -> Client {
        self.rt
            .block_on(self.daemon.as_ref().expect("a daemon").client())
    }

    /// The newest jobs of `session` (one `job.list` page).
    pub fn jobs(&self, session: &str) -> Vec<Job> {
        let c = self.client();
        self.rt
            .block_on(c.call::<JobList>(&ListParams {
                session: Some(session.into()),
                ..Default::default()
            }))
            .expect("job.list")
            .jobs
    }

    /// `job.wait` for up to 30 s: the job, finished or as it stands then.
    pub fn wait_job(&self, id: &str) -> Job {
        let c = self.client();
        self.rt
            .block_on(c.call::<JobWait>(&WaitParams {
                id: id.into(),
                timeout_secs: Some(30.0),
            }))
            .expect("job.wait")
    }

    /// How many results of `session` are pending (one peek page).
    pub fn pending(&self, session: &str) -> usize {
        let c = self.client();
        self.rt
            .block_on(c.call::<NotificationsPeek>(&PeekParams {
                session: Some(session.into()),
                ..Default::default()
            }))
            .expect("notifications.peek")
            .notifications
            .len()
    }

    /// The workspace the agent runs in.
    pub fn workdir(&self) -> PathBuf {
        self.env.workdir()
    }

    /// A FIFO in the workspace that jobs block on with `read x < NAME`;
    /// [`crate::release`] lets them go on.
    pub fn gate(&self, name: &str) -> PathBuf {
        let path = self.workdir().join(name);
        mkfifo(&path);
        path
    }

    /// agentctl's transcript directory.
    pub fn transcripts(&self) -> PathBuf {
        self.env.root().join("state/agentctl/sessions")
    }
}

impl Drop for World {
    /// Every test, whatever it asserts, fails on an invalid request.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.llm.requests();
        }
    }
}

/// The tool results of a request's last user message: (content, is_error).
pub fn tool_results(req: &Value) -> Vec<(String, bool)> {
    let last = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    last["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (
                b["content"].as_str().unwrap_or_default().to_string(),
                b["is_error"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}
