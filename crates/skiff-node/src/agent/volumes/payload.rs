//! What a ConfigMap, Secret, downward API or projected volume holds: its files (path, bytes,
//! mode), made from the objects the worker fetched, as the kubelet's volume plugins make them.
//! Pure: no IO.

use crate::agent::env::{self, EnvError, Objects, Sources};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, ProjectedVolumeSource, Secret, Volume,
};
use std::collections::BTreeMap;

/// A file of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// A volume's files by relative path.
pub type Payload = BTreeMap<String, File>;

/// The mode of a file with none of its own (upstream's `DefaultMode`, 0644).
pub const DEFAULT_MODE: i32 = 0o644;

/// Why a volume's files cannot be made: the text after `MountVolume.SetUp failed for volume
/// "NAME" : ` in the kubelet's `FailedMount` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error("{0}")]
    DownwardApi(#[from] EnvError),
}

/// The files of `volume` (a kind [`super::Kind::of`] calls written) of `src.pod`, from the
/// Secrets and ConfigMaps in `src.objects`.
pub fn payload(volume: &Volume, src: &Sources) -> Result<Payload, PayloadError> {
    let (pod, fetched) = (src.pod, src.objects);
    let mut out = Payload::new();
    if let Some(v) = &volume.config_map {
        let mode = v.default_mode.unwrap_or(DEFAULT_MODE);
        config_map(&mut out, fetched.config_maps.get(&v.name), &v.name, &v.items, v.optional, mode)?;
    } else if let Some(v) = &volume.secret {
        let name = v.secret_name.clone().unwrap_or_default();
        let mode = v.default_mode.unwrap_or(DEFAULT_MODE);
        secret(&mut out, fetched.secrets.get(&name), &name, &v.items, v.optional, mode)?;
    } else if let Some(v) = &volume.downward_api {
        let mode = v.default_mode.unwrap_or(DEFAULT_MODE);
        downward_api(&mut out, v.items.iter().flatten(), pod, src, mode)?;
    } else if let Some(v) = &volume.projected {
        projected(&mut out, v, pod, fetched, src)?;
    }
    Ok(out)
}

fn projected(
    out: &mut Payload,
    v: &ProjectedVolumeSource,
    pod: &Pod,
    fetched: &Objects,
    src: &Sources,
) -> Result<(), PayloadError> {
    let mode = v.default_mode.unwrap_or(DEFAULT_MODE);
    for source in v.sources.iter().flatten() {
        if let Some(c) = &source.config_map {
            config_map(out, fetched.config_maps.get(&c.name), &c.name, &c.items, c.optional, mode)?;
        }
        if let Some(s) = &source.secret {
            secret(out, fetched.secrets.get(&s.name), &s.name, &s.items, s.optional, mode)?;
        }
        if let Some(d) = &source.downward_api {
            downward_api(out, d.items.iter().flatten(), pod, src, mode)?;
        }
    }
    Ok(())
}

/// A ConfigMap's `data` and `binaryData` (every key, or the `items` named).
fn config_map(
    out: &mut Payload,
    object: Option<&ConfigMap>,
    name: &str,
    items: &Option<Vec<KeyToPath>>,
    optional: Option<bool>,
    mode: i32,
) -> Result<(), PayloadError> {
    let entries = object.map(|o| {
        let data = o.data.iter().flatten().map(|(k, v)| (k.as_str(), v.as_bytes()));
        data.chain(o.binary_data.iter().flatten().map(|(k, v)| (k.as_str(), v.0.as_slice()))).collect()
    });
    let source = Source { entries, optional, mode, missing_key: PayloadError::ConfigMapKey };
    source.write(out, items, || PayloadError::ConfigMapNotFound(name.into()))
}

/// A Secret's `data` (every key, or the `items` named).
fn secret(
    out: &mut Payload,
    object: Option<&Secret>,
    name: &str,
    items: &Option<Vec<KeyToPath>>,
    optional: Option<bool>,
    mode: i32,
) -> Result<(), PayloadError> {
    let entries = object.map(|o| o.data.iter().flatten().map(|(k, v)| (k.as_str(), v.0.as_slice())).collect());
    let source = Source { entries, optional, mode, missing_key: PayloadError::SecretKey };
    source.write(out, items, || PayloadError::SecretNotFound(name.into()))
}

/// A ConfigMap's or a Secret's entries by key (none: the object is missing).
struct Source<'a> {
    entries: Option<BTreeMap<&'a str, &'a [u8]>>,
    optional: Option<bool>,
    mode: i32,
    missing_key: fn(String) -> PayloadError,
}

impl Source<'_> {
    /// Every entry as a file named by its key, or only the `items` named, at their paths. A
    /// missing object or key fails, unless the source is optional (then it is skipped).
    fn write(
        &self,
        out: &mut Payload,
        items: &Option<Vec<KeyToPath>>,
        missing: impl FnOnce() -> PayloadError,
    ) -> Result<(), PayloadError> {
        let optional = self.optional == Some(true);
        let Some(entries) = &self.entries else {
            return if optional { Ok(()) } else { Err(missing()) };
        };
        let Some(items) = items.as_ref().filter(|i| !i.is_empty()) else {
            for (key, data) in entries {
                out.insert(key.to_string(), File { data: data.to_vec(), mode: self.mode as u32 });
            }
            return Ok(());
        };
        for item in items {
            match entries.get(item.key.as_str()) {
                Some(data) => {
                    let mode = item.mode.unwrap_or(self.mode) as u32;
                    out.insert(item.path.clone(), File { data: data.to_vec(), mode });
                }
                None if optional => {}
                None => return Err((self.missing_key)(item.key.clone())),
            }
        }
        Ok(())
    }
}

