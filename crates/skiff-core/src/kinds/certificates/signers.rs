//! The well-known Kubernetes signers and what each will sign (upstream's `isKubeletServing`,
//! `isKubeletClient`, `isKubeAPIServerClient` over `ValidateKubeletServingCSR` and
//! `ValidateKubeletClientCSR`), the `CertificateSubjectRestriction` admission rule, and the
//! authorization of a verb on the synthetic `signers` resource (`IsAuthorizedForSignerName`).

use super::request::{self, CertificateRequest};
use crate::auth::{Attributes, RequestInfo, UserInfo};
use std::collections::BTreeSet;

pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
/// Only v1beta1 could ask for it; v1 refuses it on create.
pub const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";

const NODES_GROUP: &str = "system:nodes";
const NODE_PREFIX: &str = "system:node:";

/// Why a signer refuses a request: the message of the `Failed` condition it adds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("subject organization is not system:nodes")]
    OrganizationNotSystemNodes,
    #[error("subject common name does not begin with system:node:")]
    CommonNameNotSystemNode,
    #[error("DNS or IP subjectAltName is required")]
    DnsOrIpSanRequired,
    #[error("DNS subjectAltNames are not allowed")]
    DnsSanNotAllowed,
    #[error("Email subjectAltNames are not allowed")]
    EmailSanNotAllowed,
    #[error("IP subjectAltNames are not allowed")]
    IpSanNotAllowed,
    #[error("URI subjectAltNames are not allowed")]
    UriSanNotAllowed,
    /// Go's `%v` of the sorted required usages.
    #[error("usages did not match [{}]", .0.join(" "))]
    Usages(&'static [&'static str]),
    #[error("invalid usage for client certificate: {0}")]
    ClientUsage(String),
    #[error("missing required usage for client certificate: client auth")]
    NoClientAuth,
}

/// Sorted, as Go's `sets.String.List()` prints them.
const KUBELET_SERVING_USAGES: &[&str] = &["digital signature", "key encipherment", "server auth"];
const KUBELET_SERVING_USAGES_NO_RSA: &[&str] = &["digital signature", "server auth"];
const KUBELET_CLIENT_USAGES: &[&str] = &["client auth", "digital signature", "key encipherment"];
const KUBELET_CLIENT_USAGES_NO_RSA: &[&str] = &["client auth", "digital signature"];

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    items.into_iter().collect()
}

/// Usages equal as sets to one of `allowed`.
fn usages_match(usages: &[String], allowed: &[&[&str]]) -> bool {
    let have = set(usages.iter().map(String::as_str));
    allowed.iter().any(|a| set(a.iter().copied()) == have)
}

/// `ValidateKubeletServingCSR`.
pub fn kubelet_serving(req: &CertificateRequest, usages: &[String]) -> Result<(), Refusal> {
    if req.organizations != [NODES_GROUP] {
        return Err(Refusal::OrganizationNotSystemNodes);
    }
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err(Refusal::DnsOrIpSanRequired);
    }
    if !req.email_addresses.is_empty() {
        return Err(Refusal::EmailSanNotAllowed);
    }
    if !req.uris.is_empty() {
        return Err(Refusal::UriSanNotAllowed);
    }
    if !usages_match(usages, &[KUBELET_SERVING_USAGES, KUBELET_SERVING_USAGES_NO_RSA]) {
        return Err(Refusal::Usages(KUBELET_SERVING_USAGES));
    }
    if !req.common_name.starts_with(NODE_PREFIX) {
        return Err(Refusal::CommonNameNotSystemNode);
    }
    Ok(())
}

/// `ValidateKubeletClientCSR`.
pub fn kubelet_client(req: &CertificateRequest, usages: &[String]) -> Result<(), Refusal> {
    if req.organizations != [NODES_GROUP] {
        return Err(Refusal::OrganizationNotSystemNodes);
    }
    if !req.dns_names.is_empty() {
        return Err(Refusal::DnsSanNotAllowed);
    }
    if !req.email_addresses.is_empty() {
        return Err(Refusal::EmailSanNotAllowed);
    }
    if !req.ip_addresses.is_empty() {
        return Err(Refusal::IpSanNotAllowed);
    }
    if !req.uris.is_empty() {
        return Err(Refusal::UriSanNotAllowed);
    }
    if !req.common_name.starts_with(NODE_PREFIX) {
        return Err(Refusal::CommonNameNotSystemNode);
    }
    if !usages_match(usages, &[KUBELET_CLIENT_USAGES, KUBELET_CLIENT_USAGES_NO_RSA]) {
        return Err(Refusal::Usages(KUBELET_CLIENT_USAGES));
    }
    Ok(())
}

