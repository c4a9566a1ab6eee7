//! The ReplicaSet controller's decisions, table by table.

use super::*;
use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("time")
}

fn rs(replicas: i32, min_ready: i32) -> ReplicaSet {
    serde_json::from_value(json!({"metadata": {"name": "web-abc", "namespace": "default", "uid": "rs-1", "generation": 2},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .expect("rs")
}

/// A pod of ours (`owned`), in `phase`, ready since `ready` (if any), created at `created`.
fn pod(name: &str, owned: bool, phase: &str, ready: Option<&str>, created: &str) -> Arc<Pod> {
    let owner = OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "web-abc".into(),
        uid: "rs-1".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            owner_references: owned.then(|| vec![owner]),
            creation_timestamp: Some(Time(ts(created))),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::PodSpec { node_name: Some("n1".into()), ..Default::default() }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: ready.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(ts(t))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    })
}

const NOW: &str = "2026-01-01T00:10:00Z";

#[test]
fn creates_what_is_missing_and_counts_what_is_there() {
    let pods = vec![pod("a", true, "Running", Some("2026-01-01T00:01:00Z"), "2026-01-01T00:00:00Z")];
    let p = plan(&rs(3, 0), &pods, ts(NOW));
    assert_eq!((p.create, p.delete.len()), (2, 0));
    assert_eq!(
        (p.status.replicas, p.status.ready_replicas, p.status.available_replicas, p.status.observed_generation),
        (1, Some(1), Some(1), Some(2))
    );
}

#[test]
fn deletes_the_pods_upstream_would_delete_first() {
    let pods = vec![
        pod("old-ready", true, "Running", Some("2026-01-01T00:01:00Z"), "2026-01-01T00:00:00Z"),
        pod("new-ready", true, "Running", Some("2026-01-01T00:09:00Z"), "2026-01-01T00:08:00Z"),
        pod("pending", true, "Pending", None, "2026-01-01T00:02:00Z"),
        pod("not-ready", true, "Running", None, "2026-01-01T00:03:00Z"),
    ];
    let p = plan(&rs(1, 0), &pods, ts(NOW));
    assert_eq!(p.delete, ["pending", "not-ready", "new-ready"]);
    assert_eq!(p.create, 0);
}

#[test]
fn adopts_orphans_and_ignores_finished_pods() {
    let mut done = (*pod("done", true, "Succeeded", None, "2026-01-01T00:00:00Z")).clone();
    done.metadata.name = Some("done".into());
    let pods = vec![pod("orphan", false, "Running", None, "2026-01-01T00:00:00Z"), Arc::new(done)];
    let p = plan(&rs(2, 0), &pods, ts(NOW));
    assert_eq!(p.adopt, ["orphan"]);
    assert_eq!((p.create, p.status.replicas), (1, 1), "the finished pod does not count");
}

#[test]
fn releases_pods_that_stopped_matching() {
    let mut relabelled = (*pod("moved", true, "Running", None, "2026-01-01T00:00:00Z")).clone();
    relabelled.metadata.labels = Some([("app".to_string(), "debug".to_string())].into());
    let p = plan(&rs(0, 0), &[Arc::new(relabelled)], ts(NOW));
    assert_eq!(p.release, ["moved"]);
}

#[test]
fn availability_waits_for_min_ready_seconds() {
    let pods = vec![pod("a", true, "Running", Some("2026-01-01T00:09:50Z"), "2026-01-01T00:09:00Z")];
    let p = plan(&rs(1, 30), &pods, ts(NOW));
    assert_eq!((p.status.ready_replicas, p.status.available_replicas), (Some(1), Some(0)));
    assert_eq!(p.requeue, Some(Duration::from_secs(30)));
    let later = plan(&rs(1, 30), &pods, ts("2026-01-01T00:10:30Z"));
    assert_eq!(later.status.available_replicas, Some(1));
}

#[test]
fn failures_set_replica_failure_until_a_round_goes_through() {
    let pods = vec![pod("a", true, "Running", None, "2026-01-01T00:00:00Z")];
    let p = plan(&rs(3, 0), &pods, ts(NOW));
    let failed = with_failure(p.status.clone(), &p, Some("pods \"web-x\" is forbidden: quota"), ts(NOW));
    let c = &failed.conditions.as_deref().expect("a condition")[0];
    assert_eq!(
        (c.type_.as_deref(), c.status.as_deref(), c.reason.as_deref(), c.message.as_deref()),
        (Some(REPLICA_FAILURE), Some("True"), Some("FailedCreate"), Some("pods \"web-x\" is forbidden: quota"))
    );
    // a later failure keeps the first condition (and its time)
    let mut later = rs(3, 0);
    later.status = Some(failed.clone());
    let p = plan(&later, &pods, ts("2026-01-01T00:20:00Z"));
    let again = with_failure(p.status.clone(), &p, Some("other"), ts("2026-01-01T00:20:00Z"));
    assert_eq!(again.conditions, failed.conditions);
    assert_eq!(with_failure(p.status.clone(), &p, None, ts(NOW)).conditions, None);
    // too many pods: the deletes failed
    let p = plan(&rs(0, 0), &pods, ts(NOW));
    let c = with_failure(p.status.clone(), &p, Some("no"), ts(NOW)).conditions.expect("a condition");
    assert_eq!(c[0].reason.as_deref(), Some("FailedDelete"));
}
