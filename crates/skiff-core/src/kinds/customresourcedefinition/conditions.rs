//! A definition's `status.conditions` (`NamesAccepted`, `Established`, `Terminating`), read
//! and set as upstream's `apihelpers` do.

use jiff::Timestamp;
use serde_json::{Value, json};

/// The condition of type `type_`, if set.
pub fn condition<'a>(crd: &'a Value, type_: &str) -> Option<&'a Value> {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// Whether the condition of type `type_` is present with status `True` (`IsCRDConditionTrue`).
pub fn condition_is_true(crd: &Value, type_: &str) -> bool {
    condition(crd, type_).and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True")
}

/// Set a condition as `SetCRDCondition` does: a new type is appended (so conditions keep the
/// order they were first set in), an existing one is updated in place, and its
/// `lastTransitionTime` moves only when the status flips (or was never set).
pub fn set_condition(crd: &mut Value, type_: &str, status: &str, reason: &str, message: &str, now: Timestamp) {
    let now = crate::time::rfc3339(now);
    if !crd.get("status").is_some_and(Value::is_object) {
        crd["status"] = json!({});
    }
    let conditions = &mut crd["status"]["conditions"];
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else { return };
    let existing = list.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some(type_));
    match existing {
        None => list.push(json!({
            "type": type_,
            "status": status,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })),
        Some(c) => {
            let flipped = c.get("status").and_then(Value::as_str) != Some(status);
            let unset = c.get("lastTransitionTime").and_then(Value::as_str).is_none_or(str::is_empty);
            if flipped || unset {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
    }
}
