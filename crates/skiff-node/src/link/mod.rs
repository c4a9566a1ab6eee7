//! The node side of the node API (`skiff_nodeapi`): [`LocalNode`] serves logs, exec, attach and
//! port-forward for the pods of this machine through their pod directories; the API server of
//! `skiff server` holds it in-process, and `skiff agent` serves it on its endpoint
//! ([`endpoint`]) to an API server elsewhere. `exec` runs a command through the short-lived
//! `container-exec` helper, `attach` joins a session to a container's main process through its
//! shim, `usage` samples the pods' cgroups. [`LinkError`] is every way these fail, and its conversion to `NodeError` is the one
//! place that says which failures are the client's (400) and which the node's (500).

pub(crate) mod attach;
pub mod endpoint;
pub(crate) mod usage;

use crate::exec;
use crate::pod_dir::PodDir;
use skiff_nodeapi::{ExecProcess, ExecRequest, LogRequest, LogStream, NodeError, NodeLink, NodeUsage, Tunnel};
use std::path::PathBuf;

/// Why the node could not serve a request. The messages are what kubectl shows.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the pod runs on node {0:?}: other nodes are not reachable from this server yet")]
    OtherNode(String),
    /// A log request for a container ID that names no attempt of ours.
    #[error("container {0:?} is not available")]
    NoSuchRun(String),
    #[error("the pod's sandbox is not running")]
    NoSandbox,
    /// Nothing accepts connections on the port in the pod.
    #[error(transparent)]
    Connect(std::io::Error),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error(transparent)]
    Attach(#[from] attach::AttachError),
    /// Finding this binary (the exec helper), or making a connection usable here.
    #[error(transparent)]
    Io(std::io::Error),
    /// A blocking task did not finish.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// Whose failure it is: what names a pod, container or port that cannot be served as asked is
/// the client's; the node's own failures (descriptors, helpers, tasks) are the server's.
impl From<LinkError> for NodeError {
    fn from(e: LinkError) -> NodeError {
        let clients = match &e {
            LinkError::OtherNode(_) | LinkError::NoSuchRun(_) | LinkError::NoSandbox | LinkError::Connect(_) => true,
            LinkError::Exec(e) => matches!(e, exec::ExecError::NotRunning(_)),
            // The shim's refusal (no such container, not running) or no shim to ask (the pod
            // is gone): the client's.
            LinkError::Attach(e) => matches!(e, attach::AttachError::Refused(_) | attach::AttachError::Reach(_)),
            LinkError::Io(_) | LinkError::Task(_) => false,
        };
        if clients { NodeError::refused(e) } else { NodeError::failed(e) }
    }
}

/// Logs, exec, attach, port-forward and resource usage for the pods on this machine, through
/// their pod directories and cgroups.
pub struct LocalNode {
    pub node_name: String,
    pub pods_root: PathBuf,
    usage: usage::Sampler,
}

impl LocalNode {
    pub fn new(node_name: String, pods_root: PathBuf) -> LocalNode {
        LocalNode { node_name, pods_root, usage: usage::Sampler::default() }
    }

    /// The directory of a pod on `node`, which must be this one.
    fn pod_dir(&self, node: &str, pod_uid: &str) -> Result<PodDir, LinkError> {
        if node != self.node_name {
            return Err(LinkError::OtherNode(node.to_string()));
        }
        Ok(PodDir::new(&self.pods_root, pod_uid))
    }

    fn logs(&self, r: LogRequest) -> Result<LogStream, LinkError> {
        let dir = self.pod_dir(&r.node, &r.pod_uid)?;
        let attempt =
            crate::pod_dir::attempt_of(&r.container_id).ok_or_else(|| LinkError::NoSuchRun(r.container.clone()))?;
        let path = dir.log(&r.container, attempt);
        let container = r.container.clone();
        let finished = move || dir.exited(&container, attempt).is_some() || !dir.root().exists();
        let sel = crate::logs::Selection {
            tail_lines: r.tail_lines,
            since: r.since,
            timestamps: r.timestamps,
            limit_bytes: r.limit_bytes,
        };
        Ok(crate::logs::stream(path, sel, r.follow, finished))
    }

    async fn port_forward(&self, node: &str, pod_uid: &str, port: u16) -> Result<Box<dyn Tunnel>, LinkError> {
        let dir = self.pod_dir(node, pod_uid)?;
        let sandbox = crate::agent::sandbox::Sandbox::adopt(&dir).ok_or(LinkError::NoSandbox)?;
        let netns = sandbox.namespace("net");
        let connected = tokio::task::spawn_blocking(move || crate::net::connect_in_netns(&netns, port)).await?;
        let tcp = connected.map_err(LinkError::Connect)?;
        tcp.set_nonblocking(true).map_err(LinkError::Io)?;
        let tcp = tokio::net::TcpStream::from_std(tcp).map_err(LinkError::Io)?;
        Ok(Box::new(tcp))
    }

    async fn exec(&self, r: ExecRequest) -> Result<ExecProcess, LinkError> {
        let dir = self.pod_dir(&r.node, &r.pod_uid)?;
        let exe = std::env::current_exe().map_err(LinkError::Io)?;
        Ok(exec::spawn(&exe, &dir, &r.container, &r.command, r.stdin, r.tty).await?)
    }

    async fn attach(&self, r: ExecRequest) -> Result<ExecProcess, LinkError> {
        let dir = self.pod_dir(&r.node, &r.pod_uid)?;
        Ok(attach::attach(&dir, &r.container, r.stdin, r.tty).await?)
    }
}

#[async_trait::async_trait]
impl NodeLink for LocalNode {
    async fn logs(&self, r: LogRequest) -> Result<LogStream, NodeError> {
        Ok(LocalNode::logs(self, r)?)
    }

    async fn port_forward(&self, node: &str, pod_uid: &str, port: u16) -> Result<Box<dyn Tunnel>, NodeError> {
        Ok(LocalNode::port_forward(self, node, pod_uid, port).await?)
    }

    async fn exec(&self, r: ExecRequest) -> Result<ExecProcess, NodeError> {
        Ok(LocalNode::exec(self, r).await?)
    }

    async fn attach(&self, r: ExecRequest) -> Result<ExecProcess, NodeError> {
        Ok(LocalNode::attach(self, r).await?)
    }

    async fn usage(&self, node: &str) -> Result<NodeUsage, NodeError> {
        if node != self.node_name {
            return Err(LinkError::OtherNode(node.to_string()).into());
        }
        Ok(self.usage.usage(&self.pods_root).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_client_asked_wrongly_is_a_400_and_the_nodes_failures_a_500() {
        let code = |e: LinkError| NodeError::from(e).code();
        assert_eq!(code(LinkError::OtherNode("far".into())), 400);
        assert_eq!(code(LinkError::Exec(exec::ExecError::NotRunning("c".into()))), 400);
        assert_eq!(code(LinkError::Attach(attach::AttachError::Refused("container c is not running".into()))), 400);
        assert_eq!(code(LinkError::Exec(exec::ExecError::NoPipes)), 500);
        assert_eq!(code(LinkError::Io(std::io::Error::other("no descriptors"))), 500);
        let e = NodeError::from(LinkError::OtherNode("far".into()));
        assert_eq!(e.to_string(), "the pod runs on node \"far\": other nodes are not reachable from this server yet");
    }

    #[tokio::test]
    async fn a_pod_elsewhere_or_a_run_unknown_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let node = LocalNode::new("here".into(), root.path().to_path_buf());
        let request = |node: &str, id: &str| LogRequest {
            node: node.into(),
            pod_uid: "u".into(),
            container: "c".into(),
            container_id: id.into(),
            follow: false,
            tail_lines: None,
            since: None,
            timestamps: false,
            limit_bytes: None,
        };
        let far = NodeLink::logs(&node, request("there", "skiff://u-c-0")).await.err().expect("refused");
        assert_eq!(far.code(), 400);
        let unknown = NodeLink::logs(&node, request("here", "")).await.err().expect("refused");
        assert_eq!(unknown.to_string(), "container \"c\" is not available");
    }
}
