//! Field errors with Kubernetes' wording (apimachinery `util/validation/field`).

use serde_json::Value;
use std::fmt;

/// A path to a field, rendered as `spec.containers[0].name`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() { Path(name.to_string()) } else { Path(format!("{}.{}", self.0, name)) }
    }
    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{}]", self.0, i))
    }
    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{}]", self.0, k))
    }
    /// The whole object, as upstream's `field.NewPath("")` renders: `[]`.
    pub fn whole_object() -> Self {
        Path("[]".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of field error Kubernetes reports, with their `Status` cause reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    /// A value of the wrong type (`field.TypeInvalid`): prints as `Invalid value`.
    TypeInvalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
}

impl ErrorType {
    /// The human text, e.g. `Invalid value`.
    pub fn text(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
        }
    }
    /// The `details.causes[].reason` value.
    pub fn cause_reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
        }
    }
}

/// One validation failure at one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: Path,
    pub value: Option<BadValue>,
    pub detail: String,
}

/// The value an error reports, as Go's `%#v` prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// A scalar (or JSON) value: strings quoted, numbers as they are.
    Json(Value),
    /// A Go value already rendered, such as a label map: `map[string]string{"app":"web"}`.
    Go(String),
}

impl BadValue {
    /// A `map[string]string` as `%#v` prints it: keys sorted, no spaces.
    pub fn string_map<'a>(entries: impl IntoIterator<Item = (&'a String, &'a String)>) -> BadValue {
        let mut pairs: Vec<_> = entries.into_iter().collect();
        pairs.sort();
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v))).collect();
        BadValue::Go(format!("map[string]string{{{}}}", body.join(", ")))
    }
}

impl FieldError {
    fn new(kind: ErrorType, field: &Path, value: Option<Value>, detail: impl Into<String>) -> Self {
        FieldError { kind, field: field.clone(), value: value.map(BadValue::Json), detail: detail.into() }
    }
    /// An invalid value of a Go type that is not a scalar (see [`BadValue::Go`]).
    pub fn invalid_go(field: &Path, value: BadValue, detail: impl Into<String>) -> Self {
        FieldError { kind: ErrorType::Invalid, field: field.clone(), value: Some(value), detail: detail.into() }
    }
    /// `field.TooMany`: a list longer than it may be.
    pub fn too_many(field: &Path, actual: usize, max: usize) -> Self {
        Self::new(ErrorType::TooMany, field, Some(actual.into()), format!("must have at most {max} items"))
    }
    /// A duplicate value of a Go type that is not a scalar (see [`BadValue::Go`]).
    pub fn duplicate_go(field: &Path, value: BadValue) -> Self {
        FieldError { kind: ErrorType::Duplicate, field: field.clone(), value: Some(value), detail: String::new() }
    }
    pub fn invalid(field: &Path, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.into()), detail)
    }
    pub fn required(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }
    pub fn duplicate(field: &Path, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.into()), "")
    }
    pub fn forbidden(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }
    pub fn not_found(field: &Path, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, field, Some(value.into()), "")
    }
    /// Kubernetes 1.32's wording (earlier releases said `must have at most N bytes`).
    pub fn too_long(field: &Path, max: usize) -> Self {
        Self::new(ErrorType::TooLong, field, None, format!("may not be more than {max} bytes"))
    }
    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: &Path, value: impl Into<Value>, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        Self::new(ErrorType::NotSupported, field, Some(value.into()), format!("supported values: {}", list.join(", ")))
    }

    /// The text after the field path (`ErrorBody` upstream).
    pub fn body(&self) -> String {
        let mut s = match (&self.kind, &self.value) {
            (ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong | ErrorType::Internal, _) | (_, None) => {
                self.kind.text().to_string()
            }
            (_, Some(BadValue::Json(v))) => format!("{}: {}", self.kind.text(), go_value(v)),
            (_, Some(BadValue::Go(v))) => format!("{}: {v}", self.kind.text()),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Quote a string as Go's `%q` (`strconv.Quote`) does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Render a value like Go's `%#v` does for the scalar types Kubernetes reports.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

pub type ErrorList = Vec<FieldError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_value_wording() {
        let p = Path::new("spec").child("containers").index(0).child("name");
        let e = FieldError::invalid(&p, "a:b", "bad");
        assert_eq!(e.to_string(), "spec.containers[0].name: Invalid value: \"a:b\": bad");
    }

    #[test]
    fn required_and_unsupported_wording() {
        let p = Path::new("spec").child("restartPolicy");
        assert_eq!(FieldError::required(&p, "").to_string(), "spec.restartPolicy: Required value");
        let e = FieldError::not_supported(&p, "X", &["Always", "Never"]);
        assert_eq!(
            e.to_string(),
            "spec.restartPolicy: Unsupported value: \"X\": supported values: \"Always\", \"Never\""
        );
        let n = FieldError::invalid(&p, 0, "must be between 1 and 65535, inclusive");
        assert_eq!(n.body(), "Invalid value: 0: must be between 1 and 65535, inclusive");
    }
}
