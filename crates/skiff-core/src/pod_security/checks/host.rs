//! Baseline checks on what a pod shares with its host or changes on it: host namespaces, host
//! ports, Windows host processes, and sysctls beyond the safe (namespaced, isolated) set.

use super::{PodView, Violation, containers, containers_named, pluralize, setters};
use std::collections::BTreeSet;

/// hostNetwork, hostPID and hostIPC must be unset or false.
pub(super) fn namespaces(pod: &PodView<'_>) -> Option<Violation> {
    let spec = pod.spec;
    let shared: Vec<&str> =
        [(spec.host_network, "hostNetwork=true"), (spec.host_pid, "hostPID=true"), (spec.host_ipc, "hostIPC=true")]
            .into_iter()
            .filter_map(|(set, what)| (set == Some(true)).then_some(what))
            .collect();
    (!shared.is_empty()).then(|| Violation { reason: "host namespaces", detail: shared.join(", ") })
}

/// No container port may name a host port.
pub(super) fn ports(pod: &PodView<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    // Upstream keeps them as strings in a set: sorted as text.
    let mut host_ports = BTreeSet::new();
    for c in containers(pod.spec) {
        let used: Vec<i32> = c.ports.iter().filter_map(|p| p.host_port.filter(|h| *h != 0)).collect();
        if !used.is_empty() {
            bad.push(c.name);
            host_ports.extend(used.iter().map(i32::to_string));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let host_ports: Vec<String> = host_ports.into_iter().collect();
    Some(Violation {
        reason: "hostPort",
        detail: format!(
            "{} {} {} {}",
            containers_named(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", host_ports.len()),
            host_ports.join(", ")
        ),
    })
}

/// Neither the pod nor a container may ask for a Windows host process.
pub(super) fn host_process(pod: &PodView<'_>) -> Option<Violation> {
    let host_process = |w: Option<&k8s_openapi::api::core::v1::WindowsSecurityContextOptions>| {
        w.and_then(|w| w.host_process) == Some(true)
    };
    let in_pod = host_process(pod.spec.security_context.as_ref().and_then(|s| s.windows_options.as_ref()));
    let bad: Vec<&str> = (containers(pod.spec))
        .filter(|c| host_process(c.security_context.and_then(|s| s.windows_options.as_ref())))
        .map(|c| c.name)
        .collect();
    let who = setters(in_pod, &bad);
    (!who.is_empty()).then(|| Violation {
        reason: "hostProcess",
        detail: format!("{} must not set securityContext.windowsOptions.hostProcess=true", who.join(" and ")),
    })
}

const SAFE_SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SAFE_SYSCTLS_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SAFE_SYSCTLS_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SAFE_SYSCTLS_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

/// Only the sysctls of the safe set (each version's adds to the last's) may be set.
fn sysctls(pod: &PodView<'_>, safe: &[&[&str]]) -> Option<Violation> {
    let set = pod.spec.security_context.as_ref().and_then(|s| s.sysctls.as_ref());
    let forbidden: Vec<&str> = (set.into_iter().flatten())
        .map(|s| s.name.as_str())
        .filter(|name| !safe.iter().any(|names| names.contains(name)))
        .collect();
    (!forbidden.is_empty()).then(|| Violation { reason: "forbidden sysctls", detail: forbidden.join(", ") })
}

pub(super) fn sysctls_1_0(pod: &PodView<'_>) -> Option<Violation> {
    sysctls(pod, &[SAFE_SYSCTLS_1_0])
}

pub(super) fn sysctls_1_27(pod: &PodView<'_>) -> Option<Violation> {
    sysctls(pod, &[SAFE_SYSCTLS_1_0, SAFE_SYSCTLS_1_27])
}

pub(super) fn sysctls_1_29(pod: &PodView<'_>) -> Option<Violation> {
    sysctls(pod, &[SAFE_SYSCTLS_1_0, SAFE_SYSCTLS_1_27, SAFE_SYSCTLS_1_29])
}

pub(super) fn sysctls_1_32(pod: &PodView<'_>) -> Option<Violation> {
    sysctls(pod, &[SAFE_SYSCTLS_1_0, SAFE_SYSCTLS_1_27, SAFE_SYSCTLS_1_29, SAFE_SYSCTLS_1_32])
}
