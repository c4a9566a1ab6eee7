//! `x-kubernetes-list-type: set` and `map` uniqueness in custom resources (upstream's
//! `listtype.ValidateListSetsAndMaps`): the first repeat of each value (sets) or key (maps) is a
//! `Duplicate value`. Object keys are walked in document order (upstream: Go map order).

use super::gofmt;
use super::schema::Schema;
use crate::field::{ErrorList, FieldError, Path};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Check every set and map list in `obj` (an object described by `schema`) under `base`.
pub fn validate_list_sets_and_maps(schema: &Schema, obj: &Value, base: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if let Value::Object(map) = obj {
        object(base, schema, map, &mut errs);
    }
    errs
}

fn object(path: &Path, s: &Schema, map: &Map<String, Value>, errs: &mut ErrorList) {
    if let Some(extra) = s.additional_schema() {
        for (k, v) in map {
            value(&path.key(k), extra, v, errs);
        }
    }
    if !s.properties.is_empty() {
        for (k, v) in map {
            if let Some(prop) = s.property(k) {
                value(&path.child(k), prop, v, errs);
            }
        }
    }
}

fn value(path: &Path, s: &Schema, v: &Value, errs: &mut ErrorList) {
    match v {
        Value::Array(items) => array(path, s, items, errs),
        Value::Object(map) => object(path, s, map, errs),
        _ => {}
    }
}

fn array(path: &Path, s: &Schema, items: &[Value], errs: &mut ErrorList) {
    match s.x_list_type.as_deref() {
        Some("set") => {
            for i in first_repeats(items.iter().map(Key::of)) {
                errs.push(duplicate(&path.index(i), &items[i]));
            }
        }
        Some("map") => list_map(path, s, items, errs),
        _ => {}
    }
    if let Some(item) = s.items_schema() {
        for (i, v) in items.iter().enumerate() {
            value(&path.index(i), item, v, errs);
        }
    }
}

/// A list element as upstream compares it: scalars by Go value (an `int64` is not a
/// `float64`), compounds by their JSON text.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Key {
    Unspecified,
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Json(String),
}

impl Key {
    fn of(v: &Value) -> Key {
        match v {
            Value::Null => Key::Null,
            Value::Bool(b) => Key::Bool(*b),
            Value::Number(n) => match gofmt::go_num(n) {
                gofmt::GoNum::Int(i) => Key::Int(i),
                gofmt::GoNum::Float(f) => Key::Float(f.to_bits()),
            },
            Value::String(s) => Key::Str(s.clone()),
            Value::Array(_) | Value::Object(_) => Key::Json(gofmt::json(v)),
        }
    }
}

/// Indices of the second occurrence of each repeated key.
fn first_repeats(keys: impl Iterator<Item = Key>) -> Vec<usize> {
    let mut seen: HashMap<Key, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, k) in keys.enumerate() {
        let times = seen.entry(k).or_insert(0);
        *times += 1;
        if *times == 2 {
            out.push(i);
        }
    }
    out
}

fn duplicate(path: &Path, v: &Value) -> FieldError {
    FieldError::duplicate_go(path, gofmt::bad_value(v))
}

fn list_map(path: &Path, s: &Schema, items: &[Value], errs: &mut ErrorList) {
    if let Some(i) = items.iter().position(|x| !x.is_null() && !x.is_object()) {
        errs.push(FieldError::invalid_go(
            &path.index(i),
            gofmt::bad_value(&items[i]),
            "must be an object for an array of list-type map",
        ));
        return;
    }
    if items.len() <= 1 {
        return;
    }
    if let [key] = s.x_list_map_keys.as_slice() {
        let keys: Vec<Option<&Value>> = items.iter().map(|x| x.get(key.as_str())).collect();
        let repeats = first_repeats(keys.iter().map(|k| k.map_or(Key::Unspecified, Key::of)));
        for i in repeats {
            let shown = match keys[i] {
                None => json!({}),
                Some(v) => json!({ key.as_str(): v }),
            };
            errs.push(duplicate(&path.index(i), &shown));
        }
        return;
    }
    let keys: Vec<Value> = items
        .iter()
        .map(|x| {
            let picked: Map<String, Value> =
                s.x_list_map_keys.iter().filter_map(|k| Some((k.clone(), x.get(k.as_str())?.clone()))).collect();
            Value::Object(picked)
        })
        .collect();
    for i in first_repeats(keys.iter().map(Key::of)) {
        errs.push(duplicate(&path.index(i), &keys[i]));
    }
}
