//! CertificateSigningRequests on their way to the store: the requestor is the creating user
//! (the strategy's `PrepareForCreate`), and kube-apiserver's three default admission plugins
//! for them: `CertificateSubjectRestriction` (no `system:masters` client certificates on
//! create), `CertificateApproval` (`approve` on the signer to write `approval`) and
//! `CertificateSigning` (`sign` on the signer to change `status`), each refusing in upstream's
//! words. The server's own writes (no user) are trusted.

use super::{Registry, WriteOptions};
use serde_json::Value;
use skiff_core::ApiError;
use skiff_core::auth::{UserInfo, authorize};
use skiff_core::kinds::certificates::{self, APPROVAL, signers};
use skiff_core::kinds::{Kind, Part};
use skiff_core::meta;

fn is_csr(kind: &dyn Kind) -> bool {
    let info = kind.info();
    info.group == certificates::GROUP && info.kind == "CertificateSigningRequest"
}

/// A new request names who made it, whatever the client said.
pub(super) fn set_requestor(kind: &dyn Kind, obj: &mut Value, opts: &WriteOptions) {
    if is_csr(kind) {
        certificates::set_requestor(obj, opts.user.as_deref());
    }
}

/// `admission.NewForbidden`: the object's resource and name, then why.
fn forbidden(kind: &dyn Kind, obj: &Value, why: impl std::fmt::Display) -> ApiError {
    ApiError::Forbidden(format!("{} {:?} is forbidden: {why}", kind.info().qualified_resource(), meta::name(obj)))
}

/// The admission of a write of `part` of `new` (`old`: the stored object, None on create),
/// after validation.
pub(super) fn admit(
    registry: &Registry,
    kind: &dyn Kind,
    old: Option<&Value>,
    new: &Value,
    part: Part,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    if !is_csr(kind) {
        return Ok(());
    }
    let Some(old) = old else {
        let signer = certificates::signer_name(new);
        return signers::subject_restriction(signer, &certificates::request_pem(new))
            .map_err(|why| forbidden(kind, new, why));
    };
    let (Some(user), Some(current)) = (&opts.user, registry.rbac.get()) else { return Ok(()) };
    // The old object's signer: a write may not change it, and must not pick whom it asks.
    let signer = certificates::signer_name(old);
    let verb = match part {
        Part::Named(APPROVAL) => "approve",
        Part::Status if changed(old, new, "/status/certificate") || changed(old, new, "/status/conditions") => "sign",
        _ => return Ok(()),
    };
    let authorizer = current.borrow().clone();
    if allowed(&authorizer, user, verb, signer) {
        return Ok(());
    }
    Err(forbidden(kind, old, format!("user not permitted to {verb} requests with signerName {signer:?}")))
}

fn changed(old: &Value, new: &Value, pointer: &str) -> bool {
    old.pointer(pointer) != new.pointer(pointer)
}

/// `IsAuthorizedForSignerName`: the verb on the signer, or on all of its domain's.
fn allowed(authorizer: &skiff_core::auth::Authorizer, user: &UserInfo, verb: &str, signer: &str) -> bool {
    signers::signer_attributes(user, verb, signer).iter().any(|attrs| authorize(authorizer, attrs).allowed())
}

#[cfg(test)]
mod tests {
    use super::super::{ObjectRef, Registry, WriteOptions};
    use base64::Engine;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
    use serde_json::{Value, json};
    use skiff_core::ApiError;
    use skiff_core::auth::{Authorizer, Snapshot, UserInfo};
    use skiff_core::kinds::{self, Kind, Part};
    use std::sync::Arc;

