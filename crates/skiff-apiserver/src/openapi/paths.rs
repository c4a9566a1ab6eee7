//! The operations on each served kind, in v2 or v3 form. kubectl reads two things here: the
//! `x-kubernetes-group-version-kind` of an operation (explain finds a resource's kind through it)
//! and the `fieldValidation` parameter of the PATCH operation (present: kubectl leaves schema
//! validation to the server).
//!
//! No PATCH operation of a built-in kind lists the patch content types (v2 `consumes`, v3
//! `requestBody`): kubectl would then compute strategic merge patches from these schemas, which
//! lack upstream's `x-kubernetes-patch-merge-key` extensions; without them it uses its
//! compiled-in types. Custom resources list theirs as upstream does (JSON, merge and apply
//! patches): no strategic merge patch among them, so kubectl computes a merge patch.
//!
//! Custom resources also get `/status` and `/scale` operations when the version enables them; as
//! upstream's, every one of them carries the custom resource's group version kind.

use super::schemas::{Flavor, MetaNames, Resource};
use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum In {
    Path,
    Query,
}

#[derive(Clone, Copy)]
struct Param {
    name: &'static str,
    at: In,
    ty: &'static str,
    description: &'static str,
}

const NAME: Param = Param { name: "name", at: In::Path, ty: "string", description: "name of the object" };
const NAMESPACE: Param = Param {
    name: "namespace",
    at: In::Path,
    ty: "string",
    description: "object name and auth scope, such as for teams and projects",
};
const PRETTY: Param =
    Param { name: "pretty", at: In::Query, ty: "string", description: "If 'true', then the output is pretty printed." };
const DRY_RUN: Param = Param {
    name: "dryRun",
    at: In::Query,
    ty: "string",
    description: "When present, indicates that modifications should not be persisted. The only valid value is \"All\".",
};
const FIELD_MANAGER: Param = Param {
    name: "fieldManager",
    at: In::Query,
    ty: "string",
    description: "A name associated with the actor or entity that is making these changes.",
};
const FIELD_VALIDATION: Param = Param {
    name: "fieldValidation",
    at: In::Query,
    ty: "string",
    description: "How the server treats unknown or duplicate fields in the body: Ignore, Warn or Strict.",
};
const FORCE: Param =
    Param { name: "force", at: In::Query, ty: "boolean", description: "Force is going to \"force\" Apply requests." };
const GRACE_PERIOD: Param = Param {
    name: "gracePeriodSeconds",
    at: In::Query,
    ty: "integer",
    description: "The duration in seconds before the object should be deleted.",
};
const LABEL_SELECTOR: Param = Param {
    name: "labelSelector",
    at: In::Query,
    ty: "string",
    description: "A selector to restrict the list of returned objects by their labels.",
};
const FIELD_SELECTOR: Param = Param {
    name: "fieldSelector",
    at: In::Query,
    ty: "string",
    description: "A selector to restrict the list of returned objects by their fields.",
};
const RESOURCE_VERSION: Param = Param {
    name: "resourceVersion",
    at: In::Query,
    ty: "string",
    description: "Constrains which resource versions a request may be served from.",
};
const WATCH: Param = Param {
    name: "watch",
    at: In::Query,
    ty: "boolean",
    description: "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
};

impl Param {
    fn to_json(self, flavor: Flavor) -> Value {
        let at = match self.at {
            In::Path => "path",
            In::Query => "query",
        };
        let mut p = json!({"name": self.name, "in": at, "description": self.description});
        if matches!(self.at, In::Path) {
            p["required"] = true.into();
        }
        match flavor {
            Flavor::V2 => {
                p["type"] = self.ty.into();
                p["uniqueItems"] = true.into();
            }
            Flavor::V3 => p["schema"] = json!({"type": self.ty, "uniqueItems": true}),
        }
        p
    }
}

/// The patch types a custom resource takes (upstream's list: no strategic merge patch).
const CUSTOM_PATCH_TYPES: [&str; 3] =
    ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"];

