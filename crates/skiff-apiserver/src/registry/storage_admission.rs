//! kube-apiserver's default storage admission plugins: `DefaultStorageClass` (a claim created
//! naming no class gets the default class's name; an explicit `""` stays), `StorageObjectInUse
//! Protection` (every new claim and volume carries its protection finalizer, which a
//! controller removes once nothing uses it) and `PersistentVolumeClaimResize` (a claim's
//! storage grows only when it is bound and its class allows expansion), each in upstream's
//! words. Only writes of the objects themselves are admitted, not of their status.

use super::{ObjectRef, Registry};
use serde_json::{Value, json};
use skiff_core::kinds::{self, Kind, Part, persistentvolume, persistentvolumeclaim, storageclass};
use skiff_core::selector::{FieldSelector, LabelSelector};
use skiff_core::{ApiError, meta};

/// Whether `kind` is the core/v1 kind `name`.
fn is_core(kind: &dyn Kind, name: &str) -> bool {
    let info = kind.info();
    info.group.is_empty() && info.kind == name
}

/// `admission.NewForbidden` for a claim.
fn forbidden(claim: &Value, why: &str) -> ApiError {
    ApiError::Forbidden(format!("persistentvolumeclaims {:?} is forbidden: {why}", meta::name(claim)))
}

/// Add `finalizer` to `obj` unless it has it.
fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let md = meta::metadata_mut(obj);
    let list = md.entry("finalizers").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut()
        && !items.iter().any(|f| f == finalizer)
    {
        items.push(json!(finalizer));
    }
}

/// The mutating plugins, on create: defaulted and prepared `obj`, before validation.
pub(super) async fn admit_create(registry: &Registry, kind: &dyn Kind, obj: &mut Value) -> Result<(), ApiError> {
    if is_core(kind, "PersistentVolume") {
        add_finalizer(obj, persistentvolume::PROTECTION_FINALIZER);
    }
    if !is_core(kind, "PersistentVolumeClaim") {
        return Ok(());
    }
    if !persistentvolumeclaim::names_class(obj) {
        let (labels, fields) = (LabelSelector::default(), FieldSelector::default());
        let (classes, _) = registry.list(kinds::STORAGE_CLASSES, None, &labels, &fields).await?;
        if let Some(class) = storageclass::default_class(&classes)
            && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("storageClassName".into(), json!(meta::name(class)));
        }
    }
    add_finalizer(obj, persistentvolumeclaim::PROTECTION_FINALIZER);
    Ok(())
}

