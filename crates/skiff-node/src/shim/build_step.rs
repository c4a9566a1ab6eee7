//! One `RUN` step of `skiff build`, as a container of this runtime: the stage's layers under an
//! overlay (its upper directory becomes the step's layer), the image's user, environment and
//! working directory, the default capabilities and masked paths of a pod container, and the
//! host's network (what `docker build` gives RUN by default: package managers can download).
//!
//! Meant for a short-lived process of its own (`skiff build-step`): libcontainer changes the
//! working directory of its caller and leaves the container's init to be reaped by it.

use crate::process::EtcFiles;
use crate::runtime_spec::{BindMount, PodContext};
use k8s_openapi::api::core::v1::Container;
use nix::mount::MntFlags;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildStepError {
    #[error("{0}")]
    Prepare(String),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error(transparent)]
    Spec(#[from] crate::runtime_spec::SpecError),
    #[error(transparent)]
    Runtime(#[from] super::runtime::RuntimeError),
    #[error(transparent)]
    Overlay(#[from] skiff_image::overlay::OverlayError),
}

fn prepare(what: &'static str) -> impl Fn(std::io::Error) -> BuildStepError {
    move |e| BuildStepError::Prepare(format!("{what}: {e}"))
}

/// Run `args` over `layers` (bottom first) with the image config `config`, the overlay's
/// directories made in `dir`; the step's output goes to this process's stdout and stderr.
/// Returns the command's exit code (128 + signal when it was killed).
pub fn run(
    layers: &[PathBuf],
    dir: &Path,
    args: &[String],
    config: &oci_spec::image::Config,
) -> Result<i32, BuildStepError> {
    for d in ["upper", "work", "rootfs"] {
        std::fs::create_dir_all(dir.join(d)).map_err(prepare("creating the step's directories"))?;
    }
    skiff_image::overlay::mount_writable(layers, dir)?;
    let rootfs = dir.join("rootfs");
    let result = run_mounted(&rootfs, dir, args, config);
    let _ = nix::mount::umount2(&rootfs, MntFlags::MNT_DETACH);
    // The runtime makes mount points the image lacked; they are not the step's doing.
    for d in ["proc", "sys", "dev"] {
        if !layers.iter().any(|l| l.join(d).exists()) {
            let _ = std::fs::remove_dir(dir.join("upper").join(d));
        }
    }
    result
}

fn run_mounted(
    rootfs: &Path,
    dir: &Path,
    args: &[String],
    config: &oci_spec::image::Config,
) -> Result<i32, BuildStepError> {
    let users = EtcFiles {
        passwd: std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default(),
        group: std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default(),
    };
    // The command as the image's entrypoint: taken literally, never `$(VAR)`-expanded as a pod's.
    let mut image = config.clone();
    image.set_entrypoint(Some(args.to_vec()));
    image.set_cmd(None);
    let container = Container { name: "build".into(), ..Default::default() };
    let process = crate::process::process("skiff-build", None, None, &container, &image, &users)?;
    // The host's name resolution, where the image has the files to mount over.
    let mounts = ["/etc/resolv.conf", "/etc/hosts"]
        .into_iter()
        .filter(|f| rootfs.join(f.trim_start_matches('/')).is_file() && Path::new(f).is_file())
        .map(|f| BindMount { source: f.into(), destination: f.into(), readonly: true })
        .collect();
    let id = format!("build-{}", std::process::id());
    let ctx = PodContext {
        hostname: "buildkitsandbox".into(),
        netns: None,
        host_network: true,
        ipcns: None,
        utsns: None,
        pidns: None,
        mounts,
        cgroups_path: format!("/skiff/build/{id}"),
    };
    let spec = crate::runtime_spec::runtime_spec(&container, &process, rootfs.to_path_buf(), &ctx, false)?;
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map_err(prepare("passing on the output"));
    let stdio = super::runtime::Stdio {
        stdin: None,
        stdout: dup(std::io::stdout().as_fd())?,
        stderr: dup(std::io::stderr().as_fd())?,
        console_socket: None,
    };
    let state = dir.join("state");
    let pid = super::runtime::start(&id, &dir.join("bundle"), &state, &spec, stdio)?;
    let code = loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => break code,
            Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(BuildStepError::Prepare(format!("waiting for the step: {e}"))),
        }
    };
    super::runtime::delete(&id, &state)?;
    super::cgroup::remove_cgroup_tree(&format!("skiff/build/{id}"));
    Ok(code)
}
