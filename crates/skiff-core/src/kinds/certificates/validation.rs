//! `pkg/apis/certificates/validation` of Kubernetes 1.32 for CertificateSigningRequests: the
//! request parses and is self-signed, usages are known and unique, the signer name is a domain
//! and a path (`ValidateSignerName`), conditions are well formed; on update, which conditions
//! and whether the certificate may change depends on the part written (the object, `status`
//! or `approval`), and what an old object already got wrong is tolerated.

use super::request;
use super::signers::LEGACY_UNKNOWN;
use super::{APPROVED, DENIED, FAILED};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::kinds::Part;
use crate::{go_diff, meta, names};
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use serde_json::Value;
use std::collections::HashSet;

/// Every usage the API knows, sorted (the order of upstream's `supported values`).
pub const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// What an update path may change, and what of an old object's is tolerated
/// (`certificateValidationOptions`).
#[derive(Debug, Default, Clone, Copy)]
struct Options {
    setting_approval_conditions: bool,
    setting_certificate: bool,
    both_approved_and_denied: bool,
    legacy_signer_name: bool,
    duplicate_condition_types: bool,
    empty_condition_type: bool,
    arbitrary_certificate: bool,
    unknown_usages: bool,
    duplicate_usages: bool,
}

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default()
}

fn certificate(csr: &CertificateSigningRequest) -> &[u8] {
    csr.status.as_ref().and_then(|s| s.certificate.as_ref()).map_or(&[], |c| &c.0)
}

fn usages(csr: &CertificateSigningRequest) -> &[String] {
    csr.spec.usages.as_deref().unwrap_or_default()
}

fn has_duplicates<'a>(items: impl IntoIterator<Item = &'a str>) -> bool {
    let mut seen = HashSet::new();
    items.into_iter().any(|i| !seen.insert(i))
}

/// `getValidationOptions`: nothing is tolerated on create; on update, what the old object
/// already has.
fn options(new: &CertificateSigningRequest, old: Option<&CertificateSigningRequest>) -> Options {
    let Some(old) = old else { return Options::default() };
    let types: Vec<&str> = conditions(old).iter().map(|c| c.type_.as_str()).collect();
    Options {
        both_approved_and_denied: types.contains(&APPROVED) && types.contains(&DENIED),
        legacy_signer_name: old.spec.signer_name == LEGACY_UNKNOWN,
        duplicate_condition_types: has_duplicates(types.iter().copied()),
        empty_condition_type: types.contains(&""),
        arbitrary_certificate: certificate(new) == certificate(old)
            || request::validate_certificate(certificate(old)).is_err(),
        unknown_usages: usages(old).iter().any(|u| !USAGES.contains(&u.as_str())),
        duplicate_usages: has_duplicates(usages(old).iter().map(String::as_str)),
        ..Options::default()
    }
}