struct Op<'a> {
    method: &'static str,
    action: &'static str,
    verb: &'static str,
    params: &'a [Param],
    body: Option<&'a str>,
    /// Patch types listed, with the body they share.
    patch: Option<&'a str>,
    response: &'a str,
    /// The subresource it acts on: `status`, `scale`.
    sub: Option<&'static str>,
}

impl<'a> Op<'a> {
    const fn new(method: &'static str, action: &'static str, verb: &'static str, response: &'a str) -> Self {
        Op { method, action, verb, params: &[], body: None, patch: None, response, sub: None }
    }

    const fn params(self, params: &'a [Param]) -> Self {
        Op { params, ..self }
    }

    const fn body(self, body: &'a str) -> Self {
        Op { body: Some(body), ..self }
    }

    fn patch_body(self, patch: Option<&'a str>) -> Self {
        Op { patch, ..self }
    }

    const fn sub(self, sub: &'static str) -> Self {
        Op { sub: Some(sub), ..self }
    }
}

/// Upstream's tag for a group version, from which operation ids are made: `core_v1`,
/// `coordination_v1`, `rbacAuthorization_v1` (`.k8s.io` dropped, the group's words camel-cased).
pub(super) fn group_tag(group: &str, version: &str) -> String {
    let group = if group.is_empty() { "core" } else { group.trim_end_matches(".k8s.io") };
    let mut words = group.split(['.', '-']);
    let first = words.next().unwrap_or_default().to_string();
    let name = words.fold(first, |acc, w| acc + &upper_first(w));
    format!("{name}_{version}")
}

