//! core/v1 ServiceAccounts: the identities of programs in pods. Validation
//! (`ValidateServiceAccount`), the strategy's `cleanSecretReferences` and the Table columns
//! (`printServiceAccount`) as Kubernetes 1.32's. Discovery lists `serviceaccounts/token`
//! (TokenRequest), which the API server serves beside the kind (it issues tokens).

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, keep_status, roundtrip, schema_of,
};
use crate::field::ErrorList;
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct ServiceAccounts;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "serviceaccounts",
    singular: "serviceaccount",
    kind: "ServiceAccount",
    namespaced: true,
    short_names: &["sa"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[("token", "authentication.k8s.io/v1/TokenRequest", &["create"])],
};

/// The SECRETS column's description is `core/v1`'s doc of `secrets`, as upstream's printer takes it.
static COLUMNS: [Column; 3] = [
    NAME_COLUMN,
    Column::new(
        "Secrets",
        0,
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
    ),
    AGE_COLUMN,
];

/// `cleanSecretReferences`: a secret reference keeps its name only (the secrets are in the
/// account's own namespace; nothing else of a reference means anything here).
fn clean_secret_references(obj: &mut Value) {
    for secret in obj.get_mut("secrets").and_then(Value::as_array_mut).into_iter().flatten() {
        let name = secret.get("name").filter(|n| n.as_str().is_some_and(|n| !n.is_empty())).cloned();
        *secret = match name {
            Some(name) => json!({"name": name}),
            None => json!({}),
        };
    }
}

impl Kind for ServiceAccounts {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ServiceAccount>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ServiceAccount>(raw)
    }
    fn prepare_create(&self, obj: &mut Value) {
        clean_secret_references(obj);
    }
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        keep_status(old, new);
        clean_secret_references(new);
    }
    /// `ValidateServiceAccount`: the metadata, with the name a DNS subdomain.
    fn validate(&self, obj: &Value) -> ErrorList {
        meta::validate(obj, true, false)
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let secrets = obj.get("secrets").and_then(Value::as_array).map_or(0, Vec::len);
        vec![json!(meta::name(obj)), json!(secrets), json!(meta::age(obj, now))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(rest: Value) -> Value {
        let mut obj =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": "default"}});
        obj.as_object_mut().expect("object").extend(rest.as_object().cloned().unwrap_or_default());
        ServiceAccounts.normalize(&obj).expect("decodes")
    }

    #[test]
    fn names_are_dns_subdomains() {
        assert!(ServiceAccounts.validate(&account(json!({"automountServiceAccountToken": false}))).is_empty());
        let bad = account(json!({"metadata": {"name": "App_1", "namespace": "default"}}));
        let errs: Vec<String> = ServiceAccounts.validate(&bad).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "metadata.name: Invalid value: \"App_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        let no_namespace = account(json!({"metadata": {"name": "app"}}));
        let errs: Vec<String> = ServiceAccounts.validate(&no_namespace).iter().map(ToString::to_string).collect();
        assert_eq!(errs, ["metadata.namespace: Required value"]);
    }

    #[test]
    fn secret_references_keep_their_names_only() {
        let secrets = json!({"secrets": [{"name": "token", "namespace": "other", "uid": "u", "kind": "Secret"}, {"kind": "Secret"}],
            "imagePullSecrets": [{"name": "registry"}]});
        let mut created = account(secrets.clone());
        ServiceAccounts.prepare_create(&mut created);
        assert_eq!(created["secrets"], json!([{"name": "token"}, {}]));
        assert_eq!(created["imagePullSecrets"], json!([{"name": "registry"}]));
        let mut updated = account(secrets);
        ServiceAccounts.prepare_update(&created, &mut updated);
        assert_eq!(updated["secrets"], json!([{"name": "token"}, {}]));
    }

    #[test]
    fn table_counts_secrets() {
        let mut obj = account(json!({"secrets": [{"name": "a"}, {"name": "b"}]}));
        obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().expect("time");
        assert_eq!(ServiceAccounts.cells(&obj, now), [json!("app"), json!(2), json!("60m")]);
        assert_eq!(ServiceAccounts.cells(&account(json!({})), now)[1], json!(0));
        let names: Vec<&str> = ServiceAccounts.columns().iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Secrets", "Age"]);
    }

    #[test]
    fn discovery_lists_the_token_subresource() {
        let i = ServiceAccounts.info();
        assert_eq!((i.short_names, i.namespaced), (&["sa"][..], true));
        let (name, kind, verbs) = i.subresources[0];
        assert_eq!(
            (name, i.response_kind(kind), verbs),
            ("token", ("authentication.k8s.io", "v1", "TokenRequest"), &["create"][..])
        );
        assert_eq!(ServiceAccounts.part("token"), None, "not a part of the object");
    }
}
