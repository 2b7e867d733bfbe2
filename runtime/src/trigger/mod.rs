//! Triggers: each kind emits events that the engine turns into runs.

pub mod file_arrival;
