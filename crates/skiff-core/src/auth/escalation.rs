//! Escalation prevention: nobody grants what they do not hold. Upstream's
//! `component-helpers/auth/rbac/validation/policy_comparator.go` (`Covers`),
//! `pkg/registry/rbac/validation/{rule.go,policy_compact.go}` (`ConfirmNoEscalation`,
//! `CompactRules`), `pkg/apis/rbac/v1/evaluation_helpers.go` (`CompactString`) and
//! `pkg/registry/rbac/escalation_check.go` (the `system:masters`, `escalate` and `bind`
//! exemptions the API server checks first).

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};

use crate::ApiError;
use crate::auth::rbac::Authorizer;
use crate::auth::request::{Attributes, RequestInfo};
use crate::auth::rules::{ALL, policy_rule, url_rule};
use crate::auth::user::{SYSTEM_PRIVILEGED_GROUP, UserInfo};
use crate::auth::{RBAC_GROUP, aggregate_messages, quote, quote_list};

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

fn one(s: &str) -> Option<Vec<String>> {
    Some(vec![s.to_string()])
}

/// A rule as rules with one verb, one group, one resource and at most one name each (or one
/// verb and one URL), so each is covered by a single owner rule or not at all.
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    verbs: vec![verb.clone()],
                    api_groups: one(group),
                    resources: one(resource),
                    ..Default::default()
                };
                match list(&rule.resource_names) {
                    [] => out.push(base),
                    names => out.extend(names.iter().map(|n| PolicyRule { resource_names: one(n), ..base.clone() })),
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            out.push(PolicyRule { verbs: vec![verb.clone()], non_resource_urls: one(url), ..Default::default() });
        }
    }
    out
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| set.contains(w))
}

/// Resources covered exactly, by `*`, or a subresource by `*/sub`.
fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    owner.iter().any(|r| r == ALL)
        || wanted.iter().all(|w| {
            owner.contains(w)
                || w.split_once('/').is_some_and(|(_, sub)| owner.iter().any(|r| *r == format!("*/{sub}")))
        })
}

fn urls_cover(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| owner.iter().any(|o| o == w || (o.ends_with('*') && w.starts_with(o.trim_end_matches('*')))))
}

/// Whether `owner` (any shape) covers `sub` (one of `breakdown_rule`'s).
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = owner.verbs.iter().any(|v| v == ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups =
        list(&owner.api_groups).iter().any(|g| g == ALL) || has_all(list(&owner.api_groups), list(&sub.api_groups));
    let names = match (list(&owner.resource_names), list(&sub.resource_names)) {
        ([], _) => true,
        (_, []) => false,
        (owned, wanted) => has_all(owned, wanted),
    };
    verbs
        && groups
        && resources_cover(list(&owner.resources), list(&sub.resources))
        && names
        && urls_cover(list(&owner.non_resource_urls), list(&sub.non_resource_urls))
}

/// Whether `owner` rules allow everything `servant` rules do, and the broken-down rules they
/// do not (`Covers`).
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> =
        servant.iter().flat_map(breakdown_rule).filter(|sub| !owner.iter().any(|o| rule_covers(o, sub))).collect();
    (missing.is_empty(), missing)
}

/// Rules with one group, one resource, at most one name and nothing else merged by verb
/// (`CompactRules`: the missing rules of `covers` read better so).
pub fn compact_rules(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut compacted = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let is_simple = rule.non_resource_urls.as_ref().is_none_or(Vec::is_empty)
            && list(&rule.api_groups).len() == 1
            && list(&rule.resources).len() == 1
            && list(&rule.resource_names).len() <= 1;
        if !is_simple {
            compacted.push(rule);
            continue;
        }
        let same = |r: &&mut PolicyRule| {
            r.api_groups == rule.api_groups
                && r.resources == rule.resources
                && list(&r.resource_names) == list(&rule.resource_names)
        };
        match simple.iter_mut().find(|r| same(r)) {
            Some(existing) => existing.verbs.extend(rule.verbs),
            None => simple.push(rule),
        }
    }
    compacted.extend(simple);
    compacted
}

/// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["delete"]}`: the rule as escalation
/// errors print it (`CompactString`).
pub fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    for (label, values) in [
        ("APIGroups", list(&rule.api_groups)),
        ("Resources", list(&rule.resources)),
        ("NonResourceURLs", list(&rule.non_resource_urls)),
        ("ResourceNames", list(&rule.resource_names)),
        ("Verbs", rule.verbs.as_slice()),
    ] {
        if !values.is_empty() {
            parts.push(format!("{label}:{}", quote_list(values)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

/// Why a role or binding may not be written by this user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscalationError {
    /// The rules would grant what the user does not hold.
    #[error("{0}")]
    NotHeld(NotHeld),
    /// An aggregationRule can gather anything, so setting one needs every permission.
    #[error("must have cluster-admin privileges to use the aggregationRule")]
    AggregationRule,
}

/// The missing rules, each compacted and printed once, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotHeld {
    pub user: String,
    pub groups: Vec<String>,
    pub missing: Vec<String>,
    /// Role references of the user's own bindings that did not resolve, as the API's storage
    /// words them.
    pub resolution_errors: Vec<String>,
}

impl fmt::Display for NotHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            quote(&self.user),
            quote_list(&self.groups),
            self.missing.join("\n")
        )?;
        if !self.resolution_errors.is_empty() {
            // upstream prints a slice holding one aggregate error
            write!(f, "; resolution errors: [{}]", aggregate_messages(&self.resolution_errors))?;
        }
        Ok(())
    }
}

