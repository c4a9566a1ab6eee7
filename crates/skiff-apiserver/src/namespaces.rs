//! The namespace lifecycle controller: a namespace being deleted has its contents deleted, then
//! goes itself.

use crate::AppState;
use crate::catalog::Catalog;
use crate::registry::{DeleteOptions, ObjectRef, Registry};
use skiff_core::kinds;
use skiff_core::meta;
use skiff_core::selector::{FieldSelector, LabelSelector};
use std::time::Duration;

/// The namespaces that always exist.
pub const BUILT_IN: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Finish deleting namespace `name` in the background.
pub fn finalize_later(state: &AppState, name: String) {
    let reg = Registry::new(state.registry.store().clone());
    let catalog = state.catalog.clone();
    tokio::spawn(async move {
        if let Err(e) = finalize(&reg, &catalog, &name).await {
            tracing::warn!(namespace = %name, error = %e, "finalizing namespace");
        }
    });
}

async fn finalize(reg: &Registry, catalog: &Catalog, name: &str) -> Result<(), skiff_core::ApiError> {
    let (labels, fields) = (LabelSelector::default(), FieldSelector::default());
    loop {
        let mut remaining = 0;
        let served = catalog.snapshot();
        // A custom kind served in several versions is one set of objects: listed once.
        let mut seen = std::collections::BTreeSet::new();
        let namespaced = served.all().filter(|k| k.info().namespaced && seen.insert((k.info().group, k.info().plural)));
        for kind in namespaced.collect::<Vec<_>>() {
            let (items, _) = reg.list(kind, Some(name), &labels, &fields).await?;
            for obj in &items {
                remaining += 1;
                if !meta::is_deleting(obj) {
                    let r = ObjectRef { kind, namespace: name, name: meta::name(obj) };
                    match reg.delete(r, &DeleteOptions::default(), false).await {
                        Ok(_) | Err(skiff_core::ApiError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if remaining == 0 {
            return reg.finalize_namespace(name).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// At start-up: create the built-in namespaces and resume unfinished namespace deletions.
pub async fn start(state: &AppState) -> Result<(), skiff_core::ApiError> {
    for ns in BUILT_IN {
        state.registry.ensure_namespace(ns).await?;
    }
    let (items, _) =
        state.registry.list(kinds::NAMESPACES, None, &LabelSelector::default(), &FieldSelector::default()).await?;
    for ns in items.iter().filter(|n| meta::is_deleting(n)) {
        finalize_later(state, meta::name(ns).to_string());
    }
    Ok(())
}
