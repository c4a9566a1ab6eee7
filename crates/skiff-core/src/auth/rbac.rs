//! The RBAC authorizer over a snapshot of Roles, ClusterRoles and their bindings: upstream's
//! `plugin/pkg/auth/authorizer/rbac/rbac.go` over `pkg/registry/rbac/validation/rule.go`'s
//! `DefaultRuleResolver`. Deny by default; a binding to a missing role grants nothing and is
//! reported in the reason, never an error that allows.

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};

use crate::ApiError;
use crate::auth::decision::{Decision, Verdict};
use crate::auth::request::Attributes;
use crate::auth::rules::rule_allows;
use crate::auth::user::{UserInfo, is_service_account, service_account_username};
use crate::auth::{RBAC_GROUP, aggregate_messages, quote};

/// The RBAC objects an authorizer decides from, as read from the store.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

/// A snapshot indexed for lookups: roles by name, role bindings by namespace, and bindings by
/// the users and groups they name (a request looks only at the bindings that name its user or
/// one of its groups, however many there are).
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    role_bindings: HashMap<String, Bindings>,
    cluster_role_bindings: Bindings,
}

/// Bindings in their list order, indexed by subject.
#[derive(Debug, Clone, Default)]
struct Bindings {
    all: Vec<Binding>,
    /// Positions in `all` of the bindings naming a username (a User, or a ServiceAccount by
    /// its `system:serviceaccount:NS:NAME` username).
    by_user: HashMap<String, Vec<usize>>,
    /// Positions in `all` of the bindings naming a group.
    by_group: HashMap<String, Vec<usize>>,
}

impl Bindings {
    fn push(&mut self, binding: Binding) {
        let at = self.all.len();
        for s in &binding.subjects {
            let (index, key) = match s.kind.as_str() {
                "User" => (&mut self.by_user, s.name.clone()),
                "Group" => (&mut self.by_group, s.name.clone()),
                "ServiceAccount" => {
                    let ns = s.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(&binding.namespace);
                    if ns.is_empty() {
                        continue;
                    }
                    (&mut self.by_user, service_account_username(ns, &s.name))
                }
                _ => continue,
            };
            let positions = index.entry(key).or_default();
            if positions.last() != Some(&at) {
                positions.push(at);
            }
        }
        self.all.push(binding);
    }

    /// The bindings that may apply to `user`, in list order (as upstream walks them, so the
    /// same binding is reported as the one that allowed).
    fn for_user<'a>(&'a self, user: &UserInfo) -> impl Iterator<Item = &'a Binding> + 'a {
        let mut at: Vec<usize> = self.by_user.get(&user.name).into_iter().flatten().copied().collect();
        for g in &user.groups {
            at.extend(self.by_group.get(g).into_iter().flatten().copied());
        }
        at.sort_unstable();
        at.dedup();
        at.into_iter().map(|i| &self.all[i])
    }
}

/// What both binding kinds hold; `namespace` is empty for a ClusterRoleBinding.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

/// A role reference that resolves to no rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefError {
    /// The wording is the informer lister's (singular resource), as RBAC's reasons carry it.
    #[error("role.rbac.authorization.k8s.io {} not found", quote(.0))]
    RoleNotFound(String),
    #[error("clusterrole.rbac.authorization.k8s.io {} not found", quote(.0))]
    ClusterRoleNotFound(String),
    #[error("unsupported role reference kind: {}", quote(.0))]
    UnsupportedKind(String),
}

impl RoleRefError {
    /// The error as the API's own storage words it (plural resource): what a binding's create
    /// answers (404) when its role is missing, and what escalation checks report.
    pub fn to_api_error(&self) -> ApiError {
        let not_found = |resource: &str, name: &str| ApiError::NotFound {
            group: RBAC_GROUP.into(),
            resource: resource.into(),
            name: name.into(),
        };
        match self {
            RoleRefError::RoleNotFound(name) => not_found("roles", name),
            RoleRefError::ClusterRoleNotFound(name) => not_found("clusterroles", name),
            RoleRefError::UnsupportedKind(_) => ApiError::BadRequest(self.to_string()),
        }
    }
}

/// The binding and subject a rule reached the user through (upstream's describers: the reason
/// of an allowed request, in audit logs).
#[derive(Debug, Clone, Copy)]
pub struct RuleSource<'a> {
    binding: &'a Binding,
    subject: &'a Subject,
}

