//! Reading a local directory: the complete-file test and the recursive scan.

use super::super::batch::Observed;
use super::super::filter::PathFilter;
use crate::store::Millis;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// The file at `abs` under `root` as an [`Observed`] version, if it is a regular file (never a
/// symlink: a link pointing outside the watched directory must not be reported, nor followed)
/// with a UTF-8 path.
pub fn observe(root: &Path, abs: &Path) -> Option<Observed> {
    let rel = abs.strip_prefix(root).ok()?.to_str()?.to_string();
    let meta = std::fs::symlink_metadata(abs).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    Some(from_metadata(rel, &meta))
}

fn from_metadata(rel: String, meta: &std::fs::Metadata) -> Observed {
    let mtime_ns = (meta.mtime() as i128) * 1_000_000_000 + meta.mtime_nsec() as i128;
    let ctime_ms = meta.ctime() * 1000 + meta.ctime_nsec() / 1_000_000;
    let modification_time = (mtime_ns / 1_000_000) as Millis;
    Observed {
        path: rel,
        size: meta.len(),
        modification_time,
        etag: None,
        arrived_at: modification_time.max(ctime_ms),
        fingerprint: format!("{}-{mtime_ns}-{}", meta.len(), meta.ino()),
    }
}

/// Whether any process has the file open for writing: `Some(true)` or `Some(false)` when the
/// kernel can tell (a read lease is granted only on a file nobody has open for writing, and
/// released at once), `None` when it cannot (leases need the file's owner or `CAP_LEASE`, and a
/// filesystem that supports them).
pub fn being_written(path: &Path) -> Option<bool> {
    use std::os::unix::io::AsRawFd as _;
    let file = std::fs::File::open(path).ok()?;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(2) on a descriptor we own; F_SETLEASE takes an int argument. No owner is
    // set (F_SETOWN), so a lease break would signal no process, and the lease is released
    // right away.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if rc == 0 {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return Some(false);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Some(true),
        _ => None,
    }
}

/// Every regular file under `dir` (a directory under `root`) that the filter accepts, not
/// descending into ignored directories nor following symlinks.
pub fn scan(root: &Path, dir: &Path, filter: &PathFilter) -> std::io::Result<Vec<Observed>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut first = true;
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            // The root must be readable; a subdirectory may vanish while we walk.
            Err(e) if first => return Err(e),
            Err(_) => continue,
        };
        first = false;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(rel) = path.strip_prefix(root).ok().and_then(Path::to_str) else {
                continue;
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                if filter.descends(rel) {
                    stack.push(path);
                }
            } else if file_type.is_file()
                && filter.accepts(rel)
                && let Ok(meta) = entry.metadata()
            {
                found.push(from_metadata(rel.to_string(), &meta));
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_regular_files_skipping_ignored_names_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("2024/01")).unwrap();
        std::fs::create_dir_all(root.join("_temporary/0")).unwrap();
        std::fs::write(root.join("a.csv"), "a").unwrap();
        std::fs::write(root.join("2024/01/b.csv"), "bb").unwrap();
        std::fs::write(root.join("_temporary/0/c.csv"), "c").unwrap();
        std::fs::write(root.join(".hidden"), "h").unwrap();
        std::fs::write(root.join("x.tmp"), "t").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let filter = PathFilter::new(None).unwrap();
        let found = scan(root, root, &filter).unwrap();
        let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["2024/01/b.csv", "a.csv"]);
        assert_eq!(found[0].size, 2);
        assert!(
            observe(root, &root.join("passwd")).is_none(),
            "symlinks never count"
        );
        let a = observe(root, &root.join("a.csv")).unwrap();
        assert_eq!(a, found[1]);
        std::fs::write(root.join("a.csv"), "a2").unwrap();
        assert_ne!(
            observe(root, &root.join("a.csv")).unwrap().fingerprint,
            a.fingerprint
        );
        assert!(scan(root, &root.join("missing"), &filter).is_err());
    }

    #[test]
    fn tells_a_file_open_for_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.csv");
        let f = std::fs::File::create(&path).unwrap();
        // Root or the owner may take leases (the tests run as either).
        assert_eq!(being_written(&path), Some(true));
        drop(f);
        assert_eq!(being_written(&path), Some(false));
        assert_eq!(being_written(&dir.path().join("missing")), None);
    }
}
