//! Runtime configuration.
