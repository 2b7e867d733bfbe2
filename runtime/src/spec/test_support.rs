//! Helpers for tests: job settings from YAML without validation.

use super::decode::decode_job;
use super::location::FieldPath;
use super::source::parse;
use super::{Format, JobSettings};

/// Decodes one job from YAML (panics on syntax or decoding errors); no validation.
pub(crate) fn settings(yaml: &str) -> JobSettings {
    let node = parse(yaml, Format::Yaml)
        .expect("valid yaml")
        .expect("a document");
    decode_job(&node, &FieldPath::root()).expect("decodable settings")
}