impl fmt::Display for RuleSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.binding;
        let (kind, name) = if b.namespace.is_empty() {
            ("ClusterRoleBinding", b.name.clone())
        } else {
            ("RoleBinding", format!("{}/{}", b.name, b.namespace))
        };
        let s = self.subject;
        // A service account shows as name/namespace, defaulted to the binding's.
        let subject = match (s.kind.as_str(), s.namespace.as_deref().filter(|n| !n.is_empty())) {
            ("ServiceAccount", ns) => format!("{}/{}", s.name, ns.unwrap_or(&b.namespace)),
            _ => s.name.clone(),
        };
        write!(
            f,
            "{kind} {} of {} {} to {} {}",
            quote(&name),
            b.role_ref.kind,
            quote(&b.role_ref.name),
            s.kind,
            quote(&subject)
        )
    }
}

/// One step of walking a user's rules: a rule and where it came from, or a binding that applies
/// to the user but whose role does not resolve.
pub enum Visit<'a> {
    Rule(RuleSource<'a>, &'a PolicyRule),
    Error(RoleRefError),
}

/// What `SelfSubjectRulesReview` reports: the user's rules in a namespace (cluster-wide ones
/// included), split by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesReview {
    pub resource_rules: Vec<PolicyRule>,
    pub non_resource_rules: Vec<PolicyRule>,
    /// RBAC enumerates everything it grants, so it never sets this; other authorizers (a node
    /// authorizer) may.
    pub incomplete: bool,
    /// Bindings whose roles did not resolve (`status.evaluationError`).
    pub evaluation_error: Option<String>,
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_default()
}

impl Authorizer {
    pub fn new(snapshot: Snapshot) -> Self {
        let mut a = Authorizer::default();
        for r in snapshot.roles {
            a.roles.insert((namespace_of(&r.metadata), name_of(&r.metadata)), r.rules.unwrap_or_default());
        }
        for r in snapshot.cluster_roles {
            a.cluster_roles.insert(name_of(&r.metadata), r.rules.unwrap_or_default());
        }
        for b in snapshot.role_bindings {
            let namespace = namespace_of(&b.metadata);
            // A RoleBinding without a namespace cannot be stored; never let it act cluster-wide.
            if namespace.is_empty() {
                continue;
            }
            a.role_bindings.entry(namespace.clone()).or_default().push(Binding {
                name: name_of(&b.metadata),
                namespace,
                role_ref: b.role_ref,
                subjects: b.subjects.unwrap_or_default(),
            });
        }
        for b in snapshot.cluster_role_bindings {
            a.cluster_role_bindings.push(Binding {
                name: name_of(&b.metadata),
                namespace: String::new(),
                role_ref: b.role_ref,
                subjects: b.subjects.unwrap_or_default(),
            });
        }
        a
    }

    /// The rules a binding's roleRef grants; `binding_namespace` is empty for a
    /// ClusterRoleBinding (a Role is looked up in the binding's namespace).
    pub fn role_ref_rules(&self, role_ref: &RoleRef, binding_namespace: &str) -> Result<&[PolicyRule], RoleRefError> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .get(&(binding_namespace.to_string(), role_ref.name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| RoleRefError::RoleNotFound(role_ref.name.clone())),
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(Vec::as_slice)
                .ok_or_else(|| RoleRefError::ClusterRoleNotFound(role_ref.name.clone())),
            other => Err(RoleRefError::UnsupportedKind(other.to_string())),
        }
    }

    /// Every rule that applies to `user` in `namespace` (cluster bindings first, then the
    /// namespace's bindings; none for an empty namespace), until `visit` breaks.
    pub fn visit_rules_for<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(Visit<'a>) -> ControlFlow<()>,
    ) {
        let namespaced = if namespace.is_empty() { None } else { self.role_bindings.get(namespace) };
        let bindings =
            self.cluster_role_bindings.for_user(user).chain(namespaced.into_iter().flat_map(|b| b.for_user(user)));
        for binding in bindings {
            let Some(subject) = binding.subjects.iter().find(|s| applies_to(user, s, &binding.namespace)) else {
                continue;
            };
            match self.role_ref_rules(&binding.role_ref, &binding.namespace) {
                Ok(rules) => {
                    for rule in rules {
                        if visit(Visit::Rule(RuleSource { binding, subject }, rule)).is_break() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    if visit(Visit::Error(e)).is_break() {
                        return;
                    }
                }
            }
        }
    }

    /// The user's rules in `namespace` and the role references that did not resolve
    /// (upstream's `RulesFor`).
    pub fn rules_with_errors(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<RoleRefError>) {
        let (mut rules, mut errors) = (Vec::new(), Vec::new());
        self.visit_rules_for(user, namespace, |v| {
            match v {
                Visit::Rule(_, rule) => rules.push(rule.clone()),
                Visit::Error(e) => errors.push(e),
            }
            ControlFlow::Continue(())
        });
        (rules, errors)
    }

    /// RBAC's answer alone: Allow with the binding that allowed, else NoOpinion with the
    /// unresolved role references as the reason (`RBAC: ...`; empty when there were none).
    pub fn authorize(&self, attrs: &Attributes) -> Verdict {
        let mut errors = Vec::new();
        let mut allowed = None;
        self.visit_rules_for(&attrs.user, &attrs.request.namespace, |v| match v {
            Visit::Rule(source, rule) if rule_allows(&attrs.request, rule) => {
                allowed = Some(source.to_string());
                ControlFlow::Break(())
            }
            Visit::Rule(..) => ControlFlow::Continue(()),
            Visit::Error(e) => {
                errors.push(e.to_string());
                ControlFlow::Continue(())
            }
        });
        match allowed {
            Some(source) => Verdict { decision: Decision::Allow, reason: format!("RBAC: allowed by {source}") },
            None if errors.is_empty() => Verdict { decision: Decision::NoOpinion, reason: String::new() },
            None => Verdict { decision: Decision::NoOpinion, reason: format!("RBAC: {}", aggregate_messages(&errors)) },
        }
    }

    /// `SelfSubjectRulesReview`'s answer for `user` in `namespace`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesReview {
        let (rules, errors) = self.rules_with_errors(user, namespace);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        RulesReview::of(rules, &messages)
    }
}

