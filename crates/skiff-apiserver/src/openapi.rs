//! OpenAPI documents, enough for kubectl's validation: each kind's PATCH operation advertises the
//! `fieldValidation` parameter, so kubectl leaves schema validation to the server.
//! v3 is JSON; v2 is gnostic's protobuf `openapi_v2.Document`, encoded here by hand
//! (a handful of nested messages does not justify a protobuf code generator).

use serde_json::{Value, json};
use skiff_core::kinds;

pub const V2_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn item_path(k: &dyn kinds::Kind) -> String {
    let i = k.info();
    if i.namespaced {
        format!("/api/v1/namespaces/{{namespace}}/{}/{{name}}", i.plural)
    } else {
        format!("/api/v1/{}/{{name}}", i.plural)
    }
}

/// A stable hash of the served document, for `serverRelativeURL`.
fn doc_hash() -> String {
    format!("skiff-{}-{}", env!("CARGO_PKG_VERSION"), kinds::all().len())
}

pub fn v3_root() -> Value {
    json!({"paths": {"api/v1": {"serverRelativeURL": format!("/openapi/v3/api/v1?hash={}", doc_hash())},
        "api": {"serverRelativeURL": format!("/openapi/v3/api?hash={}", doc_hash())}}})
}

pub fn v3_core() -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for k in kinds::all() {
        let i = k.info();
        let gvk = json!({"group": "", "version": "v1", "kind": i.kind});
        let schema_ref = json!({"$ref": format!("#/components/schemas/io.k8s.api.core.v1.{}", i.kind)});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
        ]);
        paths.insert(
            item_path(*k),
            json!({
                "get": {"operationId": format!("read{}", i.kind), "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "put": {"operationId": format!("replace{}", i.kind), "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": ok},
                "patch": {"operationId": format!("patch{}", i.kind), "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": ok},
                "delete": {"operationId": format!("delete{}", i.kind), "x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk, "responses": ok}
            }),
        );
        schemas.insert(
            format!("io.k8s.api.core.v1.{}", i.kind),
            json!({"type": "object", "x-kubernetes-group-version-kind": [gvk],
                "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"}, "spec": {"type": "object"}, "status": {"type": "object"}}}),
        );
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::discovery::KUBE_MINOR)},
        "paths": paths, "components": {"schemas": schemas}})
}

/// Protobuf wire encoding helpers: only length-delimited fields are needed.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field(num: u32, payload: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(num << 3 | 2), out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

fn msg(fields: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, p) in fields {
        field(*n, p, &mut out);
    }
    out
}

fn s(v: &str) -> Vec<u8> {
    v.as_bytes().to_vec()
}

/// `openapi_v2.Document` with, per kind, a PATCH operation carrying the `fieldValidation` query
/// parameter and the `x-kubernetes-group-version-kind` extension.
pub fn v2_protobuf() -> Vec<u8> {
    let mut named_paths = Vec::new();
    for k in kinds::all() {
        let i = k.info();
        // NonBodyParameter.query_parameter_sub_schema{in=2, name=4, type=6}
        let query = msg(&[(2, s("query")), (4, s("fieldValidation")), (6, s("string"))]);
        let non_body = msg(&[(3, query)]);
        let parameter = msg(&[(2, non_body)]);
        let parameters_item = msg(&[(1, parameter)]);
        let gvk_yaml = format!("group: \"\"\nkind: {}\nversion: v1\n", i.kind);
        let any = msg(&[(2, s(&gvk_yaml))]);
        let named_any = msg(&[(1, s("x-kubernetes-group-version-kind")), (2, any)]);
        // Operation{parameters=8, vendor_extension=13}
        let operation = msg(&[(8, parameters_item), (13, named_any)]);
        // PathItem{patch=8}
        let path_item = msg(&[(8, operation)]);
        named_paths.push((2, msg(&[(1, s(&item_path(*k))), (2, path_item)])));
    }
    let paths = msg(&named_paths);
    let info = msg(&[(1, s("Kubernetes")), (2, s(&format!("v1.{}.0", crate::discovery::KUBE_MINOR)))]);
    msg(&[(1, s("2.0")), (2, info), (8, paths)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_advertises_field_validation_on_pod_patch() {
        let doc = v3_core();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
        assert!(patch["parameters"].as_array().expect("params").iter().any(|p| p["name"] == "fieldValidation"));
    }

    #[test]
    fn v2_protobuf_is_well_formed() {
        let b = v2_protobuf();
        // Document field 1 (swagger) comes first: tag 0x0a, length 3, "2.0".
        assert_eq!(&b[..5], b"\x0a\x032.0");
        assert!(b.windows(15).any(|w| w == b"fieldValidation"));
    }
}
