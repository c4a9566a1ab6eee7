//! Name, label and annotation validation with apimachinery's exact messages.

use crate::field::{ErrorList, FieldError, Path};
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::LazyLock;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_MAX: usize = 63;
const TOTAL_ANNOTATION_MAX: usize = 256 * 1024;

fn anchored(fmt: &str) -> Regex {
    // The patterns are constants: a failure here is a programming error caught by the unit tests.
    Regex::new(&format!("^{fmt}$")).unwrap_or_else(|e| panic!("bad built-in regex {fmt}: {e}"))
}

static DNS1123_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static DNS1035_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1035_LABEL_FMT));
static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| anchored(&subdomain_fmt()));
static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE: LazyLock<Regex> = LazyLock::new(|| anchored(&format!("({QUALIFIED_NAME_FMT})?")));
static IANA_SVC_NAME: LazyLock<Regex> = LazyLock::new(|| anchored("[-a-z0-9]+"));
static WILDCARD_DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| anchored(&wildcard_subdomain_fmt()));
/// The characters RFC 3986 allows in an HTTP path.
const HTTP_PATH_FMT: &str = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+";
static HTTP_PATH: LazyLock<Regex> = LazyLock::new(|| anchored(HTTP_PATH_FMT));

fn subdomain_fmt() -> String {
    format!("{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*")
}

fn wildcard_subdomain_fmt() -> String {
    format!("\\*\\.{}", subdomain_fmt())
}

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut s = format!("{msg} (");
    if !examples.is_empty() {
        let ex: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
        s.push_str(&format!("e.g. {}, ", ex.join(",  or ")));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Problems with `value` as a name of at most `max` characters matching `re`.
fn bounded_match(value: &str, max: usize, re: &Regex, msg: &str, fmt: &str, examples: &[&str]) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > max {
        errs.push(max_len_error(max));
    }
    if !re.is_match(value) {
        errs.push(regex_error(msg, fmt, examples));
    }
    errs
}

/// Problems with `value` as a DNS label of at most 63 characters matching `re`.
fn dns_label(value: &str, re: &Regex, msg: &str, fmt: &str, examples: &[&str]) -> Vec<String> {
    bounded_match(value, DNS1123_LABEL_MAX, re, msg, fmt, examples)
}

/// Problems with `value` as an RFC 1123 label (container names, namespace names, ...).
pub fn dns1123_label(value: &str) -> Vec<String> {
    dns_label(
        value,
        &DNS1123_LABEL,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        DNS1123_LABEL_FMT,
        &["my-name", "123-abc"],
    )
}

/// Problems with `value` as an RFC 1035 label (Service names: they are DNS names' first label).
pub fn dns1035_label(value: &str) -> Vec<String> {
    dns_label(
        value,
        &DNS1035_LABEL,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        DNS1035_LABEL_FMT,
        &["my-name", "abc-123"],
    )
}

/// Problems with `value` as an RFC 1123 subdomain (most object names).
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    bounded_match(
        value,
        DNS1123_SUBDOMAIN_MAX,
        &DNS1123_SUBDOMAIN,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        &subdomain_fmt(),
        &["example.com"],
    )
}

/// `IsWildcardDNS1123Subdomain`: `*.` followed by an RFC 1123 subdomain (Ingress hosts).
pub fn wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    bounded_match(
        value,
        DNS1123_SUBDOMAIN_MAX,
        &WILDCARD_DNS1123_SUBDOMAIN,
        "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
        &wildcard_subdomain_fmt(),
        &["*.example.com"],
    )
}

/// `IsValidPathSegmentName`: a name that can be a segment of a URL path or a store key.
pub fn path_segment_name(value: &str) -> Vec<String> {
    if value == "." || value == ".." {
        return vec![format!("may not be '{value}'")];
    }
    ["/", "%"].iter().filter(|c| value.contains(*c)).map(|c| format!("may not contain '{c}'")).collect()
}

