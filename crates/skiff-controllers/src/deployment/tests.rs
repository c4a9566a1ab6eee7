//! The Deployment controller's rollout decisions.

use super::*;
use k8s_openapi::api::apps::v1::ReplicaSetStatus;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("time")
}

const NOW: &str = "2026-01-01T00:10:00Z";

fn deployment(replicas: i32, image: &str, strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default", "uid": "d-1", "generation": 1},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "strategy": strategy,
            "revisionHistoryLimit": 1, "progressDeadlineSeconds": 600,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}}))
    .expect("deployment")
}

fn rolling() -> serde_json::Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
}

/// The ReplicaSet the controller would make for `d`, at `revision`, with `spec` replicas of which
/// `available` are available.
fn replicaset(d: &Deployment, revision: i64, spec: i32, available: i32) -> Arc<ReplicaSet> {
    let mut step = rollout(d, &[], ts(NOW));
    let mut rs = step.create.take().expect("a new ReplicaSet");
    rs.metadata.uid = Some(format!("rs-{revision}"));
    rs.metadata.annotations.get_or_insert_with(Default::default).insert(REVISION.into(), revision.to_string());
    rs.spec.replicas = Some(spec);
    rs.status = Some(ReplicaSetStatus {
        replicas: spec,
        ready_replicas: Some(available),
        available_replicas: Some(available),
        ..Default::default()
    });
    Arc::new(rs)
}

fn scales(step: &Step) -> Vec<(String, i32)> {
    step.scale.iter().map(|(n, r, _)| (n.clone(), *r)).collect()
}

