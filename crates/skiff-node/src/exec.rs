//! `kubectl exec` on this node: the command runs through a short-lived `container-exec` helper
//! (libcontainer's tenant process, see `runtime.rs`) whose exit code is the command's. With a TTY
//! the helper's standard streams are the slave of a pseudo-terminal whose master stays here:
//! what the user types goes to the master, what the command prints comes from it, and resize
//! messages set its window size.
//!
//! The helper also gets a *lifeline*: the read end of a pipe whose write end lives in the
//! [`ExecChild`]. When the session ends early (the client vanished) or the agent itself dies, the
//! lifeline closes and the helper kills the command, so nothing is left running in the container.
//! Signalling the helper instead would race with libcontainer's forks while it starts the command.

use crate::pod_dir::PodDir;
use futures::future::BoxFuture;
use std::os::fd::OwnedFd;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncWrite};

/// A command running in a container.
pub struct ExecChild {
    pub stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn AsyncRead + Send + Unpin>,
    pub exit: BoxFuture<'static, i32>,
    /// With a TTY: set the terminal's size (columns, rows).
    pub resize: Option<Box<dyn Fn(u16, u16) + Send + Sync>>,
}

/// Start `command` in the running attempt of `container` of the pod in `dir`, through
/// `runtime_exe container-exec`.
pub fn spawn(
    runtime_exe: &Path,
    dir: &PodDir,
    container: &str,
    command: &[String],
    stdin: bool,
    tty: bool,
) -> Result<ExecChild, String> {
    let running = dir
        .attempts(container)
        .last()
        .copied()
        .filter(|a| dir.started(container, *a).is_some() && dir.exited(container, *a).is_none())
        .ok_or_else(|| format!("container {container} is not running"))?;
    let mut cmd = tokio::process::Command::new(runtime_exe);
    cmd.arg("container-exec")
        .arg("--state")
        .arg(dir.runtime_state())
        .arg("--id")
        .arg(crate::shim::container_id(container, running))
        .arg("--bundle")
        .arg(dir.attempt(container, running));
    if tty {
        cmd.arg("--tty");
    }
    let (lifeline, lifeline_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("creating the exec helper's lifeline: {e}"))?;
    use command_fds::{CommandFdExt, FdMapping};
    cmd.arg("--lifeline").arg(LIFELINE_FD.to_string());
    cmd.fd_mappings(vec![FdMapping { parent_fd: lifeline, child_fd: LIFELINE_FD }])
        .map_err(|e| format!("passing the exec helper's lifeline: {e}"))?;
    cmd.arg("--").args(command);
    if tty {
        return spawn_with_terminal(cmd, lifeline_write);
    }
    let piped = std::process::Stdio::piped;
    let mut child = cmd
        .stdin(if stdin { piped() } else { std::process::Stdio::null() })
        .stdout(piped())
        .stderr(piped())
        .spawn()
        .map_err(|e| format!("starting the exec helper: {e}"))?;
    let missing = || "the exec helper has no pipes".to_string();
    Ok(ExecChild {
        stdin: child.stdin.take().map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>),
        stdout: Box::new(child.stdout.take().ok_or_else(missing)?),
        stderr: Box::new(child.stderr.take().ok_or_else(missing)?),
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

fn spawn_with_terminal(mut cmd: tokio::process::Command, lifeline: OwnedFd) -> Result<ExecChild, String> {
    let pty = nix::pty::openpty(None, None).map_err(|e| format!("allocating a terminal: {e}"))?;
    let slave = |fd: &OwnedFd| fd.try_clone().map(std::process::Stdio::from).map_err(|e| e.to_string());
    let child = cmd
        .stdin(slave(&pty.slave)?)
        .stdout(slave(&pty.slave)?)
        .stderr(slave(&pty.slave)?)
        .spawn()
        .map_err(|e| format!("starting the exec helper: {e}"))?;
    // Only the helper (and the command) hold the slave now: the master reads EOF when they end.
    drop(pty.slave);
    let master = std::fs::File::from(pty.master);
    let resize_fd = master.try_clone().map_err(|e| e.to_string())?;
    let writer = master.try_clone().map_err(|e| e.to_string())?;
    Ok(ExecChild {
        stdin: Some(Box::new(tokio::fs::File::from_std(writer))),
        stdout: Box::new(tokio::fs::File::from_std(master)),
        stderr: Box::new(tokio::io::empty()),
        exit: exit_code(child, lifeline),
        resize: Some(Box::new(move |cols, rows| {
            let size = rustix::termios::Winsize { ws_col: cols, ws_row: rows, ws_xpixel: 0, ws_ypixel: 0 };
            let _ = rustix::termios::tcsetwinsize(&resize_fd, size);
        })),
    })
}
