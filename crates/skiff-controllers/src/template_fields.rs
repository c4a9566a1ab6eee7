//! A pod template as Go compares it (apimachinery's `equality.Semantic.DeepEqual`, which
//! upstream's `EqualIgnoreHash` runs over the typed `PodTemplateSpec`), for templates that
//! arrive as JSON. Go decodes into structs: a field that is not a pointer holds its zero value
//! when it is left out, so `stdin: false`, `workingDir: ""` or `resources: {}` is the field left
//! out (and a Go client, re-serializing a template it read, writes some of them back, as
//! `kubectl rollout undo` does), while a pointer field (`*bool`, `*int64`, `*SecurityContext`)
//! set to `false`, `0` or `{}` is a value of its own. Slices and maps are never pointers here,
//! and the semantic comparison takes an empty one for a missing one.
//!
//! [`NON_POINTER`] lists, by the struct's path from the template root (field names, list
//! indices left out, init and ephemeral containers folded onto `spec.containers`), the fields
//! that are not pointers: scalars (strings, bools, integers, `IntOrString`, `Quantity`,
//! `Time`), structs and maps. It is `k8s.io/api/core/v1/types.go` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/types.go` walked from `PodTemplateSpec`: release-1.32
//! (kubernetes/api 40f4980d, kubernetes/apimachinery 59e9003f), plus the fields added since that
//! k8s-openapi's latest types carry (kubernetes/api master 10b39a39); no field changed
//! pointer-ness between the two.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::LazyLock;

