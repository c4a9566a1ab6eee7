//! Field ownership (`metadata.managedFields`) and server-side apply, after structured-merge-diff:
//! every write records which manager set which fields; an apply merges the applied
//! configuration, reports conflicts with other managers, and removes fields the manager no
//! longer applies. Lists and maps merge as the kind's [`Shapes`] say (the built-in table, or a
//! custom resource's schema markers).

use crate::schema::{ListShape, MapShape, Shapes};
use crate::{ApiError, time};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A set of field paths, serialized as `FieldsV1` (`f:name`, `k:{...}`, `v:...`, `.`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    /// The node itself is a member (`".": {}`), not only its children.
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

/// Metadata fields that belong to the system, never to a manager.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// Which part of an object a write covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

impl FieldSet {
    fn leaf() -> Self {
        FieldSet { member: true, children: BTreeMap::new() }
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// The fields set in `obj` (for `part` of the object), lists and maps typed by `shapes`.
    pub fn of_object(obj: &Value, part: Part, shapes: &dyn Shapes) -> Self {
        let mut set = FieldSet::default();
        let Some(m) = obj.as_object() else { return set };
        for (k, v) in m {
            let include = match (part, k.as_str()) {
                (_, "apiVersion" | "kind") => false,
                (Part::Main, "status") => false,
                (Part::Main, _) => true,
                (Part::Status, "status") => true,
                (Part::Status, _) => false,
            };
            if !include || v.is_null() {
                continue;
            }
            if k == "metadata" {
                let mut md = FieldSet::default();
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if !SYSTEM_METADATA.contains(&mk.as_str()) && !mv.is_null() {
                        md.children.insert(format!("f:{mk}"), of_value(mv, &mut vec!["metadata", mk], shapes));
                    }
                }
                if !md.is_empty() {
                    set.children.insert("f:metadata".into(), md);
                }
            } else {
                set.children.insert(format!("f:{k}"), of_value(v, &mut vec![k], shapes));
            }
        }
        set
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, v) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(v),
                None => v.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet { member: self.member && !other.member, children: BTreeMap::new() };
        for (k, v) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet { member: self.member && other.member, children: BTreeMap::new() };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = v.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Member paths that have no members below them: the fields whose values can differ.
    pub fn leaves(&self) -> Vec<Vec<String>> {
        self.members().into_iter().filter(|p| self.node(p).is_some_and(|n| n.children.is_empty())).collect()
    }

    /// Whether `path` is a member of the set.
    pub fn contains(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| n.member)
    }

    fn node(&self, path: &[String]) -> Option<&FieldSet> {
        path.iter().try_fold(self, |n, el| n.children.get(el))
    }

    /// Member paths, each as a list of path elements.
    pub fn members(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.walk(&mut Vec::new(), &mut out);
        out
    }

    fn walk(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            prefix.push(k.clone());
            v.walk(prefix, out);
            prefix.pop();
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, v) in &self.children {
            m.insert(k.clone(), v.to_json());
        }
        Value::Object(m)
    }

    pub fn from_json(v: &Value) -> Self {
        let mut set = FieldSet::default();
        let Some(m) = v.as_object() else { return set };
        if m.is_empty() {
            set.member = true;
        }
        for (k, child) in m {
            if k == "." {
                set.member = true;
            } else {
                set.children.insert(k.clone(), FieldSet::from_json(child));
            }
        }
        set
    }
}

/// The key element of a list-map item, e.g. `k:{"containerPort":80,"protocol":"TCP"}`.
fn item_key(item: &Value, keys: &[String]) -> String {
    let mut names: Vec<&String> = keys.iter().collect();
    names.sort();
    let mut m = Map::new();
    for k in names {
        match item.get(k) {
            Some(v) => {
                m.insert(k.clone(), v.clone());
            }
            // Upstream defaults a port's protocol before keying it.
            None if k == "protocol" => {
                m.insert(k.clone(), json!("TCP"));
            }
            None => {}
        }
    }
    format!("k:{}", Value::Object(m))
}

