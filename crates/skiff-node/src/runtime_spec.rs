//! The OCI runtime spec (config.json) for one container of a pod: the process from `process`,
//! the pod's shared namespaces, mounts, capabilities, `no_new_privs`, read-only root, masked
//! paths and the default seccomp filter like other runtimes, and cgroup limits from `resources`.

use crate::process::Process;
use k8s_openapi::api::core::v1::Container;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxResourcesBuilder, LinuxSeccomp, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder, get_default_maskedpaths, get_default_mounts, get_default_readonly_paths,
};
use skiff_core::quantity;
use std::collections::HashSet;
use std::path::PathBuf;

/// Docker's (and containerd's) default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability, by number (capability N is bit N of a capability mask).
const ALL_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// "All" capabilities for privileged containers and `add: [ALL]`: those in `bounding` (this
/// process's bounding set), as containerd gives; a capability the host itself lacks (some VMs
/// drop CAP_SYS_RESOURCE) cannot be granted, and asking for it fails the container's start.
fn all_capabilities(bounding: Option<u64>) -> Vec<String> {
    let held = |bit: usize| bounding.is_none_or(|mask| mask & (1u64 << bit) != 0);
    ALL_CAPS.iter().enumerate().filter(|(bit, _)| held(*bit)).map(|(_, n)| n.to_string()).collect()
}

/// This process's bounding set (`CapBnd` in /proc/self/status), read once.
fn host_bounding_set() -> Option<u64> {
    static BOUNDING: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *BOUNDING.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    })
}

/// CFS period for CPU limits, in microseconds.
const CPU_PERIOD: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("unknown capability {0:?}")]
    Capability(String),
    #[error("invalid quantity {value:?} for {resource}")]
    Quantity { resource: String, value: String },
    #[error("building the runtime spec: {0}")]
    Build(String),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
}

fn build_err(e: impl std::fmt::Display) -> SpecError {
    SpecError::Build(e.to_string())
}

/// A bind mount into the container.
#[derive(Debug, Clone)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// What the pod gives each of its containers.
#[derive(Debug, Clone)]
pub struct PodContext {
    pub hostname: String,
    /// The pod's shared namespaces (network, IPC, UTS), as /proc/PID/ns/* or bind-mounted paths.
    pub netns: Option<PathBuf>,
    /// The host's network namespace instead of one of the pod's own (`netns` is then unused).
    pub host_network: bool,
    pub ipcns: Option<PathBuf>,
    pub utsns: Option<PathBuf>,
    /// A PID namespace to join (an ephemeral container's target's); None: one of its own.
    pub pidns: Option<PathBuf>,
    /// /etc/hosts, /etc/hostname, /etc/resolv.conf, /dev/termination-log and volumes.
    pub mounts: Vec<BindMount>,
    pub cgroups_path: String,
}

fn capability(name: &str) -> Result<Capability, SpecError> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| SpecError::Capability(name.into()))
}

