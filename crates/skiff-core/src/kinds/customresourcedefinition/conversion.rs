//! `spec.conversion` (`validateCustomResourceConversion` and apiserver's webhook checks).
//! Paths are the internal type's: `spec.conversion.webhookClientConfig` and
//! `spec.conversion.conversionReviewVersions`.

use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::names;
use base64::Engine;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, WebhookClientConfig,
};
use x509_cert::Certificate;
use x509_cert::der::Decode;

const STRATEGIES: &[&str] = &["None", "Webhook"];
/// The ConversionReview versions the server understands, sorted.
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// The conversion rules: `None` unless `preserveUnknownFields`, then the strategy's own.
pub(super) fn validate(
    conversion: Option<&CustomResourceConversion>,
    preserve_unknown_fields: bool,
    require_recognized_review_version: bool,
    allow_invalid_ca_bundle: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = Vec::new();
    let Some(c) = conversion else { return errs };
    let strategy = path.child("strategy");
    if c.strategy != "None" && preserve_unknown_fields {
        errs.push(FieldError::invalid(
            &strategy,
            c.strategy.as_str(),
            "must be None if spec.preserveUnknownFields is true",
        ));
    }
    if c.strategy.is_empty() {
        errs.push(FieldError::required(&strategy, ""));
    } else if !STRATEGIES.contains(&c.strategy.as_str()) {
        errs.push(FieldError::not_supported(&strategy, c.strategy.as_str(), STRATEGIES));
    }
    let client = c.webhook.as_ref().and_then(|w| w.client_config.as_ref());
    let review_versions = c.webhook.as_ref().map(|w| w.conversion_review_versions.as_slice()).unwrap_or_default();
    let client_path = path.child("webhookClientConfig");
    let versions_path = path.child("conversionReviewVersions");
    if c.strategy == "Webhook" {
        match client {
            None => errs.push(FieldError::required(&client_path, "required when strategy is set to Webhook")),
            Some(cc) => errs.extend(client_config(cc, allow_invalid_ca_bundle, &client_path)),
        }
        errs.extend(review_versions_errors(review_versions, require_recognized_review_version, &versions_path));
    } else {
        let forbidden = "should not be set when strategy is not set to Webhook";
        if client.is_some() {
            errs.push(FieldError::forbidden(&client_path, forbidden));
        }
        if !review_versions.is_empty() {
            errs.push(FieldError::forbidden(&versions_path, forbidden));
        }
    }
    errs
}

/// `hasValidConversionReviewVersionOrEmpty` of the stored definition: an update must name a
/// known version only if the stored one did.
pub(super) fn has_accepted_review_version_or_none(versions: Option<&[String]>) -> bool {
    let versions = versions.unwrap_or_default();
    versions.is_empty() || versions.iter().any(|v| REVIEW_VERSIONS.contains(&v.as_str()))
}

fn client_config(cc: &WebhookClientConfig, allow_invalid_ca_bundle: bool, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    match (&cc.url, &cc.service) {
        (Some(u), None) => errs.extend(crate::webhook_config::validate_url(u, &path.child("url"))),
        (None, Some(s)) => {
            let at = path.child("service");
            if s.name.is_empty() {
                errs.push(FieldError::required(&at.child("name"), "service name is required"));
            }
            if s.namespace.is_empty() {
                errs.push(FieldError::required(&at.child("namespace"), "service namespace is required"));
            }
            let port = s.port.unwrap_or(443);
            if !(1..=65535).contains(&port) {
                errs.push(FieldError::invalid(
                    &at.child("port"),
                    port,
                    "port is not valid: must be between 1 and 65535, inclusive",
                ));
            }
            errs.extend(crate::webhook_config::validate_service_path(s.path.as_deref(), &at.child("path")));
        }
        _ => errs.push(FieldError::required(path, "exactly one of url or service is required")),
    }
    let bundle = cc.ca_bundle.as_ref().map(|b| b.0.as_slice()).unwrap_or_default();
    if !bundle.is_empty() && !allow_invalid_ca_bundle {
        errs.extend(ca_bundle_errors(bundle, &path.child("caBundle")));
    }
    errs
}

