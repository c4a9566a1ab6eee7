//! Cost and time bounds for one evaluation. The interpreter has no cost tracking, so the
//! compiled AST carries calls to the hooks below (see `rewrite`), which charge a per-thread
//! meter and fail once it is spent:
//!
//! - `@range(x)`, on every comprehension's range: one unit per element plus the weight of the
//!   elements, which the interpreter copies one by one as it iterates;
//! - `@deep(x)`, on the arguments of calls whose work grows with their arguments (equality,
//!   `in`, `+`, string and list functions) and on list and map literal entries (copied): the
//!   value's weight;
//! - `@str(x)`, on the arguments of calls that are constant-time on lists and maps (`size`):
//!   the length of strings only.
//!
//! A value's weight is one unit per node plus one per ten bytes of string, so string costs
//! follow upstream's traversal factor (0.1 per byte) and a comprehension costs at least one
//! unit per iteration, as upstream charges. An error can be absorbed by `||`/`&&`, so the
//! caller reads the meter after evaluating, whatever the result. The meter also checks a
//! deadline every [`CHECK_FREQUENCY`] charges, as upstream checks for interruption: a rule
//! whose work the units undercount still stops.

use cel::ExecutionError;
use cel::common::types::{CelBytes, CelList, CelMap, CelMapKey, CelString};
use cel::common::value::{BuiltinRef, CowVal, Val};
use std::cell::Cell;
use std::time::Instant;

/// How many charges pass between two looks at the clock (upstream's `CheckFrequency`).
const CHECK_FREQUENCY: u32 = 100;

/// cel-go's message for a spent budget; validation words it further.
pub(super) const COST_EXCEEDED: &str = "operation cancelled: actual cost limit exceeded";

#[derive(Clone, Copy)]
struct Meter {
    remaining: i64,
    deadline: Instant,
    charges: u32,
}

thread_local! {
    static METER: Cell<Option<Meter>> = const { Cell::new(None) };
}

/// What an evaluation spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Spent {
    pub units: i64,
    /// The limit or the deadline was passed.
    pub exceeded: bool,
}

/// Run `f` with `limit` units to spend before `deadline`.
pub(super) fn metered<T>(limit: i64, deadline: Instant, f: impl FnOnce() -> T) -> (T, Spent) {
    let outer = METER.with(|m| m.replace(Some(Meter { remaining: limit, deadline, charges: 0 })));
    let out = f();
    let left = METER.with(|m| m.replace(outer)).map_or(limit, |m| m.remaining);
    (out, Spent { units: limit.saturating_sub(left.max(0)), exceeded: left < 0 })
}

fn exceeded() -> ExecutionError {
    ExecutionError::function_error("cost", COST_EXCEEDED)
}

/// Charge `units`; fails once the budget or the time is spent. Outside [`metered`] it is free.
pub(super) fn charge(units: u64) -> Result<(), ExecutionError> {
    METER.with(|m| {
        let Some(mut meter) = m.get() else { return Ok(()) };
        meter.remaining = meter.remaining.saturating_sub(i64::try_from(units).unwrap_or(i64::MAX));
        meter.charges = meter.charges.wrapping_add(1);
        if meter.charges.is_multiple_of(CHECK_FREQUENCY) && Instant::now() >= meter.deadline {
            meter.remaining = meter.remaining.min(-1);
        }
        m.set(Some(meter));
        if meter.remaining < 0 { Err(exceeded()) } else { Ok(()) }
    })
}

/// The units left, for bounding the work of a charge before doing it.
pub(super) fn remaining() -> u64 {
    METER.with(|m| m.get().map_or(u64::MAX, |m| u64::try_from(m.remaining.max(0)).unwrap_or(0)))
}

fn string_units(len: usize) -> u64 {
    1 + (len / 10) as u64
}

/// The weight of `v`, counting no further than `cap` (so weighing a huge value costs no more
/// than the budget it would exceed). Iterative: values may nest deeply.
pub(super) fn weight(v: &dyn Val, cap: u64) -> u64 {
    let mut total: u64 = 0;
    let mut stack: Vec<&dyn Val> = vec![v];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(match v.as_builtin() {
            BuiltinRef::String(s) => string_units(s.inner().len()),
            BuiltinRef::Bytes(b) => string_units(b.inner().len()),
            BuiltinRef::List(l) => {
                stack.extend(l.inner().iter().map(|b| b.as_ref()));
                1
            }
            BuiltinRef::Map(m) => {
                let mut keys = 0;
                for (k, v) in m.inner() {
                    keys += match k {
                        CelMapKey::String(s) => string_units(s.inner().len()),
                        _ => 1,
                    };
                    stack.push(v.as_ref());
                }
                1 + keys
            }
            BuiltinRef::Optional(o) => {
                stack.extend(o.inner());
                1
            }
            _ => 1,
        });
        if total >= cap {
            return cap;
        }
    }
    total
}

/// `string`/`bytes` length units; 1 for anything else.
fn shallow(v: &dyn Val) -> u64 {
    if let Some(s) = v.downcast_ref::<CelString>() {
        string_units(s.inner().len())
    } else if let Some(b) = v.downcast_ref::<CelBytes>() {
        string_units(b.inner().len())
    } else {
        1
    }
}

fn first<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    args.into_iter().next().ok_or_else(ExecutionError::missing_argument_or_target)
}

/// `@range(x)`: a comprehension's range.
pub(super) fn hook_range<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let v = first(args)?;
    let items = if let Some(l) = v.downcast_ref::<CelList>() {
        l.inner().len() as u64
    } else if let Some(m) = v.downcast_ref::<CelMap>() {
        m.inner().len() as u64
    } else {
        0
    };
    charge(items.saturating_add(weight(v.as_ref(), remaining().saturating_add(1))))?;
    Ok(v)
}

/// `@deep(x)`: an argument processed or copied whole.
pub(super) fn hook_deep<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let v = first(args)?;
    charge(weight(v.as_ref(), remaining().saturating_add(1)))?;
    Ok(v)
}

/// `@str(x)`: an argument only read in constant time unless it is a string.
pub(super) fn hook_str<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let v = first(args)?;
    charge(shallow(v.as_ref()))?;
    Ok(v)
}
