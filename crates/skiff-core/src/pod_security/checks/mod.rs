//! The Pod Security Standards' checks as upstream's `k8s.io/pod-security-admission/policy`
//! has them at Kubernetes 1.32: one function per check and version, in a table saying from which
//! version each applies and which baseline checks a restricted one replaces, and the evaluation
//! of a pod (its annotations and spec, or a template's) against a level at a version. Reasons
//! and details are upstream's words, in upstream's order (baseline checks, then restricted,
//! each by ID).

mod host;
mod privilege;
mod profiles;
mod users;
mod volumes;

use super::level::{Level, LevelVersion, Version};
use k8s_openapi::api::core::v1::{ContainerPort, PodSpec, SecurityContext};
use std::collections::BTreeMap;

/// What the checks read of a pod (or of a workload's pod template).
#[derive(Clone, Copy)]
pub struct PodView<'a> {
    pub annotations: &'a BTreeMap<String, String>,
    pub spec: &'a PodSpec,
}

/// One failed check: upstream's forbidden reason and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: &'static str,
    pub detail: String,
}

/// What a level at a version finds wrong with a pod (nothing: allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub violations: Vec<Violation>,
}

impl Evaluation {
    pub fn allowed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The reasons alone (`privileged, runAsNonRoot != true`): the namespace check's pod lines.
    pub fn forbidden_reason(&self) -> String {
        self.violations.iter().map(|v| v.reason).collect::<Vec<_>>().join(", ")
    }

    /// Each reason with its detail in parentheses: what enforce, audit and warn say.
    pub fn forbidden_detail(&self) -> String {
        let parts: Vec<String> = (self.violations.iter())
            .map(|v| match v.detail.as_str() {
                "" => v.reason.to_string(),
                detail => format!("{} ({detail})", v.reason),
            })
            .collect();
        parts.join(", ")
    }
}

type CheckFn = fn(&PodView<'_>) -> Option<Violation>;

/// One version of a check: from minor version `since` on (until its next version), `check`
/// runs, and the baseline checks named in `overrides` do not (a restricted check tightening one).
struct Versioned {
    since: u64,
    check: CheckFn,
    overrides: &'static [&'static str],
}

const fn at(since: u64, check: CheckFn) -> Versioned {
    Versioned { since, check, overrides: &[] }
}

const fn replacing(since: u64, check: CheckFn, overrides: &'static [&'static str]) -> Versioned {
    Versioned { since, check, overrides }
}

struct Check {
    id: &'static str,
    level: Level,
    versions: &'static [Versioned],
}

const fn baseline(id: &'static str, versions: &'static [Versioned]) -> Check {
    Check { id, level: Level::Baseline, versions }
}

const fn restricted(id: &'static str, versions: &'static [Versioned]) -> Check {
    Check { id, level: Level::Restricted, versions }
}

/// Every check: baseline, then restricted, each level's sorted by ID as upstream orders them.
static CHECKS: &[Check] = &[
    baseline("appArmorProfile", &[at(0, profiles::app_armor)]),
    baseline("capabilities_baseline", &[at(0, privilege::capabilities_baseline)]),
    baseline("hostNamespaces", &[at(0, host::namespaces)]),
    baseline("hostPathVolumes", &[at(0, volumes::host_path)]),
    baseline("hostPorts", &[at(0, host::ports)]),
    baseline("privileged", &[at(0, privilege::privileged)]),
    baseline("procMount", &[at(0, privilege::proc_mount)]),
    baseline("seLinuxOptions", &[at(0, profiles::se_linux_1_0), at(31, profiles::se_linux_1_31)]),
    baseline("seccompProfile_baseline", &[at(0, profiles::seccomp_annotations), at(19, profiles::seccomp_baseline)]),
    baseline(
        "sysctls",
        &[at(0, host::sysctls_1_0), at(27, host::sysctls_1_27), at(29, host::sysctls_1_29), at(32, host::sysctls_1_32)],
    ),
    baseline("windowsHostProcess", &[at(0, host::host_process)]),
    restricted(
        "allowPrivilegeEscalation",
        &[at(8, privilege::allow_privilege_escalation), at(25, privilege::allow_privilege_escalation_1_25)],
    ),
    restricted(
        "capabilities_restricted",
        &[
            replacing(22, privilege::capabilities_restricted, &["capabilities_baseline"]),
            replacing(25, privilege::capabilities_restricted_1_25, &["capabilities_baseline"]),
        ],
    ),
    restricted("restrictedVolumes", &[replacing(0, volumes::restricted, &["hostPathVolumes"])]),
    restricted("runAsNonRoot", &[at(0, users::run_as_non_root)]),
    restricted("runAsUser", &[at(23, users::run_as_user)]),
    restricted(
        "seccompProfile_restricted",
        &[
            replacing(19, profiles::seccomp_restricted, &["seccompProfile_baseline"]),
            replacing(25, profiles::seccomp_restricted_1_25, &["seccompProfile_baseline"]),
        ],
    ),
];

