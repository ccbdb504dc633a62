//! Keeping the file tools inside the workspace: a path (relative to the
//! workspace, or absolute) is resolved one component at a time, with
//! symlinks and `..` followed as the kernel would, and refused unless the
//! result lies under the workspace root.

use std::path::{Component, Path, PathBuf};

/// Resolves `path` against the canonical workspace `root`.
///
/// Component by component: while the prefix exists, each step is
/// canonicalised (a symlink is followed, `..` goes to the canonical
/// parent); once a component does not exist, the following ones are
/// appended lexically (a `..` there drops the last missing one), and as
/// soon as the prefix exists again it is canonicalised again, so
/// `nothere/../link` follows `link`. A dangling symlink is an error.
///
/// Errors: a readable sentence when the path is empty, escapes the
/// workspace, or cannot be resolved.
pub fn resolve(root: &Path, path: &str) -> Result<PathBuf, String> {
    if path.trim().is_empty() {
        return Err("empty path".into());
    }
    let joined = root.join(path);
    // Canonical prefix, then `missing` components that do not exist.
    let mut resolved = PathBuf::from("/");
    let mut missing = 0usize;
    for comp in joined.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) => {
                resolved = PathBuf::from("/");
                missing = 0;
            }
            Component::CurDir => {}
            Component::ParentDir if missing > 0 => {
                resolved.pop();
                missing -= 1;
            }
            Component::ParentDir => {
                // `resolved` is canonical, so its parent is the real one.
                resolved.pop();
            }
            Component::Normal(name) if missing > 0 => {
                resolved.push(name);
                missing += 1;
            }
            Component::Normal(name) => {
                let next = resolved.join(name);
                if std::fs::symlink_metadata(&next).is_ok() {
                    resolved = std::fs::canonicalize(&next)
                        .map_err(|e| format!("cannot resolve {path}: {e} (a dangling symlink?)"))?;
                } else {
                    resolved = next;
                    missing = 1;
                }
            }
        }
    }
    if resolved.starts_with(root) {
        Ok(resolved)
    } else {
        Err(format!(
            "{path} is outside the workspace {} (it resolves to {}); file tools only work inside it",
            root.display(),
            resolved.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("outdir")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nothing"), root.join("dangling")).unwrap();
        let root = std::fs::canonicalize(root).unwrap();
        (dir, root)
    }

    #[test]
    fn inside_paths_resolve() {
        let (_d, root) = setup();
        assert_eq!(resolve(&root, "a.txt").unwrap(), root.join("a.txt"));
        assert_eq!(
            resolve(&root, "sub/../b/c.txt").unwrap(),
            root.join("b/c.txt")
        );
        assert_eq!(
            resolve(&root, root.join("sub/x").to_str().unwrap()).unwrap(),
            root.join("sub/x")
        );
        assert_eq!(resolve(&root, "new/../n.txt").unwrap(), root.join("n.txt"));
    }

    #[test]
    fn escapes_are_refused() {
        let (_d, root) = setup();
        assert!(resolve(&root, "../secret").is_err());
        assert!(resolve(&root, "link").is_err());
        assert!(resolve(&root, "outdir/secret").is_err());
        assert!(resolve(&root, "outdir/newfile").is_err());
        assert!(resolve(&root, "/etc/passwd").is_err());
        assert!(resolve(&root, "new/../../x").is_err());
        assert!(resolve(&root, "dangling").is_err());
        assert!(resolve(&root, "").is_err());
    }

    #[test]
    fn a_missing_directory_and_dotdot_do_not_skip_symlink_checks() {
        let (_d, root) = setup();
        for bad in [
            "nothere/../link",
            "nothere/deeper/../../link",
            "sub/../nothere/../link",
            "nothere/../outdir/secret",
            "nothere/../outdir/newfile",
            "nothere/../../secret",
            "nothere/../dangling",
        ] {
            assert!(resolve(&root, bad).is_err(), "{bad} passed");
        }
        assert_eq!(
            resolve(&root, "nothere/../sub/x").unwrap(),
            root.join("sub/x")
        );
        assert_eq!(resolve(&root, "a/b/../c/./d").unwrap(), root.join("a/c/d"));
        assert_eq!(resolve(&root, "sub/..").unwrap(), root);
    }
}
