//! Pod phase and conditions from container statuses, as the kubelet computes them
//! (`getPhase`, `GeneratePodReadyCondition` and friends), and the reasons a container state
//! gives (typed here; strings only in the status written to the API).

use crate::pod_dir::Exited;
use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// `status.phase` for a pod whose init containers are done (or that has none).
pub fn phase(spec: &PodSpec, statuses: &[ContainerStatus], init: InitState) -> &'static str {
    match init {
        InitState::Running => return "Pending",
        InitState::Failed => return if spec.restart_policy.as_deref() == Some("Never") { "Failed" } else { "Pending" },
        InitState::Done => {}
    }
    let (mut running, mut waiting, mut stopped, mut succeeded, mut unknown) = (0, 0, 0, 0, 0);
    for c in &spec.containers {
        let Some(s) = statuses.iter().find(|s| s.name == c.name) else {
            unknown += 1;
            continue;
        };
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if s.last_state.as_ref().and_then(|l| l.terminated.as_ref()).is_some() {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        return match policy {
            "Always" => "Running",
            _ if succeeded == stopped => "Succeeded",
            "OnFailure" => "Running",
            _ => "Failed",
        };
    }
    "Pending"
}

/// Where the init containers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitState {
    Running,
    Failed,
    Done,
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>, now: &Time) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: if ok { None } else { reason.map(String::from) },
        message: if ok { None } else { message },
        last_transition_time: Some(now.clone()),
        ..Default::default()
    }
}

/// The kubelet's pod conditions: PodReadyToStartContainers, Initialized, ContainersReady, Ready
/// (PodScheduled is the scheduler's).
pub fn conditions(
    spec: &PodSpec,
    statuses: &[ContainerStatus],
    sandbox_ready: bool,
    init: InitState,
    now: &Time,
) -> Vec<PodCondition> {
    let not_ready: Vec<&str> = spec
        .containers
        .iter()
        .filter(|c| !statuses.iter().any(|s| s.name == c.name && s.ready))
        .map(|c| c.name.as_str())
        .collect();
    let containers_ready = not_ready.is_empty();
    let msg = (!containers_ready).then(|| format!("containers with unready status: [{}]", not_ready.join(" ")));
    let init_msg = (init != InitState::Done).then(|| {
        let pending: Vec<&str> = spec.init_containers.iter().flatten().map(|c| c.name.as_str()).collect();
        format!("containers with incomplete status: [{}]", pending.join(" "))
    });
    vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None, now),
        condition("Initialized", init == InitState::Done, Some("ContainersNotInitialized"), init_msg, now),
        condition("Ready", containers_ready, Some("ContainersNotReady"), msg.clone(), now),
        condition("ContainersReady", containers_ready, Some("ContainersNotReady"), msg, now),
    ]
}

/// Why a container is not running, while it waits: `state.waiting.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingReason {
    /// Its first attempt is being pulled or prepared.
    ContainerCreating,
    /// An app container, while the init containers run.
    PodInitializing,
    CrashLoopBackOff,
    ErrImagePull,
    ImagePullBackOff,
    ErrImageNeverPull,
    InvalidImageName,
    /// The pod asks for something impossible (a missing Secret, a bad profile).
    CreateContainerConfigError,
    /// The node failed to create it.
    CreateContainerError,
}

impl WaitingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingReason::ContainerCreating => "ContainerCreating",
            WaitingReason::PodInitializing => "PodInitializing",
            WaitingReason::CrashLoopBackOff => "CrashLoopBackOff",
            WaitingReason::ErrImagePull => "ErrImagePull",
            WaitingReason::ImagePullBackOff => "ImagePullBackOff",
            WaitingReason::ErrImageNeverPull => "ErrImageNeverPull",
            WaitingReason::InvalidImageName => "InvalidImageName",
            WaitingReason::CreateContainerConfigError => "CreateContainerConfigError",
            WaitingReason::CreateContainerError => "CreateContainerError",
        }
    }
}

/// A container's waiting reason and the message shown with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: WaitingReason,
    pub message: String,
}

/// Why an attempt ended: `state.terminated.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminatedReason {
    Completed,
    Error,
    OOMKilled,
    /// It never ran: the runtime could not start it.
    StartError,
}

