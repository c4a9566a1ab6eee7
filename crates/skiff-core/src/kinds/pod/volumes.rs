//! A pod's `volumes`: defaulting (`SetDefaults_*VolumeSource`: modes 0644, an empty source is an
//! emptyDir) and validation (`validateVolumeSource`) with upstream's paths and wording.

use super::validate_field_ref;
use crate::field::{ErrorList, FieldError, Path};
use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Volume};
use std::collections::HashSet;

/// Every volume source, in the order upstream checks them (the second one found is the error).
const SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "downwardAPI",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "configMap",
    "storageos",
    "csi",
    "projected",
    "ephemeral",
    "image",
];

/// The fields a downward API volume file may read (`validVolumeDownwardAPIFieldPathExpressions`).
const VOLUME_FIELD_PATHS: &[&str] =
    &["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"];

const MODE_MESSAGE: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const DEFAULT_MODE: i32 = 0o644;

/// The sources `v` names, in upstream's order.
fn sources(v: &Volume) -> Vec<&'static str> {
    let value = serde_json::to_value(v).unwrap_or_default();
    SOURCES.iter().copied().filter(|s| value.get(*s).is_some_and(|x| !x.is_null())).collect()
}

pub(super) fn default(v: &mut Volume) {
    if sources(v).is_empty() {
        v.empty_dir = Some(Default::default());
    }
    if let Some(c) = v.config_map.as_mut() {
        c.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(d) = v.downward_api.as_mut() {
        d.default_mode.get_or_insert(DEFAULT_MODE);
        d.items.iter_mut().flatten().for_each(default_file);
    }
    if let Some(p) = v.projected.as_mut() {
        p.default_mode.get_or_insert(DEFAULT_MODE);
        for s in p.sources.iter_mut().flatten() {
            s.downward_api.iter_mut().flat_map(|d| d.items.iter_mut().flatten()).for_each(default_file);
            // `SetDefaults_ServiceAccountTokenProjection`: an hour.
            if let Some(t) = s.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(60 * 60);
            }
        }
    }
    if let Some(h) = v.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
}

fn default_file(f: &mut DownwardAPIVolumeFile) {
    if let Some(r) = f.field_ref.as_mut() {
        r.api_version.get_or_insert_with(|| "v1".into());
    }
}

