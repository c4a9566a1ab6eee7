//! The authorizer chain as kube-apiserver builds it (`pkg/kubeapiserver/authorizer`): the
//! privileged-group authorizer first (`system:masters` may do anything, so the API server's own
//! loopback client never depends on RBAC objects), then the modes of `--authorization-mode` in
//! the order given (`options/authorization.go` validates the list). The first Allow or Deny
//! wins; a request that no authorizer allows is forbidden, with the reasons of those that had
//! none joined by newlines (`union.New`).

use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::rbac::v1::PolicyRule;

pub use crate::auth::decision::{Decision, Verdict};
use crate::auth::node::NodeAuthorizer;
use crate::auth::node_graph::Graph;
use crate::auth::rbac::{Authorizer, RulesReview};
use crate::auth::request::Attributes;
use crate::auth::rules::{policy_rule, url_rule};
use crate::auth::user::{SYSTEM_PRIVILEGED_GROUP, UserInfo};
use crate::auth::{aggregate_messages, quote, quote_list};

/// One authorizer of `--authorization-mode` (upstream's `authzmodes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    /// NoOpinion for everything, saying so.
    AlwaysDeny,
    Node,
    Rbac,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::AlwaysAllow => "AlwaysAllow",
            Mode::AlwaysDeny => "AlwaysDeny",
            Mode::Node => "Node",
            Mode::Rbac => "RBAC",
        }
    }
}

/// Upstream's modes that need a file skiff has no flag for (so they never validate).
const ABAC: &str = "ABAC";
const WEBHOOK: &str = "Webhook";

/// How many modes a list can hold: each at most once.
const MAX_MODES: usize = 4;

/// The ordered, validated `--authorization-mode` list (held inline: it is a flag's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    /// The first `len` are the list; the rest are filler.
    modes: [Mode; MAX_MODES],
    len: u8,
}

/// Why an `--authorization-mode` list is refused, in upstream's words (aggregated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModesError(String);

impl Default for Modes {
    /// `Node,RBAC`: kube-apiserver's usual production setting.
    fn default() -> Self {
        Modes::new(&[Mode::Node, Mode::Rbac])
    }
}

impl Modes {
    /// The first four of `list` (a valid list has no more: each mode at most once).
    pub fn new(list: &[Mode]) -> Self {
        let mut modes = [Mode::AlwaysDeny; MAX_MODES];
        let len = list.len().min(MAX_MODES);
        modes[..len].copy_from_slice(&list[..len]);
        Modes { modes, len: len as u8 }
    }

    /// The modes, in order.
    pub fn list(&self) -> &[Mode] {
        &self.modes[..usize::from(self.len)]
    }

    pub fn contains(&self, mode: Mode) -> bool {
        self.list().contains(&mode)
    }

    /// Whether every request is allowed before anything is asked: AlwaysAllow first.
    pub fn allows_everything(&self) -> bool {
        self.list().first() == Some(&Mode::AlwaysAllow)
    }
}

impl FromStr for Modes {
    type Err = ModesError;

    /// A comma-separated list, as pflag's string slice reads it, checked as upstream's
    /// `BuiltInAuthorizationOptions.Validate` checks it.
    fn from_str(s: &str) -> Result<Self, ModesError> {
        let names: Vec<String> = if s.is_empty() { vec![] } else { s.split(',').map(str::to_string).collect() };
        let mut errors = Vec::new();
        if names.is_empty() {
            errors.push("at least one authorization-mode must be passed".to_string());
        }
        let mut modes = Vec::new();
        for name in &names {
            match name.as_str() {
                "AlwaysAllow" => modes.push(Mode::AlwaysAllow),
                "AlwaysDeny" => modes.push(Mode::AlwaysDeny),
                "Node" => modes.push(Mode::Node),
                "RBAC" => modes.push(Mode::Rbac),
                ABAC => errors.push("authorization-mode ABAC's authorization policy file not passed".into()),
                WEBHOOK => errors.push("authorization-mode Webhook's authorization config file not passed".into()),
                other => errors.push(format!("authorization-mode {} is not a valid mode", quote(other))),
            }
        }
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != names.len() {
            errors.push(format!("authorization-mode {} has mode specified more than once", quote_list(&names)));
        }
        if errors.is_empty() { Ok(Modes::new(&modes)) } else { Err(ModesError(aggregate_messages(&errors))) }
    }
}

impl fmt::Display for Modes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.list().iter().map(|m| m.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// What the chain's authorizers decide from: RBAC's snapshot, and the Node authorizer with
/// its graph.
#[derive(Clone, Copy)]
pub struct Authorizers<'a> {
    pub rbac: &'a Authorizer,
    pub node: &'a NodeAuthorizer,
    pub graph: &'a Graph,
}

fn allow() -> Verdict {
    Verdict { decision: Decision::Allow, reason: String::new() }
}

