//! The ServiceAccount admission plugin (`plugin/pkg/admission/serviceaccount`) on pod create:
//! the pod runs as `spec.serviceAccountName` (`default` unless named), which must exist, and
//! unless `automountServiceAccountToken` is false (the pod's word first, then the account's) it
//! gets the `kube-api-access-XXXXX` projected volume (a bound token, the cluster CA, the
//! namespace) mounted read-only at `/var/run/secrets/kubernetes.io/serviceaccount` in every init
//! and app container that has nothing there (ephemeral containers are added later and get
//! nothing). A pod naming no pull secrets gets the account's.
//!
//! The `default` account is made by the controller manager moments after its namespace: like
//! upstream, a lookup of it that misses is retried for a second or two before the create fails.

use super::{ObjectRef, Registry, generate_name};
use serde_json::{Value, json};
use skiff_core::kinds::{self, Kind};
use skiff_core::{ApiError, meta};
use std::time::Duration;

pub const DEFAULT_ACCOUNT: &str = "default";
/// Where the account's credentials appear in containers.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const VOLUME_PREFIX: &str = "kube-api-access-";
/// The projected token's lifetime: an hour and seven seconds, the mark by which the API server
/// knows a kubelet's token (and extends it).
const TOKEN_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// Mirror pods (a node's static pods) are left alone.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Lookups of the `default` account before giving up (upstream: 10, 100-200 ms apart).
const DEFAULT_ACCOUNT_ATTEMPTS: usize = 10;

/// Whether `kind` is core/v1 Pod.
fn is_pod(kind: &dyn Kind) -> bool {
    let info = kind.info();
    info.group.is_empty() && info.kind == "Pod"
}

/// Admit `pod` (defaulted, about to be validated) into `namespace`; other kinds pass.
pub(super) async fn admit(
    registry: &Registry,
    kind: &dyn Kind,
    namespace: &str,
    pod: &mut Value,
) -> Result<(), ApiError> {
    if !is_pod(kind)
        || pod.pointer(&format!("/metadata/annotations/{}", MIRROR_ANNOTATION.replace('/', "~1"))).is_some()
    {
        return Ok(());
    }
    // NamespaceLifecycle runs first upstream: a missing namespace is that, not a missing account.
    registry.namespace_is_usable(namespace).await?;
    let name = match pod.pointer("/spec/serviceAccountName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => DEFAULT_ACCOUNT.to_string(),
    };
    let account = lookup(registry, namespace, &name).await.map_err(|e| {
        ApiError::Forbidden(format!(
            "pods {:?} is forbidden: error looking up service account {namespace}/{name}: {e}",
            pod_name(pod)
        ))
    })?;
    let spec =
        pod.get_mut("spec").and_then(Value::as_object_mut).ok_or(ApiError::BadRequest("pod has no spec".into()))?;
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
    let pod_says = spec.get("automountServiceAccountToken").and_then(Value::as_bool);
    let account_says = account.get("automountServiceAccountToken").and_then(Value::as_bool);
    if pod_says.or(account_says).unwrap_or(true) {
        mount_token(spec);
    }
    let no_pull_secrets = spec.get("imagePullSecrets").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if let Some(secrets) = account.get("imagePullSecrets").and_then(Value::as_array).filter(|s| !s.is_empty())
        && no_pull_secrets
    {
        let names: Vec<Value> =
            secrets.iter().map(|s| json!({"name": s.get("name").cloned().unwrap_or(json!(""))})).collect();
        spec.insert("imagePullSecrets".into(), Value::Array(names));
    }
    Ok(())
}

/// The pod's name as admission errors give it: its name, or its generateName before one is made.
fn pod_name(pod: &Value) -> &str {
    match meta::name(pod) {
        "" => pod.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or("Unknown"),
        name => name,
    }
}

/// The account, retrying a missing `default` while its controller makes it.
async fn lookup(registry: &Registry, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let attempts = if name == DEFAULT_ACCOUNT { DEFAULT_ACCOUNT_ATTEMPTS } else { 1 };
    let pause = Duration::from_millis(100 + rand::random_range(0..100));
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(pause).await;
        }
        match registry.get(ObjectRef { kind: kinds::SERVICE_ACCOUNTS, namespace, name }).await {
            Ok(account) => return Ok(account),
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // Upstream's NotFound here names the resource in the singular.
    Err(ApiError::not_found("serviceaccount", name))
}

