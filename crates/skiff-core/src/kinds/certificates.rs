//! `certificates.k8s.io/v1` CertificateSigningRequests, as Kubernetes 1.32 stores them: the
//! strategies of the object and its `status` and `approval` subresources (the requestor set
//! from the creating user, each part changing only its own fields, condition timestamps
//! filled in), validation ([`validation`]), the `spec.signerName` field selector and the
//! Table of `kubectl get csr`. [`request`] reads PKCS#10 requests; [`signers`] holds the
//! well-known signers' rules, which the signing controller and admission apply.

pub mod request;
pub mod signers;
pub mod validation;

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, Part, ResourceInfo, TypedSchema, roundtrip, schema_of,
};
use crate::auth::UserInfo;
use crate::field::ErrorList;
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub const GROUP: &str = "certificates.k8s.io";
/// The subresource that adds Approved and Denied conditions (`kubectl certificate approve`).
pub const APPROVAL: &str = "approval";
pub const APPROVED: &str = "Approved";
pub const DENIED: &str = "Denied";
pub const FAILED: &str = "Failed";

pub struct CertificateSigningRequests;

static INFO: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    plural: "certificatesigningrequests",
    singular: "certificatesigningrequest",
    kind: "CertificateSigningRequest",
    namespaced: false,
    short_names: &["csr"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[
        (APPROVAL, "CertificateSigningRequest", &["get", "patch", "update"]),
        ("status", "CertificateSigningRequest", &["get", "patch", "update"]),
    ],
};

/// The descriptions are `certificates/v1beta1`'s docs, as 1.32's printer takes them.
static COLUMNS: [Column; 6] = [
    NAME_COLUMN,
    AGE_COLUMN,
    Column::new(
        "SignerName",
        0,
        "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client certificate, it is assigned\n    \"kubernetes.io/kube-apiserver-client-kubelet\".\n 2. If it's a kubelet serving certificate, it is assigned\n    \"kubernetes.io/kubelet-serving\".\n 3. Otherwise, it is assigned \"kubernetes.io/legacy-unknown\".\nDistribution of trust for signers happens out of band. You can select on this field using `spec.signerName`.",
    ),
    Column::new("Requestor", 0, "Base64-encoded PKCS#10 CSR data"),
    Column::new(
        "RequestedDuration",
        0,
        "expirationSeconds is the requested duration of validity of the issued certificate. The certificate signer may issue a certificate with a different validity duration so a client must check the delta between the notBefore and and notAfter fields in the issued certificate to determine the actual duration.\n\nThe v1.22+ in-tree implementations of the well-known Kubernetes signers will honor this field as long as the requested duration is not greater than the maximum duration they will honor per the --cluster-signing-duration CLI flag to the Kubernetes controller manager.\n\nCertificate signers may not honor this field for various reasons:\n\n  1. Old signer that is unaware of the field (such as the in-tree\n     implementations prior to v1.22)\n  2. Signer whose configured maximum is shorter than the requested duration\n  3. Signer whose configured minimum is longer than the requested duration\n\nThe minimum valid value for expirationSeconds is 600, i.e. 10 minutes.",
    ),
    Column::new("Condition", 0, "Conditions applied to the request, such as approval or denial."),
];

