//! The Kubernetes URL library: `url(s)`, `isURL(s)` and `getScheme`, `getHost`, `getHostname`,
//! `getPort`, `getEscapedPath`, `getQuery`. A URL must be absolute (`scheme:...`) or an
//! absolute path, as Go's `url.ParseRequestURI` requires; the parts are split as Go splits
//! them, without Go's full validation of hosts and escapes.

use super::{STRING, error, no_overload, owned, str_arg};
use cel::common::types::{CelBool, CelList, CelMap, CelMapKey, CelString, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};
use std::any::Any;
use std::collections::HashMap;

const URL_TYPE: Type = Type::new_unspecified_type("kubernetes.URL");
static URL: Type = URL_TYPE;

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Url {
    scheme: String,
    /// `host[:port]` as written (IPv6 hosts keep their brackets).
    host: String,
    path: String,
    query: String,
}

impl Val for Url {
    fn get_type(&self) -> &Type {
        &URL
    }
    fn cel_type() -> &'static Type {
        &URL
    }
    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Url>().is_some_and(|o| o == self)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Url {}

fn parse(s: &str) -> Option<Url> {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    let (scheme, rest) = if s.starts_with('/') {
        (String::new(), s)
    } else {
        let (scheme, rest) = s.split_once(':')?;
        let mut chars = scheme.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid {
            return None;
        }
        (scheme.to_string(), rest)
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, path) = match rest.strip_prefix("//") {
        Some(authority) => {
            let (authority, path) = authority.find('/').map_or((authority, ""), |i| authority.split_at(i));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            (host.to_string(), path.to_string())
        }
        None if scheme.is_empty() || rest.starts_with('/') => (String::new(), rest.to_string()),
        // `mailto:x`-style opaque URLs: Go keeps them, but they have no path.
        None => (String::new(), String::new()),
    };
    Some(Url { scheme, host, path, query: query.to_string() })
}

impl Url {
    /// Host and port, split as Go's `Hostname`/`Port` split them.
    fn host_port(&self) -> (&str, &str) {
        if let Some(rest) = self.host.strip_prefix('[') {
            let (h, after) = rest.split_once(']').unwrap_or((rest, ""));
            return (h, after.strip_prefix(':').unwrap_or(""));
        }
        match self.host.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p),
            _ => (&self.host, ""),
        }
    }
}

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("url", "string_to_url", vec![STRING], url)?;
    env.add_overload("isURL", "is_url_string", vec![STRING], is_url)?;
    env.add_member_overload("getScheme", "url_get_scheme", URL_TYPE, vec![], |a| {
        part("getScheme", a, |u| u.scheme.clone())
    })?;
    env.add_member_overload("getHost", "url_get_host", URL_TYPE, vec![], |a| part("getHost", a, |u| u.host.clone()))?;
    env.add_member_overload("getHostname", "url_get_hostname", URL_TYPE, vec![], |a| {
        part("getHostname", a, |u| u.host_port().0.to_string())
    })?;
    env.add_member_overload("getPort", "url_get_port", URL_TYPE, vec![], |a| {
        part("getPort", a, |u| u.host_port().1.to_string())
    })?;
    env.add_member_overload("getEscapedPath", "url_get_escaped_path", URL_TYPE, vec![], |a| {
        part("getEscapedPath", a, |u| u.path.clone())
    })?;
    env.add_member_overload("getQuery", "url_get_query", URL_TYPE, vec![], query)?;
    Ok(())
}

fn url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let s = str_arg("url", &args, 0)?;
    parse(s).map(owned).ok_or_else(|| {
        error("url", format!("URL parse error during conversion from string: parse {s:?}: invalid URI for request"))
    })
}

fn is_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelBool::from(parse(str_arg("isURL", &args, 0)?).is_some())))
}

fn the_url<'a>(function: &str, args: &'a [CowVal<'_, '_>]) -> Result<&'a Url, ExecutionError> {
    args.first().and_then(|a| a.downcast_ref::<Url>()).ok_or_else(|| no_overload(function, args))
}

fn part<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    get: impl Fn(&Url) -> String,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(owned(CelString::from(get(the_url(function, &args)?))))
}

fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let u = the_url("getQuery", &args)?;
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for pair in u.query.split(['&', ';']).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (unescape(k), unescape(v));
        match grouped.iter_mut().find(|(key, _)| *key == k) {
            Some((_, values)) => values.push(v),
            None => grouped.push((k, vec![v])),
        }
    }
    let map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = grouped
        .into_iter()
        .map(|(k, vs)| {
            let list: Vec<Box<dyn Val + 'v>> =
                vs.into_iter().map(|v| Box::new(CelString::from(v)) as Box<dyn Val>).collect();
            (CelMapKey::String(CelString::from(k)), Box::new(CelList::from(list)) as Box<dyn Val>)
        })
        .collect();
    Ok(owned(CelMap::from(map)))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn splits_urls() {
        let u = parse("https://user@example.com:8080/a%20b?x=1&x=2").expect("parses");
        assert_eq!((u.scheme.as_str(), u.host.as_str(), u.path.as_str()), ("https", "example.com:8080", "/a%20b"));
        assert_eq!(u.host_port(), ("example.com", "8080"));
        let v6 = parse("http://[::1]:80/").expect("parses");
        assert_eq!(v6.host_port(), ("::1", "80"));
        assert!(parse("/just/a/path").is_some());
        for bad in ["", "example.com", "1http://x", "http://a b"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
