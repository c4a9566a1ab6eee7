//! A resource request's path, parsed once: the kind (from the kinds table), namespace, name and
//! subresource. A subresource is a route only if the kind declares it (`info().subresources`),
//! so the handlers never ask which kind they serve: `pods/binding` exists because pods declare
//! it, not because a handler compares plural names.

use crate::catalog::Snapshot;
use skiff_core::ApiError;
use skiff_core::kinds::{Kind, Part};

/// What a request path under `/api/v1/` or `/apis/GROUP/VERSION/` names.
pub struct Route {
    pub kind: &'static dyn Kind,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<Subresource>,
    /// `pods/NAME/proxy/PATH`: the path below `proxy` (with its leading `/`), as sent.
    pub proxy_path: Option<String>,
}

/// The subresources skiff serves, by what their handlers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// A part of the object read and written like the object: `status`, `ephemeralcontainers`.
    Part(Part),
    /// `pods/binding`: assign to a node.
    Binding,
    /// `deployments/scale` and the other kinds with replicas: an `autoscaling/v1` Scale.
    Scale,
    /// `namespaces/finalize`: replace the finalizers.
    Finalize,
    /// `pods/log`.
    Log,
    /// `pods/exec` and `pods/attach`: a streaming session with a container.
    Exec { attach: bool },
    /// `pods/portforward`.
    PortForward,
    /// `pods/eviction`: a delete a PodDisruptionBudget may refuse.
    Eviction,
    /// `pods/proxy` and `services/proxy`: HTTP passed to the pod.
    Proxy,
    /// `serviceaccounts/token`: a TokenRequest.
    Token,
    /// Declared (discovery lists it) but not served: 405 once the object is known to exist.
    Unserved(&'static str),
}

impl Route {
    /// Parse `path` (the whole request path) against the kinds `served` now.
    pub fn parse(path: &str, served: &Snapshot) -> Result<Route, ApiError> {
        // Segments are percent-decoded, as upstream's router does (`my%2Dpod` is `my-pod`).
        let decoded: Vec<String> = (path.split('/').filter(|s| !s.is_empty()))
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8().map(|c| c.into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|_| ApiError::NoResource)?;
        let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let (group, version, segs) = match segs.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            // The core group has no name: `/apis/v1/...` is not it.
            ["apis", group, version, rest @ ..] if !group.is_empty() && *group != "v1" => (*group, *version, rest),
            _ => return Err(ApiError::NoResource),
        };
        let (resource, namespace, tail) = match segs {
            // `namespaces/NAME/status` and `namespaces/NAME/finalize` are the namespace's own.
            ["namespaces", ns, res, tail @ ..] if !matches!(*res, "status" | "finalize") => (*res, Some(*ns), tail),
            [res, tail @ ..] => (*res, None, tail),
            [] => return Err(ApiError::NoResource),
        };
        let (name, sub) = match tail {
            [] => (None, None),
            [name] => (Some(*name), None),
            [name, sub, ..] if *sub == "proxy" => (Some(*name), Some(*sub)),
            [name, sub] => (Some(*name), Some(*sub)),
            _ => return Err(ApiError::NoResource),
        };
        let kind = served.by_resource(group, version, resource).ok_or(ApiError::NoResource)?;
        if namespace.is_some() && !kind.info().namespaced {
            return Err(ApiError::NoResource);
        }
        let sub = sub.map(|s| Subresource::of(kind, s)).transpose()?;
        // What follows `proxy` is the proxied path, raw (its own escapes and trailing slash kept).
        let proxy_path = (sub == Some(Subresource::Proxy)).then(|| {
            let prefix = if group.is_empty() { 2 } else { 3 }; // `api/v1` or `apis/GROUP/VERSION`
            // Up to and with the name and `proxy`.
            raw_tail(path, prefix + segs.len() - tail.len() + 2)
        });
        Ok(Route { kind, namespace: namespace.map(String::from), name: name.map(String::from), sub, proxy_path })
    }
}

/// `path` after its first `skip` non-empty segments, from the `/` before the next (at least `/`).
fn raw_tail(path: &str, skip: usize) -> String {
    let mut rest = path;
    for _ in 0..skip {
        rest = rest.trim_start_matches('/');
        rest = rest.find('/').map_or("", |i| &rest[i..]);
    }
    if rest.is_empty() { "/".to_string() } else { rest.to_string() }
}

impl Subresource {
    /// `kind`'s subresource `name`, if it declares one.
    fn of(kind: &dyn Kind, name: &str) -> Result<Subresource, ApiError> {
        let Some(&(declared, _, _)) = kind.info().subresources.iter().find(|(n, _, _)| *n == name) else {
            return Err(ApiError::NoResource);
        };
        Ok(match declared {
            "status" => Subresource::Part(Part::Status),
            "binding" => Subresource::Binding,
            "scale" => Subresource::Scale,
            "finalize" => Subresource::Finalize,
            "log" => Subresource::Log,
            "exec" => Subresource::Exec { attach: false },
            "attach" => Subresource::Exec { attach: true },
            "portforward" => Subresource::PortForward,
            "eviction" => Subresource::Eviction,
            "proxy" => Subresource::Proxy,
            "token" => Subresource::Token,
            other => kind.part(other).map_or(Subresource::Unserved(declared), Subresource::Part),
        })
    }

