//! The SDK's error type.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while loading the context or setting a task value.
#[derive(Debug)]
pub enum Error {
    /// A variable of the task ABI is not set.
    MissingEnv {
        /// The variable, e.g. `WEIR_CONTEXT`.
        name: &'static str,
    },
    /// A variable of the task ABI has a value of the wrong shape.
    InvalidEnv {
        /// The variable, e.g. `WEIR_ATTEMPT`.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// The context file could not be read.
    ReadContext {
        /// The path from `WEIR_CONTEXT`.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The context file is not the JSON document the ABI describes.
    ParseContext {
        /// The path from `WEIR_CONTEXT`.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A task value key is empty or longer than [`crate::MAX_VALUE_KEY_CHARS`].
    InvalidKey {
        /// The key (cut to 40 characters in messages).
        key: String,
        /// Its length in characters.
        chars: usize,
    },
    /// A task value is larger than [`crate::MAX_VALUE_BYTES`] once serialized.
    ValueTooLarge {
        /// The key.
        key: String,
        /// The serialized size.
        bytes: usize,
    },
    /// A task value could not be serialized to JSON.
    SerializeValue {
        /// The key.
        key: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The task value could not be appended to the output file.
    WriteOutput {
        /// The path from `WEIR_OUTPUT`.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingEnv { name } => write!(
                f,
                "environment variable {name} is not set: expected the task to run under weir \
                 (or a WASI runtime given the weir task ABI)"
            ),
            Error::InvalidEnv {
                name,
                value,
                expected,
            } => write!(
                f,
                "environment variable {name} is {value:?}: expected {expected}"
            ),
            Error::ReadContext { path, source } => {
                write!(f, "cannot read the context file {path:?}: {source}")
            }
            Error::ParseContext { path, source } => write!(
                f,
                "the context file {path:?} is not a valid weir context: {source}"
            ),
            Error::InvalidKey { key, chars } => {
                let shown: String = key.chars().take(40).collect();
                let cut = if *chars > 40 { "..." } else { "" };
                write!(
                    f,
                    "task value key {shown:?}{cut} has {chars} characters: expected 1 to {}",
                    crate::MAX_VALUE_KEY_CHARS
                )
            }
            Error::ValueTooLarge { key, bytes } => write!(
                f,
                "task value {key:?} is {bytes} bytes as JSON: expected at most {} bytes (48 KiB)",
                crate::MAX_VALUE_BYTES
            ),
            Error::SerializeValue { key, source } => {
                write!(
                    f,
                    "task value {key:?} cannot be serialized to JSON: {source}"
                )
            }
            Error::WriteOutput { path, source } => {
                write!(f, "cannot append a task value to {path:?}: {source}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ReadContext { source, .. } | Error::WriteOutput { source, .. } => Some(source),
            Error::ParseContext { source, .. } | Error::SerializeValue { source, .. } => {
                Some(source)
            }
            Error::MissingEnv { .. }
            | Error::InvalidEnv { .. }
            | Error::InvalidKey { .. }
            | Error::ValueTooLarge { .. } => None,
        }
    }
}
