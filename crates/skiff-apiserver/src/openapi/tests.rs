//! The built-in kinds' documents as kubectl reads them; custom resources' in `crds`.

use super::build::{BASE, JsonParts, v2_document, v3_document};
use super::*;
use serde_json::{Map, json};
use std::sync::LazyLock;

mod crds;

const POD_ITEM: &str = "/api/v1/namespaces/{namespace}/pods/{name}";
const PULL_POLICY: &str = "Image pull policy. One of Always, Never, IfNotPresent.";

fn v3() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(|| v3_document("", "v1"));
    &DOC
}

fn v3_leases() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(|| v3_document("coordination.k8s.io", "v1"));
    &DOC
}

fn v2_json() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(v2_document);
    &DOC
}

/// Every schema object in `v`, depth first.
fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Map<String, Value>>) {
    match v {
        Value::Object(o) => {
            out.push(o);
            o.values().for_each(|c| walk(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
        _ => {}
    }
}

#[test]
fn every_served_kind_has_a_typed_schema() {
    let mut g = k8s_openapi::schemars::generate::SchemaGenerator::default();
    for k in skiff_core::kinds::all() {
        let i = k.info();
        let name = k.schema(&mut g).name;
        let v3 = v3_document(i.group, i.version);
        for defs in [&v3["components"]["schemas"], &v2_json()["definitions"]] {
            assert_eq!(
                defs[&name]["x-kubernetes-group-version-kind"],
                json!([{"group": i.group, "kind": i.kind, "version": i.version}]),
                "{name}"
            );
            assert!(defs[format!("{name}List")].is_object(), "{name}List");
        }
    }
}

#[test]
fn named_groups_get_their_own_v3_document_and_operation_ids() {
    let paths = v3_leases()["paths"].as_object().expect("paths");
    let list = &paths["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"]["get"];
    assert_eq!(list["operationId"], "listCoordinationV1NamespacedLease");
    assert_eq!(list["tags"], json!(["coordination_v1"]));
    assert_eq!(
        paths["/apis/coordination.k8s.io/v1/leases"]["get"]["operationId"],
        "listCoordinationV1LeaseForAllNamespaces"
    );
    assert!(paths.keys().all(|p| p.starts_with("/apis/coordination.k8s.io/v1/")), "{:?}", paths.keys());
    assert!(v3_leases()["components"]["schemas"]["io.k8s.api.coordination.v1.LeaseList"].is_object());
    // The core document has no leases; v2 has every group.
    assert!(!v3()["paths"].as_object().expect("paths").keys().any(|p| p.contains("leases")));
    assert_eq!(v3()["paths"][POD_ITEM]["get"]["operationId"], "readCoreV1NamespacedPod");
    assert!(v2_json()["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"].is_object());
    assert_eq!(paths::group_tag("rbac.authorization.k8s.io", "v1"), "rbacAuthorization_v1");
    assert_eq!(paths::group_tag("apps", "v1"), "apps_v1");
}

/// The RBAC group's own v3 document, with upstream's operation ids; ServiceAccounts in core's.
#[test]
fn rbac_and_service_accounts_are_documented() {
    let rbac = v3_document("rbac.authorization.k8s.io", "v1");
    let paths = rbac["paths"].as_object().expect("paths");
    let namespaced = &paths["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/{name}"];
    assert_eq!(namespaced["get"]["operationId"], "readRbacAuthorizationV1NamespacedRoleBinding");
    assert_eq!(namespaced["get"]["tags"], json!(["rbacAuthorization_v1"]));
    let cluster = &paths["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"];
    assert_eq!(cluster["put"]["operationId"], "replaceRbacAuthorizationV1ClusterRole");
    assert!(!paths.keys().any(|p| p.contains("namespaces/{namespace}/clusterrole")), "{:?}", paths.keys());
    let schemas = &rbac["components"]["schemas"];
    for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
        assert!(schemas[format!("io.k8s.api.rbac.v1.{kind}List")].is_object(), "{kind}List");
    }
    assert!(schemas["io.k8s.api.rbac.v1.ClusterRole"]["properties"]["aggregationRule"].is_object());
    let core = v3()["paths"].as_object().expect("paths");
    assert_eq!(
        core["/api/v1/namespaces/{namespace}/serviceaccounts"]["post"]["operationId"],
        "createCoreV1NamespacedServiceAccount"
    );
    assert!(v2_json()["definitions"]["io.k8s.api.rbac.v1.Subject"].is_object());
}

#[test]
fn descriptions_are_upstream() {
    let schemas = &v3()["components"]["schemas"];
    let policy = &schemas["io.k8s.api.core.v1.Container"]["properties"]["imagePullPolicy"];
    assert_eq!(policy["type"], "string");
    assert!(policy["description"].as_str().is_some_and(|d| d.starts_with(PULL_POLICY)), "{policy}");
    let meta = &schemas["io.k8s.api.core.v1.Pod"]["properties"]["metadata"];
    assert_eq!(meta["allOf"][0]["$ref"], "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    assert!(meta["description"].as_str().is_some_and(|d| d.starts_with("Standard object's metadata.")));
    let data = &schemas["io.k8s.api.core.v1.Secret"]["properties"]["data"];
    assert_eq!(data["additionalProperties"], json!({"type": "string", "format": "byte"}));
    // v2 keeps the description beside the reference.
    let meta2 = &v2_json()["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["metadata"];
    assert_eq!(meta2["$ref"], "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    assert!(meta2["description"].is_string());
}

#[test]
fn v3_pod_patch_advertises_field_validation_and_no_patch_types() {
    let patch = &v3()["paths"][POD_ITEM]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"], json!({"group": "", "kind": "Pod", "version": "v1"}));
    let params = patch["parameters"].as_array().expect("parameters");
    assert!(params.iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    // kubectl would compute strategic merge patches from these schemas if it were listed.
    assert!(patch.get("requestBody").is_none());
    // Every kind that may be patched says so; a read-only kind has no PATCH at all.
    for k in skiff_core::kinds::in_group_version("", "v1") {
        let patchable = v3()["paths"].as_object().expect("paths").values().any(|item| {
            item["patch"]["x-kubernetes-group-version-kind"]["kind"] == k.info().kind
                && item["patch"]["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
        });
        assert_eq!(patchable, k.info().verbs.contains(&"patch"), "{}", k.info().kind);
    }
}

#[test]
fn v2_pod_patch_advertises_field_validation_and_no_patch_types() {
    let patch = &v2_json()["paths"][POD_ITEM]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
    assert!(patch["parameters"].as_array().expect("params").iter().any(|p| p["name"] == "fieldValidation"));
    assert!(patch.get("consumes").is_none());
}

#[test]
fn v3_references_resolve_and_carry_no_siblings() {
    let doc = v3();
    let mut objects = Vec::new();
    walk(doc, &mut objects);
    let refs: Vec<_> = objects.iter().filter_map(|o| o.get("$ref")).collect();
    assert!(refs.len() > 100);
    for o in objects.iter().filter(|o| o.contains_key("$ref")) {
        assert_eq!(o.len(), 1, "$ref with siblings: {o:?}");
        let r = o["$ref"].as_str().expect("ref");
        let name = r.strip_prefix("#/components/schemas/").expect("local ref");
        assert!(doc["components"]["schemas"][name].is_object(), "dangling {r}");
    }
}

/// What kubectl's v2 parser (kube-openapi `proto.NewOpenAPIData`) refuses, checked on every schema.
fn check_v2_schema(path: &str, s: &Value, defs: &Value) {
    let o = s.as_object().unwrap_or_else(|| panic!("{path}: not an object"));
    if let Some(r) = o.get("$ref") {
        let name = r.as_str().and_then(|r| r.strip_prefix("#/definitions/")).expect("definition ref");
        assert!(defs[name].is_object(), "{path}: dangling {name}");
        assert!(!o.contains_key("type") && !o.contains_key("properties"), "{path}: $ref with a type");
        return;
    }
    assert!(!o.contains_key("allOf"), "{path}: allOf");
    match o.get("type") {
        None => {}
        Some(Value::String(t)) => {
            assert!(["object", "array", "string", "integer", "number", "boolean"].contains(&t.as_str()), "{path}: {t}")
        }
        Some(t) => panic!("{path}: type {t}"),
    }
    if o.get("type").is_some_and(|t| t == "array") {
        check_v2_schema(&format!("{path}[]"), &o["items"], defs);
    }
    if let Some(Value::Object(props)) = o.get("properties") {
        for (k, p) in props {
            check_v2_schema(&format!("{path}.{k}"), p, defs);
        }
    }
    if let Some(ap @ Value::Object(_)) = o.get("additionalProperties") {
        check_v2_schema(&format!("{path}{{}}"), ap, defs);
    }
}

#[test]
fn v2_definitions_parse_as_kubectl_parses_them() {
    let defs = &v2_json()["definitions"];
    let defs_map = defs.as_object().expect("definitions");
    assert!(defs_map.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    for (name, s) in defs_map {
        check_v2_schema(name, s, defs);
    }
}

/// The length-delimited fields of one message (what the documents are made of), by the request
/// decoder's wire reader.
fn fields(b: &[u8]) -> Vec<(u64, &[u8])> {
    use crate::protobuf::wire::{LEN, Reader};
    let mut r = Reader::new(b);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (field, wire) = r.key("document").expect("key");
        if wire == LEN {
            out.push((u64::from(field), r.len_delimited().expect("payload")));
        } else {
            r.skip(wire).expect("field");
        }
    }
    out
}

fn field(msg: &[u8], n: u64) -> Vec<&[u8]> {
    fields(msg).into_iter().filter(|(f, _)| *f == n).map(|(_, v)| v).collect()
}

/// The value of the `Named*` entry called `name` in a repeated field `n`.
fn named<'a>(msg: &'a [u8], n: u64, name: &str) -> &'a [u8] {
    field(msg, n).into_iter().find(|e| field(e, 1) == [name.as_bytes()]).map(|e| field(e, 2)[0]).expect(name)
}

#[test]
fn v2_protobuf_carries_the_json_document() {
    let pb = gnostic::encode_document(v2_json()).expect("encodes");
    let swagger = field(&pb, 1);
    assert_eq!(swagger, [b"2.0".as_slice()]);
    let definitions = field(&pb, 9)[0];
    assert_eq!(field(definitions, 1).len(), v2_json()["definitions"].as_object().expect("defs").len());
    let container = named(definitions, 1, "io.k8s.api.core.v1.Container");
    let policy = named(field(container, 25)[0], 1, "imagePullPolicy");
    assert!(field(policy, 4)[0].starts_with(PULL_POLICY.as_bytes()));
    assert_eq!(field(field(policy, 22)[0], 1), [b"string".as_slice()]);
    // Pod PATCH: fieldValidation query parameter and the GVK extension as YAML (JSON is YAML).
    let patch = field(named(field(&pb, 8)[0], 2, POD_ITEM), 8)[0];
    let query_names: Vec<&[u8]> = field(patch, 8)
        .into_iter()
        .flat_map(|item| field(item, 1))
        .flat_map(|param| field(param, 2))
        .flat_map(|non_body| field(non_body, 3))
        .flat_map(|query| field(query, 4))
        .collect();
    assert!(query_names.contains(&b"fieldValidation".as_slice()));
    let gvk = named(patch, 13, "x-kubernetes-group-version-kind");
    let yaml: Value = serde_json::from_slice(field(gvk, 2)[0]).expect("json");
    assert_eq!(yaml, json!({"group": "", "kind": "Pod", "version": "v1"}));
}

#[test]
fn encoder_refuses_what_it_would_drop() {
    let err = gnostic::encode_document(&json!({"swagger": "2.0", "bogus": 1})).expect_err("unknown key");
    assert!(err.to_string().contains("\"bogus\" in Document"), "{err}");
    let err = gnostic::encode_document(&json!({"swagger": 2})).expect_err("wrong type");
    assert!(err.to_string().contains("string expected"), "{err}");
}

#[test]
fn documents_are_cached_with_etags() {
    let d = &BASE.as_ref().expect("documents build").documents;
    let (_, core) = d.v3.iter().find(|(p, _)| p == "api/v1").expect("api/v1");
    let first = core.respond(&HeaderMap::new(), true);
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[header::CACHE_CONTROL], "public, immutable");
    let etag = first.headers()[header::ETAG].clone();
    let mut again = HeaderMap::new();
    again.insert(header::IF_NONE_MATCH, etag);
    assert_eq!(core.respond(&again, false).status(), StatusCode::NOT_MODIFIED);
    let root: Value = serde_json::from_slice(&d.v3_root.body).expect("root");
    assert_eq!(root["paths"]["api/v1"]["serverRelativeURL"], format!("/openapi/v3/api/v1?hash={}", core.hash));
    let (_, leases) = d.v3.iter().find(|(p, _)| p == "apis/coordination.k8s.io/v1").expect("leases");
    assert_eq!(
        root["paths"]["apis/coordination.k8s.io/v1"]["serverRelativeURL"],
        format!("/openapi/v3/apis/coordination.k8s.io/v1?hash={}", leases.hash)
    );
    assert!(d.v2_protobuf.body.len() > 100_000);
    let mut pb = HeaderMap::new();
    pb.insert(header::ACCEPT, HeaderValue::from_static("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"));
    assert!(wants_protobuf(&pb));
    assert!(!wants_protobuf(&HeaderMap::new()));
}