/// Whether `user` holds every one of `rules` in `namespace` (empty for cluster-wide: a
/// ClusterRole, a ClusterRoleBinding), through their own bindings (`ConfirmNoEscalation`).
pub fn confirm_no_escalation(
    rbac: &Authorizer,
    user: &UserInfo,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<(), EscalationError> {
    let (owned, errors) = rbac.rules_with_errors(user, namespace);
    let (covered, missing) = covers(&owned, rules);
    if covered {
        return Ok(());
    }
    let missing: BTreeSet<String> = compact_rules(missing).iter().map(compact_string).collect();
    Err(EscalationError::NotHeld(NotHeld {
        user: user.name.clone(),
        groups: user.groups.clone(),
        missing: missing.into_iter().collect(),
        resolution_errors: errors.iter().map(|e| e.to_api_error().to_string()).collect(),
    }))
}

/// Creating or updating a ClusterRole with an aggregationRule requires holding `*` on
/// everything, resources and paths.
pub fn confirm_may_aggregate(rbac: &Authorizer, user: &UserInfo) -> Result<(), EscalationError> {
    let full = [policy_rule(&[ALL], &[ALL], &[ALL]), url_rule(&[ALL], &[ALL])];
    confirm_no_escalation(rbac, user, "", &full).map_err(|_| EscalationError::AggregationRule)
}

/// `system:masters` skip escalation checks: the API server's loopback client is one.
pub fn escalation_allowed(user: &UserInfo) -> bool {
    user.in_group(SYSTEM_PRIVILEGED_GROUP)
}

/// The check that exempts a Role or ClusterRole write (`resource` `roles` or `clusterroles`)
/// from escalation checks: the `escalate` verb on it.
pub fn escalate_attributes(user: &UserInfo, resource: &str, name: &str, namespace: &str) -> Attributes {
    RequestInfo {
        is_resource_request: true,
        verb: "escalate".into(),
        api_group: RBAC_GROUP.into(),
        api_version: ALL.into(),
        resource: resource.into(),
        name: name.into(),
        namespace: namespace.into(),
        ..Default::default()
    }
    .with_user(user.clone())
}

/// The check that exempts a binding from escalation checks: the `bind` verb on the role it
/// references, in the binding's namespace (empty for a ClusterRoleBinding). `None` for a kind
/// that is neither Role nor ClusterRole (never authorized).
pub fn bind_attributes(user: &UserInfo, role_ref: &RoleRef, binding_namespace: &str) -> Option<Attributes> {
    let resource = match role_ref.kind.as_str() {
        "ClusterRole" => "clusterroles",
        "Role" => "roles",
        _ => return None,
    };
    Some(
        RequestInfo {
            is_resource_request: true,
            verb: "bind".into(),
            // an absent group defaults to RBAC's, as the API defaults it
            api_group: role_ref.api_group.clone().filter(|g| !g.is_empty()).unwrap_or_else(|| RBAC_GROUP.into()),
            resource: resource.into(),
            name: role_ref.name.clone(),
            namespace: binding_namespace.into(),
            ..Default::default()
        }
        .with_user(user.clone()),
    )
}

/// The 403 for a refused write of `resource` (`roles`, `clusterroles`, `rolebindings`,
/// `clusterrolebindings`) named `name`.
pub fn escalation_forbidden(resource: &str, name: &str, err: &EscalationError) -> ApiError {
    ApiError::Forbidden(format!("{resource}.{RBAC_GROUP} {} is forbidden: {err}", quote(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::authorize::authorize;
    use crate::auth::rbac::Snapshot;
    use crate::auth::rbac::tests::{binding, cluster_binding, cluster_role, role_ref, subject};

    fn named(mut rule: PolicyRule, names: &[&str]) -> PolicyRule {
        rule.resource_names = Some(names.iter().map(|s| s.to_string()).collect());
        rule
    }

    fn covered(owner: Vec<PolicyRule>, servant: Vec<PolicyRule>) -> bool {
        covers(&owner, &servant).0
    }

    #[test]
    fn covers_as_upstream() {
        let pods_rw = policy_rule(&["get", "list", "create", "delete"], &[""], &["pods"]);
        assert!(covered(vec![pods_rw.clone()], vec![policy_rule(&["get", "delete"], &[""], &["pods"])]));
        let (ok, missing) =
            covers(std::slice::from_ref(&pods_rw), &[policy_rule(&["get", "patch"], &["", "apps"], &["pods"])]);
        assert!(!ok);
        assert_eq!(
            missing,
            vec![
                policy_rule(&["patch"], &[""], &["pods"]),
                policy_rule(&["get"], &["apps"], &["pods"]),
                policy_rule(&["patch"], &["apps"], &["pods"]),
            ]
        );
        // a resource does not cover its subresources; `*/sub` and `*` do
        assert!(!covered(vec![pods_rw.clone()], vec![policy_rule(&["get"], &[""], &["pods/log"])]));
        let any_log = policy_rule(&["get"], &[""], &["*/log"]);
        assert!(covered(vec![any_log.clone()], vec![policy_rule(&["get"], &[""], &["pods/log"])]));
        assert!(!covered(vec![any_log], vec![policy_rule(&["get"], &[""], &["pods"])]));
        let star = policy_rule(&["*"], &["*"], &["*"]);
        assert!(covered(vec![star.clone()], vec![policy_rule(&["escalate"], &["x"], &["y/z"])]));
        // names: an unnamed owner covers named requests, a named one only its names
        let one = named(policy_rule(&["get"], &[""], &["secrets"]), &["a"]);
        assert!(covered(vec![pods_rw, policy_rule(&["get"], &[""], &["secrets"])], vec![one.clone()]));
        assert!(covered(vec![one.clone()], vec![one.clone()]));
        assert!(!covered(vec![one.clone()], vec![named(policy_rule(&["get"], &[""], &["secrets"]), &["a", "b"])]));
        assert!(!covered(vec![one], vec![policy_rule(&["get"], &[""], &["secrets"])]));
        // paths
        let health = url_rule(&["get"], &["/healthz/*"]);
        assert!(covered(vec![health.clone()], vec![url_rule(&["get"], &["/healthz/etcd"])]));
        assert!(!covered(vec![health.clone()], vec![url_rule(&["get"], &["/healthz"])]));
        assert!(!covered(vec![health], vec![url_rule(&["post"], &["/healthz/etcd"])]));
        assert!(!covered(vec![star], vec![url_rule(&["get"], &["/metrics"])]));
    }

    #[test]
    fn compact_and_print() {
        let missing = covers(&[], &[policy_rule(&["get", "list", "watch"], &[""], &["pods", "secrets"])]).1;
        let compact: Vec<String> = compact_rules(missing).iter().map(compact_string).collect();
        assert_eq!(
            compact,
            [
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["get" "list" "watch"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "watch"]}"#,
            ]
        );
        let named_rules =
            covers(&[], &[named(policy_rule(&["get", "update"], &["coordination.k8s.io"], &["leases"]), &["a", "b"])])
                .1;
        let printed: Vec<String> = compact_rules(named_rules).iter().map(compact_string).collect();
        assert_eq!(
            printed,
            [
                r#"{APIGroups:["coordination.k8s.io"], Resources:["leases"], ResourceNames:["a"], Verbs:["get" "update"]}"#,
                r#"{APIGroups:["coordination.k8s.io"], Resources:["leases"], ResourceNames:["b"], Verbs:["get" "update"]}"#,
            ]
        );
        assert_eq!(
            compact_string(&url_rule(&["get"], &["/metrics"])),
            r#"{NonResourceURLs:["/metrics"], Verbs:["get"]}"#
        );
    }

    fn world() -> Authorizer {
        Authorizer::new(Snapshot {
            cluster_roles: vec![
                cluster_role(
                    "edit",
                    vec![policy_rule(&["get", "list", "watch", "create", "update"], &[""], &["pods"])],
                ),
                cluster_role("view", vec![policy_rule(&["get", "list", "watch"], &[""], &["pods"])]),
            ],
            role_bindings: vec![
                binding("team", "jane-edit", role_ref("ClusterRole", "edit"), vec![subject("User", "jane", "")]),
                binding("team", "jane-ghost", role_ref("ClusterRole", "gone"), vec![subject("User", "jane", "")]),
            ],
            cluster_role_bindings: vec![cluster_binding(
                "all-view",
                role_ref("ClusterRole", "view"),
                vec![subject("Group", "system:authenticated", "")],
            )],
            ..Default::default()
        })
    }

    #[test]
    fn no_escalation_within_what_is_held() {
        let rbac = world();
        let jane = UserInfo::new("jane", &["system:authenticated"]);
        let edit_rules = [policy_rule(&["get", "create"], &[""], &["pods"])];
        assert_eq!(confirm_no_escalation(&rbac, &jane, "team", &edit_rules), Ok(()));
        // held in "team" only: a ClusterRole with the same rules is an escalation
        let err = confirm_no_escalation(&rbac, &jane, "", &edit_rules).expect_err("cluster-wide");
        assert_eq!(
            err.to_string(),
            "user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"create\"]}"
        );
    }

    #[test]
    fn granting_cluster_admin_to_oneself_is_refused() {
        let rbac = world();
        let jane = UserInfo::new("jane", &["system:authenticated"]);
        let cluster_admin = [policy_rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])];
        let err = confirm_no_escalation(&rbac, &jane, "team", &cluster_admin).expect_err("escalation");
        // upstream's words, as `kubectl create rolebinding` shows them
        assert_eq!(
            escalation_forbidden("rolebindings", "mine", &err).to_string(),
            "rolebindings.rbac.authorization.k8s.io \"mine\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) \
             is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n\
             {NonResourceURLs:[\"*\"], Verbs:[\"*\"]}; \
             resolution errors: [clusterroles.rbac.authorization.k8s.io \"gone\" not found]"
        );
        assert_eq!(confirm_may_aggregate(&rbac, &jane), Err(EscalationError::AggregationRule));
        assert_eq!(
            escalation_forbidden("clusterroles", "agg", &EscalationError::AggregationRule).to_string(),
            "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
        );
    }

    #[test]
    fn exemptions() {
        assert!(escalation_allowed(&UserInfo::new("admin", &["system:masters"])));
        assert!(!escalation_allowed(&UserInfo::new("jane", &["system:authenticated"])));

        // `bind` on one ClusterRole in one namespace, held through a Role's rule
        let binder =
            cluster_role("binder", vec![named(policy_rule(&["bind"], &[RBAC_GROUP], &["clusterroles"]), &["admin"])]);
        let rbac = Authorizer::new(Snapshot {
            cluster_roles: vec![binder],
            role_bindings: vec![binding(
                "team",
                "b",
                role_ref("ClusterRole", "binder"),
                vec![subject("User", "jane", "")],
            )],
            ..Default::default()
        });
        let jane = UserInfo::new("jane", &[]);
        let check =
            |r: &RoleRef, ns: &str| bind_attributes(&jane, r, ns).is_some_and(|a| authorize(&rbac, &a).allowed());
        assert!(check(&role_ref("ClusterRole", "admin"), "team"));
        assert!(!check(&role_ref("ClusterRole", "admin"), "other"));
        assert!(!check(&role_ref("ClusterRole", "admin"), ""));
        assert!(!check(&role_ref("ClusterRole", "cluster-admin"), "team"));
        assert!(!check(&role_ref("Role", "admin"), "team"));
        assert!(bind_attributes(&jane, &role_ref("Other", "x"), "team").is_none());

        let esc = escalate_attributes(&jane, "roles", "r", "team");
        assert_eq!(
            (esc.request.verb.as_str(), esc.request.api_group.as_str(), esc.request.resource.as_str()),
            ("escalate", RBAC_GROUP, "roles")
        );
        assert!(!authorize(&rbac, &esc).allowed());
    }
}
