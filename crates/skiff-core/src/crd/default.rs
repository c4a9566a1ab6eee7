//! Defaulting from the schema (upstream's `defaulting.Default`): a property's `default` is set
//! (as a copy) where the key is missing, or `null` while the property is not nullable; then the
//! walk goes on inside, so defaults nest. Array items and `additionalProperties` values that are
//! a non-nullable `null` take the item schema's default.

use super::schema::Schema;
use serde_json::Value;

/// Apply `schema`'s defaults to `value` in place.
pub fn apply_defaults(value: &mut Value, schema: &Schema) {
    default_node(value, Some(schema));
}

fn non_nullable_null(x: &Value, s: Option<&Schema>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
}

fn default_node(x: &mut Value, s: Option<&Schema>) {
    let Some(s) = s else { return };
    match x {
        Value::Object(map) => {
            for (k, prop) in &s.properties {
                let Some(default) = &prop.default else { continue };
                match map.get_mut(k) {
                    None => {
                        map.insert(k.clone(), default.clone());
                    }
                    Some(v) if non_nullable_null(v, Some(prop)) => *v = default.clone(),
                    Some(_) => {}
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(prop) = s.property(k) {
                    default_node(v, Some(prop));
                } else if let Some(extra) = &s.additional_properties {
                    let extra = extra.schema();
                    if non_nullable_null(v, extra)
                        && let Some(d) = extra.and_then(|e| e.default.as_ref())
                    {
                        *v = d.clone();
                    }
                    default_node(v, extra);
                }
            }
        }
        Value::Array(items) => {
            let item = s.items_schema();
            for v in items.iter_mut() {
                if non_nullable_null(v, item)
                    && let Some(d) = item.and_then(|i| i.default.as_ref())
                {
                    *v = d.clone();
                }
                default_node(v, item);
            }
        }
        _ => {}
    }
}
