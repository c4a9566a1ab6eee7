use super::*;
use crate::pod_dir::{Exited, Started};
use ContainerStep::*;
use RestartPolicy::*;

fn exited(code: i32) -> Exited {
    Exited {
        exit_code: code,
        signal: None,
        finished_at: "2026-01-01T00:00:01Z".into(),
        oom_killed: false,
        start_error: None,
    }
}

fn started() -> Started {
    Started { pid: 42, started_at: "2026-01-01T00:00:00Z".into() }
}

/// Attempt `n` in one of the states the pod directory can hold.
fn attempt(n: u32, state: &str) -> AttemptRecord {
    let mut a = AttemptRecord { number: n, ..Default::default() };
    match state {
        "prepared" => {}
        "running" => a.started = Some(started()),
        s => {
            // "exit:<code>" or "handled:<code>"
            let (kind, code) = s.split_once(':').expect("state");
            a.started = Some(started());
            a.exited = Some(exited(code.parse().expect("code")));
            a.handled = kind == "handled";
        }
    }
    a
}

const WAIT: RestartBackOff = RestartBackOff { remaining: Duration::from_secs(7), delay: Duration::from_secs(20) };
const PASSED: RestartBackOff = RestartBackOff { remaining: Duration::ZERO, delay: Duration::from_secs(20) };

#[test]
fn restart_policy_table() {
    use Role::*;
    let cases = [
        // policy, role, exit code, restarts
        (Always, App, 0, true),
        (Always, App, 1, true),
        (Always, Init, 0, false),
        (Always, Init, 1, true),
        (Always, Ephemeral, 1, false),
        (OnFailure, App, 0, false),
        (OnFailure, App, 2, true),
        (OnFailure, Init, 0, false),
        (OnFailure, Init, 2, true),
        (OnFailure, Ephemeral, 2, false),
        (Never, App, 1, false),
        (Never, App, 0, false),
        (Never, Init, 1, false),
        (Never, Ephemeral, 0, false),
    ];
    for (policy, role, code, restarts) in cases {
        assert_eq!(policy.restarts(role, code), restarts, "{policy:?} {role:?} exit {code}");
    }
    let spec = |p: Option<&str>| PodSpec { restart_policy: p.map(String::from), ..Default::default() };
    assert_eq!(RestartPolicy::of(Some(&spec(None))), Always);
    assert_eq!(RestartPolicy::of(Some(&spec(Some("OnFailure")))), OnFailure);
    assert_eq!(RestartPolicy::of(Some(&spec(Some("Never")))), Never);
    assert_eq!(RestartPolicy::of(None), Always);
}

