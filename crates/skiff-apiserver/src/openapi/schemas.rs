//! Definitions generated from k8s-openapi's typed structs (its `schemars` feature): upstream's
//! names (`io.k8s.api.core.v1.Pod`), types and descriptions, nothing written here by hand.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Status};
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

/// A served kind as the documents present it.
pub struct Served {
    pub kind: &'static dyn Kind,
    /// Definition names of the kind and of its list.
    pub name: String,
    pub list_name: String,
    /// `{"group", "kind", "version"}`, as operations carry it.
    pub gvk: Value,
}

/// Names of the meta types operations refer to (request bodies, the delete response).
pub struct MetaNames {
    pub delete_options: String,
    pub status: String,
}

pub struct Generated {
    pub definitions: Map<String, Value>,
    pub served: Vec<Served>,
    pub meta: MetaNames,
}

/// The definitions of `kinds` (and what they refer to), with the `<Kind>List` of each.
pub fn generate(flavor: Flavor, kinds: &[&'static dyn Kind]) -> Generated {
    let mut g = flavor.settings().into_generator();
    let typed: Vec<_> = kinds.iter().map(|k| (*k, k.schema(&mut g))).collect();
    g.subschema_for::<ListMeta>();
    let meta = MetaNames { delete_options: name_of::<DeleteOptions>(&mut g), status: name_of::<Status>(&mut g) };
    let mut definitions = g.take_definitions(true);
    let mut served = Vec::new();
    for (kind, t) in typed {
        let gvk = json!({"group": t.group, "kind": t.kind, "version": t.version});
        if let Some(Value::Object(def)) = definitions.get_mut(&t.name) {
            def.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
        }
        let list_name = format!("{}List", t.name);
        let list = list_definition(flavor, kind, &t, definitions.get(&t.name));
        definitions.insert(list_name.clone(), list);
        served.push(Served { kind, name: t.name, list_name, gvk });
    }
    Generated { definitions, served, meta }
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
fn with_description(flavor: Flavor, reference: Value, description: &str) -> Value {
    match flavor {
        Flavor::V2 => {
            let mut r = reference;
            r["description"] = description.into();
            r
        }
        Flavor::V3 => json!({"allOf": [reference], "description": description}),
    }
}
