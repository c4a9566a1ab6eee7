//! The node API: how the API server reaches the node that runs a pod, for what only the node
//! has (container logs, exec, attach and port-forward, resource usage). One [`NodeLink`] trait with its request
//! and response types, one [`NodeError`] whose [`code`](NodeError::code) decides what the client
//! sees, one [`Channel`] numbering of a session's streams, and the wire codec of a node's
//! endpoint ([`wire`]).
//!
//! Who implements it: the node side (`skiff_node::link::LocalNode`, for the pods of its own
//! machine, in-process in `skiff server` and behind the endpoint of `skiff agent`), and the API
//! server's client of a remote endpoint (`skiff_apiserver::nodes::remote`). Both ends of the
//! endpoint speak [`wire`], so the two paths run the same node code.
//!
//! No knowledge of containers, images or HTTP routing here: this crate depends on neither the
//! node, the image store, the builder nor the API server.

pub mod wire;

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

/// What a node, a pod or a container uses now: CPU as a rate over the sample's window, memory
/// as the working set (what the kubelet's summary API reports and `kubectl top` shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

/// One container's usage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerUsage {
    pub name: String,
    pub usage: Usage,
}

/// The running containers of one pod, by the pod's UID.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PodUsage {
    pub uid: String,
    pub containers: Vec<ContainerUsage>,
}

/// A node's resource usage: the machine's and each pod's, measured over `window_seconds`
/// ending at `timestamp`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeUsage {
    pub timestamp: jiff::Timestamp,
    pub window_seconds: f64,
    pub node: Usage,
    pub pods: Vec<PodUsage>,
}

/// A command running in a container (or a session joined to its main process): its standard
/// streams and, at the end, its exit code. Dropping it ends the session (an exec'd command is
/// killed).
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
    async fn logs(&self, request: LogRequest) -> Result<LogStream, NodeError>;
    /// A connection to `port` on the pod's own `localhost` (inside its network namespace).
    async fn port_forward(&self, node: &str, pod_uid: &str, port: u16) -> Result<Box<dyn Tunnel>, NodeError>;
    /// Start a command in a running container of the pod.
    async fn exec(&self, request: ExecRequest) -> Result<ExecProcess, NodeError>;
    /// Join the main process of a running container: its output from now on, its stdin (if
    /// the pod keeps one open), its terminal. Its exit code is 0: the session ends with the
    /// container or the client.
    async fn attach(&self, request: ExecRequest) -> Result<ExecProcess, NodeError>;
    /// The resource usage of node `node` and its pods (`metrics.k8s.io`, `kubectl top`).
    async fn usage(&self, node: &str) -> Result<NodeUsage, NodeError>;
}

/// Any error, boxed: the node's own typed errors cross this API without it knowing their types.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a node did not serve a request. The variant says whose the failure is, and so the code
/// the client gets ([`NodeError::code`], and the conversion to [`ApiError`]); the message is the
/// node's own error, in the kubelet's words where it has some.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request cannot be served as asked: a container that is not running, a pod on another
    /// node, a port nothing listens on (400 Bad Request).
    #[error(transparent)]
    Refused(BoxError),
    /// The node failed while serving it (500 Internal Server Error).
    #[error(transparent)]
    Failed(BoxError),
    /// A remote node's answer: only its message and code cross the wire.
    #[error("{message}")]
    Remote { message: String, code: u16 },
}

impl NodeError {
    pub fn refused(e: impl Into<BoxError>) -> NodeError {
        NodeError::Refused(e.into())
    }

    pub fn failed(e: impl Into<BoxError>) -> NodeError {
        NodeError::Failed(e.into())
    }

    /// The HTTP code a client sees for it.
    pub fn code(&self) -> u16 {
        match self {
            NodeError::Refused(_) => 400,
            NodeError::Failed(_) => 500,
            NodeError::Remote { code, .. } => *code,
        }
    }
}

/// The one mapping of node failures to API errors: 400 is the client's (`BadRequest`), anything
/// else the server's (`InternalError`).
impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        let message = e.to_string();
        match e.code() {
            400 => ApiError::BadRequest(message),
            _ => ApiError::Internal(message),
        }
    }
}

/// The streams of an exec or attach session, numbered as in Kubernetes' remote-command protocol
/// (`channel.k8s.io`): the WebSocket channels to clients, the frames between the API server and
/// a node's endpoint, and the output frames from a pod's shim to an attach session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Channel {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// The session's outcome: a Status to clients; between the API server and a node, the exit
    /// code (4 bytes, big-endian).
    Error = 3,
    /// A terminal size: columns and rows (to clients, JSON; to a node, two big-endian `u16`s).
    Resize = 4,
    /// The end of stdin (to a node; WebSocket v5 clients close channel 0 instead).
    StdinEnd = 5,
}

impl Channel {
    pub const fn number(self) -> u8 {
        self as u8
    }

    pub fn from_number(n: u8) -> Option<Channel> {
        [Channel::Stdin, Channel::Stdout, Channel::Stderr, Channel::Error, Channel::Resize, Channel::StdinEnd]
            .into_iter()
            .find(|c| c.number() == n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_codes_once() {
        let refused = NodeError::refused("container c is not running");
        assert_eq!(refused.code(), 400);
        assert!(matches!(ApiError::from(refused), ApiError::BadRequest(m) if m == "container c is not running"));
        let failed = NodeError::failed(std::io::Error::other("no descriptors"));
        assert!(matches!(ApiError::from(failed), ApiError::Internal(m) if m == "no descriptors"));
        let remote = NodeError::Remote { message: "gone".into(), code: 400 };
        assert!(matches!(ApiError::from(remote), ApiError::BadRequest(_)));
    }

    #[test]
    fn channels_are_numbered_as_the_protocol_says() {
        for n in 0..6 {
            assert_eq!(Channel::from_number(n).map(Channel::number), Some(n));
        }
        assert_eq!(Channel::from_number(6), None);
        assert_eq!(Channel::Resize.number(), 4);
    }
}
