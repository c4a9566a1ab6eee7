//! CustomResourceDefinition `x-kubernetes-validations`: CEL rules as Kubernetes 1.32's
//! apiextensions-apiserver checks them when a CRD is written ([`check`]) and evaluates them on
//! custom resources ([`compile`] once per CRD version, then [`Rules::validate`] per write).
//!
//! Built on the `cel` crate's parser and interpreter, with what it lacks added here: a static
//! check of identifiers, functions, schema fields and result types (`compile`), values typed by
//! the schema (`value`), a cost and time budget (`budget`, `rewrite`), guards against deep
//! expressions and objects (`MAX_AST_DEPTH`, `MAX_VALUE_DEPTH`, a big stack for parsing and
//! evaluating), and the Kubernetes libraries (`library`).
//!
//! Covered: the standard library and macros, optionals, cel-go's strings extension (v2),
//! Kubernetes' lists (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`), regex
//! (`find`, `findAll`; `matches` with Go's syntax), sets, URLs and quantities; `oldSelf`
//! transition rules with `optionalOldSelf`, correlation through properties, map keys and
//! `list-type: map` keys; `message`, `messageExpression`, `reason`, `fieldPath`; ratcheting of
//! rules that do not use `oldSelf` (as warnings, see [`Rules::evaluate`]).
//!
//! Not covered, and why:
//! - the type checker is partial: unknown identifiers, functions and fields and non-bool
//!   results are caught when the CRD is written, but argument types are only checked when a
//!   rule runs (a `no such overload` error then), as the crate has no checker;
//! - static cost estimation (`estimated rule cost exceeds budget`): it needs cel-go's
//!   estimator over checked types; the runtime budget bounds every rule instead;
//! - equality and `+` of `list-type: set`/`map` lists ignore order as lists do elsewhere;
//! - two-variable comprehensions and `cel.bind` (the crate has neither), the `ip`/`cidr`,
//!   `format.*`, `semver` and authorization libraries, and `reverse`-style strings v3
//!   functions (not in 1.32 anyway);
//! - `find`/`findAll` use Rust's regex syntax (`matches` uses the Go translation of
//!   `crd::pattern`, whose compiled regex is not exposed for searching);
//! - the cost units approximate upstream's (one per iteration, per node copied and per ten
//!   bytes of string handled): close for loops and strings, not identical.

mod budget;
mod check;
mod compile;
mod env;
mod errors;
mod escape;
mod library;
mod rewrite;
mod rule;
pub mod untyped;
mod validate;
mod value;

pub use check::check;
pub use validate::{Outcome, Rules};
pub use value::ValueError;

use crate::crd::Schema;
use std::time::Duration;

/// Longest rule or message expression, in code points (cel-go allows 100,000; parsing the
/// deepest rule of this size fits [`COMPILE_STACK`]).
pub const MAX_RULE_SIZE: usize = 16 * 1024;

/// Deepest expression tree accepted (cel-go's parser limit; `&&`/`||` chains count balanced).
pub const MAX_AST_DEPTH: usize = 250;

/// Deepest object or schema converted to CEL.
pub const MAX_VALUE_DEPTH: usize = 1000;

/// Longest evaluated `messageExpression` (upstream's `MaxEvaluatedMessageExpressionSizeBytes`).
pub const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// Stack for parsing, checking and compiling (parsing recurses once per operator of a chain).
const COMPILE_STACK: usize = 64 << 20;

/// Stack for evaluating: expressions are at most [`MAX_AST_DEPTH`] deep and values at most
/// [`MAX_VALUE_DEPTH`].
const EVAL_STACK: usize = 16 << 20;

/// Budgets for one object, upstream's by default (`PerCallLimit`, `RuntimeCELCostBudget`),
/// with wall-clock bounds behind them in case our cost units undercount some work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Cost units one rule evaluation may spend.
    pub per_call: i64,
    /// Cost units all rules on one object may spend.
    pub per_object: i64,
    pub per_call_time: Duration,
    pub per_object_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_call: 1_000_000,
            per_object: 10_000_000,
            per_call_time: Duration::from_secs(1),
            per_object_time: Duration::from_secs(3),
        }
    }
}

/// Compile every rule of a CRD version's schema (rules that do not compile are left out: the
/// CRD write refused them).
pub fn compile(schema: &Schema) -> Rules {
    validate::compile_rules(schema)
}

/// Run `f` with at least `size / 2` bytes of stack, switching to a fresh stack of `size` when
/// the current one has less left (request threads have 2 MiB).
fn on_big_stack<T>(size: usize, f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(size / 2, size, f)
}

#[cfg(test)]
mod tests;
