//! Custom resources in the documents: a sample CRD's definitions and paths in v3 and v2, the
//! handle's index, hashes and protobuf, and schemas no encoder should trip on.

use super::super::custom::{self, CustomVersion};
use super::super::schemas::Flavor;
use super::*;

const WIDGET: &str = "com.example.v1.Widget";
const WIDGET_ITEM: &str = "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Namespaced, status and scale, a deprecated v1beta1 keeping unknown fields, a v1alpha1 not
/// served; v1's schema has int-or-string, nullable, embedded resources, unknown fields kept.
fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "uid": "u1"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "description": "A widget.",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size", "note"],
                                "x-kubernetes-validations": [{"rule": "self.size < 100", "message": "too big"}],
                                "properties": {
                                    "size": {"type": "integer", "description": "How big it is.", "minimum": 1, "default": 3},
                                    "port": {"x-kubernetes-int-or-string": true, "description": "A port."},
                                    "note": {"type": "string", "nullable": true},
                                    "mode": {"type": "string", "enum": ["a", "b"], "example": "a"},
                                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                    "template": {
                                        "type": "object",
                                        "x-kubernetes-embedded-resource": true,
                                        "x-kubernetes-preserve-unknown-fields": true,
                                    },
                                    "pod": {
                                        "type": "object",
                                        "x-kubernetes-embedded-resource": true,
                                        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                                    },
                                    "extra": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": true,
                                        "properties": {"known": {"type": "string"}},
                                    },
                                },
                            },
                            "status": {"type": "object", "properties": {
                                "replicas": {"type": "integer"},
                                "selector": {"type": "string"},
                            }},
                        },
                    }},
                    "subresources": {"status": {}, "scale": {
                        "specReplicasPath": ".spec.size",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    }},
                    "selectableFields": [{"jsonPath": ".spec.mode"}],
                },
                {
                    "name": "v1beta1", "served": true, "storage": false, "deprecated": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                },
                {"name": "v1alpha1", "served": false, "storage": false,
                    "schema": {"openAPIV3Schema": {"type": "object"}}},
            ],
        },
        "status": {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
            ],
            "acceptedNames": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "storedVersions": ["v1"],
        },
    })
}

/// Cluster scoped, no schema, no subresources, names not accepted yet (spec.names serve).
fn gadget_crd() -> Value {
    json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true}],
        },
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    })
}

fn versions() -> Vec<CustomVersion> {
    custom::served_versions(&[widget_crd(), gadget_crd()])
}

fn version(group_version: &str, kind: &str) -> CustomVersion {
    versions()
        .into_iter()
        .find(|v| format!("{}/{}", v.group, v.version) == group_version && v.kind == kind)
        .expect(kind)
}

fn v3_custom() -> Value {
    let all = versions();
    let v1: Vec<&CustomVersion> = all.iter().filter(|v| v.version == "v1").collect();
    custom::v3_document(&v1)
}

#[test]
fn served_versions_follow_the_conditions() {
    let names: Vec<String> = versions().iter().map(|v| format!("{}/{}/{}", v.group, v.version, v.kind)).collect();
    assert_eq!(names, ["example.com/v1/Gadget", "example.com/v1/Widget", "example.com/v1beta1/Widget"]);
    let widget = version("example.com/v1", "Widget");
    assert!(widget.namespaced && widget.status && widget.scale);
    assert_eq!(widget.selectable_fields, [".spec.mode"]);
    let gadget = version("example.com/v1", "Gadget");
    assert_eq!((gadget.list_kind.as_str(), gadget.namespaced, gadget.schema.is_none()), ("GadgetList", false, true));

    let mut not_established = widget_crd();
    not_established["status"]["conditions"][1]["status"] = "False".into();
    let mut deleting = widget_crd();
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z".into();
    let mut no_status = widget_crd();
    no_status["status"] = json!({});
    assert!(custom::served_versions(&[not_established, deleting, no_status, json!(null), json!([1])]).is_empty());

    // The accepted names are served, not the ones asked for.
    let mut renamed = widget_crd();
    renamed["spec"]["names"]["kind"] = "Gizmo".into();
    assert!(custom::served_versions(&[renamed]).iter().all(|v| v.kind == "Widget"));
}

