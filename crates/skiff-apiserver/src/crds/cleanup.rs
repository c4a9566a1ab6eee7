//! A deleted CustomResourceDefinition's objects go before it does (upstream's
//! `crd_finalizer`): `Terminating` says how far it got, every custom resource is deleted (their
//! own finalizers honoured, so this waits for them), then the cleanup finalizer is removed and
//! the definition goes.

use crate::registry::{DeleteOptions, ObjectRef, Registry, WriteOptions};
use futures::StreamExt;
use jiff::Timestamp;
use serde_json::{Value, json};
use skiff_core::ApiError;
use skiff_core::kinds::{self, Kind, Part, customresourcedefinition as crd};
use skiff_core::meta;
use skiff_core::selector::{FieldSelector, LabelSelector};
use std::time::Duration;

/// Deletes in flight at once: enough for the store to commit them in batches.
const CONCURRENT_DELETES: usize = 64;
/// How often objects held by their finalizers are looked at again.
const POLL: Duration = Duration::from_secs(1);

/// Clean up after definition `name` until it is gone.
pub async fn run(reg: &Registry, name: &str) {
    loop {
        match step(reg, name).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::warn!(crd = %name, error = %e, "deleting a definition's custom resources"),
        }
        tokio::time::sleep(POLL).await;
    }
}

fn at(name: &str) -> ObjectRef<'_> {
    ObjectRef { kind: kinds::CUSTOM_RESOURCE_DEFINITIONS, namespace: "", name }
}

/// Set the `Terminating` condition if it is not already so.
async fn terminating(
    reg: &Registry,
    def: &Value,
    status: &str,
    reason: &str,
    message: &str,
) -> Result<Value, ApiError> {
    let same = crd::condition(def, "Terminating").is_some_and(|c| c["status"] == status && c["reason"] == reason);
    if same {
        return Ok(def.clone());
    }
    let mut next = def.clone();
    crd::set_condition(&mut next, "Terminating", status, reason, message, Timestamp::now());
    reg.update(at(meta::name(def)), next, Part::Status, &WriteOptions::default()).await
}

/// The kind the definition's objects are read through: its storage version if served.
fn storage_kind(def: &Value) -> Option<&'static dyn Kind> {
    // A definition shadowing a built-in resource never owned its objects: nothing to delete.
    let served: Vec<&'static dyn Kind> =
        kinds::custom::kinds_of(def).into_iter().filter(|k| !crate::catalog::shadows_built_in(*k)).collect();
    let storage = crd::storage_version(def);
    served.iter().copied().find(|k| Some(k.info().version) == storage).or_else(|| served.first().copied())
}

/// One pass: whether the definition is done (gone, or its finalizer removed).
async fn step(reg: &Registry, name: &str) -> Result<bool, ApiError> {
    let def = match reg.get(at(name)).await {
        Ok(d) => d,
        Err(ApiError::NotFound { .. }) => return Ok(true),
        Err(e) => return Err(e),
    };
    if !meta::is_deleting(&def) || !meta::finalizers(&def).iter().any(|f| f == crd::CLEANUP_FINALIZER) {
        return Ok(true);
    }
    let def = match (crd::condition_is_true(&def, "Established"), storage_kind(&def)) {
        (true, Some(kind)) => {
            let def =
                terminating(reg, &def, "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress")
                    .await?;
            if delete_all(reg, kind).await? > 0 {
                return Ok(false);
            }
            terminating(reg, &def, "False", "InstanceDeletionCompleted", "removed all instances").await?
        }
        _ => terminating(reg, &def, "False", "NeverEstablished", "resource was never established").await?,
    };
    let mut next = def.clone();
    let finalizers: Vec<String> = meta::finalizers(&def).into_iter().filter(|f| f != crd::CLEANUP_FINALIZER).collect();
    next["metadata"]["finalizers"] = json!(finalizers);
    // Through /status, as upstream: its strategy keeps metadata and checks no spec rules.
    reg.update(at(name), next, Part::Status, &WriteOptions::default()).await?;
    Ok(true)
}

/// Delete every object of `kind` not already being deleted; how many remain (held by their
/// finalizers).
async fn delete_all(reg: &Registry, kind: &'static dyn Kind) -> Result<usize, ApiError> {
    let (labels, fields) = (LabelSelector::default(), FieldSelector::default());
    let (items, _) = reg.list(kind, None, &labels, &fields).await?;
    if items.is_empty() {
        return Ok(0);
    }
    let pending: Vec<(String, String)> = items
        .iter()
        .filter(|o| !meta::is_deleting(o))
        .map(|o| (meta::namespace(o).to_string(), meta::name(o).to_string()))
        .collect();
    futures::stream::iter(pending)
        .for_each_concurrent(CONCURRENT_DELETES, |(namespace, name)| async move {
            let r = ObjectRef { kind, namespace: &namespace, name: &name };
            match reg.delete(r, &DeleteOptions::default(), false).await {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(%namespace, %name, error = %e, "deleting a custom resource"),
            }
        })
        .await;
    Ok(reg.list(kind, None, &labels, &fields).await?.0.len())
}
