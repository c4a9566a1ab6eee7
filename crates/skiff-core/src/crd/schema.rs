//! The `Schema` tree: a CRD's `openAPIV3Schema` (a `JSONSchemaProps` as stored) parsed once, so
//! that validation, pruning and defaulting of custom resources walk typed nodes. Every keyword
//! upstream's type knows is kept, including the unsupported ones, so that the CRD checks can
//! report them; properties keep their JSON order.

use super::pattern::{self, GoRegex, PatternError};
use serde_json::{Map, Value};

/// One `JSONSchemaProps` node.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub id: String,
    /// `$schema`.
    pub schema_uri: String,
    /// `$ref` (set even when empty, as upstream's pointer is).
    pub reference: Option<String>,
    pub description: String,
    /// `type`; empty when absent.
    pub type_: String,
    pub nullable: bool,
    pub format: String,
    pub title: String,
    pub default: Option<Value>,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    pub pattern: String,
    /// `pattern` compiled with Go's syntax, or why it does not compile.
    pub pattern_regex: Option<Result<GoRegex, PatternError>>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub unique_items: bool,
    pub multiple_of: Option<f64>,
    /// `enum` (a JSON `null` entry is kept as `Value::Null`).
    pub enum_values: Vec<Value>,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub required: Vec<String>,
    pub items: Option<Items>,
    pub all_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub any_of: Vec<Schema>,
    pub not: Option<Box<Schema>>,
    /// `properties`, in the order the JSON object lists them.
    pub properties: Vec<(String, Schema)>,
    pub additional_properties: Option<SchemaOrBool>,
    pub pattern_properties: Vec<(String, Schema)>,
    /// `dependencies` (`None` when absent; each entry's schema, if it is one).
    pub dependencies: Option<Dependencies>,
    pub additional_items: Option<SchemaOrBool>,
    pub definitions: Vec<(String, Schema)>,
    pub external_docs: Option<Value>,
    pub example: Option<Value>,
    pub x_preserve_unknown_fields: Option<bool>,
    pub x_embedded_resource: bool,
    pub x_int_or_string: bool,
    pub x_list_map_keys: Vec<String>,
    pub x_list_type: Option<String>,
    pub x_map_type: Option<String>,
    /// `x-kubernetes-validations` as written, for the CEL step.
    pub x_validations: Option<Value>,
}

/// `dependencies`: each entry's schema, if it is one (a property list otherwise).
pub type Dependencies = Vec<(String, Option<Schema>)>;

/// `items`: one schema, or (unsupported) a list of them.
#[derive(Debug, Clone)]
pub enum Items {
    Schema(Box<Schema>),
    Array(Vec<Schema>),
}

/// `additionalProperties` / `additionalItems`: a boolean, or a schema (which allows).
#[derive(Debug, Clone)]
pub enum SchemaOrBool {
    Bool(bool),
    Schema(Box<Schema>),
}

impl SchemaOrBool {
    pub fn schema(&self) -> Option<&Schema> {
        match self {
            SchemaOrBool::Schema(s) => Some(s),
            SchemaOrBool::Bool(_) => None,
        }
    }
    pub fn allows(&self) -> bool {
        !matches!(self, SchemaOrBool::Bool(false))
    }
}

/// A keyword whose JSON value has the wrong type, as Go's decoder would refuse it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("json: cannot unmarshal {got} into Go struct field JSONSchemaProps.{field} of type {want}")]
pub struct ParseError {
    /// The keyword's path from the schema root, JSON names only (as Go reports it).
    pub field: String,
    pub got: &'static str,
    pub want: &'static str,
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reads one node's keywords; `at` is the Go field path of the node (empty at the root).
struct Reader<'a> {
    obj: &'a Map<String, Value>,
    at: &'a str,
}

