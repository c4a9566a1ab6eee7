//! Definitions generated from k8s-openapi's typed structs (its `schemars` feature): upstream's
//! names (`io.k8s.api.core.v1.Pod`), types and descriptions, nothing written here by hand.

use k8s_openapi::Resource;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Status};
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use k8s_openapi::schemars::transform::RemoveRefSiblings;
use serde_json::{Map, Value, json};
use skiff_core::kinds::{self, Kind};

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

/// What the generator learnt about one served kind's type.
struct Typed {
    name: String,
    group: &'static str,
    version: &'static str,
}

fn typed<T: Resource + JsonSchema>(g: &mut SchemaGenerator) -> Typed {
    g.subschema_for::<T>();
    Typed { name: T::schema_name().into_owned(), group: T::GROUP, version: T::VERSION }
}

/// Adds a type's definitions to a generator.
type Define = fn(&mut SchemaGenerator) -> Typed;

/// The k8s-openapi type behind each kind of `kinds::all()`: the one place a new kind is added.
const TYPES: &[(&str, Define)] = &[
    (Namespace::KIND, typed::<Namespace>),
    (Node::KIND, typed::<Node>),
    (Pod::KIND, typed::<Pod>),
    (Event::KIND, typed::<Event>),
    (Secret::KIND, typed::<Secret>),
    (Service::KIND, typed::<Service>),
];

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

/// Kinds of `kinds::all()` with no row in [`TYPES`] (a unit test keeps this empty).
#[cfg(test)]
pub fn untyped_kinds() -> Vec<&'static str> {
    kinds::all().iter().map(|k| k.info().kind).filter(|kind| !TYPES.iter().any(|(t, _)| t == kind)).collect()
}

pub fn generate(flavor: Flavor) -> Generated {
    let mut g = flavor.settings().into_generator();
    let mut typed_kinds = Vec::new();
    for k in kinds::all().iter().copied() {
        // A kind without a type is left out rather than described wrongly.
        match TYPES.iter().find(|(kind, _)| *kind == k.info().kind) {
            Some((_, define)) => typed_kinds.push((k, define(&mut g))),
            None => tracing::warn!(kind = k.info().kind, "no typed schema: kind left out of OpenAPI"),
        }
    }
    g.subschema_for::<ListMeta>();
    let meta = MetaNames { delete_options: name_of::<DeleteOptions>(&mut g), status: name_of::<Status>(&mut g) };
    let mut definitions = g.take_definitions(true);
    let mut served = Vec::new();
    for (kind, t) in typed_kinds {
        let gvk = json!({"group": t.group, "kind": kind.info().kind, "version": t.version});
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
fn list_definition(flavor: Flavor, kind: &dyn Kind, t: &Typed, item: Option<&Value>) -> Value {
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
