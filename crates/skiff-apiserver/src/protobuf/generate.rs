//! Generates `table.rs`, and fails when the checked-in table is stale:
//! `SKIFF_REGENERATE_PROTOBUF=1 cargo test -p skiff-apiserver protobuf::generate` rewrites it.
//!
//! Inputs: k8s-pb's sources (prost attributes: field numbers, protobuf types, message types;
//! found through `cargo metadata`, or `K8S_PB_SRC`) and the served OpenAPI v2 document (JSON
//! property names, `required`, and which kinds are served), so a kind added to the API server
//! reaches the table with no code here.
//!
//! A message whose schema is not an object (no properties, no `type: object`: apiextensions'
//! `JSONSchemaPropsOrBool`, or `ExtraValue`, a `[]string`) is a one-of: its JSON is the value of
//! whichever of its fields is set, so all its fields are kept under their prost names.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use syn::punctuated::Punctuated;
use syn::{Item, Meta, Token};

const TABLE: &str = "src/protobuf/table.rs";

/// The apimachinery messages with a JSON form of their own, by k8s-pb path.
const SPECIAL: &[(&str, &str)] = &[
    ("apimachinery::pkg::apis::meta::v1::Time", "Time"),
    ("apimachinery::pkg::apis::meta::v1::MicroTime", "MicroTime"),
    ("apimachinery::pkg::apis::meta::v1::Duration", "Duration"),
    ("apimachinery::pkg::apis::meta::v1::FieldsV1", "RawJson"),
    ("apimachinery::pkg::runtime::RawExtension", "RawJson"),
    ("apiextensions_apiserver::pkg::apis::apiextensions::v1::Json", "RawJson"),
    ("apimachinery::pkg::util::intstr::IntOrString", "IntOrString"),
    ("apimachinery::pkg::api::resource::Quantity", "Quantity"),
];

/// One field as prost declares it.
#[derive(Debug)]
struct PbField {
    name: String,
    tag: u32,
    /// The protobuf type (`string`, `int32`, `message`...); for maps, the value type.
    ty: String,
    repeated: bool,
    map: bool,
    /// For messages: the k8s-pb path of the type (`api::core::v1::PodSpec`).
    message: Option<String>,
}

/// A prost message: its k8s-pb path and fields.
type PbMessages = HashMap<String, Vec<PbField>>;

