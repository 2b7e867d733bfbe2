//! Structural validation of job settings.