#[test]
fn a_new_deployment_gets_a_replica_set_named_by_its_template() {
    let d = deployment(3, "nginx", rolling());
    let step = rollout(&d, &[], ts(NOW));
    let rs = step.create.expect("created");
    let hash = template_hash(&d.spec.template, None);
    assert_eq!(rs.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
    assert!(hash.bytes().all(|b| ALPHANUMS.contains(&b)));
    let rs_spec = rs.spec;
    assert_eq!(rs_spec.replicas, Some(3));
    assert_eq!(rs_spec.selector.match_labels.expect("labels")[TEMPLATE_HASH_LABEL], hash);
    assert_eq!(rs.metadata.annotations.expect("annotations")[REVISION], "1");
    let progressing = step.status.conditions.expect("conditions");
    assert_eq!(progressing[1].reason.as_deref(), Some("NewReplicaSetCreated"));
    assert_eq!(step.revision, "1");
}

#[test]
fn a_rolling_update_surges_then_scales_the_old_down_as_the_new_becomes_available() {
    let v1 = deployment(4, "nginx:1", rolling());
    let v2 = deployment(4, "nginx:2", rolling());
    let old = replicaset(&v1, 1, 4, 4);
    // maxSurge 25% of 4 = 1: the new one starts at 1; maxUnavailable 1: one old pod may go.
    let step = rollout(&v2, std::slice::from_ref(&old), ts(NOW));
    let new = step.create.as_ref().expect("new ReplicaSet");
    assert_eq!(new.spec.replicas, Some(1));
    assert_eq!(scales(&step), [(old.metadata.name.clone().expect("name"), 3)]);
    assert_eq!(step.revision, "2");
    // Later: the new one has 1 available, the old one 3.
    let old = replicaset(&v1, 1, 3, 3);
    let new = replicaset(&v2, 2, 1, 1);
    let step = rollout(&v2, &[old.clone(), new.clone()], ts(NOW));
    assert_eq!(scales(&step), [(new.metadata.name.clone().expect("n"), 2), (old.metadata.name.clone().expect("o"), 2)]);
    // Never below replicas - maxUnavailable available: with the new pods not ready, no old goes.
    let new = replicaset(&v2, 2, 2, 0);
    let old = replicaset(&v1, 1, 3, 3);
    let step = rollout(&v2, &[old, new], ts(NOW));
    assert!(scales(&step).iter().all(|(n, _)| !n.ends_with(&template_hash(&v1.spec.template, None))));
}

#[test]
fn recreate_scales_the_old_to_zero_before_the_new_starts() {
    let recreate = json!({"type": "Recreate"});
    let v1 = deployment(2, "nginx:1", recreate.clone());
    let v2 = deployment(2, "nginx:2", recreate);
    let old = replicaset(&v1, 1, 2, 2);
    let step = rollout(&v2, std::slice::from_ref(&old), ts(NOW));
    assert_eq!(step.create.as_ref().and_then(|rs| rs.spec.replicas), Some(0));
    assert_eq!(scales(&step), [(old.metadata.name.clone().expect("name"), 0)]);
    let gone = replicaset(&v1, 1, 0, 0);
    let new = replicaset(&v2, 2, 0, 0);
    let step = rollout(&v2, &[gone, new.clone()], ts(NOW));
    assert_eq!(scales(&step), [(new.metadata.name.clone().expect("name"), 2)]);
}

#[test]
fn complete_rollouts_say_so_and_trim_history() {
    let v1 = deployment(2, "nginx:1", rolling());
    let v2 = deployment(2, "nginx:2", rolling());
    let v3 = deployment(2, "nginx:3", rolling());
    let h1 = replicaset(&v1, 1, 0, 0);
    let h2 = replicaset(&v2, 2, 0, 0);
    let current = replicaset(&v3, 3, 2, 2);
    let step = rollout(&v3, &[h1.clone(), h2, current.clone()], ts(NOW));
    assert!(step.scale.is_empty() && step.create.is_none());
    assert_eq!(step.delete, [h1.metadata.name.clone().expect("name")], "revisionHistoryLimit 1 keeps one old");
    let conditions = step.status.conditions.expect("conditions");
    assert_eq!((conditions[0].type_.as_deref(), conditions[0].status.as_deref()), (Some("Available"), Some("True")));
    assert_eq!(conditions[1].reason.as_deref(), Some("NewReplicaSetAvailable"));
    assert_eq!(step.status.updated_replicas, Some(2));
    assert_eq!(step.revision, "3");
}

#[test]
fn rolling_back_reuses_the_old_replica_set_as_the_newest_revision() {
    let v1 = deployment(2, "nginx:1", rolling());
    let v2 = deployment(2, "nginx:2", rolling());
    let old = replicaset(&v1, 1, 0, 0);
    let current = replicaset(&v2, 2, 2, 2);
    let step = rollout(&v1, &[old.clone(), current], ts(NOW));
    assert!(step.create.is_none(), "no new ReplicaSet for a template seen before");
    let (name, replicas, annotations) = &step.scale[0];
    assert_eq!((name.as_str(), *replicas), (old.metadata.name.as_deref().expect("name"), 1));
    assert_eq!((annotations[REVISION].as_str(), annotations[REVISION_HISTORY].as_str()), ("3", "1"));
    assert_eq!(step.revision, "3");
}

#[test]
fn a_rollout_that_stalls_past_its_deadline_says_progress_deadline_exceeded() {
    let v2 = deployment(1, "nginx:broken", rolling());
    let new = replicaset(&v2, 1, 1, 0);
    let mut stalled = deployment(1, "nginx:broken", rolling());
    let progressing = condition("Progressing", "True", "ReplicaSetUpdated", "x".into(), ts("2026-01-01T00:00:00Z"));
    stalled.status = Some(DeploymentStatus {
        replicas: Some(1),
        updated_replicas: Some(1),
        ready_replicas: Some(0),
        available_replicas: Some(0),
        conditions: Some(vec![progressing]),
        ..Default::default()
    });
    let step = rollout(&stalled, std::slice::from_ref(&new), ts("2026-01-01T00:09:00Z"));
    let c = step.status.conditions.clone().expect("conditions");
    assert_eq!(c[1].reason.as_deref(), Some("ReplicaSetUpdated"));
    assert_eq!(step.requeue, Some(Duration::from_secs(60)));
    let step = rollout(&stalled, std::slice::from_ref(&new), ts("2026-01-01T00:10:01Z"));
    let c = step.status.conditions.expect("conditions");
    assert_eq!((c[1].status.as_deref(), c[1].reason.as_deref()), (Some("False"), Some("ProgressDeadlineExceeded")));
    let name = new.metadata.name.clone().expect("name");
    assert_eq!(c[1].message.as_deref(), Some(format!("ReplicaSet \"{name}\" has timed out progressing.").as_str()));
}

#[test]
fn percentages_round_as_upstream() {
    let d = deployment(
        10,
        "nginx",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
    );
    assert_eq!(surge_and_unavailable(&d), (3, 2));
    let zero = deployment(
        1,
        "nginx",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}}),
    );
    assert_eq!(surge_and_unavailable(&zero), (0, 1));
}

#[test]
fn templates_compare_as_go_compares_them() {
    let d = deployment(1, "nginx", rolling());
    let mut from_go = d.spec.template.clone();
    let spec = from_go.spec.as_mut().expect("spec");
    spec.host_ipc = Some(false);
    spec.containers[0].stdin = Some(false);
    from_go.metadata.as_mut().expect("metadata").generation = Some(0);
    let rs = replicaset(&d, 1, 1, 1);
    let mut with_zeroes = (*rs).clone();
    with_zeroes.spec.template = Some(from_go.clone());
    assert!(same_template(&with_zeroes, &d.spec.template));
    assert_eq!(template_hash(&from_go, None), template_hash(&d.spec.template, None));
    let other = deployment(1, "nginx:2", rolling());
    assert!(!same_template(&rs, &other.spec.template));
}
