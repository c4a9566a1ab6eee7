//! A container's `envFrom` and `env[].valueFrom`, resolved as the kubelet resolves them: the
//! `envFrom` sources first (each key with its prefix), then `env` in order, a later name
//! overriding an earlier one. Pure: the worker fetches the Secrets and ConfigMaps named
//! (`referenced`) and passes them in.

use crate::service_view::Snapshot;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret, Service,
};
use skiff_core::quantity;
use std::collections::{BTreeMap, HashMap};

/// What a container's environment may read besides its own spec.
pub struct Sources<'a> {
    pub pod: &'a Pod,
    /// The pod's addresses, IPv4 first (empty before it has any).
    pub pod_ips: Vec<String>,
    pub host_ip: String,
    /// The Secrets and ConfigMaps of the pod's namespace that `referenced` named and exist.
    pub objects: &'a Objects,
    /// The node's allocatable CPU (millicores) and memory (bytes): a `limits.*` reference to a
    /// container without that limit reads these, as upstream.
    pub allocatable_millicores: i64,
    pub allocatable_memory: i64,
}

/// Why a container's environment cannot be made (`CreateContainerConfigError`), worded as the
/// kubelet words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound { key: String, namespace: String, name: String },
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound { key: String, namespace: String, name: String },
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("unsupported container resource : {0}")]
    Resource(String),
    #[error("invalid container resource divisor {0:?}")]
    Divisor(String),
    #[error("services have not yet been read at least once, cannot construct envvars")]
    ServicesNotRead,
}

/// A container's resolved environment.
#[derive(Debug, Default, PartialEq)]
pub struct Resolved {
    /// Plain `name=value` entries in order, values escaped (`$` as `$$`) where they came from
    /// elsewhere, so that `$(VAR)` expansion leaves them as they are (as upstream expands
    /// only `value`).
    pub env: Vec<EnvVar>,
    /// Keys of an `envFrom` source skipped as invalid names: the kubelet's warning event text.
    pub warnings: Vec<String>,
}

/// The Secrets and ConfigMaps a container's environment reads, by name.
#[derive(Debug, Default, PartialEq)]
pub struct Referenced {
    pub secrets: Vec<String>,
    pub config_maps: Vec<String>,
}

/// The Secrets and ConfigMaps fetched for a container, by name (a missing one is absent).
#[derive(Debug, Default)]
pub struct Objects {
    pub secrets: HashMap<String, Secret>,
    pub config_maps: HashMap<String, ConfigMap>,
    /// The pod's service-account tokens, by audience and lifetime (`volumes::tokens::Key`).
    pub tokens: HashMap<(String, i64), String>,
}

/// What `c` reads, so the caller can fetch it first.
pub fn referenced(c: &Container) -> Referenced {
    let mut r = Referenced::default();
    for from in c.env_from.iter().flatten() {
        r.secrets.extend(from.secret_ref.as_ref().map(|s| s.name.clone()));
        r.config_maps.extend(from.config_map_ref.as_ref().map(|s| s.name.clone()));
    }
    for from in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
        r.secrets.extend(from.secret_key_ref.as_ref().map(|s| s.name.clone()));
        r.config_maps.extend(from.config_map_key_ref.as_ref().map(|s| s.name.clone()));
    }
    r.deduplicated()
}

impl Referenced {
    /// Each name once, in order.
    pub fn deduplicated(mut self) -> Referenced {
        for names in [&mut self.secrets, &mut self.config_maps] {
            names.sort();
            names.dedup();
        }
        self
    }
}

/// A Secret's or a ConfigMap's entries as environment values, with the kubelet's words for what
/// is missing. A ConfigMap's `binaryData` is not read (as upstream).
enum KeyValues<'a> {
    Secret(&'a Secret),
    ConfigMap(&'a ConfigMap),
}

impl KeyValues<'_> {
    fn entries(&self) -> Vec<(String, String)> {
        match self {
            KeyValues::Secret(s) => {
                s.data.iter().flatten().map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned())).collect()
            }
            KeyValues::ConfigMap(c) => c.data.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        match self {
            KeyValues::Secret(s) => s.data.as_ref()?.get(key).map(|v| String::from_utf8_lossy(&v.0).into_owned()),
            KeyValues::ConfigMap(c) => c.data.as_ref()?.get(key).cloned(),
        }
    }
}