/// The privileged group, then the `modes` in order.
pub fn authorize_with(modes: &Modes, authorizers: Authorizers<'_>, attrs: &Attributes) -> Verdict {
    if attrs.user.in_group(SYSTEM_PRIVILEGED_GROUP) {
        return allow();
    }
    let mut reasons = Vec::new();
    for mode in modes.list() {
        let verdict = match mode {
            Mode::AlwaysAllow => allow(),
            Mode::AlwaysDeny => Verdict { decision: Decision::NoOpinion, reason: "Everything is forbidden.".into() },
            Mode::Node => authorizers.node.authorize(authorizers.graph, attrs),
            Mode::Rbac => authorizers.rbac.authorize(attrs),
        };
        if verdict.decision != Decision::NoOpinion {
            return verdict;
        }
        if !verdict.reason.is_empty() {
            reasons.push(verdict.reason);
        }
    }
    Verdict { decision: Decision::NoOpinion, reason: reasons.join("\n") }
}

/// The privileged group, then RBAC: the chain the RBAC and CSR admission checks ask.
pub fn authorize(rbac: &Authorizer, attrs: &Attributes) -> Verdict {
    if attrs.user.in_group(SYSTEM_PRIVILEGED_GROUP) {
        return allow();
    }
    rbac.authorize(attrs)
}

/// Everything, as a rule: what the privileged group and AlwaysAllow report.
fn all_rules() -> Vec<PolicyRule> {
    vec![policy_rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])]
}