/// The conditions of `obj` (status.conditions), empty if none.
fn conditions(obj: &Value) -> &[Value] {
    obj.pointer("/status/conditions").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn has_condition(obj: &Value, kind: &str) -> bool {
    conditions(obj).iter().any(|c| c["type"] == kind)
}

/// `IsCertificateRequestApproved`: Approved and not Denied.
pub fn is_approved(obj: &Value) -> bool {
    has_condition(obj, APPROVED) && !has_condition(obj, DENIED)
}

/// `HasTrueCondition(Failed)`: a signer gave up on it.
pub fn has_failed(obj: &Value) -> bool {
    conditions(obj).iter().any(|c| c["type"] == FAILED && matches!(c["status"].as_str(), None | Some("" | "True")))
}

/// `spec.request`, decoded (JSON carries it in base64); empty if absent or not base64.
pub fn request_pem(obj: &Value) -> Vec<u8> {
    use base64::Engine;
    let text = obj.pointer("/spec/request").and_then(Value::as_str).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
}

pub fn signer_name(obj: &Value) -> &str {
    obj.pointer("/spec/signerName").and_then(Value::as_str).unwrap_or_default()
}

/// The strategy's `PrepareForCreate` of the requestor: whatever the client sent, the spec
/// names the creating user (nobody, for the server's own writes).
pub fn set_requestor(obj: &mut Value, user: Option<&UserInfo>) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
    for field in ["username", "uid", "groups", "extra"] {
        spec.remove(field);
    }
    let Some(user) = user else { return };
    if !user.name.is_empty() {
        spec.insert("username".into(), json!(user.name));
    }
    if !user.uid.is_empty() {
        spec.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        spec.insert("extra".into(), json!(user.extra));
    }
}

/// `populateConditionTimestamps`: a condition without times gets now, or (transition) the old
/// one of its type and status.
fn populate_condition_timestamps(new: &mut Value, old: &Value, now: Timestamp) {
    let now = crate::time::rfc3339(now);
    let old_conditions = conditions(old).to_vec();
    let Some(list) = new.pointer_mut("/status/conditions").and_then(Value::as_array_mut) else { return };
    let unset = |time: Option<&Value>| time.is_none_or(|t| t.is_null() || t == "");
    for c in list.iter_mut().filter_map(Value::as_object_mut) {
        if unset(c.get("lastUpdateTime")) {
            c.insert("lastUpdateTime".into(), json!(now));
        }
        if unset(c.get("lastTransitionTime")) {
            let earlier = old_conditions
                .iter()
                .find(|o| o["type"] == c["type"] && o["status"] == c["status"] && !unset(o.get("lastTransitionTime")));
            let at = earlier.map_or_else(|| json!(now), |o| o["lastTransitionTime"].clone());
            c.insert("lastTransitionTime".into(), at);
        }
    }
}

/// `preserveConditionInstances`: a status write keeps the Approved and Denied conditions as
/// they were, when it has as many of them (adding or removing them fails validation).
fn preserve_condition_instances(new: &mut Value, old: &Value, kind: &str) {
    let old_of: Vec<Value> = conditions(old).iter().filter(|c| c["type"] == kind).cloned().collect();
    let Some(list) = new.pointer_mut("/status/conditions").and_then(Value::as_array_mut) else { return };
    let positions: Vec<usize> = list.iter().enumerate().filter(|(_, c)| c["type"] == kind).map(|(i, _)| i).collect();
    if positions.len() != old_of.len() {
        return;
    }
    for (i, kept) in positions.into_iter().zip(old_of) {
        list[i] = kept;
    }
}

/// `old` with `new`'s resourceVersion (the precondition the write was made on).
fn old_with_version(old: &Value, new: &Value) -> Value {
    let mut merged = old.clone();
    merged["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"].clone();
    merged
}