/// The fields set in `v`, the value at `path` (field names; the caller's, restored on return).
fn of_value<'a>(v: &'a Value, path: &mut Vec<&'a str>, shapes: &dyn Shapes) -> FieldSet {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let shape = shapes.map(path);
            if shape == MapShape::Atomic {
                return FieldSet::leaf();
            }
            let mut set = FieldSet { member: shape == MapShape::Granular, children: BTreeMap::new() };
            for (k, cv) in m {
                if !cv.is_null() {
                    path.push(k);
                    set.children.insert(format!("f:{k}"), of_value(cv, path, shapes));
                    path.pop();
                }
            }
            set
        }
        Value::Array(items) if !items.is_empty() => match shapes.list(path) {
            ListShape::Atomic => FieldSet::leaf(),
            ListShape::Set => FieldSet {
                member: true,
                children: items.iter().map(|i| (format!("v:{i}"), FieldSet::leaf())).collect(),
            },
            ListShape::Map(keys) => {
                let mut set = FieldSet { member: true, children: BTreeMap::new() };
                for item in items {
                    let mut node = of_value(item, path, shapes);
                    node.member = true;
                    set.children.insert(item_key(item, &keys), node);
                }
                set
            }
        },
        _ => FieldSet::leaf(),
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    /// The version the entry was written in (conflict messages name it).
    api_version: String,
    subresource: Option<String>,
    time: String,
    set: FieldSet,
}

impl Entry {
    /// The manager as upstream's conflict messages print it: `"name"` for an applier, else
    /// `"name" [with subresource "status"] using v1`.
    fn label(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

fn entries(obj: &Value) -> Vec<Entry> {
    let own_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e.get("manager").and_then(Value::as_str).unwrap_or("").into(),
            operation: e.get("operation").and_then(Value::as_str).unwrap_or("Update").into(),
            api_version: e.get("apiVersion").and_then(Value::as_str).unwrap_or(own_version).into(),
            subresource: e.get("subresource").and_then(Value::as_str).map(String::from),
            time: e.get("time").and_then(Value::as_str).unwrap_or("").into(),
            set: e.get("fieldsV1").map(FieldSet::from_json).unwrap_or_default(),
        })
        .collect()
}

fn store_entries(obj: &mut Value, list: Vec<Entry>) {
    // Entries name the version the fields are in: the object's own.
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("v1").to_string();
    let arr: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation, "apiVersion": api_version, "time": e.time,
                "fieldsType": "FieldsV1", "fieldsV1": e.set.to_json()});
            if let Some(s) = e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if arr.is_empty() {
            md.remove("managedFields");
        } else {
            md.insert("managedFields".into(), Value::Array(arr));
        }
    }
}

/// Whether list item `item` has the key of a `k:` element (a port's protocol defaults to TCP).
fn has_key(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(kk, kv)| item.get(kk) == Some(kv) || (kk == "protocol" && item.get(kk).is_none() && kv == "TCP"))
}

/// The value at a field-set path in `obj`, if present.
fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur = cur.as_array()?.iter().find(|item| has_key(item, &key))?;
        } else if let Some(v) = el.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur = cur.as_array()?.iter().find(|i| **i == want)?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Remove the field at `path` from `obj` (a list-map item or set member removes the element).
fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for el in parent_path {
        let next = if let Some(f) = el.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = el.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) else {
                return;
            };
            cur.as_array_mut().and_then(|a| a.iter_mut().find(|i| has_key(i, &key)))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Ok(key), Some(a)) = (serde_json::from_str::<Map<String, Value>>(k), cur.as_array_mut()) {
            a.retain(|i| !has_key(i, &key));
        }
    } else if let Some(v) = last.strip_prefix("v:")
        && let (Ok(want), Some(a)) = (serde_json::from_str::<Value>(v), cur.as_array_mut())
    {
        a.retain(|i| *i != want);
    }
}

