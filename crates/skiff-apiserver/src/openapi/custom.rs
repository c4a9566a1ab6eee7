//! Custom resources in the OpenAPI documents, as kube-apiserver 1.32 publishes them
//! (apiextensions-apiserver `pkg/controller/openapi/builder`): each served version of an
//! established CustomResourceDefinition becomes a definition named after its reversed group
//! (`com.example.v1.Widget`: the version's schema with `apiVersion`, `kind`, `metadata` and its
//! group version kind added), a `WidgetList`, and the operations on its paths. v3 has one document
//! per group version over all of its CRDs; v2 adds the same to the built-in document, as far as
//! v2 can say it (upstream's `ToStructuralOpenAPIV2`, defaults pruned).
//!
//! A schema is read as upstream's structural schema keeps it: known keywords of the right JSON
//! type, others dropped (`example`, `externalDocs`, ...), so that whatever a stored CRD holds, the
//! documents stay well typed and the gnostic encoder accepts them.

use super::paths;
use super::schemas::{self, CustomMeta, Flavor, Resource, with_description};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// One served version of an established CRD, as the documents use it.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomVersion {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// `schema.openAPIV3Schema`, if any.
    pub schema: Option<Value>,
    /// `spec.preserveUnknownFields` (only CRDs from v1beta1 days may have it).
    pub preserve_unknown_fields: bool,
    pub status: bool,
    pub scale: bool,
    /// `selectableFields[].jsonPath`.
    pub selectable_fields: Vec<String>,
}

impl CustomVersion {
    /// Its document's path under `/openapi/v3/`.
    pub fn v3_path(&self) -> String {
        format!("apis/{}/{}", self.group, self.version)
    }

    /// Definition name of the kind: `com.example.v1.Widget` (upstream's `ToRESTFriendlyName`).
    pub fn definition_name(&self) -> String {
        model_name(&self.group, &self.version, &self.kind)
    }

    fn list_definition_name(&self) -> String {
        model_name(&self.group, &self.version, &self.list_kind)
    }

    fn gvk(&self, kind: &str) -> Value {
        json!({"group": self.group, "kind": kind, "version": self.version})
    }
}

fn model_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.rsplit('.').collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The versions to publish: every served version of the CRDs whose `Established` condition is
/// true and that are not being deleted, ordered by group, version and kind.
pub fn served_versions(crds: &[Value]) -> Vec<CustomVersion> {
    let mut out: Vec<CustomVersion> = crds.iter().filter(|c| established(c)).flat_map(versions_of).collect();
    out.sort_by(|a, b| (&a.group, &a.version, &a.kind).cmp(&(&b.group, &b.version, &b.kind)));
    out
}

fn established(crd: &Value) -> bool {
    let conditions = crd["status"]["conditions"].as_array();
    crd["metadata"]["deletionTimestamp"].is_null()
        && conditions.is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
}