/// The Secret (`secret`) or ConfigMap named, or what its absence is.
fn lookup<'a>(src: &'a Sources, secret: bool, name: &str) -> Result<KeyValues<'a>, EnvError> {
    if secret {
        src.objects.secrets.get(name).map(KeyValues::Secret).ok_or_else(|| EnvError::SecretNotFound(name.into()))
    } else {
        src.objects
            .config_maps
            .get(name)
            .map(KeyValues::ConfigMap)
            .ok_or_else(|| EnvError::ConfigMapNotFound(name.into()))
    }
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.replace('$', "$$")), value_from: None }
}

/// `c`'s environment with every source resolved.
pub fn resolve(c: &Container, src: &Sources) -> Result<Resolved, EnvError> {
    let namespace = src.pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = Resolved::default();
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (secret, name, optional) = match (&from.secret_ref, &from.config_map_ref) {
            (Some(r), _) => (true, &r.name, r.optional == Some(true)),
            (None, Some(r)) => (false, &r.name, r.optional == Some(true)),
            (None, None) => continue,
        };
        let values = match lookup(src, secret, name) {
            Ok(v) => v,
            Err(_) if optional => continue,
            Err(e) => return Err(e),
        };
        let mut invalid = Vec::new();
        for (key, value) in values.entries() {
            let name = format!("{prefix}{key}");
            // The kubelet's rule (upstream's before relaxed names): `[-._a-zA-Z][-._a-zA-Z0-9]*`.
            if !skiff_core::names::env_var_name(&name).is_empty() {
                invalid.push(name);
                continue;
            }
            out.env.push(plain(&name, &value));
        }
        if !invalid.is_empty() {
            out.warnings.push(format!(
                "Keys [{}] from the EnvFrom {} {namespace}/{name} were skipped since they are considered invalid environment variable names.",
                invalid.join(", "),
                if secret { "secret" } else { "configMap" },
            ));
        }
    }
    for e in c.env.iter().flatten() {
        let Some(from) = &e.value_from else {
            out.env.push(e.clone());
            continue;
        };
        let key_ref = match (&from.secret_key_ref, &from.config_map_key_ref) {
            (Some(r), _) => Some((true, &r.name, &r.key, r.optional == Some(true))),
            (None, Some(r)) => Some((false, &r.name, &r.key, r.optional == Some(true))),
            (None, None) => None,
        };
        let value = if let Some(f) = &from.field_ref {
            Some(field_value(f, src)?)
        } else if let Some(r) = &from.resource_field_ref {
            Some(resource_value(r, c, src)?)
        } else if let Some((secret, name, key, optional)) = key_ref {
            match lookup(src, secret, name) {
                Err(_) if optional => None,
                Err(e) => return Err(e),
                Ok(values) => match values.get(key) {
                    Some(v) => Some(v),
                    None if optional => None,
                    None => {
                        let (key, namespace, name) = (key.clone(), namespace.clone(), name.clone());
                        return Err(if secret {
                            EnvError::SecretKeyNotFound { key, namespace, name }
                        } else {
                            EnvError::ConfigMapKeyNotFound { key, namespace, name }
                        });
                    }
                },
            }
        } else {
            None
        };
        if let Some(v) = value {
            out.env.push(plain(&e.name, &v));
        }
    }
    Ok(out)
}

/// The Services a pod's environment names, as the kubelet gives them: `KUBERNETES_SERVICE_*`
/// from the `kubernetes` Service in `default` always, and with `enableServiceLinks` (the
/// default) every Service of the pod's namespace that has a cluster IP, as `NAME_SERVICE_HOST`,
/// `NAME_SERVICE_PORT[_PORTNAME]` and Docker's link variables (`NAME_PORT_80_TCP_ADDR` ...).
/// They come first, so the pod's own variables override them and `$(VAR)` can read them.
pub fn service_links(pod: &Pod, services: &Snapshot) -> Result<Vec<EnvVar>, EnvError> {
    if !services.listed {
        return Err(EnvError::ServicesNotRead);
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links) != Some(false);
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for svc in services.services.iter().map(|s| s.as_ref()) {
        let (Some(name), Some(ns)) = (svc.metadata.name.as_deref(), svc.metadata.namespace.as_deref()) else {
            continue;
        };
        let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default();
        if ip.is_empty() || ip == "None" {
            continue;
        }
        if ns == "default" && name == "kubernetes" {
            chosen.entry(name).or_insert(svc);
        } else if ns == namespace && links {
            chosen.insert(name, svc);
        }
    }
    let mut out = Vec::new();
    for (name, svc) in chosen {
        let spec = svc.spec.as_ref();
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default();
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
        let prefix = name.replace('-', "_").to_uppercase();
        out.push(plain(&format!("{prefix}_SERVICE_HOST"), ip));
        let Some(first) = ports.first() else { continue };
        out.push(plain(&format!("{prefix}_SERVICE_PORT"), &first.port.to_string()));
        for p in ports.iter().filter(|p| p.name.as_deref().is_some_and(|n| !n.is_empty())) {
            let port_name = p.name.as_deref().unwrap_or_default().replace('-', "_").to_uppercase();
            out.push(plain(&format!("{prefix}_SERVICE_PORT_{port_name}"), &p.port.to_string()));
        }
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let (lower, upper) = (proto.to_lowercase(), proto.to_uppercase());
            let url = format!("{lower}://{ip}:{}", p.port);
            if i == 0 {
                out.push(plain(&format!("{prefix}_PORT"), &url));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{upper}", p.port);
            out.push(plain(&port_prefix, &url));
            out.push(plain(&format!("{port_prefix}_PROTO"), &lower));
            out.push(plain(&format!("{port_prefix}_PORT"), &p.port.to_string()));
            out.push(plain(&format!("{port_prefix}_ADDR"), ip));
        }
    }
    Ok(out)
}

