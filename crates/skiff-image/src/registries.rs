//! `DATA_DIR/registries.yaml`, in the format k3s users know:
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//! configs:
//!   "127.0.0.1:5000":
//!     auth: {username: me, password: secret}
//!     tls: {insecure_skip_verify: true, ca_file: /path/ca.pem}
//! ```
//!
//! Credentials also come from Docker-style auth files (`auths.<host>.auth` = base64 `user:pass`).

use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Registries {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, HostConfig>,
    /// Only the mirrors, never the registry itself for a mirrored registry (k3s's
    /// `--disable-default-registry-endpoint`, as a key here): air-gapped nodes and tests.
    #[serde(default, rename = "disable-default-endpoint")]
    pub disable_default_endpoint: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostConfig {
    pub auth: Option<Auth>,
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Auth {
    pub username: Option<String>,
    pub password: Option<String>,
    /// base64 `user:password`, as in Docker's config.
    pub auth: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tls {
    #[serde(default)]
    pub insecure_skip_verify: bool,
    pub ca_file: Option<String>,
}

/// One place to fetch from: scheme, host[:port], and the host's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub plain_http: bool,
    pub host: String,
    /// A mirror standing in for the image's registry (error messages name it).
    pub mirror: bool,
}

impl Endpoint {
    /// `http://host` or `https://host`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.plain_http { "http" } else { "https" }, self.host)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Registries {
    /// Read `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registries::default()),
            Err(e) => return Err(ConfigError::Parse { path: path.display().to_string(), message: e.to_string() }),
        };
        if text.trim().is_empty() {
            return Ok(Registries::default());
        }
        serde_saphyr::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.display().to_string(), message: e.to_string() })
    }

    /// Where to pull `registry`'s images from, in order: its mirrors, then the registry itself.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mirrors = self.mirrors.get(registry).or_else(|| self.mirrors.get("*"));
        let upstream = if registry == crate::reference::DEFAULT_REGISTRY { "registry-1.docker.io" } else { registry };
        let mut out: Vec<Endpoint> = mirrors
            .into_iter()
            .flat_map(|m| m.endpoint.iter())
            .filter_map(|e| parse_endpoint(e))
            .map(|(scheme, host)| Endpoint {
                plain_http: scheme.unwrap_or_else(|| self.plain_by_default(&host)),
                mirror: host != upstream,
                host,
            })
            .collect();
        let own = self.endpoint_for(upstream);
        if !out.iter().any(|e| e.host == own.host && e.plain_http == own.plain_http)
            && (!self.disable_default_endpoint || out.is_empty())
        {
            out.push(own);
        }
        out
    }

    /// The registry `host` itself (what `push` talks to).
    pub fn endpoint_for(&self, host: &str) -> Endpoint {
        Endpoint { plain_http: self.plain_by_default(host), host: host.to_string(), mirror: false }
    }

    /// Whether `host` is spoken to in plain HTTP when nothing says otherwise: loopback registries
    /// are, as Docker and containerd treat them (`docker run registry` serves plain HTTP), unless
    /// registries.yaml has TLS settings for them.
    fn plain_by_default(&self, host: &str) -> bool {
        is_loopback(host) && self.config(host).is_none_or(|c| c.tls.is_none())
    }

    pub fn config(&self, host: &str) -> Option<&HostConfig> {
        self.configs.get(host)
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`, with or without a port (`[::1]:5000`).
pub fn is_loopback(host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A mirror endpoint: its scheme when it names one (`Some(true)` for http), and its host[:port].
fn parse_endpoint(e: &str) -> Option<(Option<bool>, String)> {
    let (scheme, rest) = if let Some(r) = e.strip_prefix("http://") {
        (Some(true), r)
    } else if let Some(r) = e.strip_prefix("https://") {
        (Some(false), r)
    } else {
        (None, e)
    };
    let host = rest.trim_end_matches('/').split('/').next()?.to_string();
    (!host.is_empty()).then_some((scheme, host))
}

impl Auth {
    /// (username, password) from either form.
    pub fn credentials(&self) -> Option<(String, String)> {
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            return Some((u.clone(), p.clone()));
        }
        let raw = base64::engine::general_purpose::STANDARD.decode(self.auth.as_deref()?.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }
}

/// Credentials for `host` from a Docker-style auth file (`{"auths": {"host": {"auth": "..."}}}`).
pub fn docker_auth(file: &Path, host: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let auths = v.get("auths")?.as_object()?;
    auths.iter().find(|(key, _)| auth_key_matches(key, host)).and_then(|(_, entry)| entry_credentials(entry))
}

/// `(username, password)` from one Docker auth entry (`{"auth": ...}` or `{"username", "password"}`).
pub fn entry_credentials(entry: &serde_json::Value) -> Option<(String, String)> {
    serde_json::from_value::<Auth>(entry.clone()).ok()?.credentials()
}

/// Whether a Docker auth key (`host`, `https://host/v1/`, ...) names registry `host`, as Docker and
/// the kubelet read them; Docker Hub answers to all of its names.
pub fn auth_key_matches(key: &str, host: &str) -> bool {
    let bare = key.trim_start_matches("https://").trim_start_matches("http://");
    let bare = bare.split('/').next().unwrap_or_default();
    const HUB: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    bare == host || (HUB.contains(&bare) && HUB.contains(&host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k3s_format_and_orders_endpoints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("registries.yaml");
        std::fs::write(&p, "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:5000\"\nconfigs:\n  \"127.0.0.1:5000\":\n    auth:\n      username: me\n      password: pw\n    tls:\n      insecure_skip_verify: true\n").expect("write");
        let r = Registries::load(&p).expect("load");
        assert_eq!(
            r.endpoints("docker.io"),
            vec![
                Endpoint { plain_http: true, host: "127.0.0.1:5000".into(), mirror: true },
                Endpoint { plain_http: false, host: "registry-1.docker.io".into(), mirror: false }
            ]
        );
        assert_eq!(r.endpoints("quay.io"), vec![Endpoint { plain_http: false, host: "quay.io".into(), mirror: false }]);
        let mirrors_only = Registries { disable_default_endpoint: true, ..r.clone() };
        assert_eq!(
            mirrors_only.endpoints("docker.io"),
            vec![Endpoint { plain_http: true, host: "127.0.0.1:5000".into(), mirror: true }]
        );
        let cfg = r.config("127.0.0.1:5000").expect("config");
        assert_eq!(cfg.auth.as_ref().and_then(Auth::credentials), Some(("me".into(), "pw".into())));
        assert!(cfg.tls.as_ref().is_some_and(|t| t.insecure_skip_verify));
        assert!(Registries::load(&dir.path().join("missing.yaml")).expect("missing is empty").mirrors.is_empty());
        std::fs::write(&p, "mirrors: [").expect("write");
        assert!(Registries::load(&p).is_err());
    }

    #[test]
    fn loopback_registries_are_plain_http_unless_configured_for_tls() {
        for host in ["localhost:5000", "LOCALHOST", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "::1"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["registry-1.docker.io", "10.0.0.1:5000", "[fe80::1]:5000", "localhost.example.com:5000"] {
            assert!(!is_loopback(host), "{host}");
        }
        let r = Registries::default();
        assert_eq!(
            r.endpoints("localhost:5000"),
            vec![Endpoint { plain_http: true, host: "localhost:5000".into(), mirror: false }]
        );
        assert!(r.endpoint_for("[::1]:5000").plain_http);
        assert!(!r.endpoint_for("quay.io").plain_http);
        // A scheme-less loopback mirror is plain too; an explicit https:// is kept.
        let mut r = Registries::default();
        r.mirrors.insert(
            "docker.io".into(),
            Mirror { endpoint: vec!["127.0.0.1:5000".into(), "https://localhost:5001".into()] },
        );
        let eps = r.endpoints("docker.io");
        assert_eq!(
            (eps[0].plain_http, eps[1].plain_http, eps[1].url()),
            (true, false, "https://localhost:5001".into())
        );
        // TLS settings for a loopback host mean it serves HTTPS.
        r.configs.insert("127.0.0.1:5443".into(), HostConfig { tls: Some(Tls::default()), ..Default::default() });
        assert!(!r.endpoint_for("127.0.0.1:5443").plain_http);
    }

    #[test]
    fn docker_auth_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("auth.json");
        std::fs::write(&p, r#"{"auths":{"127.0.0.1:5001":{"auth":"dXNlcjpwYXNz"}}}"#).expect("write");
        assert_eq!(docker_auth(&p, "127.0.0.1:5001"), Some(("user".into(), "pass".into())));
        assert_eq!(docker_auth(&p, "other"), None);
        std::fs::write(&p, r#"{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#)
            .expect("write");
        assert_eq!(docker_auth(&p, "registry-1.docker.io"), Some(("u".into(), "p".into())));
        assert!(auth_key_matches("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"));
        assert!(!auth_key_matches("127.0.0.1:5000", "127.0.0.1:5001"));
    }
}
