//! Job specs: the types (Jobs API 2.2 field names), parsing of YAML and JSON with positions,
//! validation, module references and `{{dynamic value}}` references.
//!
//! Every error names its source (file or "request body"), line and column, the path of the
//! offending field (`tasks[1].depends_on[0].task_key`) and what was expected.
//!
//! The way through: `source` parses text into a tree of nodes with positions; `decode` finds
//! the jobs in it and deserializes them (serde, with the failing path and position); `validate`
//! checks what serde cannot; `location` turns paths into line and column. The entry points
//! ([`SpecDocument`], [`settings_from_json`], [`validate_settings`]) live in `document`.

mod decode;
mod document;
mod location;
mod module_ref;
pub mod refs;
mod source;
#[cfg(test)]
pub(crate) mod test_support;
mod types;
mod validate;

pub use document::{SpecDocument, settings_from_json, validate_settings};
pub use module_ref::ModuleRef;
pub use types::*;

use std::fmt;

/// One problem in a spec, located in its source text when the position is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file path, or "request body".
    pub source: String,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// Path of the field, e.g. `tasks[1].depends_on[0].task_key`; empty for the whole document.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in a spec (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// The syntax of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2.
    Yaml,
    /// JSON.
    Json,
}

/// Which module and mount forms a spec may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPolicy {
    /// `weir deploy`: module paths and relative mount sources are allowed (the CLI resolves
    /// them against the spec file).
    Local,
    /// The API: modules are `sha256:<hex>` or `name[@version]`, mount sources absolute
    /// `file:///` URLs.
    Server,
}

/// One job of a spec document.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecJob {
    /// The settings.
    pub settings: JobSettings,
    /// Path of this job in the document: "" for a single-job file, `jobs.<key>` in a map.
    pub path: String,
}
