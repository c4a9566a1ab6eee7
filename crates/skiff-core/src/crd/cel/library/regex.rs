//! Regular expressions: `matches` with Go's RE2 syntax (the same translation `pattern` gets),
//! and the Kubernetes regex library's `find` and `findAll`. Compiled patterns are cached per
//! thread, so a rule matching in a loop compiles its pattern once.

use super::{DYN, STRING, error, owned, str_arg};
use crate::crd::pattern::{self, GoRegex};
use cel::common::types::{CelBool, CelInt, CelList, CelString};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};
use regex::Regex;
use std::cell::RefCell;
use std::collections::HashMap;

/// Patterns kept per thread before the cache starts over.
const CACHE_SIZE: usize = 256;

/// Why a pattern does not compile, in Go's words where we have them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RegexError(String);

thread_local! {
    static GO: RefCell<HashMap<String, Result<GoRegex, RegexError>>> = RefCell::new(HashMap::new());
    static PLAIN: RefCell<HashMap<String, Result<Regex, RegexError>>> = RefCell::new(HashMap::new());
}

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("@matches", "string_matches_string", vec![STRING, STRING], matches)?;
    env.add_member_overload("find", "string_find_string", STRING, vec![STRING], find)?;
    env.add_member_overload("findAll", "string_find_all_string", STRING, vec![STRING], find_all)?;
    env.add_member_overload("findAll", "string_find_all_string_int", STRING, vec![STRING, DYN], find_all)?;
    Ok(())
}

fn cached<T: Clone>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<String, Result<T, RegexError>>>>,
    pattern: &str,
    compile: impl FnOnce(&str) -> Result<T, RegexError>,
) -> Result<T, RegexError> {
    cache.with(|c| {
        if let Some(hit) = c.borrow().get(pattern) {
            return hit.clone();
        }
        let compiled = compile(pattern);
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_SIZE {
            c.clear();
        }
        c.insert(pattern.to_string(), compiled.clone());
        compiled
    })
}

/// `pattern` compiled with Go's syntax, as `matches` and the CRD-write literal check use it.
pub(in super::super) fn go_regex(pattern: &str) -> Result<GoRegex, RegexError> {
    cached(&GO, pattern, |p| pattern::compile(p).map_err(|e| RegexError(e.to_string())))
}

fn plain_regex(function: &str, pattern: &str) -> Result<Regex, ExecutionError> {
    cached(&PLAIN, pattern, |p| Regex::new(p).map_err(|e| RegexError(format!("error parsing regexp: {e}"))))
        .map_err(|e| error(function, e))
}

fn matches<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, p) = (str_arg("matches", &args, 0)?, str_arg("matches", &args, 1)?);
    let re = go_regex(p).map_err(|e| error("matches", e))?;
    Ok(owned(CelBool::from(re.is_match(s))))
}

fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, p) = (str_arg("find", &args, 0)?, str_arg("find", &args, 1)?);
    let re = plain_regex("find", p)?;
    Ok(owned(CelString::from(re.find(s).map_or("", |m| m.as_str()).to_string())))
}

fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, p) = (str_arg("findAll", &args, 0)?, str_arg("findAll", &args, 1)?);
    let limit = match args.get(2) {
        None => -1,
        Some(n) => *n.downcast_ref::<CelInt>().ok_or_else(|| super::no_overload("findAll", &args))?.inner(),
    };
    let re = plain_regex("findAll", p)?;
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    let found: Vec<Box<dyn Val + 'v>> =
        re.find_iter(s).take(take).map(|m| Box::new(CelString::from(m.as_str().to_string())) as Box<dyn Val>).collect();
    Ok(owned(CelList::from(found)))
}
