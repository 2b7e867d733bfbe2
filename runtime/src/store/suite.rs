//! The store test suite, run against every backend.
