//! What a ConfigMap, Secret, downward API or projected volume holds: its files (path, bytes,
//! mode, and for a service-account token its owner), made from the objects and tokens the
//! worker fetched, as the kubelet's volume plugins make them. Pure: no IO.

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
    /// Another owner than root, for a file only the pod's user may read.
    pub owner: Option<Owner>,
}

/// Who owns a file (None: unchanged, root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
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
    /// No token was got for a projection (the worker says why when it asks).
    #[error("failed to fetch token: no token for audience {0:?}")]
    NoToken(String),
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
        if let Some(t) = &source.service_account_token {
            let key = super::tokens::key_of(t);
            let token = fetched.tokens.get(&key).ok_or_else(|| PayloadError::NoToken(key.0.clone()))?;
            let (mode, owner) = token_mode(pod, mode as u32);
            out.insert(t.path.clone(), File { data: token.as_bytes().to_vec(), mode, owner });
        }
    }
    Ok(())
}

/// The user every init and app container runs as, if they all name the same one
/// (`FsUserFrom`: the container's `runAsUser`, else the pod's; one naming none, none).
fn fs_user(pod: &Pod) -> Option<u32> {
    let spec = pod.spec.as_ref()?;
    let pod_user = spec.security_context.as_ref().and_then(|s| s.run_as_user);
    let mut user = None;
    for c in spec.init_containers.iter().flatten().chain(&spec.containers) {
        let runs_as = c.security_context.as_ref().and_then(|s| s.run_as_user).or(pod_user)?;
        if user.is_some_and(|u| u != runs_as) {
            return None;
        }
        user = Some(runs_as);
    }
    user.and_then(|u| u32::try_from(u).ok())
}

/// A token file's mode and owner, as the kubelet makes them: the projection's mode for anyone,
/// or 0600 for the user every container runs as (0640 and the group, with an fsGroup).
fn token_mode(pod: &Pod, mode: u32) -> (u32, Option<Owner>) {
    let group = pod.spec.as_ref().and_then(|s| s.security_context.as_ref()).and_then(|s| s.fs_group);
    let group = group.and_then(|g| u32::try_from(g).ok());
    match (fs_user(pod), group) {
        (None, None) => (mode, None),
        (uid, None) => (0o600, Some(Owner { uid, gid: None })),
        (uid, gid) => (0o640, Some(Owner { uid, gid })),
    }
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
                out.insert(key.to_string(), File { data: data.to_vec(), mode: self.mode as u32, owner: None });
            }
            return Ok(());
        };
        for item in items {
            match entries.get(item.key.as_str()) {
                Some(data) => {
                    let mode = item.mode.unwrap_or(self.mode) as u32;
                    out.insert(item.path.clone(), File { data: data.to_vec(), mode, owner: None });
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
        let mode = item.mode.unwrap_or(mode) as u32;
        out.insert(item.path.clone(), File { data: value.into_bytes(), mode, owner: None });
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
    fn a_token_projection_is_the_token_for_its_audience_owned_as_the_kubelet_owns_it() {
        let (mut p, mut objects) = (pod(), fetched());
        objects.tokens.insert(("vault".into(), 600), "jwt".into());
        let volume = json!({"name": "v", "projected": {"defaultMode": 0o644, "sources": [
            {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}}]}});
        let run = |p: &Pod, objects: &Objects| {
            let src = Sources {
                pod: p,
                pod_ips: vec![],
                host_ip: String::new(),
                objects,
                allocatable_millicores: 1000,
                allocatable_memory: 1 << 30,
            };
            payload(&self::volume(volume.clone()), &src)
        };
        let files = run(&p, &objects).expect("payload");
        assert_eq!(files["token"], File { data: b"jwt".to_vec(), mode: 0o644, owner: None });
        // Every container runs as 1000: the file is theirs alone; with an fsGroup, the group's too.
        let spec = p.spec.get_or_insert_with(Default::default);
        spec.security_context = Some(serde_json::from_value(json!({"runAsUser": 1000})).expect("context"));
        assert_eq!(run(&p, &objects).expect("payload")["token"].owner, Some(Owner { uid: Some(1000), gid: None }));
        let spec = p.spec.get_or_insert_with(Default::default);
        spec.security_context =
            Some(serde_json::from_value(json!({"runAsUser": 1000, "fsGroup": 2000})).expect("context"));
        let token = &run(&p, &objects).expect("payload")["token"];
        assert_eq!((token.mode, token.owner), (0o640, Some(Owner { uid: Some(1000), gid: Some(2000) })));
        objects.tokens.clear();
        assert_eq!(
            run(&p, &objects).expect_err("no token").to_string(),
            "failed to fetch token: no token for audience \"vault\""
        );
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
