//! The shape of the generated descriptor table (`table.rs`): for each protobuf message reachable
//! from a served kind, its fields by tag with their JSON names.

/// One protobuf message: its full name and its fields, in tag order.
#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    /// The message's JSON is not an object of its fields but the value of one of them
    /// (apiextensions' `JSONSchemaPropsOrBool`: a schema or a bool; `ExtraValue`: a list). Go's
    /// `MarshalJSON` of these picks a non-empty list, else a message, else a scalar (its zero
    /// value when unset), else `null`.
    pub one_of: bool,
    pub fields: &'static [Field],
}

#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    /// The JSON property the field fills (empty for [`Label::Inline`]; in a one-of message, the
    /// field's prost name).
    pub json: &'static str,
    pub ty: Ty,
    pub label: Label,
    /// Listed in the schema's `required`: Go writes it in JSON even when empty, so an empty string
    /// is kept rather than dropped as an unset optional one.
    pub required: bool,
}

impl Field {
    pub const fn new(tag: u32, json: &'static str, ty: Ty, label: Label, required: bool) -> Self {
        Field { tag, json, ty, label, required }
    }
}

/// What a field's payload is. The apimachinery types with a JSON form of their own are decoded
/// by their own rules rather than as messages.
// Some variants appear in the table only once a served kind reaches the type (Duration,
// RawExtension): the decoder supports them all.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    /// base64 in JSON.
    Bytes,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Double,
    Float,
    /// A message of the table, by index.
    Message(u16),
    /// `meta.v1.Time`: RFC 3339, whole seconds.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `meta.v1.Duration`: Go's duration string.
    Duration,
    /// `util.intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `api.resource.Quantity`: its string.
    Quantity,
    /// `runtime.RawExtension`, `meta.v1.FieldsV1`, apiextensions' `JSON`: raw JSON bytes,
    /// embedded as JSON.
    RawJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Single,
    Repeated,
    /// `map<string, ty>`: repeated entries with the key in field 1 and the value in field 2.
    Map,
    /// An embedded Go struct (`json:",inline"`): its fields go into the enclosing object.
    Inline,
}