/// (struct path, its fields that are not pointers): a zero there is the field left out.
pub const NON_POINTER: &[(&str, &[&str])] = &[
    ("", &["metadata", "spec"]),
    (
        "metadata",
        &[
            "name",
            "generateName",
            "namespace",
            "selfLink",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "labels",
            "annotations",
        ],
    ),
    ("metadata.ownerReferences", &["apiVersion", "kind", "name", "uid"]),
    ("metadata.managedFields", &["manager", "operation", "apiVersion", "fieldsType", "subresource"]),
    ("spec.volumes", &["name"]),
    ("spec.volumes.hostPath", &["path"]),
    ("spec.volumes.emptyDir", &["medium"]),
    ("spec.volumes.gcePersistentDisk", &["pdName", "fsType", "partition", "readOnly"]),
    ("spec.volumes.awsElasticBlockStore", &["volumeID", "fsType", "partition", "readOnly"]),
    ("spec.volumes.gitRepo", &["repository", "revision", "directory"]),
    ("spec.volumes.secret", &["secretName"]),
    ("spec.volumes.secret.items", &["key", "path"]),
    ("spec.volumes.nfs", &["server", "path", "readOnly"]),
    (
        "spec.volumes.iscsi",
        &["targetPortal", "iqn", "lun", "iscsiInterface", "fsType", "readOnly", "chapAuthDiscovery", "chapAuthSession"],
    ),
    ("spec.volumes.iscsi.secretRef", &["name"]),
    ("spec.volumes.glusterfs", &["endpoints", "path", "readOnly"]),
    ("spec.volumes.persistentVolumeClaim", &["claimName", "readOnly"]),
    ("spec.volumes.rbd", &["image", "fsType", "pool", "user", "keyring", "readOnly"]),
    ("spec.volumes.rbd.secretRef", &["name"]),
    ("spec.volumes.flexVolume", &["driver", "fsType", "readOnly", "options"]),
    ("spec.volumes.flexVolume.secretRef", &["name"]),
    ("spec.volumes.cinder", &["volumeID", "fsType", "readOnly"]),
    ("spec.volumes.cinder.secretRef", &["name"]),
    ("spec.volumes.cephfs", &["path", "user", "secretFile", "readOnly"]),
    ("spec.volumes.cephfs.secretRef", &["name"]),
    ("spec.volumes.flocker", &["datasetName", "datasetUUID"]),
    ("spec.volumes.downwardAPI.items", &["path"]),
    ("spec.volumes.downwardAPI.items.fieldRef", &["apiVersion", "fieldPath"]),
    ("spec.volumes.downwardAPI.items.resourceFieldRef", &["containerName", "resource", "divisor"]),
    ("spec.volumes.fc", &["fsType", "readOnly"]),
    ("spec.volumes.azureFile", &["secretName", "shareName", "readOnly"]),
    ("spec.volumes.configMap", &["name"]),
    ("spec.volumes.configMap.items", &["key", "path"]),
    ("spec.volumes.vsphereVolume", &["volumePath", "fsType", "storagePolicyName", "storagePolicyID"]),
    ("spec.volumes.quobyte", &["registry", "volume", "readOnly", "user", "group", "tenant"]),
    ("spec.volumes.azureDisk", &["diskName", "diskURI"]),
    ("spec.volumes.photonPersistentDisk", &["pdID", "fsType"]),
    ("spec.volumes.projected.sources.secret", &["name"]),
    ("spec.volumes.projected.sources.secret.items", &["key", "path"]),
    ("spec.volumes.projected.sources.downwardAPI.items", &["path"]),
    ("spec.volumes.projected.sources.downwardAPI.items.fieldRef", &["apiVersion", "fieldPath"]),
    ("spec.volumes.projected.sources.downwardAPI.items.resourceFieldRef", &["containerName", "resource", "divisor"]),
    ("spec.volumes.projected.sources.configMap", &["name"]),
    ("spec.volumes.projected.sources.configMap.items", &["key", "path"]),
    ("spec.volumes.projected.sources.serviceAccountToken", &["audience", "path"]),
    ("spec.volumes.projected.sources.clusterTrustBundle.labelSelector", &["matchLabels"]),
    ("spec.volumes.projected.sources.clusterTrustBundle.labelSelector.matchExpressions", &["key", "operator"]),
    ("spec.volumes.projected.sources.clusterTrustBundle", &["path"]),
    // Not in 1.32: in the types k8s-openapi serves (1.37), from kubernetes/api master.
    (
        "spec.volumes.projected.sources.podCertificate",
        &["signerName", "keyType", "credentialBundlePath", "keyPath", "certificateChainPath", "userAnnotations"],
    ),
    ("spec.volumes.portworxVolume", &["volumeID", "fsType", "readOnly"]),
    (
        "spec.volumes.scaleIO",
        &[
            "gateway",
            "system",
            "sslEnabled",
            "protectionDomain",
            "storagePool",
            "storageMode",
            "volumeName",
            "fsType",
            "readOnly",
        ],
    ),
    ("spec.volumes.scaleIO.secretRef", &["name"]),
    ("spec.volumes.storageos", &["volumeName", "volumeNamespace", "fsType", "readOnly"]),
    ("spec.volumes.storageos.secretRef", &["name"]),
    ("spec.volumes.csi", &["driver", "volumeAttributes"]),
    ("spec.volumes.csi.nodePublishSecretRef", &["name"]),
    ("spec.volumes.ephemeral.volumeClaimTemplate", &["metadata", "spec"]),
    (
        "spec.volumes.ephemeral.volumeClaimTemplate.metadata",
        &[
            "name",
            "generateName",
            "namespace",
            "selfLink",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "labels",
            "annotations",
        ],
    ),
    ("spec.volumes.ephemeral.volumeClaimTemplate.metadata.ownerReferences", &["apiVersion", "kind", "name", "uid"]),
    (
        "spec.volumes.ephemeral.volumeClaimTemplate.metadata.managedFields",
        &["manager", "operation", "apiVersion", "fieldsType", "subresource"],
    ),
    ("spec.volumes.ephemeral.volumeClaimTemplate.spec.selector", &["matchLabels"]),
    ("spec.volumes.ephemeral.volumeClaimTemplate.spec.selector.matchExpressions", &["key", "operator"]),
    ("spec.volumes.ephemeral.volumeClaimTemplate.spec", &["resources", "volumeName"]),
    ("spec.volumes.ephemeral.volumeClaimTemplate.spec.resources", &["limits", "requests"]),
    ("spec.volumes.ephemeral.volumeClaimTemplate.spec.dataSource", &["kind", "name"]),
    ("spec.volumes.ephemeral.volumeClaimTemplate.spec.dataSourceRef", &["kind", "name"]),
    ("spec.volumes.image", &["reference", "pullPolicy"]),
    (
        "spec.containers",
        &[
            "name",
            "image",
            "workingDir",
            "resources",
            "terminationMessagePath",
            "terminationMessagePolicy",
            "imagePullPolicy",
            "stdin",
            "stdinOnce",
            "tty",
            "targetContainerName",
        ],
    ),
    ("spec.containers.ports", &["name", "hostPort", "containerPort", "protocol", "hostIP"]),
    ("spec.containers.envFrom", &["prefix"]),
    ("spec.containers.envFrom.configMapRef", &["name"]),
    ("spec.containers.envFrom.secretRef", &["name"]),
    ("spec.containers.env", &["name", "value"]),
    ("spec.containers.env.valueFrom.fieldRef", &["apiVersion", "fieldPath"]),
    ("spec.containers.env.valueFrom.resourceFieldRef", &["containerName", "resource", "divisor"]),
    ("spec.containers.env.valueFrom.configMapKeyRef", &["name", "key"]),
    ("spec.containers.env.valueFrom.secretKeyRef", &["name", "key"]),
    // Not in 1.32: in the types k8s-openapi serves (1.37), from kubernetes/api master.
    ("spec.containers.env.valueFrom.fileKeyRef", &["volumeName", "path", "key"]),
    ("spec.containers.resources", &["limits", "requests"]),
    ("spec.containers.resources.claims", &["name", "request"]),
    ("spec.containers.resizePolicy", &["resourceName", "restartPolicy"]),
    // Not in 1.32: in the types k8s-openapi serves (1.37), from kubernetes/api master.
    ("spec.containers.restartPolicyRules", &["action"]),
    // Not in 1.32: in the types k8s-openapi serves (1.37), from kubernetes/api master.
    ("spec.containers.restartPolicyRules.exitCodes", &["operator"]),
    ("spec.containers.volumeMounts", &["name", "readOnly", "mountPath", "subPath", "subPathExpr"]),
    ("spec.containers.volumeDevices", &["name", "devicePath"]),
    ("spec.containers.livenessProbe.httpGet", &["path", "port", "host", "scheme"]),
    ("spec.containers.livenessProbe.httpGet.httpHeaders", &["name", "value"]),
    ("spec.containers.livenessProbe.tcpSocket", &["port", "host"]),
    ("spec.containers.livenessProbe.grpc", &["port"]),
    (
        "spec.containers.livenessProbe",
        &["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"],
    ),
    ("spec.containers.readinessProbe.httpGet", &["path", "port", "host", "scheme"]),
    ("spec.containers.readinessProbe.httpGet.httpHeaders", &["name", "value"]),
    ("spec.containers.readinessProbe.tcpSocket", &["port", "host"]),
    ("spec.containers.readinessProbe.grpc", &["port"]),
    (
        "spec.containers.readinessProbe",
        &["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"],
    ),
    ("spec.containers.startupProbe.httpGet", &["path", "port", "host", "scheme"]),
    ("spec.containers.startupProbe.httpGet.httpHeaders", &["name", "value"]),
    ("spec.containers.startupProbe.tcpSocket", &["port", "host"]),
    ("spec.containers.startupProbe.grpc", &["port"]),
    (
        "spec.containers.startupProbe",
        &["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"],
    ),
    ("spec.containers.lifecycle.postStart.httpGet", &["path", "port", "host", "scheme"]),
    ("spec.containers.lifecycle.postStart.httpGet.httpHeaders", &["name", "value"]),
    ("spec.containers.lifecycle.postStart.tcpSocket", &["port", "host"]),
    ("spec.containers.lifecycle.postStart.sleep", &["seconds"]),
    ("spec.containers.lifecycle.preStop.httpGet", &["path", "port", "host", "scheme"]),
    ("spec.containers.lifecycle.preStop.httpGet.httpHeaders", &["name", "value"]),
    ("spec.containers.lifecycle.preStop.tcpSocket", &["port", "host"]),
    ("spec.containers.lifecycle.preStop.sleep", &["seconds"]),
    ("spec.containers.securityContext.seLinuxOptions", &["user", "role", "type", "level"]),
    ("spec.containers.securityContext.seccompProfile", &["type"]),
    ("spec.containers.securityContext.appArmorProfile", &["type"]),
    (
        "spec",
        &[
            "restartPolicy",
            "dnsPolicy",
            "nodeSelector",
            "serviceAccountName",
            "serviceAccount",
            "nodeName",
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "hostname",
            "subdomain",
            "schedulerName",
            "priorityClassName",
            "overhead",
        ],
    ),
    ("spec.securityContext.seLinuxOptions", &["user", "role", "type", "level"]),
    ("spec.securityContext.sysctls", &["name", "value"]),
    ("spec.securityContext.seccompProfile", &["type"]),
    ("spec.securityContext.appArmorProfile", &["type"]),
    ("spec.imagePullSecrets", &["name"]),
    (
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.matchExpressions",
        &["key", "operator"],
    ),
    (
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.matchFields",
        &["key", "operator"],
    ),
    ("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution", &["weight", "preference"]),
    (
        "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution.preference.matchExpressions",
        &["key", "operator"],
    ),
    (
        "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution.preference.matchFields",
        &["key", "operator"],
    ),
    ("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.labelSelector", &["matchLabels"]),
    (
        "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.labelSelector.matchExpressions",
        &["key", "operator"],
    ),
    ("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution", &["topologyKey"]),
    ("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.namespaceSelector", &["matchLabels"]),
    (
        "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.namespaceSelector.matchExpressions",
        &["key", "operator"],
    ),
    ("spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution", &["weight", "podAffinityTerm"]),
    (
        "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm.labelSelector",
        &["matchLabels"],
    ),
    (
        "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm.labelSelector.matchExpressions",
        &["key", "operator"],
    ),
    ("spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm", &["topologyKey"]),
    (
        "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm.namespaceSelector",
        &["matchLabels"],
    ),
    (
        "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm.namespaceSelector.matchExpressions",
        &["key", "operator"],
    ),
    ("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.labelSelector", &["matchLabels"]),
    (
        "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.labelSelector.matchExpressions",
        &["key", "operator"],
    ),
    ("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution", &["topologyKey"]),
    (
        "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.namespaceSelector",
        &["matchLabels"],
    ),
    (
        "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.namespaceSelector.matchExpressions",
        &["key", "operator"],
    ),
    ("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution", &["weight", "podAffinityTerm"]),
    (
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm.labelSelector",
        &["matchLabels"],
    ),
    (
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm.labelSelector.matchExpressions",
        &["key", "operator"],
    ),
    ("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm", &["topologyKey"]),
    (
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm.namespaceSelector",
        &["matchLabels"],
    ),
    (
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm.namespaceSelector.matchExpressions",
        &["key", "operator"],
    ),
    ("spec.tolerations", &["key", "operator", "value", "effect"]),
    ("spec.hostAliases", &["ip"]),
    ("spec.dnsConfig.options", &["name"]),
    ("spec.readinessGates", &["conditionType"]),
    ("spec.topologySpreadConstraints", &["maxSkew", "topologyKey", "whenUnsatisfiable"]),
    ("spec.topologySpreadConstraints.labelSelector", &["matchLabels"]),
    ("spec.topologySpreadConstraints.labelSelector.matchExpressions", &["key", "operator"]),
    ("spec.os", &["name"]),
    ("spec.schedulingGates", &["name"]),
    ("spec.resourceClaims", &["name"]),
    ("spec.resources", &["limits", "requests"]),
    ("spec.resources.claims", &["name", "request"]),
    // Not in 1.32: in the types k8s-openapi serves (1.37), from kubernetes/api master.
    ("spec.evictionResponders", &["name"]),
];

