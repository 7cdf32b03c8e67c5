//! JSON Schema of the wire types, generated from the Rust definitions. The checked-in copies under
//! `protocol/schema/` are compared with these by a test, so they cannot drift.

use schemars::{Schema, schema_for};

pub fn command_schema() -> Schema {
    schema_for!(crate::Command)
}

pub fn progress_schema() -> Schema {
    schema_for!(crate::ProgressEvent)
}
