//! The Kubernetes quantity library (1.28+): `quantity(s)`, `isQuantity(s)` and the methods
//! `sign`, `isInteger`, `asInteger`, `asApproximateFloat`, `add`, `sub`, `isGreaterThan`,
//! `isLessThan`, `compareTo`. A quantity is held exactly in nano-units, the finest scale a
//! Kubernetes quantity keeps (finer fractions round up, as upstream rounds them).

use super::{DYN, STRING, error, no_overload, owned, str_arg};
use cel::common::types::{CelBool, CelDouble, CelInt, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};
use std::any::Any;
use std::cmp::Ordering;

const QUANTITY_TYPE: Type = Type::new_unspecified_type("kubernetes.Quantity");
static QUANTITY: Type = QUANTITY_TYPE;
const NANO: i128 = 1_000_000_000;

/// A quantity, in nano-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Quantity(i128);

impl Val for Quantity {
    fn get_type(&self) -> &Type {
        &QUANTITY
    }
    fn cel_type() -> &'static Type {
        &QUANTITY
    }
    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Quantity>().is_some_and(|o| o == self)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Quantity {}

/// Parses Kubernetes' quantity syntax: a signed decimal number and a binary (`Ki`..`Ei`),
/// decimal (`n`, `u`, `m`, `k`..`E`) or exponent (`e3`, `E-2`) suffix.
pub(crate) fn parse(s: &str) -> Option<Quantity> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (num, suffix) = rest.split_at(num_end);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let digits = format!("{int}{frac}");
    if digits.len() > 38 {
        return None;
    }
    let mantissa: i128 = digits.parse().ok()?;
    let (binary, exp10): (u32, i32) = match suffix {
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "" => (0, 0),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        e if e.starts_with(['e', 'E']) && e.len() > 1 => (0, e[1..].parse::<i32>().ok().filter(|x| x.abs() <= 40)?),
        _ => return None,
    };
    // value = mantissa * 2^binary * 10^(exp10 - frac.len()), in nanos: * 10^9.
    let scaled = mantissa.checked_mul(1i128.checked_shl(binary)?)?;
    let exp = exp10 + 9 - i32::try_from(frac.len()).ok()?;
    let nanos = if exp >= 0 {
        scaled.checked_mul(10i128.checked_pow(exp.unsigned_abs())?)?
    } else {
        let div = 10i128.checked_pow(exp.unsigned_abs()).unwrap_or(i128::MAX);
        scaled / div + i128::from(scaled % div != 0)
    };
    Some(Quantity(if neg { -nanos } else { nanos }))
}

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("quantity", "string_to_quantity", vec![STRING], quantity)?;
    env.add_overload("isQuantity", "is_quantity_string", vec![STRING], is_quantity)?;
    env.add_member_overload("sign", "quantity_sign", QUANTITY_TYPE, vec![], sign)?;
    env.add_member_overload("isInteger", "quantity_is_integer", QUANTITY_TYPE, vec![], is_integer)?;
    env.add_member_overload("asInteger", "quantity_as_integer", QUANTITY_TYPE, vec![], as_integer)?;
    env.add_member_overload("asApproximateFloat", "quantity_as_float", QUANTITY_TYPE, vec![], as_float)?;
    env.add_member_overload("add", "quantity_add", QUANTITY_TYPE, vec![DYN], add)?;
    env.add_member_overload("sub", "quantity_sub", QUANTITY_TYPE, vec![DYN], sub)?;
    env.add_member_overload("isGreaterThan", "quantity_is_greater_than", QUANTITY_TYPE, vec![QUANTITY_TYPE], greater)?;
    env.add_member_overload("isLessThan", "quantity_is_less_than", QUANTITY_TYPE, vec![QUANTITY_TYPE], less)?;
    env.add_member_overload("compareTo", "quantity_compare_to", QUANTITY_TYPE, vec![QUANTITY_TYPE], compare_to)?;
    Ok(())
}

fn q(function: &str, args: &[CowVal<'_, '_>], i: usize) -> Result<Quantity, ExecutionError> {
    args.get(i).and_then(|a| a.downcast_ref::<Quantity>()).copied().ok_or_else(|| no_overload(function, args))
}

fn quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let s = str_arg("quantity", &args, 0)?;
    parse(s).map(owned).ok_or_else(|| {
        error("quantity", "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    })
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelBool::from(parse(str_arg("isQuantity", &args, 0)?).is_some())))
}

fn sign<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelInt::from(q("sign", &args, 0)?.0.signum() as i64)))
}

fn integer(x: Quantity) -> Option<i64> {
    (x.0 % NANO == 0).then(|| i64::try_from(x.0 / NANO).ok()).flatten()
}

fn is_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelBool::from(integer(q("isInteger", &args, 0)?).is_some())))
}

fn as_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let x = q("asInteger", &args, 0)?;
    integer(x).map(|i| owned(CelInt::from(i))).ok_or_else(|| error("asInteger", "cannot convert value to integer"))
}

fn as_float<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelDouble::from(q("asApproximateFloat", &args, 0)?.0 as f64 / NANO as f64)))
}

/// The second operand of `add`/`sub`: a quantity, or an int of whole units.
fn operand(function: &str, args: &[CowVal<'_, '_>]) -> Result<i128, ExecutionError> {
    if let Some(i) = args.get(1).and_then(|a| a.downcast_ref::<CelInt>()) {
        return Ok(i128::from(*i.inner()) * NANO);
    }
    q(function, args, 1).map(|x| x.0)
}

fn add<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (q("add", &args, 0)?, operand("add", &args)?);
    a.0.checked_add(b).map(|n| owned(Quantity(n))).ok_or_else(|| error("add", "integer overflow"))
}

fn sub<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (q("sub", &args, 0)?, operand("sub", &args)?);
    a.0.checked_sub(b).map(|n| owned(Quantity(n))).ok_or_else(|| error("sub", "integer overflow"))
}

fn cmp(function: &str, args: &[CowVal<'_, '_>]) -> Result<Ordering, ExecutionError> {
    Ok(q(function, args, 0)?.cmp(&q(function, args, 1)?))
}

fn greater<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelBool::from(cmp("isGreaterThan", &args)? == Ordering::Greater)))
}

fn less<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelBool::from(cmp("isLessThan", &args)? == Ordering::Less)))
}

fn compare_to<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelInt::from(cmp("compareTo", &args)? as i64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse("1"), Some(Quantity(NANO)));
        assert_eq!(parse("500m"), Some(Quantity(NANO / 2)));
        assert_eq!(parse("1Ki"), Some(Quantity(1024 * NANO)));
        assert_eq!(parse("1.5G"), Some(Quantity(1_500_000_000 * NANO)));
        assert_eq!(parse("2e3"), Some(Quantity(2000 * NANO)));
        assert_eq!(parse("-1n"), Some(Quantity(-1)));
        assert_eq!(parse("0.1n"), Some(Quantity(1)));
        for bad in ["", "abc", "1x", "1.2.3", "."] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