impl Kind for CertificateSigningRequests {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<CertificateSigningRequest>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<CertificateSigningRequest>(raw)
    }
    /// Nobody creates a request already approved or issued.
    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({});
    }
    /// The object itself changes only its metadata: spec and status are the subresources'.
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        for part in ["spec", "status"] {
            match old.get(part) {
                Some(v) => new[part] = v.clone(),
                None => {
                    new.as_object_mut().map(|o| o.remove(part));
                }
            }
        }
    }
    /// The signer's write: the certificate and other conditions, never Approved or Denied.
    fn prepare_status_update(&self, old: &Value, new: &mut Value) {
        let mut merged = old_with_version(old, new);
        merged["status"] = new.get("status").cloned().unwrap_or_else(|| json!({}));
        preserve_condition_instances(&mut merged, old, APPROVED);
        preserve_condition_instances(&mut merged, old, DENIED);
        populate_condition_timestamps(&mut merged, old, Timestamp::now());
        *new = merged;
    }
    fn part(&self, subresource: &str) -> Option<Part> {
        (subresource == APPROVAL).then_some(Part::Named(APPROVAL))
    }
    /// The approver's write: the conditions only.
    fn prepare_part_update(&self, _part: &str, old: &Value, new: &mut Value) {
        let mut merged = old_with_version(old, new);
        match new.pointer("/status/conditions") {
            Some(c) => merged["status"]["conditions"] = c.clone(),
            None => {
                merged.get_mut("status").and_then(Value::as_object_mut).map(|s| s.remove("conditions"));
            }
        }
        populate_condition_timestamps(&mut merged, old, Timestamp::now());
        *new = merged;
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        validation::validate_create(obj)
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        validation::validate_update(Part::Main, old, new)
    }
    fn validate_part_update(&self, part: Part, old: &Value, new: &Value) -> ErrorList {
        validation::validate_update(part, old, new)
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).to_string()),
            "spec.signerName" => Some(signer_name(obj).to_string()),
            _ => None,
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    /// `printCertificateSigningRequest`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let signer = Some(signer_name(obj)).filter(|s| !s.is_empty()).unwrap_or("<none>");
        let duration = obj
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .map_or_else(|| "<none>".to_string(), crate::time::human_duration);
        let username = obj.pointer("/spec/username").and_then(Value::as_str).unwrap_or_default();
        vec![
            json!(meta::name(obj)),
            json!(meta::age(obj, now)),
            json!(signer),
            json!(username),
            json!(duration),
            json!(condition(obj)),
        ]
    }
}

