//! cel-go's sets library (Kubernetes 1.29+): `sets.contains`, `sets.equivalent`,
//! `sets.intersects`. Quadratic, so the product of the sizes is charged before the work.

use super::super::budget;
use super::{LIST, list_arg, owned};
use cel::common::types::CelBool;
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("sets.contains", "list_sets_contains_list", vec![LIST, LIST], contains)?;
    env.add_overload("sets.equivalent", "list_sets_equivalent_list", vec![LIST, LIST], equivalent)?;
    env.add_overload("sets.intersects", "list_sets_intersects_list", vec![LIST, LIST], intersects)?;
    Ok(())
}

/// The elements of a list argument.
type Items<'a, 'v> = &'a [Box<dyn Val + 'v>];

fn lists<'a, 'v>(function: &str, args: &'a [CowVal<'_, 'v>]) -> Result<(Items<'a, 'v>, Items<'a, 'v>), ExecutionError> {
    let (a, b) = (list_arg(function, args, 0)?, list_arg(function, args, 1)?);
    budget::charge((a.len() as u64).saturating_mul(b.len() as u64))?;
    Ok((a, b))
}

fn has(list: &[Box<dyn Val + '_>], v: &dyn Val) -> bool {
    list.iter().any(|x| x.equals(v))
}

fn contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = lists("sets.contains", &args)?;
    Ok(owned(CelBool::from(b.iter().all(|v| has(a, v.as_ref())))))
}

fn equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = lists("sets.equivalent", &args)?;
    let same = b.iter().all(|v| has(a, v.as_ref())) && a.iter().all(|v| has(b, v.as_ref()));
    Ok(owned(CelBool::from(same)))
}

fn intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = lists("sets.intersects", &args)?;
    Ok(owned(CelBool::from(b.iter().any(|v| has(a, v.as_ref())))))
}
