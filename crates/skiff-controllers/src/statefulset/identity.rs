//! A StatefulSet pod's identity and storage, as upstream's `stateful_set_utils` give them: the
//! name `SET-ORDINAL`, the labels that name it, its DNS name under the governing Service
//! (`hostname`, `subdomain`) and one claim per `volumeClaimTemplates` entry, named
//! `TEMPLATE-SET-ORDINAL`, so a pod made again for the same ordinal finds the same data.

use crate::daemonset::REVISION_HASH_LABEL;
use crate::owner::controller_reference;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The label naming the pod (a Service can select one replica by it).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding the pod's ordinal (upstream's PodIndexLabel, on since 1.28).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The first ordinal (`spec.ordinals.start`, else 0).
pub fn start(set: &StatefulSet) -> i32 {
    set.spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0)
}

/// `spec.replicas` (1 when absent, as defaulted).
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.replicas.unwrap_or(1)
}

pub fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set_name(set))
}

/// The parent name and ordinal a pod's name encodes (`web-2` → (`web`, 2)).
pub fn parent_and_ordinal(pod_name: &str) -> Option<(&str, i32)> {
    let (parent, ordinal) = pod_name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

/// Whether `pod` is named as one of `set`'s (upstream's `isMemberOf`).
pub fn is_member(set: &StatefulSet, pod: &Pod) -> bool {
    pod.metadata.name.as_deref().and_then(parent_and_ordinal).is_some_and(|(parent, _)| parent == set_name(set))
}

pub fn ordinal(pod: &Pod) -> Option<i32> {
    pod.metadata.name.as_deref().and_then(parent_and_ordinal).map(|(_, o)| o)
}

/// The revision a pod was made from (its `controller-revision-hash` label).
pub fn revision(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_HASH_LABEL)).map_or("", String::as_str)
}

/// The labels that say who the pod is, which a pod made by hand or relabelled must get back.
pub fn identity_labels(set: &StatefulSet, ordinal: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POD_NAME_LABEL.to_string(), pod_name(set, ordinal)),
        (POD_INDEX_LABEL.to_string(), ordinal.to_string()),
    ])
}

/// Whether the pod carries its identity labels (upstream's `identityMatches`).
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ordinal) = ordinal(pod) else { return false };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    pod.metadata.namespace == set.metadata.namespace
        && identity_labels(set, ordinal).iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The name of the claim from `template` for `ordinal`.
pub fn claim_name(set: &StatefulSet, template: &PersistentVolumeClaim, ordinal: i32) -> String {
    format!("{}-{}", template.metadata.name.as_deref().unwrap_or_default(), pod_name(set, ordinal))
}

/// The claims of `ordinal`, one per template in order: the template with its name, namespace,
/// and the set's selector labels (upstream's `getPersistentVolumeClaims`).
pub fn claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let templates = set.spec.volume_claim_templates.clone().unwrap_or_default();
    let selector = set.spec.selector.match_labels.clone().unwrap_or_default();
    templates
        .into_iter()
        .map(|template| {
            let mut claim = template.clone();
            claim.metadata.name = Some(claim_name(set, &template, ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            claim.metadata.labels.get_or_insert_with(BTreeMap::new).extend(selector.clone());
            claim.status = None;
            claim
        })
        .collect()
}

/// The pod for `ordinal` from `template` (the revision it is made at): the template's labels,
/// annotations and spec, its identity, its claims as volumes (replacing a template volume of a
/// claim template's name), controlled by the set.
pub fn new_pod(
    set: &StatefulSet,
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    revision: &str,
    ordinal: i32,
) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.extend(identity_labels(set, ordinal));
    labels.insert(REVISION_HASH_LABEL.into(), revision.into());
    let name = pod_name(set, ordinal);
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = set.spec.service_name.clone().filter(|s| !s.is_empty());
    let templates = set.spec.volume_claim_templates.clone().unwrap_or_default();
    let mut volumes: Vec<Volume> = templates
        .iter()
        .map(|t| Volume {
            name: t.metadata.name.clone().unwrap_or_default(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(set, t, ordinal),
                read_only: None,
            }),
            ..Default::default()
        })
        .collect();
    let own = |v: &Volume| templates.iter().any(|t| t.metadata.name.as_deref() == Some(v.name.as_str()));
    volumes.extend(spec.volumes.take().unwrap_or_default().into_iter().filter(|v| !own(v)));
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_reference(set)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn web(replicas: i32, extra: serde_json::Value) -> StatefulSet {
        let mut spec = json!({"replicas": replicas, "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}],
                    "volumes": [{"name": "www", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "db"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "shop", "uid": "set-1", "generation": 1},
            "spec": spec}),
        )
        .expect("statefulset")
    }

    #[test]
    fn names_and_ordinals() {
        assert_eq!(parent_and_ordinal("web-12"), Some(("web", 12)));
        assert_eq!(parent_and_ordinal("my-db-0"), Some(("my-db", 0)));
        assert_eq!(parent_and_ordinal("web--1"), Some(("web-", 1)), "as upstream's `(.*)-([0-9]+)$`");
        for bad in ["web", "web-", "web-x", "web-1a", "web-+1"] {
            assert_eq!(parent_and_ordinal(bad), None, "{bad}");
        }
        let set = web(3, json!({}));
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web-2"}})).expect("pod");
        assert!(is_member(&set, &pod));
        let other: Pod = serde_json::from_value(json!({"metadata": {"name": "webapp-2"}})).expect("pod");
        assert!(!is_member(&set, &other));
    }

    #[test]
    fn a_pod_has_its_identity_and_claims() {
        let set = web(3, json!({}));
        let template = set.spec.template.clone();
        let pod = new_pod(&set, &template, "web-abc", 1);
        let v = serde_json::to_value(&pod).expect("json");
        assert_eq!(v["metadata"]["name"], "web-1");
        assert_eq!(
            v["metadata"]["labels"],
            json!({"app": "web", POD_NAME_LABEL: "web-1", POD_INDEX_LABEL: "1", "controller-revision-hash": "web-abc"})
        );
        assert_eq!((v["spec"]["hostname"].clone(), v["spec"]["subdomain"].clone()), (json!("web-1"), json!("web")));
        // The claim template's volume replaces the template's volume of that name.
        assert_eq!(
            v["spec"]["volumes"],
            json!([{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}}, {"name": "tmp", "emptyDir": {}}])
        );
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        assert!(identity_matches(&set, &pod));
        let claims = serde_json::to_value(claims(&set, 1)).expect("json");
        assert_eq!(claims[0]["metadata"]["name"], "www-web-1");
        assert_eq!(claims[0]["metadata"]["labels"], json!({"tier": "db", "app": "web"}));
        assert_eq!(claims[0]["metadata"]["namespace"], "shop");
    }
}
