//! Seccomp for containers: which profile a container runs with (the kubelet's rules), skiff's
//! `RuntimeDefault` profile (`default_profile`), and `Localhost` profiles — files in the OCI or
//! Docker JSON format under DATA_DIR/seccomp — turned into the filter of a runtime spec for the
//! container's capabilities and this machine's architecture. Pure except `load_localhost`.

mod default_profile;

pub use default_profile::CLONE_NAMESPACE_FLAGS;
use k8s_openapi::api::core::v1::{Container, PodSecurityContext, SeccompProfile};
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("localhostProfile must be set if seccompProfile type is Localhost")]
    NoLocalhostProfile,
    #[error("unknown seccompProfile type {0:?}")]
    UnknownType(String),
    #[error("seccomp profile {name:?} is not a path inside {root}")]
    OutsideRoot { name: String, root: String },
    #[error("cannot load seccomp profile {path:?}: {message}")]
    Load { path: String, message: String },
    #[error("cannot parse seccomp profile {path:?}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
}

/// The profile a container runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Unconfined,
    RuntimeDefault,
    /// A file under the node's profile directory.
    Localhost(String),
}

/// This node's seccomp settings.
#[derive(Debug, Clone)]
pub struct NodeSeccomp {
    /// Where `Localhost` profiles are: DATA_DIR/seccomp (the kubelet's ROOT_DIR/seccomp).
    pub profile_root: PathBuf,
    /// `RuntimeDefault` for containers that name no profile, as `kubelet --seccomp-default`.
    pub default_to_runtime_default: bool,
}

impl NodeSeccomp {
    pub fn new(data_dir: &Path, default_to_runtime_default: bool) -> Self {
        NodeSeccomp { profile_root: data_dir.join("seccomp"), default_to_runtime_default }
    }
}

/// The kubelet's choice: privileged containers are unconfined; otherwise the container's profile,
/// else the pod's, else the node's default.
pub fn choose(
    pod: Option<&PodSecurityContext>,
    container: &Container,
    default_to_runtime_default: bool,
) -> Result<Choice, SeccompError> {
    let sc = container.security_context.as_ref();
    if sc.and_then(|s| s.privileged).unwrap_or(false) {
        return Ok(Choice::Unconfined);
    }
    let profile = sc.and_then(|s| s.seccomp_profile.as_ref()).or_else(|| pod.and_then(|p| p.seccomp_profile.as_ref()));
    match profile {
        Some(p) => choice_of(p),
        None if default_to_runtime_default => Ok(Choice::RuntimeDefault),
        None => Ok(Choice::Unconfined),
    }
}

fn choice_of(p: &SeccompProfile) -> Result<Choice, SeccompError> {
    match p.type_.as_str() {
        "Unconfined" => Ok(Choice::Unconfined),
        "RuntimeDefault" => Ok(Choice::RuntimeDefault),
        "Localhost" => match p.localhost_profile.as_deref() {
            Some(name) if !name.is_empty() => Ok(Choice::Localhost(name.to_string())),
            _ => Err(SeccompError::NoLocalhostProfile),
        },
        other => Err(SeccompError::UnknownType(other.to_string())),
    }
}

/// The filter for `container` on this node (None: unconfined); `caps` are its capabilities,
/// `image_architecture` its image's (Go's name, `amd64`).
pub fn filter_for(
    node: &NodeSeccomp,
    pod: Option<&PodSecurityContext>,
    container: &Container,
    caps: &HashSet<Capability>,
    image_architecture: &str,
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    match choose(pod, container, node.default_to_runtime_default)? {
        Choice::Unconfined => Ok(None),
        Choice::RuntimeDefault => runtime_default(caps, needs_compat_abis(image_architecture)).map(Some),
        Choice::Localhost(name) => load_localhost(&node.profile_root, &name, caps).map(Some),
    }
}

/// skiff's `RuntimeDefault` filter for a container with `caps`, on this machine's architecture;
/// with `compat_abis`, its 32-bit ABIs too (i386 and x32 beside x86_64, arm beside aarch64).
/// libseccomp compiles the filter once per ABI in every container's start (~7 ms each here), so
/// they are added only for an image built for one of them; without them a 32-bit call is
/// refused as an unknown architecture.
pub fn runtime_default(caps: &HashSet<Capability>, compat_abis: bool) -> Result<LinuxSeccomp, SeccompError> {
    let mut profile = default_profile::profile();
    if !compat_abis {
        profile.arch_map.iter_mut().for_each(|m| m.sub_architectures.clear());
    }
    to_filter(&profile, &Host::this_machine(caps, None))
}