/// `validateVolumeSource` for `v` at `path` (`spec.volumes[i]`).
pub(super) fn validate(v: &Volume, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let found = sources(v);
    match found.as_slice() {
        [] => errs.push(FieldError::required(path, "must specify a volume type")),
        [_, rest @ ..] => {
            for s in rest {
                errs.push(FieldError::forbidden(&path.child(s), "may not specify more than 1 volume type"));
            }
        }
    }
    if found.len() > 1 {
        return errs;
    }
    if let Some(h) = &v.host_path {
        if h.path.is_empty() {
            errs.push(FieldError::required(&path.child("hostPath").child("path"), ""));
        }
        const TYPES: &[&str] =
            &["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"];
        if let Some(t) = h.type_.as_deref().filter(|t| !TYPES.contains(t)) {
            errs.push(FieldError::not_supported(&path.child("hostPath").child("type"), t, &TYPES[1..]));
        }
    }
    if let Some(e) = &v.empty_dir
        && e.size_limit.as_ref().is_some_and(|q| q.0.starts_with('-'))
    {
        errs.push(FieldError::forbidden(
            &path.child("emptyDir").child("sizeLimit"),
            "SizeLimit field must be a valid resource quantity",
        ));
    }
    if let Some(s) = &v.secret {
        let p = path.child("secret");
        if s.secret_name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(&p.child("secretName"), ""));
        }
        errs.extend(mode(s.default_mode, &p.child("defaultMode")));
        errs.extend(items(s.items.iter().flatten(), &p.child("items")));
    }
    if let Some(c) = &v.config_map {
        let p = path.child("configMap");
        if c.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        errs.extend(mode(c.default_mode, &p.child("defaultMode")));
        errs.extend(items(c.items.iter().flatten(), &p.child("items")));
    }
    if let Some(d) = &v.downward_api {
        let p = path.child("downwardAPI");
        errs.extend(mode(d.default_mode, &p.child("defaultMode")));
        for (i, f) in d.items.iter().flatten().enumerate() {
            errs.extend(downward_file(f, &p.child("items").index(i)));
        }
    }
    if let Some(pv) = &v.projected {
        let p = path.child("projected");
        errs.extend(mode(pv.default_mode, &p.child("defaultMode")));
        let mut paths = HashSet::new();
        for (i, s) in pv.sources.iter().flatten().enumerate() {
            let sp = p.child("sources").index(i);
            let value = serde_json::to_value(s).unwrap_or_default();
            let set = value.as_object().map(|o| o.values().filter(|v| !v.is_null()).count()).unwrap_or(0);
            if set > 1 {
                errs.push(FieldError::forbidden(&sp, "may not specify more than 1 volume type per source"));
            }
            let mut wrote = Vec::new();
            if let Some(c) = &s.config_map {
                if c.name.is_empty() {
                    errs.push(FieldError::required(&sp.child("configMap").child("name"), ""));
                }
                errs.extend(items(c.items.iter().flatten(), &sp.child("configMap").child("items")));
                wrote.extend(c.items.iter().flatten().map(|k| k.path.clone()));
            }
            if let Some(c) = &s.secret {
                if c.name.is_empty() {
                    errs.push(FieldError::required(&sp.child("secret").child("name"), ""));
                }
                errs.extend(items(c.items.iter().flatten(), &sp.child("secret").child("items")));
                wrote.extend(c.items.iter().flatten().map(|k| k.path.clone()));
            }
            if let Some(d) = &s.downward_api {
                for (j, f) in d.items.iter().flatten().enumerate() {
                    errs.extend(downward_file(f, &sp.child("downwardAPI").child("items").index(j)));
                }
                wrote.extend(d.items.iter().flatten().map(|f| f.path.clone()));
            }
            if let Some(t) = &s.service_account_token {
                let tp = sp.child("serviceAccountToken").child("expirationSeconds");
                match t.expiration_seconds.unwrap_or(0) {
                    e if e < 10 * 60 => {
                        errs.push(FieldError::invalid(&tp, e, "may not specify a duration less than 10 minutes"))
                    }
                    e if e > 1 << 32 => {
                        errs.push(FieldError::invalid(&tp, e, "may not specify a duration larger than 2^32 seconds"))
                    }
                    _ => {}
                }
                if t.path.is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                }
                wrote.push(t.path.clone());
            }
            for w in wrote {
                if !paths.insert(w.clone()) {
                    errs.push(FieldError::invalid(&p, w.as_str(), "conflicting duplicate paths"));
                }
            }
        }
    }
    errs
}

fn mode(mode: Option<i32>, path: &Path) -> ErrorList {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, MODE_MESSAGE)],
        _ => vec![],
    }
}

/// `validateKeyToPath` for each item.
fn items<'a>(items: impl Iterator<Item = &'a KeyToPath>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    for (i, k) in items.enumerate() {
        let ip = path.index(i);
        if k.key.is_empty() {
            errs.push(FieldError::required(&ip.child("key"), ""));
        }
        if k.path.is_empty() {
            errs.push(FieldError::required(&ip.child("path"), ""));
        }
        errs.extend(local_path(&k.path, &ip.child("path")));
        errs.extend(mode(k.mode, &ip.child("mode")));
    }
    errs
}

/// `validateDownwardAPIVolumeFile`.
fn downward_file(f: &DownwardAPIVolumeFile, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if f.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_path(&f.path, &path.child("path")));
    match (&f.field_ref, &f.resource_field_ref) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "resource",
            "fieldRef and resourceFieldRef can not be specified simultaneously",
        )),
        (Some(r), None) => errs.extend(validate_field_ref(r, &path.child("fieldRef"), VOLUME_FIELD_PATHS)),
        (None, Some(r)) => {
            let rp = path.child("resourceFieldRef");
            if r.container_name.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(&rp.child("containerName"), ""));
            }
            if r.resource.is_empty() {
                errs.push(FieldError::required(&rp.child("resource"), ""));
            } else if !super::ENV_RESOURCES.contains(&r.resource.as_str()) {
                errs.push(FieldError::not_supported(&rp.child("resource"), r.resource.as_str(), super::ENV_RESOURCES));
            }
        }
        (None, None) => errs.push(FieldError::required(path, "one of fieldRef and resourceFieldRef is required")),
    }
    errs.extend(mode(f.mode, &path.child("mode")));
    errs
}

