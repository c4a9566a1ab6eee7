//! A pod's directory on the node, DATA_DIR/pods/<uid>: the one place the agent and the pod's shim
//! share state. Everything here survives restarts of either, so re-adoption reads it back:
//!
//! ```text
//! pod.json                       namespace, name and uid (re-adoption after an agent restart)
//! shim.sock  shim.pid  shim.log  the shim's control socket, pid (written when it is ready), stderr
//! etc/{hosts,hostname,resolv.conf}
//! containers/<name>/<attempt>/   config.json, rootfs (overlay), upper, work, termination-log,
//!                                image-id, started.json and exited.json (written by the shim),
//!                                handled (the agent has counted the exit for the back-off)
//! logs/<name>/<attempt>.log      CRI-format output of each attempt
//! ```

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

// The files of an attempt's directory: only this module spells them.
const STARTED: &str = "started.json";
const EXITED: &str = "exited.json";
const HANDLED: &str = "handled";
const IMAGE_ID: &str = "image-id";
const TERMINATION_LOG: &str = "termination-log";

/// Who the directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMeta {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Written by the shim once a container attempt's init process runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub pid: i32,
    /// RFC 3339, UTC.
    pub started_at: String,
}

/// Written by the shim once it has reaped a container attempt's init process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exited {
    pub exit_code: i32,
    /// The signal that ended it, if any (exit code is then 128 + signal, as runtimes report).
    pub signal: Option<i32>,
    pub finished_at: String,
    pub oom_killed: bool,
    /// Set when the container could not be started at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
}

/// One attempt of a container, as the pod directory records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptRecord {
    pub number: u32,
    /// Written by the shim once the attempt's process runs.
    pub started: Option<Started>,
    /// Written by the shim once it has reaped the process (or failed to start it).
    pub exited: Option<Exited>,
    /// The agent has counted the exit for the back-off and told the user.
    pub handled: bool,
    /// The image the attempt ran (`repo@digest`).
    pub image_id: Option<String>,
    /// What the container wrote to its termination log.
    pub termination_message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PodDir {
    root: PathBuf,
}

impl PodDir {
    pub fn new(pods_root: &Path, uid: &str) -> Self {
        PodDir { root: pods_root.join(uid) }
    }