fn k8s_pb_src() -> PathBuf {
    if let Ok(dir) = std::env::var("K8S_PB_SRC") {
        return dir.into();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let pkg = meta["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "k8s-pb"))
        .expect("k8s-pb in cargo metadata");
    let manifest = PathBuf::from(pkg["manifest_path"].as_str().expect("manifest_path"));
    manifest.parent().expect("k8s-pb dir").join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read k8s-pb src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file: `api/core/v1/mod.rs` → `["api", "core", "v1"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src").with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn read_k8s_pb() -> PbMessages {
    let src = k8s_pb_src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = PbMessages::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let file = syn::parse_file(&text).expect("parse k8s-pb source");
        items(&module_of(&src, &f), &file.items, &mut out);
    }
    out
}

fn items(module: &[String], items: &[Item], out: &mut PbMessages) {
    for item in items {
        match item {
            Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    let mut path = module.to_vec();
                    path.push(m.ident.to_string());
                    self::items(&path, inner, out);
                }
            }
            Item::Struct(s) => {
                let fields: Vec<PbField> = s.fields.iter().filter_map(|f| field(module, f)).collect();
                if !fields.is_empty() || is_message(&s.attrs) {
                    out.insert(format!("{}::{}", module.join("::"), s.ident), fields);
                }
            }
            _ => {}
        }
    }
}

fn is_message(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("derive") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().contains("Message"))
    })
}

fn field(module: &[String], f: &syn::Field) -> Option<PbField> {
    let attr = f.attrs.iter().find(|a| a.path().is_ident("prost"))?;
    let metas = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated).expect("prost attribute");
    let mut pb = PbField {
        name: f.ident.as_ref()?.to_string().trim_start_matches("r#").to_string(),
        tag: 0,
        ty: String::new(),
        repeated: false,
        map: false,
        message: None,
    };
    for m in metas {
        let name = m.path().get_ident().map(|i| i.to_string()).unwrap_or_default();
        let text = match &m {
            Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        };
        match (name.as_str(), text) {
            ("tag", Some(t)) => pb.tag = t.parse().expect("tag"),
            ("btree_map" | "hash_map", Some(kv)) => {
                let (k, v) = kv.split_once(',').expect("map types");
                assert_eq!(k.trim(), "string", "map keys are strings in Kubernetes");
                pb.map = true;
                pb.ty = v.trim().to_string();
            }
            ("bytes", _) => pb.ty = "bytes".into(),
            ("repeated", None) => pb.repeated = true,
            ("optional" | "required" | "boxed" | "packed", _) => {}
            (other, None) => pb.ty = other.to_string(),
            (other, Some(_)) => panic!("unexpected prost attribute {other}"),
        }
    }
    if pb.ty == "message" {
        pb.message = Some(resolve(module, &f.ty));
    }
    Some(pb)
}

/// The message type inside `Option<..>`, `Vec<..>`, `Box<..>` or a map's value, as a k8s-pb path.
fn resolve(module: &[String], ty: &syn::Type) -> String {
    let syn::Type::Path(p) = ty else { panic!("unexpected field type") };
    let last = p.path.segments.last().expect("segments");
    if ["Option", "Vec", "Box", "BTreeMap", "HashMap"].contains(&last.ident.to_string().as_str()) {
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else { panic!("generic without arguments") };
        let inner = args.args.iter().rev().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        });
        return resolve(module, inner.expect("type argument"));
    }
    let mut path = module.to_vec();
    for seg in &p.path.segments {
        match seg.ident.to_string().as_str() {
            "super" => {
                path.pop();
            }
            "self" => {}
            "crate" => path.clear(),
            other => path.push(other.to_string()),
        }
    }
    path.join("::")
}

/// The served OpenAPI v2 document, as kubectl reads it.
fn openapi() -> Value {
    futures::executor::block_on(async {
        use http_body_util::BodyExt;
        let resp = crate::openapi::OpenApi::new().v2(&http::HeaderMap::new());
        let body = resp.into_body().collect().await.expect("OpenAPI body").to_bytes();
        serde_json::from_slice(&body).expect("OpenAPI JSON")
    })
}

/// A name as both spellings agree on it: prost's `x_kubernetes_list_type` and `r#ref` are JSON's
/// `x-kubernetes-list-type` and `$ref`.
fn normalize(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// A schema that is not an object of properties: its message is a one-of.
fn is_one_of(def: &Value) -> bool {
    def.get("properties").is_none() && def.get("type").is_none_or(|t| t != "object")
}

/// The schema of one value of a property: an array's items, a map's values.
fn element<'a>(f: &PbField, prop: &'a Value) -> &'a Value {
    match (f.map, f.repeated) {
        (true, _) => &prop["additionalProperties"],
        (_, true) => &prop["items"],
        _ => prop,
    }
}

/// Definitions by k8s-pb path, lower-cased (`HTTPGetAction` is prost's `HttpGetAction`).
fn definitions_by_path(defs: &Map<String, Value>) -> HashMap<String, String> {
    defs.keys()
        .filter_map(|name| {
            let rest = name.strip_prefix("io.k8s.")?;
            Some((rest.replace('-', "_").replace('.', "::").to_lowercase(), name.clone()))
        })
        .collect()
}

struct Generator {
    pb: PbMessages,
    defs: Map<String, Value>,
    by_path: HashMap<String, String>,
}

impl Generator {
    fn definition(&self, pb_path: &str) -> Option<(&String, &Value)> {
        let name = self.by_path.get(&pb_path.to_lowercase())?;
        self.defs.get_key_value(name)
    }

    fn special(pb_path: &str) -> Option<&'static str> {
        SPECIAL.iter().find(|(p, _)| *p == pb_path).map(|(_, t)| *t)
    }

    /// Every non-special message reachable from `roots`, with the schema that names its JSON
    /// fields: its definition; for an inline struct without one (`EphemeralContainerCommon`), the
    /// enclosing message's; for another message without one (`ExtraValue`), the schema of the
    /// property that holds it.
    fn reachable(&self, roots: &[String]) -> BTreeMap<String, (String, Value)> {
        let mut seen = BTreeMap::new();
        let mut todo: Vec<(String, Option<Value>)> = roots.iter().map(|r| (r.clone(), None)).collect();
        while let Some((p, fallback)) = todo.pop() {
            if Self::special(&p).is_some() || seen.contains_key(&p) {
                continue;
            }
            let def = match (self.definition(&p), fallback) {
                (Some((name, def)), _) => (name.replacen("io.k8s.", "k8s.io.", 1), def.clone()),
                (None, Some(def)) => (format!("k8s.io.{}", p.replace("::", ".")), def),
                (None, None) => panic!("no OpenAPI definition for {p}"),
            };
            let fields = self.pb.get(&p).unwrap_or_else(|| panic!("no k8s-pb message {p}"));
            let props = Self::properties(&def.1);
            for f in fields {
                let (Some(m), Some(json)) = (&f.message, self.json_name(f, &def.1, &props)) else { continue };
                let fallback = match json {
                    "" => def.1.clone(),
                    _ => element(f, &def.1["properties"][json]).clone(),
                };
                todo.push((m.clone(), Some(fallback)));
            }
            seen.insert(p, def);
        }
        seen
    }

    fn properties(def: &Value) -> Vec<&str> {
        def["properties"].as_object().map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    fn render(&self, kinds: &[(String, String, String)]) -> String {
        let roots: Vec<String> = kinds.iter().map(|(_, _, p)| p.clone()).collect();
        let reachable = self.reachable(&roots);
        // Sorted by protobuf name, so the table diffs well.
        let mut messages: Vec<(String, &String)> = reachable.iter().map(|(p, (name, _))| (name.clone(), p)).collect();
        messages.sort();
        let index: HashMap<&String, usize> = messages.iter().enumerate().map(|(i, (_, p))| (*p, i)).collect();

        let mut out = String::new();
        out.push_str(
            "//! @generated by `protobuf::generate` from k8s-pb's prost attributes and the served OpenAPI\n\
             //! document: do not edit. Regenerate with\n\
             //! `SKIFF_REGENERATE_PROTOBUF=1 cargo test -p skiff-apiserver protobuf::generate`.\n\n\
             use super::descriptor::Label::{Inline, Map, Repeated, Single};\n\
             use super::descriptor::Ty::*;\n\
             use super::descriptor::{Field as F, Message as M};\n\n\
             /// The served kinds: apiVersion, kind, message.\n\
             pub static KINDS: &[(&str, &str, u16)] = &[\n",
        );
        for (api_version, kind, p) in kinds {
            let _ = writeln!(out, "    ({api_version:?}, {kind:?}, {}),", index[p]);
        }
        out.push_str("];\n\npub static MESSAGES: &[M] = &[\n");
        for (i, (name, p)) in messages.iter().enumerate() {
            let (_, def) = &reachable[*p];
            let props = Self::properties(def);
            let required: Vec<&str> =
                def["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            let mut fields: Vec<&PbField> = self.pb[*p].iter().collect();
            fields.sort_by_key(|f| f.tag);
            let one_of = is_one_of(def);
            let _ = writeln!(out, "    // {i}\n    M {{ name: {name:?}, one_of: {one_of}, fields: &[");
            for f in fields {
                let json = self.json_name(f, def, &props);
                let label = match (json, f.map, f.repeated) {
                    (Some(""), ..) => "Inline",
                    (Some(_), true, _) => "Map",
                    (Some(_), _, true) => "Repeated",
                    (Some(_), _, _) => "Single",
                    // A field k8s-pb has and the served schema lacks (alpha, or newer than
                    // k8s-openapi) is skipped as unknown, as JSON drops it.
                    (None, ..) => {
                        let _ = writeln!(out, "        // not in the schema: {} = {}", f.name, f.tag);
                        continue;
                    }
                };
                let ty = match (f.message.as_deref(), f.ty.as_str()) {
                    (Some(m), _) => match Self::special(m) {
                        Some(s) => s.to_string(),
                        None => format!("Message({})", index[&m.to_string()]),
                    },
                    (None, "string") => "String".into(),
                    (None, "bytes") => "Bytes".into(),
                    (None, "bool") => "Bool".into(),
                    (None, "int32") => "Int32".into(),
                    (None, "int64") => "Int64".into(),
                    (None, "uint32") => "Uint32".into(),
                    (None, "uint64") => "Uint64".into(),
                    (None, "double") => "Double".into(),
                    (None, "float") => "Float".into(),
                    (None, other) => panic!("{p}.{}: protobuf type {other} is not supported", f.name),
                };
                let json = json.unwrap_or("");
                let req = required.contains(&json);
                let _ = writeln!(out, "        F::new({}, {json:?}, {ty}, {label}, {req}),", f.tag);
            }
            out.push_str("    ] },\n");
        }
        out.push_str("];\n");
        out
    }

    /// The JSON property a field fills: its name in `props`, "" for an inline struct, or none;
    /// in a one-of, every field is an alternative, under its prost name.
    fn json_name<'a>(&self, f: &'a PbField, def: &Value, props: &[&'a str]) -> Option<&'a str> {
        match props.iter().find(|j| normalize(j) == normalize(&f.name)) {
            Some(j) => Some(j),
            None if is_one_of(def) => Some(&f.name),
            None if !f.map && !f.repeated && self.inlines(f, props) => Some(""),
            None => None,
        }
    }

    /// An embedded Go struct (`json:",inline"`): a message field with no property of its own
    /// whose properties are all the enclosing object's.
    fn inlines(&self, f: &PbField, parent: &[&str]) -> bool {
        let Some(m) = f.message.as_deref() else { return false };
        match self.definition(m) {
            Some((_, def)) => {
                let props = Self::properties(def);
                !props.is_empty() && props.iter().all(|p| parent.contains(p))
            }
            // No schema of its own: its fields must all be the parent's.
            None => self.pb.get(m).is_some_and(|fs| {
                !fs.is_empty() && fs.iter().all(|f| parent.iter().any(|p| normalize(p) == normalize(&f.name)))
            }),
        }
    }
}

/// The served kinds as (apiVersion, kind, k8s-pb path), from the document's
/// `x-kubernetes-group-version-kind`.
fn served(g: &Generator) -> Vec<(String, String, String)> {
    let mut kinds = BTreeMap::new();
    for k in skiff_core::kinds::all() {
        let kind = k.info().kind;
        for (name, def) in &g.defs {
            let gvks = def["x-kubernetes-group-version-kind"].as_array().cloned().unwrap_or_default();
            for gvk in gvks.iter().filter(|gvk| gvk["kind"] == kind) {
                let (group, version) = (gvk["group"].as_str().unwrap_or(""), gvk["version"].as_str().unwrap_or(""));
                let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
                let wanted = name.strip_prefix("io.k8s.").unwrap_or(name).replace('-', "_").replace('.', "::");
                let pb_path =
                    g.pb.keys()
                        .find(|p| p.to_lowercase() == wanted.to_lowercase())
                        .unwrap_or_else(|| panic!("no k8s-pb message for {name}"));
                kinds.insert((api_version, kind.to_string()), pb_path.clone());
            }
        }
    }
    kinds.into_iter().map(|((v, k), p)| (v, k, p)).collect()
}

/// Request bodies of subresources, which no served kind is (so the document lacks them): their
/// apiVersion and kind, and their k8s-openapi type for the definitions. kubectl 1.32 sends a
/// TokenRequest as protobuf.
fn subresource_bodies(defs: &mut Map<String, Value>) -> Vec<(&'static str, &'static str, String)> {
    use k8s_openapi::schemars::JsonSchema;
    use k8s_openapi::schemars::generate::SchemaSettings;
    let mut g = SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms = Vec::new();
        })
        .into_generator();
    type TokenRequest = k8s_openapi::api::authentication::v1::TokenRequest;
    g.subschema_for::<TokenRequest>();
    for (name, def) in g.take_definitions(true) {
        defs.entry(name).or_insert(def);
    }
    vec![("authentication.k8s.io/v1", "TokenRequest", TokenRequest::schema_name().into_owned())]
}

#[test]
fn table_is_generated_from_k8s_pb_and_the_served_schemas() {
    let doc = openapi();
    let mut defs = doc["definitions"].as_object().cloned().expect("definitions");
    let bodies = subresource_bodies(&mut defs);
    let g = Generator { pb: read_k8s_pb(), by_path: definitions_by_path(&defs), defs };
    let mut kinds = served(&g);
    for (api_version, kind, definition) in bodies {
        let wanted = definition.strip_prefix("io.k8s.").unwrap_or(&definition).replace('.', "::").to_lowercase();
        let pb_path = g.pb.keys().find(|p| p.to_lowercase() == wanted).cloned().expect("a k8s-pb message");
        kinds.push((api_version.to_string(), kind.to_string(), pb_path));
    }
    kinds.sort();
    for k in skiff_core::kinds::all() {
        assert!(kinds.iter().any(|(_, kind, _)| kind == k.info().kind), "served kind {} has no message", k.info().kind);
    }
    let rendered = g.render(&kinds);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TABLE);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != rendered {
        if std::env::var_os("SKIFF_REGENERATE_PROTOBUF").is_some() {
            std::fs::write(&path, rendered).expect("write table");
        } else {
            panic!(
                "{TABLE} is stale: regenerate it with \
                 `SKIFF_REGENERATE_PROTOBUF=1 cargo test -p skiff-apiserver protobuf::generate`"
            );
        }
    }
}
