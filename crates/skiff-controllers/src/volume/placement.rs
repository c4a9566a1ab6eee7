//! Where a local-path volume of an `Immediate` class goes (skiff's own rule: upstream leaves
//! such classes to provisioners that need no node). A local volume lives on one node, so the
//! binder picks it before handing the claim over: a Ready, schedulable node the class's
//! `allowedTopologies` allow, holding the fewest local-path volumes (counting claims already
//! placed there and not yet bound, so a burst spreads), ties by name.

use super::node_affinity::{topology_allows, volume_fits_node};
use super::{LOCAL_PATH, PROVISIONED_BY, SELECTED_NODE, STORAGE_PROVISIONER, annotation, claim_volume, name};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use std::sync::Arc;

fn usable(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && !node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false)
}

/// The node for a new local-path volume of `class`, if any can take it.
pub fn local_volume_node(
    class: &StorageClass,
    nodes: &[Arc<Node>],
    volumes: &[Arc<PersistentVolume>],
    claims: &[Arc<PersistentVolumeClaim>],
) -> Option<String> {
    let local: Vec<&Arc<PersistentVolume>> =
        volumes.iter().filter(|v| annotation(&v.metadata, PROVISIONED_BY) == Some(LOCAL_PATH)).collect();
    let placed: Vec<&str> = claims
        .iter()
        .filter(|c| {
            annotation(&c.metadata, STORAGE_PROVISIONER) == Some(LOCAL_PATH)
                && claim_volume(c).is_empty()
                && c.metadata.deletion_timestamp.is_none()
        })
        .filter_map(|c| annotation(&c.metadata, SELECTED_NODE))
        .collect();
    nodes
        .iter()
        .filter(|n| usable(n))
        .filter(|n| {
            topology_allows(class.allowed_topologies.as_deref(), &n.metadata.labels.clone().unwrap_or_default())
        })
        .map(|n| {
            let node = name(&n.metadata);
            let held =
                local.iter().filter(|v| volume_fits_node(v, n)).count() + placed.iter().filter(|p| **p == node).count();
            (held, node)
        })
        .min()
        .map(|(_, node)| node.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{claim, class, node, on_node, volume};
    use super::*;
    use serde_json::json;

    fn local(name: &str, on: &str) -> Arc<PersistentVolume> {
        let mut v = volume(name, json!({"nodeAffinity": on_node(on)}));
        v.metadata.annotations = Some([(PROVISIONED_BY.to_string(), LOCAL_PATH.to_string())].into());
        Arc::new(v)
    }

    #[test]
    fn the_least_loaded_ready_node_by_name() {
        let c = class("local", LOCAL_PATH, None);
        let nodes = [Arc::new(node("b")), Arc::new(node("a")), Arc::new(node("c"))];
        assert_eq!(local_volume_node(&c, &nodes, &[], &[]), Some("a".into()));
        let volumes = [local("v1", "a"), local("v2", "b"), local("v3", "a")];
        assert_eq!(local_volume_node(&c, &nodes, &volumes, &[]), Some("c".into()));
        // A claim already placed on c and not yet provisioned counts there.
        let mut placed = claim("p", json!({}));
        placed.metadata.annotations = Some(
            [(STORAGE_PROVISIONER.to_string(), LOCAL_PATH.to_string()), (SELECTED_NODE.to_string(), "c".to_string())]
                .into(),
        );
        assert_eq!(local_volume_node(&c, &nodes, &volumes, &[Arc::new(placed)]), Some("b".into()));
    }

    #[test]
    fn only_ready_schedulable_allowed_nodes() {
        let c = class("local", LOCAL_PATH, None);
        let mut cordoned = node("a");
        cordoned.spec = Some(k8s_openapi::api::core::v1::NodeSpec { unschedulable: Some(true), ..Default::default() });
        let mut down = node("b");
        down.status = None;
        assert_eq!(local_volume_node(&c, &[Arc::new(cordoned), Arc::new(down)], &[], &[]), None);
        let mut zoned = class("local", LOCAL_PATH, None);
        zoned.allowed_topologies = serde_json::from_value(json!([
            {"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["z"]}]}
        ]))
        .ok();
        assert_eq!(local_volume_node(&zoned, &[Arc::new(node("a")), Arc::new(node("z"))], &[], &[]), Some("z".into()));
    }
}
