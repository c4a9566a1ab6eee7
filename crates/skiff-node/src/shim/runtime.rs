//! Running containers with youki's `libcontainer`. libcontainer changes the calling process's
//! working directory and leaves the container init as the caller's child, so this is meant to be
//! called from a single-threaded per-pod shim that outlives the agent and reaps its children.

use super::protocol::StartResult;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Why a container could not be started or removed. `container-start` reports it as text in the
/// bundle's `start.json`, and `container-exec` on its stderr: that text is what users see.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("usage: skiff container-start --id ID --bundle DIR --state DIR [--console-socket PATH]")]
    Usage,
    #[error("writing {}: {source}", path.display())]
    BundleDir { path: PathBuf, source: std::io::Error },
    #[error("writing {}: {source}", path.display())]
    BundleConfig { path: PathBuf, source: oci_spec::OciSpecError },
    /// Boxed: libcontainer's error is large, and every `Result` of this enum would carry its size.
    #[error("container {id}: {source}")]
    Container { id: String, source: Box<libcontainer::error::LibcontainerError> },
    #[error("container {id}: started without a pid")]
    NoPid { id: String },
    /// The bundle's `config.json` (or the process written for an exec) could not be read or written.
    #[error(transparent)]
    Spec(#[from] oci_spec::OciSpecError),
    /// Encoding the outcome or an exec's process.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Duplicating a standard stream, or writing a file of the bundle.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where a container's standard streams go.
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// For a process on a terminal (`terminal: true`): the socket its master is sent to; the
    /// terminal is then its stdin, stdout and stderr.
    pub console_socket: Option<std::path::PathBuf>,
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
    std::fs::create_dir_all(bundle).map_err(|source| RuntimeError::BundleDir { path: bundle.to_path_buf(), source })?;
    spec.save(&config).map_err(|source| RuntimeError::BundleConfig { path: config.clone(), source })?;
    let fail = |e| RuntimeError::Container { id: id.into(), source: Box::new(e) };
    let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(fail)?
        .with_stdout(stdio.stdout)
        .with_stderr(stdio.stderr)
        .with_console_socket(stdio.console_socket);
    if let Some(stdin) = stdio.stdin {
        builder = builder.with_stdin(stdin);
    }
    let mut container = builder.as_init(bundle).with_systemd(false).with_detach(true).build().map_err(fail)?;
    container.start().map_err(fail)?;
    // libcontainer has its own nix version: hand the pid over as a number.
    container.pid().map(|p| nix::unistd::Pid::from_raw(p.as_raw())).ok_or_else(|| RuntimeError::NoPid { id: id.into() })
}

/// `skiff container-start --id ID --bundle DIR --state DIR [--console-socket PATH]`: start the
/// container of `DIR/config.json` with this process's stdin, stdout and stderr as its own (or
/// a terminal whose master goes to the console socket), record the outcome in
/// `DIR/start.json`, and return (the process then exits; the container's init goes to the
/// shim, the nearest subreaper). Short-lived on purpose: libcontainer's code, heap and working
/// directory changes stay out of the long-lived shim.
pub fn container_start_main(args: &[std::ffi::OsString]) -> Result<(), RuntimeError> {
    let (mut id, mut bundle, mut state, mut console_socket) = (None, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--console-socket") => console_socket = it.next().map(std::path::PathBuf::from),
            Some("--id") => id = it.next().and_then(|v| v.to_str()).map(String::from),
            Some("--bundle") => bundle = it.next().map(std::path::PathBuf::from),
            Some("--state") => state = it.next().map(std::path::PathBuf::from),
            _ => return Err(RuntimeError::Usage),
        }
    }
    let (Some(id), Some(bundle), Some(state)) = (id, bundle, state) else { return Err(RuntimeError::Usage) };
    let started = (|| -> Result<nix::unistd::Pid, RuntimeError> {
        let spec = Spec::load(bundle.join("config.json"))?;
        let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
        let stdio = Stdio {
            stdin: Some(dup(std::io::stdin().as_fd())?),
            stdout: dup(std::io::stdout().as_fd())?,
            stderr: dup(std::io::stderr().as_fd())?,
            console_socket,
        };
        start(&id, &bundle, &state, &spec, stdio)
    })();
    let result = match &started {
        Ok(pid) => StartResult { pid: Some(pid.as_raw()), error: None },
        Err(e) => {
            // The state of a failed create would stop the next attempt with the same id.
            let _ = delete(&id, &state);
            StartResult { pid: None, error: Some(e.to_string()) }
        }
    };
    result.write(&bundle)?;
    started.map(|_| ())
}

