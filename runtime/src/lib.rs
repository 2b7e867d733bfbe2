//! Weir: an event-driven runtime for DAGs of WebAssembly tasks.
//!
//! The data path: a [`trigger`] (or `run-now`) asks the [`engine`] for a run -> the engine records
//! it durably in the [`store`] -> a node claims the run with a lease and dispatches its ready
//! tasks to the [`exec`]utor -> results and task values are recorded -> downstream tasks become
//! ready. Modules live in the [`modules`] registry; jobs are described by [`spec`]s; the [`api`]
//! and the [`cli`] are the two ways in.
#![deny(missing_docs)]

pub mod alerts;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod exec;
pub mod metrics;
pub mod modules;
pub mod s3;
pub mod serve;
pub mod spec;
pub mod store;
pub mod tls;
pub mod trigger;
