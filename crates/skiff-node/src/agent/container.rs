//! Getting one container attempt ready on disk, and cleaning up after a pod: the overlay root
//! filesystem over the image's layers, the pod's generated `/etc` files, volumes, the termination
//! log, and the OCI bundle the shim starts.

use crate::dns::hosts::{PodNames, hosts_file};
use crate::dns::resolv::{ClusterDnsConfig, resolv_conf};
use crate::pod_dir::PodDir;
use crate::process::{EtcFiles, ProcessError};
use crate::runtime_spec::{BindMount, PodContext, SpecError};
use crate::status::WaitingReason;
use k8s_openapi::api::core::v1::{Container, Pod};
use nix::mount::MntFlags;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why a container could not be prepared, with the waiting reason the kubelet would show.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The pod asks for something impossible (`CreateContainerConfigError`).
    #[error("{0}")]
    Config(String),
    /// The node failed (`CreateContainerError`).
    #[error("{0}")]
    Create(String),
    /// The root filesystem could not be mounted (`CreateContainerError`).
    #[error("mounting the root filesystem: {0}")]
    Overlay(#[source] OverlayError),
}

impl PrepareError {
    pub fn reason(&self) -> WaitingReason {
        match self {
            PrepareError::Config(_) => WaitingReason::CreateContainerConfigError,
            PrepareError::Create(_) | PrepareError::Overlay(_) => WaitingReason::CreateContainerError,
        }
    }
}

pub use skiff_image::overlay::OverlayError;

impl From<ProcessError> for PrepareError {
    fn from(e: ProcessError) -> Self {
        match e.reason() {
            WaitingReason::CreateContainerConfigError => PrepareError::Config(e.to_string()),
            _ => PrepareError::Create(e.to_string()),
        }
    }
}

impl From<SpecError> for PrepareError {
    fn from(e: SpecError) -> Self {
        PrepareError::Config(e.to_string())
    }
}

fn create(what: &str) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
    move |e| PrepareError::Create(format!("{what}: {e}"))
}

/// Whether [`write_etc_files`] has written all of the pod's files.
pub fn etc_files_written(dir: &PodDir) -> bool {
    ["hosts", "hostname", "resolv.conf"].iter().all(|f| dir.etc().join(f).exists())
}

/// The pod's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, as the kubelet generates them
/// (the resolv.conf for its dnsPolicy, from the node's own and the cluster DNS `dns`).
pub fn write_etc_files(dir: &PodDir, pod: &Pod, ips: &[IpAddr], dns: &ClusterDnsConfig) -> std::io::Result<()> {
    let etc = dir.etc();
    std::fs::create_dir_all(&etc)?;
    let names = PodNames::of(pod, &dns.domain);
    std::fs::write(etc.join("hosts"), hosts_file(pod, &names, ips))?;
    std::fs::write(etc.join("hostname"), format!("{}\n", names.hostname))?;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(etc.join("resolv.conf"), resolv_conf(pod, &host, Some(dns)))
}

/// What a container needs from the pod to be prepared.
pub struct Attempt<'a> {
    pub dir: &'a PodDir,
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub attempt: u32,
    /// The image's layer directories, bottom first.
    pub layers: &'a [PathBuf],
    pub image_config: &'a oci_spec::image::Config,
    /// The shim's pid: its namespaces are the pod's.
    pub sandbox_pid: i32,
    /// The image's architecture (Go's name, `amd64`): the seccomp filter covers its ABI.
    pub image_architecture: &'a str,
    /// An ephemeral container's target: the pid whose PID namespace it joins.
    pub target_pid: Option<i32>,
    /// The node's seccomp settings (default profile, Localhost profile directory).
    pub seccomp: &'a crate::seccomp::NodeSeccomp,
    /// The cluster's DNS domain (a pod's host name may be a name in it).
    pub cluster_domain: &'a str,
}

