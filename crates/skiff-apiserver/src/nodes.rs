//! How the API server reaches the node that runs a pod, for what only the node has (container
//! logs, exec, attach and port-forward). The in-process node agent is one [`NodeLink`]; a node
//! agent on another machine is reached through its endpoint ([`remote`]), whose server side
//! serves each request through that machine's own local link: one code path either way.

pub mod remote;

use skiff_core::ApiError;

pub type LogStream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// A byte stream both ways (a forwarded connection).
pub trait Tunnel: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Tunnel for T {}

/// One `pods/log` request, resolved to a container run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// A connection to `port` on the pod's own `localhost` (inside its network namespace).
    async fn port_forward(&self, node: &str, pod_uid: &str, port: u16) -> Result<Box<dyn Tunnel>, ApiError>;
    /// Start a command in a running container of the pod.
    async fn exec(&self, request: ExecRequest) -> Result<ExecProcess, ApiError>;
    /// Join the main process of a running container: its output from now on, its stdin (if
    /// the pod keeps one open), its terminal. Its exit code is 0: the session ends with the
    /// container or the client.
    async fn attach(&self, request: ExecRequest) -> Result<ExecProcess, ApiError>;
}

/// The node a pod (as stored JSON) is bound to, and the link to reach it: this server's own
/// node agent, or the endpoint the node's agent published on its Node object.
pub async fn for_pod(
    state: &crate::AppState,
    pod: &serde_json::Value,
) -> Result<(String, std::sync::Arc<dyn NodeLink>), ApiError> {
    let node = pod.pointer("/spec/nodeName").and_then(serde_json::Value::as_str).unwrap_or("").to_string();
    let unreachable = |why: &str| {
        ApiError::BadRequest(format!("pod {:?} runs on node {node:?}, which {why}", skiff_core::meta::name(pod)))
    };
    if node.is_empty() {
        return Err(unreachable("is none yet: the pod is not scheduled"));
    }
    if let Some((name, link)) = &state.nodes
        && *name == node
    {
        return Ok((node, link.clone()));
    }
    let kind = skiff_core::kinds::NODES;
    let object = state.registry.get(crate::registry::ObjectRef { kind, namespace: "", name: &node }).await;
    let object = object.map_err(|_| unreachable("does not exist"))?;
    let endpoint = remote::Endpoint::of_node(&object).ok_or_else(|| unreachable("publishes no endpoint"))?;
    let link = remote::RemoteNode::new(endpoint, &state.client_identity).map_err(|e| unreachable(&e))?;
    Ok((node, std::sync::Arc::new(link)))
}
