//! Running containers with youki's `libcontainer`. libcontainer changes the calling process's
//! working directory and leaves the container init as the caller's child, so this is meant to be
//! called from a single-threaded per-pod shim that outlives the agent and reaps its children.

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::Spec;
use std::os::fd::OwnedFd;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("writing {path}: {message}")]
    Bundle { path: String, message: String },
    #[error("container {id}: {message}")]
    Container { id: String, message: String },
}

/// Where a container's standard streams go.
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Write `spec` to `bundle/config.json`, then create and start container `id` (state under
/// `state_root`). Returns the pid of the container's init; the caller must `waitpid` it.
pub fn start(
    id: &str,
    bundle: &Path,
    state_root: &Path,
    spec: &Spec,
    stdio: Stdio,
) -> Result<nix::unistd::Pid, RuntimeError> {
    let config = bundle.join("config.json");
    std::fs::create_dir_all(bundle)
        .map_err(|e| RuntimeError::Bundle { path: bundle.display().to_string(), message: e.to_string() })?;
    spec.save(&config)
        .map_err(|e| RuntimeError::Bundle { path: config.display().to_string(), message: e.to_string() })?;
    let fail =
        |e: libcontainer::error::LibcontainerError| RuntimeError::Container { id: id.into(), message: e.to_string() };
    let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(fail)?
        .with_stdout(stdio.stdout)
        .with_stderr(stdio.stderr);
    if let Some(stdin) = stdio.stdin {
        builder = builder.with_stdin(stdin);
    }
    let mut container = builder.as_init(bundle).with_systemd(false).with_detach(true).build().map_err(fail)?;
    container.start().map_err(fail)?;
    // libcontainer has its own nix version: hand the pid over as a number.
    container
        .pid()
        .map(|p| nix::unistd::Pid::from_raw(p.as_raw()))
        .ok_or_else(|| RuntimeError::Container { id: id.into(), message: "started without a pid".into() })
}

/// Remove container `id`'s state (after its init has exited and been reaped).
pub fn delete(id: &str, state_root: &Path) -> Result<(), RuntimeError> {
    let dir = state_root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    let fail =
        |e: libcontainer::error::LibcontainerError| RuntimeError::Container { id: id.into(), message: e.to_string() };
    let mut c = libcontainer::container::Container::load(dir).map_err(fail)?;
    c.delete(true).map_err(fail)
}
