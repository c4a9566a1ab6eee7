//! The custom kinds of a CustomResourceDefinition: one per served version, made once per
//! distinct definition and shared from then on (the server holds kinds as `&'static`).

use super::columns::Printer;
use super::scale::ScalePaths;
use super::{CustomKind, TERMINATING_VERBS};
use crate::jsonpath::JsonPath;
use crate::kinds::{Kind, ResourceInfo, VERBS};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

/// Kinds made so far, by what they were made from.
static INTERNED: LazyLock<Mutex<HashMap<String, &'static CustomKind>>> = LazyLock::new(Default::default);

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn leak_all(items: Option<&Value>) -> &'static [&'static str] {
    let items: Vec<&'static str> =
        items.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(leak).collect();
    Box::leak(items.into_boxed_slice())
}

/// The names a definition is served under: its accepted names once the naming controller has
/// accepted them, else what it asks for.
fn names(crd: &Value) -> &Value {
    match crd.pointer("/status/acceptedNames") {
        Some(accepted) if accepted.get("plural").and_then(Value::as_str).is_some_and(|p| !p.is_empty()) => accepted,
        _ => crd.pointer("/spec/names").unwrap_or(&Value::Null),
    }
}

/// The kinds `crd` serves, one per `served` version, in its order.
pub fn kinds_of(crd: &Value) -> Vec<&'static dyn Kind> {
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    let terminating = crd.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null());
    let mut out: Vec<&'static dyn Kind> = Vec::new();
    for v in versions.iter().filter(|v| v.get("served").and_then(Value::as_bool) == Some(true)) {
        if v.get("name").and_then(Value::as_str).is_none() {
            continue;
        }
        // What `build` reads, and no more: a status change or another version's edit makes no
        // new kind (each distinct key is kept for the life of the process).
        let spec = crd.get("spec").cloned().unwrap_or_default();
        let storage = versions.iter().find(|v| v.get("storage").and_then(Value::as_bool) == Some(true));
        let key = json!([spec.get("group"), spec.get("scope"), names(crd), v, storage, terminating]).to_string();
        let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
        let kind = *interned.entry(key).or_insert_with(|| Box::leak(Box::new(build(crd, v, terminating))));
        out.push(kind);
    }
    out
}

/// A version's `openAPIV3Schema`, parsed with its defaults pruned.
fn parse_schema(version: &Value) -> Option<crate::crd::Schema> {
    let mut s = crate::crd::parse(version.pointer("/schema/openAPIV3Schema")?).ok()?;
    s.prune_defaults();
    Some(s)
}

fn build(crd: &Value, version: &Value, terminating: bool) -> CustomKind {
    let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
    let spec = crd.get("spec").cloned().unwrap_or_default();
    let group = text(&spec, "group");
    let names = names(crd);
    let kind = text(names, "kind");
    let subresources = version.get("subresources");
    let status_subresource = subresources.and_then(|s| s.get("status")).is_some_and(|s| !s.is_null());
    let scale = ScalePaths::new(subresources.and_then(|s| s.get("scale")));
    let mut sub: Vec<(&'static str, &'static str, &'static [&'static str])> = Vec::new();
    const SUB_VERBS: &[&str] = &["get", "patch", "update"];
    if status_subresource {
        sub.push(("status", leak(&kind), SUB_VERBS));
    }
    if scale.is_some() {
        sub.push(("scale", "autoscaling/v1/Scale", SUB_VERBS));
    }
    let info = Box::leak(Box::new(ResourceInfo {
        group: leak(&group),
        version: leak(&text(version, "name")),
        plural: leak(&text(names, "plural")),
        singular: leak(&text(names, "singular")),
        kind: leak(&kind),
        namespaced: text(&spec, "scope") != "Cluster",
        short_names: leak_all(names.get("shortNames")),
        categories: leak_all(names.get("categories")),
        verbs: if terminating { TERMINATING_VERBS } else { VERBS },
        subresources: Box::leak(sub.into_boxed_slice()),
    }));
    let storage = spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map_or_else(|| text(version, "name"), |v| text(v, "name"));
    let schema = parse_schema(version);
    let selectable = version
        .get("selectableFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
        .filter_map(|p| Some((p.trim_start_matches('.').to_string(), JsonPath::parse(p).ok()?)))
        .collect();
    let rules = schema.as_ref().map(crate::crd::cel::compile);
    let storage_schema = (storage != text(version, "name"))
        .then(|| {
            let versions = spec.get("versions").and_then(Value::as_array)?;
            let stored = versions.iter().find(|v| v.get("name").and_then(Value::as_str) == Some(storage.as_str()))?;
            parse_schema(stored)
        })
        .flatten();
    CustomKind {
        info,
        storage_api_version: leak(&crate::kinds::group_version(&group, &storage)),
        schema,
        storage_schema,
        rules,
        status_subresource,
        scale,
        printer: Printer::new(version.get("additionalPrinterColumns")),
        selectable,
        terminating,
    }
}
