use super::*;
use crate::pod_dir::{Exited, Started};

fn container() -> Container {
    Container { name: "web".into(), image: Some("busybox".into()), ..Default::default() }
}

fn ran(n: u32, exit: Option<(i32, bool, Option<&str>)>) -> AttemptRecord {
    AttemptRecord {
        number: n,
        started: Some(Started { pid: 7, started_at: "2026-01-01T00:00:00.4Z".into() }),
        exited: exit.map(|(code, oom, start_error)| Exited {
            exit_code: code,
            signal: None,
            finished_at: "2026-01-01T00:01:00Z".into(),
            oom_killed: oom,
            start_error: start_error.map(String::from),
        }),
        handled: exit.is_some(),
        image_id: Some("docker.io/library/busybox@sha256:abc".into()),
        termination_message: None,
    }
}

fn waiting(reason: WaitingReason, message: &str) -> Waiting {
    Waiting { reason, message: message.into() }
}

/// (state reason or "running", restart count, last state's terminated reason)
fn summary(s: &ContainerStatus) -> (String, i32, Option<String>) {
    let state = s.state.clone().unwrap_or_default();
    let reason = match (&state.running, &state.waiting, &state.terminated) {
        (Some(_), _, _) => "running".to_string(),
        (_, Some(w), _) => w.reason.clone().unwrap_or_default(),
        (_, _, Some(t)) => t.reason.clone().unwrap_or_default(),
        _ => "none".into(),
    };
    let last = s.last_state.clone().unwrap_or_default().terminated.and_then(|t| t.reason);
    (reason, s.restart_count, last)
}

#[test]
fn every_waiting_and_terminated_reason() {
    let c = container();
    let uid = "u1";
    let err = waiting(WaitingReason::ErrImagePull, "failed to pull");
    let backoff = waiting(WaitingReason::CrashLoopBackOff, "back-off 10s restarting failed container=web");
    let config = waiting(WaitingReason::CreateContainerConfigError, "secret \"db\" not found");
    // what, attempts, waiting, init, init done, (reason, restarts, last state's reason)
    type Case<'a> = (&'a str, Vec<AttemptRecord>, Option<&'a Waiting>, bool, bool, (&'a str, i32, Option<&'a str>));
    let cases: Vec<Case> = vec![
        ("not started, pod initializing", vec![], None, false, false, ("PodInitializing", 0, None)),
        ("not started, being created", vec![], None, false, true, ("ContainerCreating", 0, None)),
        ("a pull failed", vec![], Some(&err), false, true, ("ErrImagePull", 0, None)),
        ("a Secret is missing", vec![], Some(&config), false, true, ("CreateContainerConfigError", 0, None)),
        ("running", vec![ran(0, None)], None, false, true, ("running", 0, None)),
        (
            "running again after a crash",
            vec![ran(0, Some((1, false, None))), ran(1, None)],
            None,
            false,
            true,
            ("running", 1, Some("Error")),
        ),
        ("completed, not restarting", vec![ran(0, Some((0, false, None)))], None, false, true, ("Completed", 0, None)),
        ("failed", vec![ran(0, Some((2, false, None)))], None, false, true, ("Error", 0, None)),
        ("killed for memory", vec![ran(0, Some((137, true, None)))], None, false, true, ("OOMKilled", 0, None)),
        (
            "never started",
            vec![ran(0, Some((128, false, Some("exec: not found"))))],
            None,
            false,
            true,
            ("StartError", 0, None),
        ),
        (
            "in back-off after two crashes",
            vec![ran(0, Some((1, false, None))), ran(1, Some((1, false, None)))],
            Some(&backoff),
            false,
            true,
            ("CrashLoopBackOff", 2, Some("Error")),
        ),
    ];
    for (what, attempts, waiting, init, init_done, (reason, restarts, last)) in cases {
        let s = container_status(&c, uid, &attempts, waiting, init, init_done);
        assert_eq!(summary(&s), (reason.to_string(), restarts, last.map(String::from)), "{what}");
    }
}

#[test]
fn the_status_fields_the_kubelet_fills() {
    let c = container();
    // Before any attempt: the spec's image, no IDs.
    let s = container_status(&c, "u1", &[], None, false, true);
    assert_eq!((s.image.as_str(), s.image_id.as_str(), s.container_id.as_deref()), ("busybox", "", None));
    assert_eq!((s.ready, s.started), (false, Some(false)));
    // Running: the normalized image, its ID, the attempt's container ID, started time in seconds.
    let s = container_status(&c, "u1", &[ran(0, None)], None, false, true);
    assert_eq!(s.image, "docker.io/library/busybox:latest");
    assert_eq!(s.image_id, "docker.io/library/busybox@sha256:abc");
    assert_eq!(s.container_id.as_deref(), Some("skiff://u1-web-0"));
    assert_eq!((s.ready, s.started), (true, Some(true)));
    let running = s.state.and_then(|s| s.running).and_then(|r| r.started_at).expect("started_at");
    assert_eq!(running.0.to_string(), "2026-01-01T00:00:00Z");
    // An exit carries the termination log's message (or the start error), and the IDs.
    let mut done = ran(3, Some((1, false, None)));
    done.termination_message = Some("disk full".into());
    let s = container_status(&c, "u1", &[done], None, false, true);
    let t = s.state.and_then(|s| s.terminated).expect("terminated");
    assert_eq!((t.exit_code, t.message.as_deref()), (1, Some("disk full")));
    assert_eq!(t.container_id.as_deref(), Some("skiff://u1-web-3"));
    // An init container that succeeded is ready; an app container that completed is not.
    let ok = ran(0, Some((0, false, None)));
    assert!(container_status(&c, "u1", std::slice::from_ref(&ok), None, true, false).ready);
    assert!(!container_status(&c, "u1", &[ok], None, false, true).ready);
}
