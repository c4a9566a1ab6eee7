//! One `x-kubernetes-validations` entry as written, and its `fieldPath` resolved against the
//! schema as upstream's `ValidFieldPath` resolves it.

use crate::crd::Schema;
use crate::field::go_quote;
use serde_json::Value;

/// The four `reason` values upstream allows, sorted as its error lists them.
pub(super) const REASONS: [&str; 4] =
    ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"];

/// A rule's fields (absent ones empty or `None`, as Go leaves them).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct RuleSpec {
    pub rule: String,
    pub message: String,
    pub message_expression: String,
    pub reason: Option<String>,
    pub field_path: String,
    pub optional_old_self: Option<bool>,
}

impl RuleSpec {
    pub(super) fn from_json(v: &Value) -> RuleSpec {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        RuleSpec {
            rule: s("rule"),
            message: s("message"),
            message_expression: s("messageExpression"),
            reason: v.get("reason").and_then(Value::as_str).map(str::to_string),
            field_path: s("fieldPath"),
            optional_old_self: v.get("optionalOldSelf").and_then(Value::as_bool),
        }
    }

    /// The rules of a node.
    pub(super) fn list(v: &Option<Value>) -> Vec<RuleSpec> {
        match v {
            Some(Value::Array(items)) => items.iter().map(RuleSpec::from_json).collect(),
            _ => Vec::new(),
        }
    }

    /// The message, or the rule, trimmed (upstream's `ruleErrorString`).
    pub(super) fn error_string(&self) -> &str {
        if self.message.is_empty() { self.rule.trim() } else { self.message.trim() }
    }

    /// The detail of a failed rule without a message expression (`ruleMessageOrDefault`).
    pub(super) fn message_or_default(&self) -> String {
        if self.message.is_empty() {
            format!("failed rule: {}", self.error_string())
        } else {
            self.message.trim().to_string()
        }
    }

    /// Go's `%#v` of the internal `ValidationRule`, the value of errors about the rule.
    /// Pointers print as Go prints them: `nil`, or an address (which cannot match upstream's).
    pub(super) fn go_value(&self) -> String {
        let reason = match &self.reason {
            None => "(*apiextensions.FieldValueErrorReason)(nil)".to_string(),
            Some(_) => "(*apiextensions.FieldValueErrorReason)(0xc000000000)".to_string(),
        };
        let old = match self.optional_old_self {
            None => "(*bool)(nil)".to_string(),
            Some(_) => "(*bool)(0xc000000000)".to_string(),
        };
        format!(
            "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{old}}}",
            go_quote(&self.rule),
            go_quote(&self.message),
            go_quote(&self.message_expression),
            go_quote(&self.field_path),
        )
    }
}

/// Why a `fieldPath` names nothing, in upstream's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(super) struct FieldPathError(String);

impl From<&str> for FieldPathError {
    fn from(s: &str) -> Self {
        FieldPathError(s.to_string())
    }
}

impl From<String> for FieldPathError {
    fn from(s: String) -> Self {
        FieldPathError(s)
    }
}

/// `fieldPath` as the path it names below the rule's node, rendered as `field.Path` renders
/// it (`a.b`, `a[key]`), or why it names nothing.
pub(super) fn field_path(path: &str, mut schema: &Schema) -> Result<String, FieldPathError> {
    let tokens = tokens(path);
    let mut out = String::new();
    let mut it = tokens.into_iter();
    while let Some(tok) = it.next() {
        let name = match tok.as_str() {
            "[" => {
                let Some(quoted) = it.next() else { return Err("unexpected end of JSON path".into()) };
                if quoted.len() < 2 || !quoted.starts_with('\'') || !quoted.ends_with('\'') {
                    return Err(format!("expected single quoted string but got {quoted}").into());
                }
                let name =
                    unescape(&quoted[1..quoted.len() - 1]).map_err(|e| format!("invalid string literal: {e}"))?;
                match it.next() {
                    Some(t) if t == "]" => {}
                    Some(t) => return Err(format!("expected ] but got {t}").into()),
                    None => return Err("unexpected end of JSON path".into()),
                }
                name
            }
            "." => it.next().ok_or(FieldPathError::from("unexpected end of JSON path"))?,
            other => return Err(format!("expected [ or . but got: {other}").into()),
        };
        if !schema.properties.is_empty() {
            schema = schema.property(&name).ok_or(FieldPathError::from("does not refer to a valid field"))?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&name);
        } else if let Some(extra) = schema.additional_schema() {
            schema = extra;
            out.push_str(&format!("[{name}]"));
        } else {
            return Err("does not refer to a valid field".into());
        }
    }
    Ok(out)
}

/// Splits on `.`, `[` and `]` (returned as tokens), keeping single-quoted strings whole.
fn tokens(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && !(chars[j] == '\'' && chars[j - 1] != '\\') {
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            out.push(chars[i..end].iter().collect());
            i = end;
        } else if matches!(c, '.' | '[' | ']') {
            out.push(c.to_string());
            i += 1;
        } else {
            let mut j = i;
            while j < chars.len() && !matches!(chars[j], '.' | '[' | ']') {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    out
}

fn unescape(s: &str) -> Result<String, FieldPathError> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('a') => '\u{7}',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('v') => '\u{b}',
            Some('\'') => '\'',
            Some('\\') => '\\',
            Some(other) => return Err(format!("invalid escape char \\{other}").into()),
            None => return Err("invalid escape char \\".into()),
        });
    }
    Ok(out)
}
