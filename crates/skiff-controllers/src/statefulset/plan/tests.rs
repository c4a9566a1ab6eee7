use super::*;
use crate::statefulset::identity::tests::web;
use serde_json::json;

/// A pod of the set at `revision` in `state`: "ready", "running" (not ready), "pending",
/// "failed", "terminating".
fn pod(ordinal: i32, revision: &str, state: &str) -> Arc<Pod> {
    let (phase, ready) = match state {
        "ready" | "terminating" => ("Running", true),
        "running" => ("Running", false),
        "pending" => ("Pending", false),
        "failed" => ("Failed", false),
        other => panic!("{other}"),
    };
    let mut p = json!({"metadata": {"name": format!("web-{ordinal}"), "namespace": "shop", "uid": format!("pod-{ordinal}"),
        "labels": {"app": "web", "controller-revision-hash": revision,
            "statefulset.kubernetes.io/pod-name": format!("web-{ordinal}"), "apps.kubernetes.io/pod-index": ordinal.to_string()}},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    if state == "terminating" {
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    Arc::new(serde_json::from_value(p).expect("pod"))
}

fn claims(names: &[&str]) -> BTreeMap<String, Arc<PersistentVolumeClaim>> {
    names
        .iter()
        .map(|n| (n.to_string(), Arc::new(serde_json::from_value(json!({"metadata": {"name": n}})).expect("claim"))))
        .collect()
}

fn revision(name: &str) -> Revision {
    Revision { name: name.into(), template: web(1, json!({})).spec.template }
}

fn now() -> Timestamp {
    "2026-01-01T01:00:00Z".parse().expect("time")
}

/// The round for `set` at current revision r1 and update revision r2.
fn round(set: &StatefulSet, pods: &[Arc<Pod>], claims: &BTreeMap<String, Arc<PersistentVolumeClaim>>) -> Plan {
    let (current, update) = (revision("r1"), revision("r2"));
    plan(&Inputs { set, pods, claims, current: &current, update: &update, collision_count: 0, now: now() })
}

/// The round's steps, each as a short string.
fn steps(set: &StatefulSet, pods: &[Arc<Pod>], claim_names: &[&str]) -> Vec<String> {
    round(set, pods, &claims(claim_names)).steps.iter().map(describe).collect()
}

fn describe(step: &Step) -> String {
    match step {
        Step::CreatePod { pod, claims } => {
            let claims: Vec<String> = claims.iter().filter_map(|c| c.metadata.name.clone()).collect();
            let rev = identity::revision(pod);
            format!("create {}@{rev} {}", pod.metadata.name.clone().unwrap_or_default(), claims.join(","))
        }
        Step::CreateClaims { claims, .. } => {
            format!("claims {}", claims.iter().filter_map(|c| c.metadata.name.clone()).collect::<Vec<_>>().join(","))
        }
        Step::DeletePod { name, why } => format!("delete {name} {why:?}"),
        Step::Relabel { name, .. } => format!("relabel {name}"),
        Step::SetClaimOwners { claim, owners } => {
            format!("owners {claim} {}", owners.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>().join(","))
        }
        Step::Blocked { pod, claim } => format!("blocked {pod}: {claim}"),
    }
}

#[test]
fn ordered_ready_makes_one_replica_at_a_time() {
    let set = web(3, json!({}));
    assert_eq!(steps(&set, &[], &[]), ["create web-0@r2 www-web-0"]);
    // web-0 not ready yet: nothing more.
    assert!(steps(&set, &[pod(0, "r2", "running")], &["www-web-0"]).is_empty());
    // web-0 ready: web-1, whose claim is there already (kept from before).
    assert_eq!(steps(&set, &[pod(0, "r2", "ready")], &["www-web-0", "www-web-1"]), ["create web-1@r2 "]);
    // Parallel: every missing replica at once, whatever the others do.
    let parallel = web(3, json!({"podManagementPolicy": "Parallel"}));
    assert_eq!(
        steps(&parallel, &[pod(1, "r2", "pending")], &["www-web-1"]),
        ["create web-0@r2 www-web-0", "create web-2@r2 www-web-2"]
    );
}

#[test]
fn failed_pods_are_made_again_and_a_deleted_claim_blocks() {
    let set = web(2, json!({}));
    assert_eq!(
        steps(&set, &[pod(0, "r2", "failed"), pod(1, "r2", "ready")], &["www-web-0", "www-web-1"]),
        ["delete web-0 Failed"]
    );
    // A pending pod whose claim was deleted behind the set's back gets it again.
    assert_eq!(steps(&set, &[pod(0, "r2", "pending")], &[]), ["claims www-web-0"]);
    let mut deleting = claims(&["www-web-0", "www-web-1"]);
    let mut claim = (*deleting["www-web-1"]).clone();
    claim.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    deleting.insert("www-web-1".into(), Arc::new(claim));
    let got: Vec<String> = round(&set, &[pod(0, "r2", "ready")], &deleting).steps.iter().map(describe).collect();
    assert_eq!(got, ["blocked web-1: www-web-1"]);
}

#[test]
fn scale_down_goes_highest_first_once_the_rest_are_healthy() {
    let set = web(1, json!({}));
    let pods = [pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "ready")];
    assert_eq!(steps(&set, &pods, &[]), ["delete web-2 ScaledDown"]);
    let pods = [pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "terminating")];
    assert!(steps(&set, &pods, &[]).is_empty(), "web-2 goes first, wholly");
    let pods = [pod(0, "r2", "running"), pod(1, "r2", "ready")];
    assert!(steps(&set, &pods, &[]).is_empty(), "a kept replica is not ready");
    // The lowest unhealthy condemned pod may go; one above it blocks.
    let pods = [pod(0, "r2", "ready"), pod(1, "r2", "running"), pod(2, "r2", "ready")];
    assert_eq!(steps(&set, &pods, &[]), ["delete web-2 ScaledDown"]);
    let pods = [pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "running")];
    assert_eq!(steps(&set, &pods, &[]), ["delete web-2 ScaledDown"]);
    let parallel = web(1, json!({"podManagementPolicy": "Parallel"}));
    let pods = [pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "ready")];
    assert_eq!(steps(&parallel, &pods, &[]), ["delete web-2 ScaledDown", "delete web-1 ScaledDown"]);
}