/// `SelfSubjectRulesReview`'s answer: each authorizer's rules in the chain's order (upstream's
/// union of rule resolvers), incomplete when one cannot enumerate them (a node's).
pub fn rules_for(modes: &Modes, authorizers: Authorizers<'_>, user: &UserInfo, namespace: &str) -> RulesReview {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut incomplete = false;
    if user.in_group(SYSTEM_PRIVILEGED_GROUP) {
        rules.extend(all_rules());
    }
    for mode in modes.list() {
        match mode {
            Mode::AlwaysAllow => rules.extend(all_rules()),
            Mode::AlwaysDeny => {}
            Mode::Node => {
                if let Err(e) = authorizers.node.rules_for(user) {
                    incomplete = true;
                    errors.push(e.to_string());
                }
            }
            Mode::Rbac => {
                let (granted, unresolved) = authorizers.rbac.rules_with_errors(user, namespace);
                rules.extend(granted);
                errors.extend(unresolved.iter().map(ToString::to_string));
            }
        }
    }
    let mut review = RulesReview::of(rules, &errors);
    review.incomplete = incomplete;
    review
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::bootstrap::node_rules;
    use crate::auth::rbac::Snapshot;
    use crate::auth::rbac::tests::{cluster_binding, cluster_role, request, role_ref, subject};
    use crate::auth::user::{ALL_AUTHENTICATED, NODES_GROUP};

    fn parse(s: &str) -> Option<Modes> {
        s.parse::<Modes>().ok()
    }

    fn refused(s: &str) -> String {
        s.parse::<Modes>().map(|m| m.to_string()).map_or_else(|e| e.to_string(), |ok| format!("accepted: {ok}"))
    }

    #[test]
    fn modes_as_kube_apiserver_validates_them() {
        assert_eq!(parse("Node,RBAC"), Some(Modes::default()));
        assert_eq!(parse("RBAC"), Some(Modes::new(&[Mode::Rbac])));
        assert_eq!(parse("AlwaysAllow"), Some(Modes::new(&[Mode::AlwaysAllow])));
        assert_eq!(parse("RBAC,Node,AlwaysDeny").map(|m| m.to_string()), Some("RBAC,Node,AlwaysDeny".into()));
        assert_eq!(parse("Node"), Some(Modes::new(&[Mode::Node])), "upstream accepts Node alone");
        assert_eq!(refused(""), "at least one authorization-mode must be passed");
        assert_eq!(refused("rbac"), r#"authorization-mode "rbac" is not a valid mode"#);
        assert_eq!(refused("Node, RBAC"), r#"authorization-mode " RBAC" is not a valid mode"#);
        assert_eq!(refused("RBAC,RBAC"), r#"authorization-mode ["RBAC" "RBAC"] has mode specified more than once"#);
        assert_eq!(refused("ABAC"), "authorization-mode ABAC's authorization policy file not passed");
        assert_eq!(
            refused("Webhook,Foo"),
            r#"[authorization-mode Webhook's authorization config file not passed, authorization-mode "Foo" is not a valid mode]"#
        );
        assert!(Modes::new(&[Mode::AlwaysAllow, Mode::Rbac]).allows_everything());
        assert!(!Modes::default().allows_everything());
    }

    fn world() -> (Authorizer, NodeAuthorizer, Graph) {
        let rbac = Authorizer::new(Snapshot {
            cluster_roles: vec![cluster_role("secret-reader", vec![policy_rule(&["get"], &[""], &["secrets"])])],
            cluster_role_bindings: vec![cluster_binding(
                "n2-secrets",
                role_ref("ClusterRole", "secret-reader"),
                vec![subject("User", "system:node:n2", "")],
            )],
            ..Default::default()
        });
        (rbac, NodeAuthorizer::new(node_rules()), Graph::default())
    }

    #[test]
    fn masters_then_each_mode_in_order() {
        let (rbac, node, graph) = world();
        let a = Authorizers { rbac: &rbac, node: &node, graph: &graph };
        let chain = Modes::default();
        let admin = UserInfo::new("admin", &["system:masters", ALL_AUTHENTICATED]);
        assert_eq!(
            authorize_with(
                &chain,
                a,
                &request(&admin, "escalate", "rbac.authorization.k8s.io", "clusterroles", "", "x")
            ),
            allow()
        );
        // the group must be held, not named
        let named = UserInfo::new("system:masters", &[]);
        assert!(!authorize_with(&chain, a, &request(&named, "get", "", "pods", "default", "web")).allowed());

        // The Node authorizer's reason is kept when RBAC has none; RBAC may still allow.
        let n1 = UserInfo::new("system:node:n1", &[NODES_GROUP, ALL_AUTHENTICATED]);
        let v = authorize_with(&chain, a, &request(&n1, "get", "", "secrets", "shop", "tls"));
        assert_eq!(
            v,
            Verdict {
                decision: Decision::NoOpinion,
                reason: "no relationship found between node 'n1' and this object".into()
            }
        );
        let n2 = UserInfo::new("system:node:n2", &[NODES_GROUP, ALL_AUTHENTICATED]);
        let v = authorize_with(&chain, a, &request(&n2, "get", "", "secrets", "shop", "tls"));
        assert!(v.allowed() && v.reason.starts_with("RBAC: allowed by"), "{v:?}");
        // Node rules alone, no RBAC.
        assert!(authorize_with(&chain, a, &request(&n1, "list", "", "services", "", "")).allowed());
        assert!(
            !authorize_with(&Modes::new(&[Mode::Rbac]), a, &request(&n1, "list", "", "services", "", "")).allowed()
        );

        // Reasons of every authorizer without an opinion, in order.
        let deny_too = Modes::new(&[Mode::Node, Mode::AlwaysDeny, Mode::Rbac]);
        let v = authorize_with(&deny_too, a, &request(&n1, "get", "", "secrets", "shop", "tls"));
        assert_eq!(v.reason, "no relationship found between node 'n1' and this object\nEverything is forbidden.");
        let jane = UserInfo::new("jane", &[ALL_AUTHENTICATED]);
        assert_eq!(
            authorize_with(&chain, a, &request(&jane, "get", "", "pods", "default", "web")),
            Verdict { decision: Decision::NoOpinion, reason: String::new() }
        );
        assert!(
            authorize_with(&Modes::new(&[Mode::AlwaysAllow]), a, &request(&jane, "delete", "", "nodes", "", "n1"))
                .allowed()
        );
        // The RBAC-only chain of the admission checks.
        assert!(authorize(&rbac, &request(&admin, "delete", "", "nodes", "", "n1")).allowed());
        assert!(!authorize(&rbac, &request(&n1, "list", "", "services", "", "")).allowed());
    }

    #[test]
    fn rules_reviews_union_every_resolver() {
        let (rbac, node, graph) = world();
        let a = Authorizers { rbac: &rbac, node: &node, graph: &graph };
        let n2 = UserInfo::new("system:node:n2", &[NODES_GROUP, ALL_AUTHENTICATED]);
        let review = rules_for(&Modes::default(), a, &n2, "shop");
        assert!(review.incomplete);
        assert_eq!(review.evaluation_error.as_deref(), Some("node authorizer does not support user rule resolution"));
        assert_eq!(review.resource_rules, vec![policy_rule(&["get"], &[""], &["secrets"])]);
        let jane = UserInfo::new("jane", &[ALL_AUTHENTICATED]);
        let review = rules_for(&Modes::default(), a, &jane, "shop");
        assert_eq!(review, RulesReview::default());
        let admin = UserInfo::new("admin", &["system:masters"]);
        let review = rules_for(&Modes::new(&[Mode::Rbac]), a, &admin, "shop");
        assert_eq!(review.resource_rules, vec![policy_rule(&["*"], &["*"], &["*"])]);
        assert_eq!(review.non_resource_rules, vec![url_rule(&["*"], &["*"])]);
        let everyone = rules_for(&Modes::new(&[Mode::AlwaysAllow]), a, &jane, "shop");
        assert_eq!(everyone.resource_rules, vec![policy_rule(&["*"], &["*"], &["*"])]);
    }
}