/// `validAPIServerClientUsages`: client auth, optionally digital signature and key
/// encipherment; the subject is not looked at (`system:masters` is refused at creation, by
/// [`subject_restriction`]).
pub fn kube_apiserver_client(usages: &[String]) -> Result<(), Refusal> {
    for usage in usages {
        if !matches!(usage.as_str(), "digital signature" | "key encipherment" | "client auth") {
            return Err(Refusal::ClientUsage(usage.clone()));
        }
    }
    if !usages.iter().any(|u| u == "client auth") {
        return Err(Refusal::NoClientAuth);
    }
    Ok(())
}

/// What the cluster's signer for `signer_name` thinks of a request: None when it has no such
/// signer (the request is someone else's to sign).
pub fn check(signer_name: &str, req: &CertificateRequest, usages: &[String]) -> Option<Result<(), Refusal>> {
    match signer_name {
        KUBELET_SERVING => Some(kubelet_serving(req, usages)),
        KUBE_APISERVER_CLIENT_KUBELET => Some(kubelet_client(req, usages)),
        KUBE_APISERVER_CLIENT => Some(kube_apiserver_client(usages)),
        _ => None,
    }
}

/// Why `CertificateSubjectRestriction` refuses a new request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Restricted {
    #[error("failed to parse CSR: {0}")]
    Parse(#[from] request::RequestError),
    #[error("use of {KUBE_APISERVER_CLIENT} signer with system:masters group is not allowed")]
    Masters,
}

/// `CertificateSubjectRestriction`: no client certificate of `kube-apiserver-client` may name
/// `system:masters` (that group is allowed everything before RBAC is asked).
pub fn subject_restriction(signer_name: &str, request_pem: &[u8]) -> Result<(), Restricted> {
    if signer_name != KUBE_APISERVER_CLIENT {
        return Ok(());
    }
    let req = request::parse(request_pem)?;
    if req.organizations.iter().any(|o| o == crate::auth::user::SYSTEM_PRIVILEGED_GROUP) {
        return Err(Restricted::Masters);
    }
    Ok(())
}

/// The two authorizations `IsAuthorizedForSignerName` asks, in order: `verb` on the signer
/// itself, then on every signer of its domain (`kubernetes.io/*`).
pub fn signer_attributes(user: &UserInfo, verb: &str, signer_name: &str) -> [Attributes; 2] {
    let domain = signer_name.split('/').next().unwrap_or_default();
    let ask = |name: String| {
        RequestInfo {
            is_resource_request: true,
            verb: verb.to_string(),
            api_group: "certificates.k8s.io".into(),
            api_version: "*".into(),
            resource: "signers".into(),
            name,
            ..Default::default()
        }
        .with_user(user.clone())
    };
    [ask(signer_name.to_string()), ask(format!("{domain}/*"))]
}

#[cfg(test)]
mod tests {
    use super::super::request::fixtures::{csr, csr_with};
    use super::*;
    use rcgen::SanType;

