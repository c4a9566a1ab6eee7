//! skiff's own StorageClass: `local-path`, the cluster's default, whose claims each node's
//! built-in provisioner (`skiff_node::storage`) serves with a directory on the node that the
//! claim's first pod is scheduled to, as k3s's class of the same name.

use crate::kinds::storageclass::DEFAULT_ANNOTATION;
use serde_json::{Value, json};

/// The class the API server makes at start, marked the default.
pub const NAME: &str = "local-path";
/// Its `provisioner`: the nodes' built-in local-path provisioner.
pub const PROVISIONER: &str = "skiff.dev/local-path";

/// The built-in StorageClass object: a volume is made where its first pod runs, and deleted
/// with its claim.
pub fn built_in() -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": NAME, "annotations": {DEFAULT_ANNOTATION: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    })
}
