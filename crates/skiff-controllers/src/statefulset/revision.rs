//! A StatefulSet's history as ControllerRevisions, as upstream keeps it: each revision holds the
//! pod template as the strategic merge patch `kubectl rollout undo` applies
//! (`{"spec":{"template":{..., "$patch":"replace"}}}`), is named `SET-HASH`, and is numbered; a
//! template equal to an older revision's renumbers that one instead of adding another.

use crate::owner::controller_reference;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The label holding a revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// A revision a pod is made at: its name (the pods' `controller-revision-hash`) and template.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub name: String,
    pub template: PodTemplateSpec,
}

/// The patch a revision stores for `template` (upstream's `getPatch`).
pub fn data(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_default();
    t["$patch"] = json!("replace");
    json!({"spec": {"template": t}})
}

/// The template a revision holds.
pub fn template(revision: &ControllerRevision) -> PodTemplateSpec {
    let mut t = revision.data.0.pointer("/spec/template").cloned().unwrap_or_default();
    if let Some(o) = t.as_object_mut() {
        o.remove("$patch");
    }
    serde_json::from_value(t).unwrap_or_default()
}

pub fn of(revision: &ControllerRevision) -> Revision {
    Revision { name: revision.metadata.name.clone().unwrap_or_default(), template: template(revision) }
}

fn template_of(set: &StatefulSet) -> PodTemplateSpec {
    set.spec.template.clone()
}

/// Whether `revision` holds the set's template (upstream's `EqualRevision`): the canonical JSON
/// of both, exactly (an unset field and `false` differ: `allowPrivilegeEscalation`); a template
/// put back by `rollout undo` is the revision's own, so it compares equal.
pub fn holds(revision: &ControllerRevision, template: &PodTemplateSpec) -> bool {
    serde_json::to_value(self::template(revision)).ok() == serde_json::to_value(template).ok()
}

/// A new revision of the set's template (upstream's `newRevision`): the template's labels and
/// the hash label, the set's annotations, controlled by the set.
pub fn new(set: &StatefulSet, number: i64, collisions: i32) -> ControllerRevision {
    let template = template_of(set);
    let hash = crate::deployment::template_hash(&template, (collisions > 0).then_some(collisions));
    let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    let prefix: String = set.metadata.name.as_deref().unwrap_or_default().chars().take(223).collect();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{hash}")),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(set.metadata.annotations.clone().unwrap_or_default()),
            owner_references: Some(vec![controller_reference(set)]),
            ..Default::default()
        },
        data: RawExtension(data(&template)),
        revision: Some(number),
    }
}

/// What the round does about the set's update revision.
#[derive(Debug, PartialEq)]
pub enum Update {
    /// The newest revision holds the template already.
    Latest(Arc<ControllerRevision>),
    /// An older revision holds it (a rollback): it becomes the newest, renumbered.
    Renumber(Arc<ControllerRevision>, i64),
    /// No revision holds it: make this one (on a name collision, again with one more collision).
    Create(Box<ControllerRevision>),
}

/// `revisions` sorted by number (then name, as upstream's `ByRevision`).
pub fn sorted(revisions: &[Arc<ControllerRevision>]) -> Vec<Arc<ControllerRevision>> {
    let mut out = revisions.to_vec();
    out.sort_by(|a, b| (a.revision.unwrap_or(0), &a.metadata.name).cmp(&(b.revision.unwrap_or(0), &b.metadata.name)));
    out
}

/// Pure: the update revision for the set's template, given its revisions (upstream's
/// `getStatefulSetRevisions`).
pub fn update(set: &StatefulSet, revisions: &[Arc<ControllerRevision>]) -> Update {
    let revisions = sorted(revisions);
    let template = template_of(set);
    let next = revisions.last().map_or(1, |r| r.revision.unwrap_or(0) + 1);
    match revisions.iter().rev().find(|r| holds(r, &template)) {
        Some(equal) if revisions.last() == Some(equal) => Update::Latest(equal.clone()),
        Some(equal) => Update::Renumber(equal.clone(), next),
        None => {
            let collisions = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
            Update::Create(Box::new(new(set, next, collisions)))
        }
    }
}

