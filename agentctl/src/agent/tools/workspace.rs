//! Keeping the file tools inside the workspace: a path (relative to the
//! workspace, or absolute) is resolved with symlinks and `..` followed as
//! the kernel would, and refused unless the result lies under the
//! workspace root.

use std::path::{Component, Path, PathBuf};

/// Resolves `path` against the canonical workspace `root`.
///
/// The longest existing prefix is canonicalised (following symlinks);
/// the rest, which does not exist yet, may not contain `..` and no part of
/// it may be a dangling symlink.
///
/// Errors: a readable sentence when the path is empty, escapes the
/// workspace, or cannot be resolved.
pub fn resolve(root: &Path, path: &str) -> Result<PathBuf, String> {
    if path.trim().is_empty() {
        return Err("empty path".into());
    }
    let joined = root.join(path);
    let mut existing = PathBuf::new();
    let mut rest: Vec<Component> = Vec::new();
    for comp in joined.components() {
        if !rest.is_empty() {
            rest.push(comp);
            continue;
        }
        let next = existing.join(comp);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => existing = next,
            Err(_) => rest.push(comp),
        }
    }
    let mut resolved = std::fs::canonicalize(&existing)
        .map_err(|e| format!("cannot resolve {path}: {e} (a dangling symlink?)"))?;
    for comp in rest {
        match comp {
            Component::Normal(name) => resolved.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                // Not-yet-existing directories cannot be symlinks, so `..`
                // here is lexical.
                resolved.pop();
            }
            Component::RootDir | Component::Prefix(_) => {}
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
}
