//! The authorizer chain as kube-apiserver builds it (`pkg/kubeapiserver/authorizer/config.go`):
//! the privileged-group authorizer (`system:masters` may do anything, so the API server's own
//! loopback client never depends on RBAC objects), then RBAC. The first Allow or Deny wins; a
//! request that no authorizer allows is forbidden.

pub use crate::auth::decision::{Decision, Verdict};
use crate::auth::rbac::Authorizer;
use crate::auth::request::Attributes;
use crate::auth::user::SYSTEM_PRIVILEGED_GROUP;

/// The privileged group first, then RBAC (`union.New`): reasons of authorizers without an
/// opinion are joined by newlines; the privileged group gives none.
pub fn authorize(rbac: &Authorizer, attrs: &Attributes) -> Verdict {
    if attrs.user.in_group(SYSTEM_PRIVILEGED_GROUP) {
        return Verdict { decision: Decision::Allow, reason: String::new() };
    }
    rbac.authorize(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rbac::Snapshot;
    use crate::auth::rbac::tests::request;
    use crate::auth::user::UserInfo;

    #[test]
    fn masters_may_do_anything_without_bindings() {
        let empty = Authorizer::new(Snapshot::default());
        let admin = UserInfo::new("admin", &["system:masters", "system:authenticated"]);
        let v = authorize(&empty, &request(&admin, "escalate", "rbac.authorization.k8s.io", "clusterroles", "", "x"));
        assert_eq!(v, Verdict { decision: Decision::Allow, reason: String::new() });
        let jane = UserInfo::new("jane", &["system:authenticated"]);
        let v = authorize(&empty, &request(&jane, "get", "", "pods", "default", "web"));
        assert_eq!(v, Verdict { decision: Decision::NoOpinion, reason: String::new() });
        assert!(!v.allowed());
        // the group must be held, not named
        let named = UserInfo::new("system:masters", &[]);
        assert!(!authorize(&empty, &request(&named, "get", "", "pods", "default", "web")).allowed());
    }
}