/// `ValidateLocalNonReservedPath`: relative, no `..` step, not starting with `..`.
fn local_path(p: &str, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
    if p.starts_with("..") {
        errs.push(FieldError::invalid(path, p, "must not start with '..'"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: serde_json::Value) -> Vec<String> {
        let mut v: Volume = serde_json::from_value(v).expect("volume");
        default(&mut v);
        validate(&v, &Path::new("spec").child("volumes").index(0)).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn sources_are_defaulted() {
        let mut v: Volume = serde_json::from_value(json!({"name": "v", "configMap": {"name": "c"}})).expect("v");
        default(&mut v);
        assert_eq!(v.config_map.and_then(|c| c.default_mode), Some(0o644));
        let mut v: Volume = serde_json::from_value(json!({"name": "v"})).expect("v");
        default(&mut v);
        assert!(v.empty_dir.is_some());
        let mut v: Volume =
            serde_json::from_value(json!({"name": "v", "nfs": {"server": "s", "path": "/"}})).expect("v");
        default(&mut v);
        assert!(v.empty_dir.is_none(), "a source skiff cannot mount is still a source");
    }

    #[test]
    fn bad_sources_fail_with_upstream_paths_and_words() {
        let p = "spec.volumes[0]";
        assert_eq!(
            check(json!({"name": "v", "emptyDir": {}, "configMap": {"name": "c"}})),
            [format!("{p}.configMap: Forbidden: may not specify more than 1 volume type")]
        );
        assert_eq!(
            check(json!({"name": "v", "configMap": {"name": "", "defaultMode": 1000, "items": [
                {"key": "", "path": "../x"}, {"key": "k", "path": "/abs", "mode": -1}]}})),
            [
                format!("{p}.configMap.name: Required value"),
                format!("{p}.configMap.defaultMode: Invalid value: 1000: {MODE_MESSAGE}"),
                format!("{p}.configMap.items[0].key: Required value"),
                format!("{p}.configMap.items[0].path: Invalid value: \"../x\": must not contain '..'"),
                format!("{p}.configMap.items[0].path: Invalid value: \"../x\": must not start with '..'"),
                format!("{p}.configMap.items[1].path: Invalid value: \"/abs\": must be a relative path"),
                format!("{p}.configMap.items[1].mode: Invalid value: -1: {MODE_MESSAGE}"),
            ]
        );
        assert_eq!(check(json!({"name": "v", "secret": {}})), [format!("{p}.secret.secretName: Required value")]);
        assert_eq!(
            check(json!({"name": "v", "downwardAPI": {"items": [
                {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}},
                {"path": "mem", "resourceFieldRef": {"resource": "limits.memory"}}]}})),
            [
                format!(
                    "{p}.downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: \"status.podIP\": supported values: \"metadata.annotations\", \"metadata.labels\", \"metadata.name\", \"metadata.namespace\", \"metadata.uid\""
                ),
                format!("{p}.downwardAPI.items[1].resourceFieldRef.containerName: Required value"),
            ]
        );
        assert_eq!(
            check(json!({"name": "v", "projected": {"sources": [
                {"configMap": {"name": "a", "items": [{"key": "k", "path": "same"}]}},
                {"secret": {"name": "b", "items": [{"key": "k", "path": "same"}]}}]}})),
            [format!("{p}.projected: Invalid value: \"same\": conflicting duplicate paths")]
        );
        assert!(check(json!({"name": "v", "hostPath": {"path": "/data", "type": "DirectoryOrCreate"}})).is_empty());
        assert_eq!(
            check(json!({"name": "v", "projected": {"sources": [
                {"serviceAccountToken": {"path": "", "expirationSeconds": 60}},
                {"serviceAccountToken": {"path": "t", "expirationSeconds": (1i64 << 32) + 1}}]}})),
            [
                format!(
                    "{p}.projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
                ),
                format!("{p}.projected.path: Required value"),
                format!(
                    "{p}.projected.sources[1].serviceAccountToken.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds"
                ),
            ]
        );
    }

    #[test]
    fn token_projections_last_an_hour_unless_told() {
        let mut v: Volume = serde_json::from_value(json!({"name": "v", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}}]}}))
        .expect("volume");
        default(&mut v);
        let sources = v.projected.and_then(|p| p.sources).unwrap_or_default();
        assert_eq!(sources[0].service_account_token.as_ref().and_then(|t| t.expiration_seconds), Some(3600));
    }
}
