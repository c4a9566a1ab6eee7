//! The agent's handle on a pod's shim (see `shim`): start it, find it again after a restart,
//! send it requests, and know where its namespaces are.

use crate::pod_dir::PodDir;
use crate::shim::{Reply, Request};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("starting the pod's shim: {0}")]
    Spawn(std::io::Error),
    #[error("the pod's shim did not come up: {0}")]
    NotReady(String),
    #[error("talking to the pod's shim: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Refused(String),
}

/// A shim's exit notifications (see [`Sandbox::watch`]).
pub type Exits = std::pin::Pin<Box<dyn futures::Stream<Item = ()> + Send + Sync>>;

/// A live shim.
#[derive(Debug, Clone)]
pub struct Sandbox {
    dir: PodDir,
    pid: i32,
}

impl Sandbox {
    /// Start `shim_exe shim --dir DIR --hostname NAME` and wait until it is ready.
    /// Start `shim_exe` for the pod in `dir`; `runtime_exe` is the `skiff` that starts containers.
    pub async fn spawn(
        shim_exe: &Path,
        runtime_exe: &Path,
        dir: &PodDir,
        hostname: &str,
    ) -> Result<Sandbox, SandboxError> {
        std::fs::create_dir_all(dir.root()).map_err(SandboxError::Spawn)?;
        let _ = std::fs::remove_file(dir.shim_pid_file());
        let log = std::fs::File::create(dir.shim_log()).map_err(SandboxError::Spawn)?;
        let mut child = tokio::process::Command::new(shim_exe)
            .arg("shim")
            .arg("--dir")
            .arg(dir.root())
            .arg("--hostname")
            .arg(hostname)
            .arg("--runtime")
            .arg(runtime_exe)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(SandboxError::Spawn)?;
        // The shim closes its stdout once it is ready (or when it dies): no polling.
        let mut ready = child.stdout.take().map(tokio::io::BufReader::new);
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            if let Some(r) = ready.as_mut() {
                let mut sink = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(r, &mut sink).await;
            }
        })
        .await;
        if let Some(pid) = dir.shim_pid() {
            // The shim outlives us; tokio reaps it if it ever exits while we run.
            drop(child);
            return Ok(Sandbox { dir: dir.clone(), pid });
        }
        if waited.is_err() {
            let _ = child.start_kill();
            return Err(SandboxError::NotReady("timed out".into()));
        }
        let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
        let log = std::fs::read_to_string(dir.shim_log()).unwrap_or_default();
        Err(SandboxError::NotReady(format!("{status}: {}", log.trim())))
    }

    /// The pod's shim if it still runs (after an agent restart).
    pub fn adopt(dir: &PodDir) -> Option<Sandbox> {
        let pid = dir.shim_pid()?;
        is_shim_of(pid, dir).then(|| Sandbox { dir: dir.clone(), pid })
    }

    /// A handle on no process, for the worker's fakes.
    #[cfg(test)]
    pub fn fake(dir: &PodDir, pid: i32) -> Sandbox {
        Sandbox { dir: dir.clone(), pid }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `/proc/<shim>/ns/<kind>`: the pod's net, ipc and uts namespaces.
    pub fn namespace(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.pid))
    }

    pub fn alive(&self) -> bool {
        is_shim_of(self.pid, &self.dir)
    }

    pub async fn request(&self, req: &Request) -> Result<(), SandboxError> {
        self.connect(req).await.map(drop)
    }

    /// The shim's exits as they are recorded: one item per exit, the end when the shim is gone.
    pub async fn watch(&self) -> Result<Exits, SandboxError> {
        let conn = self.connect(&Request::Watch).await?;
        Ok(Box::pin(futures::stream::unfold(conn, |mut conn| async move {
            let mut line = String::new();
            match conn.read_line(&mut line).await {
                Ok(n) if n > 0 => Some(((), conn)),
                _ => None,
            }
        })))
    }

    /// Send `req` on a connection of its own and read the reply; the connection, for what follows.
    async fn connect(&self, req: &Request) -> Result<BufReader<tokio::net::UnixStream>, SandboxError> {
        let mut conn = tokio::net::UnixStream::connect(self.dir.socket()).await?;
        let mut line = serde_json::to_string(req).map_err(std::io::Error::other)?;
        line.push('\n');
        conn.write_all(line.as_bytes()).await?;
        // Replies and watch lines are a few bytes each: no 8 KiB buffer per pod and watch.
        let mut conn = BufReader::with_capacity(64, conn);
        let mut reply = String::new();
        tokio::time::timeout(Duration::from_secs(60), conn.read_line(&mut reply))
            .await
            .map_err(|_| SandboxError::Io(std::io::Error::other("no reply in 60 s")))??;
        let reply: Reply = serde_json::from_str(&reply).map_err(std::io::Error::other)?;
        match reply.error {
            Some(e) => Err(SandboxError::Refused(e)),
            None => Ok(conn),
        }
    }

    /// Ask the shim to kill everything and exit; wait (bounded) until it has.
    pub async fn shutdown(&self) {
        if let Err(e) = self.request(&Request::Shutdown).await {
            tracing::debug!(error = %e, "shim shutdown request");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.alive() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Whether `pid` is the shim of `dir` (its command line names the directory; a reused pid or a
/// reaped zombie does not).
fn is_shim_of(pid: i32, dir: &PodDir) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == dir.root().as_os_str().as_encoded_bytes()))
}
