//! How the API server reaches the node that runs a pod, for what only the node has (container
//! logs and port-forward now; exec and attach next). The node agent side implements it.

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

#[async_trait::async_trait]
pub trait NodeLink: Send + Sync {
    async fn logs(&self, request: LogRequest) -> Result<LogStream, ApiError>;
    /// A TCP connection to `port` on the pod's own `localhost` (inside its network namespace).
    async fn port_forward(&self, node: &str, pod_uid: &str, port: u16) -> Result<tokio::net::TcpStream, ApiError>;
}