impl RulesReview {
    /// The review of `rules` (split into resource and non-resource rules) with the messages of
    /// what could not be evaluated (`status.evaluationError`, aggregated as upstream's union).
    pub fn of(rules: Vec<PolicyRule>, errors: &[String]) -> RulesReview {
        let mut review = RulesReview::default();
        for rule in rules {
            if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
                review.resource_rules.push(PolicyRule { non_resource_urls: None, ..rule.clone() });
            }
            if rule.non_resource_urls.as_ref().is_some_and(|u| !u.is_empty()) {
                review.non_resource_rules.push(PolicyRule {
                    verbs: rule.verbs,
                    non_resource_urls: rule.non_resource_urls,
                    ..Default::default()
                });
            }
        }
        if !errors.is_empty() {
            review.evaluation_error = Some(aggregate_messages(errors));
        }
        review
    }
}

/// Whether a binding's subject is `user` (`appliesToUser`): users by name, groups by
/// membership, service accounts by username, their namespace defaulting to the binding's.
fn applies_to(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let ns = subject.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(binding_namespace);
            !ns.is_empty() && is_service_account(ns, &subject.name, &user.name)
        }
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::auth::request::RequestInfo;
    use crate::auth::rules::{policy_rule, url_rule};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub(crate) fn meta(namespace: &str, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
            ..Default::default()
        }
    }

    pub(crate) fn subject(kind: &str, name: &str, namespace: &str) -> Subject {
        Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
            api_group: (kind != "ServiceAccount").then(|| RBAC_GROUP.to_string()),
        }
    }

    pub(crate) fn role_ref(kind: &str, name: &str) -> RoleRef {
        RoleRef { api_group: Some(RBAC_GROUP.into()), kind: kind.into(), name: name.into() }
    }

    pub(crate) fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
        Role { metadata: meta(namespace, name), rules: Some(rules) }
    }

    pub(crate) fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
        ClusterRole { metadata: meta("", name), rules: Some(rules), ..Default::default() }
    }

    pub(crate) fn binding(namespace: &str, name: &str, to: RoleRef, subjects: Vec<Subject>) -> RoleBinding {
        RoleBinding { metadata: meta(namespace, name), role_ref: to, subjects: Some(subjects) }
    }

    pub(crate) fn cluster_binding(name: &str, to: RoleRef, subjects: Vec<Subject>) -> ClusterRoleBinding {
        ClusterRoleBinding { metadata: meta("", name), role_ref: to, subjects: Some(subjects) }
    }

    pub(crate) fn request(
        user: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        RequestInfo {
            is_resource_request: true,
            verb: verb.into(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        }
        .with_user(user.clone())
    }

    fn read() -> Vec<PolicyRule> {
        vec![policy_rule(&["get", "list", "watch"], &[""], &["pods", "pods/log"])]
    }

    fn world() -> Authorizer {
        Authorizer::new(Snapshot {
            roles: vec![
                role("team", "pod-reader", read()),
                role("other", "pod-reader", vec![policy_rule(&["*"], &["*"], &["*"])]),
            ],
            cluster_roles: vec![
                cluster_role("view", read()),
                cluster_role("health", vec![url_rule(&["get"], &["/healthz", "/healthz/*"])]),
                cluster_role("node-reader", vec![policy_rule(&["get", "list"], &[""], &["nodes"])]),
            ],
            role_bindings: vec![
                binding("team", "jane-view", role_ref("ClusterRole", "view"), vec![subject("User", "jane", "")]),
                binding("team", "app", role_ref("Role", "pod-reader"), vec![subject("ServiceAccount", "app", "")]),
                binding("team", "ghost", role_ref("ClusterRole", "missing"), vec![subject("Group", "devs", "")]),
                binding("team", "ghost-role", role_ref("Role", "missing"), vec![subject("User", "bob", "")]),
                binding(
                    "team",
                    "cross",
                    role_ref("Role", "pod-reader"),
                    vec![subject("ServiceAccount", "builder", "ci")],
                ),
            ],
            cluster_role_bindings: vec![
                cluster_binding(
                    "health",
                    role_ref("ClusterRole", "health"),
                    vec![subject("Group", "system:authenticated", "")],
                ),
                cluster_binding(
                    "nodes",
                    role_ref("ClusterRole", "node-reader"),
                    vec![subject("User", "alice", ""), subject("Group", "ops", "")],
                ),
                // A ServiceAccount subject of a cluster binding needs its namespace.
                cluster_binding(
                    "sa-no-ns",
                    role_ref("ClusterRole", "node-reader"),
                    vec![subject("ServiceAccount", "app", "")],
                ),
            ],
        })
    }

    #[test]
    fn bindings_are_walked_in_list_order_however_they_name_the_user() {
        // Many bindings to others, then one to the user's group, then one to the user.
        let mut bindings: Vec<ClusterRoleBinding> = (0..1000)
            .map(|i| {
                let who = subject("User", &format!("user-{i}"), "");
                cluster_binding(&format!("b-{i}"), role_ref("ClusterRole", "view"), vec![who])
            })
            .collect();
        bindings.push(cluster_binding("by-group", role_ref("ClusterRole", "view"), vec![subject("Group", "devs", "")]));
        bindings.push(cluster_binding(
            "by-name",
            role_ref("ClusterRole", "view"),
            vec![subject("User", "jane", ""), subject("User", "jane", "")],
        ));
        bindings.push(cluster_binding(
            "sa",
            role_ref("ClusterRole", "view"),
            vec![subject("ServiceAccount", "app", "team")],
        ));
        let rbac = Authorizer::new(Snapshot {
            cluster_roles: vec![cluster_role("view", read())],
            cluster_role_bindings: bindings,
            ..Default::default()
        });
        let jane = UserInfo::new("jane", &["devs"]);
        let v = rbac.authorize(&request(&jane, "list", "", "pods", "", ""));
        assert_eq!(v.reason, r#"RBAC: allowed by ClusterRoleBinding "by-group" of ClusterRole "view" to Group "devs""#);
        let (rules, _) = rbac.rules_with_errors(&jane, "team");
        assert_eq!(rules.len(), 2, "each binding once");
        let user_7 = UserInfo::new("user-7", &[]);
        assert!(rbac.authorize(&request(&user_7, "get", "", "pods", "x", "y")).allowed());
        let app = UserInfo::service_account("team", "app", "u1");
        let v = rbac.authorize(&request(&app, "get", "", "pods", "x", "y"));
        assert_eq!(
            v.reason,
            r#"RBAC: allowed by ClusterRoleBinding "sa" of ClusterRole "view" to ServiceAccount "app/team""#
        );
        let stranger = UserInfo::new("user-1000", &["ops"]);
        assert!(!rbac.authorize(&request(&stranger, "get", "", "pods", "x", "y")).allowed());
    }

    #[test]
    fn role_binding_to_cluster_role_grants_in_its_namespace_only() {
        let rbac = world();
        let jane = UserInfo::new("jane", &["system:authenticated"]);
        let v = rbac.authorize(&request(&jane, "list", "", "pods", "team", ""));
        assert_eq!(v.decision, Decision::Allow);
        assert_eq!(v.reason, r#"RBAC: allowed by RoleBinding "jane-view/team" of ClusterRole "view" to User "jane""#);
        assert_eq!(rbac.authorize(&request(&jane, "get", "", "pods/log", "team", "web")).decision, Decision::Allow);
        for denied in [
            request(&jane, "delete", "", "pods", "team", "web"),
            request(&jane, "create", "", "pods/exec", "team", "web"),
            request(&jane, "list", "", "pods", "default", ""),
            request(&jane, "list", "", "pods", "", ""),
            request(&jane, "list", "apps", "pods", "team", ""),
        ] {
            assert_eq!(rbac.authorize(&denied), Verdict { decision: Decision::NoOpinion, reason: String::new() });
        }
    }

    #[test]
    fn subjects() {
        let rbac = world();
        let alice = UserInfo::new("alice", &[]);
        let v = rbac.authorize(&request(&alice, "get", "", "nodes", "", "n1"));
        assert_eq!(
            v.reason,
            r#"RBAC: allowed by ClusterRoleBinding "nodes" of ClusterRole "node-reader" to User "alice""#
        );
        let ops = UserInfo::new("carol", &["ops"]);
        assert_eq!(
            rbac.authorize(&request(&ops, "list", "", "nodes", "", "")).reason,
            r#"RBAC: allowed by ClusterRoleBinding "nodes" of ClusterRole "node-reader" to Group "ops""#
        );
        // cluster bindings apply in every namespace too
        assert!(rbac.authorize(&request(&alice, "get", "", "nodes", "team", "n1")).allowed());

        // a service account subject without a namespace is the binding's namespace's
        let app = UserInfo::service_account("team", "app", "");
        let v = rbac.authorize(&request(&app, "get", "", "pods", "team", "web"));
        assert_eq!(
            v.reason,
            r#"RBAC: allowed by RoleBinding "app/team" of Role "pod-reader" to ServiceAccount "app/team""#
        );
        assert!(!rbac.authorize(&request(&app, "get", "", "nodes", "", "n1")).allowed());
        let other_app = UserInfo::service_account("other", "app", "");
        assert!(!rbac.authorize(&request(&other_app, "get", "", "pods", "other", "web")).allowed());
        let builder = UserInfo::service_account("ci", "builder", "");
        assert_eq!(
            rbac.authorize(&request(&builder, "get", "", "pods", "team", "web")).reason,
            r#"RBAC: allowed by RoleBinding "cross/team" of Role "pod-reader" to ServiceAccount "builder/ci""#
        );
        // a user named like a service account is one; a user merely named "app" is not
        assert!(!rbac.authorize(&request(&UserInfo::new("app", &[]), "get", "", "pods", "team", "w")).allowed());

        let anyone = UserInfo::new("x", &["system:authenticated"]);
        let health = RequestInfo { verb: "get".into(), path: "/healthz/etcd".into(), ..Default::default() };
        assert!(rbac.authorize(&health.with_user(anyone)).allowed());
    }

    #[test]
    fn missing_roles_grant_nothing_and_say_why() {
        let rbac = world();
        let dev = UserInfo::new("dan", &["devs"]);
        let v = rbac.authorize(&request(&dev, "get", "", "pods", "team", "web"));
        assert_eq!(v.decision, Decision::NoOpinion);
        assert_eq!(v.reason, r#"RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found"#);
        let both = UserInfo::new("bob", &["devs"]);
        assert_eq!(
            rbac.authorize(&request(&both, "get", "", "pods", "team", "web")).reason,
            r#"RBAC: [clusterrole.rbac.authorization.k8s.io "missing" not found, role.rbac.authorization.k8s.io "missing" not found]"#
        );
        // the namespace's bindings are not consulted for cluster-scoped requests
        assert_eq!(rbac.authorize(&request(&dev, "get", "", "nodes", "", "n1")).reason, "");

        let unknown = Authorizer::new(Snapshot {
            cluster_role_bindings: vec![cluster_binding("odd", role_ref("Thing", "x"), vec![subject("User", "u", "")])],
            ..Default::default()
        });
        assert_eq!(
            unknown.authorize(&request(&UserInfo::new("u", &[]), "get", "", "pods", "", "")).reason,
            r#"RBAC: unsupported role reference kind: "Thing""#
        );
        assert_eq!(
            RoleRefError::ClusterRoleNotFound("x".into()).to_api_error().to_string(),
            r#"clusterroles.rbac.authorization.k8s.io "x" not found"#
        );
    }

    #[test]
    fn rules_review() {
        let rbac = world();
        let jane = UserInfo::new("jane", &["system:authenticated", "devs"]);
        let review = rbac.rules_for(&jane, "team");
        assert_eq!(review.resource_rules, read());
        assert_eq!(review.non_resource_rules, vec![url_rule(&["get"], &["/healthz", "/healthz/*"])]);
        assert!(!review.incomplete);
        assert_eq!(
            review.evaluation_error.as_deref(),
            Some(r#"clusterrole.rbac.authorization.k8s.io "missing" not found"#)
        );
        let elsewhere = rbac.rules_for(&jane, "default");
        assert!(elsewhere.resource_rules.is_empty());
        assert_eq!(elsewhere.evaluation_error, None);
    }
}
