//! `replace` as cel-go's strings extension does it (Go's `strings.Replace`), with the size of
//! the result charged before it is built: `s.replace('', s)` squares the length.

use super::super::budget;
use super::{DYN, STRING, no_overload, owned, str_arg};
use cel::common::types::{CelInt, CelString};
use cel::common::value::CowVal;
use cel::{DeclarationError, Env, ExecutionError};

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("@replace", "string_replace_string_string", vec![STRING, STRING, STRING], replace)?;
    env.add_overload("@replace", "string_replace_string_string_int", vec![STRING, STRING, STRING, DYN], replace)?;
    Ok(())
}

fn replace<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, old, new) = (str_arg("replace", &args, 0)?, str_arg("replace", &args, 1)?, str_arg("replace", &args, 2)?);
    let n = match args.get(3) {
        None => -1,
        Some(n) => *n.downcast_ref::<CelInt>().ok_or_else(|| no_overload("replace", &args))?.inner(),
    };
    let found = if old.is_empty() { s.chars().count() + 1 } else { s.matches(old).count() };
    let count = usize::try_from(n).map_or(found, |n| n.min(found));
    if count == 0 || old == new {
        return Ok(owned(CelString::from(s.to_string())));
    }
    let len = (s.len() + count.saturating_mul(new.len())).saturating_sub(count * old.len());
    budget::charge(1 + (len / 10) as u64)?;
    Ok(owned(CelString::from(go_replace(s, old, new, count))))
}

/// Go's `strings.Replace` for `count` replacements (`count` already capped at the matches).
fn go_replace(s: &str, old: &str, new: &str, count: usize) -> String {
    let mut out = String::new();
    let mut start = 0;
    for i in 0..count {
        let mut j = start;
        if old.is_empty() {
            if i > 0 {
                j += s[start..].chars().next().map_or(0, char::len_utf8);
            }
        } else {
            j += s[start..].find(old).unwrap_or(0);
        }
        out.push_str(&s[start..j]);
        out.push_str(new);
        start = j + old.len();
    }
    out.push_str(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::go_replace;

    #[test]
    fn replaces_as_go() {
        assert_eq!(go_replace("aaa", "a", "b", 2), "bba");
        assert_eq!(go_replace("ab", "", "-", 3), "-a-b-");
        assert_eq!(go_replace("héllo", "l", "L", 2), "héLLo");
    }
}