/// Mount the root filesystem and write `config.json` for `a`, ready for the shim.
pub fn prepare(a: &Attempt) -> Result<(), PrepareError> {
    let base = a.dir.attempt(&a.container.name, a.attempt);
    let rootfs = base.join("rootfs");
    for d in ["rootfs", "upper", "work"] {
        std::fs::create_dir_all(base.join(d)).map_err(create("creating the container's directories"))?;
    }
    skiff_image::overlay::mount_writable(a.layers, &base).map_err(PrepareError::Overlay)?;
    let users = EtcFiles {
        passwd: std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default(),
        group: std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default(),
    };
    let pod_name = a.pod.metadata.name.as_deref().unwrap_or_default();
    let hostname = PodNames::of(a.pod, a.cluster_domain).hostname;
    let spec_ = a.pod.spec.clone().unwrap_or_default();
    let process = crate::process::process(
        pod_name,
        Some(&hostname),
        spec_.security_context.as_ref(),
        a.container,
        a.image_config,
        &users,
    )?;
    let termination_log = a.dir.termination_log(&a.container.name, a.attempt);
    std::fs::write(&termination_log, b"").map_err(create("creating the termination log"))?;

    let etc = a.dir.etc();
    let mut mounts = vec![
        BindMount { source: etc.join("hosts"), destination: "/etc/hosts".into(), readonly: false },
        BindMount { source: etc.join("hostname"), destination: "/etc/hostname".into(), readonly: false },
        BindMount { source: etc.join("resolv.conf"), destination: "/etc/resolv.conf".into(), readonly: false },
    ];
    let termination_path =
        a.container.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".into());
    mounts.push(BindMount { source: termination_log, destination: termination_path, readonly: false });
    mounts.extend(volume_mounts(a.dir, a.pod, a.container)?);

    let ns = |kind: &str| Some(PathBuf::from(format!("/proc/{}/ns/{kind}", a.sandbox_pid)));
    let ctx = PodContext {
        hostname,
        netns: ns("net"),
        host_network: false,
        ipcns: ns("ipc"),
        utsns: ns("uts"),
        pidns: a.target_pid.map(|pid| PathBuf::from(format!("/proc/{pid}/ns/pid"))),
        mounts,
        cgroups_path: crate::shim::cgroup::cgroup_path(
            a.pod.metadata.uid.as_deref().unwrap_or_default(),
            &a.container.name,
        ),
    };
    let tty = a.container.tty.unwrap_or(false);
    let mut spec = crate::runtime_spec::runtime_spec(a.container, &process, rootfs, &ctx, tty)?;
    // The pod's seccompProfile, as the kubelet resolves it; a profile that cannot be loaded fails
    // the container (CreateContainerConfigError) rather than running it unfiltered.
    let caps = crate::runtime_spec::capabilities(a.container)?;
    let filter = crate::seccomp::filter_for(
        a.seccomp,
        spec_.security_context.as_ref(),
        a.container,
        &caps,
        a.image_architecture,
    )
    .map_err(|e| PrepareError::Config(e.to_string()))?;
    crate::runtime_spec::set_seccomp(&mut spec, filter);
    spec.save(base.join("config.json")).map_err(|e| PrepareError::Create(format!("writing config.json: {e}")))
}

/// Bind mounts for the container's `volumeMounts`: emptyDir and the volumes the worker writes
/// (`volumes`) under the pod directory, hostPath as given (created when its type asks for it).
fn volume_mounts(dir: &PodDir, pod: &Pod, container: &Container) -> Result<Vec<BindMount>, PrepareError> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let Some(v) = volumes.iter().find(|v| v.name == m.name) else {
            return Err(PrepareError::Config(format!(
                "unable to find volume {:?} for container {:?}",
                m.name, container.name
            )));
        };
        let written = crate::agent::volumes::is_written(v);
        let source = if let Some(claim) = &v.persistent_volume_claim {
            // The worker linked it to the claim's volume (`volumes::claims`).
            let p = crate::agent::volumes::dir(dir, &v.name);
            if !p.is_dir() {
                return Err(PrepareError::Config(format!(
                    "volume {:?}: claim {:?} is not mounted",
                    v.name, claim.claim_name
                )));
            }
            p
        } else if v.empty_dir.is_some() || written {
            // emptyDir, or a volume the worker has written (ConfigMap, Secret, ...) already.
            let p = crate::agent::volumes::dir(dir, &v.name);
            std::fs::create_dir_all(&p).map_err(create("creating a volume's directory"))?;
            p
        } else if let Some(hp) = &v.host_path {
            let p = PathBuf::from(&hp.path);
            match hp.type_.as_deref().unwrap_or("") {
                "DirectoryOrCreate" => std::fs::create_dir_all(&p).map_err(create("creating a hostPath directory"))?,
                "FileOrCreate" if !p.exists() => {
                    std::fs::write(&p, b"").map_err(create("creating a hostPath file"))?;
                }
                "Directory" if !p.is_dir() => {
                    return Err(PrepareError::Config(format!(
                        "hostPath type check failed: {} is not a directory",
                        hp.path
                    )));
                }
                "File" if !p.is_file() => {
                    return Err(PrepareError::Config(format!("hostPath type check failed: {} is not a file", hp.path)));
                }
                _ => {}
            }
            p
        } else {
            return Err(PrepareError::Config(format!(
                "volume {:?}: only emptyDir, hostPath, persistentVolumeClaim, configMap, secret, downwardAPI and projected volumes are supported",
                v.name
            )));
        };
        let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) if Path::new(sub).components().all(|c| matches!(c, std::path::Component::Normal(_))) => {
                // A written volume's key is a file (through its `..data` link): bind it as it is.
                let p = source.join(sub);
                if !p.exists() {
                    std::fs::create_dir_all(&p).map_err(create("creating a subPath"))?;
                }
                p
            }
            Some(sub) => {
                return Err(PrepareError::Config(format!(
                    "invalid subPath {sub:?}: must be a relative path inside the volume"
                )));
            }
            None => source,
        };
        // The kubelet mounts what it writes read-only: a container cannot change its ConfigMap.
        let claim_read_only = v.persistent_volume_claim.as_ref().and_then(|c| c.read_only).unwrap_or(false);
        let readonly = m.read_only.unwrap_or(false) || written || claim_read_only;
        out.push(BindMount { source, destination: m.mount_path.clone(), readonly });
    }
    Ok(out)
}

