//! The objects a pod's spec names in its own namespace: upstream's `VisitPodSecretNames` and
//! `VisitPodConfigmapNames` (`pkg/api/v1/pod/util.go`: pull secrets, every container's `env`
//! and `envFrom`, each volume's one source), its PersistentVolumeClaims (named, and the
//! `POD-VOLUME` claim of an ephemeral volume) and its service account. The Node authorizer's
//! graph lets a pod's node read these; NodeRestriction refuses mirror pods that name any.

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, PodSpec, Volume};

/// What one pod references, in the order upstream visits them (duplicates kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodReferences {
    pub secrets: Vec<String>,
    pub config_maps: Vec<String>,
    pub claims: Vec<String>,
    /// `spec.serviceAccountName`, when set.
    pub service_account: Option<String>,
}

/// The references of pod `pod_name`'s `spec`.
pub fn of(pod_name: &str, spec: &PodSpec) -> PodReferences {
    let mut refs = PodReferences {
        service_account: spec.service_account_name.clone().filter(|s| !s.is_empty()),
        ..Default::default()
    };
    refs.secrets.extend(spec.image_pull_secrets.iter().flatten().map(|r| r.name.clone()));
    for (env, env_from) in containers_env(spec) {
        refs.secrets.extend(env_from.iter().filter_map(|e| e.secret_ref.as_ref()).map(|r| r.name.clone()));
        let from = env.iter().filter_map(|e| e.value_from.as_ref());
        refs.secrets.extend(from.filter_map(|f| f.secret_key_ref.as_ref()).map(|r| r.name.clone()));
    }
    for v in spec.volumes.iter().flatten() {
        refs.secrets.extend(volume_secret(v));
    }
    for (env, env_from) in containers_env(spec) {
        refs.config_maps.extend(env_from.iter().filter_map(|e| e.config_map_ref.as_ref()).map(|r| r.name.clone()));
        let from = env.iter().filter_map(|e| e.value_from.as_ref());
        refs.config_maps.extend(from.filter_map(|f| f.config_map_key_ref.as_ref()).map(|r| r.name.clone()));
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(p) = &v.projected {
            refs.config_maps
                .extend(p.sources.iter().flatten().filter_map(|s| s.config_map.as_ref()).map(|c| c.name.clone()));
        } else if let Some(c) = &v.config_map {
            refs.config_maps.push(c.name.clone());
        }
        if let Some(c) = &v.persistent_volume_claim {
            refs.claims.push(c.claim_name.clone());
        } else if v.ephemeral.is_some() {
            refs.claims.push(format!("{pod_name}-{}", v.name));
        }
    }
    refs
}

impl PodReferences {
    /// Whether the pod names any Secret (NodeRestriction's test of a mirror pod).
    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    pub fn has_config_maps(&self) -> bool {
        !self.config_maps.is_empty()
    }
}

/// Every container's `env` and `envFrom`: init, app, then ephemeral (upstream's `AllContainers`).
fn containers_env(spec: &PodSpec) -> impl Iterator<Item = (&[EnvVar], &[EnvFromSource])> {
    let init = spec.init_containers.iter().flatten().map(|c| (c.env.as_deref(), c.env_from.as_deref()));
    let app = spec.containers.iter().map(|c| (c.env.as_deref(), c.env_from.as_deref()));
    let ephemeral = spec.ephemeral_containers.iter().flatten().map(|c| (c.env.as_deref(), c.env_from.as_deref()));
    init.chain(app).chain(ephemeral).map(|(env, from)| (env.unwrap_or_default(), from.unwrap_or_default()))
}

/// The Secrets one volume's source names (a volume has one source; upstream's order decides).
fn volume_secret(v: &Volume) -> Vec<String> {
    let local =
        |r: &Option<k8s_openapi::api::core::v1::LocalObjectReference>| r.iter().map(|r| r.name.clone()).collect();
    if let Some(a) = &v.azure_file {
        return if a.secret_name.is_empty() { vec![] } else { vec![a.secret_name.clone()] };
    }
    if let Some(c) = &v.cephfs {
        return local(&c.secret_ref);
    }
    if let Some(c) = &v.cinder {
        return local(&c.secret_ref);
    }
    if let Some(f) = &v.flex_volume {
        return local(&f.secret_ref);
    }
    if let Some(p) = &v.projected {
        return p.sources.iter().flatten().filter_map(|s| s.secret.as_ref()).map(|s| s.name.clone()).collect();
    }
    if let Some(r) = &v.rbd {
        return local(&r.secret_ref);
    }
    if let Some(s) = &v.secret {
        return vec![s.secret_name.clone().unwrap_or_default()];
    }
    if let Some(s) = &v.scale_io {
        return vec![s.secret_ref.name.clone()];
    }
    if let Some(i) = &v.iscsi {
        return local(&i.secret_ref);
    }
    if let Some(s) = &v.storageos {
        return local(&s.secret_ref);
    }
    if let Some(c) = &v.csi {
        return local(&c.node_publish_secret_ref);
    }
    vec![]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("pod spec")
    }

    #[test]
    fn every_place_a_pod_names_an_object() {
        let s = spec(serde_json::json!({
            "serviceAccountName": "app",
            "imagePullSecrets": [{"name": "pull"}],
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{"name": "c",
                "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "key", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}},
                        {"name": "C", "value": "plain"}],
                "envFrom": [{"configMapRef": {"name": "cm-env"}}]}],
            "ephemeralContainers": [{"name": "e", "envFrom": [{"secretRef": {"name": "debug"}}]}],
            "volumes": [
                {"name": "s", "secret": {"secretName": "vol"}},
                {"name": "c", "configMap": {"name": "cm-vol"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "proj"}}, {"configMap": {"name": "cm-proj"}},
                    {"serviceAccountToken": {"path": "t"}}]}},
                {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi"}}},
                {"name": "az", "azureFile": {"secretName": "", "shareName": "x"}},
                {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "e", "emptyDir": {}}
            ]
        }));
        let refs = of("web", &s);
        assert_eq!(refs.secrets, ["pull", "init-env", "key", "debug", "vol", "proj", "csi"]);
        assert_eq!(refs.config_maps, ["cm-env", "cm-key", "cm-vol", "cm-proj"]);
        assert_eq!(refs.claims, ["data", "web-scratch"]);
        assert_eq!(refs.service_account.as_deref(), Some("app"));
        assert!(refs.has_secrets() && refs.has_config_maps());
    }

    #[test]
    fn a_bare_pod_names_nothing() {
        let refs = of("web", &spec(serde_json::json!({"containers": [{"name": "c"}], "serviceAccountName": ""})));
        assert_eq!(refs, PodReferences::default());
        assert!(!refs.has_secrets() && !refs.has_config_maps());
    }
}
