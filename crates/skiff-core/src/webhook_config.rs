//! The checks every webhook client config shares (upstream's `pkg/util/webhook/validation.go`):
//! admission webhooks and CRD conversion webhooks alike.

use crate::field::{ErrorList, FieldError, Path};
use crate::names;

const URL_FORM: &str = "; desired format: https://host[/path]";

/// `ValidateWebhookURL` with https required.
pub fn validate_url(raw: &str, path: &Path) -> ErrorList {
    let u = match crate::go_url::parse(raw) {
        Ok(u) => u,
        Err(e) => return vec![FieldError::required(path, format!("url must be a valid URL: {e}{URL_FORM}"))],
    };
    let mut errs = Vec::new();
    if u.scheme != "https" {
        errs.push(FieldError::invalid(
            path,
            u.scheme.as_str(),
            format!("'https' is the only allowed URL scheme{URL_FORM}"),
        ));
    }
    if u.host.is_empty() {
        errs.push(FieldError::invalid(path, u.host.as_str(), format!("host must be specified{URL_FORM}")));
    }
    if let Some(user) = &u.user {
        errs.push(FieldError::invalid(path, user.as_str(), "user information is not permitted in the URL"));
    }
    if !u.fragment.is_empty() {
        errs.push(FieldError::invalid(path, u.fragment.as_str(), "fragments are not permitted in the URL"));
    }
    if !u.raw_query.is_empty() {
        errs.push(FieldError::invalid(path, u.raw_query.as_str(), "query parameters are not permitted in the URL"));
    }
    errs
}

/// The path part of `ValidateWebhookService`: `/`-separated DNS subdomains.
pub fn validate_service_path(p: Option<&str>, path: &Path) -> ErrorList {
    let Some(p) = p.filter(|p| !p.is_empty() && *p != "/") else { return Vec::new() };
    if p == "//" {
        return vec![FieldError::invalid(path, p, "segment[0] may not be empty")];
    }
    let mut errs = Vec::new();
    if !p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must start with a '/'"));
    }
    // Upstream drops the first byte whether or not it is the slash.
    let body = p.get(1..).unwrap_or_default();
    let body = body.strip_suffix('/').unwrap_or(body);
    for (i, step) in body.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid(path, p, format!("segment[{i}] may not be empty")));
            continue;
        }
        for failure in names::dns1123_subdomain(step) {
            errs.push(FieldError::invalid(path, p, format!("segment[{i}]: {failure}")));
        }
    }
    errs
}