/// Each `_`-separated word with its first letter upper-cased, joined: `core_v1` → `CoreV1`, as
/// operation ids spell the tag.
fn upper_first(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.split('_') {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            out.extend(c.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// One operation; `all_namespaces` for the list of a namespaced kind across namespaces.
fn operation(flavor: Flavor, r: &Resource, op: &Op, all_namespaces: bool) -> Value {
    let scope = match (r.namespaced, all_namespaces) {
        (true, false) => ("Namespaced", ""),
        (true, true) => ("", "ForAllNamespaces"),
        (false, _) => ("", ""),
    };
    let response = flavor.ref_to(op.response);
    let ok = match flavor {
        Flavor::V2 => json!({"description": "OK", "schema": response}),
        Flavor::V3 => json!({"description": "OK", "content": {"application/json": {"schema": response}}}),
    };
    let mut params: Vec<Value> = op.params.iter().map(|p| p.to_json(flavor)).collect();
    let tag = group_tag(&r.group, &r.version);
    // Upstream's ids: `deletecollection` reads `delete…Collection…`, a subresource is a suffix.
    let (verb, collection) = match op.verb {
        "deletecollection" => ("delete", "Collection"),
        verb => (verb, ""),
    };
    let (sub_id, sub_doc) = op.sub.map_or((String::new(), String::new()), |s| (upper_first(s), format!(" {s} of")));
    let mut o = json!({
        "description": format!("{}{sub_doc} {}", op.verb, r.kind),
        "operationId": format!("{verb}{}{collection}{}{}{sub_id}{}", upper_first(&tag), scope.0, r.kind, scope.1),
        "tags": [tag],
        "responses": {"200": ok, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": r.gvk,
    });
    let body = op.body.map(|b| (b, None)).or(op.patch.map(|b| (b, Some(CUSTOM_PATCH_TYPES))));
    if let Some((body, types)) = body {
        let schema = flavor.ref_to(body);
        match flavor {
            Flavor::V2 => {
                params.insert(0, json!({"name": "body", "in": "body", "required": true, "schema": schema}));
                if let Some(types) = types {
                    o["consumes"] = json!(types);
                }
            }
            Flavor::V3 => {
                let content: Map<String, Value> = match types {
                    Some(types) => types.iter().map(|t| (t.to_string(), json!({"schema": schema}))).collect(),
                    None => [("*/*".to_string(), json!({"schema": schema}))].into_iter().collect(),
                };
                o["requestBody"] = json!({"required": true, "content": content});
            }
        }
    }
    if !params.is_empty() {
        o["parameters"] = params.into();
    }
    o
}

/// The API verb an operation needs (discovery's name for it).
fn api_verb(op: &Op) -> &'static str {
    match op.verb {
        "read" => "get",
        "replace" => "update",
        other => other,
    }
}

fn path_item(flavor: Flavor, r: &Resource, ops: &[Op], common: &[Param], all_namespaces: bool) -> Value {
    let mut item = Map::new();
    // Only what the kind allows (a read-only kind has no write operations).
    for op in ops.iter().filter(|op| r.verbs.contains(&api_verb(op))) {
        item.insert(op.method.into(), operation(flavor, r, op, all_namespaces));
    }
    item.insert("parameters".into(), common.iter().map(|p| p.to_json(flavor)).collect::<Vec<_>>().into());
    Value::Object(item)
}

/// Add the paths of resource `r` to `paths`.
pub fn add_resource(flavor: Flavor, r: &Resource, meta: &MetaNames, paths: &mut Map<String, Value>) {
    let root = r.root();
    let (prefix, scope): (String, &[Param]) = if r.namespaced {
        (format!("{root}/namespaces/{{namespace}}/{}", r.plural), &[NAMESPACE, PRETTY])
    } else {
        (format!("{root}/{}", r.plural), &[PRETTY])
    };
    let write = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
    let patch_params = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
    let list_params = [LABEL_SELECTOR, FIELD_SELECTOR, RESOURCE_VERSION, WATCH];
    let delete_collection_params = [LABEL_SELECTOR, FIELD_SELECTOR, RESOURCE_VERSION, DRY_RUN, GRACE_PERIOD];
    let patch_body = r.patch_body.as_deref();
    let collection = [
        Op::new("get", "list", "list", &r.list_name).params(&list_params),
        Op::new("post", "post", "create", &r.name).params(&write).body(&r.name),
        Op::new("delete", "deletecollection", "deletecollection", &meta.status)
            .params(&delete_collection_params)
            .body(&meta.delete_options),
    ];
    paths.insert(prefix.clone(), path_item(flavor, r, &collection, scope, false));

    let item = [
        Op::new("get", "get", "read", &r.name),
        Op::new("put", "put", "replace", &r.name).params(&write).body(&r.name),
        // No body description for built-in kinds: see the module comment.
        Op::new("patch", "patch", "patch", &r.name).params(&patch_params).patch_body(patch_body),
        Op::new("delete", "delete", "delete", &meta.status).params(&[DRY_RUN, GRACE_PERIOD]).body(&meta.delete_options),
    ];
    let item_scope: Vec<Param> = std::iter::once(NAME).chain(scope.iter().copied()).collect();
    paths.insert(format!("{prefix}/{{name}}"), path_item(flavor, r, &item, &item_scope, false));

    let subresources = [("status", r.status.then_some(r.name.as_str())), ("scale", r.scale.as_deref())];
    for (sub, response) in subresources {
        let Some(response) = response else { continue };
        let ops = [
            Op::new("get", "get", "read", response).sub(sub),
            Op::new("put", "put", "replace", response).params(&write).body(response).sub(sub),
            Op::new("patch", "patch", "patch", response).params(&patch_params).patch_body(patch_body).sub(sub),
        ];
        paths.insert(format!("{prefix}/{{name}}/{sub}"), path_item(flavor, r, &ops, &item_scope, false));
    }

    if r.namespaced {
        let list = Op::new("get", "list", "list", &r.list_name).params(&list_params);
        paths.insert(format!("{root}/{}", r.plural), path_item(flavor, r, &[list], &[PRETTY], true));
    }
}

/// The `paths` object of a document over `resources`.
pub fn paths(flavor: Flavor, resources: &[Resource], meta: &MetaNames) -> Map<String, Value> {
    let mut paths = Map::new();
    for r in resources {
        add_resource(flavor, r, meta, &mut paths);
    }
    paths
}
