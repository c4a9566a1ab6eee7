//! Tests of CustomResourceDefinitions against upstream's messages (docs/notes/crd.md §1, §5, §6).

use super::*;
use crate::field::ErrorList;
use serde_json::{Value, json};

const K: CustomResourceDefinitions = CustomResourceDefinitions;
const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}})
}

/// A valid single-version definition of `widgets.example.com`.
fn widget() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema()}}]}})
}

/// `raw` with the value at `pointer` (its parents must exist) replaced, or removed if null.
fn with(mut raw: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let target = raw.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    match (target, key.parse::<usize>()) {
        (Value::Array(a), Ok(i)) if i < a.len() => a[i] = value,
        (Value::Array(a), Ok(_)) => a.push(value),
        (Value::Object(o), _) if value.is_null() => {
            o.remove(key);
        }
        (Value::Object(o), _) => {
            o.insert(key.to_string(), value);
        }
        (other, _) => panic!("cannot set {key} in {other}"),
    }
    raw
}

/// The definition as a create makes it: decoded, defaulted, prepared.
fn created(raw: Value) -> Value {
    let mut obj = K.normalize(&raw).expect("decodes");
    K.default(&mut obj);
    K.prepare_create(&mut obj);
    obj
}

fn strings(errs: ErrorList) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn errors(raw: Value) -> Vec<String> {
    strings(K.validate(&created(raw)))
}

/// The errors of updating `old` (as created) to `raw`, through the update strategy.
fn update_errors(old: &Value, raw: Value) -> Vec<String> {
    let mut new = K.normalize(&raw).expect("decodes");
    K.default(&mut new);
    K.prepare_update(old, &mut new);
    strings(K.validate_update(old, &new))
}

fn established(mut crd: Value) -> Value {
    set_condition(&mut crd, ESTABLISHED, "True", "InitialNamesAccepted", "the initial names have been accepted", now());
    crd
}

fn now() -> Timestamp {
    "2026-01-02T03:04:05Z".parse().expect("timestamp")
}

// ---- defaults and strategy ----

#[test]
fn defaults_and_create_status() {
    let crd = created(with(
        widget(),
        "/status",
        json!({"storedVersions": ["v0"], "conditions": [
        {"type": "Established", "status": "True"}]}),
    ));
    assert_eq!(crd["spec"]["names"]["singular"], "widget");
    assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    assert_eq!(crd["status"], json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}));
    assert!(K.validate(&crd).is_empty(), "{:?}", K.validate(&crd));
    let hook = with(
        widget(),
        "/spec/conversion",
        json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "conv", "namespace": "default"}}}}),
    );
    let crd = created(hook);
    assert_eq!(crd.pointer("/spec/conversion/webhook/clientConfig/service/port"), Some(&json!(443)));
    // Set names are kept.
    let named = with(
        widget(),
        "/spec/names",
        json!({"plural": "widgets", "kind": "Widget", "singular": "wd", "listKind": "Widgets"}),
    );
    assert_eq!(created(named)["spec"]["names"]["listKind"], "Widgets");
}

#[test]
fn updates_keep_status_and_add_storage_versions() {
    let old = established(created(widget()));
    let two = with(
        widget(),
        "/spec/versions",
        json!([{"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": schema()}},
               {"name": "v2", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema()}}]),
    );
    let mut new = K.normalize(&with(two, "/status", json!({"storedVersions": ["v9"]}))).expect("decodes");
    K.default(&mut new);
    K.prepare_update(&old, &mut new);
    assert_eq!(new["status"]["storedVersions"], json!(["v1", "v2"]));
    assert!(condition_is_true(&new, ESTABLISHED));
    assert!(K.validate_update(&old, &new).is_empty(), "{:?}", K.validate_update(&old, &new));
    // Dropping v1 while it is stored is refused until /status trims it.
    let only_v2 = with(
        widget(),
        "/spec/versions/0",
        json!({"name": "v2", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema()}}),
    );
    assert_eq!(
        update_errors(&new, only_v2.clone()),
        [r#"status.storedVersions[0]: Invalid value: "v1": must appear in spec.versions"#]
    );
    let mut trimmed = K.normalize(&with(only_v2, "/status", json!({"storedVersions": ["v2"]}))).expect("decodes");
    K.default(&mut trimmed);
    K.prepare_status_update(&new, &mut trimmed);
    assert_eq!(trimmed["spec"], new["spec"], "a status write keeps the old spec");
    assert!(K.validate_part_update(Part::Status, &new, &trimmed).is_empty());
    assert_eq!(trimmed["status"]["storedVersions"], json!(["v2"]));
}

