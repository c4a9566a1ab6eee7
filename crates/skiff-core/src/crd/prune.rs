//! Pruning (upstream's `pruning.Prune` and `PruneNonNullableNullsWithoutDefaults`): fields a
//! schema does not specify are dropped from a custom resource, except `apiVersion`, `kind` and
//! `metadata` at the root and in embedded resources, keys of maps with `additionalProperties`,
//! and unknown keys under `x-kubernetes-preserve-unknown-fields` (whose known keys are still
//! pruned). The dropped paths are returned sorted, for `unknown field "spec.foo"` reports.

use super::schema::Schema;
use serde_json::Value;

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Drop unknown fields from `value`; `is_resource_root` treats the value as a whole object (its
/// meta fields are kept). Returns the dropped paths, sorted (`spec.ports[0].x`).
pub fn prune(value: &mut Value, schema: &Schema, is_resource_root: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = String::new();
    prune_node(value, Some(schema), is_resource_root, &mut path, &mut out);
    out.sort();
    out
}

fn with_key(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn prune_node(x: &mut Value, s: Option<&Schema>, root_embedded: bool, path: &mut String, out: &mut Vec<String>) {
    if let Some(s) = s
        && s.preserves_unknown_fields()
    {
        skip_prune(x, s, root_embedded, path, out);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                out.extend(map.keys().map(|k| with_key(path, k)));
                map.clear();
                return;
            };
            let embedded = root_embedded || s.x_embedded_resource;
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let child = with_key(path, &k);
                let sub = match (s.property(&k), &s.additional_properties) {
                    (Some(prop), _) => Some(Some(prop)),
                    (None, Some(extra)) => Some(extra.schema()),
                    (None, None) => None,
                };
                match (sub, map.get_mut(&k)) {
                    (Some(sub), Some(v)) => {
                        let mut p = child;
                        prune_node(v, sub, false, &mut p, out);
                    }
                    _ => {
                        if !META_FIELDS.contains(&k.as_str()) || !path.is_empty() {
                            out.push(child);
                        }
                        map.remove(&k);
                    }
                }
            }
        }
        Value::Array(items) => {
            let item = s.and_then(Schema::items_schema);
            for (i, v) in items.iter_mut().enumerate() {
                let mut p = format!("{path}[{i}]");
                prune_node(v, item, false, &mut p, out);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown keys stay, known ones are pruned.
fn skip_prune(x: &mut Value, s: &Schema, root_embedded: bool, path: &mut String, out: &mut Vec<String>) {
    match x {
        Value::Object(map) => {
            let embedded = root_embedded || s.x_embedded_resource;
            for (k, v) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let mut p = with_key(path, k);
                if let Some(prop) = s.property(k) {
                    prune_node(v, Some(prop), false, &mut p, out);
                } else if let Some(extra) = &s.additional_properties {
                    prune_node(v, extra.schema(), false, &mut p, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.items_schema() {
                for (i, v) in items.iter_mut().enumerate() {
                    let mut p = format!("{path}[{i}]");
                    skip_prune(v, item, false, &mut p, out);
                }
            }
        }
        _ => {}
    }
}

/// Drop `key: null` where the key's schema is not nullable and has no default (object keys
/// only; array items are left alone), as decoding does after pruning.
pub fn prune_nulls(value: &mut Value, schema: &Schema) {
    nulls(value, Some(schema));
}

fn field_schema<'a>(s: Option<&'a Schema>, key: &str) -> Option<&'a Schema> {
    let s = s?;
    s.property(key).or_else(|| s.additional_properties.as_ref().and_then(|a| a.schema()))
}

fn nulls(x: &mut Value, s: Option<&Schema>) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                let sub = field_schema(s, k);
                let drop = v.is_null() && sub.is_some_and(|f| !f.nullable && f.default.is_none());
                if !drop {
                    nulls(v, sub);
                }
                !drop
            });
        }
        Value::Array(items) => {
            let item = s.and_then(Schema::items_schema);
            for v in items {
                nulls(v, item);
            }
        }
        _ => {}
    }
}
