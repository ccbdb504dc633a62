//! Binding the Unix socket: a private directory (0700), a socket file
//! (0600), a stale file from a crashed daemon replaced, a live daemon
//! refused.

use anyhow::{Context, bail};
use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Binds `path`. Creates its directory (0700) when missing; tightens the
/// mode of an existing directory we own.
///
/// Errors: another daemon answers on `path`; the directory belongs to
/// another user; the bind fails (path too long, no permission).
pub async fn bind(path: &Path) -> anyhow::Result<Listener> {
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the socket directory {}", dir.display()))?;
        let meta = std::fs::metadata(dir)?;
        let uid = rustix::process::getuid().as_raw();
        if meta.uid() != uid {
            bail!(
                "the socket directory {} belongs to uid {}, not to this user ({uid})",
                dir.display(),
                meta.uid()
            );
        }
        // Only a directory agentd owns alone is tightened; /tmp itself or a
        // shared directory named by --socket is left as it is.
        if dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("agentd"))
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    if std::fs::symlink_metadata(path).is_ok() {
        let name = path.to_fs_name::<GenericFilePath>()?;
        if Stream::connect(name).await.is_ok() {
            bail!("another agentd is already running on {}", path.display());
        }
        tracing::info!("replacing stale socket {}", path.display());
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let name = path.to_fs_name::<GenericFilePath>()?;
    let listener = ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .create_tokio()?;
    Ok(listener)
}
