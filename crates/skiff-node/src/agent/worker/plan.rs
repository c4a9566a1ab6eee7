//! The pod worker's decisions, as pure functions of what one round observed: the pod directory's
//! attempt records ([`PodSnapshot`]), the pod's spec and the back-off clock. The worker's loop
//! only carries out the [`Action`]s; every restart-policy, init-container and back-off rule is
//! here, where a table test reaches it without root, a shim or an API server.
//!
//! New behaviour (probes, lifecycle hooks) belongs here as new steps, not in the loop.

use crate::agent::probe;
use crate::pod_dir::AttemptRecord;
use k8s_openapi::api::core::v1::PodSpec;
use std::collections::BTreeMap;
use std::time::Duration;

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The pod's policy; unset (or unknown, which validation refuses) is `Always`.
    pub fn of(spec: Option<&PodSpec>) -> Self {
        match spec.and_then(|s| s.restart_policy.as_deref()) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a container of `role` that exited with `exit_code` runs again.
    pub fn restarts(self, role: Role, exit_code: i32) -> bool {
        match (role, self) {
            // An ephemeral container (`kubectl debug`) runs once.
            (Role::Ephemeral, _) | (_, RestartPolicy::Never) => false,
            (_, RestartPolicy::OnFailure) => exit_code != 0,
            // An init container that succeeded is done, whatever the policy.
            (Role::Init, RestartPolicy::Always) => exit_code != 0,
            (Role::App, RestartPolicy::Always) => true,
        }
    }
}

/// Which list of the pod a container comes from: it decides how the container restarts and
/// when it may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Init,
    App,
    Ephemeral,
}

/// The pod's sandbox (the shim holding its namespaces), as this round found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    /// None yet: create it (or re-adopt the one a previous agent left).
    Missing,
    Alive,
    /// It was there and is gone (killed, or the machine rebooted): what ran is lost.
    Lost,
}

/// What one round observed of a pod on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSnapshot {
    pub sandbox: SandboxState,
    /// Each container's latest two attempts, oldest first.
    pub attempts: BTreeMap<String, Vec<AttemptRecord>>,
    /// Running containers whose startup or liveness probe failed, with that probe.
    pub unhealthy: BTreeMap<String, probe::Kind>,
}

impl PodSnapshot {
    pub fn attempts(&self, container: &str) -> &[AttemptRecord] {
        self.attempts.get(container).map_or(&[], Vec::as_slice)
    }
}

/// The restart back-off of one container, from the worker's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBackOff {
    /// Time left before it may start again.
    pub remaining: Duration,
    /// The whole current delay (what the message quotes).
    pub delay: Duration,
}

/// What to do about one container this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStep {
    /// Its latest attempt runs: probe it, and look again soon.
    Running,
    /// Its latest attempt runs but failed this probe (startup or liveness): stop it, so that it
    /// restarts as its restart policy says.
    Unhealthy(probe::Kind),
    /// Its latest attempt exited and was not accounted for yet: count it for the back-off if it
    /// restarts, tell the user, mark it handled; then decide again.
    RecordExit { attempt: u32, restart: bool },
    /// It ended for good.
    Finished { succeeded: bool },
    /// It restarts once the back-off has passed (`CrashLoopBackOff`).
    BackOff(RestartBackOff),
    /// Start `attempt`, first unmounting what `unmount` (an earlier or half-made attempt) left.
    Start { attempt: u32, unmount: Option<u32> },
}

/// The step for a container whose attempts are `attempts` (oldest first).
pub fn container_step(
    attempts: &[AttemptRecord],
    role: Role,
    policy: RestartPolicy,
    backoff: Option<RestartBackOff>,
) -> ContainerStep {
    let Some(latest) = attempts.last() else {
        return ContainerStep::Start { attempt: 0, unmount: None };
    };
    let a = latest.number;
    match (&latest.started, &latest.exited) {
        (Some(_), None) => ContainerStep::Running,
        // Prepared but never started (the agent stopped mid-start): that attempt again.
        (None, None) => ContainerStep::Start { attempt: a, unmount: Some(a) },
        (_, Some(exited)) => {
            let restart = policy.restarts(role, exited.exit_code);
            if !latest.handled {
                ContainerStep::RecordExit { attempt: a, restart }
            } else if !restart {
                ContainerStep::Finished { succeeded: exited.exit_code == 0 }
            } else if let Some(b) = backoff.filter(|b| !b.remaining.is_zero()) {
                ContainerStep::BackOff(b)
            } else {
                ContainerStep::Start { attempt: a + 1, unmount: Some(a) }
            }
        }
    }
}

/// What the worker does this round, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start (or re-adopt) the sandbox, its address and network; then plan again.
    CreateSandbox,
    /// Give the attempts that were running when the sandbox was lost an exit record, forget
    /// the sandbox, and plan again.
    RecoverLostSandbox,
    /// Act on one container.
    Container { name: String, role: Role, step: ContainerStep },
}

/// The containers of a pod, by role, in the order they are synced.
pub struct Containers<'a> {
    pub init: Vec<&'a str>,
    pub app: Vec<&'a str>,
    pub ephemeral: Vec<&'a str>,
}

impl<'a> Containers<'a> {
    pub fn of(spec: Option<&'a PodSpec>) -> Self {
        let names = |list: Option<&'a Vec<k8s_openapi::api::core::v1::Container>>| {
            list.into_iter().flatten().map(|c| c.name.as_str()).collect::<Vec<_>>()
        };
        Containers {
            init: names(spec.and_then(|s| s.init_containers.as_ref())),
            app: names(spec.map(|s| &s.containers)),
            ephemeral: spec
                .and_then(|s| s.ephemeral_containers.as_ref())
                .into_iter()
                .flatten()
                .map(|c| c.name.as_str())
                .collect(),
        }
    }
}

/// The round's actions: the sandbox first; then init containers one at a time, each only once
/// the one before has succeeded; then every app container; then ephemeral containers, unless
/// the pod has finished (`finished`: its phase is Succeeded or Failed).
pub fn plan(
    snapshot: &PodSnapshot,
    containers: &Containers<'_>,
    policy: RestartPolicy,
    finished: bool,
    backoff: impl Fn(&str) -> Option<RestartBackOff>,
) -> Vec<Action> {
    match snapshot.sandbox {
        SandboxState::Missing => return vec![Action::CreateSandbox],
        SandboxState::Lost => return vec![Action::RecoverLostSandbox],
        SandboxState::Alive => {}
    }
    let mut actions = Vec::new();
    let mut step = |name: &str, role: Role| {
        let step = match container_step(snapshot.attempts(name), role, policy, backoff(name)) {
            ContainerStep::Running if snapshot.unhealthy.contains_key(name) => {
                ContainerStep::Unhealthy(snapshot.unhealthy[name])
            }
            step => step,
        };
        let succeeded = step == ContainerStep::Finished { succeeded: true };
        actions.push(Action::Container { name: name.to_string(), role, step });
        succeeded
    };
    for name in &containers.init {
        if !step(name, Role::Init) {
            return actions;
        }
    }
    for name in &containers.app {
        step(name, Role::App);
    }
    if !finished {
        for name in &containers.ephemeral {
            step(name, Role::Ephemeral);
        }
    }
    actions
}

#[cfg(test)]
mod tests;