/// `fieldRef`: what the downward API gives an environment variable.
pub(crate) fn field_value(f: &ObjectFieldSelector, src: &Sources) -> Result<String, EnvError> {
    let md = &src.pod.metadata;
    let spec = src.pod.spec.as_ref();
    let path = f.field_path.as_str();
    let subscript = |prefix: &str| path.strip_prefix(prefix)?.strip_suffix("']").map(str::to_string);
    let pairs = |m: &Option<BTreeMap<String, String>>| {
        let mut lines: Vec<String> = m.iter().flatten().map(|(k, v)| format!("{k}={v:?}")).collect();
        lines.sort();
        lines.join("\n")
    };
    Ok(match path {
        "metadata.name" => md.name.clone().unwrap_or_default(),
        "metadata.namespace" => md.namespace.clone().unwrap_or_default(),
        "metadata.uid" => md.uid.clone().unwrap_or_default(),
        "metadata.labels" => pairs(&md.labels),
        "metadata.annotations" => pairs(&md.annotations),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => src.host_ip.clone(),
        "status.podIP" => src.pod_ips.first().cloned().unwrap_or_default(),
        // Every address, comma-separated, as the kubelet gives it.
        "status.podIPs" => src.pod_ips.join(","),
        _ => {
            if let Some(k) = subscript("metadata.labels['") {
                md.labels.as_ref().and_then(|l| l.get(&k)).cloned().unwrap_or_default()
            } else if let Some(k) = subscript("metadata.annotations['") {
                md.annotations.as_ref().and_then(|a| a.get(&k)).cloned().unwrap_or_default()
            } else {
                return Err(EnvError::FieldPath(path.to_string()));
            }
        }
    })
}

