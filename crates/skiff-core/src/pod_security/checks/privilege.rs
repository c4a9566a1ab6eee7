//! Checks on what a container may do beyond an ordinary process: privileged mode, Linux
//! capabilities (baseline: only the container runtime's defaults added; restricted: drop ALL, add
//! only NET_BIND_SERVICE), privilege escalation, and an unmasked /proc.

use super::{PodView, Violation, containers_named, is_windows, join_quote, security_contexts};
use std::collections::BTreeSet;

/// No container may be privileged.
pub(super) fn privileged(pod: &PodView<'_>) -> Option<Violation> {
    let bad: Vec<&str> =
        security_contexts(pod.spec).filter(|(_, sc)| sc.privileged == Some(true)).map(|(name, _)| name).collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "privileged",
        detail: format!("{} must not set securityContext.privileged=true", containers_named(&bad)),
    })
}

/// The capabilities container runtimes grant by default: the only ones baseline lets a
/// container add.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Containers add no capability beyond the defaults.
pub(super) fn capabilities_baseline(pod: &PodView<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut extra = BTreeSet::new();
    for (name, sc) in security_contexts(pod.spec) {
        let added = sc.capabilities.as_ref().and_then(|c| c.add.as_ref());
        let beyond: Vec<&str> =
            added.into_iter().flatten().map(String::as_str).filter(|c| !DEFAULT_CAPABILITIES.contains(c)).collect();
        if !beyond.is_empty() {
            bad.push(name);
            extra.extend(beyond);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let extra: Vec<&str> = extra.into_iter().collect();
    Some(Violation {
        reason: "non-default capabilities",
        detail: format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&bad),
            join_quote(&extra)
        ),
    })
}

/// Containers drop ALL capabilities and add none but NET_BIND_SERVICE.
pub(super) fn capabilities_restricted(pod: &PodView<'_>) -> Option<Violation> {
    let mut missing_drop_all = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in super::containers(pod.spec) {
        let Some(caps) = c.security_context.and_then(|sc| sc.capabilities.as_ref()) else {
            missing_drop_all.push(c.name);
            continue;
        };
        if !caps.drop.iter().flatten().any(|d| d == "ALL") {
            missing_drop_all.push(c.name);
        }
        let added: Vec<&str> =
            caps.add.iter().flatten().map(String::as_str).filter(|a| *a != "NET_BIND_SERVICE").collect();
        if !added.is_empty() {
            adding.push(c.name);
            forbidden.extend(added);
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            r#"{} must set securityContext.capabilities.drop=["ALL"]"#,
            containers_named(&missing_drop_all)
        ));
    }
    if !adding.is_empty() {
        let forbidden: Vec<&str> = forbidden.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&adding),
            join_quote(&forbidden)
        ));
    }
    (!details.is_empty()).then(|| Violation { reason: "unrestricted capabilities", detail: details.join("; ") })
}

/// From 1.25, Windows pods (which cannot set capabilities) pass.
pub(super) fn capabilities_restricted_1_25(pod: &PodView<'_>) -> Option<Violation> {
    if is_windows(pod.spec) { None } else { capabilities_restricted(pod) }
}

/// Every container sets allowPrivilegeEscalation=false.
pub(super) fn allow_privilege_escalation(pod: &PodView<'_>) -> Option<Violation> {
    let bad: Vec<&str> = (super::containers(pod.spec))
        .filter(|c| c.security_context.and_then(|sc| sc.allow_privilege_escalation) != Some(false))
        .map(|c| c.name)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "allowPrivilegeEscalation != false",
        detail: format!("{} must set securityContext.allowPrivilegeEscalation=false", containers_named(&bad)),
    })
}

/// From 1.25, Windows pods (which cannot set it) pass.
pub(super) fn allow_privilege_escalation_1_25(pod: &PodView<'_>) -> Option<Violation> {
    if is_windows(pod.spec) { None } else { allow_privilege_escalation(pod) }
}

/// No container unmasks /proc (procMount other than Default).
pub(super) fn proc_mount(pod: &PodView<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for (name, sc) in security_contexts(pod.spec) {
        if let Some(t) = sc.proc_mount.as_deref().filter(|t| *t != "Default") {
            bad.push(name);
            types.insert(t);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<&str> = types.into_iter().collect();
    Some(Violation {
        reason: "procMount",
        detail: format!("{} must not set securityContext.procMount to {}", containers_named(&bad), join_quote(&types)),
    })
}
