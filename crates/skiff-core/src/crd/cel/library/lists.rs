//! The Kubernetes lists library: `isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`.

use super::{DYN, LIST, error, list_arg, owned};
use cel::common::types::{CelBool, CelInt};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};
use std::cmp::Ordering;

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload("isSorted", "list_is_sorted", LIST, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST, vec![], max)?;
    env.add_member_overload("indexOf", "list_index_of", LIST, vec![DYN], index_of)?;
    env.add_member_overload("lastIndexOf", "list_last_index_of", LIST, vec![DYN], last_index_of)?;
    Ok(())
}

fn compare(function: &str, a: &dyn Val, b: &dyn Val) -> Result<Ordering, ExecutionError> {
    a.as_comparer()
        .ok_or_else(|| ExecutionError::no_such_overload(function, vec![a.get_type().name().to_owned()]))?
        .compare(b)
        .map_err(|_| ExecutionError::no_such_overload(function, vec![a.get_type().name().to_owned()]))
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let list = list_arg("isSorted", &args, 0)?;
    for pair in list.windows(2) {
        if compare("isSorted", pair[0].as_ref(), pair[1].as_ref())? == Ordering::Greater {
            return Ok(owned(CelBool::from(false)));
        }
    }
    Ok(owned(CelBool::from(true)))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let list = list_arg("sum", &args, 0)?;
    let Some((first, rest)) = list.split_first() else { return Ok(owned(CelInt::from(0))) };
    let mut acc: Box<dyn Val + 'v> = first.clone();
    for item in rest {
        let adder = acc
            .as_adder()
            .ok_or_else(|| ExecutionError::no_such_overload("sum", vec![acc.get_type().name().to_owned()]))?;
        let next = adder.add(item.as_ref())?.into_owned();
        acc = next;
    }
    Ok(CowVal::Owned(acc))
}

fn extreme<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    better: Ordering,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let list = list_arg(function, &args, 0)?;
    let Some((first, rest)) = list.split_first() else {
        return Err(error(function, format!("{function} called on empty list")));
    };
    let mut best: &(dyn Val + 'v) = first.as_ref();
    for item in rest {
        if compare(function, item.as_ref(), best)? == better {
            best = item.as_ref();
        }
    }
    Ok(CowVal::Owned(best.clone_as_boxed()))
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme("min", args, Ordering::Less)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme("max", args, Ordering::Greater)
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let list = list_arg("indexOf", &args, 0)?;
    let needle = args[1].as_ref();
    let i = list.iter().position(|v| v.equals(needle)).map_or(-1, |i| i as i64);
    Ok(owned(CelInt::from(i)))
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let list = list_arg("lastIndexOf", &args, 0)?;
    let needle = args[1].as_ref();
    let i = list.iter().rposition(|v| v.equals(needle)).map_or(-1, |i| i as i64);
    Ok(owned(CelInt::from(i)))
}
