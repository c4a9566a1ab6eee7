//! Pods: defaulting, validation, update rules and the table row, as the kube-apiserver does them.

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, Part, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::auth::node_graph::MIRROR_POD_ANNOTATION;
use crate::field::{ErrorList, FieldError, Path};
use crate::{go_diff, meta, names, time};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, EnvFromSource, EnvVar, EphemeralContainer, ObjectFieldSelector, Pod, PodSpec,
    PodStatus, SeccompProfile, Toleration,
};
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};
use std::collections::HashSet;

mod volumes;

pub struct Pods;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    short_names: &["po"],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[
        ("status", "Pod", &["get", "patch", "update"]),
        ("binding", "Binding", &["create"]),
        ("log", "Pod", &["get"]),
        ("exec", "PodExecOptions", &["create", "get"]),
        ("attach", "PodAttachOptions", &["create", "get"]),
        ("portforward", "PodPortForwardOptions", &["create", "get"]),
        ("proxy", "PodProxyOptions", &["create", "delete", "get", "patch", "update"]),
        ("eviction", "policy/v1/Eviction", &["create"]),
        ("ephemeralcontainers", "Pod", &["get", "patch", "update"]),
    ],
};

static COLUMNS: [Column; 9] = [
    NAME_COLUMN,
    Column::new("Ready", 0, "The aggregate readiness state of this pod for accepting traffic."),
    Column::new("Status", 0, "The aggregate status of the containers in this pod."),
    Column::new(
        "Restarts",
        0,
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE_COLUMN,
    Column::new(
        "IP",
        1,
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    Column::new(
        "Node",
        1,
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    ),
    Column::new(
        "Nominated Node",
        1,
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node.",
    ),
    Column::new(
        "Readiness Gates",
        1,
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    ),
];

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];

/// Kubernetes' default pull policy: `Always` for `:latest` or an untagged image, else `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> &'static str {
    // A digest pins the content, so there is nothing newer to pull.
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Container) {
    c.termination_message_path.get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy.get_or_insert_with(|| "File".into());
    if c.image_pull_policy.is_none() {
        c.image_pull_policy = Some(default_pull_policy(c.image.as_deref().unwrap_or("")).into());
    }
    c.resources.get_or_insert_with(Default::default);
    for p in c.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(fr) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            fr.api_version.get_or_insert_with(|| "v1".into());
        }
    }
}

fn default_toleration(key: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: Some(300),
        ..Default::default()
    }
}

/// `SetDefaults_PodSpec` (and the container and volume defaults): what every pod spec gets, in a
/// pod or a workload's template.
pub(crate) fn default_spec(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.security_context.get_or_insert_with(Default::default);
    spec.scheduler_name.get_or_insert_with(|| "default-scheduler".into());
    // The deprecated alias follows the field (and the other way round), as the conversion does.
    match (&spec.service_account_name, &spec.service_account) {
        (Some(n), None) => spec.service_account = Some(n.clone()),
        (None, Some(n)) => spec.service_account_name = Some(n.clone()),
        _ => {}
    }
    for c in spec.init_containers.iter_mut().flatten() {
        default_container(c);
    }
    spec.containers.iter_mut().for_each(default_container);
    for e in spec.ephemeral_containers.iter_mut().flatten() {
        e.termination_message_path.get_or_insert_with(|| "/dev/termination-log".into());
        e.termination_message_policy.get_or_insert_with(|| "File".into());
        if e.image_pull_policy.is_none() {
            e.image_pull_policy = Some(default_pull_policy(e.image.as_deref().unwrap_or("")).into());
        }
    }
    spec.volumes.iter_mut().flatten().for_each(volumes::default);
}

/// What admission adds when a pod is created: its service account (not to a node's mirror pod,
/// whose spec the ServiceAccount admission leaves alone), priority and the default
/// not-ready/unreachable tolerations.
fn admit_spec(spec: &mut PodSpec, mirror: bool) {
    spec.priority.get_or_insert(0);
    spec.preemption_policy.get_or_insert_with(|| "PreemptLowerPriority".into());
    if !mirror {
        let sa = spec.service_account_name.clone().or_else(|| spec.service_account.clone()).unwrap_or("default".into());
        spec.service_account_name = Some(sa.clone());
        spec.service_account = Some(sa);
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let has = tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some(key) && matches!(t.effect.as_deref(), None | Some("NoExecute")));
        if !has {
            tolerations.push(default_toleration(key));
        }
    }
}