fn non_empty(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

fn versions_of(crd: &Value) -> Vec<CustomVersion> {
    let spec = &crd["spec"];
    // Served under the accepted names; spec.names before the naming controller has run.
    let name = |field: &str| {
        non_empty(&crd["status"]["acceptedNames"][field]).or(non_empty(&spec["names"][field])).map(str::to_string)
    };
    let (Some(group), Some(kind), Some(plural)) = (non_empty(&spec["group"]), name("kind"), name("plural")) else {
        return Vec::new();
    };
    let list_kind = name("listKind").unwrap_or_else(|| format!("{kind}List"));
    let Some(versions) = spec["versions"].as_array() else { return Vec::new() };
    versions
        .iter()
        .filter(|v| v["served"] == true)
        .filter_map(|v| {
            // Per version, else as v1beta1 said it for all (`spec.validation`, `spec.subresources`).
            let schema = [&v["schema"]["openAPIV3Schema"], &spec["validation"]["openAPIV3Schema"]]
                .into_iter()
                .find(|s| s.is_object())
                .cloned();
            let subresources = if v["subresources"].is_object() { &v["subresources"] } else { &spec["subresources"] };
            let selectable_fields = v["selectableFields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| non_empty(&f["jsonPath"]).map(str::to_string))
                .collect();
            Some(CustomVersion {
                group: group.to_string(),
                version: non_empty(&v["name"])?.to_string(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                plural: plural.clone(),
                namespaced: spec["scope"] != "Cluster",
                schema,
                preserve_unknown_fields: spec["preserveUnknownFields"] == true,
                status: subresources["status"].is_object(),
                scale: subresources["scale"].is_object(),
                selectable_fields,
            })
        })
        .collect()
}

const GVK: &str = "x-kubernetes-group-version-kind";
const PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";
const EMBEDDED: &str = "x-kubernetes-embedded-resource";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const EMBEDDED_API_VERSION_DOC: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND_DOC: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// What a custom resource allows (discovery's verbs).
const VERBS: [&str; 8] = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"];

static META_V2: LazyLock<CustomMeta> = LazyLock::new(|| schemas::custom_meta(Flavor::V2));
static META_V3: LazyLock<CustomMeta> = LazyLock::new(|| schemas::custom_meta(Flavor::V3));

fn meta(flavor: Flavor) -> &'static CustomMeta {
    match flavor {
        Flavor::V2 => &META_V2,
        Flavor::V3 => &META_V3,
    }
}

/// How a keyword's value is kept: anything else is dropped, as are Go's zero values, which
/// upstream's documents omit.
#[derive(Clone, Copy)]
enum Kw {
    /// A non-empty string.
    Str,
    Number,
    Integer,
    /// `true` (false is the default).
    True,
    /// A non-empty array of strings (other elements dropped).
    Strs,
    /// A non-empty array of any values.
    Values,
    /// Any value but null.
    Any,
    Schema,
    Schemas,
    Properties,
    SchemaOrBool,
}

/// The keywords of upstream's structural schema (`pkg/apiserver/schema/structural.go`), which is
/// what its documents are made from.
const KEYWORDS: [(&str, Kw); 35] = [
    ("description", Kw::Str),
    ("type", Kw::Str),
    ("title", Kw::Str),
    ("default", Kw::Any),
    ("nullable", Kw::True),
    ("format", Kw::Str),
    ("maximum", Kw::Number),
    ("exclusiveMaximum", Kw::True),
    ("minimum", Kw::Number),
    ("exclusiveMinimum", Kw::True),
    ("maxLength", Kw::Integer),
    ("minLength", Kw::Integer),
    ("pattern", Kw::Str),
    ("maxItems", Kw::Integer),
    ("minItems", Kw::Integer),
    ("uniqueItems", Kw::True),
    ("multipleOf", Kw::Number),
    ("enum", Kw::Values),
    ("maxProperties", Kw::Integer),
    ("minProperties", Kw::Integer),
    ("required", Kw::Strs),
    ("allOf", Kw::Schemas),
    ("anyOf", Kw::Schemas),
    ("oneOf", Kw::Schemas),
    ("not", Kw::Schema),
    ("items", Kw::Schema),
    ("properties", Kw::Properties),
    ("additionalProperties", Kw::SchemaOrBool),
    (PRESERVE, Kw::True),
    (EMBEDDED, Kw::True),
    (INT_OR_STRING, Kw::True),
    ("x-kubernetes-list-map-keys", Kw::Strs),
    ("x-kubernetes-list-type", Kw::Str),
    ("x-kubernetes-map-type", Kw::Str),
    ("x-kubernetes-validations", Kw::Values),
];

/// Deeper schemas are cut off: every later pass recurses, and so does the encoder.
const MAX_DEPTH: usize = 100;

type Schema = Map<String, Value>;

/// `v` as a structural schema keeps it; `None` if it is no object.
fn structural(v: &Value, depth: usize) -> Option<Schema> {
    let obj = v.as_object()?;
    let nested = |v: &Value| if depth < MAX_DEPTH { structural(v, depth + 1) } else { None };
    let mut out = Map::new();
    for (key, value) in obj {
        let Some((_, kw)) = KEYWORDS.iter().find(|(k, _)| k == key) else { continue };
        let kept = match kw {
            Kw::Str => non_empty(value).map(Value::from),
            Kw::Number => value.is_number().then(|| value.clone()),
            Kw::Integer => value.as_i64().map(Value::from),
            Kw::True => (value == &Value::Bool(true)).then_some(Value::Bool(true)),
            Kw::Strs => {
                let strs: Vec<Value> =
                    value.as_array().into_iter().flatten().filter(|s| s.is_string()).cloned().collect();
                (!strs.is_empty()).then_some(Value::Array(strs))
            }
            Kw::Values => value.as_array().filter(|a| !a.is_empty()).map(|a| Value::Array(a.clone())),
            Kw::Any => (!value.is_null()).then(|| value.clone()),
            Kw::Schema => nested(value).map(Value::Object),
            Kw::Schemas => {
                let all: Vec<Value> =
                    value.as_array().into_iter().flatten().filter_map(nested).map(Value::Object).collect();
                (!all.is_empty()).then_some(Value::Array(all))
            }
            Kw::Properties => {
                let props: Schema = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, p)| Some((k.clone(), Value::Object(nested(p)?))))
                    .collect();
                (!props.is_empty()).then_some(Value::Object(props))
            }
            Kw::SchemaOrBool => match value {
                Value::Bool(_) => Some(value.clone()),
                other => nested(other).map(Value::Object),
            },
        };
        if let Some(kept) = kept {
            out.insert(key.clone(), kept);
        }
    }
    Some(out)
}

