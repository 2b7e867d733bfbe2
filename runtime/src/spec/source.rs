//! Parsing of YAML and JSON into values with positions.