/// `validateConversionReviewVersions`.
fn review_versions_errors(versions: &[String], require_recognized: bool, path: &Path) -> ErrorList {
    if versions.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        if seen.contains(&v.as_str()) {
            errs.push(FieldError::invalid(&path.index(i), v.as_str(), "duplicate version"));
            continue;
        }
        seen.push(v);
        errs.extend(names::invalid_all(&path.index(i), v, names::dns1035_label(v)));
    }
    if require_recognized && !versions.iter().any(|v| REVIEW_VERSIONS.contains(&v.as_str())) {
        errs.push(FieldError::invalid_go(
            path,
            go_strings(versions),
            format!("must include at least one of {}", REVIEW_VERSIONS.join(", ")),
        ));
    }
    errs
}

fn go_strings(items: &[String]) -> BadValue {
    let quoted: Vec<String> = items.iter().map(|s| crate::field::go_quote(s)).collect();
    BadValue::Go(format!("[]string{{{}}}", quoted.join(", ")))
}

/// `ValidateCABundle`: the bundle must hold a certificate a TLS client can trust (client-go's
/// `rootCertPool`); its error otherwise.
pub(super) fn ca_bundle_errors(bundle: &[u8], path: &Path) -> ErrorList {
    let blocks = pem_blocks(bundle);
    let trusted = blocks.iter().flatten().any(|b| b.is_certificate() && Certificate::from_der(&b.der).is_ok());
    if trusted {
        return Vec::new();
    }
    let why = blocks
        .iter()
        .find_map(|b| match b {
            None => Some("unable to parse bytes as PEM block"),
            Some(b) if b.is_certificate() => Certificate::from_der(&b.der).err().map(|_| {
                // Go's x509 error text cannot be reproduced from another parser's.
                "failed to parse certificate: x509: malformed certificate"
            }),
            Some(_) => None,
        })
        .unwrap_or("no valid certificate authority data seen");
    let bytes: Vec<String> = bundle.iter().map(|b| format!("{b:#x}")).collect();
    vec![FieldError::invalid_go(
        path,
        BadValue::Go(format!("[]byte{{{}}}", bytes.join(", "))),
        format!("unable to load root certificates: {why}"),
    )]
}

struct PemBlock {
    label: String,
    headers: bool,
    der: Vec<u8>,
}

impl PemBlock {
    fn is_certificate(&self) -> bool {
        self.label == "CERTIFICATE" && !self.headers
    }
}

/// The PEM blocks of `data` as Go's `pem.Decode` loop meets them; `None` for trailing bytes
/// that hold no further block (where Go's loop stops).
fn pem_blocks(data: &[u8]) -> Vec<Option<PemBlock>> {
    let text = String::from_utf8_lossy(data);
    let mut rest: &str = &text;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some(block) = next_block(rest) else {
            out.push(None);
            break;
        };
        out.push(Some(block.0));
        rest = block.1;
    }
    out
}

/// One block: `-----BEGIN L-----`, optional `Key: value` header lines, base64, `-----END L-----`.
fn next_block(s: &str) -> Option<(PemBlock, &str)> {
    let start = if s.starts_with("-----BEGIN ") { 0 } else { s.find("\n-----BEGIN ")? + 1 };
    let after = &s[start + "-----BEGIN ".len()..];
    let (line, mut body) = after.split_once('\n').unwrap_or((after, ""));
    let label = line.trim_end_matches('\r').strip_suffix("-----")?.to_string();
    let mut headers = false;
    while let Some((l, next)) = body.split_once('\n') {
        if !l.contains(':') {
            break;
        }
        headers = true;
        body = next;
    }
    let end = format!("-----END {label}-----");
    let at = body.find(&end)?;
    let encoded: String = body[..at].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let rest = &body[at + end.len()..];
    let rest = rest.split_once('\n').map_or("", |(_, r)| r);
    Some((PemBlock { label, headers, der }, rest))
}
