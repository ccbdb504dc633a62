//! Submitting a job to Slurm: the batch script, the `sbatch` arguments and
//! the job's environment file.
//!
//! The script is `#!/bin/sh` that sources the job's environment file,
//! deletes it, and `exec`s `/bin/sh -c COMMAND`; it is sent to `sbatch` on
//! stdin, so it is never a file agentd keeps. The environment does not go
//! on `--export=` (Slurm cuts values at commas there) nor into sbatch's own
//! environment (slurmctld stores a job's environment in its state dir,
//! where a secret would stay at rest): it is written to a 0600 file beside
//! the job's output log, `jobs/<id>.slurm-env` ([`env_path`]), which the
//! job's script removes as its first step, and agentd removes at the job's
//! end if the job never started, with the job's output, and at its start
//! if the job is no longer live (docs/slurm.md, "Environment").

use super::config::SlurmConfig;
use agentd_proto::Job;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Names never passed through the environment file: shell specials a
/// POSIX shell refuses to assign (an error there would end the script),
/// and Slurm's own `SLURM_*` variables, which must describe the new job and
/// not the caller's.
fn passable(name: &str) -> bool {
    let mut chars = name.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ident
        && !name.starts_with("SLURM_")
        && !matches!(
            name,
            "PPID" | "UID" | "EUID" | "SHELLOPTS" | "BASHOPTS" | "BASHPID" | "GROUPS"
        )
}

/// `s` in single quotes for `/bin/sh`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The environment file of a job whose output log is `log`: beside it,
/// named for the log (`<id>.log` → `<id>.slurm-env`).
pub fn env_path(log: &Path) -> PathBuf {
    log.with_extension("slurm-env")
}

/// Writes the environment file (mode 0600, a new file): one `export
/// NAME='value'` line per passable variable. Returns how many were left
/// out (names a shell cannot take). Blocking.
///
/// Errors: the file cannot be created or written.
pub fn write_env(path: &Path, env: &BTreeMap<String, String>) -> std::io::Result<usize> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    let mut skipped = 0;
    for (k, v) in env {
        if passable(k) {
            text.push_str(&format!("export {k}={}\n", quote(v)));
        } else {
            skipped += 1;
        }
    }
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(skipped)
}

/// The batch script for `job`, sourcing `env_file` when it exists.
pub fn script(job: &Job, env_file: &Path) -> String {
    let env = quote(&env_file.display().to_string());
    format!(
        "#!/bin/sh\n# agentd job {id}\nagentd_env={env}\nif [ -f \"$agentd_env\" ]; then . \"$agentd_env\"; rm -f \"$agentd_env\"; fi\nunset agentd_env\nexec /bin/sh -c {cmd}\n",
        id = job.id,
        cmd = quote(&job.command),
    )
}

/// Slurm's name for the job: its label (spaces and `=` made `_`, at most
/// 64 characters), else `agentd-SHORTID`.
pub fn job_name(job: &Job) -> String {
    match job
        .label
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        Some(label) => label
            .chars()
            .map(|c| {
                if c.is_whitespace() || c == '=' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .take(64)
            .collect(),
        None => format!("agentd-{}", job.short_id),
    }
}

/// The `--comment` that names the agentd job a Slurm job runs:
/// `agentd:<job id>`. A restarted agentd finds by it a job it had
/// submitted without recording the Slurm id yet.
pub fn comment(job: &Job) -> String {
    format!("agentd:{}", job.id)
}

/// Minutes for `--time`: Slurm counts whole minutes, so seconds are
/// rounded up (at least 1).
pub fn minutes(secs: f64) -> u64 {
    ((secs / 60.0).ceil() as u64).max(1)
}

/// The `sbatch` arguments for `job` writing to `log` (the script comes on
/// stdin).
pub fn args(config: &SlurmConfig, job: &Job, log: &Path) -> Vec<String> {
    let opts = job.slurm.clone().unwrap_or_default();
    // `%` starts a Slurm file-name pattern (`%j`): doubled, it is itself.
    let output = log.display().to_string().replace('%', "%%");
    let mut a = vec![
        "--parsable".to_string(),
        format!("--job-name={}", job_name(job)),
        format!("--chdir={}", job.cwd),
        format!("--output={output}"),
        "--open-mode=append".to_string(),
        "--no-requeue".to_string(),
        "--export=ALL".to_string(),
        format!("--comment={}", comment(job)),
    ];
    let time = opts.time_limit_secs.map(|s| s as f64).or(job.timeout_secs);
    if let Some(t) = time {
        a.push(format!("--time={}", minutes(t)));
    }
    if let Some(c) = opts.cpus {
        a.push(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = opts.mem_bytes {
        a.push(format!("--mem={}M", m.div_ceil(1024 * 1024).max(1)));
    }
    if let Some(g) = opts.gpus {
        a.push(format!("--gres=gpu:{g}"));
    }
    if let Some(p) = opts.partition.or_else(|| config.partition.clone()) {
        a.push(format!("--partition={p}"));
    }
    a.extend(config.extra_args.iter().cloned());
    a.extend(opts.extra_args.unwrap_or_default());
    a
}

/// The Slurm job id in `sbatch --parsable` output (`4211` or
/// `4211;cluster`).
pub fn parse_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit() || c == '_')).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_the_shell_and_odd_names_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e");
        let env = BTreeMap::from([
            ("A".to_string(), "x,y 'z'".to_string()),
            ("bad-name".to_string(), "v".to_string()),
            ("SLURM_JOB_ID".to_string(), "1".to_string()),
        ]);
        assert_eq!(write_env(&p, &env).unwrap(), 2);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "export A='x,y '\\''z'\\'''\n");
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(". {}; printf %s \"$A\"", p.display()))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"x,y 'z'");
    }

    #[test]
    fn minutes_round_up_and_ids_parse() {
        assert_eq!(minutes(10.0), 1);
        assert_eq!(minutes(60.0), 1);
        assert_eq!(minutes(61.0), 2);
        assert_eq!(parse_id("4211\n"), Some("4211".into()));
        assert_eq!(parse_id("4211;c1\n"), Some("4211".into()));
        assert_eq!(parse_id("error"), None);
    }
}
