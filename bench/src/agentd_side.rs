//! An isolated agentd for the suite: its own socket, state dir and XDG dirs
//! in a temp dir, started from the release binaries, killed with its jobs
//! when dropped.

use agentd_proto::Client;
use anyhow::{Context, bail, ensure};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running agentd and the paths that reach it.
pub struct Agentd {
    child: Child,
    /// Where `agentd` and `agentctl` live.
    bin_dir: PathBuf,
    /// Socket, state and XDG dirs.
    paths: Paths,
}

/// The dirs of one isolated agentd, all under one root.
struct Paths {
    /// The temp dir holding the rest.
    root: PathBuf,
    /// `AGENTD_SOCKET`.
    socket: PathBuf,
    /// `AGENTD_STATE_DIR`.
    state_dir: PathBuf,
}

impl Paths {
    fn under(root: &Path) -> Paths {
        Paths {
            root: root.to_owned(),
            socket: root.join("run/agentd/agentd.sock"),
            state_dir: root.join("state/agentd"),
        }
    }

    /// `program` with socket, state dirs and XDG dirs set, auto-start off,
    /// no colour, and no systemd variables.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let r = &self.root;
        let mut cmd = Command::new(program);
        cmd.env("AGENTD_SOCKET", &self.socket)
            .env("AGENTD_STATE_DIR", &self.state_dir)
            .env("AGENTCTL_STATE_DIR", r.join("state/agentctl"))
            .env("XDG_RUNTIME_DIR", r.join("run"))
            .env("XDG_STATE_HOME", r.join("state"))
            .env("XDG_CONFIG_HOME", r.join("config"))
            .env("AGENTCTL_NO_AUTOSTART", "1")
            .env("NO_COLOR", "1")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .current_dir(r);
        cmd
    }
}

impl Agentd {
    /// Starts `bin_dir/agentd` under `root` (which must exist) and returns
    /// once its log says it listens (the same readiness line the tests use).
    ///
    /// Errors: the binary cannot start, or exits before listening.
    pub fn start(bin_dir: &Path, root: &Path) -> anyhow::Result<Agentd> {
        Agentd::start_with_config(bin_dir, root, None)
    }

    /// As [`Agentd::start`], with `config` (TOML) as agentd's config file.
    ///
    /// Errors: as [`Agentd::start`]; the config file cannot be written.
    pub fn start_with_config(
        bin_dir: &Path,
        root: &Path,
        config: Option<&str>,
    ) -> anyhow::Result<Agentd> {
        let paths = Paths::under(root);
        if let Some(config) = config {
            let dir = root.join("config/agentd");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("config.toml"), config)?;
        }
        let mut cmd = paths.command(bin_dir.join("agentd"));
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting agentd")?;
        let stderr = child.stderr.take().context("agentd's stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let ready = lines.by_ref().map_while(Result::ok).any(|line| {
            let ready = line.contains("listening");
            seen.push(line);
            ready
        });
        if !ready {
            let status = child.wait()?;
            bail!(
                "agentd exited ({status}) before listening:\n{}",
                seen.join("\n")
            );
        }
        // Keep reading its log so agentd never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        Ok(Agentd {
            child,
            bin_dir: bin_dir.to_owned(),
            paths,
        })
    }

    /// agentd's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new protocol client.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(&self.paths.socket).await?)
    }

    /// `program` with this daemon's environment (see [`Paths::command`]).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.paths.command(program)
    }

    /// The state dir (`AGENTD_STATE_DIR`): the database and job output.
    pub fn state_dir(&self) -> &Path {
        &self.paths.state_dir
    }

    /// Stops the daemon (`agentctl daemon stop`, its jobs kept) and waits
    /// for it to exit, so its database can be written by others.
    ///
    /// Errors: agentctl cannot run, or agentd does not exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let out = self.agentctl().args(["daemon", "stop"]).output()?;
        ensure!(
            out.status.success(),
            "agentctl daemon stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.child.wait()?;
        Ok(())
    }

    /// `agentctl ARGS…` against this daemon.
    pub fn agentctl(&self) -> Command {
        self.command(self.bin_dir.join("agentctl"))
    }
}

impl Drop for Agentd {
    fn drop(&mut self) {
        // `kill` ends the jobs too; a daemon that cannot answer is killed.
        let _ = self
            .agentctl()
            .args(["daemon", "stop", "--kill-jobs"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