/// Unmount every container root filesystem of the pod (lazily: a process still holding one
/// must not keep the pod from going away).
pub fn unmount_all(dir: &PodDir) {
    let containers = dir.root().join("containers");
    let prefix = containers.display().to_string();
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    let mut targets: Vec<&str> =
        info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|t| t.starts_with(&prefix)).collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        if let Err(e) = nix::mount::umount2(t, MntFlags::MNT_DETACH) {
            tracing::warn!(target = t, error = %e, "unmounting a container root filesystem");
        }
    }
}

/// Unmount one attempt's root filesystem (before the next attempt gets a fresh one).
pub fn unmount_attempt(dir: &PodDir, container: &str, attempt: u32) {
    let rootfs = dir.attempt(container, attempt).join("rootfs");
    if skiff_image::overlay::is_mount_point(&rootfs) {
        let _ = nix::mount::umount2(&rootfs, MntFlags::MNT_DETACH);
    }
    let _ = std::fs::remove_dir_all(dir.attempt(container, attempt).join("upper"));
    let _ = std::fs::remove_dir_all(dir.attempt(container, attempt).join("work"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec, Volume, VolumeMount};

    #[test]
    fn volume_mounts_resolve_empty_dirs_and_report_missing_volumes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = PodDir::new(tmp.path(), "u1");
        let container = Container {
            name: "c".into(),
            volume_mounts: Some(vec![VolumeMount {
                name: "data".into(),
                mount_path: "/data".into(),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let mut pod = Pod { spec: Some(PodSpec::default()), ..Default::default() };
        let err = volume_mounts(&dir, &pod, &container).expect_err("missing volume");
        assert_eq!(err.reason(), WaitingReason::CreateContainerConfigError);
        assert!(err.to_string().contains("unable to find volume \"data\""), "{err}");

        pod.spec = Some(PodSpec {
            volumes: Some(vec![Volume {
                name: "data".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let mounts = volume_mounts(&dir, &pod, &container).expect("mounts");
        assert_eq!(mounts[0].destination, "/data");
        assert!(mounts[0].source.is_dir());
    }

    #[test]
    fn an_image_without_layers_cannot_be_mounted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = PrepareError::Overlay(skiff_image::overlay::mount_writable(&[], tmp.path()).expect_err("no layers"));
        assert_eq!(e.to_string(), "mounting the root filesystem: the image has no layers");
        assert_eq!(e.reason(), WaitingReason::CreateContainerError);
    }

    #[test]
    fn etc_files_name_the_pod() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = PodDir::new(tmp.path(), "u1");
        let pod: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "web", "namespace": "shop"}})).expect("pod");
        let dns = ClusterDnsConfig { ip: std::net::Ipv4Addr::new(10, 43, 0, 10), domain: "cluster.local".into() };
        write_etc_files(&dir, &pod, &[std::net::Ipv4Addr::new(10, 42, 0, 5).into()], &dns).expect("write");
        let hosts = std::fs::read_to_string(dir.etc().join("hosts")).expect("hosts");
        assert!(hosts.contains("10.42.0.5\tweb\n"));
        assert_eq!(std::fs::read_to_string(dir.etc().join("hostname")).expect("hostname"), "web\n");
        let resolv = std::fs::read_to_string(dir.etc().join("resolv.conf")).expect("resolv.conf");
        assert!(resolv.starts_with("search shop.svc.cluster.local svc.cluster.local cluster.local"), "{resolv}");
        assert!(resolv.contains("nameserver 10.43.0.10\noptions ndots:5\n"), "{resolv}");
    }
}
