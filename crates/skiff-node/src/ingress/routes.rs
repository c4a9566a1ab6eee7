//! Where an HTTP request goes, from the Ingresses of skiff's class and the Services and
//! EndpointSlices they name: pure, so every matching rule of the Ingress specification is
//! table-tested. Hosts match exactly, then by wildcard (`*.example.com` is one label deep),
//! then rules without a host; within them the longest matching path wins, `Exact` before
//! `Prefix` (`ImplementationSpecific` is `Prefix`, matched element by element:
//! `/foo` matches `/foo/bar`, not `/foobar`); no match is the default backend, else 404.

use crate::service_view::Snapshot;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The ready endpoints of `service` (NAMESPACE/NAME:PORT), possibly none.
    Endpoints { service: String, addresses: Vec<SocketAddr> },
    /// Named but not there: a missing Service or port (a 502 says which).
    Missing(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    // Ordered so that, at equal length, Exact sorts first.
    Exact,
    Prefix,
}

#[derive(Debug, Clone)]
struct PathRule {
    path: String,
    kind: Match,
    backend: Backend,
}

/// The routing table of this node's ingress at one moment.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    exact: HashMap<String, Vec<PathRule>>,
    /// By the domain below the wildcard: `*.example.com` is under `example.com`.
    wildcard: HashMap<String, Vec<PathRule>>,
    any_host: Vec<PathRule>,
    default: Option<Backend>,
    /// TLS: host (or `*.domain`) → the Secret (NAMESPACE/NAME) with its certificate.
    pub tls: HashMap<String, String>,
}

impl Routes {
    /// The table for `ingresses` (skiff's only: `skiff_core::ingress_class::serves`), their backends resolved
    /// against `services`.
    pub fn build(ingresses: &[impl std::borrow::Borrow<Ingress>], services: &Snapshot) -> Routes {
        let mut routes = Routes::default();
        // Oldest first, as controllers order conflicting Ingresses.
        let mut ingresses: Vec<&Ingress> = ingresses.iter().map(|i| i.borrow()).collect();
        ingresses.sort_by_key(|i| (i.metadata.creation_timestamp.clone().map(|t| t.0), i.metadata.name.clone()));
        for ing in ingresses {
            let ns = ing.metadata.namespace.as_deref().unwrap_or_default();
            let Some(spec) = &ing.spec else { continue };
            if let Some(b) = &spec.default_backend
                && routes.default.is_none()
            {
                routes.default = Some(resolve(ns, b, services));
            }
            for tls in spec.tls.iter().flatten() {
                let Some(secret) = &tls.secret_name else { continue };
                for host in tls.hosts.iter().flatten() {
                    routes.tls.entry(host.to_lowercase()).or_insert_with(|| format!("{ns}/{secret}"));
                }
            }
            for rule in spec.rules.iter().flatten() {
                let Some(http) = &rule.http else { continue };
                let paths = http.paths.iter().map(|p| PathRule {
                    path: p.path.clone().unwrap_or_else(|| "/".into()),
                    kind: if p.path_type == "Exact" { Match::Exact } else { Match::Prefix },
                    backend: resolve(ns, &p.backend, services),
                });
                let list = match rule.host.as_deref().map(str::to_lowercase) {
                    None => &mut routes.any_host,
                    Some(h) if h.is_empty() => &mut routes.any_host,
                    Some(h) => match h.strip_prefix("*.") {
                        Some(domain) => routes.wildcard.entry(domain.to_string()).or_default(),
                        None => routes.exact.entry(h).or_default(),
                    },
                };
                list.extend(paths);
            }
        }
        routes
    }

    /// Where a request for `host` (a Host header: the port is ignored) and `path` goes; None
    /// when nothing matches and there is no default backend.
    pub fn route(&self, host: &str, path: &str) -> Option<&Backend> {
        let host = strip_port(host).to_lowercase();
        let rules = self.exact.get(&host).or_else(|| {
            let (_, domain) = host.split_once('.')?;
            self.wildcard.get(domain)
        });
        let rules = rules.map(Vec::as_slice).unwrap_or(&self.any_host);
        best(rules, path).or(self.default.as_ref())
    }
}

/// The Host header without its port (`[::1]:80` keeps its brackets).
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    }
}

fn best<'a>(rules: &'a [PathRule], path: &str) -> Option<&'a Backend> {
    rules
        .iter()
        .filter(|r| matches(r, path))
        // The longest path in elements (`/foo/` and `/foo` are as long), then Exact.
        .min_by_key(|r| (std::cmp::Reverse(r.path.split('/').filter(|s| !s.is_empty()).count()), r.kind))
        .map(|r| &r.backend)
}

fn matches(rule: &PathRule, path: &str) -> bool {
    match rule.kind {
        Match::Exact => rule.path == path,
        Match::Prefix => {
            let elements = |p: &str| p.split('/').filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>();
            let (want, have) = (elements(&rule.path), elements(path));
            have.len() >= want.len() && want.iter().zip(&have).all(|(a, b)| a == b)
        }
    }
}