/// The non-pointer `resource.Quantity` fields: any spelling of zero (`"0"`, `"0m"`) is the zero
/// Quantity, which is what Go writes for one left out.
const QUANTITIES: &[&str] = &[
    "spec.containers.env.valueFrom.resourceFieldRef.divisor",
    "spec.volumes.downwardAPI.items.resourceFieldRef.divisor",
    "spec.volumes.projected.sources.downwardAPI.items.resourceFieldRef.divisor",
];

static INDEX: LazyLock<HashMap<&'static str, &'static [&'static str]>> =
    LazyLock::new(|| NON_POINTER.iter().copied().collect());

/// Whether the field at `path` (as [`NON_POINTER`] spells paths) is not a pointer, so that its
/// zero value is the field left out.
pub fn zero_is_absent(path: &str) -> bool {
    let (parent, field) = path.rsplit_once('.').unwrap_or(("", path));
    INDEX.get(parent).is_some_and(|fields| fields.contains(&field))
}

/// A pod template (as JSON) in the form in which two templates are equal exactly when Go finds
/// them semantically equal: without nulls, empty lists, and the zero values of fields that are
/// not pointers (an empty struct or map among them, once its own such fields are gone). Zeros
/// elsewhere stay: in pointer fields, list items and map values (`labels: {a: ""}`).
pub fn normalize(template: Value) -> Value {
    normalize_at(template, "")
}

fn normalize_at(value: Value, path: &str) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter_map(|(key, v)| {
                    let at = child(path, &key);
                    let v = normalize_at(v, &at);
                    let absent = match &v {
                        Value::Null => true,
                        Value::Array(items) => items.is_empty(),
                        _ => zero_is_absent(&at) && is_zero(&v, &at),
                    };
                    (!absent).then_some((key, v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| normalize_at(v, path)).collect()),
        other => other,
    }
}

/// The path of field `key` of the value at `path`, containers folded.
fn child(path: &str, key: &str) -> String {
    match (path, key) {
        ("", _) => key.to_string(),
        ("spec", "initContainers" | "ephemeralContainers") => "spec.containers".to_string(),
        _ => format!("{path}.{key}"),
    }
}

/// Go's zero value, as JSON, of the non-pointer field at `path`.
fn is_zero(value: &Value, path: &str) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || (QUANTITIES.contains(&path) && zero_quantity(s)),
        Value::Object(fields) => fields.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Bool(true) => false,
    }
}

