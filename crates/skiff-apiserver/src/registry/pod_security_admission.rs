//! Pod Security admission on the registry's writes, as kube-apiserver's `PodSecurity` plugin
//! with its defaults (no exemptions): a pod is checked against its namespace's
//! `pod-security.kubernetes.io/` levels when created, and when an update changes its images or
//! adds containers (enforce refuses with 403 Forbidden, warn answers `Warning` headers, audit
//! annotates the request); a workload's pod template against warn and audit; a namespace's
//! labels must be valid, and an enforce level tightened on it is checked against the pods
//! already there (warnings). The decisions are `skiff_core::pod_security::admission`'s; this
//! module reads the namespace and its pods and carries them out.

use super::{ObjectRef, Registry};
use serde_json::Value;
use skiff_core::field::go_quote;
use skiff_core::kinds::{self, Kind, Part};
use skiff_core::pod_security::admission::{
    self, AUDIT_VIOLATIONS_ANNOTATION, Decision, ERROR_ANNOTATION, NamespaceCheck,
};
use skiff_core::selector::{FieldSelector, LabelSelector};
use skiff_core::{ApiError, meta};
use std::collections::BTreeMap;

/// What upstream warns when the pods of a namespace cannot be listed for the check.
const LIST_FAILED: &str = "failed to list pods while checking new PodSecurity enforce level";

impl Registry {
    /// Admit a write of `obj` to `part` of a `kind` object in `namespace` (`old`: the object it
    /// replaces, on updates), after validation as upstream's validating admission runs: Err
    /// refuses it; Ok holds the warnings for the client.
    pub(super) async fn admit_pod_security(
        &self,
        kind: &dyn Kind,
        namespace: &str,
        obj: &Value,
        old: Option<&Value>,
        part: Part,
    ) -> Result<Vec<String>, ApiError> {
        let info = kind.info();
        let decision = match (info.group, info.kind) {
            // Every part of a pod but its status can change what the checks read
            // (`pods/ephemeralcontainers` adds containers).
            ("", "Pod") if part != Part::Status => {
                let labels = self.namespace_labels(namespace).await.map_err(|e| {
                    tracing::warn!(namespace, error = %e, "PodSecurity: failed to fetch pod namespace");
                    ApiError::Internal(format!("failed to lookup namespace {}", go_quote(namespace)))
                })?;
                admission::pod(&labels, obj, old).map_err(|e| ApiError::BadRequest(e.to_string()))?
            }
            ("", "Namespace") if part == Part::Main => return self.admit_namespace(obj, old).await,
            (group, kind) if part == Part::Main => {
                let Some(template) = admission::template_pointer(group, kind) else { return Ok(vec![]) };
                match self.namespace_labels(namespace).await {
                    Ok(labels) => admission::pod_template(&labels, obj.pointer(template)),
                    // Workloads are only warned about: a namespace that cannot be read admits them.
                    Err(e) => Decision {
                        audit: BTreeMap::from([(
                            ERROR_ANNOTATION.to_string(),
                            format!("failed to lookup namespace {}: {e}", go_quote(namespace)),
                        )]),
                        ..Decision::default()
                    },
                }
            }
            _ => return Ok(vec![]),
        };
        record_audit(info.plural, namespace, meta::name(obj), &decision.audit);
        match decision.denied {
            Some(why) => {
                Err(ApiError::Forbidden(format!("{} {} is forbidden: {why}", info.plural, go_quote(meta::name(obj)))))
            }
            None => Ok(decision.warnings),
        }
    }

    async fn namespace_labels(&self, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let ns = self.get(ObjectRef { kind: kinds::NAMESPACES, namespace: "", name }).await?;
        Ok(meta::labels(&ns))
    }

    /// A namespace created (`old` None) or updated: its labels validated (422 as upstream), and
    /// the warnings for its pods if the enforce level tightened.
    async fn admit_namespace(&self, obj: &Value, old: Option<&Value>) -> Result<Vec<String>, ApiError> {
        let name = meta::name(obj);
        let old_labels = old.map(meta::labels);
        match admission::namespace(&meta::labels(obj), old_labels.as_ref()) {
            Err(errs) => Err(ApiError::invalid("Namespace", name, errs)),
            Ok(NamespaceCheck::Done) => Ok(vec![]),
            Ok(NamespaceCheck::CheckPods(enforce)) => {
                let pods =
                    self.list(kinds::PODS, Some(name), &LabelSelector::default(), &FieldSelector::default()).await;
                match pods {
                    Ok((pods, _)) => Ok(admission::existing_pods(name, enforce, &pods)),
                    Err(e) => {
                        tracing::warn!(namespace = name, error = %e, "PodSecurity: failed to list pods");
                        Ok(vec![LIST_FAILED.to_string()])
                    }
                }
            }
        }
    }
}

