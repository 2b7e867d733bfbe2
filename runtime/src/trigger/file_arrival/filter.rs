//! Which files count: the default ignore rules and the job's `path_glob`.
//!
//! Ignored by default, at any depth under the watched URL: names starting with `.` (hidden
//! files, editors' and uploaders' temporary files such as `.orders.csv.swp` or rsync's
//! `.orders.csv.XXXXXX`) or `_` (Spark's `_SUCCESS`, `_temporary/`), and names ending in `.tmp`
//! or `.crc` (Hadoop checksums). A name in an ignored directory is ignored too. The job's
//! `path_glob` (a Weir addition to `file_arrival`) then keeps only the paths it matches, for
//! instance `**/*.csv` or `{orders,returns}/*.json`; paths are relative to the URL and use `/`.

use globset::{GlobBuilder, GlobMatcher};

/// The filter of one job.
#[derive(Debug, Clone)]
pub struct PathFilter {
    glob: Option<GlobMatcher>,
}

/// A `path_glob` that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("path_glob {glob:?} is not a valid glob: {reason}")]
pub struct GlobError {
    /// The glob as written.
    pub glob: String,
    /// What was wrong.
    pub reason: String,
}

impl PathFilter {
    /// The default rules, narrowed by `glob` when given.
    pub fn new(glob: Option<&str>) -> Result<PathFilter, GlobError> {
        let glob = glob
            .map(|g| {
                GlobBuilder::new(g)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map(|g| g.compile_matcher())
                    .map_err(|e| GlobError {
                        glob: g.to_string(),
                        reason: e.kind().to_string(),
                    })
            })
            .transpose()?;
        Ok(PathFilter { glob })
    }

    /// Whether the file at `path` (relative, `/`-separated) counts.
    pub fn accepts(&self, path: &str) -> bool {
        !path.is_empty()
            && path.split('/').all(|segment| !ignored_name(segment))
            && self.glob.as_ref().is_none_or(|g| g.is_match(path))
    }

    /// Whether a directory at `path` (relative) can hold files that count (ignored directories
    /// are not descended into).
    pub fn descends(&self, path: &str) -> bool {
        path.is_empty() || path.split('/').all(|segment| !ignored_name(segment))
    }
}

/// The default ignore rule for one path segment.
pub fn ignored_name(name: &str) -> bool {
    name.is_empty()
        || name.starts_with('.')
        || name.starts_with('_')
        || name.ends_with(".tmp")
        || name.ends_with(".crc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_temporary_files_are_ignored_at_any_depth() {
        let f = PathFilter::new(None).unwrap();
        for ok in ["orders.csv", "2024/01/orders.csv", "a.tmp.csv", "crc"] {
            assert!(f.accepts(ok), "{ok}");
        }
        for ignored in [
            ".orders.csv.swp",
            "_SUCCESS",
            "orders.csv.tmp",
            "part-0.crc",
            "_temporary/0/part-0",
            "2024/.staging/orders.csv",
            "",
        ] {
            assert!(!f.accepts(ignored), "{ignored}");
        }
        assert!(f.descends("2024/01"));
        assert!(!f.descends("_temporary"));
        assert!(!f.descends("a/.git"));
    }

    #[test]
    fn the_glob_narrows_and_does_not_cross_directories_with_a_single_star() {
        let f = PathFilter::new(Some("*.csv")).unwrap();
        assert!(f.accepts("orders.csv"));
        assert!(!f.accepts("orders.json"));
        assert!(
            !f.accepts("2024/orders.csv"),
            "* stays within one directory"
        );
        let f = PathFilter::new(Some("**/*.csv")).unwrap();
        assert!(f.accepts("orders.csv"));
        assert!(f.accepts("2024/01/orders.csv"));
        assert!(
            !f.accepts("2024/_tmp/orders.csv"),
            "the defaults still apply"
        );
        let f = PathFilter::new(Some("{orders,returns}/*.json")).unwrap();
        assert!(f.accepts("returns/r1.json"));
        assert!(!f.accepts("other/r1.json"));
    }

    #[test]
    fn a_bad_glob_says_what_is_wrong() {
        let err = PathFilter::new(Some("[a-")).unwrap_err().to_string();
        assert!(
            err.starts_with("path_glob \"[a-\" is not a valid glob: "),
            "{err}"
        );
    }
}