    fn csr_kind() -> &'static dyn Kind {
        kinds::by_resource("certificates.k8s.io", "v1", "certificatesigningrequests").expect("served")
    }

    fn as_user(name: &str, groups: &[&str]) -> WriteOptions {
        WriteOptions {
            field_manager: "test".into(),
            user: Some(Arc::new(UserInfo::new(name, groups))),
            ..Default::default()
        }
    }

    fn request(cn: &str, orgs: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        for o in orgs {
            params.distinguished_name.push(rcgen::DnType::OrganizationName, *o);
        }
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let pem = params.serialize_request(&key).expect("csr").pem().expect("pem");
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    fn csr(name: &str, cn: &str, orgs: &[&str]) -> Value {
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": request(cn, orgs), "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"], "username": "someone-else"}})
    }

    fn rule(verbs: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            api_groups: Some(vec!["certificates.k8s.io".into()]),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            resource_names: (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect()),
            ..Default::default()
        }
    }

    /// `eve` may write approval and status but approve and sign nothing; `ann` may approve any
    /// `kubernetes.io` signer.
    fn registry() -> Registry {
        let role = |name: &str, rules| ClusterRole {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            rules: Some(rules),
            aggregation_rule: None,
        };
        let bind = |role: &str, user: &str| ClusterRoleBinding {
            metadata: Default::default(),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: role.into(),
            },
            subjects: Some(vec![Subject {
                kind: "User".into(),
                name: user.into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                namespace: None,
            }]),
        };
        let writer =
            vec![rule(&["update"], &["certificatesigningrequests/approval", "certificatesigningrequests/status"], &[])];
        let approver = vec![rule(&["approve"], &["signers"], &["kubernetes.io/*"])];
        let snapshot = Snapshot {
            cluster_roles: vec![role("writer", writer), role("approver", approver)],
            cluster_role_bindings: vec![bind("writer", "eve"), bind("writer", "ann"), bind("approver", "ann")],
            ..Default::default()
        };
        let reg = Registry::new(Arc::new(skiff_store::MemoryStore::new()));
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(Authorizer::new(snapshot)));
        reg.set_authorizer(rx);
        reg
    }

    fn approved(mut obj: Value) -> Value {
        obj["status"]["conditions"] = json!([{"type": "Approved", "status": "True", "reason": "KubectlApprove"}]);
        obj
    }

    #[tokio::test]
    async fn the_requestor_is_who_created_it() {
        let reg = registry();
        let created = reg
            .create(csr_kind(), "", csr("bob", "bob", &["dev"]), &as_user("jane", &["dev", "system:authenticated"]))
            .await
            .expect("create");
        assert_eq!(created["spec"]["username"], "jane");
        assert_eq!(created["spec"]["groups"], json!(["dev", "system:authenticated"]));
        assert_eq!(created["status"], json!({}));
    }

    #[tokio::test]
    async fn no_masters_from_the_client_signer() {
        let reg = registry();
        let err = reg.create(csr_kind(), "", csr("root", "root", &["system:masters"]), &as_user("jane", &[])).await;
        assert_eq!(
            err.err(),
            Some(ApiError::Forbidden(
                "certificatesigningrequests.certificates.k8s.io \"root\" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed".into()
            ))
        );
    }

    #[tokio::test]
    async fn approving_needs_approve_on_the_signer() {
        let reg = registry();
        let created =
            reg.create(csr_kind(), "", csr("bob", "bob", &["dev"]), &as_user("jane", &[])).await.expect("create");
        let at = ObjectRef { kind: csr_kind(), namespace: "", name: "bob" };
        let approval = Part::Named("approval");
        let refused = reg.update(at, approved(created.clone()), approval, &as_user("eve", &[])).await;
        assert_eq!(
            refused.err(),
            Some(ApiError::Forbidden(
                "certificatesigningrequests.certificates.k8s.io \"bob\" is forbidden: user not permitted to approve requests with signerName \"kubernetes.io/kube-apiserver-client\"".into()
            ))
        );
        let done =
            reg.update(at, approved(created.clone()), approval, &as_user("ann", &[])).await.expect("ann approves");
        assert_eq!(done["status"]["conditions"][0]["type"], "Approved");
        assert!(done["status"]["conditions"][0]["lastUpdateTime"].is_string());

        // Writing status needs `sign`: eve may not; the server's own signer may (and its
        // writes are validated first: a certificate that is not one is refused).
        let mut failed = done.clone();
        failed["status"]["conditions"]
            .as_array_mut()
            .expect("conditions")
            .push(json!({"type": "Failed", "status": "True"}));
        let refused = reg.update(at, failed.clone(), Part::Status, &as_user("eve", &[])).await;
        assert!(
            matches!(&refused, Err(ApiError::Forbidden(m)) if m.ends_with("user not permitted to sign requests with signerName \"kubernetes.io/kube-apiserver-client\"")),
            "{refused:?}"
        );
        let server = WriteOptions { field_manager: "test".into(), ..Default::default() };
        let latest = reg.update(at, failed, Part::Status, &server).await.expect("the server may");
        let mut junk = latest.clone();
        junk["status"]["certificate"] = json!("eA==");
        let invalid = reg.update(at, junk, Part::Status, &server).await;
        assert_eq!(invalid.map_err(|e| e.code()).err(), Some(422));
    }
}