/// The audit annotations of a decision. There is no audit log yet: the ones that matter
/// (violations, errors) are logged, and this is where an audit event will take them all.
fn record_audit(resource: &str, namespace: &str, name: &str, annotations: &BTreeMap<String, String>) {
    let noteworthy =
        annotations.contains_key(AUDIT_VIOLATIONS_ANNOTATION) || annotations.contains_key(ERROR_ANNOTATION);
    if !noteworthy {
        return;
    }
    for (key, value) in annotations {
        tracing::info!(resource, namespace, name, "audit annotation {key}: {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::WriteOptions;
    use super::*;
    use serde_json::json;
    use skiff_store::MemoryStore;
    use std::sync::Arc;

    fn opts() -> WriteOptions {
        WriteOptions { field_manager: "test".into(), ..Default::default() }
    }

    /// A registry with namespace `shop` labelled `labels` (and its default ServiceAccount).
    async fn registry(labels: Value) -> Registry {
        let reg = Registry::new(Arc::new(MemoryStore::new()));
        let ns = json!({"metadata": {"name": "shop", "labels": labels}});
        reg.create(kinds::NAMESPACES, "", ns, &opts()).await.expect("namespace");
        let sa = json!({"metadata": {"name": "default"}});
        reg.create(kinds::SERVICE_ACCOUNTS, "shop", sa, &opts()).await.expect("service account");
        reg
    }

    fn pod(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name}, "spec": spec})
    }

    fn privileged(name: &str) -> Value {
        pod(name, json!({"containers": [{"name": "web", "image": "nginx", "securityContext": {"privileged": true}}]}))
    }

    fn compliant(name: &str) -> Value {
        pod(
            name,
            json!({
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "web", "image": "nginx", "securityContext":
                    {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            }),
        )
    }

    fn at<'a>(kind: &'static dyn Kind, name: &'a str) -> ObjectRef<'a> {
        ObjectRef { kind, namespace: "shop", name }
    }

    #[tokio::test]
    async fn enforce_refuses_a_violating_pod_with_upstreams_words_and_stores_nothing() {
        let reg = registry(json!({"pod-security.kubernetes.io/enforce": "restricted"})).await;
        let refused = reg.create(kinds::PODS, "shop", privileged("web"), &opts()).await.expect_err("refused");
        assert_eq!(refused.code(), 403);
        assert_eq!(
            refused.to_string(),
            concat!(
                r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": "#,
                r#"privileged (container "web" must not set securityContext.privileged=true), "#,
                r#"allowPrivilegeEscalation != false (container "web" must set securityContext.allowPrivilegeEscalation=false), "#,
                r#"unrestricted capabilities (container "web" must set securityContext.capabilities.drop=["ALL"]), "#,
                r#"runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true), "#,
                r#"seccompProfile (pod or container "web" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
            )
        );
        assert_eq!(reg.get(at(kinds::PODS, "web")).await.map_err(|e| e.code()).err(), Some(404));
        let dry = WriteOptions { dry_run: true, ..opts() };
        assert_eq!(
            reg.create(kinds::PODS, "shop", privileged("web"), &dry).await.map_err(|e| e.code()).err(),
            Some(403)
        );
        let ok = reg.create_with_warnings(kinds::PODS, "shop", compliant("ok"), &opts()).await.expect("compliant pod");
        assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
    }

    #[tokio::test]
    async fn warn_admits_with_a_warning() {
        let reg = registry(json!({"pod-security.kubernetes.io/warn": "baseline"})).await;
        let spec = json!({"hostNetwork": true, "containers": [{"name": "web", "image": "nginx"}]});
        let created = reg.create_with_warnings(kinds::PODS, "shop", pod("web", spec), &opts()).await.expect("created");
        assert_eq!(
            created.warnings,
            [r#"would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#]
        );
        assert_eq!(created.object["metadata"]["name"], "web");
    }

    #[tokio::test]
    async fn workloads_are_warned_not_refused() {
        let reg = registry(json!({"pod-security.kubernetes.io/enforce": "baseline"})).await;
        let deployments = kinds::by_resource("apps", "v1", "deployments").expect("deployments");
        let deployment = json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"hostPID": true, "containers": [{"name": "web", "image": "nginx"}]}},
        }});
        let created = reg.create_with_warnings(deployments, "shop", deployment, &opts()).await.expect("created");
        assert_eq!(
            created.warnings,
            [r#"would violate PodSecurity "baseline:latest": host namespaces (hostPID=true)"#]
        );
    }

    #[tokio::test]
    async fn pod_updates_are_checked_when_their_images_change() {
        let reg = registry(json!({})).await;
        let spec = json!({"hostIPC": true, "containers": [{"name": "web", "image": "nginx"}]});
        let created = reg.create(kinds::PODS, "shop", pod("web", spec), &opts()).await.expect("created");
        // Tightening enforce warns about the pod already there.
        let mut ns = reg.get(ObjectRef { kind: kinds::NAMESPACES, namespace: "", name: "shop" }).await.expect("ns");
        ns["metadata"]["labels"] = json!({"pod-security.kubernetes.io/enforce": "baseline"});
        let nsref = ObjectRef { kind: kinds::NAMESPACES, namespace: "", name: "shop" };
        let labelled = reg.update_with_warnings(nsref, ns, Part::Main, &opts()).await.expect("labelled");
        assert_eq!(
            labelled.warnings,
            [
                r#"existing pods in namespace "shop" violate the new PodSecurity enforce level "baseline:latest""#,
                "web: host namespaces",
            ]
        );
        let mut relabelled = created.clone();
        relabelled["metadata"]["labels"] = json!({"tier": "front"});
        let relabelled =
            reg.update(at(kinds::PODS, "web"), relabelled, Part::Main, &opts()).await.expect("labels change");
        let mut new_image = relabelled;
        new_image["spec"]["containers"][0]["image"] = json!("nginx:2");
        let refused =
            reg.update(at(kinds::PODS, "web"), new_image, Part::Main, &opts()).await.expect_err("image change");
        assert!(
            refused.to_string().starts_with(
                r#"pods "web" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostIPC=true)"#
            ),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn invalid_namespace_labels_are_refused() {
        let reg = Registry::new(Arc::new(MemoryStore::new()));
        let ns = json!({"metadata": {"name": "shop", "labels": {"pod-security.kubernetes.io/enforce": "strict"}}});
        let refused = reg.create(kinds::NAMESPACES, "", ns, &opts()).await.expect_err("invalid");
        assert_eq!(refused.code(), 422);
        assert_eq!(
            refused.to_string(),
            r#"Namespace "shop" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
        );
    }
}