/// The capability set: the default, or all the host has when privileged, then `add`, then `drop`
/// ("ALL" works).
pub fn capabilities(container: &Container) -> Result<HashSet<Capability>, SpecError> {
    let sc = container.security_context.as_ref();
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let mut names: Vec<String> = if privileged {
        all_capabilities(host_bounding_set())
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let norm = |c: &String| c.trim().to_uppercase().trim_start_matches("CAP_").to_string();
    for a in caps.and_then(|c| c.add.as_ref()).into_iter().flatten() {
        let a = norm(a);
        if a == "ALL" {
            names = all_capabilities(host_bounding_set());
        } else if !names.contains(&a) {
            names.push(a);
        }
    }
    for d in caps.and_then(|c| c.drop.as_ref()).into_iter().flatten() {
        let d = norm(d);
        if d == "ALL" {
            names.clear();
        } else {
            names.retain(|n| *n != d);
        }
    }
    names.iter().map(|n| capability(n)).collect()
}

fn quantity_of(container: &Container, field: &str, resource: &str) -> Option<String> {
    let r = container.resources.as_ref()?;
    let map = if field == "limits" { r.limits.as_ref()? } else { r.requests.as_ref()? };
    map.get(resource).map(|q| q.0.clone())
}

/// The OCI spec for `container` running `process` on `rootfs` in the pod described by `pod`.
pub fn runtime_spec(
    container: &Container,
    process: &Process,
    rootfs: PathBuf,
    pod: &PodContext,
    tty: bool,
) -> Result<Spec, SpecError> {
    let sc = container.security_context.as_ref();
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let caps = capabilities(container)?;
    let no_new_privs = sc.and_then(|s| s.allow_privilege_escalation) == Some(false);
    let user = UserBuilder::default()
        .uid(process.uid)
        .gid(process.gid)
        .additional_gids(process.additional_gids.clone())
        .build()
        .map_err(build_err)?;
    let linux_caps = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps.clone())
        .build()
        .map_err(build_err)?;
    let mut proc = ProcessBuilder::default()
        .terminal(tty)
        .user(user)
        .args(process.args.clone())
        .env(process.env.clone())
        .cwd(process.cwd.clone())
        .capabilities(linux_caps)
        // No rlimits: raising one above the host's hard limit fails without CAP_SYS_RESOURCE.
        .rlimits(Vec::new())
        .build()
        .map_err(build_err)?;
    // Unset rather than false: libcontainer loads the seccomp filter while it still has every
    // capability only when the field is absent; `false` makes it load the filter after dropping
    // them, which the kernel refuses without no_new_privs.
    proc.set_no_new_privileges(no_new_privs.then_some(true));
    let root = RootBuilder::default()
        .path(rootfs)
        .readonly(sc.and_then(|s| s.read_only_root_filesystem).unwrap_or(false))
        .build()
        .map_err(build_err)?;

    let mut mounts: Vec<Mount> = get_default_mounts();
    if privileged {
        // Privileged containers see /sys read-write, as with other runtimes.
        for m in mounts.iter_mut().filter(|m| m.destination().as_os_str() == "/sys") {
            m.set_options(Some(vec!["nosuid".into(), "noexec".into(), "nodev".into(), "rw".into()]));
        }
    }
    for b in &pod.mounts {
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        options.push(if b.readonly { "ro".into() } else { "rw".into() });
        mounts.push(
            MountBuilder::default()
                .destination(&b.destination)
                .typ("bind")
                .source(&b.source)
                .options(options)
                .build()
                .map_err(build_err)?,
        );
    }

    let ns = |t: LinuxNamespaceType, path: Option<&PathBuf>| {
        let mut b = LinuxNamespaceBuilder::default().typ(t);
        if let Some(p) = path {
            b = b.path(p.clone());
        }
        b.build().map_err(build_err)
    };
    let mut namespaces = vec![
        ns(LinuxNamespaceType::Pid, pod.pidns.as_ref())?,
        ns(LinuxNamespaceType::Mount, None)?,
        ns(LinuxNamespaceType::Ipc, pod.ipcns.as_ref())?,
        ns(LinuxNamespaceType::Uts, pod.utsns.as_ref())?,
    ];
    if !pod.host_network {
        namespaces.push(ns(LinuxNamespaceType::Network, pod.netns.as_ref())?);
    }

    let mut resources = LinuxResourcesBuilder::default();
    let q = |field: &str, res: &str| -> Result<Option<i64>, SpecError> {
        match quantity_of(container, field, res) {
            None => Ok(None),
            Some(v) => {
                let parsed = if res == "cpu" { quantity::millicores(&v) } else { quantity::bytes(&v) };
                parsed.map(Some).ok_or(SpecError::Quantity { resource: res.into(), value: v })
            }
        }
    };
    if let Some(limit) = q("limits", "memory")? {
        resources = resources.memory(LinuxMemoryBuilder::default().limit(limit).build().map_err(build_err)?);
    }
    let cpu_limit = q("limits", "cpu")?;
    let cpu_request = q("requests", "cpu")?.or(cpu_limit);
    if cpu_limit.is_some() || cpu_request.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(m) = cpu_request {
            // The kubelet's MilliCPUToShares: at least 2.
            cpu = cpu.shares(((m.max(0) as u64) * 1024 / 1000).max(2));
        }
        if let Some(m) = cpu_limit {
            let quota = (m.max(1) as u64 * CPU_PERIOD).div_ceil(1000).max(1000);
            cpu = cpu.quota(quota as i64).period(CPU_PERIOD);
        }
        resources = resources.cpu(cpu.build().map_err(build_err)?);
    }

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build().map_err(build_err)?)
        .cgroups_path(PathBuf::from(&pod.cgroups_path));
    // Set explicitly both ways: the builder's default already carries the masked paths.
    linux = if privileged {
        linux.masked_paths(Vec::new()).readonly_paths(Vec::new())
    } else {
        linux.masked_paths(get_default_maskedpaths()).readonly_paths(get_default_readonly_paths())
    };
    // The runtime's default filter, as `docker run` and `docker build` give; a pod's
    // seccompProfile replaces it (`set_seccomp`). Privileged containers have none.
    if !privileged {
        linux = linux.seccomp(crate::seccomp::runtime_default(&caps, false)?);
    }
    let mut spec = SpecBuilder::default().version("1.0.2").root(root).process(proc).mounts(mounts);
    // A joined UTS namespace already has the pod's hostname (the sandbox set it); setting it again
    // from a container is refused by runtimes.
    if pod.utsns.is_none() {
        spec = spec.hostname(pod.hostname.clone());
    }
    spec.linux(linux.build().map_err(build_err)?).build().map_err(build_err)
}