/// The downward API's files: pod fields and container resources, as environment variables
/// read them.
fn downward_api<'a>(
    out: &mut Payload,
    items: impl Iterator<Item = &'a DownwardAPIVolumeFile>,
    pod: &Pod,
    src: &Sources,
    mode: i32,
) -> Result<(), PayloadError> {
    let first = pod.spec.as_ref().and_then(|s| s.containers.first()).cloned().unwrap_or_else(Container::default);
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            env::field_value(f, src)?
        } else if let Some(r) = &item.resource_field_ref {
            env::resource_value(r, &first, src)?
        } else {
            continue;
        };
        out.insert(item.path.clone(), File { data: value.into_bytes(), mode: item.mode.unwrap_or(mode) as u32 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}]}
        }))
        .expect("pod")
    }

    fn volume(v: serde_json::Value) -> Volume {
        serde_json::from_value(v).expect("volume")
    }

    fn fetched() -> Objects {
        let mut f = Objects::default();
        let cm = json!({"data": {"mode": "fast", "color": "blue"}, "binaryData": {"logo": "AAEC"}});
        f.config_maps.insert("cfg".into(), serde_json::from_value(cm).expect("configmap"));
        f.secrets.insert("db".into(), serde_json::from_value(json!({"data": {"pw": "c2VjcmV0"}})).expect("secret"));
        f
    }

    fn run(v: serde_json::Value) -> Result<Payload, PayloadError> {
        let (pod, objects) = (pod(), fetched());
        let src = Sources {
            pod: &pod,
            pod_ips: vec![],
            host_ip: String::new(),
            objects: &objects,
            allocatable_millicores: 1000,
            allocatable_memory: 1 << 30,
        };
        payload(&volume(v), &src)
    }

    fn files(p: &Payload) -> Vec<(&str, String, u32)> {
        p.iter().map(|(k, f)| (k.as_str(), String::from_utf8_lossy(&f.data).into_owned(), f.mode)).collect()
    }

    #[test]
    fn config_maps_give_every_key_or_the_items_named() {
        let all = run(json!({"name": "v", "configMap": {"name": "cfg"}})).expect("payload");
        assert_eq!(
            files(&all),
            [
                ("color", "blue".into(), 0o644),
                ("logo", "\u{0}\u{1}\u{2}".into(), 0o644),
                ("mode", "fast".into(), 0o644)
            ]
        );
        let items = json!({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o400,
            "items": [{"key": "mode", "path": "conf/mode.txt"}, {"key": "color", "path": "c", "mode": 0o600}]}});
        assert_eq!(
            files(&run(items).expect("payload")),
            [("c", "blue".into(), 0o600), ("conf/mode.txt", "fast".into(), 0o400)]
        );
    }

    #[test]
    fn what_is_missing_fails_as_the_kubelet_says_unless_optional() {
        let missing = |v| run(v).expect_err("fails").to_string();
        assert_eq!(missing(json!({"name": "v", "configMap": {"name": "nope"}})), "configmap \"nope\" not found");
        assert_eq!(missing(json!({"name": "v", "secret": {"secretName": "nope"}})), "secret \"nope\" not found");
        let key = json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "k"}]}});
        assert_eq!(missing(key), "configmap references non-existent config key: k");
        let key = json!({"name": "v", "secret": {"secretName": "db", "items": [{"key": "k", "path": "k"}]}});
        assert_eq!(missing(key), "references non-existent secret key: k");
        let optional = json!({"name": "v", "configMap": {"name": "nope", "optional": true}});
        assert_eq!(run(optional).expect("payload"), Payload::new());
        let optional_key = json!({"name": "v", "secret": {"secretName": "db", "optional": true, "items": [{"key": "k", "path": "k"}]}});
        assert_eq!(run(optional_key).expect("payload"), Payload::new());
    }

    #[test]
    fn secrets_downward_api_and_projections() {
        let secret = run(json!({"name": "v", "secret": {"secretName": "db"}})).expect("payload");
        assert_eq!(files(&secret), [("pw", "secret".into(), 0o644)]);
        let downward = json!({"name": "v", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}
        ]}});
        assert_eq!(
            files(&run(downward).expect("payload")),
            [
                ("labels", "app=\"web\"\ntier=\"front\"".into(), 0o644),
                ("mem", "64".into(), 0o644),
                ("name", "web".into(), 0o644)
            ]
        );
        let projected = json!({"name": "v", "projected": {"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "cfg", "items": [{"key": "mode", "path": "mode"}]}},
            {"secret": {"name": "db"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
        ]}});
        assert_eq!(
            files(&run(projected).expect("payload")),
            [("mode", "fast".into(), 0o440), ("ns", "shop".into(), 0o440), ("pw", "secret".into(), 0o440)]
        );
    }
}