/// `.spec.containers[name="nginx"].image`, the field form conflict messages use.
fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(kk, kv)| format!("{kk}={kv}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = el.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Merge an applied configuration into `live` (the value at `path`), following the list and
/// map types.
fn merge<'a>(live: &Value, applied: &'a Value, path: &mut Vec<&'a str>, shapes: &dyn Shapes) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if shapes.map(path) != MapShape::Atomic => {
            let mut out = l.clone();
            for (k, av) in a {
                let merged = match l.get(k) {
                    Some(lv) => {
                        path.push(k);
                        let m = merge(lv, av, path, shapes);
                        path.pop();
                        m
                    }
                    None => av.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => match shapes.list(path) {
            ListShape::Atomic => applied.clone(),
            ListShape::Set => {
                let mut out = l.clone();
                out.extend(a.iter().filter(|x| !l.contains(x)).cloned());
                Value::Array(out)
            }
            ListShape::Map(keys) => {
                let mut out = l.clone();
                for item in a {
                    let k = item_key(item, &keys);
                    match out.iter().position(|o| item_key(o, &keys) == k) {
                        Some(i) => out[i] = merge(&out[i], item, path, shapes),
                        None => out.push(item.clone()),
                    }
                }
                Value::Array(out)
            }
        },
        _ => applied.clone(),
    }
}

/// Record a non-apply write by `manager`: it now owns the fields it changed (lists and maps
/// typed by `shapes`, the kind's).
pub fn record_update(
    shapes: &dyn Shapes,
    obj: &mut Value,
    old: Option<&Value>,
    manager: &str,
    part: Part,
    now: Timestamp,
) {
    if manager.is_empty() {
        return;
    }
    let new_set = FieldSet::of_object(obj, part, shapes);
    let mut list = match old {
        Some(o) => entries(o),
        None => vec![],
    };
    let changed = match old {
        None => new_set.clone(),
        Some(o) => {
            let old_set = FieldSet::of_object(o, part, shapes);
            let mut changed = new_set.difference(&old_set);
            for p in new_set.leaves() {
                if old_set.contains(&p) && value_at(obj, &p) != value_at(o, &p) {
                    changed = changed.union(&single(&p));
                }
            }
            changed
        }
    };
    let subresource = (part == Part::Status).then(|| "status".to_string());
    for e in list.iter_mut() {
        e.set = e.set.intersection(&existing_or_all(&new_set, e, part));
        if !(e.manager == manager && e.operation == "Update" && e.subresource == subresource) {
            e.set = e.set.difference(&changed);
        }
    }
    if changed.is_empty() && old.is_some() {
        store_entries(obj, list);
        return;
    }
    let stamp = time::rfc3339(now);
    match list.iter_mut().find(|e| e.manager == manager && e.operation == "Update" && e.subresource == subresource) {
        Some(e) => {
            e.set = e.set.union(&changed);
            e.time = stamp;
        }
        None => list.push(Entry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: String::new(),
            subresource,
            time: stamp,
            set: changed,
        }),
    }
    store_entries(obj, list);
}

/// Entries for the other part of the object are left alone; entries for this part keep only
/// fields that still exist.
fn existing_or_all(new_set: &FieldSet, e: &Entry, part: Part) -> FieldSet {
    let entry_part = if e.subresource.as_deref() == Some("status") { Part::Status } else { Part::Main };
    if entry_part == part { new_set.clone() } else { e.set.clone() }
}

fn single(path: &[String]) -> FieldSet {
    let mut root = FieldSet::default();
    let mut cur = &mut root;
    for el in path {
        cur = cur.children.entry(el.clone()).or_default();
    }
    cur.member = true;
    root
}