/// Replace the spec's seccomp filter (None: unconfined).
pub fn set_seccomp(spec: &mut Spec, filter: Option<LinuxSeccomp>) {
    if let Some(linux) = spec.linux_mut().as_mut() {
        linux.set_seccomp(filter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Capabilities, ResourceRequirements, SecurityContext};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pod() -> PodContext {
        PodContext {
            hostname: "web".into(),
            netns: Some("/run/skiff/netns/web".into()),
            host_network: false,
            ipcns: None,
            utsns: None,
            pidns: None,
            mounts: vec![BindMount {
                source: "/pods/u/etc-hosts".into(),
                destination: "/etc/hosts".into(),
                readonly: false,
            }],
            cgroups_path: "/skiff/pod-u/c".into(),
        }
    }

    fn proc() -> Process {
        Process { args: vec!["sh".into()], env: vec![], cwd: "/".into(), uid: 0, gid: 0, additional_gids: vec![] }
    }

    #[test]
    fn defaults_like_other_runtimes() {
        let c = Container { name: "c".into(), ..Default::default() };
        let spec = runtime_spec(&c, &proc(), "/rootfs".into(), &pod(), false).expect("spec");
        let caps = spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .and_then(|c| c.bounding().clone())
            .expect("caps");
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        assert!(caps.contains(&Capability::NetBindService) && !caps.contains(&Capability::SysAdmin));
        let linux = spec.linux().clone().expect("linux");
        assert!(linux.masked_paths().as_ref().is_some_and(|m| m.iter().any(|p| p == "/proc/kcore")));
        let nss = linux.namespaces().clone().expect("namespaces");
        let net = nss.iter().find(|n| n.typ() == LinuxNamespaceType::Network).expect("netns");
        assert_eq!(net.path().as_deref(), Some(std::path::Path::new("/run/skiff/netns/web")));
        assert_eq!(spec.hostname().as_deref(), Some("web"));
        assert!(spec.mounts().as_ref().is_some_and(|m| m.iter().any(|m| m.destination().as_os_str() == "/etc/hosts")));
        assert_eq!(spec.process().as_ref().map(|p| p.no_new_privileges()), Some(None));
        let seccomp = linux.seccomp().clone().expect("the default filter");
        assert_eq!(seccomp.default_action(), oci_spec::runtime::LinuxSeccompAction::ScmpActErrno);
        let mut spec = spec;
        set_seccomp(&mut spec, None);
        assert!(spec.linux().as_ref().is_some_and(|l| l.seccomp().is_none()));
    }

    #[test]
    fn all_capabilities_are_those_the_host_has() {
        assert_eq!(all_capabilities(None).len(), ALL_CAPS.len());
        assert!(ALL_CAPS.iter().all(|c| capability(c).is_ok()));
        // A host without CAP_SYS_RESOURCE (bit 24), as some VMs are.
        let caps = all_capabilities(Some(0x1ff_feff_ffff));
        assert_eq!(caps.len(), ALL_CAPS.len() - 1);
        assert!(!caps.iter().any(|c| c == "SYS_RESOURCE") && caps.iter().any(|c| c == "CHECKPOINT_RESTORE"));
        assert_eq!(all_capabilities(Some(0b101)), vec!["CHOWN".to_string(), "DAC_READ_SEARCH".to_string()]);
    }

    #[test]
    fn security_context_and_resources() {
        let mut c = Container { name: "c".into(), ..Default::default() };
        c.security_context = Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into()]),
                drop: Some(vec!["KILL".into(), "CAP_CHOWN".into()]),
            }),
            ..Default::default()
        });
        c.resources = Some(ResourceRequirements {
            limits: Some(
                [("cpu".to_string(), Quantity("500m".into())), ("memory".to_string(), Quantity("64Mi".into()))].into(),
            ),
            requests: Some([("cpu".to_string(), Quantity("250m".into()))].into()),
            ..Default::default()
        });
        let spec = runtime_spec(&c, &proc(), "/rootfs".into(), &pod(), false).expect("spec");
        let p = spec.process().clone().expect("process");
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().clone().and_then(|c| c.bounding().clone()).expect("caps");
        assert!(
            caps.contains(&Capability::NetAdmin)
                && !caps.contains(&Capability::Kill)
                && !caps.contains(&Capability::Chown)
        );
        assert_eq!(spec.root().as_ref().and_then(|r| r.readonly()), Some(true));
        let res = spec.linux().clone().and_then(|l| l.resources().clone()).expect("resources");
        assert_eq!(res.memory().as_ref().and_then(|m| m.limit()), Some(64 << 20));
        let cpu = res.cpu().clone().expect("cpu");
        assert_eq!((cpu.shares(), cpu.quota(), cpu.period()), (Some(256), Some(50_000), Some(100_000)));

        c.security_context = Some(SecurityContext { privileged: Some(true), ..Default::default() });
        c.resources = None;
        let spec = runtime_spec(&c, &proc(), "/rootfs".into(), &pod(), false).expect("privileged");
        let caps = spec
            .process()
            .clone()
            .and_then(|p| p.capabilities().clone())
            .and_then(|c| c.bounding().clone())
            .expect("caps");
        assert!(caps.contains(&Capability::SysAdmin));
        assert!(spec.linux().clone().and_then(|l| l.masked_paths().clone()).unwrap_or_default().is_empty());
        assert!(spec.linux().as_ref().is_some_and(|l| l.seccomp().is_none()), "privileged: unconfined");

        c.security_context = Some(SecurityContext {
            capabilities: Some(Capabilities { add: Some(vec!["BOGUS".into()]), drop: None }),
            ..Default::default()
        });
        assert!(matches!(runtime_spec(&c, &proc(), "/r".into(), &pod(), false), Err(SpecError::Capability(_))));
    }
}
