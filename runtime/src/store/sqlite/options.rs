//! Where the database lives and how durable a commit is: parsed from `sqlite://PATH?...` URLs.

use std::path::PathBuf;

/// How many read-only connections serve reads by default.
pub const DEFAULT_READERS: usize = 4;

/// When a commit reaches the disk (SQLite's `PRAGMA synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=NORMAL` (the default): a committed transaction survives `kill -9` of the
    /// process; a power loss or OS crash may lose the last transactions, never corrupt the file.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced and survives a power loss too.
    Full,
}

impl Synchronous {
    /// The pragma value.
    pub fn as_pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// How to open a SQLite store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The database file; missing parent directories are created.
    pub path: PathBuf,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// Read-only connections in the read pool (at least 1).
    pub readers: usize,
}

/// A `sqlite://` URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqliteUrlError {
    /// The URL does not start with `sqlite://`.
    #[error("state URL {url:?} does not start with \"sqlite://\"; expected sqlite://PATH")]
    NotSqlite {
        /// The URL given.
        url: String,
    },
    /// Nothing after `sqlite://`.
    #[error("state URL {url:?} names no database file; expected sqlite://PATH")]
    MissingPath {
        /// The URL given.
        url: String,
    },
    /// An option other than `synchronous`, or a malformed one.
    #[error("state URL {url:?}: unknown option {option:?}; expected synchronous=full|normal")]
    UnknownOption {
        /// The URL given.
        url: String,
        /// The offending `key=value` pair.
        option: String,
    },
    /// `synchronous` with another value than `full` or `normal`.
    #[error("state URL {url:?}: synchronous={value:?} is not valid; expected full or normal")]
    BadSynchronous {
        /// The URL given.
        url: String,
        /// The value given.
        value: String,
    },
}

impl SqliteOptions {
    /// Default options for the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> SqliteOptions {
        SqliteOptions {
            path: path.into(),
            synchronous: Synchronous::default(),
            readers: DEFAULT_READERS,
        }
    }

    /// Parses `sqlite://PATH` (relative to the working directory) or `sqlite:///abs/PATH`,
    /// optionally followed by `?synchronous=full|normal`.
    pub fn from_url(url: &str) -> Result<SqliteOptions, SqliteUrlError> {
        let rest = url
            .strip_prefix("sqlite://")
            .ok_or_else(|| SqliteUrlError::NotSqlite { url: url.into() })?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(SqliteUrlError::MissingPath { url: url.into() });
        }
        let mut options = SqliteOptions::new(path);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("synchronous", value)) => {
                    options.synchronous = match value.to_ascii_lowercase().as_str() {
                        "full" => Synchronous::Full,
                        "normal" => Synchronous::Normal,
                        _ => {
                            return Err(SqliteUrlError::BadSynchronous {
                                url: url.into(),
                                value: value.into(),
                            });
                        }
                    }
                }
                _ => {
                    return Err(SqliteUrlError::UnknownOption {
                        url: url.into(),
                        option: pair.into(),
                    });
                }
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_paths() {
        let relative = SqliteOptions::from_url("sqlite://.weir/weir.db").unwrap();
        assert_eq!(relative.path, PathBuf::from(".weir/weir.db"));
        assert_eq!(relative.synchronous, Synchronous::Normal);
        let absolute = SqliteOptions::from_url("sqlite:///var/lib/weir/state.db").unwrap();
        assert_eq!(absolute.path, PathBuf::from("/var/lib/weir/state.db"));
    }

    #[test]
    fn synchronous_option() {
        let full = SqliteOptions::from_url("sqlite://w.db?synchronous=full").unwrap();
        assert_eq!(full.synchronous, Synchronous::Full);
        assert_eq!(full.path, PathBuf::from("w.db"));
        let normal = SqliteOptions::from_url("sqlite://w.db?synchronous=NORMAL").unwrap();
        assert_eq!(normal.synchronous, Synchronous::Normal);
    }

    #[test]
    fn bad_urls_are_refused_with_what_was_expected() {
        let err = SqliteOptions::from_url("sqlite://w.db?synchronous=off").unwrap_err();
        assert_eq!(
            err.to_string(),
            "state URL \"sqlite://w.db?synchronous=off\": synchronous=\"off\" is not valid; \
             expected full or normal"
        );
        let err = SqliteOptions::from_url("sqlite://w.db?cache=big").unwrap_err();
        assert!(
            matches!(err, SqliteUrlError::UnknownOption { ref option, .. } if option == "cache=big")
        );
        let err = SqliteOptions::from_url("sqlite://?synchronous=full").unwrap_err();
        assert!(matches!(err, SqliteUrlError::MissingPath { .. }));
        let err = SqliteOptions::from_url("postgres://db/weir").unwrap_err();
        assert!(matches!(err, SqliteUrlError::NotSqlite { .. }));
    }
}