/// `PersistentVolumeClaimResize`, after validation: more storage only for a bound claim whose
/// class (unchanged) has `allowVolumeExpansion: true`.
pub(super) async fn admit_update(
    registry: &Registry,
    kind: &dyn Kind,
    part: Part,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if !is_core(kind, "PersistentVolumeClaim") || part != Part::Main {
        return Ok(());
    }
    if persistentvolumeclaim::requested_storage(new) <= persistentvolumeclaim::requested_storage(old) {
        return Ok(());
    }
    if old.pointer("/status/phase").and_then(Value::as_str) != Some("Bound") {
        return Err(forbidden(new, "Only bound persistent volume claims can be expanded"));
    }
    let (class, old_class) = (persistentvolumeclaim::class_of(new), persistentvolumeclaim::class_of(old));
    let allowed = if class.is_empty() || class != old_class {
        false
    } else {
        let at = ObjectRef { kind: kinds::STORAGE_CLASSES, namespace: "", name: &class };
        match registry.get(at).await {
            Ok(sc) => storageclass::allows_expansion(&sc),
            Err(ApiError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        }
    };
    if allowed {
        return Ok(());
    }
    Err(forbidden(
        new,
        "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{ObjectRef, Registry, WriteOptions};
    use serde_json::{Value, json};
    use skiff_core::kinds::{self, Part};
    use skiff_core::meta;
    use skiff_store::MemoryStore;
    use std::sync::Arc;

    fn opts() -> WriteOptions {
        WriteOptions { field_manager: "test".into(), ..Default::default() }
    }

    async fn registry() -> Registry {
        let reg = Registry::new(Arc::new(MemoryStore::new()));
        reg.ensure_namespace("default").await.expect("default namespace");
        reg
    }

    async fn class(reg: &Registry, name: &str, default: bool, expand: bool) {
        let mut sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": "skiff.dev/local-path", "allowVolumeExpansion": expand});
        if default {
            sc["metadata"]["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        reg.create(kinds::STORAGE_CLASSES, "", sc, &opts()).await.expect("class");
    }

    fn claim(name: &str, class: Option<&str>) -> Value {
        let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        if let Some(c) = class {
            pvc["spec"]["storageClassName"] = json!(c);
        }
        pvc
    }

    fn at(name: &str) -> ObjectRef<'_> {
        ObjectRef { kind: kinds::PERSISTENT_VOLUME_CLAIMS, namespace: "default", name }
    }

    #[tokio::test]
    async fn claims_get_the_default_class_and_the_finalizer() {
        let reg = registry().await;
        let none = reg.create(kinds::PERSISTENT_VOLUME_CLAIMS, "default", claim("a", None), &opts()).await.expect("a");
        assert!(none["spec"].get("storageClassName").is_none(), "no default class yet: {none}");
        assert_eq!(meta::finalizers(&none), ["kubernetes.io/pvc-protection"]);
        class(&reg, "local-path", true, false).await;
        class(&reg, "fast", false, false).await;
        let pvc = reg.create(kinds::PERSISTENT_VOLUME_CLAIMS, "default", claim("b", None), &opts()).await.expect("b");
        assert_eq!(pvc["spec"]["storageClassName"], "local-path");
        let empty = reg.create(kinds::PERSISTENT_VOLUME_CLAIMS, "default", claim("c", Some("")), &opts()).await;
        assert_eq!(empty.expect("c")["spec"]["storageClassName"], "");
        let named = reg.create(kinds::PERSISTENT_VOLUME_CLAIMS, "default", claim("d", Some("fast")), &opts()).await;
        assert_eq!(named.expect("d")["spec"]["storageClassName"], "fast");
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1", "finalizers": ["x"]},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}});
        let pv = reg.create(kinds::PERSISTENT_VOLUMES, "", pv, &opts()).await.expect("pv");
        assert_eq!(meta::finalizers(&pv), ["x", "kubernetes.io/pv-protection"]);
        assert_eq!(pv["status"]["phase"], "Pending");
    }

    #[tokio::test]
    async fn claims_grow_only_bound_and_where_the_class_allows() {
        let reg = registry().await;
        class(&reg, "fixed", false, false).await;
        class(&reg, "elastic", false, true).await;
        for (name, class) in [("f", "fixed"), ("e", "elastic"), ("u", "elastic")] {
            reg.create(kinds::PERSISTENT_VOLUME_CLAIMS, "default", claim(name, Some(class)), &opts())
                .await
                .expect(name);
        }
        for name in ["f", "e"] {
            let mut pvc = reg.get(at(name)).await.expect("claim");
            pvc["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
            reg.update(at(name), pvc, Part::Status, &opts()).await.expect("bound");
        }
        let grow = |name: &'static str| {
            let reg = reg.clone();
            async move {
                let mut pvc = reg.get(at(name)).await.expect("claim");
                pvc["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
                reg.update(at(name), pvc, Part::Main, &opts()).await
            }
        };
        let grown = grow("e").await.expect("elastic grows");
        assert_eq!(grown["spec"]["resources"]["requests"]["storage"], "2Gi");
        let refused = grow("f").await.expect_err("fixed class");
        assert_eq!(refused.code(), 403);
        assert_eq!(
            refused.to_string(),
            "persistentvolumeclaims \"f\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
        );
        // an unbound claim's spec is fixed: validation refuses it before admission
        assert_eq!(grow("u").await.expect_err("unbound").code(), 422);
    }
}