/// `skiff container-exec --state DIR --id ID --bundle DIR [--console-socket PATH] [--lifeline FD] --
/// COMMAND...`: run COMMAND in running container `id` as the container's own process runs (its
/// namespaces and cgroup: libcontainer's tenant process; its user, environment, working directory,
/// capabilities and limits: the process of the bundle's config.json with other arguments), wait
/// for it and return its exit code (128 + signal when killed).
///
/// Without a console socket the command has this process's stdin, stdout and stderr. With one,
/// it gets a terminal of its own container, whose master libcontainer sends to that socket. When
/// the pipe FD (the lifeline) reports its writer gone, the command is killed. A command that
/// cannot be started is reported on stderr and gives 127 when it does not exist, 126 otherwise,
/// as shells and other runtimes do.
pub fn container_exec_main(args: &[std::ffi::OsString]) -> i32 {
    const USAGE: &str = "usage: skiff container-exec --state DIR --id ID --bundle DIR [--console-socket PATH] \
                         [--lifeline FD] -- COMMAND...";
    let (mut id, mut state, mut bundle, mut command) = (None, None, None, Vec::new());
    let (mut console, mut lifeline) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--id") => id = it.next().and_then(|v| v.to_str()).map(String::from),
            Some("--lifeline") => lifeline = it.next().and_then(|v| v.to_str()).and_then(|v| v.parse().ok()),
            Some("--state") => state = it.next().map(std::path::PathBuf::from),
            Some("--bundle") => bundle = it.next().map(std::path::PathBuf::from),
            Some("--console-socket") => console = it.next().map(std::path::PathBuf::from),
            Some("--") => command = it.by_ref().filter_map(|v| v.to_str().map(String::from)).collect(),
            _ => {
                eprintln!("{USAGE}");
                return 126;
            }
        }
    }
    let (Some(id), Some(state), Some(bundle), false) = (id, state, bundle, command.is_empty()) else {
        eprintln!("{USAGE}");
        return 126;
    };
    let program = command[0].clone();
    let failed = |text: String| {
        eprintln!("exec {program:?} in container {id}: {text}");
        let missing = text.contains("No such file") || text.contains("not found") || text.contains("ENOENT");
        if missing { 127 } else { 126 }
    };
    // The container's process with the command's arguments, in a file of its own (libcontainer
    // reads the process to run from a file, as `runc exec --process` does).
    let process_file = bundle.join(format!("exec-{}.json", std::process::id()));
    let written = Spec::load(bundle.join("config.json")).map_err(RuntimeError::from).and_then(|spec| {
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_args(Some(command)).set_terminal(Some(console.is_some())).set_console_size(None);
        let filter = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
        if filter.is_some() && !FilteredExecutor::can_load_without_nnp(&process) {
            process.set_no_new_privileges(Some(true));
        }
        if console.is_some() {
            // As containerd gives an exec with a terminal, unless the container sets its own.
            let mut env = process.env().clone().unwrap_or_default();
            crate::process::set_default_env(&mut env, "TERM", "xterm");
            process.set_env(Some(env));
        }
        std::fs::write(&process_file, serde_json::to_vec(&process)?)?;
        Ok(filter)
    });
    let filter = match written {
        Ok(filter) => filter,
        Err(e) => return failed(e.to_string()),
    };
    use std::os::fd::AsFd;
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
    let (Ok(stdin), Ok(stdout), Ok(stderr)) =
        (dup(std::io::stdin().as_fd()), dup(std::io::stdout().as_fd()), dup(std::io::stderr().as_fd()))
    else {
        return 126;
    };
    let started = ContainerBuilder::new(id.clone(), SyscallType::default())
        .with_root_path(&state)
        .map(|b| b.with_stdin(stdin).with_stdout(stdout).with_stderr(stderr).with_console_socket(console.as_ref()))
        .map(|b| match filter {
            Some(f) => b.with_executor(FilteredExecutor(f)),
            None => b,
        })
        .and_then(|b| b.as_tenant().with_process(Some(&process_file)).with_detach(console.is_some()).build());
    let _ = std::fs::remove_file(&process_file);
    let pid = match started {
        Ok(pid) => nix::unistd::Pid::from_raw(pid.as_raw()),
        Err(e) => return failed(e.to_string()),
    };
    // Reopened through /proc rather than adopted by number: the same pipe, without unsafe code.
    let lifeline = lifeline.and_then(|fd: u32| std::fs::File::open(format!("/proc/self/fd/{fd}")).ok());
    wait_or_kill(pid, lifeline.map(OwnedFd::from))
}

