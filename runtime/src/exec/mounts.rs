//! Which host directories a task may mount: only under the node's allowed mount roots, never
//! Weir's data directory (nor a directory holding it), judged after resolving symlinks.

use std::path::{Path, PathBuf};

/// The mount rule of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPolicy {
    roots: Vec<PathBuf>,
    data_dir: PathBuf,
}

/// Why a mount root cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MountRootError {
    /// The root does not exist or cannot be resolved.
    #[error("mount root {root:?} cannot be resolved")]
    Unresolvable {
        /// The root as given.
        root: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The root is Weir's data directory or inside it.
    #[error("mount root {root:?} is inside Weir's data directory {data_dir:?}")]
    InsideDataDir {
        /// The root as given.
        root: PathBuf,
        /// The data directory.
        data_dir: PathBuf,
    },
}

impl MountPolicy {
    /// The rule for `roots` (symlinks resolved now) and the data directory `data_dir`.
    pub fn new(roots: &[PathBuf], data_dir: &Path) -> Result<MountPolicy, MountRootError> {
        let data_dir = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        let mut resolved = Vec::with_capacity(roots.len());
        for root in roots {
            let r = root
                .canonicalize()
                .map_err(|source| MountRootError::Unresolvable {
                    root: root.clone(),
                    source,
                })?;
            if r.starts_with(&data_dir) {
                return Err(MountRootError::InsideDataDir {
                    root: root.clone(),
                    data_dir,
                });
            }
            resolved.push(r);
        }
        Ok(MountPolicy {
            roots: resolved,
            data_dir,
        })
    }

    /// The allowed roots, resolved.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Checks a mount source (a host directory); returns it with symlinks resolved, which is
    /// what must be opened.
    pub fn check(&self, source: &Path) -> Result<PathBuf, String> {
        let shown = source.display().to_string();
        let resolved = source
            .canonicalize()
            .map_err(|e| format!("mount source {shown:?} cannot be resolved: {e}"))?;
        let via = if resolved == source {
            String::new()
        } else {
            format!(" (it resolves to {:?})", resolved.display().to_string())
        };
        if resolved.starts_with(&self.data_dir) || self.data_dir.starts_with(&resolved) {
            return Err(format!(
                "mount source {shown:?}{via} would expose Weir's data directory {:?}: it is never mountable",
                self.data_dir.display().to_string()
            ));
        }
        if !self.roots.iter().any(|r| resolved.starts_with(r)) {
            let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
            return Err(format!(
                "mount source {shown:?}{via} is outside the node's allowed mount roots ({}); start the node with --mount-root DIR to allow it",
                if roots.is_empty() {
                    "none".to_string()
                } else {
                    roots.join(", ")
                }
            ));
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_roots_minus_the_data_dir_after_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let lake = base.join("lake");
        let data = base.join("lake/.weir");
        let other = base.join("other");
        for d in [&lake, &data, &other, &lake.join("gold")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let policy = MountPolicy::new(std::slice::from_ref(&lake), &data).unwrap();
        assert_eq!(policy.check(&lake.join("gold")).unwrap(), lake.join("gold"));
        assert!(
            policy
                .check(&other)
                .unwrap_err()
                .contains("outside the node's allowed mount roots")
        );
        assert!(policy.check(&data).unwrap_err().contains("data directory"));
        // The root itself holds the data directory: mounting it would expose it.
        assert!(policy.check(&lake).unwrap_err().contains("data directory"));
        // A symlink inside a root pointing at the data directory or outside is judged by its target.
        std::os::unix::fs::symlink(&data, lake.join("escape")).unwrap();
        let e = policy.check(&lake.join("escape")).unwrap_err();
        assert!(
            e.contains("resolves to") && e.contains("data directory"),
            "{e}"
        );
        std::os::unix::fs::symlink(&other, lake.join("out")).unwrap();
        assert!(
            policy
                .check(&lake.join("out"))
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            policy
                .check(&base.join("missing"))
                .unwrap_err()
                .contains("cannot be resolved")
        );
        assert!(matches!(
            MountPolicy::new(&[data.join(".")], &data),
            Err(MountRootError::InsideDataDir { .. })
        ));
        let none = MountPolicy::new(&[], &data).unwrap();
        assert!(none.check(&other).unwrap_err().contains("(none)"));
    }
}