/// Server-side apply of `applied` (decoded, not defaulted) onto `live` by `manager`, lists and
/// maps merged and owned as `shapes` (the kind's) type them.
pub fn apply(
    shapes: &dyn Shapes,
    live: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    now: Timestamp,
) -> Result<Value, ApiError> {
    if manager.is_empty() {
        return Err(ApiError::BadRequest(
            "PATCH, application/apply-patch+yaml requests must have a fieldManager".into(),
        ));
    }
    let applied_set = FieldSet::of_object(applied, Part::Main, shapes);
    let mut body = applied.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("status");
        if let Some(md) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SYSTEM_METADATA {
                if *f != "name" && *f != "namespace" {
                    md.remove(*f);
                }
            }
        }
    }
    let mut merged = merge(live, &body, &mut Vec::new(), shapes);
    let mut list = entries(live);

    // Conflicts: fields another manager owns whose value this apply changes.
    let mut conflicts: Vec<(String, Vec<String>)> = Vec::new();
    for e in &list {
        if e.manager == manager && e.operation == "Apply" {
            continue;
        }
        for p in applied_set.leaves() {
            if e.set.contains(&p) && value_at(live, &p) != value_at(&merged, &p) {
                conflicts.push((e.label(), p));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    if force {
        for e in list.iter_mut() {
            if !(e.manager == manager && e.operation == "Apply") {
                for (_, p) in &conflicts {
                    e.set = e.set.difference(&single(p));
                }
            }
        }
    }

    // Fields this manager applied before and no longer does, and nobody else owns, are removed.
    let previous =
        list.iter().find(|e| e.manager == manager && e.operation == "Apply").map(|e| e.set.clone()).unwrap_or_default();
    let others = list
        .iter()
        .filter(|e| !(e.manager == manager && e.operation == "Apply"))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.set));
    let dropped = previous.difference(&applied_set).difference(&others);
    let mut paths = dropped.members();
    // A list-map item that goes takes its fields with it (removing its key fields first would
    // leave the item unfindable).
    let items: Vec<Vec<String>> =
        paths.iter().filter(|p| p.last().is_some_and(|l| l.starts_with("k:"))).cloned().collect();
    paths.retain(|p| !items.iter().any(|i| i.len() < p.len() && p.starts_with(i)));
    // Deepest first so that removing an element does not hide a deeper path.
    paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in paths {
        remove_at(&mut merged, &p);
    }

    let stamp = time::rfc3339(now);
    match list.iter_mut().find(|e| e.manager == manager && e.operation == "Apply") {
        Some(e) => {
            e.set = applied_set;
            e.time = stamp;
        }
        None => list.push(Entry {
            manager: manager.into(),
            operation: "Apply".into(),
            api_version: String::new(),
            subresource: None,
            time: stamp,
            set: applied_set,
        }),
    }
    store_entries(&mut merged, list);
    Ok(merged)
}