/// Runs a command in a running container under the container's seccomp filter: libcontainer 0.7
/// leaves `linux.seccomp` out of the spec of such (tenant) processes, so the filter is loaded
/// here, just before the command's execve. The process has the container's capabilities by then,
/// and the kernel loads a filter only with CAP_SYS_ADMIN or no_new_privs: without the one, exec
/// sessions of a filtered container get the other (setuid programs in them do not elevate).
#[derive(Clone)]
struct FilteredExecutor(oci_spec::runtime::LinuxSeccomp);

impl FilteredExecutor {
    fn can_load_without_nnp(process: &oci_spec::runtime::Process) -> bool {
        let admin = oci_spec::runtime::Capability::SysAdmin;
        process.capabilities().as_ref().and_then(|c| c.effective().as_ref()).is_some_and(|e| e.contains(&admin))
    }
}

impl libcontainer::workload::Executor for FilteredExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), libcontainer::workload::ExecutorError> {
        libcontainer::seccomp::initialize_seccomp(&self.0)
            .map_err(|e| libcontainer::workload::ExecutorError::Other(format!("loading the seccomp filter: {e}")))?;
        libcontainer::workload::default::get_executor().exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), libcontainer::workload::ExecutorValidationError> {
        libcontainer::workload::default::get_executor().validate(spec)
    }
}

/// Wait for child `pid` and return its exit code; kill it (and its process group) first if
/// `lifeline` hangs up. The pid stays ours until reaped here, so the kill cannot hit another process.
fn wait_or_kill(pid: nix::unistd::Pid, mut lifeline: Option<OwnedFd>) -> i32 {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let pidfd = rustix::process::Pid::from_raw(pid.as_raw())
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    loop {
        // With nothing to watch besides the command, block until it ends.
        let watching = pidfd.is_some() && lifeline.is_some();
        match waitpid(pid, watching.then_some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 126,
        }
        let (Some(pidfd), Some(line)) = (&pidfd, &lifeline) else { continue };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN), PollFd::new(line.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        if fds[1].any().unwrap_or(false) {
            tracing::debug!(%pid, "exec: the session is gone, killing the command");
            use nix::sys::signal::{Signal, kill, killpg};
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = kill(pid, Signal::SIGKILL);
            lifeline = None;
        }
    }
}

/// Remove container `id`'s state (after its init has exited and been reaped).
pub fn delete(id: &str, state_root: &Path) -> Result<(), RuntimeError> {
    let dir = state_root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    let fail = |e| RuntimeError::Container { id: id.into(), source: Box::new(e) };
    let mut c = libcontainer::container::Container::load(dir).map_err(fail)?;
    c.delete(true).map_err(fail)
}
