//! Restricted checks on the user a pod's processes run as: non-root required, and never UID 0.

use super::{PodView, Violation, containers, containers_named, setters};

/// The pod, or else every container, sets runAsNonRoot=true, and none sets it false.
pub(super) fn run_as_non_root(pod: &PodView<'_>) -> Option<Violation> {
    let pod_setting = pod.spec.security_context.as_ref().and_then(|s| s.run_as_non_root);
    let pod_non_root = pod_setting == Some(true);
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(pod.spec) {
        match c.security_context.and_then(|sc| sc.run_as_non_root) {
            Some(false) => explicitly_bad.push(c.name),
            Some(true) => {}
            None if !pod_non_root => implicitly_bad.push(c.name),
            None => {}
        }
    }
    let who = setters(pod_setting == Some(false), &explicitly_bad);
    if !who.is_empty() {
        return Some(Violation {
            reason: "runAsNonRoot != true",
            detail: format!("{} must not set securityContext.runAsNonRoot=false", who.join(" and ")),
        });
    }
    (!implicitly_bad.is_empty()).then(|| Violation {
        reason: "runAsNonRoot != true",
        detail: format!("pod or {} must set securityContext.runAsNonRoot=true", containers_named(&implicitly_bad)),
    })
}

/// Neither the pod nor a container sets runAsUser=0.
pub(super) fn run_as_user(pod: &PodView<'_>) -> Option<Violation> {
    let pod_root = pod.spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0);
    let bad: Vec<&str> = (containers(pod.spec))
        .filter(|c| c.security_context.and_then(|sc| sc.run_as_user) == Some(0))
        .map(|c| c.name)
        .collect();
    let who = setters(pod_root, &bad);
    (!who.is_empty())
        .then(|| Violation { reason: "runAsUser=0", detail: format!("{} must not set runAsUser=0", who.join(" and ")) })
}