/// Upstream's 409 for `conflicts`, each (manager as [`Entry::label`] prints it, field path).
fn conflict_error(conflicts: &[(String, Vec<String>)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": display_path(p)}))
        .collect();
    let message = if let [(m, p)] = conflicts {
        format!("Apply failed with 1 conflict: conflict with {m}: {}", display_path(p))
    } else {
        let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (m, p) in conflicts {
            by_manager.entry(m).or_default().push(display_path(p));
        }
        let parts: Vec<String> = by_manager
            .iter()
            .map(|(m, ps)| {
                format!("conflicts with {m}:\n{}", ps.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n"))
            })
            .collect();
        format!("Apply failed with {} conflicts: {}", conflicts.len(), parts.join("\n"))
    };
    ApiError::ApplyConflict { message, causes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BUILT_IN;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("ts")
    }

    // The built-in kinds' table, for the tests below (all of built-in kinds).
    fn apply(live: &Value, applied: &Value, manager: &str, force: bool, now: Timestamp) -> Result<Value, ApiError> {
        super::apply(&BUILT_IN, live, applied, manager, force, now)
    }

    fn record_update(obj: &mut Value, old: Option<&Value>, manager: &str, part: Part, now: Timestamp) {
        super::record_update(&BUILT_IN, obj, old, manager, part, now)
    }

    impl FieldSet {
        fn of_builtin(obj: &Value, part: Part) -> Self {
            FieldSet::of_object(obj, part, &BUILT_IN)
        }
    }

    fn pod(image: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}})
    }

    #[test]
    fn fieldsv1_shape() {
        let set = FieldSet::of_builtin(&pod("nginx"), Part::Main);
        let j = set.to_json();
        assert_eq!(j["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
        let c = &j["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
        assert_eq!(c["f:image"], json!({}));
        assert_eq!(c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]["f:containerPort"], json!({}));
        assert_eq!(FieldSet::from_json(&j), set);
    }

    #[test]
    fn apply_conflicts_with_another_manager_then_force_takes_over() {
        let mut live = pod("nginx:1.25");
        record_update(&mut live, None, "kubectl-client-side-apply", Part::Main, now());
        let err = apply(&live, &pod("nginx:1.26"), "kubectl", false, now()).expect_err("conflict");
        let s = err.to_status();
        assert_eq!(s["code"], 409);
        assert_eq!(
            s["message"],
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.containers[name=\"nginx\"].image"
        );
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldManagerConflict");
        let forced = apply(&live, &pod("nginx:1.26"), "kubectl", true, now()).expect("forced");
        assert_eq!(forced["spec"]["containers"][0]["image"], "nginx:1.26");
        let mf = forced["metadata"]["managedFields"].as_array().expect("managed");
        assert!(mf.iter().any(|e| e["manager"] == "kubectl" && e["operation"] == "Apply"));
        // Same value applied by a second manager: shared ownership, no conflict.
        assert!(apply(&live, &pod("nginx:1.25"), "other", false, now()).is_ok());
        // A new key in a map another manager has entries in is no conflict either.
        let mut labels_only =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"owner": "me"}}});
        let merged = apply(&live, &labels_only, "third", false, now()).expect("no conflict");
        assert_eq!(merged["metadata"]["labels"], json!({"app": "web", "owner": "me"}));
        labels_only["metadata"]["labels"]["app"] = json!("other");
        assert!(apply(&live, &labels_only, "third", false, now()).is_err());
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let first = apply(&json!({"metadata": {"name": "web"}}), &pod("nginx"), "mgr", false, now()).expect("first");
        let mut second_cfg = pod("nginx");
        second_cfg["metadata"]["labels"] = json!({"tier": "fe"});
        let second = apply(&first, &second_cfg, "mgr", false, now()).expect("second");
        assert_eq!(second["metadata"]["labels"], json!({"tier": "fe"}));
    }

    #[test]
    fn apply_removes_list_items_no_longer_applied() {
        let mut two = pod("nginx");
        two["spec"]["containers"].as_array_mut().expect("containers").push(json!({"name": "side", "image": "busybox"}));
        let first = apply(&json!({"metadata": {"name": "web"}}), &two, "mgr", false, now()).expect("first");
        let second = apply(&first, &pod("nginx"), "mgr", false, now()).expect("second");
        let names: Vec<&Value> =
            second["spec"]["containers"].as_array().expect("containers").iter().map(|c| &c["name"]).collect();
        assert_eq!(names, [&json!("nginx")]);
    }

    #[test]
    fn update_takes_ownership_of_changed_fields() {
        let mut live = pod("a");
        record_update(&mut live, None, "creator", Part::Main, now());
        let mut next = live.clone();
        next["spec"]["containers"][0]["image"] = json!("b");
        record_update(&mut next, Some(&live), "editor", Part::Main, now());
        let mf = next["metadata"]["managedFields"].as_array().expect("managed");
        assert_eq!(mf.len(), 2);
        let editor = mf.iter().find(|e| e["manager"] == "editor").expect("editor");
        assert_eq!(editor["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:image"], json!({}));
        let creator = mf.iter().find(|e| e["manager"] == "creator").expect("creator");
        assert!(creator["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"].get("f:image").is_none());
    }
}