/// Whether an image of `architecture` (Go's name) runs in a compat ABI of this machine.
pub fn needs_compat_abis(architecture: &str) -> bool {
    !architecture.is_empty() && architecture != Host::this_machine(&HashSet::new(), None).arch_names().1
}

/// Read the `Localhost` profile `name` under `root` and make it the filter for a container with
/// `caps`. A name that leaves `root` (`..`, absolute, or a symbolic link out) is refused.
pub fn load_localhost(root: &Path, name: &str, caps: &HashSet<Capability>) -> Result<LinuxSeccomp, SeccompError> {
    let path = localhost_path(root, name)?;
    let shown = path.display().to_string();
    let load = |e: std::io::Error| SeccompError::Load { path: shown.clone(), message: e.to_string() };
    let real = path.canonicalize().map_err(load)?;
    let real_root = root.canonicalize().map_err(load)?;
    if !real.starts_with(&real_root) {
        return Err(SeccompError::OutsideRoot { name: name.into(), root: root.display().to_string() });
    }
    let bytes = std::fs::read(&real).map_err(load)?;
    let profile: Profile = serde_json::from_slice(&bytes)
        .map_err(|e| SeccompError::Parse { path: shown.clone(), message: e.to_string() })?;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().and_then(|r| kernel_version(&r));
    to_filter(&profile, &Host::this_machine(caps, kernel))
        .map_err(|e| SeccompError::Parse { path: shown, message: e.to_string() })
}

/// `root/name` when `name` is a relative path that stays inside `root`.
pub fn localhost_path(root: &Path, name: &str) -> Result<PathBuf, SeccompError> {
    let rel = Path::new(name);
    if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(SeccompError::OutsideRoot { name: name.into(), root: root.display().to_string() });
    }
    Ok(root.join(rel))
}

/// "6.1.0-18-amd64" → (6, 1).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A seccomp profile in the Docker format (which is the OCI `linux.seccomp` object plus
/// `archMap` and per-rule conditions): what `Localhost` files hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: LinuxSeccompAction,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub architectures: Vec<Arch>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    pub listener_path: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub syscalls: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: Arch,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<Arch>,
}

/// One rule: its calls, action and argument conditions, kept only when `includes` all hold and
/// no condition of `excludes` does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
    /// The older single-name form.
    #[serde(default)]
    pub name: Option<String>,
    pub action: LinuxSeccompAction,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub args: Vec<LinuxSeccompArg>,
    #[serde(default)]
    pub includes: Conditions,
    #[serde(default)]
    pub excludes: Conditions,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub caps: Vec<String>,
    /// Go's architecture names ("amd64", "arm64", ...), as Docker profiles have them.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub arches: Vec<String>,
    /// "4.8": kernels from that version on.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// What selects a profile's rules.
#[derive(Debug, Clone)]
pub struct Host {
    /// Rust's name for the architecture (`std::env::consts::ARCH`).
    pub arch: String,
    /// (major, minor); rules with a minimum kernel are dropped when unknown.
    pub kernel: Option<(u32, u32)>,
    /// Held capabilities as profiles name them ("CAP_SYS_ADMIN").
    pub caps: HashSet<String>,
}

impl Host {
    pub fn this_machine(caps: &HashSet<Capability>, kernel: Option<(u32, u32)>) -> Host {
        let caps = caps
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(String::from)))
            .collect();
        Host { arch: std::env::consts::ARCH.to_string(), kernel, caps }
    }

    /// The architecture's seccomp name and Go's name for it.
    fn arch_names(&self) -> (Option<Arch>, &'static str) {
        match self.arch.as_str() {
            "x86_64" => (Some(Arch::ScmpArchX86_64), "amd64"),
            "x86" => (Some(Arch::ScmpArchX86), "386"),
            "aarch64" => (Some(Arch::ScmpArchAarch64), "arm64"),
            "arm" => (Some(Arch::ScmpArchArm), "arm"),
            "riscv64" => (Some(Arch::ScmpArchRiscv64), "riscv64"),
            "s390x" => (Some(Arch::ScmpArchS390x), "s390x"),
            "powerpc64" => (Some(Arch::ScmpArchPpc64le), "ppc64le"),
            "loongarch64" => (Some(Arch::ScmpArchLoongarch64), "loong64"),
            _ => (None, ""),
        }
    }

    fn has_arch(&self, arches: &[String]) -> bool {
        let go = self.arch_names().1;
        arches.iter().any(|a| a == go || *a == self.arch)
    }

    fn at_least(&self, min: &str) -> Result<bool, SeccompError> {
        let want = kernel_version(min).ok_or_else(|| SeccompError::Invalid(format!("minKernel {min:?}")))?;
        Ok(self.kernel.is_some_and(|k| k >= want))
    }

    fn included(&self, c: &Conditions) -> Result<bool, SeccompError> {
        let caps = c.caps.iter().all(|cap| self.caps.contains(cap));
        let arch = c.arches.is_empty() || self.has_arch(&c.arches);
        let kernel = match &c.min_kernel {
            Some(min) => self.at_least(min)?,
            None => true,
        };
        Ok(caps && arch && kernel)
    }

    fn excluded(&self, c: &Conditions) -> Result<bool, SeccompError> {
        let caps = c.caps.iter().any(|cap| self.caps.contains(cap));
        let arch = !c.arches.is_empty() && self.has_arch(&c.arches);
        let kernel = match &c.min_kernel {
            Some(min) => self.at_least(min)?,
            None => false,
        };
        Ok(caps || arch || kernel)
    }
}