impl Reader<'_> {
    fn field(&self, key: &str) -> String {
        if self.at.is_empty() { key.to_string() } else { format!("{}.{key}", self.at) }
    }
    fn err(&self, key: &str, v: &Value, want: &'static str) -> ParseError {
        ParseError { field: self.field(key), got: json_kind(v), want }
    }
    /// The value of `key`, `None` when absent or `null` (Go leaves the field unset).
    fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }
    fn string(&self, key: &str) -> Result<String, ParseError> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(key, v, "string")),
        }
    }
    fn opt_string(&self, key: &str) -> Result<Option<String>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(key, v, "string")),
        }
    }
    fn boolean(&self, key: &str) -> Result<bool, ParseError> {
        Ok(self.opt_bool(key)?.unwrap_or(false))
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(key, v, "bool")),
        }
    }
    fn float(&self, key: &str) -> Result<Option<f64>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(v) => Err(self.err(key, v, "float64")),
        }
    }
    fn int(&self, key: &str) -> Result<Option<i64>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| self.err(key, &Value::Null, "int64")),
            Some(v) => Err(self.err(key, v, "int64")),
        }
        .map_err(|mut e| {
            if e.got == "null" {
                e.got = "number";
            }
            e
        })
    }
    fn strings(&self, key: &str) -> Result<Vec<String>, ParseError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    // A null entry decodes to the empty string.
                    Value::Null => Ok(String::new()),
                    other => Err(self.err(key, other, "string")),
                })
                .collect(),
            Some(v) => Err(self.err(key, v, "[]string")),
        }
    }
    fn schema(&self, key: &str) -> Result<Option<Schema>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_at(v, &self.field(key)).map(Some),
        }
    }
    fn schemas(&self, key: &str) -> Result<Vec<Schema>, ParseError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|i| parse_at(i, &self.field(key))).collect(),
            Some(v) => Err(self.err(key, v, "[]apiextensions.JSONSchemaProps")),
        }
    }
    fn schema_map(&self, key: &str) -> Result<Vec<(String, Schema)>, ParseError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| Ok((k.clone(), parse_at(v, &self.field(key))?))).collect(),
            Some(v) => Err(self.err(key, v, "map[string]apiextensions.JSONSchemaProps")),
        }
    }
    fn schema_or_bool(&self, key: &str) -> Result<Option<SchemaOrBool>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(SchemaOrBool::Bool(*b))),
            Some(v @ Value::Object(_)) => Ok(Some(SchemaOrBool::Schema(Box::new(parse_at(v, &self.field(key))?)))),
            Some(v) => Err(self.err(key, v, "apiextensions.JSONSchemaPropsOrBool")),
        }
    }
    fn items(&self) -> Result<Option<Items>, ParseError> {
        match self.get("items") {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(Items::Schema(Box::new(parse_at(v, &self.field("items"))?)))),
            Some(Value::Array(list)) => Ok(Some(Items::Array(
                list.iter().map(|i| parse_at(i, &self.field("items"))).collect::<Result<_, _>>()?,
            ))),
            Some(v) => Err(self.err("items", v, "apiextensions.JSONSchemaPropsOrArray")),
        }
    }
    fn dependencies(&self) -> Result<Option<Dependencies>, ParseError> {
        let key = "dependencies";
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::Object(_) => Ok((k.clone(), Some(parse_at(v, &self.field(key))?))),
                    Value::Array(_) | Value::Null => Ok((k.clone(), None)),
                    other => Err(self.err(key, other, "apiextensions.JSONSchemaPropsOrStringArray")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(key, v, "apiextensions.JSONSchemaDependencies")),
        }
    }
}

/// Parse a `JSONSchemaProps` JSON value. Wrong JSON types give a [`ParseError`]; nothing panics.
pub fn parse(value: &Value) -> Result<Schema, ParseError> {
    parse_at(value, "")
}

