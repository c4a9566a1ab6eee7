//! Definitions generated from k8s-openapi's typed structs (its `schemars` feature): upstream's
//! names (`io.k8s.api.core.v1.Pod`), types and descriptions, nothing written here by hand.

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, ObjectMeta, Patch, Status};
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use k8s_openapi::schemars::transform::RemoveRefSiblings;
use serde_json::{Map, Value, json};
use skiff_core::kinds::{Kind, TypedSchema};

/// The two dialects differ in where definitions live and in how a field that refers to a
/// definition carries its own description: v2 writes it beside `$ref` (what kubectl's v2 parser
/// expects), v3 wraps the reference in `allOf` as upstream's v3 documents do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    V2,
    V3,
}

impl Flavor {
    pub fn ref_to(self, name: &str) -> Value {
        let prefix = match self {
            Flavor::V2 => "#/definitions/",
            Flavor::V3 => "#/components/schemas/",
        };
        json!({ "$ref": format!("{prefix}{name}") })
    }

    fn settings(self) -> SchemaSettings {
        match self {
            Flavor::V2 => SchemaSettings::draft07().with(|s| {
                s.definitions_path = "/definitions".into();
                s.meta_schema = None;
                s.transforms = Vec::new();
            }),
            Flavor::V3 => SchemaSettings::draft07().with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
                s.transforms = vec![Box::new(RemoveRefSiblings::default())];
            }),
        }
    }
}

/// A served resource as the documents present it: its definitions and what its operations
/// depend on.
#[derive(Clone, Debug)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// What may be done to it: an operation needing another verb is left out.
    pub verbs: &'static [&'static str],
    /// Definition names of the kind and of its list.
    pub name: String,
    pub list_name: String,
    /// `{"group", "kind", "version"}`, as operations carry it.
    pub gvk: Value,
    /// `/status` is served.
    pub status: bool,
    /// `/scale` is served, returning this definition (`io.k8s.api.autoscaling.v1.Scale`).
    pub scale: Option<String>,
    /// PATCH lists the patch types it takes, with this body (`io.k8s.apimachinery.pkg.apis.meta.v1.Patch`).
    pub patch_body: Option<String>,
}

impl Resource {
    /// Where its group version is served: `/api/v1`, `/apis/GROUP/VERSION`.
    pub fn root(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

/// Names of the meta types operations refer to (request bodies, the delete response).
pub struct MetaNames {
    pub delete_options: String,
    pub status: String,
}

pub struct Generated {
    pub definitions: Map<String, Value>,
    pub served: Vec<Resource>,
    pub meta: MetaNames,
}

/// Types whose upstream schema is a description alone (their Go types declare no OpenAPI type:
/// any JSON, a schema or a bool, ...); k8s-openapi's `oneOf` here is what gnostic's v2 `Schema`
/// cannot carry.
const UNTYPED: [&str; 4] = [
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// The definitions of `kinds` (and what they refer to), with the `<Kind>List` of each.
pub fn generate(flavor: Flavor, kinds: &[&'static dyn Kind]) -> Generated {
    let mut g = flavor.settings().into_generator();
    let typed: Vec<_> = kinds.iter().map(|k| (*k, k.schema(&mut g))).collect();
    g.subschema_for::<ListMeta>();
    let meta = MetaNames { delete_options: name_of::<DeleteOptions>(&mut g), status: name_of::<Status>(&mut g) };
    let mut definitions = g.take_definitions(true);
    for name in UNTYPED {
        if let Some(Value::Object(def)) = definitions.get_mut(name) {
            def.retain(|k, _| k == "description");
        }
    }
    let mut served = Vec::new();
    for (kind, t) in typed {
        let info = kind.info();
        let gvk = json!({"group": t.group, "kind": t.kind, "version": t.version});
        if let Some(Value::Object(def)) = definitions.get_mut(&t.name) {
            def.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
        }
        let list_name = format!("{}List", t.name);
        let list = list_definition(flavor, kind, &t, definitions.get(&t.name));
        definitions.insert(list_name.clone(), list);
        served.push(Resource {
            group: info.group.into(),
            version: info.version.into(),
            kind: info.kind.into(),
            plural: info.plural.into(),
            namespaced: info.namespaced,
            verbs: info.verbs,
            name: t.name,
            list_name,
            gvk,
            status: false,
            scale: None,
            patch_body: None,
        });
    }
    Generated { definitions, served, meta }
}

/// What custom resources' definitions and operations refer to, generated as the built-in
/// documents' are so that both name and describe them alike.
pub struct CustomMeta {
    /// `ObjectMeta`, `ListMeta`, `Status`, `DeleteOptions`, `Patch` and what they refer to.
    pub definitions: Map<String, Value>,
    /// `io.k8s.api.autoscaling.v1.Scale` and what it refers to beyond `definitions`.
    pub scale_definitions: Map<String, Value>,
    pub names: MetaNames,
    pub object_meta: String,
    pub list_meta: String,
    pub patch: String,
    pub scale: String,
}

pub fn custom_meta(flavor: Flavor) -> CustomMeta {
    let mut g = flavor.settings().into_generator();
    let object_meta = name_of::<ObjectMeta>(&mut g);
    let list_meta = name_of::<ListMeta>(&mut g);
    let names = MetaNames { delete_options: name_of::<DeleteOptions>(&mut g), status: name_of::<Status>(&mut g) };
    let patch = name_of::<Patch>(&mut g);
    let definitions = g.take_definitions(true);
    let mut g = flavor.settings().into_generator();
    let scale = name_of::<Scale>(&mut g);
    let mut scale_definitions = g.take_definitions(true);
    scale_definitions.retain(|name, _| !definitions.contains_key(name));
    if let Some(Value::Object(def)) = scale_definitions.get_mut(&scale) {
        def.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": "autoscaling", "kind": "Scale", "version": "v1"}]),
        );
    }
    CustomMeta { definitions, scale_definitions, names, object_meta, list_meta, patch, scale }
}

fn name_of<T: JsonSchema>(g: &mut SchemaGenerator) -> String {
    g.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// `<Kind>List`: k8s-openapi has one generic `List<T>` without a schema, so the list is built
/// from the item's definition (its `apiVersion` and `kind` fields) and `ListMeta`.
fn list_definition(flavor: Flavor, kind: &dyn Kind, t: &TypedSchema, item: Option<&Value>) -> Value {
    let info = kind.info();
    let field =
        |f: &str| item.and_then(|d| d["properties"].get(f)).cloned().unwrap_or_else(|| json!({"type": "string"}));
    let list_meta = with_description(
        flavor,
        flavor.ref_to(&ListMeta::schema_name()),
        "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
    );
    json!({
        "description": format!("{}List is a list of {}.", info.kind, info.plural),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": field("apiVersion"),
            "items": {"description": format!("List of {}.", info.plural), "type": "array", "items": flavor.ref_to(&t.name)},
            "kind": field("kind"),
            "metadata": list_meta,
        },
        "x-kubernetes-group-version-kind": [{"group": t.group, "kind": format!("{}List", info.kind), "version": t.version}],
    })
}

/// A reference with a description of its own, in the flavor's shape.
pub fn with_description(flavor: Flavor, reference: Value, description: &str) -> Value {
    match flavor {
        Flavor::V2 => {
            let mut r = reference;
            r["description"] = description.into();
            r
        }
        Flavor::V3 => json!({"allOf": [reference], "description": description}),
    }
}