/// `profile` as the `linux.seccomp` of a runtime spec for `host`. Unconditional rules with the
/// same outcome are merged into one entry; names keep their first position.
pub fn to_filter(profile: &Profile, host: &Host) -> Result<LinuxSeccomp, SeccompError> {
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(SeccompError::Invalid("both architectures and archMap are set; use one".into()));
    }
    let uses_notify = profile.default_action == LinuxSeccompAction::ScmpActNotify
        || profile.syscalls.iter().any(|r| r.action == LinuxSeccompAction::ScmpActNotify);
    if uses_notify || profile.listener_path.is_some() {
        return Err(SeccompError::Invalid("SCMP_ACT_NOTIFY needs a seccomp agent, which skiff does not run".into()));
    }
    let mut architectures = profile.architectures.clone();
    let native = host.arch_names().0;
    for m in profile.arch_map.iter().filter(|m| Some(m.architecture) == native) {
        architectures.push(m.architecture);
        architectures.extend(m.sub_architectures.iter().copied());
    }

    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    let mut seen: HashSet<(String, u32)> = HashSet::new();
    for rule in &profile.syscalls {
        if !host.included(&rule.includes)? || host.excluded(&rule.excludes)? {
            continue;
        }
        let names: Vec<String> = rule.names.iter().chain(rule.name.as_ref()).cloned().collect();
        if names.is_empty() {
            return Err(SeccompError::Invalid("a rule names no system call".into()));
        }
        let outcome = rule.action.as_u32(rule.errno_ret);
        if !rule.args.is_empty() {
            let mut s = LinuxSyscall::default();
            s.set_names(names)
                .set_action(rule.action)
                .set_errno_ret(rule.errno_ret)
                .set_args(Some(rule.args.iter().map(for_libcontainer).collect()));
            syscalls.push(s);
            continue;
        }
        let fresh: Vec<String> = names.into_iter().filter(|n| seen.insert((n.clone(), outcome))).collect();
        let merged = syscalls
            .iter_mut()
            .find(|s| s.args().is_none() && s.action() == rule.action && s.errno_ret() == rule.errno_ret);
        match merged {
            Some(s) => {
                let mut all = s.names().clone();
                all.extend(fresh);
                s.set_names(all);
            }
            None if !fresh.is_empty() => {
                let mut s = LinuxSyscall::default();
                s.set_names(fresh).set_action(rule.action).set_errno_ret(rule.errno_ret);
                syscalls.push(s);
            }
            None => {}
        }
    }
    let mut filter = LinuxSeccomp::default();
    filter
        .set_default_action(profile.default_action)
        .set_default_errno_ret(profile.default_errno_ret)
        .set_architectures((!architectures.is_empty()).then_some(architectures))
        .set_flags((!profile.flags.is_empty()).then(|| profile.flags.clone()))
        .set_syscalls(Some(syscalls));
    Ok(filter)
}

/// libcontainer 0.7 reads a masked comparison the other way round from runc and the OCI spec
/// (it takes `valueTwo` as the mask and `value` as the expected result, where runc has `value`
/// as the mask): swap the two so that profiles written for runc mean the same here.
fn for_libcontainer(arg: &LinuxSeccompArg) -> LinuxSeccompArg {
    match arg.op() {
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            seccomp_arg(arg.index(), arg.op(), arg.value_two().unwrap_or(0), Some(arg.value()))
        }
        _ => *arg,
    }
}

/// An argument comparison (the type has no setters; its builder cannot fail: every field has a default).
fn seccomp_arg(index: usize, op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> LinuxSeccompArg {
    let mut b = oci_spec::runtime::LinuxSeccompArgBuilder::default().index(index).op(op).value(value);
    if let Some(v) = value_two {
        b = b.value_two(v);
    }
    b.build().unwrap_or_default()
}

#[cfg(test)]
mod tests;