#[test]
fn rolling_update_from_the_top_down_to_the_partition() {
    let set = web(3, json!({}));
    let all_old = [pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r1", "ready")];
    assert_eq!(steps(&set, &all_old, &[]), ["delete web-2 Update"]);
    // web-2 back at r2 but not ready: wait.
    let pods = [pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r2", "running")];
    assert!(steps(&set, &pods, &[]).is_empty());
    let pods = [pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r2", "ready")];
    assert_eq!(steps(&set, &pods, &[]), ["delete web-1 Update"]);
    // partition 2: only web-2 is updated; a web-0 made again is made at the current revision.
    let partitioned = web(3, json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}));
    let pods = [pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r2", "ready")];
    assert!(steps(&partitioned, &pods, &[]).is_empty());
    let pods = [pod(1, "r1", "ready"), pod(2, "r2", "ready")];
    assert_eq!(steps(&partitioned, &pods, &[]), ["create web-0@r1 www-web-0"]);
    // OnDelete: never by itself; a deleted pod comes back at the update revision.
    let on_delete = web(3, json!({"updateStrategy": {"type": "OnDelete"}}));
    assert!(steps(&on_delete, &all_old, &[]).is_empty());
    assert_eq!(steps(&on_delete, &all_old[1..], &[]), ["create web-0@r2 www-web-0"]);
    // maxUnavailable 2: two at a time, counting the unavailable.
    let two = web(
        3,
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}}),
    );
    assert_eq!(steps(&two, &all_old, &[]), ["delete web-2 Update", "delete web-1 Update"]);
    let pods = [pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r2", "running")];
    let parallel_two = web(
        3,
        json!({"podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": "70%"}}}),
    );
    assert_eq!(steps(&parallel_two, &pods, &[]), ["delete web-1 Update"]);
}

#[test]
fn identity_and_retention_are_restored() {
    let set =
        web(2, json!({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"}}));
    let mut relabelled = (*pod(0, "r2", "ready")).clone();
    relabelled.metadata.labels.as_mut().expect("labels").remove(identity::POD_NAME_LABEL);
    let pods = [Arc::new(relabelled), pod(1, "r2", "ready"), pod(2, "r2", "ready")];
    assert_eq!(
        steps(&set, &pods, &["www-web-0", "www-web-1", "www-web-2"]),
        ["relabel web-0", "owners www-web-2 Pod", "delete web-2 ScaledDown"]
    );
}

#[test]
fn status_counts_revisions_and_completes_the_rollout() {
    let set = web(3, json!({}));
    let pods = [pod(0, "r1", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "running")];
    let s = round(&set, &pods, &claims(&[])).status;
    assert_eq!((s.replicas, s.ready_replicas, s.current_replicas, s.updated_replicas), (3, Some(2), Some(1), Some(2)));
    assert_eq!((s.current_revision.as_deref(), s.update_revision.as_deref()), (Some("r1"), Some("r2")));
    let pods = [pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "ready")];
    let s = round(&set, &pods, &claims(&[])).status;
    assert_eq!((s.current_revision.as_deref(), s.current_replicas), (Some("r2"), Some(3)));
    assert_eq!(s.observed_generation, Some(1));
}

#[test]
fn min_ready_seconds_holds_the_next_replica_and_requeues() {
    let set = web(2, json!({"minReadySeconds": 7200}));
    let p = round(&set, &[pod(0, "r2", "ready")], &claims(&[]));
    assert!(p.steps.is_empty());
    assert_eq!(p.requeue, Some(Duration::from_secs(3600)));
}

#[test]
fn a_claim_left_to_the_collector_holds_its_replica_back() {
    let set =
        web(3, json!({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"}}));
    let mut claims = claims(&["www-web-0", "www-web-1"]);
    let doomed = json!({"metadata": {"name": "www-web-2",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "web-2", "uid": "gone"}]}});
    claims.insert("www-web-2".into(), Arc::new(serde_json::from_value(doomed).expect("claim")));
    let p = round(&set, &[pod(0, "r2", "ready"), pod(1, "r2", "ready")], &claims);
    assert!(p.steps.is_empty(), "{:?}", p.steps.iter().map(describe).collect::<Vec<_>>());
    assert_eq!(p.requeue, Some(STALE_CLAIM_RETRY));
    // With whenScaled Retain the claim is the replica's to keep.
    let keep = web(3, json!({}));
    assert_eq!(round(&keep, &[pod(0, "r2", "ready"), pod(1, "r2", "ready")], &claims).steps.len(), 1);
}

#[test]
fn a_parallel_rolling_update_waits_for_min_ready_seconds() {
    let set = web(2, json!({"podManagementPolicy": "Parallel", "minReadySeconds": 7200}));
    let p = round(&set, &[pod(0, "r1", "ready"), pod(1, "r2", "ready")], &claims(&[]));
    assert!(p.steps.is_empty(), "web-1 is ready but not available yet");
    assert_eq!(p.requeue, Some(Duration::from_secs(3600)));
}
