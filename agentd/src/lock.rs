//! The state-dir lock: an exclusive `flock` on `STATE_DIR/agentd.lock`, held
//! for the daemon's lifetime, so two daemons never share one database.

use anyhow::{Context, bail};
use std::fs::{DirBuilder, File, TryLockError};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates the state dir (mode 0700) if needed, tightens its mode if it is
/// looser, and takes the lock (`agentd.lock`, mode 0600). The lock lasts as long as the returned file.
///
/// Errors: the directory cannot be created; another agentd holds the lock.
pub fn lock_state_dir(dir: &Path) -> anyhow::Result<File> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the state dir {}", dir.display()))?;
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(
            || format!("cannot make the state dir {} private (0700)", dir.display()),
        )?;
    }
    let path = dir.join("agentd.lock");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create the lock file {}", path.display()))?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make the lock file {} 0600", path.display()))?;
    }
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => bail!(
            "another agentd is already using the state dir {} (its lock {} is held)",
            dir.display(),
            path.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}
