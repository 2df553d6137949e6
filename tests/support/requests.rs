//! The request bodies tests send most: one place that knows the shape of a
//! deployment request, so that a test says only what it is about.

use serde_json::{json, Value};

/// A valid request to roll `module` `version` out up to `target`.
pub fn deployment(module: &str, version: &str, target: &str) -> Value {
    deployment_with(module, version, target, json!({}))
}

/// The same with `extra` fields merged in (strategy, metadata, requireApproval, ...).
pub fn deployment_with(module: &str, version: &str, target: &str, extra: Value) -> Value {
    let mut body = json!({
        "moduleName": module,
        "version": version,
        "targetEnvironment": target,
        "requesterEmail": "dev@example.com",
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}
