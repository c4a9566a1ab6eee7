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
        let mut out: Vec<Endpoint> =
            mirrors.into_iter().flat_map(|m| m.endpoint.iter()).filter_map(|e| parse_endpoint(e)).collect();
        let upstream = if registry == crate::reference::DEFAULT_REGISTRY { "registry-1.docker.io" } else { registry };
        let own = Endpoint { plain_http: false, host: upstream.to_string() };
        if !out.contains(&own) && (!self.disable_default_endpoint || out.is_empty()) {
            out.push(own);
        }
        out
    }

    pub fn config(&self, host: &str) -> Option<&HostConfig> {
        self.configs.get(host)
    }
}

fn parse_endpoint(e: &str) -> Option<Endpoint> {
    let (plain_http, rest) = if let Some(r) = e.strip_prefix("http://") {
        (true, r)
    } else if let Some(r) = e.strip_prefix("https://") {
        (false, r)
    } else {
        (false, e)
    };
    let host = rest.trim_end_matches('/').split('/').next()?.to_string();
    (!host.is_empty()).then_some(Endpoint { plain_http, host })
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
                Endpoint { plain_http: true, host: "127.0.0.1:5000".into() },
                Endpoint { plain_http: false, host: "registry-1.docker.io".into() }
            ]
        );
        assert_eq!(r.endpoints("quay.io"), vec![Endpoint { plain_http: false, host: "quay.io".into() }]);
        let mirrors_only = Registries { disable_default_endpoint: true, ..r.clone() };
        assert_eq!(
            mirrors_only.endpoints("docker.io"),
            vec![Endpoint { plain_http: true, host: "127.0.0.1:5000".into() }]
        );
        let cfg = r.config("127.0.0.1:5000").expect("config");
        assert_eq!(cfg.auth.as_ref().and_then(Auth::credentials), Some(("me".into(), "pw".into())));
        assert!(cfg.tls.as_ref().is_some_and(|t| t.insecure_skip_verify));
        assert!(Registries::load(&dir.path().join("missing.yaml")).expect("missing is empty").mirrors.is_empty());
        std::fs::write(&p, "mirrors: [").expect("write");
        assert!(Registries::load(&p).is_err());
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