/// The revisions past the set's `revisionHistoryLimit` to delete, oldest first: those neither
/// current, nor the update revision, nor any pod's (upstream's `truncateHistory`).
pub fn to_delete(set: &StatefulSet, revisions: &[Arc<ControllerRevision>], live: &BTreeSet<&str>) -> Vec<String> {
    let limit = set.spec.revision_history_limit.unwrap_or(10);
    let history: Vec<String> = sorted(revisions)
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .filter(|name| !live.contains(name.as_str()))
        .collect();
    let excess = history.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
    history.into_iter().take(excess).collect()
}

/// The set's revisions by name.
pub fn by_name(revisions: &[Arc<ControllerRevision>]) -> BTreeMap<&str, &Arc<ControllerRevision>> {
    revisions.iter().filter_map(|r| Some((r.metadata.name.as_deref()?, r))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::identity::tests::web;

    fn with_image(image: &str) -> StatefulSet {
        let mut set = web(3, json!({}));
        if let Some(spec) = set.spec.template.spec.as_mut() {
            spec.containers[0].image = Some(image.into());
        }
        set
    }

    #[test]
    fn the_data_is_the_patch_rollout_undo_applies() {
        let set = with_image("busybox:1");
        let r = new(&set, 1, 0);
        let d = &r.data.0;
        assert_eq!(d["spec"]["template"]["$patch"], "replace");
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1");
        assert_eq!(d.as_object().map(|o| o.len()), Some(1));
        assert!(holds(&r, &set.spec.template.clone()));
        let name = r.metadata.name.clone().expect("name");
        let hash = r.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)).expect("hash");
        assert_eq!(name, format!("web-{hash}"));
        assert_eq!(r.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("web"));
        assert_ne!(new(&set, 1, 1).metadata.name, r.metadata.name, "a collision changes the name");
    }

    #[test]
    fn a_template_seen_before_is_renumbered_not_repeated() {
        let one = Arc::new(new(&with_image("busybox:1"), 1, 0));
        let two = Arc::new(new(&with_image("busybox:2"), 2, 0));
        let revisions = [two.clone(), one.clone()];
        assert_eq!(update(&with_image("busybox:2"), &revisions), Update::Latest(two.clone()));
        assert_eq!(update(&with_image("busybox:1"), &revisions), Update::Renumber(one.clone(), 3));
        match update(&with_image("busybox:3"), &revisions) {
            Update::Create(r) => assert_eq!(r.revision, Some(3)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(update(&with_image("x"), &[]), Update::Create(r) if r.revision == Some(1)));
        // A field set to false is a change from unset (they hash alike: a collision, counted).
        let mut strict = with_image("busybox:2");
        let c = &mut strict.spec.template.spec.as_mut().expect("pod spec").containers[0];
        c.security_context = Some(k8s_openapi::api::core::v1::SecurityContext {
            allow_privilege_escalation: Some(false),
            ..Default::default()
        });
        assert!(matches!(update(&strict, &revisions), Update::Create(_)));
    }

    #[test]
    fn history_keeps_the_limit_and_whatever_is_live() {
        let mut set = with_image("a");
        set.spec.revision_history_limit = Some(1);
        let revisions: Vec<Arc<ControllerRevision>> =
            (1..=4).map(|n| Arc::new(new(&with_image(&format!("i{n}")), n, 0))).collect();
        let names: Vec<String> = revisions.iter().map(|r| r.metadata.name.clone().expect("name")).collect();
        let live = BTreeSet::from([names[3].as_str(), names[0].as_str()]);
        assert_eq!(to_delete(&set, &revisions, &live), [names[1].clone()]);
    }
}