    fn parsed(pem: &str) -> CertificateRequest {
        request::parse(pem.as_bytes()).expect("parses")
    }

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubelet_clients_are_nodes_only() {
        let node = parsed(&csr("system:node:n1", &["system:nodes"]));
        let client = usages(&["digital signature", "key encipherment", "client auth"]);
        assert_eq!(kubelet_client(&node, &client), Ok(()));
        assert_eq!(kubelet_client(&node, &usages(&["client auth", "digital signature"])), Ok(()));
        let forged = parsed(&csr("system:node:n1", &["system:nodes", "system:masters"]));
        assert_eq!(kubelet_client(&forged, &client), Err(Refusal::OrganizationNotSystemNodes));
        let masters = parsed(&csr("system:node:n1", &["system:masters"]));
        assert_eq!(kubelet_client(&masters, &client), Err(Refusal::OrganizationNotSystemNodes));
        let bob = parsed(&csr("bob", &["system:nodes"]));
        assert_eq!(kubelet_client(&bob, &client), Err(Refusal::CommonNameNotSystemNode));
        let wrong = kubelet_client(&node, &usages(&["client auth", "server auth"]));
        assert_eq!(wrong, Err(Refusal::Usages(KUBELET_CLIENT_USAGES)));
        assert_eq!(
            wrong.err().map(|e| e.to_string()).as_deref(),
            Some("usages did not match [client auth digital signature key encipherment]")
        );
        let dns = vec![SanType::DnsName("n1".try_into().expect("dns"))];
        let named = parsed(&csr_with("system:node:n1", &["system:nodes"], dns, &rcgen::PKCS_ECDSA_P256_SHA256));
        assert_eq!(kubelet_client(&named, &client), Err(Refusal::DnsSanNotAllowed));
    }

    #[test]
    fn kubelet_serving_needs_names() {
        let serving = usages(&["digital signature", "key encipherment", "server auth"]);
        let bare = parsed(&csr("system:node:n1", &["system:nodes"]));
        assert_eq!(kubelet_serving(&bare, &serving), Err(Refusal::DnsOrIpSanRequired));
        let ip = vec![SanType::IpAddress("10.0.0.1".parse().expect("ip"))];
        let named = parsed(&csr_with("system:node:n1", &["system:nodes"], ip, &rcgen::PKCS_ECDSA_P256_SHA256));
        assert_eq!(kubelet_serving(&named, &serving), Ok(()));
        assert_eq!(
            kubelet_serving(&named, &usages(&["client auth"])).err().map(|e| e.to_string()).as_deref(),
            Some("usages did not match [digital signature key encipherment server auth]")
        );
    }

    #[test]
    fn apiserver_clients_need_client_auth_and_nothing_else() {
        assert_eq!(kube_apiserver_client(&usages(&["client auth"])), Ok(()));
        assert_eq!(
            kube_apiserver_client(&usages(&["digital signature", "key encipherment"])),
            Err(Refusal::NoClientAuth)
        );
        assert_eq!(
            kube_apiserver_client(&usages(&["client auth", "signing"])).err().map(|e| e.to_string()).as_deref(),
            Some("invalid usage for client certificate: signing")
        );
        // Any subject: the group is refused at creation, not here.
        let masters = parsed(&csr("root", &["system:masters"]));
        assert_eq!(check(KUBE_APISERVER_CLIENT, &masters, &usages(&["client auth"])), Some(Ok(())));
        assert_eq!(check("example.com/mine", &masters, &usages(&["client auth"])), None);
    }

    #[test]
    fn masters_may_not_be_asked_of_the_client_signer() {
        let masters = csr("root", &["dev", "system:masters"]);
        assert_eq!(subject_restriction(KUBE_APISERVER_CLIENT, masters.as_bytes()), Err(Restricted::Masters));
        assert_eq!(
            Restricted::Masters.to_string(),
            "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
        );
        assert_eq!(subject_restriction(KUBE_APISERVER_CLIENT_KUBELET, masters.as_bytes()), Ok(()));
        assert_eq!(subject_restriction(KUBE_APISERVER_CLIENT, csr("bob", &["dev"]).as_bytes()), Ok(()));
        assert_eq!(
            subject_restriction(KUBE_APISERVER_CLIENT, b"junk").err().map(|e| e.to_string()).as_deref(),
            Some("failed to parse CSR: PEM block type must be CERTIFICATE REQUEST")
        );
    }

    #[test]
    fn signers_are_authorized_by_name_then_domain() {
        let user = UserInfo::new("jane", &[]);
        let [exact, wildcard] = signer_attributes(&user, "approve", "example.com/my-signer");
        assert_eq!(
            (exact.request.verb.as_str(), exact.request.resource.as_str(), exact.request.name.as_str()),
            ("approve", "signers", "example.com/my-signer")
        );
        assert_eq!(exact.request.api_group, "certificates.k8s.io");
        assert_eq!(wildcard.request.name, "example.com/*");
        assert_eq!(wildcard.user.name, "jane");
    }
}
