//! A command in a running container of this node (`kubectl exec`, exec probes and hooks): it
//! runs through a short-lived `container-exec` helper (libcontainer's tenant process, see
//! `shim::runtime`) whose exit code is the command's.
//!
//! With a TTY the command gets a pseudo-terminal of its own container (from the container's
//! devpts, as its controlling terminal: job control and Ctrl-C work). libcontainer hands the
//! terminal's master to a *console socket*, which this side listens on: what the user types goes
//! to the master, what the command prints comes from it, and resize messages set its size.
//!
//! The helper also gets a *lifeline*: the read end of a pipe whose write end lives in the
//! [`ExecProcess`]'s exit future. When the session ends early (the client vanished) or the agent itself dies, the
//! lifeline closes and the helper kills the command, so nothing is left running in the container.
//! Signalling the helper instead would race with libcontainer's forks while it starts the command.

use crate::pod_dir::PodDir;
use futures::future::BoxFuture;
use skiff_nodeapi::ExecProcess;
use std::os::fd::OwnedFd;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncWrite};

/// Why an exec session could not start; the API server answers the client with this text
/// (and, by `link::LinkError`, a code: only a container that is not running is the client's).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("creating the exec helper's lifeline: {0}")]
    Lifeline(#[source] rustix::io::Errno),
    #[error("passing the exec helper's lifeline: {0}")]
    PassLifeline(#[source] command_fds::FdMappingCollision),
    #[error("starting the exec helper: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the exec helper has no pipes")]
    NoPipes,
    #[error("listening on {}: {source}", path.display())]
    ConsoleSocket { path: std::path::PathBuf, source: std::io::Error },
    /// Copying the terminal's master.
    #[error(transparent)]
    Io(std::io::Error),
}

/// Start `command` in the running attempt of `container` of the pod in `dir`, through
/// `runtime_exe container-exec`.
pub async fn spawn(
    runtime_exe: &Path,
    dir: &PodDir,
    container: &str,
    command: &[String],
    stdin: bool,
    tty: bool,
) -> Result<ExecProcess, ExecError> {
    let running = dir
        .attempts(container)
        .last()
        .copied()
        .filter(|a| dir.started(container, *a).is_some() && dir.exited(container, *a).is_none())
        .ok_or_else(|| ExecError::NotRunning(container.to_string()))?;
    let mut cmd = tokio::process::Command::new(runtime_exe);
    cmd.arg("container-exec")
        .arg("--state")
        .arg(dir.runtime_state())
        .arg("--id")
        .arg(crate::shim::container_id(container, running))
        .arg("--bundle")
        .arg(dir.attempt(container, running));
    let (lifeline, lifeline_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(ExecError::Lifeline)?;
    use command_fds::{CommandFdExt, FdMapping};
    cmd.arg("--lifeline").arg(LIFELINE_FD.to_string());
    cmd.fd_mappings(vec![FdMapping { parent_fd: lifeline, child_fd: LIFELINE_FD }]).map_err(ExecError::PassLifeline)?;
    if tty {
        return spawn_with_terminal(cmd, command, dir, lifeline_write).await;
    }
    cmd.arg("--").args(command);
    let piped = std::process::Stdio::piped;
    let mut child = cmd
        .stdin(if stdin { piped() } else { std::process::Stdio::null() })
        .stdout(piped())
        .stderr(piped())
        .spawn()
        .map_err(ExecError::Spawn)?;
    Ok(ExecProcess {
        stdin: child.stdin.take().map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>),
        stdout: Box::new(child.stdout.take().ok_or(ExecError::NoPipes)?),
        stderr: Box::new(child.stderr.take().ok_or(ExecError::NoPipes)?),
        exit: exit_code(child, lifeline_write),
        resize: None,
    })
}

/// Where the helper finds its lifeline.
const LIFELINE_FD: i32 = 3;

/// The helper's exit code, holding the lifeline until then: dropping this future before the end
/// closes it, and the helper kills the command. (An abandoned helper is reaped by tokio.)
fn exit_code(mut child: tokio::process::Child, lifeline: OwnedFd) -> BoxFuture<'static, i32> {
    Box::pin(async move {
        let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(126);
        drop(lifeline);
        code
    })
}

/// The console sockets of this agent's exec sessions are told apart by number.
static CONSOLE_SOCKETS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn spawn_with_terminal(
    mut cmd: tokio::process::Command,
    command: &[String],
    dir: &PodDir,
    lifeline: OwnedFd,
) -> Result<ExecProcess, ExecError> {
    let n = CONSOLE_SOCKETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.root().join(format!("exec-{n}.console"));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|source| ExecError::ConsoleSocket { path: path.clone(), source })?;
    let _remove = RemoveOnDrop(path.clone());
    let null = std::process::Stdio::null;
    let mut child = cmd
        .arg("--console-socket")
        .arg(&path)
        .arg("--")
        .args(command)
        .stdin(null())
        .stdout(null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(ExecError::Spawn)?;
    // The helper's own messages (a command that cannot start) go to the user's terminal too.
    let helper_stderr: Box<dyn AsyncRead + Send + Unpin> = match child.stderr.take() {
        Some(e) => Box::new(e),
        None => Box::new(tokio::io::empty()),
    };
    // The helper connects before it starts the command: once it has ended, a connection that
    // came is already queued.
    use futures::FutureExt;
    let accepted = tokio::select! {
        biased;
        accepted = listener.accept() => accepted.ok(),
        _ = child.wait() => listener.accept().now_or_never().and_then(Result::ok),
    };
    let master = match accepted {
        Some((socket, _)) => receive_terminal(socket).await,
        None => None,
    };
    let Some(master) = master else {
        return Ok(ExecProcess {
            stdin: None,
            stdout: Box::new(tokio::io::empty()),
            stderr: helper_stderr,
            exit: exit_code(child, lifeline),
            resize: None,
        });
    };
    let master = std::fs::File::from(master);
    let resize_fd = master.try_clone().map_err(ExecError::Io)?;
    let writer = master.try_clone().map_err(ExecError::Io)?;
    Ok(ExecProcess {
        stdin: Some(Box::new(tokio::fs::File::from_std(writer))),
        stdout: Box::new(tokio::fs::File::from_std(master)),
        stderr: helper_stderr,
        exit: exit_code(child, lifeline),
        resize: Some(resizer(resize_fd)),
    })
}

/// Sets the size (columns, rows) of the terminal whose master is `master`.
pub fn resizer(master: std::fs::File) -> Box<dyn Fn(u16, u16) + Send + Sync> {
    Box::new(move |cols, rows| {
        let size = rustix::termios::Winsize { ws_col: cols, ws_row: rows, ws_xpixel: 0, ws_ypixel: 0 };
        let _ = rustix::termios::tcsetwinsize(&master, size);
    })
}

/// The terminal master libcontainer sends over the console socket (none if the command failed
/// before its terminal was made).
async fn receive_terminal(socket: tokio::net::UnixStream) -> Option<OwnedFd> {
    let socket = socket.into_std().ok()?;
    socket.set_nonblocking(false).ok()?;
    let received = tokio::task::spawn_blocking(move || crate::shim::fdpass::receive(&socket, 256));
    received.await.ok()?.ok()?.1
}

/// Removes a file when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