/// Go's `%#v` of a `[]byte`, the value upstream reports a bad request with.
fn go_bytes(bytes: &[u8]) -> BadValue {
    if bytes.is_empty() {
        return BadValue::Go("[]byte(nil)".into());
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:#x}")).collect();
    BadValue::Go(format!("[]byte{{{}}}", hex.join(", ")))
}

/// `ValidateCertificateSigningRequestCreate`.
pub fn validate_create(obj: &Value) -> ErrorList {
    let csr: CertificateSigningRequest = crate::kinds::typed(obj);
    validate(obj, &csr, options(&csr, None))
}

/// The update validation of the part written: `ValidateCertificateSigningRequestUpdate`,
/// `...StatusUpdate` (may set the certificate) or `...ApprovalUpdate` (may set Approved and
/// Denied conditions).
pub fn validate_update(part: Part, old_obj: &Value, obj: &Value) -> ErrorList {
    let (old, new): (CertificateSigningRequest, CertificateSigningRequest) =
        (crate::kinds::typed(old_obj), crate::kinds::typed(obj));
    let mut opts = options(&new, Some(&old));
    match part {
        Part::Status => opts.setting_certificate = true,
        Part::Named(super::APPROVAL) => opts.setting_approval_conditions = true,
        _ => {}
    }
    let mut errs = validate(obj, &new, opts);
    let path = Path::new("status").child("conditions");
    let of_type =
        |csr: &CertificateSigningRequest, t: &str| conditions(csr).iter().filter(|c| c.type_ == t).cloned().collect();
    for t in [APPROVED, DENIED, FAILED] {
        let (before, after): (Vec<_>, Vec<_>) = (of_type(&old, t), of_type(&new, t));
        if after.len() < before.len() {
            errs.push(FieldError::forbidden(&path, format!("updates may not remove a condition of type {t:?}")));
        }
    }
    if !opts.setting_approval_conditions {
        for t in [APPROVED, DENIED] {
            let (before, after): (Vec<_>, Vec<_>) = (of_type(&old, t), of_type(&new, t));
            if after.len() > before.len() {
                errs.push(FieldError::forbidden(&path, format!("updates may not add a condition of type {t:?}")));
            } else if after.len() == before.len() && after != before {
                let as_json = |c: &Vec<CertificateSigningRequestCondition>| serde_json::to_value(c).unwrap_or_default();
                let diff = go_diff::diff(
                    "[]certificates.CertificateSigningRequestCondition",
                    &as_json(&before),
                    &as_json(&after),
                );
                errs.push(FieldError::forbidden(
                    &path,
                    format!("updates may not modify a condition of type {t:?}\n{diff}"),
                ));
            }
        }
    }
    if certificate(&new) != certificate(&old) {
        let path = Path::new("status").child("certificate");
        if !opts.setting_certificate {
            errs.push(FieldError::forbidden(&path, "updates may not set certificate content"));
        } else if !certificate(&old).is_empty() {
            errs.push(FieldError::forbidden(&path, "updates may not modify existing certificate content"));
        }
    }
    errs
}

/// `validateCertificateSigningRequest`.
fn validate(obj: &Value, csr: &CertificateSigningRequest, opts: Options) -> ErrorList {
    // Any name will do ("we don't care what you call your certificate requests").
    let mut errs = meta::validate_with(obj, false, |_| Vec::new());
    let spec = Path::new("spec");
    let req = &csr.spec.request.0;
    if let Err(e) = request::parse(req).and_then(|r| r.check_signature()) {
        errs.push(FieldError::invalid_go(&spec.child("request"), go_bytes(req), e.to_string()));
    }
    let usages = usages(csr);
    if usages.is_empty() {
        errs.push(FieldError::required(&spec.child("usages"), ""));
    }
    if !opts.unknown_usages {
        for (i, u) in usages.iter().enumerate().filter(|(_, u)| !USAGES.contains(&u.as_str())) {
            errs.push(FieldError::not_supported(&spec.child("usages").index(i), u.as_str(), USAGES));
        }
    }
    if !opts.duplicate_usages {
        let mut seen = HashSet::new();
        for (i, u) in usages.iter().enumerate() {
            if !seen.insert(u) {
                errs.push(FieldError::duplicate(&spec.child("usages").index(i), u.as_str()));
            }
        }
    }
    let signer = csr.spec.signer_name.as_str();
    if !opts.legacy_signer_name && signer == LEGACY_UNKNOWN {
        errs.push(FieldError::invalid(
            &spec.child("signerName"),
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(validate_signer_name(&spec.child("signerName"), signer));
    }
    if let Some(seconds) = csr.spec.expiration_seconds.filter(|s| *s < 600) {
        errs.push(FieldError::invalid(
            &spec.child("expirationSeconds"),
            seconds,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errs.extend(validate_conditions(csr, opts));
    if !opts.arbitrary_certificate
        && let Err(e) = request::validate_certificate(certificate(csr))
    {
        let path = Path::new("status").child("certificate");
        errs.push(FieldError::invalid(&path, "<certificate data>", e.to_string()));
    }
    errs
}

/// `validateConditions`: Approved, Denied and Failed may only be True; a type once; Approved
/// and Denied not both.
fn validate_conditions(csr: &CertificateSigningRequest, opts: Options) -> ErrorList {
    let mut errs = Vec::new();
    let path = Path::new("status").child("conditions");
    let (mut approved, mut denied) = (false, false);
    let mut seen = HashSet::new();
    for (i, c) in conditions(csr).iter().enumerate() {
        let at = path.index(i);
        if !opts.empty_condition_type && c.type_.is_empty() {
            errs.push(FieldError::required(&at.child("type"), ""));
        }
        let allowed: &[&str] = if [APPROVED, DENIED, FAILED].contains(&c.type_.as_str()) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if c.status.is_empty() {
            errs.push(FieldError::required(&at.child("status"), ""));
        } else if !allowed.contains(&c.status.as_str()) {
            errs.push(FieldError::not_supported(&at.child("status"), c.status.as_str(), allowed));
        }
        if !opts.both_approved_and_denied {
            let exclusive = "Approved and Denied conditions are mutually exclusive";
            match c.type_.as_str() {
                APPROVED => {
                    approved = true;
                    if denied {
                        errs.push(FieldError::invalid(&at.child("type"), c.type_.as_str(), exclusive));
                    }
                }
                DENIED => {
                    denied = true;
                    if approved {
                        errs.push(FieldError::invalid(&at.child("type"), c.type_.as_str(), exclusive));
                    }
                }
                _ => {}
            }
        }
        if !opts.duplicate_condition_types && !seen.insert(c.type_.as_str()) {
            errs.push(FieldError::duplicate(&at.child("type"), c.type_.as_str()));
        }
    }
    errs
}

/// `ValidateSignerName`: `example.com/signer-name`, a domain of DNS labels (at least two)
/// and a path of DNS subdomains, 253 + 1 + 317 bytes at most.
pub fn validate_signer_name(path: &Path, signer: &str) -> ErrorList {
    const SUBDOMAIN_MAX: usize = 253;
    const LABEL_MAX: usize = 63;
    if signer.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let segments: Vec<&str> = signer.split('/').collect();
    let [domain, signer_path] = segments[..] else {
        return vec![FieldError::invalid(
            path,
            signer,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    };
    let mut errs = Vec::new();
    if domain.len() > SUBDOMAIN_MAX {
        errs.push(FieldError::too_long(path, SUBDOMAIN_MAX));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    // The first bad label only: the others would repeat the message.
    if let Some((label, problems)) = labels.iter().map(|l| (l, names::dns1123_label(l))).find(|(_, p)| !p.is_empty()) {
        errs.extend(
            problems.iter().map(|p| FieldError::invalid(path, domain, format!("validating label {label:?}: {p}"))),
        );
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(path, domain, "should be a domain with at least two segments separated by dots"));
    }
    let parts = signer_path.split('.');
    if let Some((part, problems)) = parts.map(|p| (p, names::dns1123_subdomain(p))).find(|(_, p)| !p.is_empty()) {
        errs.extend(
            problems.iter().map(|p| FieldError::invalid(path, signer_path, format!("validating label {part:?}: {p}"))),
        );
    }
    let max = SUBDOMAIN_MAX + (SUBDOMAIN_MAX + LABEL_MAX + 1) + 1;
    if signer.len() > max {
        errs.push(FieldError::too_long(path, max));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::super::request::fixtures::csr;
    use super::*;
    use base64::Engine;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn object(request: &str, signer: &str, usages: &[&str]) -> Value {
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": "bob"},
            "spec": {"request": b64(request), "signerName": signer, "usages": usages}})
    }

    fn messages(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_good_request_passes() {
        let obj = object(&csr("bob", &["dev"]), "kubernetes.io/kube-apiserver-client", &["client auth"]);
        assert_eq!(messages(&validate_create(&obj)), Vec::<String>::new());
    }

    #[test]
    fn requests_usages_and_durations() {
        let mut obj = object("junk", "kubernetes.io/kube-apiserver-client", &["client auth", "magic", "client auth"]);
        obj["spec"]["expirationSeconds"] = json!(599);
        assert_eq!(
            messages(&validate_create(&obj)),
            [
                "spec.request: Invalid value: []byte{0x6a, 0x75, 0x6e, 0x6b}: PEM block type must be CERTIFICATE REQUEST",
                &format!(
                    "spec.usages[1]: Unsupported value: \"magic\": supported values: {}",
                    USAGES.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ")
                ),
                "spec.usages[2]: Duplicate value: \"client auth\"",
                "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)",
            ]
        );
        let none = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(
            messages(&validate_create(&none)),
            [
                "spec.request: Invalid value: []byte(nil): PEM block type must be CERTIFICATE REQUEST",
                "spec.usages: Required value",
                "spec.signerName: Required value",
            ]
        );
        let legacy = object(&csr("bob", &[]), LEGACY_UNKNOWN, &["client auth"]);
        assert_eq!(
            messages(&validate_create(&legacy)),
            [
                "spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version"
            ]
        );
    }

    #[test]
    fn a_tampered_request_fails_its_signature() {
        let pem = csr("bob", &[]);
        let block = &request::pem_blocks(pem.as_bytes())[0];
        let mut der = block.der.clone();
        let last = der.len() - 1;
        der[last] ^= 1;
        let body = base64::engine::general_purpose::STANDARD.encode(&der);
        let tampered = format!("-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n");
        let errs = messages(&validate_create(&object(&tampered, "example.com/x", &["client auth"])));
        assert!(errs.len() == 1 && errs[0].ends_with(": x509: ECDSA verification failure"), "{errs:?}");
    }

    #[test]
    fn signer_names() {
        let path = Path::new("spec").child("signerName");
        let check = |s: &str| messages(&validate_signer_name(&path, s));
        assert!(check("example.com/my-signer").is_empty());
        assert!(check("kubernetes.io/kube-apiserver-client").is_empty());
        assert_eq!(
            check("example"),
            [
                "spec.signerName: Invalid value: \"example\": must be a fully qualified domain and path of the form 'example.com/signer-name'"
            ]
        );
        assert_eq!(
            check("example/x"),
            [
                "spec.signerName: Invalid value: \"example\": should be a domain with at least two segments separated by dots"
            ]
        );
        assert_eq!(
            check("Example.com/x"),
            [
                "spec.signerName: Invalid value: \"Example.com\": validating label \"Example\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(check("example.com/a..b").len(), 1);
    }

    fn condition(t: &str, status: &str) -> Value {
        json!({"type": t, "status": status, "reason": "R", "lastUpdateTime": "2026-01-01T00:00:00Z"})
    }

    fn with_status(mut obj: Value, status: Value) -> Value {
        obj["status"] = status;
        obj
    }

    #[test]
    fn conditions() {
        let base = object(&csr("bob", &[]), "example.com/x", &["client auth"]);
        let bad = with_status(
            base.clone(),
            json!({"conditions": [condition("Approved", "False"), condition("Denied", "True"), condition("", "True"), condition("Custom", "True"), condition("Custom", "")]}),
        );
        assert_eq!(
            messages(&validate_create(&bad)),
            [
                "status.conditions[0].status: Unsupported value: \"False\": supported values: \"True\"",
                "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive",
                "status.conditions[2].type: Required value",
                "status.conditions[4].status: Required value",
                "status.conditions[4].type: Duplicate value: \"Custom\"",
            ]
        );
    }

    #[test]
    fn each_part_changes_its_own() {
        let old = object(&csr("bob", &[]), "example.com/x", &["client auth"]);
        let approved = with_status(old.clone(), json!({"conditions": [condition("Approved", "True")]}));
        // The approval subresource may add Approved; the object and its status may not.
        assert!(validate_update(Part::Named("approval"), &old, &approved).is_empty());
        assert_eq!(
            messages(&validate_update(Part::Status, &old, &approved)),
            ["status.conditions: Forbidden: updates may not add a condition of type \"Approved\""]
        );
        assert_eq!(messages(&validate_update(Part::Main, &old, &approved)).len(), 1);
        // Nobody removes one.
        let removed = validate_update(Part::Named("approval"), &approved, &old);
        assert_eq!(
            messages(&removed),
            ["status.conditions: Forbidden: updates may not remove a condition of type \"Approved\""]
        );
        // Only status sets the certificate, once.
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::default().self_signed(&key).expect("cert").pem();
        let issued = with_status(
            approved.clone(),
            json!({"conditions": [condition("Approved", "True")], "certificate": b64(&cert)}),
        );
        assert!(validate_update(Part::Status, &approved, &issued).is_empty());
        assert_eq!(
            messages(&validate_update(Part::Named("approval"), &approved, &issued)),
            ["status.certificate: Forbidden: updates may not set certificate content"]
        );
        let cert2 = rcgen::CertificateParams::default().self_signed(&key).expect("cert").pem();
        let reissued = with_status(
            approved.clone(),
            json!({"conditions": [condition("Approved", "True")], "certificate": b64(&cert2)}),
        );
        assert_eq!(
            messages(&validate_update(Part::Status, &issued, &reissued)),
            ["status.certificate: Forbidden: updates may not modify existing certificate content"]
        );
        let junk = with_status(
            approved.clone(),
            json!({"conditions": [condition("Approved", "True")], "certificate": b64("junk")}),
        );
        assert_eq!(
            messages(&validate_update(Part::Status, &approved, &junk)),
            [
                "status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block"
            ]
        );
        // Changing an Approved condition through status is refused with the difference.
        let changed = with_status(
            old.clone(),
            json!({"conditions": [{"type": "Approved", "status": "True", "reason": "Other"}]}),
        );
        let errs = messages(&validate_update(Part::Status, &approved, &changed));
        assert!(
            errs.len() == 1
                && errs[0].starts_with(
                    "status.conditions: Forbidden: updates may not modify a condition of type \"Approved\"\n"
                ),
            "{errs:?}"
        );
    }

    #[test]
    fn what_an_old_object_got_wrong_is_tolerated() {
        let mut old = object(&csr("bob", &[]), LEGACY_UNKNOWN, &["client auth", "client auth"]);
        old["metadata"]["labels"] = json!({"a": "b"});
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"a": "c"});
        assert!(
            validate_update(Part::Main, &old, &new).is_empty(),
            "{:?}",
            messages(&validate_update(Part::Main, &old, &new))
        );
    }
}
