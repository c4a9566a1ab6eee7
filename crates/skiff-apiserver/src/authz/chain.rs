//! The authorizer chain of `--authorization-mode` with what its authorizers read: the RBAC
//! objects ([`RbacCache`]) and, when Node is in the chain, the node graph ([`NodeGraph`]).
//! Every request, the review APIs and impersonation ask this one chain.

use super::node_graph::NodeGraph;
use super::rbac_cache::RbacCache;
use skiff_core::auth::authorize::{authorize_with, rules_for};
use skiff_core::auth::bootstrap::node_rules;
use skiff_core::auth::{
    Attributes, Authorizers, Decision, Graph, Mode, Modes, NodeAuthorizer, RulesReview, UserInfo, Verdict,
};
use skiff_store::{Store, StoreError};
use std::sync::Arc;

pub struct Chain {
    modes: Modes,
    rbac: RbacCache,
    node: NodeAuthorizer,
    /// Followed only when the Node authorizer is in the chain.
    graph: Option<NodeGraph>,
}

impl Chain {
    /// Read what the chain's authorizers need (so the first request is decided on it) and
    /// follow it.
    pub async fn start(modes: Modes, store: Arc<dyn Store>) -> Result<Chain, StoreError> {
        // RBAC's objects are read whatever the modes: its escalation checks need them.
        let rbac = RbacCache::start(store.clone()).await?;
        let graph = match modes.contains(Mode::Node) {
            true => Some(NodeGraph::start(store).await?),
            false => None,
        };
        Ok(Chain { modes, rbac, node: NodeAuthorizer::new(node_rules()), graph })
    }

    pub fn rbac(&self) -> &RbacCache {
        &self.rbac
    }

    /// Whether every request is allowed without asking (AlwaysAllow first).
    pub fn allows_everything(&self) -> bool {
        self.modes.allows_everything()
    }

    /// Whether the Node authorizer decides, and so NodeRestriction admits, nodes' requests.
    pub fn restricts_nodes(&self) -> bool {
        self.modes.contains(Mode::Node)
    }

    /// Run `f` with the chain's authorizers as they stand; the graph is only locked when
    /// `node` asks (only a node's requests read it).
    fn with<T>(&self, node: bool, f: impl FnOnce(Authorizers<'_>) -> T) -> T {
        let rbac = self.rbac.authorizer();
        let empty = Graph::default();
        let guard = self.graph.as_ref().filter(|_| node).map(NodeGraph::read);
        let graph = guard.as_deref().unwrap_or(&empty);
        f(Authorizers { rbac: &rbac, node: &self.node, graph })
    }

    pub fn authorize(&self, attrs: &Attributes) -> Verdict {
        if self.allows_everything() {
            return Verdict { decision: Decision::Allow, reason: String::new() };
        }
        self.with(attrs.user.node_name().is_some(), |a| authorize_with(&self.modes, a, attrs))
    }

    /// `SelfSubjectRulesReview`'s answer for `user` in `namespace`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesReview {
        self.with(false, |a| rules_for(&self.modes, a, user, namespace))
    }
}