/// `TokenVolumeSource()`: the bound token, the cluster CA and the namespace.
fn token_volume(name: &str) -> Value {
    json!({"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
}

/// `mountServiceAccountToken`: the mount in every init and app container with nothing at the
/// path, and the volume (an existing `kube-api-access-*` one is reused) if one needs it.
fn mount_token(spec: &mut serde_json::Map<String, Value>) {
    let existing = (spec.get("volumes").and_then(Value::as_array).into_iter().flatten())
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .map(String::from);
    let volume = existing.clone().unwrap_or_else(|| generate_name(VOLUME_PREFIX));
    let mount = json!({"name": volume, "readOnly": true, "mountPath": MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        for c in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            let mounts = c.as_object_mut().map(|c| c.entry("volumeMounts").or_insert_with(|| json!([])));
            let Some(mounts) = mounts.and_then(Value::as_array_mut) else { continue };
            if !mounts.iter().any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH)) {
                mounts.push(mount.clone());
                needed = true;
            }
        }
    }
    if needed && existing.is_none() {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(volumes) = volumes.as_array_mut() {
            volumes.push(token_volume(&volume));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::WriteOptions;
    use std::sync::Arc;

    async fn registry() -> Registry {
        let registry = Registry::new(Arc::new(skiff_store::MemoryStore::new()));
        let opts = WriteOptions::default();
        registry.create(kinds::NAMESPACES, "", json!({"metadata": {"name": "shop"}}), &opts).await.expect("ns");
        registry
    }

    async fn account(registry: &Registry, obj: Value) {
        registry.create(kinds::SERVICE_ACCOUNTS, "shop", obj, &WriteOptions::default()).await.expect("sa");
    }

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}, "spec": spec})
    }

    #[tokio::test]
    async fn the_token_volume_is_mounted_in_init_and_app_containers() {
        let registry = registry().await;
        account(&registry, json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "regcred"}]})).await;
        let mut p = pod(json!({"initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "app", "image": "busybox"},
                {"name": "own", "image": "busybox", "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}],
            "volumes": [{"name": "mine", "emptyDir": {}}]}));
        admit(&registry, kinds::PODS, "shop", &mut p).await.expect("admitted");
        let spec = &p["spec"];
        assert_eq!(
            (spec["serviceAccountName"].as_str(), spec["serviceAccount"].as_str()),
            (Some("default"), Some("default"))
        );
        let volume = spec["volumes"][1].clone();
        let name = volume["name"].as_str().expect("name").to_string();
        assert!(name.starts_with("kube-api-access-") && name.len() == 21, "{name}");
        assert_eq!(volume, token_volume(&name));
        let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
        assert_eq!(spec["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(spec["containers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(
            spec["containers"][1]["volumeMounts"],
            json!([{"name": "mine", "mountPath": MOUNT_PATH}]),
            "its own stays"
        );
        assert!(spec["ephemeralContainers"][0].get("volumeMounts").is_none());
        assert_eq!(spec["imagePullSecrets"], json!([{"name": "regcred"}]));
        // Again (a pod's manifest exported with its volume): the volume is reused.
        let mut again = pod(json!({"containers": [{"name": "app", "image": "busybox"}], "volumes": [volume.clone()]}));
        admit(&registry, kinds::PODS, "shop", &mut again).await.expect("admitted");
        assert_eq!(again["spec"]["volumes"], json!([volume]));
        assert_eq!(again["spec"]["containers"][0]["volumeMounts"], json!([mount]));
    }

    #[tokio::test]
    async fn automount_off_on_the_pod_or_the_account() {
        let registry = registry().await;
        account(&registry, json!({"metadata": {"name": "quiet"}, "automountServiceAccountToken": false})).await;
        account(&registry, json!({"metadata": {"name": "default"}})).await;
        let mut p = pod(json!({"serviceAccountName": "quiet", "containers": [{"name": "app", "image": "busybox"}]}));
        admit(&registry, kinds::PODS, "shop", &mut p).await.expect("admitted");
        assert!(p["spec"].get("volumes").is_none());
        // The pod's word wins over the account's.
        let spec = json!({"serviceAccountName": "quiet", "automountServiceAccountToken": true, "containers": [{"name": "app", "image": "busybox"}]});
        let mut p = pod(spec);
        admit(&registry, kinds::PODS, "shop", &mut p).await.expect("admitted");
        assert_eq!(p["spec"]["volumes"].as_array().map(Vec::len), Some(1));
        let mut p =
            pod(json!({"automountServiceAccountToken": false, "containers": [{"name": "app", "image": "busybox"}]}));
        admit(&registry, kinds::PODS, "shop", &mut p).await.expect("admitted");
        assert!(p["spec"].get("volumes").is_none());
    }

    #[tokio::test]
    async fn a_missing_account_is_forbidden_in_upstreams_words() {
        let registry = registry().await;
        let mut p = pod(json!({"serviceAccountName": "ghost", "containers": [{"name": "app", "image": "busybox"}]}));
        let err = admit(&registry, kinds::PODS, "shop", &mut p).await.expect_err("no account");
        assert_eq!(
            err.to_string(),
            "pods \"web\" is forbidden: error looking up service account shop/ghost: serviceaccount \"ghost\" not found"
        );
        assert_eq!(err.code(), 403);
        // `default` is waited for a while: made meanwhile, the pod is admitted.
        let waiting = registry.clone();
        let maker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            account(&waiting, json!({"metadata": {"name": "default"}})).await;
        });
        let mut p = pod(json!({"containers": [{"name": "app", "image": "busybox"}]}));
        admit(&registry, kinds::PODS, "shop", &mut p).await.expect("admitted once made");
        maker.await.expect("maker");
        // Not pods: untouched.
        let mut cm = json!({"metadata": {"name": "c"}});
        let configmaps = kinds::by_resource("", "v1", "configmaps").expect("kind");
        admit(&registry, configmaps, "shop", &mut cm).await.expect("not a pod");
        assert_eq!(cm, json!({"metadata": {"name": "c"}}));
    }
}