/// `IsDomainPrefixedPath`: `acme.io/foo`, an RFC 1123 subdomain, `/`, then an HTTP path
/// (IngressClass controllers).
pub fn domain_prefixed_path(path: &Path, value: &str) -> ErrorList {
    if value.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let Some((host, rest)) = value.split_once('/').filter(|(h, r)| !h.is_empty() && !r.is_empty()) else {
        return vec![FieldError::invalid(path, value, "must be a domain-prefixed path (such as \"acme.io/foo\")")];
    };
    let mut errs = invalid_all(path, host, dns1123_subdomain(host));
    if !HTTP_PATH.is_match(rest) {
        errs.push(FieldError::invalid(path, rest, regex_error("Invalid path", HTTP_PATH_FMT, &[])));
    }
    errs
}

/// Problems with a port name (IANA service name), as upstream's `IsValidPortName` words and
/// orders them (no regex in the charset message).
pub fn iana_svc_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 15 {
        errs.push(max_len_error(15));
    }
    if !IANA_SVC_NAME.is_match(value) {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !value.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if value.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if value.starts_with('-') || value.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// Problems with a label or annotation key (`prefix/name`).
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match value.split_once('/') {
        None => (None, value),
        Some((p, n)) if !n.contains('/') => (Some(p), n),
        Some(_) => {
            return vec![
                regex_error(
                    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"],
                ) + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ];
        }
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".into());
        } else {
            errs.extend(dns1123_subdomain(p).into_iter().map(|m| format!("prefix part {m}")));
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else {
        if name.len() > 63 {
            errs.push(format!("name part {}", max_len_error(63)));
        }
        if !QUALIFIED_NAME.is_match(name) {
            errs.push(format!(
                "name part {}",
                regex_error(
                    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"],
                )
            ));
        }
    }
    errs
}

/// Problems with a label value.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !LABEL_VALUE.is_match(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsConfigMapKey`.
pub fn config_key(key: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if key.len() > 253 {
        msgs.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
        msgs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    match key {
        "." => msgs.push("must not be '.'".into()),
        ".." => msgs.push("must not be '..'".into()),
        k if k.starts_with("..") => msgs.push("must not start with '..'".into()),
        _ => {}
    }
    msgs
}

/// `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*` (the rule the kubelet also applies to the
/// names `envFrom` makes).
pub fn env_var_name(value: &str) -> Vec<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    let valid = value.chars().next().is_some_and(|c| ok(c) && !c.is_ascii_digit()) && value.chars().all(ok);
    if valid {
        return vec![];
    }
    vec![
        "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnv1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')".into(),
    ]
}

/// Turn message strings into `Invalid value` errors at `path`.
pub fn invalid_all(path: &Path, value: &str, msgs: Vec<String>) -> ErrorList {
    msgs.into_iter().map(|m| FieldError::invalid(path, value, m)).collect()
}

pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        errs.extend(invalid_all(path, k, qualified_name(k)));
        errs.extend(invalid_all(path, v, label_value(v)));
    }
    errs
}

pub fn validate_annotations(annotations: Option<&BTreeMap<String, String>>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in annotations.into_iter().flatten() {
        errs.extend(invalid_all(path, &k.to_lowercase(), qualified_name(k)));
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_MAX {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_MAX));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_message_is_upstreams() {
        let errs = dns1123_label("spring-container:latest");
        assert_eq!(
            errs,
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
        assert!(dns1123_label("nginx-container").is_empty());
        assert_eq!(dns1123_label(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn subdomain_and_labels() {
        assert!(dns1123_subdomain("web.example").is_empty());
        assert!(dns1123_subdomain("Web").len() == 1);
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name("bad key").is_empty());
        assert!(label_value("").is_empty());
        assert!(!label_value("-x").is_empty());
        assert!(iana_svc_name("http").is_empty());
        assert!(!iana_svc_name("80").is_empty());
    }

    #[test]
    fn port_names_as_upstream_words_them() {
        assert_eq!(
            iana_svc_name("-HTTP--PROXY-ALL"),
            [
                "must be no more than 15 characters",
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "must contain at least one letter (a-z)",
                "must not contain consecutive hyphens",
                "must not begin or end with a hyphen",
            ]
        );
        assert_eq!(
            iana_svc_name(""),
            [
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "must contain at least one letter (a-z)"
            ]
        );
    }

    #[test]
    fn env_var_names() {
        for ok in ["MY_VAR.x-1", "_a", "a"] {
            assert!(env_var_name(ok).is_empty(), "{ok}");
        }
        for bad in ["1a", "a b", "", "a=b"] {
            assert_eq!(env_var_name(bad).len(), 1, "{bad}");
        }
    }
}
