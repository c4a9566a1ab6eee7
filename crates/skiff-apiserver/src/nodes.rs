//! How the API server reaches the node that runs a pod, for what only the node has (container
//! logs, exec, attach and port-forward), through a [`NodeLink`] (the node API, `skiff_nodeapi`).
//! The in-process node agent of `skiff server` gives its own link; a node agent on another
//! machine is reached through its endpoint ([`remote`]), whose server side serves each request
//! through that machine's own local link: one code path either way.

pub mod remote;

use skiff_core::ApiError;
use skiff_nodeapi::NodeLink;

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
    let link = for_node(state, &node).await.map_err(|why| unreachable(&why.to_string()))?;
    Ok((node, link))
}

/// Why a node cannot be reached from this server.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    #[error("does not exist")]
    NoNode,
    #[error("publishes no endpoint")]
    NoEndpoint,
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
}

/// The link to node `node`: this server's own node agent, or the endpoint the node's agent
/// published on its Node object.
pub async fn for_node(state: &crate::AppState, node: &str) -> Result<std::sync::Arc<dyn NodeLink>, Unreachable> {
    if let Some((name, link)) = &state.nodes
        && *name == node
    {
        return Ok(link.clone());
    }
    let kind = skiff_core::kinds::NODES;
    let object = state.registry.get(crate::registry::ObjectRef { kind, namespace: "", name: node }).await;
    let object = object.map_err(|_| Unreachable::NoNode)?;
    let endpoint = skiff_nodeapi::wire::Endpoint::of_node(&object).ok_or(Unreachable::NoEndpoint)?;
    Ok(std::sync::Arc::new(remote::RemoteNode::new(endpoint, &state.client_identity)?))
}