fn parse_at(value: &Value, at: &str) -> Result<Schema, ParseError> {
    let Value::Object(obj) = value else {
        return Err(ParseError { field: at.to_string(), got: json_kind(value), want: "apiextensions.JSONSchemaProps" });
    };
    let r = Reader { obj, at };
    let pattern = r.string("pattern")?;
    let pattern_regex = (!pattern.is_empty()).then(|| pattern::compile(&pattern));
    Ok(Schema {
        id: r.string("id")?,
        schema_uri: r.string("$schema")?,
        reference: r.opt_string("$ref")?,
        description: r.string("description")?,
        type_: r.string("type")?,
        nullable: r.boolean("nullable")?,
        format: r.string("format")?,
        title: r.string("title")?,
        default: r.get("default").cloned(),
        maximum: r.float("maximum")?,
        exclusive_maximum: r.boolean("exclusiveMaximum")?,
        minimum: r.float("minimum")?,
        exclusive_minimum: r.boolean("exclusiveMinimum")?,
        max_length: r.int("maxLength")?,
        min_length: r.int("minLength")?,
        pattern,
        pattern_regex,
        max_items: r.int("maxItems")?,
        min_items: r.int("minItems")?,
        unique_items: r.boolean("uniqueItems")?,
        multiple_of: r.float("multipleOf")?,
        enum_values: match r.get("enum") {
            None => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(v) => return Err(r.err("enum", v, "[]apiextensions.JSON")),
        },
        max_properties: r.int("maxProperties")?,
        min_properties: r.int("minProperties")?,
        required: r.strings("required")?,
        items: r.items()?,
        all_of: r.schemas("allOf")?,
        one_of: r.schemas("oneOf")?,
        any_of: r.schemas("anyOf")?,
        not: r.schema("not")?.map(Box::new),
        properties: r.schema_map("properties")?,
        additional_properties: r.schema_or_bool("additionalProperties")?,
        pattern_properties: r.schema_map("patternProperties")?,
        dependencies: r.dependencies()?,
        additional_items: r.schema_or_bool("additionalItems")?,
        definitions: r.schema_map("definitions")?,
        external_docs: r.get("externalDocs").cloned(),
        example: r.get("example").cloned(),
        x_preserve_unknown_fields: r.opt_bool("x-kubernetes-preserve-unknown-fields")?,
        x_embedded_resource: r.boolean("x-kubernetes-embedded-resource")?,
        x_int_or_string: r.boolean("x-kubernetes-int-or-string")?,
        x_list_map_keys: r.strings("x-kubernetes-list-map-keys")?,
        x_list_type: r.opt_string("x-kubernetes-list-type")?,
        x_map_type: r.opt_string("x-kubernetes-map-type")?,
        x_validations: match r.get("x-kubernetes-validations") {
            None => None,
            Some(v @ Value::Array(_)) => Some(v.clone()),
            Some(v) => return Err(r.err("x-kubernetes-validations", v, "apiextensions.ValidationRules")),
        },
    })
}

impl Schema {
    /// The schema of property `name`, if listed.
    pub fn property(&self, name: &str) -> Option<&Schema> {
        self.properties.iter().find(|(k, _)| k == name).map(|(_, s)| s)
    }