/// An Ingress backend as addresses: its Service's port (by number or name), then that port's
/// ready endpoints.
fn resolve(ns: &str, backend: &IngressBackend, services: &Snapshot) -> Backend {
    let Some(svc_ref) = &backend.service else {
        return Backend::Missing("a resource backend, which this ingress does not serve".into());
    };
    let port_ref = svc_ref.port.as_ref();
    let port_label = match (port_ref.and_then(|p| p.number), port_ref.and_then(|p| p.name.clone())) {
        (Some(n), _) => n.to_string(),
        (None, Some(name)) => name,
        (None, None) => String::new(),
    };
    let label = format!("{ns}/{}:{port_label}", svc_ref.name);
    let Some(svc) = services.in_namespace(ns).find(|s| s.metadata.name.as_deref() == Some(svc_ref.name.as_str()))
    else {
        return Backend::Missing(format!("service \"{ns}/{}\" not found", svc_ref.name));
    };
    let Some(port) = service_port(svc, &port_label) else {
        return Backend::Missing(format!("service \"{ns}/{}\" has no port {port_label}", svc_ref.name));
    };
    let port_name = port.name.clone().unwrap_or_default();
    let mut addresses = Vec::new();
    let slices = services.slices.iter().filter(|s| {
        s.metadata.namespace.as_deref() == Some(ns)
            && s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")) == Some(&svc_ref.name)
    });
    for slice in slices {
        let Some(number) = (slice.ports.iter().flatten())
            .find(|p| p.name.as_deref().unwrap_or_default() == port_name)
            .and_then(|p| p.port)
            .and_then(|n| u16::try_from(n).ok())
        else {
            continue;
        };
        for e in slice.endpoints.iter().flatten() {
            if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            let ips = e.addresses.iter().filter_map(|a| a.parse::<Ipv4Addr>().ok());
            addresses.extend(ips.map(|ip| SocketAddr::from((ip, number))));
        }
    }
    addresses.sort();
    addresses.dedup();
    Backend::Endpoints { service: label, addresses }
}

fn service_port<'a>(svc: &'a Service, label: &str) -> Option<&'a k8s_openapi::api::core::v1::ServicePort> {
    let ports = svc.spec.as_ref()?.ports.as_ref()?;
    ports.iter().find(|p| p.port.to_string() == label || p.name.as_deref() == Some(label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn ingress(name: &str, spec: serde_json::Value) -> Ingress {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}))
            .expect("ingress")
    }

    fn services() -> Snapshot {
        let svc = |name: &str| -> Arc<Service> {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
                    "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]}}))
                .expect("svc"),
            )
        };
        let slice = |name: &str, ip: &str| {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": format!("{name}-x"), "namespace": "default",
                    "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                    "endpoints": [{"addresses": [ip], "conditions": {"ready": true}},
                                  {"addresses": ["10.42.0.99"], "conditions": {"ready": false}}]}))
                .expect("slice"),
            )
        };
        Snapshot {
            services: vec![svc("web"), svc("api"), svc("other")],
            slices: vec![slice("web", "10.42.0.5"), slice("api", "10.42.0.6"), slice("other", "10.42.0.7")],
            listed: true,
        }
    }

    fn backend(name: &str, port: serde_json::Value) -> serde_json::Value {
        json!({"service": {"name": name, "port": port}})
    }

    /// The endpoint a request reaches, or what happens instead.
    fn reach(routes: &Routes, host: &str, path: &str) -> String {
        match routes.route(host, path) {
            Some(Backend::Endpoints { addresses, .. }) => {
                addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            }
            Some(Backend::Missing(why)) => format!("502: {why}"),
            None => "404".into(),
        }
    }

    #[test]
    fn hosts_paths_and_the_default_backend() {
        let routes = Routes::build(
            &[
                ingress(
                    "a",
                    json!({"rules": [
                    {"host": "hello.localhost", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend("web", json!({"number": 80}))},
                        {"path": "/api", "pathType": "Prefix", "backend": backend("api", json!({"name": "http"}))},
                        {"path": "/exact", "pathType": "Exact", "backend": backend("other", json!({"number": 80}))}]}},
                    {"host": "*.wild.test", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend("other", json!({"number": 80}))}]}},
                    {"http": {"paths": [
                        {"path": "/any", "pathType": "ImplementationSpecific", "backend": backend("api", json!({"number": 80}))}]}}]}),
                ),
                ingress(
                    "b",
                    json!({"defaultBackend": backend("web", json!({"number": 80})), "rules": [
                    {"host": "broken.test", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend("gone", json!({"number": 80}))},
                        {"path": "/port", "pathType": "Prefix", "backend": backend("web", json!({"number": 81}))}]}}]}),
                ),
            ],
            &services(),
        );
        let cases = [
            ("hello.localhost", "/", "10.42.0.5:8080"),
            ("Hello.Localhost:8080", "/index.html", "10.42.0.5:8080"),
            ("hello.localhost", "/api", "10.42.0.6:8080"),
            ("hello.localhost", "/api/v1/x", "10.42.0.6:8080"),
            ("hello.localhost", "/apis", "10.42.0.5:8080"),
            ("hello.localhost", "/exact", "10.42.0.7:8080"),
            ("hello.localhost", "/exact/more", "10.42.0.5:8080"),
            ("a.wild.test", "/x", "10.42.0.7:8080"),
            // One label deep only; other hosts fall to the rules without a host.
            ("a.b.wild.test", "/any/thing", "10.42.0.6:8080"),
            ("elsewhere", "/any", "10.42.0.6:8080"),
            ("elsewhere", "/nothing", "10.42.0.5:8080"),
            ("broken.test", "/", "502: service \"default/gone\" not found"),
            ("broken.test", "/port", "502: service \"default/web\" has no port 81"),
        ];
        for (host, path, want) in cases {
            assert_eq!(reach(&routes, host, path), want, "{host}{path}");
        }
        let none = Routes::build(&[] as &[Ingress], &services());
        assert_eq!(reach(&none, "x", "/"), "404");
    }
}
