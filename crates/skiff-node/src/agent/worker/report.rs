//! A container's status as the kubelet reports it, from its attempt records: pure, so every
//! waiting and terminated reason is a table test.

use crate::pod_dir::AttemptRecord;
use crate::status::{TerminatedReason, Waiting, WaitingReason};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The container ID the API shows for an attempt.
pub fn container_id(pod_uid: &str, container: &str, attempt: u32) -> String {
    format!("skiff://{pod_uid}-{}", crate::shim::container_id(container, attempt))
}

/// An RFC 3339 record time as the API's (whole seconds).
fn time(s: &str) -> Option<Time> {
    s.parse::<jiff::Timestamp>().ok().map(|t| Time(t.round(jiff::Unit::Second).unwrap_or(t)))
}

/// The status of container `c` of pod `pod_uid` from its attempts (oldest first) and why it
/// waits, if it does; `init`: an init container; `init_done`: the init containers have finished.
pub fn container_status(
    c: &Container,
    pod_uid: &str,
    attempts: &[AttemptRecord],
    waiting: Option<&Waiting>,
    init: bool,
    init_done: bool,
) -> ContainerStatus {
    let terminated = |a: &AttemptRecord| -> Option<ContainerState> {
        let e = a.exited.as_ref()?;
        Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: e.exit_code,
                signal: e.signal,
                reason: Some(TerminatedReason::of(e).as_str().into()),
                message: e.start_error.clone().or_else(|| a.termination_message.clone()),
                started_at: a.started.as_ref().and_then(|s| time(&s.started_at)),
                finished_at: time(&e.finished_at),
                container_id: Some(container_id(pod_uid, &c.name, a.number)),
            }),
            ..Default::default()
        })
    };
    let latest = attempts.last();
    let previous = attempts.len().checked_sub(2).and_then(|i| attempts.get(i)).and_then(terminated);
    let running = latest.and_then(|a| {
        let s = a.started.as_ref()?;
        a.exited.is_none().then(|| ContainerState {
            running: Some(ContainerStateRunning { started_at: time(&s.started_at) }),
            ..Default::default()
        })
    });
    let waiting_state = |reason: WaitingReason, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.as_str().into()), message }),
        ..Default::default()
    };
    let number = latest.map_or(0, |a| a.number);
    let latest_terminated = latest.and_then(terminated);
    let (state, last_state, restarts) = if let Some(r) = running {
        (r, previous, number)
    } else if let Some(w) = waiting {
        let n = latest.map_or(0, |a| a.number + u32::from(latest_terminated.is_some()));
        (waiting_state(w.reason, Some(w.message.clone())), latest_terminated.clone(), n)
    } else if let Some(t) = &latest_terminated {
        // Ended for good, or about to restart: the exit is reported until the next attempt starts,
        // as the kubelet does.
        (t.clone(), previous, number)
    } else {
        let reason =
            if !init && !init_done { WaitingReason::PodInitializing } else { WaitingReason::ContainerCreating };
        (waiting_state(reason, None), None, 0)
    };
    let is_running = state.running.is_some();
    ContainerStatus {
        name: c.name.clone(),
        // The runtime's (normalized) reference once a container exists; before, the spec's.
        image: latest
            .and_then(|_| skiff_image::Reference::parse(c.image.as_deref()?).ok())
            .map(|r| r.to_string())
            .or_else(|| c.image.clone())
            .unwrap_or_default(),
        image_id: latest.and_then(|a| a.image_id.clone()).unwrap_or_default(),
        container_id: latest
            .filter(|a| a.started.is_some() || a.exited.is_some())
            .map(|a| container_id(pod_uid, &c.name, a.number)),
        ready: is_running || (init && state.terminated.as_ref().is_some_and(|t| t.exit_code == 0)),
        started: Some(is_running),
        restart_count: restarts as i32,
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
