//! The Job controller's decisions.

use super::*;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("time")
}

const NOW: &str = "2026-01-01T00:10:00Z";

fn job(spec: serde_json::Value, status: serde_json::Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
    serde_json::from_value(
        json!({"metadata": {"name": "pi", "namespace": "default", "uid": "j-1"}, "spec": spec, "status": status}),
    )
    .expect("job")
}

fn pod(name: &str, phase: &str, index: Option<i32>, finished: Option<&str>) -> Arc<Pod> {
    let terminated = finished.map(|t| ContainerState {
        terminated: Some(ContainerStateTerminated {
            finished_at: Some(Time(ts(t))),
            exit_code: 1,
            ..Default::default()
        }),
        ..Default::default()
    });
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: index.map(|i| [(COMPLETION_INDEX.to_string(), i.to_string())].into()),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            container_statuses: terminated
                .map(|state| vec![ContainerStatus { state: Some(state), ..Default::default() }]),
            ..Default::default()
        }),
    })
}

fn conditions(p: &Plan) -> Vec<(String, Option<String>)> {
    p.status.conditions.iter().flatten().map(|c| (c.type_.clone(), c.reason.clone())).collect()
}

#[test]
fn runs_parallelism_pods_until_completions_succeed() {
    let j = job(json!({"completions": 5, "parallelism": 2, "backoffLimit": 6}), json!({}));
    let p = plan(&j, &[], ts(NOW));
    assert_eq!(p.create, [None, None]);
    assert!(p.status.start_time.is_some());
    // 4 done, 1 running: nothing more to start.
    let pods: Vec<_> = (0..4)
        .map(|i| pod(&format!("s{i}"), "Succeeded", None, None))
        .chain([pod("r", "Running", None, None)])
        .collect();
    let p = plan(&j, &pods, ts(NOW));
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!((p.status.succeeded, p.status.active), (Some(4), Some(1)));
    let pods: Vec<_> = (0..5).map(|i| pod(&format!("s{i}"), "Succeeded", None, None)).collect();
    let p = plan(&j, &pods, ts(NOW));
    assert_eq!(conditions(&p).last().map(|c| c.0.as_str()), Some("Complete"));
    assert!(p.status.completion_time.is_some());
    assert!(p.events.iter().any(|(_, reason, _)| *reason == "Completed"));
}

#[test]
fn failures_back_off_then_exceed_the_limit() {
    let j = job(json!({"completions": 1, "parallelism": 1, "backoffLimit": 2}), json!({}));
    // One failure 5 s ago: the next pod waits until 10 s after it.
    let p = plan(&j, &[pod("f1", "Failed", None, Some("2026-01-01T00:09:55Z"))], ts(NOW));
    assert!(p.create.is_empty());
    assert_eq!(p.requeue, Some(Duration::from_secs(5)));
    let p = plan(&j, &[pod("f1", "Failed", None, Some("2026-01-01T00:09:40Z"))], ts(NOW));
    assert_eq!(p.create, [None]);
    let failed: Vec<_> = (0..3).map(|i| pod(&format!("f{i}"), "Failed", None, Some("2026-01-01T00:00:00Z"))).collect();
    let p = plan(&j, &failed, ts(NOW));
    assert_eq!(conditions(&p).last(), Some(&("Failed".to_string(), Some("BackoffLimitExceeded".to_string()))));
    assert_eq!(p.status.failed, Some(3));
}

#[test]
fn a_deadline_fails_the_job_and_stops_its_pods() {
    let j = job(
        json!({"completions": 1, "parallelism": 1, "activeDeadlineSeconds": 60}),
        json!({"startTime": "2026-01-01T00:00:00Z"}),
    );
    let p = plan(&j, &[pod("r", "Running", None, None)], ts(NOW));
    assert_eq!(conditions(&p).last(), Some(&("Failed".to_string(), Some("DeadlineExceeded".to_string()))));
    assert_eq!(p.delete, ["r"]);
}

#[test]
fn indexed_jobs_run_each_missing_index_once() {
    let j = job(json!({"completions": 4, "parallelism": 2, "completionMode": "Indexed"}), json!({}));
    let pods = vec![pod("a", "Succeeded", Some(0), None), pod("b", "Running", Some(2), None)];
    let p = plan(&j, &pods, ts(NOW));
    assert_eq!(p.create, [Some(1)]);
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0"));
    assert_eq!(compress(&[0, 1, 2, 4, 6, 7].into_iter().collect()), "0-2,4,6-7");
    assert_eq!(parse_indexes(Some("0-2,4")), [0, 1, 2, 4].into_iter().collect());
}

#[test]
fn suspended_jobs_stop_and_finished_jobs_expire() {
    let j = job(json!({"completions": 1, "parallelism": 1, "suspend": true}), json!({}));
    let p = plan(&j, &[pod("r", "Running", None, None)], ts(NOW));
    assert_eq!(p.delete, ["r"]);
    assert_eq!(conditions(&p), [("Suspended".to_string(), Some("JobSuspended".to_string()))]);
    let done =
        json!({"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:09:00Z"}]});
    let j = job(json!({"completions": 1, "ttlSecondsAfterFinished": 30}), done.clone());
    assert_eq!(plan(&j, &[], ts(NOW)).requeue, None, "30 s after 00:09:00 has passed");
    assert!(plan(&j, &[], ts(NOW)).expire);
    let j = job(json!({"completions": 1, "ttlSecondsAfterFinished": 120}), done);
    let p = plan(&j, &[], ts(NOW));
    assert_eq!((p.expire, p.requeue), (false, Some(Duration::from_secs(60))));
}