/// The newest minor version at which a check changed: later versions and `latest` check as it.
const NEWEST: u64 = 32;

/// Check `pod` against `lv`'s level as it was at `lv`'s version.
pub fn evaluate(lv: LevelVersion, pod: &PodView<'_>) -> Evaluation {
    let minor = match lv.version {
        Version::Latest => NEWEST,
        Version::Minor(m) => m.min(NEWEST),
    };
    let active = |c: &'static Check| c.versions.iter().rev().find(|v| v.since <= minor);
    let of_level = |level| CHECKS.iter().filter(move |c| c.level == level);
    let runs: Vec<&Versioned> = match lv.level {
        Level::Privileged => return Evaluation::default(),
        Level::Baseline => of_level(Level::Baseline).filter_map(active).collect(),
        Level::Restricted => {
            let replaced: Vec<&str> =
                of_level(Level::Restricted).filter_map(active).flat_map(|v| v.overrides.iter().copied()).collect();
            (CHECKS.iter())
                .filter(|c| c.level == Level::Restricted || !replaced.contains(&c.id))
                .filter_map(active)
                .collect()
        }
    };
    Evaluation { violations: runs.iter().filter_map(|v| (v.check)(pod)).collect() }
}

/// A container of any sort, as the checks see it.
struct ContainerView<'a> {
    name: &'a str,
    security_context: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
}

/// Init containers, then containers, then ephemeral containers (upstream's `visitContainers`).
fn containers<'a>(spec: &'a PodSpec) -> impl Iterator<Item = ContainerView<'a>> {
    let regular = spec.init_containers.iter().flatten().chain(&spec.containers).map(|c| ContainerView {
        name: &c.name,
        security_context: c.security_context.as_ref(),
        ports: c.ports.as_deref().unwrap_or_default(),
    });
    let ephemeral = spec.ephemeral_containers.iter().flatten().map(|c| ContainerView {
        name: &c.name,
        security_context: c.security_context.as_ref(),
        ports: c.ports.as_deref().unwrap_or_default(),
    });
    regular.chain(ephemeral)
}

/// The security contexts of the containers that have one, with the container's name.
fn security_contexts(spec: &PodSpec) -> impl Iterator<Item = (&str, &SecurityContext)> {
    containers(spec).filter_map(|c| Some((c.name, c.security_context?)))
}

/// `"a", "b"`: upstream's `joinQuote`, which quotes without escaping.
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

fn pluralize(singular: &'static str, plural: &'static str, count: usize) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` or `containers "a", "b"`.
fn containers_named<S: AsRef<str>>(names: &[S]) -> String {
    format!("{} {}", pluralize("container", "containers", names.len()), join_quote(names))
}

/// Who set something forbidden: `pod`, `containers "a", "b"`, or `pod and container "a"`.
fn setters<S: AsRef<str>>(pod: bool, containers: &[S]) -> Vec<String> {
    let mut who = Vec::new();
    if pod {
        who.push("pod".to_string());
    }
    if !containers.is_empty() {
        who.push(containers_named(containers));
    }
    who
}

/// Whether the pod says it runs on Windows (from 1.25 the Linux-only checks skip it).
fn is_windows(spec: &PodSpec) -> bool {
    spec.os.as_ref().is_some_and(|os| os.name == "windows")
}

#[cfg(test)]
mod tests;