#[test]
fn status_writes_keep_new_metadata() {
    // Upstream resets the metadata against the new object itself: the cleanup controller drops
    // its finalizer through /status.
    let mut old = created(widget());
    old["metadata"]["finalizers"] = json!([CLEANUP_FINALIZER]);
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!([]);
    new["metadata"]["labels"] = json!({"a": "b"});
    new["spec"]["group"] = json!("changed.example.com");
    K.prepare_status_update(&old, &mut new);
    assert_eq!(new["metadata"]["finalizers"], json!([]));
    assert_eq!(new["metadata"]["labels"], json!({"a": "b"}));
    assert_eq!(new["spec"]["group"], "example.com");
}

#[test]
fn status_updates_check_metadata_and_accepted_names_only() {
    let old = created(widget());
    let mut new = old.clone();
    new["status"] = json!({"acceptedNames": {"plural": "Widgets", "kind": "Widget", "listKind": "Widget"},
        "storedVersions": ["v1", "gone"]});
    assert_eq!(
        strings(K.validate_part_update(Part::Status, &old, &new)),
        [
            format!(r#"status.acceptedNames.plural: Invalid value: "Widgets": {DNS1035}"#),
            r#"status.acceptedNames.listKind: Invalid value: "Widget": kind and listKind may not be the same"#.into(),
        ]
    );
}

// ---- §1 validation, create ----

#[test]
fn name_must_be_plural_dot_group() {
    let raw = with(widget(), "/metadata/name", json!("gadgets.example.com"));
    assert_eq!(
        errors(raw),
        [r#"metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group"#]
    );
    let raw = with(widget(), "/metadata/name", json!("Widgets.example.com"));
    let errs = errors(raw);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with(r#"metadata.name: Invalid value: "Widgets.example.com": a lowercase RFC 1123 subdomain"#)
    );
    assert!(errs[1].ends_with(r#"must be spec.names.plural+"."+spec.group"#));
}

#[test]
fn group_and_scope() {
    let no_group = with(with(widget(), "/spec/group", json!("")), "/metadata/name", json!("widgets."));
    let errs = errors(no_group);
    assert!(errs.contains(&"spec.group: Required value".to_string()), "{errs:?}");
    let raw = with(with(widget(), "/spec/group", json!("example")), "/metadata/name", json!("widgets.example"));
    assert_eq!(errors(raw), [r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#]);
    let raw = with(with(widget(), "/spec/group", json!("Ex.com")), "/metadata/name", json!("widgets.Ex.com"));
    let errs = errors(raw);
    assert!(
        errs.iter().any(|e| e.starts_with(r#"spec.group: Invalid value: "Ex.com": a lowercase RFC 1123 subdomain"#))
    );
    assert_eq!(errors(with(widget(), "/spec/scope", json!(""))), ["spec.scope: Required value"]);
    assert_eq!(
        errors(with(widget(), "/spec/scope", json!("Global"))),
        [r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#]
    );
}

#[test]
fn versions() {
    let no_schema = with(widget(), "/spec/versions/0/schema", Value::Null);
    assert_eq!(errors(no_schema), ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]);
    let bad_name = with(widget(), "/spec/versions/0/name", json!("V1"));
    assert_eq!(
        errors(bad_name),
        [
            format!(r#"spec.versions[0].name: Invalid value: "V1": {DNS1035}"#),
            format!(r#"spec.version: Invalid value: "V1": {DNS1035}"#),
        ]
    );
    let no_storage = with(widget(), "/spec/versions/0/storage", json!(false));
    assert_eq!(
        errors(no_storage),
        [
            "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{apiextensions.CustomResourceDefinitionVersion{Name:\"v1\", Served:true, Storage:false, Deprecated:false, DeprecationWarning:(*string)(nil), Schema:(*apiextensions.CustomResourceValidation)(nil), Subresources:(*apiextensions.CustomResourceSubresources)(nil), AdditionalPrinterColumns:[]apiextensions.CustomResourceColumnDefinition(nil), SelectableFields:[]apiextensions.SelectableField(nil)}}: must have exactly one version marked as storage version",
            "status.storedVersions: Invalid value: []string(nil): must have at least one stored version",
        ]
    );
    let v = json!({"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema()}});
    let twice = with(widget(), "/spec/versions", json!([v, v]));
    let errs = errors(twice);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{"));
    assert!(errs[0].ends_with(": must contain unique version names"));
    assert!(errs[1].ends_with(": must have exactly one version marked as storage version"));
    // Upstream matches each storage version against the stored ones, consuming them.
    assert_eq!(errs[2], r#"status.storedVersions: Invalid value: []string{"v1"}: must have the storage version v1"#);
    let empty = with(widget(), "/spec/versions", json!([]));
    assert_eq!(
        errors(empty),
        [
            "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion(nil): must have exactly one version marked as storage version",
            "status.storedVersions: Invalid value: []string(nil): must have at least one stored version",
        ]
    );
}

#[test]
fn deprecation_warnings() {
    let at = "/spec/versions/0/deprecationWarning";
    assert_eq!(
        errors(with(widget(), at, json!("old"))),
        [r#"spec.versions[0].deprecationWarning: Invalid value: "old": can only be set for deprecated versions"#]
    );
    let deprecated = with(widget(), "/spec/versions/0/deprecated", json!(true));
    assert!(errors(with(deprecated.clone(), at, json!("use v2"))).is_empty());
    assert_eq!(
        errors(with(deprecated.clone(), at, json!(""))),
        [r#"spec.versions[0].deprecationWarning: Invalid value: "": must not be an empty string"#]
    );
    let long = "x".repeat(257);
    assert_eq!(
        errors(with(deprecated.clone(), at, json!(long))),
        [format!(r#"spec.versions[0].deprecationWarning: Invalid value: "{long}": must be <= 256 characters long"#)]
    );
    assert_eq!(
        errors(with(deprecated, at, json!("a\tb"))),
        [
            r#"spec.versions[0].deprecationWarning: Invalid value: "a\tb": must only contain printable UTF-8 characters; non-printable character found at index 1"#
        ]
    );
}

#[test]
fn names() {
    let raw = with(widget(), "/spec/names", json!({"plural": "", "kind": ""}));
    let raw = with(raw, "/metadata/name", json!(".example.com"));
    let errs = errors(raw);
    let names: Vec<&String> = errs.iter().filter(|e| e.starts_with("spec.names")).collect();
    assert_eq!(
        names,
        [
            "spec.names.plural: Required value",
            "spec.names.singular: Required value",
            "spec.names.kind: Required value",
            "spec.names.listKind: Required value"
        ]
    );
    let raw = with(
        widget(),
        "/spec/names",
        json!({"plural": "widgets", "kind": "Wid_get", "listKind": "Wid_get", "singular": "Widget",
            "shortNames": ["w", "W"], "categories": ["all", "my_cat"]}),
    );
    let mixed = DNS1035;
    assert_eq!(
        errors(raw),
        [
            format!(r#"spec.names.singular: Invalid value: "Widget": {DNS1035}"#),
            format!(
                r#"spec.names.kind: Invalid value: "Wid_get": may have mixed case, but should otherwise match: {mixed}"#
            ),
            format!(
                r#"spec.names.listKind: Invalid value: "Wid_get": may have mixed case, but should otherwise match: {mixed}"#
            ),
            format!(r#"spec.names.shortNames[1]: Invalid value: "W": {DNS1035}"#),
            r#"spec.names.listKind: Invalid value: "Wid_get": kind and listKind may not be the same"#.into(),
            format!(r#"spec.names.categories[1]: Invalid value: "my_cat": {DNS1035}"#),
        ]
    );
}

#[test]
fn schema_errors_follow_the_folding() {
    let loose = json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}});
    let one = with(widget(), "/spec/versions/0/schema/openAPIV3Schema", loose.clone());
    assert_eq!(
        errors(one),
        [
            "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
        ]
    );
    let v1 = json!({"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": schema()}});
    let v2 = json!({"name": "v2", "served": true, "storage": true, "schema": {"openAPIV3Schema": loose}});
    let two = with(widget(), "/spec/versions", json!([v1, v2]));
    assert_eq!(
        errors(two),
        [
            "spec.versions[1].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
        ]
    );
    // With the status subresource the root may only be an object with a few keywords.
    let array_root = with(
        widget(),
        "/spec/versions/0/schema/openAPIV3Schema",
        json!({"type": "array", "items": {"type": "string"}}),
    );
    let array_root = with(array_root, "/spec/versions/0/subresources", json!({"status": {}}));
    let errs = errors(array_root);
    assert_eq!(
        errs[0],
        r#"spec.validation.openAPIV3Schema.type: Invalid value: "array": only "object" is allowed as the type at the root of the schema if the status subresource is enabled"#
    );
    assert!(errs.contains(
        &r#"spec.validation.openAPIV3Schema.type: Invalid value: "array": must be object at the root"#.to_string()
    ));
}

#[test]
fn defaults_need_pruning_and_no_preserve_unknown_fields() {
    let defaulted = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"replicas": {"type": "integer", "default": 1}}}}});
    let raw = with(widget(), "/spec/versions/0/schema/openAPIV3Schema", defaulted);
    assert!(errors(raw.clone()).is_empty());
    assert_eq!(
        errors(with(raw, "/spec/preserveUnknownFields", json!(true))),
        [
            "spec.preserveUnknownFields: Invalid value: true: must be false in order to use defaults in the schema",
            "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ]
    );
}

#[test]
fn printer_columns() {
    let cols = json!([{"name": "", "type": "", "jsonPath": ""},
        {"name": "Color", "type": "color", "format": "hex", "jsonPath": "spec.color"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]);
    assert_eq!(
        errors(with(widget(), "/spec/versions/0/additionalPrinterColumns", cols)),
        [
            "spec.additionalPrinterColumns[0].name: Required value",
            "spec.additionalPrinterColumns[0].type: Required value: must be one of boolean,date,integer,number,string",
            "spec.additionalPrinterColumns[0].JSONPath: Required value",
            r#"spec.additionalPrinterColumns[1].type: Invalid value: "color": must be one of boolean,date,integer,number,string"#,
            r#"spec.additionalPrinterColumns[1].format: Invalid value: "hex": must be one of byte,date,date-time,double,float,int32,int64,password"#,
            r#"spec.additionalPrinterColumns[1].JSONPath: Invalid value: "spec.color": must be a simple json path starting with ."#,
        ]
    );
}

#[test]
fn scale_subresource_paths() {
    let scale = |s: Value| with(widget(), "/spec/versions/0/subresources", json!({"scale": s}));
    assert_eq!(
        errors(scale(json!({"specReplicasPath": "", "statusReplicasPath": ""}))),
        [
            "spec.subresources.scale.specReplicasPath: Required value",
            "spec.subresources.scale.statusReplicasPath: Required value"
        ]
    );
    assert_eq!(
        errors(scale(
            json!({"specReplicasPath": ".status.r", "statusReplicasPath": ".spec.r", "labelSelectorPath": ".x"})
        )),
        [
            r#"spec.subresources.scale.specReplicasPath: Invalid value: ".status.r": should be a json path under .spec"#,
            r#"spec.subresources.scale.statusReplicasPath: Invalid value: ".spec.r": should be a json path under .status"#,
            r#"spec.subresources.scale.labelSelectorPath: Invalid value: ".x": should be a json path under either .spec or .status"#,
        ]
    );
    assert_eq!(
        errors(scale(json!({"specReplicasPath": "spec.r", "statusReplicasPath": ".status.replicas"}))),
        [
            r#"spec.subresources.scale.specReplicasPath: Invalid value: "spec.r": must be a simple json path starting with ."#
        ]
    );
}

#[test]
fn selectable_fields() {
    let sch = json!({"type": "object", "properties": {
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "color": {"type": "string", "enum": ["red"]}, "size": {"type": "integer"},
            "parts": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}});
    let raw = with(widget(), "/spec/versions/0/schema/openAPIV3Schema", sch);
    let fields = |f: Value| with(raw.clone(), "/spec/versions/0/selectableFields", f);
    let ok = fields(json!([{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.size"}, {"jsonPath": ".spec.labels.x"}]));
    assert!(errors(ok).is_empty());
    assert_eq!(
        errors(fields(json!([{"jsonPath": ""}, {"jsonPath": "spec.color"}, {"jsonPath": ".spec.nope"},
            {"jsonPath": ".metadata.name"}, {"jsonPath": ".spec.parts"}, {"jsonPath": ".spec.color"},
            {"jsonPath": ".spec.color"}, {"jsonPath": ".spec['color']"}]))),
        [
            "spec.selectableFields[0].jsonPath: Required value",
            r#"spec.selectableFields[1].jsonPath: Invalid value: "spec.color": is an invalid path: expected [ or . but got: spec"#,
            r#"spec.selectableFields[2].jsonPath: Invalid value: ".spec.nope": is an invalid path: does not refer to a valid field"#,
            r#"spec.selectableFields[3].jsonPath: Invalid value: ".metadata.name": is an invalid path: does not refer to a valid field"#,
            r#"spec.selectableFields[4].jsonPath: Invalid value: ".spec.parts": must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."#,
            r#"spec.selectableFields[6].jsonPath: Duplicate value: ".spec.color""#,
            r#"spec.selectableFields[7].jsonPath: Invalid value: ".spec['color']": is an invalid path: array notation is not allowed"#,
        ]
    );
    let meta = with(
        raw.clone(),
        "/spec/versions/0/schema/openAPIV3Schema/properties/metadata",
        json!({"type": "object", "properties": {"name": {"type": "string"}}}),
    );
    assert_eq!(
        errors(with(meta, "/spec/versions/0/selectableFields", json!([{"jsonPath": ".metadata.name"}]))),
        [r#"spec.selectableFields[0].jsonPath: Invalid value: ".metadata.name": must not point to fields in metadata"#]
    );
    // Without any schema: upstream's top-level message beside the missing schema.
    let bare = with(
        with(widget(), "/spec/versions/0/schema", Value::Null),
        "/spec/versions/0/selectableFields",
        json!([{"jsonPath": ".spec.x"}]),
    );
    assert_eq!(
        errors(bare),
        [
            "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
            r#"spec.selectableFields: Invalid value: "": selectableFields may only be set when validations.schema is included"#,
        ]
    );
    let many: Vec<Value> = (0..9).map(|i| json!({"jsonPath": format!(".spec.labels.k{i}")})).collect();
    assert_eq!(errors(fields(json!(many))), ["spec.selectableFields: Too many: 9: must have at most 8 items"]);
    // Per-version fields beside a shared schema: upstream's own message (sic).
    let v = |name: &str, storage: bool, f: Value| {
        json!({"name": name, "served": true, "storage": storage, "schema": raw["spec"]["versions"][0]["schema"].clone(),
            "selectableFields": f})
    };
    let two = with(
        raw.clone(),
        "/spec/versions",
        json!([v("v1", false, json!([{"jsonPath": ".spec.color"}])), v("v2", true, json!([]))]),
    );
    assert_eq!(
        errors(two),
        [
            r#"spec.versions[0].selectableFields: Invalid value: "": selectableFields may only be set when version.schema.openAPIV3Schema is not included"#
        ]
    );
}

#[test]
fn conversion() {
    let conv = |c: Value| with(widget(), "/spec/conversion", c);
    assert_eq!(
        errors(conv(json!({"strategy": "Webhook"}))),
        [
            "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
            "spec.conversion.conversionReviewVersions: Required value",
        ]
    );
    assert_eq!(
        errors(conv(json!({"strategy": "Magic"}))),
        [r#"spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", "Webhook""#]
    );
    assert_eq!(
        errors(conv(json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v2", "v2", "V3"],
            "clientConfig": {"url": "http://u@h/x?q=1#f", "service": {"name": "s", "namespace": "n"}}}}))),
        [
            "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required",
            r#"spec.conversion.conversionReviewVersions[1]: Invalid value: "v2": duplicate version"#,
            &format!(r#"spec.conversion.conversionReviewVersions[2]: Invalid value: "V3": {DNS1035}"#),
            r#"spec.conversion.conversionReviewVersions: Invalid value: []string{"v2", "v2", "V3"}: must include at least one of v1, v1beta1"#,
        ]
    );
    assert_eq!(
        errors(conv(json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
            "clientConfig": {"url": "http://u@h/x?q=1#f"}}}))),
        [
            r#"spec.conversion.webhookClientConfig.url: Invalid value: "http": 'https' is the only allowed URL scheme; desired format: https://host[/path]"#,
            r#"spec.conversion.webhookClientConfig.url: Invalid value: "u": user information is not permitted in the URL"#,
            r#"spec.conversion.webhookClientConfig.url: Invalid value: "f": fragments are not permitted in the URL"#,
            r#"spec.conversion.webhookClientConfig.url: Invalid value: "q=1": query parameters are not permitted in the URL"#,
        ]
    );
    assert_eq!(
        errors(conv(json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1beta1"],
            "clientConfig": {"service": {"name": "", "namespace": "", "port": 0, "path": "convert//x/"}}}}))),
        [
            "spec.conversion.webhookClientConfig.service.name: Required value: service name is required",
            "spec.conversion.webhookClientConfig.service.namespace: Required value: service namespace is required",
            "spec.conversion.webhookClientConfig.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
            r#"spec.conversion.webhookClientConfig.service.path: Invalid value: "convert//x/": must start with a '/'"#,
            r#"spec.conversion.webhookClientConfig.service.path: Invalid value: "convert//x/": segment[1] may not be empty"#,
        ]
    );
    assert_eq!(
        errors(conv(json!({"strategy": "None", "webhook": {"conversionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://h/"}}}))),
        [
            "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
            "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook",
        ]
    );
    let hook = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://h/c"}}});
    assert!(errors(conv(hook.clone())).is_empty());
    // preserveUnknownFields only with None (and itself refused in v1).
    let old = with(conv(hook), "/spec/preserveUnknownFields", json!(true));
    let errs = errors(old);
    assert_eq!(
        errs[0],
        r#"spec.conversion.strategy: Invalid value: "Webhook": must be None if spec.preserveUnknownFields is true"#
    );
}

#[test]
fn ca_bundles_are_checked_once_established() {
    let hook = |bundle: &str| {
        with(
            widget(),
            "/spec/conversion",
            json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                "clientConfig": {"url": "https://h/c", "caBundle": bundle}}}),
        )
    };
    // "bm90IGEgY2VydA==" is "not a cert".
    assert!(errors(hook("bm90IGEgY2VydA==")).is_empty(), "not checked on create");
    let old = established(created(hook("")));
    assert_eq!(
        update_errors(&old, hook("bm90IGEgY2VydA==")),
        [
            "spec.conversion.webhookClientConfig.caBundle: Invalid value: []byte{0x6e, 0x6f, 0x74, 0x20, 0x61, 0x20, 0x63, 0x65, 0x72, 0x74}: unable to load root certificates: unable to parse bytes as PEM block"
        ]
    );
    // An established definition whose bundle was already invalid may keep an invalid one.
    let bad = established(created(hook("bm90IGEgY2VydA==")));
    assert!(update_errors(&bad, hook("bm90IGEgY2VydA==")).is_empty());
    // A bundle with a certificate passes, other blocks beside it or not.
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::default().self_signed(&key).expect("cert").pem();
    let pem = format!("{}{cert}\n", key.serialize_pem());
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pem);
    assert!(update_errors(&old, hook(&encoded)).is_empty());
    let key_only = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.serialize_pem());
    let errs = update_errors(&old, hook(&key_only));
    assert!(
        errs[0].ends_with(": unable to load root certificates: no valid certificate authority data seen"),
        "{errs:?}"
    );
}

#[test]
fn stored_versions() {
    let mut crd = created(widget());
    crd["status"]["storedVersions"] = json!(["v0", "v0alpha1"]);
    assert_eq!(
        strings(K.validate(&crd)),
        [
            r#"status.storedVersions: Invalid value: []string{"v0", "v0alpha1"}: must have the storage version v1"#,
            r#"status.storedVersions[0]: Invalid value: "v0": must appear in spec.versions"#,
            r#"status.storedVersions[1]: Invalid value: "v0alpha1": must appear in spec.versions"#,
        ]
    );
}

#[test]
fn protected_groups_need_approval() {
    let k8s = with(with(widget(), "/spec/group", json!("x.k8s.io")), "/metadata/name", json!("widgets.x.k8s.io"));
    assert_eq!(
        errors(k8s.clone()),
        [
            r#"metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111"#
        ]
    );
    let note = |v: &str| with(k8s.clone(), "/metadata/annotations", json!({"api-approved.kubernetes.io": v}));
    assert!(errors(note("https://github.com/kubernetes/kubernetes/pull/1")).is_empty());
    assert!(errors(note("unapproved, experimental")).is_empty());
    assert_eq!(
        errors(note("yes")),
        [
            r#"metadata.annotations[api-approved.kubernetes.io]: Invalid value: "yes": protected groups must have approval annotation "api-approved.kubernetes.io" with either a URL or a reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111"#
        ]
    );
    // An update that leaves the state alone passes.
    let old = created(note("yes"));
    assert!(update_errors(&old, note("no")).is_empty());
}

// ---- updates ----

#[test]
fn immutable_fields() {
    let old = created(widget());
    let moved = with(with(widget(), "/spec/group", json!("other.com")), "/spec/names/plural", json!("gadgets"));
    let moved = with(with(moved, "/spec/scope", json!("Cluster")), "/spec/names/kind", json!("Gadget"));
    assert_eq!(
        update_errors(&old, moved.clone()),
        [
            r#"spec.group: Invalid value: "other.com": field is immutable"#,
            r#"spec.names.plural: Invalid value: "gadgets": field is immutable"#,
        ]
    );
    assert_eq!(
        update_errors(&established(old), moved),
        [
            r#"spec.scope: Invalid value: "Cluster": field is immutable"#,
            r#"spec.names.kind: Invalid value: "Gadget": field is immutable"#,
            r#"spec.group: Invalid value: "other.com": field is immutable"#,
            r#"spec.names.plural: Invalid value: "gadgets": field is immutable"#,
        ]
    );
}

#[test]
fn ratcheting_keeps_old_definitions_writable() {
    // A definition stored before v1's rules (preserveUnknownFields, no schema, odd types).
    let mut old = created(widget());
    old["spec"]["preserveUnknownFields"] = json!(true);
    old["spec"]["versions"][0]["schema"] = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "thing"}}}});
    let mut raw = widget();
    raw["spec"]["preserveUnknownFields"] = json!(true);
    raw["spec"]["versions"][0]["schema"] = old["spec"]["versions"][0]["schema"].clone();
    raw["spec"]["versions"][0]["storage"] = json!(true);
    assert!(update_errors(&old, raw.clone()).is_empty(), "{:?}", update_errors(&old, raw));
    // The same on create: refused.
    let errs = errors(raw);
    assert!(errs.contains(&r#"spec.validation.openAPIV3Schema.properties[spec].type: Unsupported value: "thing": supported values: "array", "boolean", "integer", "number", "object", "string""#.into()), "{errs:?}");
    // Without a schema stored, a served version needs one only once fields would be pruned.
    old["spec"]["versions"][0]["schema"] = Value::Null;
    let no_schema = with(widget(), "/spec/versions/0/schema", Value::Null);
    assert_eq!(
        update_errors(&old, no_schema.clone()),
        ["spec.versions[0].schema.openAPIV3Schema: Required value: because otherwise all fields are pruned"]
    );
    assert!(update_errors(&old, with(no_schema, "/spec/preserveUnknownFields", json!(true))).is_empty());
}

// ---- a full definition ----

#[test]
fn a_full_multi_version_definition() {
    let cel = json!({"type": "object", "properties": {
        "spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"}],
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "maxReplicas": {"type": "integer"},
                "color": {"type": "string", "enum": ["red", "green"]},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"}, "port": {"x-kubernetes-int-or-string": true}}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}}}});
    let subresources = json!({"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}});
    let columns = json!([{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]);
    let raw = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "deprecated": true,
                    "deprecationWarning": "example.com/v1beta1 Widget is deprecated",
                    "schema": {"openAPIV3Schema": schema()}},
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": cel},
                    "subresources": subresources, "additionalPrinterColumns": columns,
                    "selectableFields": [{"jsonPath": ".spec.color"}]}]}});
    let crd = created(raw);
    assert!(K.validate(&crd).is_empty(), "{:#?}", K.validate(&crd));
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert_eq!(storage_version(&crd), Some("v1"));
    assert_eq!(served_versions(&crd), ["v1beta1", "v1"]);
    assert_eq!(
        version(&crd, "v1").and_then(|v| v.pointer("/subresources/scale/specReplicasPath")),
        Some(&json!(".spec.replicas"))
    );
    assert!(version(&crd, "v2").is_none());
    // A broken CEL-free keyword in the second version is reported there.
    let mut bad = crd.clone();
    bad["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"]["uniqueItems"] =
        json!(true);
    assert_eq!(
        strings(K.validate(&bad)),
        [
            "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[color].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        ]
    );
    // x-kubernetes-validations inside a value validation is not structural.
    let mut nested = crd;
    nested["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["anyOf"] =
        json!([{"x-kubernetes-validations": [{"rule": "true"}]}]);
    assert_eq!(
        strings(K.validate(&nested)),
        [
            "spec.versions[1].schema.openAPIV3Schema.properties[spec].anyOf[0].x-kubernetes-validations: Forbidden: must be empty to be structural"
        ]
    );
}

// ---- deletion, conditions, table ----

#[test]
fn deletion_marks_terminating() {
    assert_eq!(K.deletion_finalizers(), [CLEANUP_FINALIZER]);
    assert_eq!(CLEANUP_FINALIZER, "customresourcecleanup.apiextensions.k8s.io");
    let mut crd = established(created(widget()));
    K.mark_terminating(&mut crd);
    let t = condition(&crd, TERMINATING).expect("terminating");
    assert_eq!(t["status"], "True");
    assert_eq!(t["reason"], "InstanceDeletionPending");
    assert_eq!(t["message"], "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon");
    let types: Vec<&Value> = crd["status"]["conditions"].as_array().expect("list").iter().map(|c| &c["type"]).collect();
    assert_eq!(types, [ESTABLISHED, TERMINATING]);
    assert!(K.validate(&crd).is_empty(), "conditions are not validated");
}

#[test]
fn conditions_change_transition_time_only_on_flips() {
    let later: Timestamp = "2026-01-02T04:00:00Z".parse().expect("timestamp");
    let mut crd = created(widget());
    assert!(condition(&crd, NAMES_ACCEPTED).is_none());
    set_condition(&mut crd, NAMES_ACCEPTED, "True", "NoConflicts", "no conflicts found", now());
    set_condition(&mut crd, ESTABLISHED, "False", "Installing", "the initial names have been accepted", now());
    set_condition(&mut crd, ESTABLISHED, "False", "Installing", "still", later);
    assert_eq!(condition(&crd, ESTABLISHED).map(|c| &c["lastTransitionTime"]), Some(&json!("2026-01-02T03:04:05Z")));
    assert_eq!(condition(&crd, ESTABLISHED).map(|c| &c["message"]), Some(&json!("still")));
    assert!(!condition_is_true(&crd, ESTABLISHED));
    set_condition(&mut crd, ESTABLISHED, "True", "InitialNamesAccepted", "the initial names have been accepted", later);
    assert!(condition_is_true(&crd, ESTABLISHED));
    assert_eq!(
        crd["status"]["conditions"],
        json!([
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": "2026-01-02T03:04:05Z", "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": "2026-01-02T04:00:00Z", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ])
    );
    // It survives the typed round trip.
    assert_eq!(K.normalize(&crd).expect("decodes")["status"]["conditions"], crd["status"]["conditions"]);
}

#[test]
fn table_and_field_selectors() {
    let mut crd = created(widget());
    crd["metadata"]["creationTimestamp"] = json!("2026-01-02T03:04:05Z");
    assert_eq!(K.cells(&crd, now()), [json!("widgets.example.com"), json!("2026-01-02T03:04:05Z")]);
    let names: Vec<&str> = K.columns().iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "Created At"]);
    assert_eq!(K.field_value(&crd, "metadata.namespace").as_deref(), Some(""));
    assert_eq!(K.field_value(&crd, "spec.group"), None);
}
