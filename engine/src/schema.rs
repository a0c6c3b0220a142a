//! JSON Schema of the manifest types (feature `schema`), from which egate
//! generates its CustomResourceDefinitions: what schemars cannot derive.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Any JSON value, kept as written: the API server must neither prune nor
/// reject what a module's settings hold (the module checks them).
pub fn any_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true, "nullable": true })
}
