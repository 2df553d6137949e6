//! `hotswap secrets`: the server's secrets' metadata, never their values,
//! and rotating one (Admins of the system tenant; `/api/v1/secrets`).

use serde_json::{json, Value};

use super::api::Api;
use super::listings::{done, show};
use super::output::{cell, when, Out};
use super::{segment, Exit, Failure};

pub(super) async fn secrets(api: &Api, out: Out, rotate: Option<&str>) -> Result<Exit, Failure> {
    if let Some(id) = rotate {
        let rotated = api.post(&format!("/api/v1/secrets/{}/rotate", segment(id)), &json!({})).await?.body;
        let line = format!(
            "rotated {id} to version {}; version {} stays valid until {}",
            cell(&rotated["currentVersion"]),
            cell(&rotated["previousVersion"]),
            when(&rotated["previousValidUntil"])
        );
        return done(out, rotated, &line);
    }
    let all = api.get("/api/v1/secrets").await?;
    let headers = ["SECRET", "VERSION", "ROTATED", "NEXT ROTATION", "EXPIRES", "STATE"];
    Ok(show(out, &all, &all, &headers, None, |s| {
        vec![
            cell(&s["id"]),
            cell(&s["currentVersion"]),
            when(&s["lastRotatedAt"]),
            if s["autoRotate"] == Value::Bool(true) { when(&s["nextRotationAt"]) } else { "manual".into() },
            when(&s["expiresAt"]),
            state(s),
        ]
    }))
}

fn state(secret: &Value) -> String {
    let mut notes = Vec::new();
    if secret["expiring"] == Value::Bool(true) {
        notes.push("expiring");
    }
    if secret["inRotationWindow"] == Value::Bool(true) {
        notes.push("previous version still valid");
    }
    if notes.is_empty() {
        "ok".into()
    } else {
        notes.join(", ")
    }
}
