//! End-to-end tests: each starts the real `weir` binary on a temp data dir and drives it through
//! its CLI and HTTP API. See `tests/README.md`.

mod access;
mod alerts;
mod bad_input;
mod containment;
mod control;
mod databricks_sdk;
mod examples;
mod file_arrival;
mod file_arrival_s3;
mod jobs_api;
mod kafka_broker;
mod lifecycle;
mod limits;
mod receivers;
mod recovery;
mod run_if;
mod s3_server;
mod s3_store;
mod schedules;
mod support;
mod table_update;
mod values;
