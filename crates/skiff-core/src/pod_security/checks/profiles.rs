//! Checks on a pod's confinement profiles: AppArmor and seccomp (baseline: not unconfined;
//! restricted: seccomp RuntimeDefault or Localhost required) and SELinux options (container
//! types only, no user or role).

use super::{PodView, Violation, containers, is_windows, join_quote, pluralize, security_contexts, setters};
use crate::field::go_quote;
use k8s_openapi::api::core::v1::{SELinuxOptions, SeccompProfile};
use std::collections::BTreeSet;

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Profile types that keep a container confined (AppArmor's and seccomp's alike).
fn confining(profile_type: &str) -> bool {
    matches!(profile_type, "RuntimeDefault" | "Localhost")
}

/// No AppArmor profile of type Unconfined (or unknown), by field or the beta annotations.
pub(super) fn app_armor(pod: &PodView<'_>) -> Option<Violation> {
    let mut bad_values = BTreeSet::new();
    let pod_profile = pod.spec.security_context.as_ref().and_then(|s| s.app_armor_profile.as_ref());
    let pod_bad = pod_profile.map(|p| &p.type_).filter(|t| !confining(t));
    if let Some(t) = pod_bad {
        bad_values.insert(t.clone());
    }
    let mut bad_containers = Vec::new();
    for (name, sc) in security_contexts(pod.spec) {
        if let Some(p) = sc.app_armor_profile.as_ref().filter(|p| !confining(&p.type_)) {
            bad_containers.push(name);
            bad_values.insert(p.type_.clone());
        }
    }
    let mut who = setters(pod_bad.is_some(), &bad_containers);
    let allowed_annotation = |v: &str| v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
    // The annotations map is sorted, as upstream sorts what it found.
    let annotations: Vec<String> = (pod.annotations.iter())
        .filter(|(k, v)| k.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed_annotation(v))
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    let mut values: Vec<String> = bad_values.into_iter().collect();
    if !annotations.is_empty() {
        who.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    (!who.is_empty()).then(|| Violation {
        reason: pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", values.len()),
        detail: format!("{} must not set AppArmor profile type to {}", who.join(" and "), join_quote(&values)),
    })
}

const SELINUX_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];

pub(super) fn se_linux_1_0(pod: &PodView<'_>) -> Option<Violation> {
    se_linux(pod, SELINUX_TYPES_1_0)
}

pub(super) fn se_linux_1_31(pod: &PodView<'_>) -> Option<Violation> {
    se_linux(pod, SELINUX_TYPES_1_31)
}

/// SELinux options name only an allowed type, and no user or role.
fn se_linux(pod: &PodView<'_>, allowed_types: &[&str]) -> Option<Violation> {
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |o: &SELinuxOptions| {
        let t = o.type_.as_deref().unwrap_or_default();
        let type_ok = allowed_types.contains(&t);
        if !type_ok {
            bad_types.insert(t.to_string());
        }
        let user = o.user.as_deref().is_some_and(|u| !u.is_empty());
        let role = o.role.as_deref().is_some_and(|r| !r.is_empty());
        set_user |= user;
        set_role |= role;
        type_ok && !user && !role
    };
    let pod_options = pod.spec.security_context.as_ref().and_then(|s| s.se_linux_options.as_ref());
    let pod_bad = pod_options.is_some_and(|o| !valid(o));
    let bad: Vec<&str> = (security_contexts(pod.spec))
        .filter(|(_, sc)| sc.se_linux_options.as_ref().is_some_and(|o| !valid(o)))
        .map(|(name, _)| name)
        .collect();
    let who = setters(pod_bad, &bad);
    if who.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        what.push(format!("{} {}", pluralize("type", "types", types.len()), join_quote(&types)));
    }
    if set_user {
        what.push("user may not be set".to_string());
    }
    if set_role {
        what.push("role may not be set".to_string());
    }
    Some(Violation {
        reason: "seLinuxOptions",
        detail: format!("{} set forbidden securityContext.seLinuxOptions: {}", who.join(" and "), what.join("; ")),
    })
}

/// Before 1.19, seccomp was set by annotations: none may say unconfined (or anything unknown).
pub(super) fn seccomp_annotations(pod: &PodView<'_>) -> Option<Violation> {
    let allowed = |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut forbidden = BTreeSet::new();
    let mut check = |key: String| {
        if let Some(v) = pod.annotations.get(&key).filter(|v| !allowed(v)) {
            forbidden.insert(format!("{key}={}", go_quote(v)));
        }
    };
    check(SECCOMP_POD_ANNOTATION.to_string());
    for c in containers(pod.spec) {
        check(format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name));
    }
    if forbidden.is_empty() {
        return None;
    }
    let forbidden: Vec<String> = forbidden.into_iter().collect();
    Some(Violation {
        reason: "seccompProfile",
        detail: format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.join(", ")
        ),
    })
}

/// Who set a seccomp profile type that does not confine, and the types they set.
struct BadSeccomp<'a> {
    pod: bool,
    containers: Vec<&'a str>,
    types: BTreeSet<&'a str>,
    /// Containers that set no profile (what a valid pod-level profile covers).
    unset: Vec<&'a str>,
}

fn bad_seccomp<'a>(pod: &PodView<'a>) -> BadSeccomp<'a> {
    let mut found = BadSeccomp { pod: false, containers: vec![], types: BTreeSet::new(), unset: vec![] };
    let pod_profile: Option<&SeccompProfile> =
        pod.spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref());
    if let Some(p) = pod_profile.filter(|p| !confining(&p.type_)) {
        found.pod = true;
        found.types.insert(&p.type_);
    }
    for c in containers(pod.spec) {
        match c.security_context.and_then(|sc| sc.seccomp_profile.as_ref()) {
            Some(p) if !confining(&p.type_) => {
                found.containers.push(c.name);
                found.types.insert(&p.type_);
            }
            Some(_) => {}
            None => found.unset.push(c.name),
        }
    }
    found
}

fn must_not_set(bad: &BadSeccomp<'_>) -> Option<Violation> {
    let who = setters(bad.pod, &bad.containers);
    let types: Vec<&str> = bad.types.iter().copied().collect();
    (!who.is_empty()).then(|| Violation {
        reason: "seccompProfile",
        detail: format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            who.join(" and "),
            join_quote(&types)
        ),
    })
}

/// From 1.19: no seccomp profile field of type Unconfined (or unknown).
pub(super) fn seccomp_baseline(pod: &PodView<'_>) -> Option<Violation> {
    must_not_set(&bad_seccomp(pod))
}

/// Restricted: no profile that does not confine, and every container confined by its own
/// profile or the pod's.
pub(super) fn seccomp_restricted(pod: &PodView<'_>) -> Option<Violation> {
    let bad = bad_seccomp(pod);
    if let Some(v) = must_not_set(&bad) {
        return Some(v);
    }
    // A pod-level profile here confines (an unconfined one was refused above).
    let pod_confined = pod.spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()).is_some();
    (!pod_confined && !bad.unset.is_empty()).then(|| Violation {
        reason: "seccompProfile",
        detail: format!(
            r#"pod or {} {} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
            pluralize("container", "containers", bad.unset.len()),
            join_quote(&bad.unset)
        ),
    })
}

/// From 1.25, Windows pods (which cannot set seccomp) pass.
pub(super) fn seccomp_restricted_1_25(pod: &PodView<'_>) -> Option<Violation> {
    if is_windows(pod.spec) { None } else { seccomp_restricted(pod) }
}
