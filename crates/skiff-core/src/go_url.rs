//! The parts of Go's `net/url` parsing that API checks look at (`url.Parse` for webhook
//! URLs, `url.ParseRequestURI` for the API approval annotation), with its error texts.

use crate::field::go_quote;

/// A parsed URL: only what the checks read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct GoUrl {
    pub scheme: String,
    /// The userinfo before `@`, when there is one.
    pub user: Option<String>,
    pub host: String,
    pub raw_query: String,
    pub fragment: String,
}

/// Why a URL does not parse, worded as Go's `*url.Error`.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("parse {}: {why}", go_quote(.url))]
pub(crate) struct UrlError {
    url: String,
    why: Why,
}

/// Go's parse errors.
#[derive(Debug, PartialEq, thiserror::Error)]
pub(crate) enum Why {
    #[error("net/url: invalid control character in URL")]
    ControlCharacter,
    #[error("empty url")]
    Empty,
    #[error("invalid URI for request")]
    NotForRequest,
    #[error("first path segment in URL cannot contain colon")]
    ColonInFirstSegment,
    #[error("missing protocol scheme")]
    MissingScheme,
    #[error("net/url: invalid userinfo")]
    InvalidUserinfo,
    #[error("missing ']' in host")]
    MissingBracket,
    #[error("invalid port {} after host", go_quote(.0))]
    InvalidPort(String),
    #[error("invalid URL escape {}", go_quote(.0))]
    InvalidEscape(String),
}

/// `url.Parse`: a reference, relative or absolute, with a fragment.
pub(crate) fn parse(raw: &str) -> Result<GoUrl, UrlError> {
    let (u, frag) = raw.split_once('#').unwrap_or((raw, ""));
    let err = |why: Why| UrlError { url: raw.to_string(), why };
    let mut url = parse_at(u, false).map_err(err)?;
    url.fragment = unescape(frag).map_err(err)?;
    Ok(url)
}

/// `url.ParseRequestURI`: an absolute URI or an absolute path, no fragment.
pub(crate) fn parse_request_uri(raw: &str) -> Result<GoUrl, UrlError> {
    parse_at(raw, true).map_err(|why| UrlError { url: raw.to_string(), why })
}

fn parse_at(raw: &str, via_request: bool) -> Result<GoUrl, Why> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(Why::ControlCharacter);
    }
    if raw.is_empty() && via_request {
        return Err(Why::Empty);
    }
    let mut url = GoUrl::default();
    if raw == "*" {
        return Ok(url);
    }
    let (scheme, mut rest) = scheme(raw)?;
    url.scheme = scheme.to_lowercase();
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        rest = &rest[..rest.len() - 1];
    } else if let Some((r, q)) = rest.split_once('?') {
        url.raw_query = q.to_string();
        rest = r;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // An opaque URL (`mailto:x`): no host.
            return Ok(url);
        }
        if via_request {
            return Err(Why::NotForRequest);
        }
        let segment = rest.split('/').next().unwrap_or_default();
        if segment.contains(':') {
            return Err(Why::ColonInFirstSegment);
        }
    }
    if (!url.scheme.is_empty() || !via_request && !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = after.find('/').map_or((after, ""), |i| (&after[..i], &after[i..]));
        let host = match authority.rfind('@') {
            Some(i) => {
                let user = &authority[..i];
                if !user.bytes().all(valid_userinfo) {
                    return Err(Why::InvalidUserinfo);
                }
                url.user = Some(user.to_string());
                &authority[i + 1..]
            }
            None => authority,
        };
        url.host = parse_host(host)?;
        rest = path;
    }
    unescape(rest)?;
    Ok(url)
}

/// `getScheme`: the scheme and what follows its colon; no scheme when a non-scheme character
/// comes first.
fn scheme(raw: &str) -> Result<(&str, &str), Why> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err(Why::MissingScheme),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn valid_userinfo(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b)
}

/// `parseHost`: a bracketed IPv6 literal or a name, then an optional numeric port.
fn parse_host(host: &str) -> Result<String, Why> {
    let port = if let Some(stripped) = host.strip_prefix('[') {
        let Some(end) = stripped.find(']') else { return Err(Why::MissingBracket) };
        let after = &stripped[end + 1..];
        if !after.is_empty() && !after.starts_with(':') {
            return Err(Why::InvalidPort(after.to_string()));
        }
        after
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    if !port.is_empty() && !port[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(Why::InvalidPort(port.to_string()));
    }
    unescape(host)
}

/// Percent-decoding, refusing bad escapes as Go does.
fn unescape(s: &str) -> Result<String, Why> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => {
                    let bad = s.get(i..(i + 3).min(s.len())).unwrap_or("%");
                    return Err(Why::InvalidEscape(bad.to_string()));
                }
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        let u = parse("https://user:pw@example.com:8443/convert?x=1#frag").expect("parses");
        assert_eq!(u.scheme, "https");
        assert_eq!(u.user.as_deref(), Some("user:pw"));
        assert_eq!(u.host, "example.com:8443");
        assert_eq!((u.raw_query.as_str(), u.fragment.as_str()), ("x=1", "frag"));
        assert_eq!(parse("example.com/x").expect("relative").host, "");
        assert_eq!(parse("http:opaque").expect("opaque").host, "");
        assert_eq!(parse(":x").map_err(|e| e.to_string()), Err(r#"parse ":x": missing protocol scheme"#.into()));
        assert_eq!(
            parse("https://a b\n").map_err(|e| e.to_string()),
            Err("parse \"https://a b\\n\": net/url: invalid control character in URL".into())
        );
        assert_eq!(
            parse("https://[::1/x").map_err(|e| e.to_string()),
            Err(r#"parse "https://[::1/x": missing ']' in host"#.into())
        );
        assert_eq!(
            parse("https://h:abc/").map_err(|e| e.to_string()),
            Err(r#"parse "https://h:abc/": invalid port ":abc" after host"#.into())
        );
        assert_eq!(
            parse("https://h/%zz").map_err(|e| e.to_string()),
            Err(r#"parse "https://h/%zz": invalid URL escape "%zz""#.into())
        );
    }

    #[test]
    fn request_uris() {
        let u = parse_request_uri("https://github.com/kubernetes/enhancements/pull/1111").expect("parses");
        assert_eq!((u.scheme.as_str(), u.host.as_str()), ("https", "github.com"));
        assert_eq!(
            parse_request_uri("approved").map_err(|e| e.to_string()),
            Err(r#"parse "approved": invalid URI for request"#.into())
        );
        assert_eq!(parse_request_uri("/path").expect("absolute path").host, "");
    }
}