#[test]
fn v3_kind_schema_is_upstreams() {
    let doc = v3_custom();
    assert_eq!(doc["openapi"], "3.0.0");
    assert_eq!(doc["info"], json!({"title": "Kubernetes CRD Swagger", "version": "v0.1.0"}));
    let schemas = &doc["components"]["schemas"];
    let w = &schemas[WIDGET];
    assert_eq!(
        w["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(w["x-kubernetes-selectable-fields"], json!([{"fieldPath": "spec.mode"}]));
    assert_eq!(w["description"], "A widget.");
    let props = &w["properties"];
    assert_eq!(props["apiVersion"]["type"], "string");
    assert!(props["apiVersion"]["description"].as_str().is_some_and(|d| d.starts_with("APIVersion defines")));
    assert!(props["kind"]["description"].as_str().is_some_and(|d| d.starts_with("Kind is a string value")));
    assert_eq!(props["metadata"]["allOf"], json!([{"$ref": format!("#/components/schemas/{OBJECT_META}")}]));
    assert!(props["metadata"]["description"].as_str().is_some_and(|d| d.starts_with("Standard object's metadata.")));

    let spec = &props["spec"];
    assert_eq!(spec["required"], json!(["size", "note"]));
    assert_eq!(spec["x-kubernetes-validations"], json!([{"rule": "self.size < 100", "message": "too big"}]));
    let spec = &spec["properties"];
    assert_eq!(spec["size"], json!({"type": "integer", "description": "How big it is.", "minimum": 1, "default": 3}));
    assert_eq!(
        spec["port"],
        json!({"x-kubernetes-int-or-string": true, "description": "A port.",
            "anyOf": [{"type": "integer"}, {"type": "string"}]})
    );
    assert_eq!(spec["note"], json!({"type": "string", "nullable": true}));
    // Structural schemas have no `example`.
    assert_eq!(spec["mode"], json!({"type": "string", "enum": ["a", "b"]}));
    assert_eq!(spec["tags"]["x-kubernetes-list-type"], "set");
    for embedded in ["template", "pod"] {
        let e = &spec[embedded];
        assert_eq!(e["required"], json!(["kind", "apiVersion"]), "{embedded}");
        assert!(
            e["properties"]["apiVersion"]["description"].as_str().is_some_and(|d| d.starts_with("apiVersion defines"))
        );
        assert_eq!(e["properties"]["metadata"]["allOf"][0]["$ref"], format!("#/components/schemas/{OBJECT_META}"));
    }
    assert_eq!(spec["pod"]["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(spec["extra"]["properties"]["known"]["type"], "string");

    // No schema: an object, with its kind.
    assert_eq!(
        schemas["com.example.v1.Gadget"],
        json!({"type": "object", "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "Gadget", "version": "v1"}]})
    );
}

#[test]
fn v3_list_and_meta_schemas() {
    let doc = v3_custom();
    let schemas = &doc["components"]["schemas"];
    let list = &schemas["com.example.v1.WidgetList"];
    assert_eq!(list["description"], "WidgetList is a list of Widget");
    assert_eq!(list["required"], json!(["items"]));
    assert_eq!(list["properties"]["items"]["items"], json!({"$ref": format!("#/components/schemas/{WIDGET}")}));
    assert!(list["properties"]["items"]["description"].as_str().is_some_and(|d| d.starts_with("List of widgets.")));
    assert_eq!(
        list["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
    );
    assert_eq!(list["x-kubernetes-group-version-kind"][0]["kind"], "WidgetList");
    assert_eq!(list["x-kubernetes-selectable-fields"], json!([{"fieldPath": "spec.mode"}]));
    // The meta schemas are the built-in documents'.
    let core = &v3()["components"]["schemas"];
    for name in [OBJECT_META, "io.k8s.apimachinery.pkg.apis.meta.v1.Status"] {
        assert_eq!(schemas[name], core[name], "{name}");
    }
    assert_eq!(schemas["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"][0]["kind"], "Scale");
    assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Patch"].is_object());
    // Every reference resolves, with nothing beside it.
    let mut objects = Vec::new();
    walk(&doc, &mut objects);
    for o in objects.iter().filter(|o| o.contains_key("$ref")) {
        assert_eq!(o.len(), 1, "$ref with siblings: {o:?}");
        let name = o["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")).expect("local ref");
        assert!(schemas[name].is_object(), "dangling {name}");
    }
    // Scale only where a CRD serves it.
    let all = versions();
    let beta: Vec<&CustomVersion> = all.iter().filter(|v| v.version == "v1beta1").collect();
    assert!(custom::v3_document(&beta)["components"]["schemas"].get("io.k8s.api.autoscaling.v1.Scale").is_none());
}

/// Every PATCH of `kind` in `paths` takes `fieldValidation` (kubectl looks at whichever it finds).
fn patches_take_field_validation(paths: &Value, kind: &str) -> usize {
    let patches: Vec<&Value> = paths
        .as_object()
        .expect("paths")
        .values()
        .filter_map(|item| item.get("patch"))
        .filter(|op| op["x-kubernetes-group-version-kind"]["kind"] == kind)
        .collect();
    for op in &patches {
        let params = op["parameters"].as_array().expect("parameters");
        assert!(params.iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"), "{op}");
    }
    patches.len()
}

#[test]
fn v3_paths_and_operations() {
    let doc = v3_custom();
    let paths = &doc["paths"];
    let item = &paths[WIDGET_ITEM];
    assert_eq!(item["get"]["operationId"], "readExampleComV1NamespacedWidget");
    assert_eq!(item["get"]["tags"], json!(["exampleCom_v1"]));
    assert_eq!(item["patch"]["operationId"], "patchExampleComV1NamespacedWidget");
    assert_eq!(
        item["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "example.com", "kind": "Widget", "version": "v1"})
    );
    let content: Vec<&String> = item["patch"]["requestBody"]["content"].as_object().expect("content").keys().collect();
    assert_eq!(
        content,
        ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
    );
    assert_eq!(item["delete"]["operationId"], "deleteExampleComV1NamespacedWidget");
    let collection = &paths["/apis/example.com/v1/namespaces/{namespace}/widgets"];
    assert_eq!(collection["get"]["operationId"], "listExampleComV1NamespacedWidget");
    assert_eq!(collection["post"]["operationId"], "createExampleComV1NamespacedWidget");
    assert_eq!(collection["delete"]["operationId"], "deleteExampleComV1CollectionNamespacedWidget");
    assert_eq!(
        collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/com.example.v1.WidgetList"
    );
    assert_eq!(paths["/apis/example.com/v1/widgets"]["get"]["operationId"], "listExampleComV1WidgetForAllNamespaces");
    let status = &paths[format!("{WIDGET_ITEM}/status")];
    assert_eq!(status["get"]["operationId"], "readExampleComV1NamespacedWidgetStatus");
    assert_eq!(status["put"]["operationId"], "replaceExampleComV1NamespacedWidgetStatus");
    let scale = &paths[format!("{WIDGET_ITEM}/scale")];
    assert_eq!(scale["patch"]["operationId"], "patchExampleComV1NamespacedWidgetScale");
    assert_eq!(
        scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
    assert_eq!(patches_take_field_validation(paths, "Widget"), 3);

    // Cluster scoped, no subresources.
    assert_eq!(paths["/apis/example.com/v1/gadgets/{name}"]["get"]["operationId"], "readExampleComV1Gadget");
    assert_eq!(paths["/apis/example.com/v1/gadgets"]["delete"]["operationId"], "deleteExampleComV1CollectionGadget");
    assert!(paths.get("/apis/example.com/v1/gadgets/{name}/status").is_none());
    assert_eq!(patches_take_field_validation(paths, "Gadget"), 1);
    let keys = paths.as_object().expect("paths").keys();
    assert!(keys.clone().all(|p| p.starts_with("/apis/example.com/v1/")), "{keys:?}");
}

/// The v2 form of the Widget: what kubectl's v2 parser takes, nothing v2 cannot say.
#[test]
fn v2_kind_definition_is_upstreams() {
    let part = custom::part(Flavor::V2, &version("example.com/v1", "Widget"));
    let w = &part.definitions[WIDGET];
    let mut defs = v2_json()["definitions"].clone();
    if let Value::Object(d) = &mut defs {
        d.extend(part.definitions.clone());
        d.extend(custom::meta_definitions(Flavor::V2, true));
    }
    check_v2_schema(WIDGET, w, &defs);
    let mut objects = Vec::new();
    walk(w, &mut objects);
    for banned in ["nullable", "default", "anyOf", "allOf", "oneOf", "not", "example"] {
        assert!(objects.iter().all(|o| !o.contains_key(banned)), "{banned} in {w}");
    }
    let meta = &w["properties"]["metadata"];
    assert_eq!(meta["$ref"], format!("#/definitions/{OBJECT_META}"));
    assert!(meta["description"].is_string());
    let spec = &w["properties"]["spec"];
    // A nullable field is no longer required, and untyped.
    assert_eq!(spec["required"], json!(["size"]));
    assert_eq!(spec["properties"]["note"], json!({}));
    assert_eq!(spec["properties"]["size"], json!({"type": "integer", "description": "How big it is.", "minimum": 1}));
    assert_eq!(spec["properties"]["port"], json!({"x-kubernetes-int-or-string": true, "description": "A port."}));
    // Unknown fields kept: no properties listed, no embedded fields added.
    assert_eq!(
        spec["properties"]["template"],
        json!({"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true})
    );
    assert!(spec["properties"]["extra"].get("properties").is_none());
    let pod = &spec["properties"]["pod"];
    assert_eq!(pod["required"], json!(["kind", "apiVersion"]));
    assert_eq!(pod["properties"]["metadata"]["$ref"], format!("#/definitions/{OBJECT_META}"));
    assert_eq!(w["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
    let patch = &part.paths[WIDGET_ITEM]["patch"];
    assert_eq!(patch["consumes"][1], "application/merge-patch+json");
    assert_eq!(patch["parameters"][0]["schema"]["$ref"], "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch");
    assert!(patch["parameters"].as_array().expect("params").iter().any(|p| p["name"] == "fieldValidation"));

    // Unknown fields kept at the root: an object, nothing listed.
    let beta = custom::part(Flavor::V2, &version("example.com/v1beta1", "Widget"));
    assert_eq!(
        beta.definitions["com.example.v1beta1.Widget"],
        json!({"type": "object", "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "Widget", "version": "v1beta1"}]})
    );
}

fn body(resp: Response) -> Bytes {
    assert_eq!(resp.status(), StatusCode::OK);
    futures::executor::block_on(axum::body::to_bytes(resp.into_body(), usize::MAX)).expect("body")
}

fn json_body(resp: Response) -> Value {
    serde_json::from_slice(&body(resp)).expect("json")
}

fn index(api: &OpenApi) -> Map<String, Value> {
    json_body(api.v3_root(&HeaderMap::new()))["paths"].as_object().cloned().expect("paths")
}

fn url(index: &Map<String, Value>, path: &str) -> Option<String> {
    index.get(path).and_then(|e| e["serverRelativeURL"].as_str()).map(str::to_string)
}

fn protobuf_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT, HeaderValue::from_static("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"));
    h
}

#[test]
fn handle_publishes_established_crds_and_withdraws_them() {
    let api = OpenApi::new();
    let before = index(&api);
    assert!(!before.contains_key("apis/example.com/v1"));
    let core = url(&before, "api/v1").expect("api/v1");

    api.set_custom_resources(&[widget_crd(), gadget_crd()]);
    let after = index(&api);
    assert_eq!(url(&after, "api/v1").as_ref(), Some(&core), "built-in documents unchanged");
    let v1 = url(&after, "apis/example.com/v1").expect("example.com/v1 listed");
    let beta = url(&after, "apis/example.com/v1beta1").expect("example.com/v1beta1 listed");
    assert!(!after.contains_key("apis/example.com/v1alpha1"), "not served");
    let (path, query) = v1.strip_prefix("/openapi/v3/").and_then(|u| u.split_once('?')).expect("url");
    let resp = api.v3_group_version(path, &HeaderMap::new(), Some(query));
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "public, immutable");
    assert_eq!(json_body(resp), v3_custom());

    let v2: Value = json_body(api.v2(&HeaderMap::new()));
    assert!(v2["definitions"][WIDGET].is_object() && v2["definitions"]["com.example.v1beta1.Widget"].is_object());
    assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    assert_eq!(v2["paths"][WIDGET_ITEM]["patch"]["operationId"], "patchExampleComV1NamespacedWidget");
    for (name, s) in v2["definitions"].as_object().expect("definitions") {
        check_v2_schema(name, s, &v2["definitions"]);
    }

    // The protobuf says what the JSON says.
    let pb = body(api.v2(&protobuf_headers()));
    assert_eq!(field(&pb, 9).len(), 1, "one definitions message");
    let definitions = field(&pb, 9)[0];
    assert_eq!(field(definitions, 1).len(), v2["definitions"].as_object().expect("definitions").len());
    let widget = named(definitions, 1, WIDGET);
    let spec = named(field(widget, 25)[0], 1, "spec");
    let size = named(field(spec, 25)[0], 1, "size");
    assert_eq!(field(size, 4), [b"How big it is.".as_slice()]);
    let paths_pb = field(&pb, 8)[0];
    assert_eq!(field(paths_pb, 2).len(), v2["paths"].as_object().expect("paths").len());
    let patch = field(named(paths_pb, 2, WIDGET_ITEM), 8)[0];
    let query_names: Vec<&[u8]> = field(patch, 8)
        .into_iter()
        .flat_map(|item| field(item, 1))
        .flat_map(|param| field(param, 2))
        .flat_map(|non_body| field(non_body, 3))
        .flat_map(|query| field(query, 4))
        .collect();
    assert!(query_names.contains(&b"fieldValidation".as_slice()));
    assert_eq!(pb, gnostic::encode_document(&v2).expect("encodes"), "the same document, encoded at once");

    // The same CRDs again (a status update): nothing rebuilt.
    let current = api.inner.current.read().expect("lock").clone().expect("documents");
    let mut touched = widget_crd();
    touched["status"]["storedVersions"] = json!(["v1", "v1beta1"]);
    api.set_custom_resources(&[gadget_crd(), touched.clone()]);
    let again = api.inner.current.read().expect("lock").clone().expect("documents");
    assert!(Arc::ptr_eq(&current, &again));

    // A schema change: v1's document changes, v1beta1's does not.
    touched["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"] =
        json!({"type": "string"});
    api.set_custom_resources(&[gadget_crd(), touched.clone()]);
    let changed = index(&api);
    assert_ne!(url(&changed, "apis/example.com/v1"), Some(v1.clone()));
    assert_eq!(url(&changed, "apis/example.com/v1beta1"), Some(beta));
    let v1_doc = json_body(api.v3_group_version("apis/example.com/v1", &HeaderMap::new(), None));
    assert_eq!(v1_doc["components"]["schemas"][WIDGET]["properties"]["spec"]["properties"]["color"]["type"], "string");

    // No longer established (or being deleted): withdrawn from both documents.
    touched["status"]["conditions"][1]["status"] = "False".into();
    api.set_custom_resources(&[touched.clone(), gadget_crd()]);
    let gone = index(&api);
    assert!(!gone.contains_key("apis/example.com/v1beta1"));
    assert!(gone.contains_key("apis/example.com/v1"), "the Gadget stays");
    let v2: Value = json_body(api.v2(&HeaderMap::new()));
    assert!(v2["definitions"].get(WIDGET).is_none() && v2["paths"].get(WIDGET_ITEM).is_none());
    assert!(v2["definitions"]["com.example.v1.Gadget"].is_object());
    let mut deleting = gadget_crd();
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z".into();
    api.set_custom_resources(&[touched, deleting]);
    assert_eq!(index(&api), before);
    let missing = api.v3_group_version("apis/example.com/v1", &HeaderMap::new(), None);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(api.v2(&protobuf_headers())), body(OpenApi::new().v2(&protobuf_headers())));
}

/// Published faster than built: the latest set wins.
#[tokio::test(flavor = "multi_thread")]
async fn publish_builds_the_latest_set_in_the_background() {
    let api = OpenApi::new();
    api.publish(&[widget_crd()]);
    api.publish(&[gadget_crd()]);
    api.publish(&[widget_crd(), gadget_crd()]);
    api.publish(&[gadget_crd()]);
    for _ in 0..500 {
        if !api.inner.pending.lock().expect("lock").1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let index = index(&api);
    assert!(index.contains_key("apis/example.com/v1") && !index.contains_key("apis/example.com/v1beta1"));
    let v2: Value = json_body(api.v2(&HeaderMap::new()));
    assert!(v2["definitions"].get(WIDGET).is_none() && v2["definitions"]["com.example.v1.Gadget"].is_object());
}

#[test]
fn v2_json_parts_write_what_serde_writes() {
    let doc = v2_json();
    let mut parts = JsonParts::encode(doc).expect("encodes");
    assert_eq!(parts.finish(), serde_json::to_vec(doc).expect("json"));
    let part = custom::part(Flavor::V2, &version("example.com/v1", "Widget"));
    let doc_part = json!({"paths": part.paths, "definitions": part.definitions});
    parts.append(&JsonParts::encode(&doc_part).expect("encodes"));
    let mut merged = doc.clone();
    for (key, entries) in [("paths", &part.paths), ("definitions", &part.definitions)] {
        if let Some(Value::Object(m)) = merged.get_mut(key) {
            m.extend(entries.clone());
        }
    }
    assert_eq!(parts.finish(), serde_json::to_vec(&merged).expect("json"));
    let empty = JsonParts::encode(&json!({})).expect("encodes");
    assert_eq!(
        serde_json::from_slice::<Value>(&empty.finish()).expect("json"),
        json!({"paths": {}, "definitions": {}})
    );
}

/// A CRD of group `example.com`, version v1, kind `Odd` with `schema` as its schema.
fn odd_crd(schema: Value) -> Value {
    json!({
        "metadata": {"name": "odds.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "odds", "singular": "odd", "kind": "Odd"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    })
}

/// Whatever the schema, both documents are built and the v2 part encodes.
fn publishes(schema: Value) {
    let crd = odd_crd(schema);
    for v in custom::served_versions(std::slice::from_ref(&crd)) {
        let part = custom::part(Flavor::V2, &v);
        let doc = json!({"definitions": part.definitions, "paths": part.paths});
        if let Err(e) = gnostic::encode_document(&doc) {
            panic!("{e}: {}", crd["spec"]["versions"][0]["schema"]);
        }
        serde_json::to_vec(&custom::v3_document(&[&v])).expect("v3 serializes");
    }
}

#[test]
fn odd_schemas_are_published() {
    let anything = json!([null, true, 0, -1, 1.5, 1e300, "", "s", [], [1, "a", null], {}, {"a": {"b": [1]}}]);
    let mut props = Map::new();
    for (i, v) in anything.as_array().expect("values").iter().enumerate() {
        props.insert(format!("default{i}"), json!({"type": "object", "default": v, "example": v, "enum": [v, 1, "x"]}));
        props.insert(format!("ap{i}"), json!({"type": "object", "additionalProperties": v}));
        props.insert(
            format!("ext{i}"),
            json!({
                "x-kubernetes-preserve-unknown-fields": v, "x-kubernetes-embedded-resource": v,
                "x-kubernetes-int-or-string": v, "x-kubernetes-list-type": v, "x-kubernetes-map-type": v,
                "x-kubernetes-list-map-keys": v, "x-kubernetes-validations": v, "x-unknown": v,
            }),
        );
        for key in
            ["type", "maxLength", "maximum", "required", "items", "properties", "nullable", "format", "allOf", "not"]
        {
            props.insert(format!("{key}{i}"), json!({ key: v }));
        }
    }
    props.insert(
        "intOrString".into(),
        json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer", "maximum": 3}]}),
    );
    props.insert("types".into(), json!({"type": ["string", "null"], "items": [{"type": "string"}], "$ref": "#/x"}));
    props.insert("bigint".into(), json!({"type": "integer", "maxLength": u64::MAX, "minimum": i64::MIN}));
    props.insert("ünïcode \"quoted\"".into(), json!({"type": "string", "description": "\u{2028}\u{0}"}));
    props.insert(
        "embeddedNullable".into(),
        json!({"type": "object", "nullable": true, "x-kubernetes-embedded-resource": true}),
    );
    props.insert(
        "nullableMap".into(),
        json!({"type": "object", "additionalProperties": {"type": "string", "nullable": true}}),
    );
    let schema = json!({"type": "object", "required": ["nullableMap", 3], "properties": props,
        "x-kubernetes-validations": [{"rule": "true"}]});
    publishes(schema.clone());
    publishes(json!("not a schema"));
    publishes(json!({"properties": "no"}));
    // Deeper than anything stored: cut off, not overflowing a stack.
    let mut deep = json!({"type": "string"});
    for _ in 0..1000 {
        deep = json!({"type": "object", "properties": {"a": deep}, "items": {"x": 1}});
    }
    publishes(deep);

    // And through the handle.
    let api = OpenApi::new();
    api.set_custom_resources(&[odd_crd(schema)]);
    let v2: Value = json_body(api.v2(&HeaderMap::new()));
    assert!(v2["definitions"]["com.example.v1.Odd"]["properties"]["default0"].is_object());
}

/// A small deterministic generator of JSON values, for the encoder's no-panic test.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn value(&mut self, depth: u32) -> Value {
        const KEYS: [&str; 16] = [
            "type",
            "items",
            "properties",
            "additionalProperties",
            "default",
            "enum",
            "required",
            "$ref",
            "x-kubernetes-int-or-string",
            "nullable",
            "description",
            "maxLength",
            "allOf",
            "get",
            "parameters",
            "in",
        ];
        match self.next() % if depth > 4 { 5 } else { 7 } {
            0 => Value::Null,
            1 => Value::Bool(self.next().is_multiple_of(2)),
            2 => json!(self.next() as i64),
            3 => json!((self.next() % 1000) as f64 / 7.0),
            4 => json!(KEYS[(self.next() % 16) as usize]),
            5 => Value::Array((0..self.next() % 4).map(|_| self.value(depth + 1)).collect()),
            _ => Value::Object(
                (0..self.next() % 5)
                    .map(|_| (KEYS[(self.next() % 16) as usize].to_string(), self.value(depth + 1)))
                    .collect(),
            ),
        }
    }
}

/// The encoder errs, never panics, on documents of any shape; any schema a CRD may hold goes
/// through the custom resource pipeline into an encodable document.
#[test]
fn random_documents_never_panic() {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let v = g.value(0);
        let _ = gnostic::encode_document(&v);
        let _ = gnostic::encode_document(&json!({"definitions": {"X": v.clone()}}));
        let _ = gnostic::encode_document(&json!({"paths": {"/p": {"get": {"parameters": [v.clone()]}}}}));
        publishes(v);
    }
}

/// How long a build takes, with 1 and with 50 CRDs of the sample's size (two served versions
/// each): from none, and after one CRD's schema changed. Run with
/// `cargo test -p skiff-apiserver --lib rebuild_timing -- --ignored --nocapture`.
#[test]
#[ignore = "timing report"]
fn rebuild_timing() {
    let crds: Vec<Value> = (0..50)
        .map(|i| {
            let mut c = widget_crd();
            c["spec"]["group"] = format!("g{i}.example.com").into();
            c
        })
        .collect();
    let _ = BASE.as_ref();
    for n in [1, 50] {
        let api = OpenApi::new();
        let mut set = crds[..n].to_vec();
        let t = std::time::Instant::now();
        api.set_custom_resources(&set);
        println!("{n} CRDs: built in {:?}", t.elapsed());
        set[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "changed".into();
        let t = std::time::Instant::now();
        api.set_custom_resources(&set);
        println!("{n} CRDs: one changed, rebuilt in {:?}", t.elapsed());
        let t = std::time::Instant::now();
        api.set_custom_resources(&set);
        println!("{n} CRDs: unchanged, {:?}", t.elapsed());
    }
}
