//! Runtime errors in cel-go's words, which upstream's messages embed (`no such key: x
//! evaluating rule: ...`). The crate's own texts differ (`No such key: x`, `Int(5)`).

use cel::{ExecutionError, Value};

/// A runtime error, as cel-go words it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(super) struct EvalError(pub String);

fn plain(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => s.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// The text cel-go gives for `e`.
pub(super) fn runtime_message(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::IndexOutOfBounds(i) => format!("index out of bounds: {}", plain(i)),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::NoSuchOverload(_)
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnexpectedType { .. }
        | ExecutionError::UnsupportedIndex(..)
        | ExecutionError::MissingArgumentOrTarget
        | ExecutionError::InvalidArgumentCount { .. }
        | ExecutionError::NotSupportedAsMethod { .. }
        | ExecutionError::UnsupportedTargetType { .. } => "no such overload".into(),
        ExecutionError::UndeclaredReference(name) => format!("no such attribute(s): {name}"),
        ExecutionError::UnsupportedKeyType(_) => "unsupported key type".into(),
        ExecutionError::DuplicateKey(k) => format!("Failed with repeated key: {}", plain(k)),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        ExecutionError::InternalError(m) => m.clone(),
        other => other.to_string(),
    }
}