/// The QoS class the apiserver records in `status.qosClass`.
fn qos_class(spec: &PodSpec) -> &'static str {
    let all = spec.containers.iter().chain(spec.init_containers.iter().flatten());
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.as_ref();
        let limits = r.and_then(|r| r.limits.as_ref());
        let requests = r.and_then(|r| r.requests.as_ref());
        for res in ["cpu", "memory"] {
            let l = limits.and_then(|m| m.get(res));
            let q = requests.and_then(|m| m.get(res)).or(l);
            if l.is_some() || q.is_some() {
                any = true;
            }
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

fn validate_container(
    c: &Container,
    path: &Path,
    names_seen: &mut HashSet<String>,
    volumes: &HashSet<&str>,
) -> ErrorList {
    let mut errs = Vec::new();
    let np = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&np, ""));
    } else {
        errs.extend(names::invalid_all(&np, &c.name, names::dns1123_label(&c.name)));
        if !names_seen.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(&np, c.name.as_str()));
        }
    }
    match c.image.as_deref() {
        None | Some("") => errs.push(FieldError::required(&path.child("image"), "")),
        Some(img) if img.trim() != img => {
            errs.push(FieldError::invalid(&path.child("image"), img, "must not have leading or trailing whitespace"))
        }
        Some(_) => {}
    }
    match c.image_pull_policy.as_deref() {
        Some(p) if !PULL_POLICIES.contains(&p) => {
            errs.push(FieldError::not_supported(&path.child("imagePullPolicy"), p, PULL_POLICIES))
        }
        None => errs.push(FieldError::required(&path.child("imagePullPolicy"), "")),
        _ => {}
    }
    let mut port_names = HashSet::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let pp = path.child("ports").index(i);
        if !(1..=65535).contains(&p.container_port) {
            errs.push(FieldError::invalid(
                &pp.child("containerPort"),
                p.container_port,
                "must be between 1 and 65535, inclusive",
            ));
        }
        if let Some(hp) = p.host_port
            && !(0..=65535).contains(&hp)
        {
            errs.push(FieldError::invalid(&pp.child("hostPort"), hp, "must be between 1 and 65535, inclusive"));
        }
        if let Some(n) = p.name.as_deref() {
            errs.extend(names::invalid_all(&pp.child("name"), n, names::iana_svc_name(n)));
            if !port_names.insert(n) {
                errs.push(FieldError::duplicate(&pp.child("name"), n));
            }
        }
        match p.protocol.as_deref() {
            None => errs.push(FieldError::required(&pp.child("protocol"), "")),
            Some(proto) if !PROTOCOLS.contains(&proto) => {
                errs.push(FieldError::not_supported(&pp.child("protocol"), proto, PROTOCOLS))
            }
            _ => {}
        }
    }
    if let Some(sp) = c.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()) {
        errs.extend(validate_seccomp_profile(sp, &path.child("securityContext").child("seccompProfile")));
    }
    for (i, e) in c.env.iter().flatten().enumerate() {
        errs.extend(validate_env_var(e, &path.child("env").index(i)));
    }
    for (i, f) in c.env_from.iter().flatten().enumerate() {
        errs.extend(validate_env_from(f, &path.child("envFrom").index(i)));
    }
    let mut mount_paths = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mp = path.child("volumeMounts").index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&mp.child("name"), ""));
        } else if !volumes.contains(m.name.as_str()) {
            errs.push(FieldError::not_found(&mp.child("name"), m.name.as_str()));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&mp.child("mountPath"), ""));
        } else if !mount_paths.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(&mp.child("mountPath"), m.mount_path.as_str(), "must be unique"));
        }
    }
    errs
}

/// The downward API fields an environment variable may read (`validEnvDownwardAPIFieldPathExpressions`).
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
/// Every pod field a downward API reference can name (`ConvertDownwardAPIFieldLabel`).
const DOWNWARD_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.phase",
    "status.podIP",
    "status.podIPs",
];
const ENV_RESOURCES: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

const SECCOMP_TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];

/// `validateSeccompProfileField`: a known type, and a relative `localhostProfile` (without `..`)
/// exactly when the type is Localhost.
fn validate_seccomp_profile(sp: &SeccompProfile, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    match sp.type_.as_str() {
        "" => errs.push(FieldError::required(&path.child("type"), "type is required when seccompProfile is set")),
        t if !SECCOMP_TYPES.contains(&t) => errs.push(FieldError::not_supported(&path.child("type"), t, SECCOMP_TYPES)),
        _ => {}
    }
    let lp = path.child("localhostProfile");
    match (sp.type_.as_str(), sp.localhost_profile.as_deref()) {
        ("Localhost", None) => errs.push(FieldError::required(&lp, "must be set when seccomp type is Localhost")),
        ("Localhost", Some(p)) => {
            if p.starts_with('/') {
                errs.push(FieldError::invalid(&lp, p, "must be a relative path"));
            }
            if p.split('/').any(|part| part == "..") {
                errs.push(FieldError::invalid(&lp, p, "must not contain '..'"));
            }
        }
        (_, Some(p)) => errs.push(FieldError::invalid(&lp, p, "can only be set when seccomp type is Localhost")),
        _ => {}
    }
    errs
}