fn is_true(s: &Schema, key: &str) -> bool {
    s.get(key) == Some(&Value::Bool(true))
}

/// `f` on each structural child: properties, items, additionalProperties (not what `allOf` and
/// the like hold: upstream's visitors do not go there either).
fn for_children(s: &mut Schema, f: &mut impl FnMut(&mut Schema)) {
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        for p in props.values_mut() {
            if let Value::Object(p) = p {
                f(p);
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(Value::Object(child)) = s.get_mut(key) {
            f(child);
        }
    }
}

fn int_or_string_any_of() -> Value {
    json!([{"type": "integer"}, {"type": "string"}])
}

/// Upstream's `Unfold`: an int-or-string value says so in `anyOf` too (in `allOf` if it has an
/// `anyOf` of its own), unless it already does.
fn unfold(s: &mut Schema) {
    if is_true(s, INT_OR_STRING) {
        let pattern = int_or_string_any_of();
        let said = s.get("anyOf") == Some(&pattern)
            || s.get("allOf").and_then(|a| a.get(0)).and_then(|first| first.get("anyOf")) == Some(&pattern);
        if !said {
            if s.contains_key("anyOf") {
                let mut all_of = vec![json!({"anyOf": pattern})];
                all_of.extend(s.get("allOf").and_then(Value::as_array).into_iter().flatten().cloned());
                s.insert("allOf".into(), Value::Array(all_of));
            } else {
                s.insert("anyOf".into(), pattern);
            }
        }
    }
    for_children(s, &mut unfold);
}

/// Upstream's `ToStructuralOpenAPIV2`, top down (a parent reads its children's `nullable`
/// before they lose it): no junctors; a nullable value is untyped (kubectl's v2 validation has
/// no null) and no longer required; a value keeping unknown fields lists none (kubectl would
/// reject the others); an array without items is untyped (kubectl cannot read it).
fn to_v2(s: &mut Schema) {
    for junctor in ["allOf", "oneOf", "anyOf", "not"] {
        s.shift_remove(junctor);
    }
    if s.shift_remove("nullable").is_some() {
        for key in ["type", "items", "properties"] {
            s.shift_remove(key);
        }
    }
    if is_true(s, PRESERVE) {
        s.shift_remove("items");
        s.shift_remove("properties");
    }
    if !s.contains_key("items") && s.get("type").and_then(Value::as_str) == Some("array") {
        s.shift_remove("type");
    }
    let nullable = |p: &Value| p.get("nullable") == Some(&Value::Bool(true));
    let nullable_props: Vec<String> = match s.get("properties") {
        Some(Value::Object(props)) => props.iter().filter(|(_, p)| nullable(p)).map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    };
    if s.get("additionalProperties").is_some_and(nullable) {
        s.shift_remove("required");
    } else if !nullable_props.is_empty()
        && let Some(Value::Array(required)) = s.get_mut("required")
    {
        required.retain(|r| !r.as_str().is_some_and(|r| nullable_props.iter().any(|p| p == r)));
        if required.is_empty() {
            s.shift_remove("required");
        }
    }
    for_children(s, &mut to_v2);
}

/// kube-openapi's `PruneDefaults`, which upstream applies to CRDs' v2 definitions.
fn prune_defaults(s: &mut Schema) {
    s.shift_remove("default");
    for_children(s, &mut prune_defaults);
}

fn api_version_property(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

/// Upstream's `addEmbeddedProperties`: an embedded resource gets the fields every object has
/// (not in v2 when it keeps unknown fields: kubectl would then reject those).
fn add_embedded(flavor: Flavor, s: &mut Schema) {
    for_children(s, &mut |c| add_embedded(flavor, c));
    if (flavor == Flavor::V2 && is_true(s, PRESERVE)) || !is_true(s, EMBEDDED) {
        return;
    }
    let props = s.entry("properties").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = props {
        props.insert("apiVersion".into(), api_version_property(EMBEDDED_API_VERSION_DOC));
        props.insert("kind".into(), api_version_property(EMBEDDED_KIND_DOC));
        props.insert("metadata".into(), metadata_property(flavor));
    }
    let required = s.entry("required").or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(required) = required {
        for field in ["kind", "apiVersion"] {
            if !required.iter().any(|r| r == field) {
                required.push(field.into());
            }
        }
    }
}

fn metadata_property(flavor: Flavor) -> Value {
    with_description(flavor, flavor.ref_to(&meta(flavor).object_meta), METADATA_DOC)
}

/// `x-kubernetes-selectable-fields`, on the kind and its list: the paths without their dot.
fn add_selectable_fields(v: &CustomVersion, def: &mut Schema) {
    if !v.selectable_fields.is_empty() {
        let fields: Vec<Value> =
            v.selectable_fields.iter().map(|f| json!({"fieldPath": f.strip_prefix('.').unwrap_or(f)})).collect();
        def.insert("x-kubernetes-selectable-fields".into(), fields.into());
    }
}

/// The kind's definition. Without a schema, or in v2 when it keeps unknown fields, just an
/// object: kubectl's v2 validation would take listed properties for all there may be.
fn kind_definition(flavor: Flavor, v: &CustomVersion) -> Value {
    let schema = v.schema.as_ref().and_then(|s| structural(s, 0));
    let plain = |s: &Schema| flavor == Flavor::V2 && (v.preserve_unknown_fields || is_true(s, PRESERVE));
    let mut def = match schema {
        Some(mut s) if !plain(&s) => {
            unfold(&mut s);
            if flavor == Flavor::V2 {
                to_v2(&mut s);
            }
            let mut props = Map::new();
            props.insert("apiVersion".into(), api_version_property(API_VERSION_DOC));
            props.insert("kind".into(), api_version_property(KIND_DOC));
            props.insert("metadata".into(), metadata_property(flavor));
            if let Some(Value::Object(own)) = s.shift_remove("properties") {
                for (k, p) in own {
                    props.entry(k).or_insert(p);
                }
            }
            s.insert("properties".into(), Value::Object(props));
            add_embedded(flavor, &mut s);
            if flavor == Flavor::V2 {
                prune_defaults(&mut s);
            }
            s
        }
        _ => [("type".to_string(), Value::from("object"))].into_iter().collect(),
    };
    def.insert(GVK.into(), json!([v.gvk(&v.kind)]));
    add_selectable_fields(v, &mut def);
    Value::Object(def)
}

fn list_definition(flavor: Flavor, v: &CustomVersion) -> Value {
    let items_doc = format!(
        "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
        v.plural
    );
    let list_meta = with_description(flavor, flavor.ref_to(&meta(flavor).list_meta), LIST_METADATA_DOC);
    let mut def = json!({
        "description": format!("{} is a list of {}", v.list_kind, v.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": api_version_property(API_VERSION_DOC),
            "items": {"description": items_doc, "type": "array", "items": flavor.ref_to(&v.definition_name())},
            "kind": api_version_property(KIND_DOC),
            "metadata": list_meta,
        },
        GVK: [v.gvk(&v.list_kind)],
    });
    if let Value::Object(def) = &mut def {
        add_selectable_fields(v, def);
    }
    def
}

fn resource(flavor: Flavor, v: &CustomVersion) -> Resource {
    let m = meta(flavor);
    Resource {
        group: v.group.clone(),
        version: v.version.clone(),
        kind: v.kind.clone(),
        plural: v.plural.clone(),
        namespaced: v.namespaced,
        verbs: &VERBS,
        name: v.definition_name(),
        list_name: v.list_definition_name(),
        gvk: v.gvk(&v.kind),
        status: v.status,
        scale: v.scale.then(|| m.scale.clone()),
        patch_body: Some(m.patch.clone()),
    }
}

/// The definitions and paths of one version, in `flavor`.
#[derive(Debug, Default)]
pub struct Part {
    pub definitions: Map<String, Value>,
    pub paths: Map<String, Value>,
}

pub fn part(flavor: Flavor, v: &CustomVersion) -> Part {
    let mut definitions = Map::new();
    definitions.insert(v.definition_name(), kind_definition(flavor, v));
    definitions.insert(v.list_definition_name(), list_definition(flavor, v));
    let mut paths = Map::new();
    paths::add_resource(flavor, &resource(flavor, v), &meta(flavor).names, &mut paths);
    Part { definitions, paths }
}

/// The meta definitions the parts refer to; with `Scale` if one serves `/scale`.
pub fn meta_definitions(flavor: Flavor, scale: bool) -> Map<String, Value> {
    let m = meta(flavor);
    let mut definitions = m.definitions.clone();
    if scale {
        definitions.extend(m.scale_definitions.clone());
    }
    definitions
}

/// The v3 document of one group version, over its CRDs' versions (in order; a definition or a
/// path taken by an earlier one is not replaced).
pub fn v3_document(versions: &[&CustomVersion]) -> Value {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for v in versions {
        let part = part(Flavor::V3, v);
        if part.definitions.keys().any(|k| schemas.contains_key(k)) || part.paths.keys().any(|k| paths.contains_key(k))
        {
            tracing::warn!(group = %v.group, version = %v.version, kind = %v.kind, "OpenAPI v3: names taken, not published");
            continue;
        }
        schemas.extend(part.definitions);
        paths.extend(part.paths);
    }
    for (name, def) in meta_definitions(Flavor::V3, versions.iter().any(|v| v.scale)) {
        schemas.entry(name).or_insert(def);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}
