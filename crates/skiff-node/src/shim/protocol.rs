//! What the agent, the shim and the `container-start` helper say to each other: the shim's
//! control protocol (one JSON [`Request`] line per connection on `shim.sock`, one JSON [`Reply`]
//! line), the helper's report in the bundle ([`StartResult`]), and the libcontainer id of an
//! attempt ([`container_id`]). No libcontainer here: the long-lived shim and the agent use it.

use crate::logs::LogLimits;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    /// Start attempt `attempt` of `container` from the bundle the agent prepared
    /// (`containers/<name>/<attempt>/config.json`).
    Start {
        container: String,
        attempt: u32,
        /// When its log file rotates.
        #[serde(default)]
        log: LogLimits,
        /// Keep a stdin open for attach sessions (the container's `stdin`)...
        #[serde(default)]
        stdin: bool,
        /// ...and close it when the first session that wrote to it leaves (`stdinOnce`).
        #[serde(default)]
        stdin_once: bool,
    },
    /// Join a session to the running attempt of `container`: its output from now on, and its
    /// stdin (passed with the reply) if asked and kept.
    Attach { container: String, stdin: bool },
    /// Send `signal` to the running attempt of `container`.
    Signal { container: String, signal: i32 },
    /// Kill whatever still runs, reap it, and exit.
    Shutdown,
    /// Keep this connection: after the reply, one line (`exited`) each time an attempt's exit
    /// is recorded, and end of stream when the shim is gone. The agent's worker waits on it
    /// instead of polling the pod directory.
    Watch,
}

/// The line a [`Request::Watch`] connection gets for each exit recorded.
pub const EXITED_LINE: &[u8] = b"exited\n";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The libcontainer id of one attempt (unique within the pod's state root).
pub fn container_id(container: &str, attempt: u32) -> String {
    format!("{container}-{attempt}")
}

/// How `container-start` ended, in `BUNDLE/start.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StartResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

const START_RESULT: &str = "start.json";

impl StartResult {
    /// What the helper reported for `bundle`, if it did.
    pub fn read(bundle: &Path) -> Option<StartResult> {
        serde_json::from_slice(&std::fs::read(bundle.join(START_RESULT)).ok()?).ok()
    }

    /// Report for `bundle` (atomically: the shim reads all of it or nothing).
    pub fn write(&self, bundle: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::pod_dir::write_atomic(&bundle.join(START_RESULT), &json)
    }

    /// Forget an earlier report (before a new start).
    pub fn remove(bundle: &Path) -> std::io::Result<()> {
        std::fs::remove_file(bundle.join(START_RESULT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json() {
        let req: Request = serde_json::from_str(r#"{"op":"start","container":"web","attempt":2}"#).expect("parse");
        assert!(
            matches!(req, Request::Start { ref container, attempt: 2, log, stdin: false, .. } if container == "web" && log == LogLimits::default())
        );
        assert_eq!(serde_json::to_string(&Request::Shutdown).expect("json"), r#"{"op":"shutdown"}"#);
        assert_eq!(serde_json::to_string(&Reply { error: None }).expect("json"), "{}");
    }
}