    /// Its name in paths and discovery.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Part(Part::Main) => "",
            Subresource::Part(Part::Status) => "status",
            Subresource::Part(Part::Named(name)) | Subresource::Unserved(name) => name,
            Subresource::Binding => "binding",
            Subresource::Scale => "scale",
            Subresource::Finalize => "finalize",
            Subresource::Log => "log",
            Subresource::Exec { attach: false } => "exec",
            Subresource::Exec { attach: true } => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Eviction => "eviction",
            Subresource::Proxy => "proxy",
            Subresource::Token => "token",
        }
    }

    /// The part of the object this subresource reads and writes, if it is one.
    pub fn part(self) -> Option<Part> {
        match self {
            Subresource::Part(p) => Some(p),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route as (kind's plural, namespace, name, subresource); None for a 404.
    type Parsed = Option<(&'static str, Option<String>, Option<String>, Option<Subresource>)>;

    fn parse(path: &str) -> Parsed {
        Route::parse(path, &Snapshot::default()).ok().map(|r| (r.kind.info().plural, r.namespace, r.name, r.sub))
    }

    #[test]
    fn proxy_paths_keep_what_follows() {
        let proxy = |path: &str| Route::parse(path, &Snapshot::default()).ok().map(|r| (r.name, r.sub, r.proxy_path));
        let web = |p: &str| Some((Some("web:80".to_string()), Some(Subresource::Proxy), Some(p.to_string())));
        assert_eq!(proxy("/api/v1/namespaces/default/services/web:80/proxy"), web("/"));
        assert_eq!(proxy("/api/v1/namespaces/default/services/web:80/proxy/"), web("/"));
        assert_eq!(proxy("/api/v1/namespaces/default/services/web:80/proxy/a/b%20c/"), web("/a/b%20c/"));
        let pod = Route::parse("/api/v1/namespaces/default/pods/proxy/proxy/x", &Snapshot::default()).expect("route");
        assert_eq!((pod.name.as_deref(), pod.proxy_path.as_deref()), (Some("proxy"), Some("/x")));
        assert!(Route::parse("/api/v1/namespaces/default/secrets/s/proxy/x", &Snapshot::default()).is_err());
    }

    #[test]
    fn routes_table() {
        let s = |v: &str| Some(v.to_string());
        let cases: &[(&str, Parsed)] = &[
            ("/api/v1/pods", Some(("pods", None, None, None))),
            ("/api/v1/namespaces/default/pods", Some(("pods", s("default"), None, None))),
            ("/api/v1/namespaces/default/pods/web", Some(("pods", s("default"), s("web"), None))),
            ("/api/v1/namespaces/default/pods/my%2Dpod", Some(("pods", s("default"), s("my-pod"), None))),
            (
                "/api/v1/namespaces/default/pods/web/status",
                Some(("pods", s("default"), s("web"), Some(Subresource::Part(Part::Status)))),
            ),
            (
                "/api/v1/namespaces/default/pods/web/ephemeralcontainers",
                Some(("pods", s("default"), s("web"), Some(Subresource::Part(Part::Named("ephemeralcontainers"))))),
            ),
            (
                "/api/v1/namespaces/default/pods/web/binding",
                Some(("pods", s("default"), s("web"), Some(Subresource::Binding))),
            ),
            ("/api/v1/namespaces/default/pods/web/log", Some(("pods", s("default"), s("web"), Some(Subresource::Log)))),
            (
                "/api/v1/namespaces/default/pods/web/attach",
                Some(("pods", s("default"), s("web"), Some(Subresource::Exec { attach: true }))),
            ),
            (
                "/api/v1/namespaces/default/pods/web/portforward",
                Some(("pods", s("default"), s("web"), Some(Subresource::PortForward))),
            ),
            (
                "/api/v1/namespaces/default/pods/web/eviction",
                Some(("pods", s("default"), s("web"), Some(Subresource::Eviction))),
            ),
            (
                "/api/v1/namespaces/default/serviceaccounts/app/token",
                Some(("serviceaccounts", s("default"), s("app"), Some(Subresource::Token))),
            ),
            ("/api/v1/namespaces", Some(("namespaces", None, None, None))),
            ("/api/v1/namespaces/kube-system", Some(("namespaces", None, s("kube-system"), None))),
            (
                "/api/v1/namespaces/kube-system/status",
                Some(("namespaces", None, s("kube-system"), Some(Subresource::Part(Part::Status)))),
            ),
            ("/api/v1/namespaces/gone/finalize", Some(("namespaces", None, s("gone"), Some(Subresource::Finalize)))),
            ("/api/v1/nodes/n1/status", Some(("nodes", None, s("n1"), Some(Subresource::Part(Part::Status))))),
            // What no kind declares, or no kind at all: 404.
            ("/api/v1/namespaces/default/secrets/s/status", None),
            ("/api/v1/namespaces/default/pods/web/finalize", None),
            ("/api/v1/namespaces/x/finalize/extra", None),
            ("/api/v1/namespaces/default/pods/web/status/more", None),
            ("/api/v1/widgets", None),
            ("/api/v1/namespaces/default/nodes/n1", None),
            ("/api/v1/", None),
            ("/api/v2/pods", None),
            ("/api/v1/namespaces/default/pods/%FF", None),
            // Named groups, under `/apis`.
            (
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
                Some(("leases", s("kube-node-lease"), s("n1"), None)),
            ),
            ("/apis/coordination.k8s.io/v1/leases", Some(("leases", None, None, None))),
            (
                "/apis/apps/v1/namespaces/default/deployments/web/scale",
                Some(("deployments", s("default"), s("web"), Some(Subresource::Scale))),
            ),
            ("/apis/apps/v1/namespaces/default/daemonsets/agent/scale", None),
            ("/apis/coordination.k8s.io/v1/namespaces/default/leases/l/status", None),
            ("/apis/coordination.k8s.io/v2/leases", None),
            ("/api/v1/leases", None),
            ("/apis/v1/pods", None),
            ("/apis//v1/pods", None),
            ("/apis/coordination.k8s.io/v1/pods", None),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path), *want, "{path}");
        }
    }
}
