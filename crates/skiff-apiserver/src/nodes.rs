//! How the API server reaches the node that runs a pod, for what only the node has (container
//! logs, exec, attach and port-forward). The node agent side implements it.

use skiff_core::ApiError;

pub type LogStream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// One `pods/log` request, resolved to a container run.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRequest {
    pub node: String,
    pub pod_uid: String,
    pub container: String,
    /// The run to read, as the pod status names it (`state` or `lastState` containerID).
    pub container_id: String,
    pub follow: bool,
    pub tail_lines: Option<usize>,
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
}

/// One `pods/exec` or `pods/attach` request, resolved to a container.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecRequest {
    pub node: String,
    pub pod_uid: String,
    pub container: String,
    /// The command to run; empty to attach to the container's main process.
    pub command: Vec<String>,
    pub stdin: bool,
    /// On a pseudo-terminal (stdout and stderr are then one stream).
    pub tty: bool,
}

/// A command running in a container: its standard streams and, at the end, its exit code.
pub struct ExecProcess {
    pub stdin: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    pub stdout: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    pub exit: futures::future::BoxFuture<'static, i32>,
    /// With a TTY: set its size (columns, rows).
    pub resize: Option<Box<dyn Fn(u16, u16) + Send + Sync>>,
}

#[async_trait::async_trait]
pub trait NodeLink: Send + Sync {
    async fn logs(&self, request: LogRequest) -> Result<LogStream, ApiError>;
    /// A TCP connection to `port` on the pod's own `localhost` (inside its network namespace).
    async fn port_forward(&self, node: &str, pod_uid: &str, port: u16) -> Result<tokio::net::TcpStream, ApiError>;
    /// Start a command in a running container of the pod.
    async fn exec(&self, request: ExecRequest) -> Result<ExecProcess, ApiError>;
    /// Join the main process of a running container: its output from now on, its stdin (if
    /// the pod keeps one open), its terminal. Its exit code is 0: the session ends with the
    /// container or the client.
    async fn attach(&self, request: ExecRequest) -> Result<ExecProcess, ApiError>;
}

/// The node a pod (as stored JSON) is bound to, and the link to reach it.
pub fn for_pod(
    nodes: &Option<std::sync::Arc<dyn NodeLink>>,
    pod: &serde_json::Value,
) -> Result<(String, std::sync::Arc<dyn NodeLink>), ApiError> {
    let node = pod.pointer("/spec/nodeName").and_then(serde_json::Value::as_str).unwrap_or("").to_string();
    match nodes {
        Some(link) if !node.is_empty() => Ok((node, link.clone())),
        _ => Err(ApiError::BadRequest(format!(
            "pod {:?} runs on node {node:?}, which this server cannot reach",
            skiff_core::meta::name(pod)
        ))),
    }
}