    pub fn at(root: PathBuf) -> Self {
        PodDir { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn meta_file(&self) -> PathBuf {
        self.root.join("pod.json")
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("shim.sock")
    }

    pub fn shim_pid_file(&self) -> PathBuf {
        self.root.join("shim.pid")
    }

    pub fn shim_log(&self) -> PathBuf {
        self.root.join("shim.log")
    }

    pub fn etc(&self) -> PathBuf {
        self.root.join("etc")
    }

    /// The libcontainer state root for this pod's containers.
    pub fn runtime_state(&self) -> PathBuf {
        self.root.join("runtime")
    }

    pub fn attempt(&self, container: &str, attempt: u32) -> PathBuf {
        self.root.join("containers").join(container).join(attempt.to_string())
    }

    /// The file an attempt's `terminationMessagePath` is bound to.
    pub fn termination_log(&self, container: &str, attempt: u32) -> PathBuf {
        self.attempt(container, attempt).join(TERMINATION_LOG)
    }

    pub fn log(&self, container: &str, attempt: u32) -> PathBuf {
        self.root.join("logs").join(container).join(format!("{attempt}.log"))
    }

    /// The attempts made so far for `container`, oldest first.
    pub fn attempts(&self, container: &str) -> Vec<u32> {
        let mut found: Vec<u32> = std::fs::read_dir(self.root.join("containers").join(container))
            .map(|entries| entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        found.sort_unstable();
        found
    }

    pub fn started(&self, container: &str, attempt: u32) -> Option<Started> {
        read_json(&self.attempt(container, attempt).join(STARTED))
    }

    pub fn exited(&self, container: &str, attempt: u32) -> Option<Exited> {
        read_json(&self.attempt(container, attempt).join(EXITED))
    }

    /// The latest two attempts of `container` and what they recorded, oldest first: all that
    /// a round's decisions and status read (the current attempt and the last state before it),
    /// so a container that restarted a hundred times costs no more to observe than a new one.
    pub fn latest_attempts(&self, container: &str) -> Vec<AttemptRecord> {
        let all = self.attempts(container);
        all[all.len().saturating_sub(2)..]
            .iter()
            .map(|&number| {
                let dir = self.attempt(container, number);
                let text = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
                AttemptRecord {
                    number,
                    started: self.started(container, number),
                    exited: self.exited(container, number),
                    handled: dir.join(HANDLED).exists(),
                    image_id: text(IMAGE_ID),
                    termination_message: text(TERMINATION_LOG).filter(|m| !m.is_empty()),
                }
            })
            .collect()
    }

    /// Note that the agent has accounted for an attempt's exit (an agent restart does not
    /// count or announce it twice).
    pub fn mark_handled(&self, container: &str, attempt: u32) -> io::Result<()> {
        std::fs::write(self.attempt(container, attempt).join(HANDLED), b"")
    }

    /// Record the image an attempt runs.
    pub fn write_image_id(&self, container: &str, attempt: u32, image_id: &str) -> io::Result<()> {
        write_atomic(&self.attempt(container, attempt).join(IMAGE_ID), image_id.as_bytes())
    }

    /// Record that an attempt's process runs (the shim, once it has started it).
    pub fn write_started(&self, container: &str, attempt: u32, started: &Started) -> io::Result<()> {
        write_json(&self.attempt(container, attempt).join(STARTED), started)
    }

    /// Record how an attempt ended: by the shim once it has reaped the process or failed to
    /// start it, or by the agent when the shim that would have written it is gone.
    pub fn write_exited(&self, container: &str, attempt: u32, exited: &Exited) -> io::Result<()> {
        write_json(&self.attempt(container, attempt).join(EXITED), exited)
    }

    /// Record who the directory belongs to (before the shim is started).
    pub fn write_meta(&self, meta: &PodMeta) -> io::Result<()> {
        write_json(&self.meta_file(), meta)
    }

    /// Record the shim's pid (by the shim itself, once it is ready).
    pub fn write_shim_pid(&self, pid: u32) -> io::Result<()> {
        write_atomic(&self.shim_pid_file(), pid.to_string().as_bytes())
    }

    pub fn shim_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.shim_pid_file()).ok()?.trim().parse().ok()
    }

    pub fn meta(&self) -> Option<PodMeta> {
        read_json(&self.meta_file())
    }
}

/// The attempt a container ID (`skiff://<pod uid>-<container>-<attempt>`) names.
pub fn attempt_of(container_id: &str) -> Option<u32> {
    container_id.rsplit_once('-')?.1.parse().ok()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Write `value` as JSON to `path` atomically (a reader sees all of it or nothing).
fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// Now, RFC 3339 in UTC (nanoseconds, as CRI log lines have them).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_and_records_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pod = PodDir::new(dir.path(), "uid-1");
        assert!(pod.attempts("web").is_empty());
        for a in [0, 2, 10] {
            std::fs::create_dir_all(pod.attempt("web", a)).expect("mkdir");
        }
        assert_eq!(pod.attempts("web"), vec![0, 2, 10]);
        let exited = Exited {
            exit_code: 137,
            signal: Some(9),
            finished_at: "2026-01-01T00:00:00Z".into(),
            oom_killed: true,
            start_error: None,
        };
        pod.write_exited("web", 2, &exited).expect("write");
        assert_eq!(pod.exited("web", 2), Some(exited));
        let started = Started { pid: 7, started_at: "2026-01-01T00:00:00Z".into() };
        pod.write_started("web", 10, &started).expect("write");
        assert_eq!(pod.started("web", 10), Some(started));
        assert_eq!(pod.exited("web", 0), None);
        assert_eq!(pod.started("web", 0), None);
        assert_eq!(attempt_of("skiff://0b1c-2d-web-server-12"), Some(12));
    }
}