/// `extractCSRStatus`: Denied, Approved or Pending, then Failed and Issued.
fn condition(obj: &Value) -> String {
    let mut status = if has_condition(obj, DENIED) {
        "Denied".to_string()
    } else if has_condition(obj, APPROVED) {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has_condition(obj, FAILED) {
        status.push_str(",Failed");
    }
    if obj.pointer("/status/certificate").and_then(Value::as_str).is_some_and(|c| !c.is_empty()) {
        status.push_str(",Issued");
    }
    status
}

#[cfg(test)]
mod tests {
    use super::request::fixtures::csr;
    use super::*;
    use base64::Engine;

    fn object(status: Value) -> Value {
        let request = base64::engine::general_purpose::STANDARD.encode(csr("bob", &["dev"]));
        let raw = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": "bob", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"request": request, "signerName": signers::KUBE_APISERVER_CLIENT, "usages": ["client auth"],
                "username": "mallory", "groups": ["system:masters"]},
            "status": status});
        CertificateSigningRequests.normalize(&raw).expect("decodes")
    }

    #[test]
    fn created_as_the_requestor_with_nothing_granted() {
        let mut obj = object(json!({"conditions": [{"type": "Approved", "status": "True"}], "certificate": "eA=="}));
        CertificateSigningRequests.prepare_create(&mut obj);
        let jane = UserInfo {
            name: "jane".into(),
            uid: "u1".into(),
            groups: vec!["dev".into(), "system:authenticated".into()],
            extra: [("scopes".to_string(), vec!["a".to_string()])].into(),
        };
        set_requestor(&mut obj, Some(&jane));
        assert_eq!(obj["status"], json!({}));
        assert_eq!(
            (&obj["spec"]["username"], &obj["spec"]["uid"], &obj["spec"]["groups"], &obj["spec"]["extra"]),
            (&json!("jane"), &json!("u1"), &json!(["dev", "system:authenticated"]), &json!({"scopes": ["a"]}))
        );
        assert!(CertificateSigningRequests.validate(&obj).is_empty());
        set_requestor(&mut obj, None);
        assert!(obj["spec"].get("username").is_none() && obj["spec"].get("groups").is_none());
    }

    #[test]
    fn each_part_writes_its_own_fields() {
        let old = object(json!({}));
        let mut approval = object(
            json!({"conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove"}], "certificate": "eA=="}),
        );
        approval["spec"]["signerName"] = json!("example.com/other");
        approval["metadata"]["resourceVersion"] = json!("7");
        CertificateSigningRequests.prepare_part_update(APPROVAL, &old, &mut approval);
        assert_eq!(approval["spec"], old["spec"], "the approver changes no spec");
        assert!(approval.pointer("/status/certificate").is_none(), "nor the certificate");
        let c = &approval["status"]["conditions"][0];
        assert_eq!((&c["type"], &c["reason"]), (&json!("Approved"), &json!("KubectlApprove")));
        assert!(c["lastUpdateTime"].is_string() && c["lastTransitionTime"] == c["lastUpdateTime"]);
        assert_eq!(approval["metadata"]["resourceVersion"], "7");

        // The signer keeps the approval as it was, and adds the certificate.
        let mut signed = approval.clone();
        signed["status"]["conditions"][0]["reason"] = json!("Changed");
        signed["status"]["certificate"] = json!("eA==");
        CertificateSigningRequests.prepare_status_update(&approval, &mut signed);
        assert_eq!(signed["status"]["conditions"], approval["status"]["conditions"]);
        assert_eq!(signed["status"]["certificate"], "eA==");

        // The object itself keeps spec and status.
        let mut main = signed.clone();
        main["status"] = json!({});
        main["spec"]["usages"] = json!(["server auth"]);
        main["metadata"]["labels"] = json!({"a": "b"});
        CertificateSigningRequests.prepare_update(&signed, &mut main);
        assert_eq!((&main["status"], &main["spec"]), (&signed["status"], &signed["spec"]));
        assert_eq!(main["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn a_failed_condition_keeps_its_transition_time() {
        let old = object(
            json!({"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        let mut new = object(json!({"conditions": [{"type": "Failed", "status": "True"}]}));
        populate_condition_timestamps(&mut new, &old, "2026-02-01T00:00:00Z".parse().expect("time"));
        let c = &new["status"]["conditions"][0];
        assert_eq!(
            (&c["lastTransitionTime"], &c["lastUpdateTime"]),
            (&json!("2026-01-01T00:00:00Z"), &json!("2026-02-01T00:00:00Z"))
        );
        assert!(has_failed(&new) && !is_approved(&new));
    }

    #[test]
    fn table_as_kubectl_get_csr() {
        let names: Vec<&str> = CertificateSigningRequests.columns().iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Age", "SignerName", "Requestor", "RequestedDuration", "Condition"]);
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().expect("time");
        let mut obj = object(json!({}));
        assert_eq!(
            CertificateSigningRequests.cells(&obj, now),
            [
                json!("bob"),
                json!("60m"),
                json!("kubernetes.io/kube-apiserver-client"),
                json!("mallory"),
                json!("<none>"),
                json!("Pending")
            ]
        );
        obj["spec"]["expirationSeconds"] = json!(86400);
        obj["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}], "certificate": "eA=="});
        let cells = CertificateSigningRequests.cells(&obj, now);
        assert_eq!((&cells[4], &cells[5]), (&json!("24h"), &json!("Approved,Failed,Issued")));
        obj["status"]["conditions"] = json!([{"type": "Denied", "status": "True"}]);
        assert_eq!(CertificateSigningRequests.cells(&obj, now)[5], json!("Denied,Issued"));
        assert!(!is_approved(&obj));
    }

    #[test]
    fn discovery_and_selectors() {
        let i = CertificateSigningRequests.info();
        assert_eq!(
            (i.short_names, i.namespaced, i.qualified_resource().as_str()),
            (&["csr"][..], false, "certificatesigningrequests.certificates.k8s.io")
        );
        let subs: Vec<&str> = i.subresources.iter().map(|s| s.0).collect();
        assert_eq!(subs, ["approval", "status"]);
        assert_eq!(CertificateSigningRequests.part("approval"), Some(Part::Named("approval")));
        let obj = object(json!({}));
        assert_eq!(
            CertificateSigningRequests.field_value(&obj, "spec.signerName").as_deref(),
            Some(signers::KUBE_APISERVER_CLIENT)
        );
        assert_eq!(CertificateSigningRequests.field_value(&obj, "spec.username"), None);
        assert!(request_pem(&obj).starts_with(b"-----BEGIN CERTIFICATE REQUEST-----"));
    }
}