    /// The single `items` schema (`None` when absent or a list).
    pub fn items_schema(&self) -> Option<&Schema> {
        match &self.items {
            Some(Items::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// The `additionalProperties` schema, when it is one.
    pub fn additional_schema(&self) -> Option<&Schema> {
        self.additional_properties.as_ref().and_then(SchemaOrBool::schema)
    }

    /// `x-kubernetes-preserve-unknown-fields: true`.
    pub fn preserves_unknown_fields(&self) -> bool {
        self.x_preserve_unknown_fields == Some(true)
    }

    /// The types a value may have: `integer` and `string` for int-or-string, as upstream's
    /// conversion to the validator's schema sets them.
    pub fn types(&self) -> Vec<&str> {
        if self.x_int_or_string {
            vec!["integer", "string"]
        } else if self.type_.is_empty() {
            Vec::new()
        } else {
            vec![self.type_.as_str()]
        }
    }

    /// Whether the node sets nothing a structural schema keeps (example and externalDocs are
    /// dropped by upstream's conversion, and the unsupported keywords cannot be present there).
    pub(crate) fn is_structurally_empty(&self) -> bool {
        self.type_.is_empty()
            && self.description.is_empty()
            && self.title.is_empty()
            && self.default.is_none()
            && !self.nullable
            && self.format.is_empty()
            && self.maximum.is_none()
            && !self.exclusive_maximum
            && self.minimum.is_none()
            && !self.exclusive_minimum
            && self.max_length.is_none()
            && self.min_length.is_none()
            && self.pattern.is_empty()
            && self.max_items.is_none()
            && self.min_items.is_none()
            && !self.unique_items
            && self.multiple_of.is_none()
            && self.enum_values.is_empty()
            && self.max_properties.is_none()
            && self.min_properties.is_none()
            && self.required.is_empty()
            && self.items.is_none()
            && self.all_of.is_empty()
            && self.one_of.is_empty()
            && self.any_of.is_empty()
            && self.not.is_none()
            && self.properties.is_empty()
            && self.additional_properties.is_none()
            && self.x_preserve_unknown_fields.is_none()
            && !self.x_embedded_resource
            && !self.x_int_or_string
            && self.x_list_map_keys.is_empty()
            && self.x_list_type.is_none()
            && self.x_map_type.is_none()
            && !has_validations(&self.x_validations)
    }

    /// Whether this node is exactly `{type: <t>}` (the int-or-string `anyOf` entries).
    pub(crate) fn is_only_type(&self, t: &str) -> bool {
        self.type_ == t && Schema { type_: String::new(), ..self.clone() }.is_structurally_empty()
    }

    /// Why upstream's conversion to a structural schema fails (`NewStructural`), if it does:
    /// the first unsupported keyword met, in upstream's walk order.
    pub(crate) fn conversion_error(&self) -> Option<&'static str> {
        self.unsupported_field()
            .or_else(|| self.value_validations_error())
            .or_else(|| {
                (self.x_preserve_unknown_fields == Some(false))
                    .then_some("internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined")
            })
            .or_else(|| match &self.items {
                Some(Items::Array(list)) if !list.is_empty() => {
                    Some("OpenAPIV3Schema 'items' must be a schema, but is an array")
                }
                Some(Items::Schema(s)) => s.conversion_error(),
                _ => None,
            })
            .or_else(|| self.properties.iter().find_map(|(_, p)| p.conversion_error()))
            .or_else(|| self.additional_schema().and_then(Schema::conversion_error))
    }

    fn value_validations_error(&self) -> Option<&'static str> {
        self.not
            .iter()
            .map(|b| b.as_ref())
            .chain(&self.all_of)
            .chain(&self.any_of)
            .chain(&self.one_of)
            .find_map(Schema::conversion_error)
    }

    fn unsupported_field(&self) -> Option<&'static str> {
        if !self.id.is_empty() {
            Some("OpenAPIV3Schema 'id' is not supported")
        } else if !self.schema_uri.is_empty() {
            Some("OpenAPIV3Schema 'schema' is not supported")
        } else if self.reference.as_deref().is_some_and(|r| !r.is_empty()) {
            Some("OpenAPIV3Schema '$ref' is not supported")
        } else if !self.pattern_properties.is_empty() {
            Some("OpenAPIV3Schema 'patternProperties' is not supported")
        } else if self.dependencies.as_ref().is_some_and(|d| !d.is_empty()) {
            Some("OpenAPIV3Schema 'dependencies' is not supported")
        } else if self.additional_items.is_some() {
            Some("OpenAPIV3Schema 'additionalItems' is not supported")
        } else if !self.definitions.is_empty() {
            Some("OpenAPIV3Schema 'definitions' is not supported")
        } else {
            None
        }
    }

    /// Whether any node of the tree has a `default`.
    pub fn has_defaults(&self) -> bool {
        self.default.is_some() || self.children().any(Schema::has_defaults)
    }

    /// Every directly nested schema (for whole-tree predicates).
    pub(crate) fn children(&self) -> impl Iterator<Item = &Schema> {
        let items: Vec<&Schema> = match &self.items {
            Some(Items::Schema(s)) => vec![s],
            Some(Items::Array(list)) => list.iter().collect(),
            None => Vec::new(),
        };
        let deps: Vec<&Schema> = self.dependencies.iter().flatten().filter_map(|(_, s)| s.as_ref()).collect();
        items
            .into_iter()
            .chain(&self.all_of)
            .chain(&self.any_of)
            .chain(&self.one_of)
            .chain(self.not.as_deref())
            .chain(self.properties.iter().map(|(_, s)| s))
            .chain(self.additional_schema())
            .chain(self.pattern_properties.iter().map(|(_, s)| s))
            .chain(self.additional_items.as_ref().and_then(SchemaOrBool::schema))
            .chain(self.definitions.iter().map(|(_, s)| s))
            .chain(deps)
    }
}

/// `x-kubernetes-validations` with at least one rule.
pub(crate) fn has_validations(v: &Option<Value>) -> bool {
    match v {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
        None => false,
    }
}
