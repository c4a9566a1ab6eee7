//! How the API server reaches the node that runs a pod, for what only the node has (container
//! logs now; exec, attach and port-forward next). The node agent side implements it.

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
}
