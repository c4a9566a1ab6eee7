//! Authorization as kube-apiserver decides it, as pure functions over RBAC objects: who is asking
//! (`user`), what they ask (`request`, upstream's `RequestInfoFactory`), whether a rule allows it
//! (`rules`), the RBAC authorizer over a snapshot of Roles and bindings (`rbac`), the Node
//! authorizer (`node`) over its graph of pods and what they reference (`node_graph`,
//! `pod_references`), the authorizer chain (`authorize`: `system:masters`, then the
//! `--authorization-mode` list), ClusterRole aggregation (`aggregate`), the Forbidden wording
//! (`forbidden`), escalation prevention (`escalation`) and the default roles and bindings
//! (`bootstrap`). The API server reads and stores the objects.

pub mod aggregate;
pub mod authorize;
pub mod bootstrap;
pub mod decision;
pub mod escalation;
pub mod forbidden;
pub mod node;
pub mod node_graph;
pub mod pod_references;
pub mod rbac;
pub mod request;
pub mod rules;
pub mod user;

pub use authorize::{Authorizers, Mode, Modes, ModesError, authorize, authorize_with};
pub use decision::{Decision, Verdict};
pub use node::NodeAuthorizer;
pub use node_graph::Graph;
pub use rbac::{Authorizer, RoleRefError, RulesReview, Snapshot};
pub use request::{Attributes, RequestInfo, RequestInfoError, request_info};
pub use user::UserInfo;

/// The API group of the RBAC kinds.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Go's `%q` of a string: upstream's messages quote names this way.
pub(crate) fn quote(s: &str) -> String {
    crate::field::go_quote(s)
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(crate) fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// `utilerrors.NewAggregate(errs).Error()`: one message alone, several deduplicated in
/// brackets.
pub(crate) fn aggregate_messages(messages: &[String]) -> String {
    let mut distinct: Vec<&str> = Vec::with_capacity(messages.len());
    for m in messages {
        if !distinct.contains(&m.as_str()) {
            distinct.push(m);
        }
    }
    match distinct.as_slice() {
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_go_does() {
        assert_eq!(quote("jane"), r#""jane""#);
        assert_eq!(quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\x01""#);
        assert_eq!(quote("ünï"), "\"ünï\"");
        assert_eq!(quote_list(&["a".into(), "b".into()]), r#"["a" "b"]"#);
        assert_eq!(quote_list(&[]), "[]");
    }

    #[test]
    fn aggregates_as_utilerrors_does() {
        assert_eq!(aggregate_messages(&["x".into()]), "x");
        assert_eq!(aggregate_messages(&["x".into(), "y".into(), "x".into()]), "[x, y]");
        assert_eq!(aggregate_messages(&["x".into(), "x".into()]), "x");
    }
}
