//! An isolated pueue (the closest existing tool, crates.io `pueue`) for the
//! side-by-side figures: installed into a cache dir when missing, a
//! `pueued` with its own config, directories and socket in a temp dir,
//! unlimited parallelism, killed when dropped.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pueue release the suite measures (the newest at the time of writing;
/// pinned so runs compare like with like).
pub const VERSION: &str = "4.0.4";

/// Makes sure `root/bin/pueue` and `root/bin/pueued` exist, running
/// `cargo install pueue --version VERSION --locked --root ROOT` if not.
///
/// Errors: cargo is missing or the install fails.
pub fn ensure_installed(cargo: &str, root: &Path) -> anyhow::Result<()> {
    if root.join("bin/pueued").exists() && root.join("bin/pueue").exists() {
        return Ok(());
    }
    eprintln!("installing pueue {VERSION} into {} ...", root.display());
    let status = Command::new(cargo)
        .args([
            "install",
            "pueue",
            "--version",
            VERSION,
            "--locked",
            "--root",
        ])
        .arg(root)
        .status()
        .with_context(|| format!("running {cargo} install pueue"))?;
    if !status.success() {
        bail!("cargo install pueue failed ({status})");
    }
    Ok(())
}

/// A running `pueued` and the config its clients use.
pub struct Pueue {
    child: Child,
    /// `root/bin` of the install.
    bin_dir: PathBuf,
    /// The config file both `pueued` and `pueue` are pointed at.
    config: PathBuf,
}

impl Pueue {
    /// Writes a config under `dir` (which must exist), starts `pueued` with
    /// it, waits until `pueue status` answers (pueued has no readiness
    /// signal, so this retries for 10 s at most) and sets the default
    /// group's parallelism to unlimited (`pueue parallel 0`).
    ///
    /// Errors: pueued does not start or does not answer in time.
    pub fn start(install_root: &Path, dir: &Path) -> anyhow::Result<Pueue> {
        let config = dir.join("pueue.yml");
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::create_dir_all(dir.join("run"))?;
        std::fs::write(
            &config,
            format!(
                "shared:\n  pueue_directory: {d}/data\n  runtime_directory: {d}/run\n  \
                 use_unix_socket: true\n  unix_socket_path: {d}/run/pueue.sock\n",
                d = dir.display()
            ),
        )?;
        let bin_dir = install_root.join("bin");
        let child = Command::new(bin_dir.join("pueued"))
            .arg("-c")
            .arg(&config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting pueued")?;
        let mut me = Pueue {
            child,
            bin_dir,
            config,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if me.cli(&["status"]).output()?.status.success() {
                break;
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("pueued exited ({status}) before answering");
            }
            if Instant::now() > deadline {
                bail!("pueued did not answer within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = me.cli(&["parallel", "0"]).output()?;
        if !out.status.success() {
            bail!(
                "pueue parallel 0 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(me)
    }

    /// pueued's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `pueue -c CONFIG ARGS…`, output captured.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("pueue"));
        cmd.arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `pueue add -p -- COMMAND`: the new task's id.
    ///
    /// Errors: pueue fails or prints no id.
    pub fn add(&self, command: &str) -> anyhow::Result<u64> {
        let out = self.cli(&["add", "-p", "--", command]).output()?;
        if !out.status.success() {
            bail!("pueue add failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("pueue add -p printed no task id")
    }

    /// `pueue status --json`, parsed.
    ///
    /// Errors: pueue fails or prints something else than JSON.
    pub fn status(&self) -> anyhow::Result<serde_json::Value> {
        let out = self.cli(&["status", "--json"]).output()?;
        if !out.status.success() {
            bail!(
                "pueue status failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// How many tasks are `Done`, and how many there are.
    ///
    /// Errors: as [`Pueue::status`].
    pub fn done_count(&self) -> anyhow::Result<(usize, usize)> {
        let status = self.status()?;
        let tasks = status["tasks"].as_object().context("no tasks in status")?;
        let done = tasks.values().filter(|t| is_done(t)).count();
        Ok((done, tasks.len()))
    }

    /// Whether task `id` is `Done`.
    ///
    /// Errors: as [`Pueue::status`].
    pub fn is_task_done(&self, id: u64) -> anyhow::Result<bool> {
        let status = self.status()?;
        Ok(is_done(&status["tasks"][id.to_string()]))
    }

    /// Waits (checking every 100 ms, 10 minutes at most) until every task
    /// is `Done`.
    ///
    /// Errors: pueue fails, or the tasks do not finish in time.
    pub fn wait_all_done(&self) -> anyhow::Result<usize> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let (done, total) = self.done_count()?;
            if done == total {
                return Ok(total);
            }
            if Instant::now() > deadline {
                bail!("pueue: {done} of {total} tasks done after 10 minutes");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// True for a task object whose `status` is `{"Done": {...}}`.
fn is_done(task: &serde_json::Value) -> bool {
    task["status"].get("Done").is_some()
}

impl Drop for Pueue {
    fn drop(&mut self) {
        let _ = self.cli(&["kill", "--all"]).output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