/// `validateEnv` for one variable: its name and where its value comes from.
fn validate_env_var(e: &EnvVar, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let np = path.child("name");
    if e.name.is_empty() {
        errs.push(FieldError::required(&np, ""));
    } else {
        errs.extend(names::invalid_all(&np, &e.name, names::env_var_name(&e.name)));
    }
    let Some(from) = &e.value_from else { return errs };
    let vp = path.child("valueFrom");
    let sources = [
        from.field_ref.is_some(),
        from.resource_field_ref.is_some(),
        from.config_map_key_ref.is_some(),
        from.secret_key_ref.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if e.value.as_deref().is_some_and(|v| !v.is_empty()) && sources != 0 {
        errs.push(FieldError::invalid(&vp, "", "may not be specified when `value` is not empty"));
    }
    match sources {
        0 => errs.push(FieldError::invalid(
            &vp,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        )),
        1 => {}
        _ => errs.push(FieldError::invalid(&vp, "", "may not have more than one field specified at a time")),
    }
    if let Some(f) = &from.field_ref {
        errs.extend(validate_field_ref(f, &vp.child("fieldRef"), ENV_FIELD_PATHS));
    }
    if let Some(r) = &from.resource_field_ref {
        let rp = vp.child("resourceFieldRef").child("resource");
        if r.resource.is_empty() {
            errs.push(FieldError::required(&rp, ""));
        } else if !ENV_RESOURCES.contains(&r.resource.as_str()) {
            errs.push(FieldError::not_supported(&rp, r.resource.as_str(), ENV_RESOURCES));
        }
    }
    let key_ref = |name: &str, key: &str, p: Path| {
        let mut errs = Vec::new();
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if key.is_empty() {
            errs.push(FieldError::required(&p.child("key"), ""));
        } else {
            errs.extend(names::invalid_all(&p.child("key"), key, names::config_key(key)));
        }
        errs
    };
    if let Some(r) = &from.secret_key_ref {
        errs.extend(key_ref(&r.name, &r.key, vp.child("secretKeyRef")));
    }
    if let Some(r) = &from.config_map_key_ref {
        errs.extend(key_ref(&r.name, &r.key, vp.child("configMapKeyRef")));
    }
    errs
}

/// `validateObjectFieldSelector`, `allowed` naming the paths the reader (an environment
/// variable, a volume file) may read.
fn validate_field_ref(f: &ObjectFieldSelector, path: &Path, allowed: &[&str]) -> ErrorList {
    let fp = path.child("fieldPath");
    if f.field_path.is_empty() {
        return vec![FieldError::required(&fp, "")];
    }
    let version = f.api_version.as_deref().unwrap_or("");
    if version.is_empty() {
        return vec![FieldError::required(&path.child("apiVersion"), "")];
    }
    let value = f.field_path.as_str();
    if version != "v1" {
        return vec![FieldError::invalid(
            &fp,
            value,
            format!("error converting fieldPath: unsupported pod version: {version}"),
        )];
    }
    if let Some((field, key)) = value.split_once("['").and_then(|(f, rest)| Some((f, rest.strip_suffix("']")?))) {
        return match field {
            "metadata.labels" | "metadata.annotations" => names::invalid_all(&fp, key, names::qualified_name(key)),
            _ => vec![FieldError::invalid(&fp, field, "does not support subscript")],
        };
    }
    if !DOWNWARD_FIELD_PATHS.contains(&value) {
        return vec![FieldError::invalid(
            &fp,
            value,
            format!("error converting fieldPath: field label not supported: {value}"),
        )];
    }
    if !allowed.contains(&value) {
        return vec![FieldError::not_supported(&fp, value, allowed)];
    }
    vec![]
}

/// `validateEnvFrom` for one source.
fn validate_env_from(f: &EnvFromSource, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if let Some(p) = f.prefix.as_deref().filter(|p| !p.is_empty()) {
        errs.extend(names::invalid_all(&path.child("prefix"), p, names::env_var_name(p)));
    }
    let named = |name: &str, p: Path| {
        if name.is_empty() {
            vec![FieldError::required(&p.child("name"), "")]
        } else {
            names::invalid_all(&p.child("name"), name, names::dns1123_subdomain(name))
        }
    };
    match (&f.config_map_ref, &f.secret_ref) {
        (Some(_), Some(_)) => {
            errs.push(FieldError::invalid(path, "", "may not have more than one field specified at a time"))
        }
        (None, None) => errs.push(FieldError::invalid(path, "", "must specify one of: `configMapRef` or `secretRef`")),
        (Some(c), None) => errs.extend(named(&c.name, path.child("configMapRef"))),
        (None, Some(s)) => errs.extend(named(&s.name, path.child("secretRef"))),
    }
    errs
}

/// What an ephemeral container may not have (`validateEphemeralContainers`), and its target.
fn validate_ephemeral_container(e: &EphemeralContainer, path: &Path, targets: &HashSet<&str>) -> ErrorList {
    let mut errs = Vec::new();
    let forbidden = [
        ("ports", e.ports.as_ref().is_some_and(|p| !p.is_empty())),
        ("livenessProbe", e.liveness_probe.is_some()),
        ("readinessProbe", e.readiness_probe.is_some()),
        ("startupProbe", e.startup_probe.is_some()),
        ("lifecycle", e.lifecycle.is_some()),
        ("resources", e.resources.as_ref().is_some_and(|r| r != &Default::default())),
        ("resizePolicy", e.resize_policy.as_ref().is_some_and(|p| !p.is_empty())),
        ("restartPolicy", e.restart_policy.is_some()),
    ];
    for (field, set) in forbidden {
        if set {
            errs.push(FieldError::forbidden(&path.child(field), "cannot be set for an Ephemeral Container"));
        }
    }
    if let Some(t) = e.target_container_name.as_deref().filter(|t| !t.is_empty())
        && !targets.contains(t)
    {
        errs.push(FieldError::not_found(&path.child("targetContainerName"), t));
    }
    errs
}

/// `ValidatePodEphemeralContainersUpdate`: ephemeral containers are only ever added, and (unlike
/// upstream, where `kubectl debug` then waits forever) not to a pod that has finished.
fn validate_ephemeral_update(old: &PodSpec, new: &PodSpec, phase: &str) -> ErrorList {
    let path = Path::new("spec").child("ephemeralContainers");
    let new_list = new.ephemeral_containers.clone().unwrap_or_default();
    let mut errs = Vec::new();
    let old_count = old.ephemeral_containers.as_ref().map_or(0, Vec::len);
    if new_list.len() > old_count && matches!(phase, "Succeeded" | "Failed") {
        errs.push(FieldError::forbidden(
            &path,
            format!("cannot be added to a pod that has terminated (phase {phase}): its containers no longer run"),
        ));
    }
    for o in old.ephemeral_containers.iter().flatten() {
        match new_list.iter().position(|n| n.name == o.name) {
            None => errs.push(FieldError::forbidden(
                &path,
                format!("existing ephemeral containers {:?} may not be removed\n", o.name),
            )),
            Some(i) if &new_list[i] != o => errs.push(FieldError::forbidden(
                &path.index(i),
                format!("existing ephemeral containers {:?} may not be changed\n", o.name),
            )),
            Some(_) => {}
        }
    }
    errs
}

/// `ValidatePodSpec` at `path` (`spec`, or `spec.template.spec` in a workload).
pub(crate) fn validate_spec(spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let mut volumes = HashSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let vp = path.child("volumes").index(i).child("name");
        errs.extend(names::invalid_all(&vp, &v.name, names::dns1123_label(&v.name)));
        if !volumes.insert(v.name.as_str()) {
            errs.push(FieldError::duplicate(&vp, v.name.as_str()));
        }
        errs.extend(volumes::validate(v, &path.child("volumes").index(i)));
    }
    let mut seen = HashSet::new();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        errs.extend(validate_container(c, &path.child("initContainers").index(i), &mut seen, &volumes));
    }
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&path.child("containers"), ""));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        errs.extend(validate_container(c, &path.child("containers").index(i), &mut seen, &volumes));
    }
    let targets: HashSet<&str> =
        spec.containers.iter().chain(spec.init_containers.iter().flatten()).map(|c| c.name.as_str()).collect();
    for (i, e) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let ep = path.child("ephemeralContainers").index(i);
        errs.extend(validate_ephemeral_container(e, &ep, &targets));
        let common: Container = serde_json::to_value(e).and_then(serde_json::from_value).unwrap_or_default();
        errs.extend(validate_container(&common, &ep, &mut seen, &volumes));
    }
    if let Some(sp) = spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()) {
        errs.extend(validate_seccomp_profile(sp, &path.child("securityContext").child("seccompProfile")));
    }
    match spec.restart_policy.as_deref() {
        Some(p) if !RESTART_POLICIES.contains(&p) => {
            errs.push(FieldError::not_supported(&path.child("restartPolicy"), p, RESTART_POLICIES))
        }
        _ => {}
    }
    match spec.dns_policy.as_deref() {
        Some(p) if !DNS_POLICIES.contains(&p) => {
            errs.push(FieldError::not_supported(&path.child("dnsPolicy"), p, DNS_POLICIES))
        }
        _ => {}
    }
    if let Some(g) = spec.termination_grace_period_seconds
        && g < 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            g,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(d) = spec.active_deadline_seconds
        && d <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            d,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    if let Some(n) = spec.node_name.as_deref()
        && !n.is_empty()
    {
        errs.extend(names::invalid_all(&path.child("nodeName"), n, names::dns1123_subdomain(n)));
    }
    if let Some(h) = spec.hostname.as_deref() {
        errs.extend(names::invalid_all(&path.child("hostname"), h, names::dns1123_label(h)));
    }
    errs
}

const UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`'s spec rule: only images, activeDeadlineSeconds, added tolerations and
/// (a negative) grace period may change.
fn validate_spec_update(old: &PodSpec, new: &PodSpec) -> ErrorList {
    let mut errs = Vec::new();
    if let (Some(o), Some(n)) = (old.active_deadline_seconds, new.active_deadline_seconds)
        && n > o
    {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("activeDeadlineSeconds"),
            n,
            "must be less than or equal to previous value",
        ));
    }
    if old.active_deadline_seconds.is_some() && new.active_deadline_seconds.is_none() {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("activeDeadlineSeconds"),
            Value::Null,
            "must not update from a positive integer to nil value",
        ));
    }
    let old_tolerations = old.tolerations.clone().unwrap_or_default();
    if let Some(new_t) = &new.tolerations {
        for t in &old_tolerations {
            if !new_t.contains(t) {
                errs.push(FieldError::forbidden(
                    &Path::new("spec").child("tolerations"),
                    "existing toleration can not be modified except its tolerationSeconds",
                ));
                break;
            }
        }
    }
    // As upstream: the new spec with the mutable fields taken from the old one must equal the old.
    let mut munged = new.clone();
    for (n, o) in munged.containers.iter_mut().zip(&old.containers) {
        n.image = o.image.clone();
    }
    if let (Some(ns), Some(os)) = (munged.init_containers.as_mut(), old.init_containers.as_ref()) {
        for (n, o) in ns.iter_mut().zip(os) {
            n.image = o.image.clone();
        }
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.tolerations = old.tolerations.clone();
    munged.ephemeral_containers = old.ephemeral_containers.clone();
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0) && new.termination_grace_period_seconds == Some(1) {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if &munged != old {
        let as_json = |s: &PodSpec| serde_json::to_value(s).unwrap_or_default();
        let changes = go_diff::diff("core.PodSpec", &as_json(old), &as_json(&munged));
        errs.push(FieldError::forbidden(&Path::new("spec"), format!("{UPDATE_FORBIDDEN}\n{changes}")));
    }
    for (i, c) in new.containers.iter().enumerate() {
        if c.image.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(&Path::new("spec").child("containers").index(i).child("image"), ""));
        }
    }
    errs
}

/// What every pod must satisfy, created or updated.
fn validate_pod(obj: &Value) -> ErrorList {
    let mut errs = meta::validate(obj, true, false);
    match obj.get("spec") {
        None => errs.push(FieldError::required(&Path::new("spec").child("containers"), "")),
        Some(_) => {
            let pod: Pod = typed(obj);
            errs.extend(validate_spec(&pod.spec.unwrap_or_default(), &Path::new("spec")));
        }
    }
    errs
}

impl Kind for Pods {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Pod>(g)
    }

    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Pod>(raw)
    }

    fn default(&self, obj: &mut Value) {
        if obj.get("spec").is_none() {
            return;
        }
        let mut pod: Pod = typed(obj);
        if let Some(spec) = pod.spec.as_mut() {
            default_spec(spec);
            // `SetDefaults_Pod`: a pod's own, not its template's.
            spec.enable_service_links.get_or_insert(true);
        }
        if let Ok(v) = serde_json::to_value(&pod) {
            *obj = v;
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        let mut pod: Pod = typed(obj);
        let mut spec = pod.spec.take().unwrap_or_default();
        let annotations = pod.metadata.annotations.as_ref();
        admit_spec(&mut spec, annotations.is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION)));
        pod.status = Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some(qos_class(&spec).into()),
            ..Default::default()
        });
        pod.spec = Some(spec);
        if let Ok(v) = serde_json::to_value(&pod) {
            *obj = v;
        }
    }

    fn prepare_update(&self, old: &Value, new: &mut Value) {
        super::keep_status(old, new);
        // Ephemeral containers are written through their own subresource only.
        match old.pointer("/spec/ephemeralContainers") {
            Some(e) if new.get("spec").is_some_and(Value::is_object) => new["spec"]["ephemeralContainers"] = e.clone(),
            _ => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("ephemeralContainers");
                }
            }
        }
    }

    /// Pods bound to a node and not finished wait for the node agent to stop them.
    fn deletion_grace_seconds(&self, obj: &Value, requested: Option<i64>) -> i64 {
        let node = obj.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
        let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
        if node.is_empty() || phase == "Succeeded" || phase == "Failed" {
            return 0;
        }
        let default = obj.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30);
        // Upstream turns a negative request into 1 second.
        requested.map(|g| if g < 0 { 1 } else { g }).unwrap_or(default).max(0)
    }

    fn part(&self, subresource: &str) -> Option<Part> {
        (subresource == "ephemeralcontainers").then_some(Part::Named("ephemeralcontainers"))
    }

    fn prepare_part_update(&self, _part: &str, old: &Value, new: &mut Value) {
        let mut merged = old.clone();
        match new.pointer("/spec/ephemeralContainers") {
            Some(e) => merged["spec"]["ephemeralContainers"] = e.clone(),
            None => {
                if let Some(spec) = merged.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("ephemeralContainers");
                }
            }
        }
        merged["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"].clone();
        *new = merged;
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = validate_pod(obj);
        if obj.pointer("/spec/ephemeralContainers").and_then(Value::as_array).is_some_and(|e| !e.is_empty()) {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("ephemeralContainers"),
                "cannot be set on create",
            ));
        }
        errs
    }

    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = validate_pod(new);
        let (o, n): (Pod, Pod) = (typed(old), typed(new));
        let phase = o.status.and_then(|s| s.phase).unwrap_or_default();
        let (o, n) = (o.spec.unwrap_or_default(), n.spec.unwrap_or_default());
        errs.extend(validate_spec_update(&o, &n));
        errs.extend(validate_ephemeral_update(&o, &n, &phase));
        errs
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
        Some(match field {
            "metadata.name" => meta::name(obj).into(),
            "metadata.namespace" => meta::namespace(obj).into(),
            "spec.nodeName" => s("/spec/nodeName"),
            "spec.restartPolicy" => s("/spec/restartPolicy"),
            "spec.schedulerName" => s("/spec/schedulerName"),
            "spec.serviceAccountName" => s("/spec/serviceAccountName"),
            "spec.hostNetwork" => {
                obj.pointer("/spec/hostNetwork").and_then(Value::as_bool).unwrap_or(false).to_string()
            }
            "status.phase" => s("/status/phase"),
            "status.podIP" => s("/status/podIP"),
            "status.nominatedNodeName" => s("/status/nominatedNodeName"),
            _ => return None,
        })
    }

    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }

    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let pod: Pod = typed(obj);
        let row = pod_row(&pod, now);
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let none = || "<none>".to_string();
        let ip = status.pod_ips.as_ref().and_then(|ips| ips.first()).map(|i| i.ip.clone()).filter(|s| !s.is_empty());
        let gates = spec.readiness_gates.as_ref().filter(|g| !g.is_empty()).map(|gates| {
            let conds = status.conditions.clone().unwrap_or_default();
            let ok = gates
                .iter()
                .filter(|g| conds.iter().find(|c| c.type_ == g.condition_type).is_some_and(|c| c.status == "True"))
                .count();
            format!("{ok}/{}", gates.len())
        });
        vec![
            json!(meta::name(obj)),
            json!(row.ready),
            json!(row.status),
            json!(row.restarts),
            json!(meta::age(obj, now)),
            json!(ip.unwrap_or_else(none)),
            json!(spec.node_name.filter(|s| !s.is_empty()).unwrap_or_else(none)),
            json!(status.nominated_node_name.filter(|s| !s.is_empty()).unwrap_or_else(none)),
            json!(gates.unwrap_or_else(none)),
        ]
    }
}

/// The READY, STATUS and RESTARTS cells of a pod.
pub struct PodRow {
    pub ready: String,
    pub status: String,
    pub restarts: String,
}

/// The STATUS column of `kubectl get pods`.
pub fn pod_status_reason(pod: &Pod) -> String {
    pod_row(pod, Timestamp::now()).status
}

fn terminated_finished(cs: &ContainerStatus) -> Option<Timestamp> {
    cs.last_state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0)
}

fn is_restartable_init(c: Option<&Container>) -> bool {
    c.and_then(|c| c.restart_policy.as_deref()) == Some("Always")
}

/// Upstream's `printPod` (pkg/printers/internalversion/printers.go).
fn pod_row(pod: &Pod, now: Timestamp) -> PodRow {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let mut total = spec.containers.len();
    total += init_specs.iter().filter(|c| is_restartable_init(Some(c))).count();
    let mut ready = 0;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;
    let mut reason = status.reason.clone().filter(|r| !r.is_empty()).or(status.phase.clone()).unwrap_or_default();
    let conditions = status.conditions.clone().unwrap_or_default();
    if conditions.iter().any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated")) {
        reason = "SchedulingGated".into();
    }
    let later = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };

    let mut initializing = false;
    let init_statuses = status.init_container_statuses.clone().unwrap_or_default();
    for (i, c) in init_statuses.iter().enumerate() {
        restarts += i64::from(c.restart_count);
        last_restart = later(last_restart, terminated_finished(c));
        let spec_c = init_specs.iter().find(|s| s.name == c.name);
        if is_restartable_init(spec_c) {
            sidecar_restarts += i64::from(c.restart_count);
            last_sidecar_restart = later(last_sidecar_restart, terminated_finished(c));
        }
        let state = c.state.clone().unwrap_or_default();
        if let Some(t) = state.terminated.as_ref().filter(|t| t.exit_code == 0) {
            let _ = t;
            continue;
        }
        if is_restartable_init(spec_c) && c.started == Some(true) {
            if c.ready {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = &state.terminated {
            reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            };
        } else if let Some(r) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions.iter().any(|c| c.type_ == "Initialized" && c.status == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in status.container_statuses.iter().flatten().rev() {
            restarts += i64::from(c.restart_count);
            last_restart = later(last_restart, terminated_finished(c));
            let state = c.state.clone().unwrap_or_default();
            let waiting = state.waiting.as_ref().and_then(|w| w.reason.clone()).filter(|r| !r.is_empty());
            if let Some(w) = waiting {
                reason = w;
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if t.signal.unwrap_or(0) != 0 => {
                        format!("Signal:{}", t.signal.unwrap_or(0))
                    }
                    None => format!("ExitCode:{}", t.exit_code),
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            reason = if pod_ready { "Running".into() } else { "NotReady".into() };
        }
    }

    let phase = status.phase.as_deref().unwrap_or("");
    let deleting = pod.metadata.deletion_timestamp.is_some();
    if deleting && status.reason.as_deref() == Some("NodeLost") {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", time::since(Some(t), now)),
        _ => restarts.to_string(),
    };
    PodRow { ready: format!("{ready}/{total}"), status: reason, restarts: restarts_str }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("valid pod")
    }

    /// What the registry does to a new pod before validation.
    fn created(obj: &mut Value) {
        Pods.default(obj);
        Pods.prepare_create(obj);
    }

    #[test]
    fn updates_are_defaulted_and_forbidden_changes_show_a_diff() {
        // The tutorial: spring-pod applied, then the variant with a renamed container over it.
        let mut old = json!({"metadata": {"name": "spring-pod", "namespace": "default"},
            "spec": {"containers": [{"name": "spring-container", "image": "spring-server", "ports": [{"containerPort": 8080}]}]}});
        created(&mut old);
        let mut new = old.clone();
        new["spec"]["containers"] = json!([{"name": "spring-container:latest", "image": "spring-server",
            "imagePullPolicy": "Always", "ports": [{"containerPort": 8080}]}]);
        Pods.default(&mut new);
        let errs = Pods.validate_update(&old, &new);
        let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 2, "{texts:#?}");
        assert!(texts[0].starts_with("spec.containers[0].name: Invalid value: \"spring-container:latest\""));
        assert!(texts[1].starts_with(&format!("spec: Forbidden: {UPDATE_FORBIDDEN}\n  core.PodSpec{{\n")));
        assert!(texts[1].contains("- \t\t\tName: \"spring-container\",\n+ \t\t\tName: \"spring-container:latest\","));
        // A write that drops a defaulted field gets it back: no change at all.
        let mut dropped = old.clone();
        dropped["spec"]["containers"][0]["ports"][0].as_object_mut().map(|p| p.remove("protocol"));
        dropped["spec"].as_object_mut().map(|s| s.remove("dnsPolicy"));
        Pods.default(&mut dropped);
        assert_eq!(dropped, old);
    }

    #[test]
    fn pull_policy_defaults() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(default_pull_policy("app@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn defaults_fill_what_kubernetes_fills() {
        let mut obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx-pod", "namespace": "default"},
            "spec": {"containers": [{"name": "nginx-container", "image": "nginx", "ports": [{"containerPort": 80}]}]}});
        created(&mut obj);
        let c = &obj["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(obj["spec"]["restartPolicy"], "Always");
        assert_eq!(obj["spec"]["serviceAccountName"], "default");
        assert_eq!(obj["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(obj["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(obj["status"]["phase"], "Pending");
        assert_eq!(obj["status"]["qosClass"], "BestEffort");
        assert!(Pods.validate(&obj).is_empty());

        // A node's mirror pod runs as no account.
        let mut mirror = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "static", "namespace": "default", "annotations": {"kubernetes.io/config.mirror": "h"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        created(&mut mirror);
        assert!(mirror["spec"].get("serviceAccountName").is_none(), "{mirror}");
        assert_eq!(mirror["spec"]["priority"], 0);
    }

    #[test]
    fn ephemeral_containers_are_added_through_their_subresource_only() {
        let mut old = json!({"metadata": {"name": "p", "namespace": "default", "resourceVersion": "5"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}});
        created(&mut old);
        // Through the main resource they are ignored (kept as they were).
        let mut main = old.clone();
        main["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox"}]);
        Pods.prepare_update(&old, &mut main);
        assert!(main["spec"].get("ephemeralContainers").is_none());
        // Through pods/ephemeralcontainers: added, defaulted, validated.
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"] =
            json!([{"name": "dbg", "image": "busybox", "targetContainerName": "app", "stdin": true, "tty": true}]);
        new["spec"]["containers"][0]["image"] = json!("ignored");
        Pods.default(&mut new);
        let part = Pods.part("ephemeralcontainers").expect("a part");
        assert_eq!(part, Part::Named("ephemeralcontainers"));
        Pods.prepare_part_update("ephemeralcontainers", &old, &mut new);
        assert_eq!(new["spec"]["containers"][0]["image"], "busybox");
        assert_eq!(new["spec"]["ephemeralContainers"][0]["imagePullPolicy"], "Always");
        assert!(Pods.validate_update(&old, &new).is_empty(), "{:?}", Pods.validate_update(&old, &new));
        // Once there, they may not change or go; names are unique across all containers.
        let mut changed = new.clone();
        changed["spec"]["ephemeralContainers"][0]["image"] = json!("other");
        changed["spec"]["ephemeralContainers"].as_array_mut().expect("list").push(
            json!({"name": "app", "image": "busybox", "imagePullPolicy": "Always", "ports": [{"containerPort": 80, "protocol": "TCP"}], "targetContainerName": "nope"}),
        );
        let texts: Vec<String> = Pods.validate_update(&new, &changed).iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[1].targetContainerName: Not found: \"nope\"",
                "spec.ephemeralContainers[1].name: Duplicate value: \"app\"",
                "spec.ephemeralContainers[0]: Forbidden: existing ephemeral containers \"dbg\" may not be changed\n",
            ]
        );
        let mut create = old.clone();
        create["spec"]["ephemeralContainers"] =
            json!([{"name": "dbg", "image": "busybox", "imagePullPolicy": "Always"}]);
        let texts: Vec<String> = Pods.validate(&create).iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["spec.ephemeralContainers: Forbidden: cannot be set on create"]);
        let mut done = old.clone();
        done["status"]["phase"] = json!("Succeeded");
        let mut late = new.clone();
        late["status"]["phase"] = json!("Succeeded");
        let texts: Vec<String> = Pods.validate_update(&done, &late).iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "spec.ephemeralContainers: Forbidden: cannot be added to a pod that has terminated (phase Succeeded): its containers no longer run"
            ]
        );
    }

    #[test]
    fn seccomp_profiles_are_validated_as_upstream() {
        let mut obj = json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "../x.json"}},
                "containers": [{"name": "c", "image": "busybox",
                "securityContext": {"seccompProfile": {"type": "Strict"}}}]}});
        created(&mut obj);
        let texts: Vec<String> = Pods.validate(&obj).iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "spec.containers[0].securityContext.seccompProfile.type: Unsupported value: \"Strict\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\"",
                "spec.securityContext.seccompProfile.localhostProfile: Invalid value: \"../x.json\": must not contain '..'",
            ]
        );
    }

    #[test]
    fn env_sources_are_validated_as_upstream() {
        let mut obj = json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "env": [
                    {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}},
                    {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
                    {"name": "C", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {"name": "1D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}
                ],
                "envFrom": [{"secretRef": {"name": "s"}, "prefix": "9"}, {}]}]}});
        created(&mut obj);
        let texts: Vec<String> = Pods.validate(&obj).iter().map(ToString::to_string).collect();
        let p = "spec.containers[0]";
        assert_eq!(
            texts,
            [
                format!(
                    "{p}.env[0].valueFrom.fieldRef.fieldPath: Invalid value: \"spec.foo\": error converting fieldPath: field label not supported: spec.foo"
                ),
                format!(
                    "{p}.env[1].valueFrom.fieldRef.fieldPath: Unsupported value: \"metadata.labels\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\""
                ),
                format!("{p}.env[2].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty"),
                format!("{p}.env[3].name: Invalid value: \"1D\": {}", names::env_var_name("1D")[0]),
                format!("{p}.envFrom[0].prefix: Invalid value: \"9\": {}", names::env_var_name("9")[0]),
                format!("{p}.envFrom[1]: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`"),
            ]
        );
    }

    #[test]
    fn tutorial_container_name_is_rejected() {
        let mut obj = json!({"metadata": {"name": "spring-pod", "namespace": "default"},
            "spec": {"containers": [{"name": "spring-container:latest", "image": "spring-server"}]}});
        created(&mut obj);
        let errs = Pods.validate(&obj);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "spec.containers[0].name: Invalid value: \"spring-container:latest\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
    }

    #[test]
    fn spec_updates_limited_to_images() {
        let mut old = json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "a:1"}]}});
        created(&mut old);
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("a:2");
        assert!(Pods.validate_update(&old, &new).is_empty());
        new["spec"]["containers"][0]["env"] = json!([{"name": "X", "value": "1"}]);
        let errs = Pods.validate_update(&old, &new);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with("spec: Forbidden: pod updates may not change fields"));
    }

    #[test]
    fn status_column_follows_printpod() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}));
        assert_eq!(pod_status_reason(&p), "ImagePullBackOff");
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "initContainers": [{"name": "i"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {}}}]}}),
        );
        assert_eq!(pod_status_reason(&p), "Init:0/1");
        let p = pod(
            json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": true, "restartCount": 2,
                "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:00:00Z"}}}]}}),
        );
        let row = pod_row(&p, "2026-01-01T00:05:00Z".parse().expect("ts"));
        assert_eq!(row.status, "Terminating");
        assert_eq!(row.ready, "1/1");
        assert_eq!(row.restarts, "2 (5m ago)");
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}));
        assert_eq!(pod_status_reason(&p), "Completed");
    }
}