impl TerminatedReason {
    pub fn of(e: &Exited) -> Self {
        if e.start_error.is_some() {
            TerminatedReason::StartError
        } else if e.oom_killed {
            TerminatedReason::OOMKilled
        } else if e.exit_code == 0 {
            TerminatedReason::Completed
        } else {
            TerminatedReason::Error
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TerminatedReason::Completed => "Completed",
            TerminatedReason::Error => "Error",
            TerminatedReason::OOMKilled => "OOMKilled",
            TerminatedReason::StartError => "StartError",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_upstreams_words() {
        let all_waiting = [
            WaitingReason::ContainerCreating,
            WaitingReason::PodInitializing,
            WaitingReason::CrashLoopBackOff,
            WaitingReason::ErrImagePull,
            WaitingReason::ImagePullBackOff,
            WaitingReason::ErrImageNeverPull,
            WaitingReason::InvalidImageName,
            WaitingReason::CreateContainerConfigError,
            WaitingReason::CreateContainerError,
        ];
        for r in all_waiting {
            assert_eq!(r.as_str(), format!("{r:?}"));
        }
        let e = |code, oom, start_error: Option<&str>| Exited {
            oom_killed: oom,
            start_error: start_error.map(String::from),
            exit_code: code,
            signal: None,
            finished_at: String::new(),
        };
        let cases = [
            (e(0, false, None), TerminatedReason::Completed),
            (e(1, false, None), TerminatedReason::Error),
            (e(137, true, None), TerminatedReason::OOMKilled),
            (e(128, false, Some("no such file")), TerminatedReason::StartError),
        ];
        for (exited, want) in cases {
            assert_eq!(TerminatedReason::of(&exited), want, "{exited:?}");
            assert_eq!(want.as_str(), format!("{want:?}"));
        }
    }
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    };

    fn spec(policy: &str, names: &[&str]) -> PodSpec {
        PodSpec {
            restart_policy: Some(policy.into()),
            containers: names.iter().map(|n| Container { name: n.to_string(), ..Default::default() }).collect(),
            ..Default::default()
        }
    }

    fn st(name: &str, state: ContainerState, ready: bool) -> ContainerStatus {
        ContainerStatus { name: name.into(), state: Some(state), ready, ..Default::default() }
    }

    fn running() -> ContainerState {
        ContainerState { running: Some(ContainerStateRunning::default()), ..Default::default() }
    }

    fn exited(code: i32) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated { exit_code: code, ..Default::default() }),
            ..Default::default()
        }
    }

    fn waiting(reason: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn phases_follow_getphase() {
        let s = spec("Always", &["a", "b"]);
        assert_eq!(phase(&s, &[st("a", running(), true), st("b", running(), true)], InitState::Done), "Running");
        assert_eq!(phase(&s, &[st("a", running(), true)], InitState::Done), "Pending");
        assert_eq!(
            phase(&s, &[st("a", running(), true), st("b", waiting("ErrImagePull"), false)], InitState::Done),
            "Pending"
        );
        assert_eq!(phase(&spec("Never", &["a"]), &[st("a", exited(0), false)], InitState::Done), "Succeeded");
        assert_eq!(phase(&spec("Never", &["a"]), &[st("a", exited(1), false)], InitState::Done), "Failed");
        assert_eq!(phase(&spec("OnFailure", &["a"]), &[st("a", exited(1), false)], InitState::Done), "Running");
        assert_eq!(phase(&spec("Always", &["a"]), &[st("a", exited(0), false)], InitState::Done), "Running");
        let mut crashed = st("a", waiting("CrashLoopBackOff"), false);
        crashed.last_state = Some(exited(1));
        assert_eq!(phase(&spec("Always", &["a"]), &[crashed], InitState::Done), "Running");
        assert_eq!(phase(&s, &[], InitState::Running), "Pending");
        assert_eq!(phase(&spec("Never", &["a"]), &[], InitState::Failed), "Failed");
    }

    #[test]
    fn conditions_name_the_unready_containers() {
        let s = spec("Always", &["a", "b"]);
        let now = Time("2026-01-01T00:00:00Z".parse().expect("ts"));
        let c = conditions(
            &s,
            &[st("a", running(), true), st("b", waiting("ContainerCreating"), false)],
            true,
            InitState::Done,
            &now,
        );
        let ready = c.iter().find(|c| c.type_ == "Ready").expect("Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(ready.message.as_deref(), Some("containers with unready status: [b]"));
        assert_eq!(c.iter().find(|c| c.type_ == "Initialized").map(|c| c.status.as_str()), Some("True"));
        let all = conditions(&s, &[st("a", running(), true), st("b", running(), true)], true, InitState::Done, &now);
        assert!(all.iter().all(|c| c.status == "True"));
    }
}
