//! The listening socket: either inherited from the service manager
//! (systemd socket activation, `LISTEN_FDS`), or bound here — a private
//! directory (0700; a directory others can write to is refused), a socket
//! file (0600), a stale socket from a crashed daemon replaced, a live daemon
//! or anything that is not a socket of ours refused.
//!
//! A socket agentd binds is unlinked when it stops; an inherited one is
//! never unlinked (it belongs to the socket unit, which keeps listening and
//! starts the next agentd on the next connection).

use anyhow::{Context, bail};
use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use std::fs::DirBuilder;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The listening socket passed by the service manager, and its path, if
/// agentd was socket-activated (`LISTEN_PID` is this process and
/// `LISTEN_FDS` is 1). The listener never removes its socket file.
///
/// Errors: more than one descriptor was passed, or the descriptor is not a
/// Unix stream socket bound to a path.
pub fn inherited() -> anyhow::Result<Option<(Listener, PathBuf)>> {
    let fds: Vec<_> = sd_notify::listen_fds()
        .context("cannot read the sockets passed by the service manager (LISTEN_FDS)")?
        .collect();
    let fd = match fds.as_slice() {
        [] => return Ok(None),
        [fd] => *fd,
        more => bail!(
            "the service manager passed {} sockets (LISTEN_FDS); agentd takes exactly one",
            more.len()
        ),
    };
    // SAFETY: `listen_fds` checked that LISTEN_PID names this process, so
    // descriptors 3.. were passed to it, open, for it to own; this is the
    // only place that takes them.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let std_listener = std::os::unix::net::UnixListener::from(owned);
    let path = std_listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_owned))
        .context("the socket passed by the service manager (LISTEN_FDS) is not a Unix socket bound to a path")?;
    let mut uds = interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(
        OwnedFd::from(std_listener),
    )
    .context("cannot use the socket passed by the service manager")?;
    // Not ours to remove (interprocess does not reclaim adopted names;
    // this says so explicitly).
    uds.do_not_reclaim_name_on_drop();
    Ok(Some((uds.into(), path)))
}

/// Binds `path`. Creates its directory (0700) when missing; tightens the
/// mode of an existing directory of ours named `agentd*`; replaces a stale
/// socket file of ours that no daemon answers on.
///
/// Errors: another daemon answers on `path`; the directory belongs to
/// another user, or others may write to it (group or world writable: they
/// could replace the socket); something other than a socket of ours is at
/// `path`; the bind fails (path too long, no permission).
pub async fn bind(path: &Path) -> anyhow::Result<Listener> {
    let uid = rustix::process::getuid().as_raw();
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the socket directory {}", dir.display()))?;
        let meta = std::fs::metadata(dir)?;
        if meta.uid() != uid {
            bail!(
                "the socket directory {} belongs to uid {}, not to this user ({uid})",
                dir.display(),
                meta.uid()
            );
        }
        let mode = meta.permissions().mode() & 0o7777;
        // Only a directory agentd owns alone is tightened; a shared
        // directory named by --socket is refused rather than changed.
        if dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("agentd"))
        {
            if mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| {
                        format!(
                            "cannot make the socket directory {} private (0700)",
                            dir.display()
                        )
                    })?;
            }
        } else if mode & 0o022 != 0 {
            bail!(
                "the socket directory {} has mode {mode:04o}: others can write to it and could \
                 replace the socket; use a directory only you can write to (e.g. mode 0700)",
                dir.display()
            );
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!(
                "{} exists and is not a socket; agentd will not remove it",
                path.display()
            );
        }
        if meta.uid() != uid {
            bail!(
                "the socket {} belongs to uid {}, not to this user ({uid}); agentd will not remove it",
                path.display(),
                meta.uid()
            );
        }
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
