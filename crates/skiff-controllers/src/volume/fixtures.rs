//! Test objects for the volume modules' tests: claims, volumes, classes, nodes and pods from
//! short JSON, as they would come out of the API server.

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};

/// Claim `name` in namespace `ns` with uid `uid-NAME`, asking 1Gi ReadWriteOnce unless `spec` says otherwise.
pub fn claim(name: &str, spec: Value) -> PersistentVolumeClaim {
    let mut full = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    merge(&mut full, spec);
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "resourceVersion": "10"},
        "spec": full,
        "status": {"phase": "Pending"},
    }))
    .expect("claim")
}

/// Volume `name`, 1Gi ReadWriteOnce, Available, class "" unless `spec` says otherwise.
pub fn volume(name: &str, spec: Value) -> PersistentVolume {
    let mut full = json!({
        "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": "1Gi"},
        "hostPath": {"path": format!("/data/{name}")},
        "persistentVolumeReclaimPolicy": "Retain",
    });
    merge(&mut full, spec);
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": format!("pv-{name}"), "resourceVersion": "5"},
        "spec": full,
        "status": {"phase": "Available"},
    }))
    .expect("volume")
}

pub fn class(name: &str, provisioner: &str, mode: Option<&str>) -> StorageClass {
    let mut c = json!({"metadata": {"name": name}, "provisioner": provisioner, "reclaimPolicy": "Delete"});
    if let Some(mode) = mode {
        c["volumeBindingMode"] = json!(mode);
    }
    serde_json::from_value(c).expect("class")
}

/// A Ready node with its hostname label.
pub fn node(name: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .expect("node")
}

/// A pod in namespace `ns` using `claims`, on `node` ("" for none yet), in `phase`.
pub fn pod(name: &str, claims: &[&str], node: &str, phase: &str) -> Pod {
    let volumes: Vec<Value> = claims
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": c}}))
        .collect();
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}], "volumes": volumes});
    if !node.is_empty() {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns"},
        "spec": spec,
        "status": {"phase": phase},
    }))
    .expect("pod")
}

/// A volume's node affinity to one node by hostname, as the local-path provisioner writes it.
pub fn on_node(node: &str) -> Value {
    json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
    ]}]}})
}

fn merge(base: &mut Value, over: Value) {
    if let (Some(b), Value::Object(o)) = (base.as_object_mut(), over) {
        for (k, v) in o {
            b.insert(k, v);
        }
    }
}
