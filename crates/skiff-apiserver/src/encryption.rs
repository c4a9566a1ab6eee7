//! Which stored values are sealed at rest and with which keys: upstream's
//! EncryptionConfiguration (`apiserver.config.k8s.io/v1`, the `aesgcm` provider), read from
//! `--encryption-provider-config` or, by default, from `DATA_DIR/pki/encryption-config.yaml`,
//! which the first start writes (Secrets, one fresh key). `skiff secrets-encrypt rotate` puts a
//! new key first; the next start reseals every value with it (`skiff_store::encrypted`).

use base64::Engine;
use serde::{Deserialize, Serialize};
use skiff_store::encrypted::Keyring;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an EncryptionConfiguration: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error(transparent)]
    Key(#[from] skiff_store::encrypted::KeyError),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionConfiguration {
    pub api_version: String,
    pub kind: String,
    pub resources: Vec<ResourceConfiguration>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ResourceConfiguration {
    pub resources: Vec<String>,
    pub providers: Vec<Provider>,
}

/// One provider; only `aesgcm` and `identity` are served (`identity` first: writes are
/// plaintext; later: plaintext still reads).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Provider {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aesgcm: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aescbc: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secretbox: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Keys {
    pub keys: Vec<Key>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Key {
    pub name: String,
    /// The key's 32 bytes, base64.
    pub secret: String,
}

/// Where the default configuration lives.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("pki").join("encryption-config.yaml")
}

/// What to seal: store key prefixes, and the keyring (the sealing key first).
pub struct Sealing {
    pub prefixes: Vec<String>,
    pub keys: Keyring,
}

/// The store prefix of a resource as an EncryptionConfiguration names it (`secrets`,
/// `leases.coordination.k8s.io`), as the registry keeps it.
fn prefix(resource: &str) -> String {
    match resource.split_once('.') {
        None => format!("/registry/{resource}/"),
        Some((plural, group)) => format!("/registry/{group}/{plural}/"),
    }
}

fn invalid(path: &Path, why: impl Into<String>) -> EncryptionError {
    EncryptionError::Invalid { path: path.to_path_buf(), why: why.into() }
}

fn read(path: &Path) -> Result<EncryptionConfiguration, EncryptionError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| EncryptionError::Io { path: path.to_path_buf(), source })?;
    let config: EncryptionConfiguration = serde_saphyr::from_str(&text).map_err(|e| invalid(path, e.to_string()))?;
    if config.kind != "EncryptionConfiguration" || !config.api_version.starts_with("apiserver.config.k8s.io/") {
        return Err(invalid(path, "kind EncryptionConfiguration, apiVersion apiserver.config.k8s.io/v1 expected"));
    }
    Ok(config)
}

fn write(path: &Path, config: &EncryptionConfiguration) -> Result<(), EncryptionError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_saphyr::to_string(config).map_err(|e| invalid(path, e.to_string()))?;
    let io = |source| EncryptionError::Io { path: path.to_path_buf(), source };
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A new key, named by when it was made and a random part: two made in the same second (a
/// rotation right after the first start) must not share a name, or one would open the other's
/// values.
fn fresh_key() -> Key {
    let secret: [u8; 32] = rand::random();
    let tag: u32 = rand::random();
    let name = format!("key-{}-{tag:08x}", jiff::Timestamp::now().as_second());
    Key { name, secret: base64::engine::general_purpose::STANDARD.encode(secret) }
}

/// The configuration at `path`, or (at the default path, the first time) a new one sealing
/// Secrets with a fresh key.
pub fn load(path: &Path, create: bool) -> Result<Sealing, EncryptionError> {
    if create && !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| EncryptionError::Io { path: dir.to_path_buf(), source })?;
        }
        let config = EncryptionConfiguration {
            api_version: "apiserver.config.k8s.io/v1".into(),
            kind: "EncryptionConfiguration".into(),
            resources: vec![ResourceConfiguration {
                resources: vec!["secrets".into()],
                providers: vec![
                    Provider { aesgcm: Some(Keys { keys: vec![fresh_key()] }), ..Default::default() },
                    Provider { identity: Some(serde_json::json!({})), ..Default::default() },
                ],
            }],
        };
        write(path, &config)?;
    }
    sealing(path, &read(path)?)
}

