//! Leases (`coordination.k8s.io/v1`): the leader election of controllers and the heartbeats of
//! nodes; the first kind outside the core group.

use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct Leases;

static INFO: ResourceInfo = ResourceInfo {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    singular: "lease",
    kind: "Lease",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

static COLUMNS: [Column; 3] = [
    NAME_COLUMN,
    Column::new(
        "Holder",
        0,
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE_COLUMN,
];

/// The one strategy coordinated leader election knows.
const STRATEGIES: &[&str] = &["OldestEmulationVersion"];

impl Kind for Leases {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Lease>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Lease>(raw)
    }
    /// Upstream's `ValidateLease`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let spec = Path::new("spec");
        let int = |field: &str| obj.pointer(&format!("/spec/{field}")).and_then(Value::as_i64);
        if let Some(d) = int("leaseDurationSeconds").filter(|d| *d <= 0) {
            errs.push(FieldError::invalid(&spec.child("leaseDurationSeconds"), d, "must be greater than 0"));
        }
        if let Some(t) = int("leaseTransitions").filter(|t| *t < 0) {
            errs.push(FieldError::invalid(&spec.child("leaseTransitions"), t, "must be greater than or equal to 0"));
        }
        let text = |field: &str| obj.pointer(&format!("/spec/{field}")).and_then(Value::as_str).unwrap_or("");
        let strategy = text("strategy");
        if !strategy.is_empty() && !STRATEGIES.contains(&strategy) {
            errs.push(FieldError::not_supported(&spec.child("strategy"), strategy, STRATEGIES));
        }
        if !text("preferredHolder").is_empty() && strategy.is_empty() {
            errs.push(FieldError::forbidden(
                &spec.child("preferredHolder"),
                "may only be specified if `strategy` is defined",
            ));
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let holder = obj.pointer("/spec/holderIdentity").and_then(Value::as_str).unwrap_or("");
        vec![json!(meta::name(obj)), json!(holder), json!(meta::age(obj, now))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        let obj = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": "default"}, "spec": spec});
        Leases.validate(&obj).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn validates_the_spec_as_upstream() {
        assert!(errors(json!({"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 0})).is_empty());
        assert_eq!(
            errors(json!({"leaseDurationSeconds": 0, "leaseTransitions": -1})),
            [
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
        assert_eq!(
            errors(json!({"preferredHolder": "b"})),
            ["spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"]
        );
        assert_eq!(
            errors(json!({"strategy": "Newest"})),
            ["spec.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\""]
        );
    }

    #[test]
    fn table_shows_the_holder() {
        let obj = json!({"metadata": {"name": "skiff-controller-manager", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"holderIdentity": "host_1234"}});
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().expect("time");
        assert_eq!(Leases.cells(&obj, now), [json!("skiff-controller-manager"), json!("host_1234"), json!("60s")]);
    }
}