/// Whether a Quantity's number is zero, whatever its suffix (`0`, `0.0`, `0m`, `0Ki`, `0e3`).
fn zero_quantity(s: &str) -> bool {
    let number = s.trim_start_matches(['+', '-']).split(|c: char| !(c.is_ascii_digit() || c == '.')).next();
    number.is_some_and(|n| n.contains(|c: char| c.is_ascii_digit()) && n.chars().all(|c| c == '0' || c == '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::{comparable, template_hash};
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use serde_json::json;

    /// What an edit does, and the edit.
    type Edit = (&'static str, fn(&mut Value));

    /// A template as a JSON client (kubectl apply) writes it.
    fn base() -> Value {
        json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "c", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}],
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                    "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
                }],
                "initContainers": [{"name": "i", "image": "busybox"}],
                "volumes": [{"name": "v", "emptyDir": {}}],
            },
        })
    }

    fn template(v: Value) -> PodTemplateSpec {
        serde_json::from_value(v).expect("template")
    }

    /// `base` with `edit` made to its JSON.
    fn edited(edit: impl FnOnce(&mut Value)) -> PodTemplateSpec {
        let mut v = base();
        edit(&mut v);
        template(v)
    }

    fn same(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
        let equal = comparable(a) == comparable(b);
        assert_eq!(equal, template_hash(a, None) == template_hash(b, None), "the hash follows the comparison");
        equal
    }

    #[test]
    fn a_pointer_set_to_zero_is_a_change() {
        let base = template(base());
        let edits: [Edit; 9] = [
            ("allowPrivilegeEscalation: false", |v| {
                v["spec"]["containers"][0]["securityContext"] = json!({"allowPrivilegeEscalation": false})
            }),
            ("runAsUser: 0", |v| v["spec"]["containers"][0]["securityContext"] = json!({"runAsUser": 0})),
            ("readOnlyRootFilesystem: false", |v| {
                v["spec"]["containers"][0]["securityContext"] = json!({"readOnlyRootFilesystem": false})
            }),
            ("an empty securityContext", |v| v["spec"]["containers"][0]["securityContext"] = json!({})),
            ("terminationGracePeriodSeconds: 0", |v| v["spec"]["terminationGracePeriodSeconds"] = json!(0)),
            ("automountServiceAccountToken: false", |v| v["spec"]["automountServiceAccountToken"] = json!(false)),
            ("pod runAsUser: 0", |v| v["spec"]["securityContext"] = json!({"runAsUser": 0})),
            ("an init container's runAsUser: 0", |v| {
                v["spec"]["initContainers"][0]["securityContext"] = json!({"runAsUser": 0})
            }),
            ("a probe's terminationGracePeriodSeconds: 0", |v| {
                v["spec"]["containers"][0]["livenessProbe"]["terminationGracePeriodSeconds"] = json!(0)
            }),
        ];
        for (what, edit) in edits {
            assert!(!same(&base, &edited(edit)), "{what} is a change");
        }
        // Zeros in list items and map values are values, too.
        assert!(!same(&base, &edited(|v| v["metadata"]["labels"]["tier"] = json!(""))));
        assert!(!same(&base, &edited(|v| v["spec"]["containers"][0]["args"] = json!([""]))));
    }

    #[test]
    fn a_non_pointer_set_to_zero_is_not() {
        let base = template(base());
        let edits: [Edit; 10] = [
            ("stdin: false", |v| v["spec"]["containers"][0]["stdin"] = json!(false)),
            ("tty: false", |v| v["spec"]["containers"][0]["tty"] = json!(false)),
            ("workingDir: \"\"", |v| v["spec"]["containers"][0]["workingDir"] = json!("")),
            ("hostNetwork: false", |v| v["spec"]["hostNetwork"] = json!(false)),
            ("readOnly: false on a mount", |v| {
                v["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = json!(false)
            }),
            ("hostPort: 0", |v| v["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(0)),
            ("an init container's stdin: false", |v| v["spec"]["initContainers"][0]["stdin"] = json!(false)),
            ("empty maps and lists", |v| {
                v["spec"]["nodeSelector"] = json!({});
                v["spec"]["tolerations"] = json!([]);
                v["metadata"]["annotations"] = json!({});
            }),
            ("metadata.generation: 0", |v| v["metadata"]["generation"] = json!(0)),
            ("a zero divisor", |v| {
                v["spec"]["containers"][0]["env"][0]["valueFrom"]["resourceFieldRef"]["divisor"] = json!("0m")
            }),
        ];
        for (what, edit) in edits {
            assert!(same(&base, &edited(edit)), "{what} is no change");
        }
    }

    #[test]
    fn a_template_as_kubectl_rollout_undo_sends_it_is_the_same() {
        // What a Go client writes for `base` with two pointers set to zero, after reading it
        // from a ReplicaSet: non-pointer fields without `omitempty` and structs in full, pointers
        // as they were.
        let from_go = json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "c", "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}}}],
                    "resources": {},
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                    "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
                    "securityContext": {"allowPrivilegeEscalation": false},
                }],
                "initContainers": [{"name": "i", "image": "busybox", "resources": {}}],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "terminationGracePeriodSeconds": 0,
            },
        });
        let from_json = edited(|v| {
            v["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
            v["spec"]["containers"][0]["securityContext"] = json!({"allowPrivilegeEscalation": false});
            v["spec"]["terminationGracePeriodSeconds"] = json!(0);
        });
        assert!(same(&template(from_go.clone()), &from_json));
        let mut without_pointers = from_go;
        without_pointers["spec"]["containers"][0]["securityContext"] = json!({});
        assert!(!same(&template(without_pointers), &from_json));
    }

    #[test]
    fn the_table_names_each_struct_once() {
        assert_eq!(INDEX.len(), NON_POINTER.len());
        assert!(zero_is_absent("spec.containers.stdin"));
        assert!(zero_is_absent("spec.containers.resources"));
        assert!(!zero_is_absent("spec.containers.securityContext.runAsUser"));
        assert!(!zero_is_absent("spec.terminationGracePeriodSeconds"));
        assert!(!zero_is_absent("metadata.deletionGracePeriodSeconds"));
        for zero in ["0", "0m", "0.0", "+0Ki", "0e3"] {
            assert!(zero_quantity(zero), "{zero}");
        }
        for not in ["1", "10m", "0.5", "", "m"] {
            assert!(!zero_quantity(not), "{not}");
        }
    }
}
