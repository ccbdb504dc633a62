//! A real single-node Slurm cluster for one test: `tests/slurm/cluster.sh`
//! starts munged, slurmctld and slurmd in a temp dir (on free ports, so
//! tests run side by side) and [`Cluster`]'s drop stops exactly those.
//!
//! Where Slurm is not installed (or the tests do not run as root, which
//! this cluster's `SlurmUser=root` needs), [`Cluster::start`] says
//! `skipped: WHY` on stderr and returns `None`, unless
//! `AGENTD_REQUIRE_SLURM=1` (set by `.ci/run` after installing Slurm):
//! then it panics, so a broken install fails the tests instead of
//! skipping them quietly.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running test cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// Its slurm.conf: give it to agentd as `SLURM_CONF`.
    pub conf: PathBuf,
}

/// The project's start/stop script.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("slurm/cluster.sh")
}

/// Two distinct free ports (both bound at once, then released).
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("finding a free port");
    let (a, b) = (bind(), bind());
    let port = |l: &std::net::TcpListener| l.local_addr().expect("a bound port").port();
    (port(&a), port(&b))
}

/// Why Slurm cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    for prog in [
        "sbatch",
        "squeue",
        "scontrol",
        "scancel",
        "slurmctld",
        "slurmd",
        "munged",
    ] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).exists()));
        if !found {
            return Some(format!(
                "{prog} is not installed (apt-get install slurmctld slurmd slurm-client munge)"
            ));
        }
    }
    if !rustix::process::getuid().is_root() {
        return Some("the test cluster runs its daemons as root (SlurmUser=root)".into());
    }
    None
}

impl Cluster {
    /// Starts a cluster and waits until its node is idle; `None` (after
    /// saying `skipped: WHY` for `test`) where Slurm cannot run.
    ///
    /// Panics when Slurm is missing but required (`AGENTD_REQUIRE_SLURM=1`),
    /// or the cluster does not come up.
    pub fn start(test: &str) -> Option<Cluster> {
        if let Some(why) = unavailable() {
            if std::env::var("AGENTD_REQUIRE_SLURM").as_deref() == Ok("1") {
                panic!("{test}: Slurm is required here (AGENTD_REQUIRE_SLURM=1) but {why}");
            }
            eprintln!("skipped: {test}: {why}");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("agentd-slurm-")
            .tempdir()
            .expect("creating the cluster's temp dir");
        let (ctld, slurmd) = free_ports();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .arg(ctld.to_string())
            .arg(slurmd.to_string())
            .env_remove("AGENTD_TEST_MARKER")
            .output()
            .expect("running cluster.sh");
        assert!(
            out.status.success(),
            "cluster.sh start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(Cluster { dir, conf })
    }

    /// The cluster's directory (state, logs, jobcomp record).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}
