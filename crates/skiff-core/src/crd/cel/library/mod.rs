//! The Kubernetes CEL libraries, as far as this crate has them (apiserver `pkg/cel/library`
//! and cel-go's `ext.Sets`): lists, regex, sets, quantities, URLs, plus the string functions
//! we implement ourselves (`matches` with Go's regex syntax, `replace` within the budget).
//! Each is an overload of the shared environment, so evaluation needs no per-call setup.

pub(super) mod lists;
pub(super) mod quantity;
pub(super) mod regex;
pub(super) mod sets;
pub(super) mod strings;
pub(super) mod time;
pub(super) mod url;

use cel::common::types::{CelList, CelString, DYN_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

/// Registers every library function on `env`.
pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    lists::register(env)?;
    regex::register(env)?;
    sets::register(env)?;
    strings::register(env)?;
    quantity::register(env)?;
    url::register(env)?;
    Ok(())
}

/// A function's error, worded by the function itself as cel-go's are.
pub(super) fn error(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

/// cel-go's error for arguments no overload takes.
pub(super) fn no_overload(function: &str, args: &[CowVal<'_, '_>]) -> ExecutionError {
    ExecutionError::no_such_overload(function, args.iter().map(|a| a.get_type().name().to_owned()).collect())
}

/// The string argument `i`.
pub(super) fn str_arg<'a>(function: &str, args: &'a [CowVal<'_, '_>], i: usize) -> Result<&'a str, ExecutionError> {
    args.get(i)
        .and_then(|a| a.downcast_ref::<CelString>())
        .map(|s| s.inner())
        .ok_or_else(|| no_overload(function, args))
}

/// The list argument `i`.
pub(super) fn list_arg<'a, 'v>(
    function: &str,
    args: &'a [CowVal<'_, 'v>],
    i: usize,
) -> Result<&'a [Box<dyn Val + 'v>], ExecutionError> {
    args.get(i).and_then(|a| a.downcast_ref::<CelList>()).map(|l| l.inner()).ok_or_else(|| no_overload(function, args))
}

/// An owned result.
pub(super) fn owned<'b, 'v>(v: impl Val + 'v) -> CowVal<'b, 'v> {
    CowVal::owned(v)
}

/// Types used in the declarations below.
pub(super) const LIST: cel::common::types::Type = LIST_TYPE;
pub(super) const STRING: cel::common::types::Type = STRING_TYPE;
pub(super) const DYN: cel::common::types::Type = DYN_TYPE;