#[test]
fn container_step_table() {
    use Role::*;
    // what, attempts, role, policy, back-off, step
    type Case = (&'static str, Vec<AttemptRecord>, Role, RestartPolicy, Option<RestartBackOff>, ContainerStep);
    let cases: Vec<Case> = vec![
        ("first start", vec![], App, Always, None, Start { attempt: 0, unmount: None }),
        ("running", vec![attempt(0, "running")], App, Always, None, Running),
        (
            "half-made attempt is made again",
            vec![attempt(3, "prepared")],
            App,
            Always,
            None,
            Start { attempt: 3, unmount: Some(3) },
        ),
        (
            "an exit is recorded first",
            vec![attempt(0, "exit:1")],
            App,
            Always,
            None,
            RecordExit { attempt: 0, restart: true },
        ),
        (
            "... also when it will not restart",
            vec![attempt(0, "exit:1")],
            App,
            Never,
            None,
            RecordExit { attempt: 0, restart: false },
        ),
        ("Never, succeeded", vec![attempt(0, "handled:0")], App, Never, None, Finished { succeeded: true }),
        ("Never, failed", vec![attempt(0, "handled:1")], App, Never, None, Finished { succeeded: false }),
        ("OnFailure, succeeded", vec![attempt(1, "handled:0")], App, OnFailure, None, Finished { succeeded: true }),
        ("OnFailure, failed, in back-off", vec![attempt(1, "handled:2")], App, OnFailure, Some(WAIT), BackOff(WAIT)),
        (
            "OnFailure, failed, back-off passed",
            vec![attempt(1, "handled:2")],
            App,
            OnFailure,
            Some(PASSED),
            Start { attempt: 2, unmount: Some(1) },
        ),
        ("Always, exit 0 restarts too", vec![attempt(0, "handled:0")], App, Always, Some(WAIT), BackOff(WAIT)),
        (
            "Always, no back-off recorded",
            vec![attempt(0, "handled:0")],
            App,
            Always,
            None,
            Start { attempt: 1, unmount: Some(0) },
        ),
        (
            "init succeeded is done",
            vec![attempt(0, "handled:0")],
            Init,
            Always,
            Some(WAIT),
            Finished { succeeded: true },
        ),
        ("init failed restarts", vec![attempt(0, "handled:1")], Init, Always, Some(WAIT), BackOff(WAIT)),
        ("init failed, Never", vec![attempt(0, "handled:1")], Init, Never, None, Finished { succeeded: false }),
        ("ephemeral runs once", vec![attempt(0, "handled:1")], Ephemeral, Always, None, Finished { succeeded: false }),
        (
            "only the latest attempt counts",
            vec![attempt(0, "handled:1"), attempt(1, "running")],
            App,
            Always,
            None,
            Running,
        ),
    ];
    for (what, attempts, role, policy, backoff, want) in cases {
        assert_eq!(container_step(&attempts, role, policy, backoff), want, "{what}");
    }
    // A start error is an exit like any other (StartError, exit code 128).
    let mut failed = attempt(0, "handled:128");
    failed.exited.as_mut().expect("exited").start_error = Some("exec: \"nope\": not found".into());
    assert_eq!(container_step(&[failed], App, Always, Some(WAIT)), BackOff(WAIT));
}

fn snapshot(sandbox: SandboxState, attempts: &[(&str, Vec<AttemptRecord>)]) -> PodSnapshot {
    PodSnapshot {
        sandbox,
        attempts: attempts.iter().map(|(n, a)| (n.to_string(), a.clone())).collect(),
        unhealthy: Default::default(),
    }
}

/// The plan as (container, step) pairs.
fn steps(actions: &[Action]) -> Vec<(&str, &ContainerStep)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Container { name, step, .. } => Some((name.as_str(), step)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_sandbox_comes_first() {
    let containers = Containers { init: vec![], app: vec!["web"], ephemeral: vec![] };
    let none = |_: &str| None;
    assert_eq!(plan(&snapshot(SandboxState::Missing, &[]), &containers, Always, false, none), [Action::CreateSandbox]);
    let lost = snapshot(SandboxState::Lost, &[("web", vec![attempt(0, "running")])]);
    assert_eq!(plan(&lost, &containers, Always, false, none), [Action::RecoverLostSandbox]);
}

#[test]
fn init_containers_run_one_at_a_time_before_the_app_containers() {
    let containers =
        Containers { init: vec!["migrate", "seed"], app: vec!["web", "sidecar"], ephemeral: vec!["debug"] };
    let none = |_: &str| None;
    let alive = |a: &[(&str, Vec<AttemptRecord>)]| snapshot(SandboxState::Alive, a);

    // Nothing ran yet: only the first init container starts.
    let p = plan(&alive(&[]), &containers, Always, false, none);
    assert_eq!(steps(&p), [("migrate", &Start { attempt: 0, unmount: None })]);
    // The first succeeded: the second starts, the apps still wait.
    let s = alive(&[("migrate", vec![attempt(0, "handled:0")])]);
    assert_eq!(
        steps(&plan(&s, &containers, Always, false, none)),
        [("migrate", &Finished { succeeded: true }), ("seed", &Start { attempt: 0, unmount: None })]
    );
    // The second fails under Never: the pod goes no further.
    let s = alive(&[("migrate", vec![attempt(0, "handled:0")]), ("seed", vec![attempt(0, "handled:3")])]);
    assert_eq!(
        steps(&plan(&s, &containers, Never, false, none)),
        [("migrate", &Finished { succeeded: true }), ("seed", &Finished { succeeded: false })]
    );
    // ... and waits out its back-off under Always.
    let s = alive(&[("migrate", vec![attempt(0, "handled:0")]), ("seed", vec![attempt(0, "handled:3")])]);
    let backoff = |name: &str| (name == "seed").then_some(WAIT);
    assert_eq!(steps(&plan(&s, &containers, Always, false, backoff))[1], ("seed", &BackOff(WAIT)));
    // Both succeeded: every app container and the ephemeral one, each by its own state.
    let s = alive(&[
        ("migrate", vec![attempt(0, "handled:0")]),
        ("seed", vec![attempt(0, "handled:0")]),
        ("web", vec![attempt(0, "running")]),
    ]);
    assert_eq!(
        steps(&plan(&s, &containers, Always, false, none)),
        [
            ("migrate", &Finished { succeeded: true }),
            ("seed", &Finished { succeeded: true }),
            ("web", &Running),
            ("sidecar", &Start { attempt: 0, unmount: None }),
            ("debug", &Start { attempt: 0, unmount: None }),
        ]
    );
    // Nothing new starts in a pod that has finished: no ephemeral container.
    let p = plan(&s, &containers, Always, true, none);
    assert!(!steps(&p).iter().any(|(n, _)| *n == "debug"));
}

#[test]
fn a_running_container_that_failed_its_liveness_or_startup_probe_is_stopped() {
    let containers = Containers { init: vec![], app: vec!["web", "side"], ephemeral: vec![] };
    let mut s =
        snapshot(SandboxState::Alive, &[("web", vec![attempt(0, "running")]), ("side", vec![attempt(0, "running")])]);
    s.unhealthy.insert("web".into(), crate::agent::probe::Kind::Liveness);
    // An exited container is recorded, not stopped, whatever its probes said.
    s.unhealthy.insert("gone".into(), crate::agent::probe::Kind::Startup);
    let p = plan(&s, &containers, Always, false, |_: &str| None);
    assert_eq!(steps(&p), [("web", &Unhealthy(crate::agent::probe::Kind::Liveness)), ("side", &Running)]);
}