/// `resourceFieldRef`: the container's (or a named sibling's) requests and limits, in units of
/// the divisor, rounded up; a missing limit reads the node's allocatable amount.
pub(crate) fn resource_value(r: &ResourceFieldSelector, own: &Container, src: &Sources) -> Result<String, EnvError> {
    let spec = src.pod.spec.as_ref();
    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => spec
            .into_iter()
            .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
            .find(|c| c.name == name)
            .unwrap_or(own),
        None => own,
    };
    let res = target.resources.clone().unwrap_or_default();
    let get = |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>, k: &str| {
        m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone())
    };
    let divisor = r.divisor.as_ref().map(|d| d.0.clone()).filter(|d| !d.is_empty());
    let (kind, amount) = match r.resource.as_str() {
        "limits.cpu" => ("cpu", get(&res.limits, "cpu")),
        "requests.cpu" => ("cpu", get(&res.requests, "cpu")),
        "limits.memory" => ("memory", get(&res.limits, "memory")),
        "requests.memory" => ("memory", get(&res.requests, "memory")),
        "limits.ephemeral-storage" => ("storage", get(&res.limits, "ephemeral-storage")),
        "requests.ephemeral-storage" => ("storage", get(&res.requests, "ephemeral-storage")),
        other => return Err(EnvError::Resource(other.to_string())),
    };
    let is_limit = r.resource.starts_with("limits.");
    if kind == "cpu" {
        let milli = match amount {
            Some(q) => quantity::millicores(&q).unwrap_or(0),
            None if is_limit => src.allocatable_millicores,
            None => 0,
        };
        let per = match &divisor {
            Some(d) => quantity::millicores(d).filter(|m| *m > 0).ok_or_else(|| EnvError::Divisor(d.clone()))?,
            None => 1000,
        };
        return Ok(((milli + per - 1) / per).to_string());
    }
    let bytes = match amount {
        Some(q) => quantity::bytes(&q).unwrap_or(0),
        None if is_limit && kind == "memory" => src.allocatable_memory,
        None => 0,
    };
    let per = match &divisor {
        Some(d) => quantity::bytes(d).filter(|b| *b > 0).ok_or_else(|| EnvError::Divisor(d.clone()))?,
        None => 1,
    };
    Ok(((bytes + per - 1) / per).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web", "tier": "front"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "default", "containers": [{"name": "c",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]}
        }))
        .expect("pod")
    }

    fn container(v: serde_json::Value) -> Container {
        serde_json::from_value(v).expect("container")
    }

    fn sources<'a>(pod: &'a Pod, objects: &'a Objects) -> Sources<'a> {
        Sources {
            pod,
            pod_ips: vec!["10.42.0.7".into(), "fd00:42::7".into()],
            host_ip: "192.0.2.10".into(),
            objects,
            allocatable_millicores: 2000,
            allocatable_memory: 1 << 30,
        }
    }

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(pairs.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()),
            ..Default::default()
        }
    }

    fn secrets(name: &str, pairs: &[(&str, &str)]) -> Objects {
        Objects { secrets: HashMap::from([(name.to_string(), secret(pairs))]), ..Default::default() }
    }

    fn config_map(pairs: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            data: Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    fn values(r: &Resolved) -> Vec<(String, String)> {
        r.env.iter().map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())).collect()
    }

    #[test]
    fn downward_api_and_resources() {
        let p = pod();
        let none = Objects::default();
        let c = container(
            json!({"name": "c", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}, "env": [
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
                {"name": "X", "value": "$(NAME)-x"}
            ]}),
        );
        let r = resolve(&c, &sources(&p, &none)).expect("resolved");
        let want = [
            ("NAME", "web"),
            ("NS", "shop"),
            ("IP", "10.42.0.7"),
            ("HOST", "192.0.2.10"),
            ("APP", "web"),
            ("SA", "default"),
            ("MEM", "64"),
            ("CPU", "2"),
            ("REQ", "250"),
            ("X", "$(NAME)-x"),
        ];
        let got = values(&r);
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn secrets_by_key_and_as_a_whole() {
        let p = pod();
        let secrets = secrets("db", &[("password", "pa$$"), ("user", "app"), ("1x", "no")]);
        let c = container(json!({"name": "c", "envFrom": [{"secretRef": {"name": "db"}, "prefix": "DB_"}], "env": [
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}}
        ]}));
        assert_eq!(referenced(&c), Referenced { secrets: vec!["db".into(), "gone".into()], config_maps: vec![] });
        let r = resolve(&c, &sources(&p, &secrets)).expect("resolved");
        assert_eq!(
            values(&r)[..3].to_vec(),
            [
                ("DB_1x".to_string(), "no".to_string()),
                ("DB_password".into(), "pa$$$$".into()),
                ("DB_user".into(), "app".into())
            ]
        );
        assert_eq!(values(&r)[3], ("PW".to_string(), "pa$$$$".to_string()));
        assert_eq!(r.env.len(), 4);
        // Without a prefix, "1x" is no name: skipped with the kubelet's event.
        let c = container(json!({"name": "c", "envFrom": [{"secretRef": {"name": "db"}}]}));
        let r = resolve(&c, &sources(&p, &secrets)).expect("resolved");
        assert_eq!(r.env.len(), 2);
        assert_eq!(
            r.warnings,
            [
                "Keys [1x] from the EnvFrom secret shop/db were skipped since they are considered invalid environment variable names."
            ]
        );
    }

    #[test]
    fn missing_sources_fail_as_the_kubelet_says() {
        let p = pod();
        let secrets = secrets("db", &[("user", "app")]);
        let key_ref = |name: &str, key: &str| {
            container(
                json!({"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}]}),
            )
        };
        let src = sources(&p, &secrets);
        assert_eq!(resolve(&key_ref("nope", "k"), &src).expect_err("fails").to_string(), "secret \"nope\" not found");
        assert_eq!(
            resolve(&key_ref("db", "password"), &src).expect_err("fails").to_string(),
            "couldn't find key password in Secret shop/db"
        );
        let cm = container(
            json!({"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}),
        );
        assert_eq!(resolve(&cm, &src).expect_err("fails").to_string(), "configmap \"cfg\" not found");
        let from = container(json!({"name": "c", "envFrom": [{"secretRef": {"name": "nope"}}]}));
        assert_eq!(resolve(&from, &src), Err(EnvError::SecretNotFound("nope".into())));
    }

    #[test]
    fn config_maps_by_key_and_as_a_whole() {
        let p = pod();
        let mut objects = Objects::default();
        objects.config_maps.insert("cfg".into(), config_map(&[("mode", "fast"), ("color", "blue"), ("bad key", "x")]));
        let c = container(json!({"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}], "env": [
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": true}}},
            {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": true}}}
        ]}));
        assert_eq!(referenced(&c).config_maps, ["cfg", "gone"]);
        let r = resolve(&c, &sources(&p, &objects)).expect("resolved");
        let want = [("color", "blue"), ("mode", "fast"), ("MODE", "fast")];
        assert_eq!(values(&r), want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(
            r.warnings,
            [
                "Keys [bad key] from the EnvFrom configMap shop/cfg were skipped since they are considered invalid environment variable names."
            ]
        );
        let missing_key = container(
            json!({"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}),
        );
        assert_eq!(
            resolve(&missing_key, &sources(&p, &objects)).expect_err("fails").to_string(),
            "couldn't find key k in ConfigMap shop/cfg"
        );
        let optional_whole =
            container(json!({"name": "c", "envFrom": [{"configMapRef": {"name": "gone", "optional": true}}]}));
        assert_eq!(resolve(&optional_whole, &sources(&p, &objects)).expect("resolved").env, []);
    }

    #[test]
    fn service_links_as_the_kubelet_names_them() {
        let svc = |ns: &str, name: &str, ip: &str, ports: serde_json::Value| -> std::sync::Arc<Service> {
            std::sync::Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns},
                    "spec": {"clusterIP": ip, "ports": ports}}))
                .expect("service"),
            )
        };
        let snapshot = Snapshot {
            services: vec![
                svc("default", "kubernetes", "10.43.0.1", json!([{"name": "https", "port": 443, "protocol": "TCP"}])),
                svc(
                    "shop",
                    "web-api",
                    "10.43.0.20",
                    json!([{"port": 80}, {"name": "dns-udp", "port": 53, "protocol": "UDP"}]),
                ),
                svc("shop", "headless", "None", json!([{"port": 80}])),
                svc("other", "elsewhere", "10.43.0.30", json!([{"port": 80}])),
            ],
            slices: vec![],
            listed: true,
        };
        let names = |env: Vec<EnvVar>| -> Vec<String> {
            env.into_iter().map(|e| format!("{}={}", e.name, e.value.unwrap_or_default())).collect()
        };
        let all = names(service_links(&pod(), &snapshot).expect("links"));
        assert_eq!(
            all,
            [
                "KUBERNETES_SERVICE_HOST=10.43.0.1",
                "KUBERNETES_SERVICE_PORT=443",
                "KUBERNETES_SERVICE_PORT_HTTPS=443",
                "KUBERNETES_PORT=tcp://10.43.0.1:443",
                "KUBERNETES_PORT_443_TCP=tcp://10.43.0.1:443",
                "KUBERNETES_PORT_443_TCP_PROTO=tcp",
                "KUBERNETES_PORT_443_TCP_PORT=443",
                "KUBERNETES_PORT_443_TCP_ADDR=10.43.0.1",
                "WEB_API_SERVICE_HOST=10.43.0.20",
                "WEB_API_SERVICE_PORT=80",
                "WEB_API_SERVICE_PORT_DNS_UDP=53",
                "WEB_API_PORT=tcp://10.43.0.20:80",
                "WEB_API_PORT_80_TCP=tcp://10.43.0.20:80",
                "WEB_API_PORT_80_TCP_PROTO=tcp",
                "WEB_API_PORT_80_TCP_PORT=80",
                "WEB_API_PORT_80_TCP_ADDR=10.43.0.20",
                "WEB_API_PORT_53_UDP=udp://10.43.0.20:53",
                "WEB_API_PORT_53_UDP_PROTO=udp",
                "WEB_API_PORT_53_UDP_PORT=53",
                "WEB_API_PORT_53_UDP_ADDR=10.43.0.20",
            ]
        );
        // enableServiceLinks: false keeps only the API server's.
        let mut quiet = pod();
        quiet.spec.as_mut().expect("spec").enable_service_links = Some(false);
        let only = names(service_links(&quiet, &snapshot).expect("links"));
        assert!(only.iter().all(|e| e.starts_with("KUBERNETES_")) && only.len() == 8, "{only:?}");
        let unread = Snapshot { listed: false, ..Default::default() };
        assert_eq!(service_links(&pod(), &unread), Err(EnvError::ServicesNotRead));
    }
}