fn sealing(path: &Path, config: &EncryptionConfiguration) -> Result<Sealing, EncryptionError> {
    let mut prefixes = Vec::new();
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    // Whether writes are plaintext: `identity` first (how encryption is turned off: the keys
    // after it still open what they sealed, and the restart unseals it all).
    let mut plaintext = None;
    for entry in &config.resources {
        let Some(first) = entry.providers.first() else { return Err(invalid(path, "a resource list has no provider")) };
        let identity_first = match (first.aesgcm.is_some(), first.identity.is_some()) {
            (true, false) => false,
            (false, true) => true,
            _ => return Err(invalid(path, "the first provider must be aesgcm or identity")),
        };
        if *plaintext.get_or_insert(identity_first) != identity_first {
            return Err(invalid(path, "every resource list must start with the same provider (aesgcm or identity)"));
        }
        for p in &entry.providers {
            if p.aescbc.is_some() || p.secretbox.is_some() || p.kms.is_some() {
                return Err(invalid(path, "only the aesgcm and identity providers are supported"));
            }
            for k in p.aesgcm.iter().flat_map(|a| &a.keys) {
                let secret = base64::engine::general_purpose::STANDARD
                    .decode(k.secret.trim())
                    .map_err(|e| invalid(path, format!("key {:?}: {e}", k.name)))?;
                match keys.iter().find(|(n, _)| *n == k.name) {
                    None => keys.push((k.name.clone(), secret)),
                    Some((_, same)) if *same == secret => {}
                    Some(_) => return Err(invalid(path, format!("two different keys are named {:?}", k.name))),
                }
            }
        }
        for r in &entry.resources {
            if r.contains('*') {
                return Err(invalid(path, format!("resource {r:?}: wildcards are not supported")));
            }
            prefixes.push(prefix(r));
        }
    }
    let keys = if plaintext == Some(true) { Keyring::plaintext(&keys)? } else { Keyring::new(&keys)? };
    Ok(Sealing { prefixes, keys })
}

/// Put a new key first in the configuration at `path` (the old ones stay, to open what they
/// sealed); returns its name.
pub fn rotate(path: &Path) -> Result<String, EncryptionError> {
    let mut config = read(path)?;
    let key = fresh_key();
    let name = key.name.clone();
    let mut keys = Some(key);
    for entry in &mut config.resources {
        if let Some(aes) = entry.providers.first_mut().and_then(|p| p.aesgcm.as_mut())
            && let Some(k) = keys.take()
        {
            aes.keys.insert(0, k);
        }
    }
    if keys.is_some() {
        return Err(invalid(path, "no aesgcm provider to rotate"));
    }
    sealing(path, &config)?;
    write(path, &config)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_configuration_is_made_once_and_rotates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = default_path(dir.path());
        let first = load(&path, true).expect("create");
        assert_eq!(first.prefixes, ["/registry/secrets/"]);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("kind: EncryptionConfiguration") && text.contains("aesgcm"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);
        let again = load(&path, true).expect("reload");
        assert_eq!(again.prefixes, first.prefixes);
        // At once, in the same second: still a key of its own.
        let name = rotate(&path).expect("rotate");
        let config = read(&path).expect("read");
        let keys = &config.resources[0].providers[0].aesgcm.as_ref().expect("aesgcm").keys;
        assert_eq!((keys.len(), keys[0].name.as_str()), (2, name.as_str()));
        assert_eq!(prefix("leases.coordination.k8s.io"), "/registry/coordination.k8s.io/leases/");
    }

    #[test]
    fn unsupported_configurations_are_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        let config = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n";
        std::fs::write(&path, config).expect("write");
        // identity first: plaintext writes (turning encryption off), aesgcm keys after it open.
        assert!(load(&path, false).is_ok());
        let mixed = format!(
            "{config}- resources: [configmaps]\n  providers:\n  - aesgcm:\n      keys:\n      - name: k\n        secret: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        );
        std::fs::write(&path, mixed).expect("write");
        let err = load(&path, false).err().expect("mixed");
        assert!(err.to_string().contains("every resource list must start with the same provider"), "{err}");
        std::fs::write(&path, config.replace("identity: {}", "aescbc: {}")).expect("write");
        let err = load(&path, false).err().expect("aescbc");
        assert!(err.to_string().contains("the first provider must be aesgcm or identity"), "{err}");
        std::fs::write(&path, "kind: Pod\n").expect("write");
        assert!(load(&path, false).is_err());
        let short = config
            .replace("  - identity: {}\n", "  - aesgcm:\n      keys:\n      - name: k\n        secret: c2hvcnQ=\n");
        std::fs::write(&path, short).expect("write");
        let err = load(&path, false).err().expect("short key");
        assert!(err.to_string().contains("32 bytes"), "{err}");
        let key = |secret: &str| format!("      - name: k\n        secret: {secret}\n");
        let twice = format!(
            "{}  - aesgcm:\n      keys:\n{}{}",
            config.replace("  - identity: {}\n", ""),
            key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            key("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
        );
        std::fs::write(&path, twice).expect("write");
        let err = load(&path, false).err().expect("one name, two keys");
        assert!(err.to_string().contains("two different keys are named \"k\""), "{err}");
    }
}
