//! Whether one PolicyRule allows a request: upstream's `pkg/apis/rbac/v1/evaluation_helpers.go`
//! and the RBAC authorizer's `RuleAllows`. Deny by default: an absent list matches nothing.

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::auth::request::RequestInfo;

/// `*` in verbs, apiGroups, resources or nonResourceURLs matches everything there.
pub const ALL: &str = "*";

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups).iter().any(|g| g == ALL || g == group)
}

/// `combined` is `resource` or `resource/subresource`; a rule names either exactly, or all
/// resources (`*`), or one subresource of every resource (`*/scale`).
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
    })
}

/// No resourceNames allows every name (and requests without one, like list and create).
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

/// An exact path, `*`, or a prefix ending in `*` (`/healthz/*`; `/api*` covers `/apis` too).
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls)
        .iter()
        .any(|u| u == ALL || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))))
}

/// `RuleAllows`: resource requests by verb, group, resource and name; others by verb and path.
pub fn rule_allows(request: &RequestInfo, rule: &PolicyRule) -> bool {
    if request.is_resource_request {
        verb_matches(rule, &request.verb)
            && api_group_matches(rule, &request.api_group)
            && resource_matches(rule, &request.combined_resource(), &request.subresource)
            && resource_name_matches(rule, &request.name)
    } else {
        verb_matches(rule, &request.verb) && non_resource_url_matches(rule, &request.path)
    }
}

/// A PolicyRule from string lists (tests and the bootstrap policy).
pub fn policy_rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    let owned = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
    PolicyRule {
        verbs: owned(verbs),
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        ..Default::default()
    }
}

/// A non-resource PolicyRule.
pub fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    let owned = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
    PolicyRule { verbs: owned(verbs), non_resource_urls: Some(owned(urls)), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(mut rule: PolicyRule, names: &[&str]) -> PolicyRule {
        rule.resource_names = Some(names.iter().map(|s| s.to_string()).collect());
        rule
    }

    fn resource_request(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> RequestInfo {
        RequestInfo {
            is_resource_request: true,
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn path_request(verb: &str, path: &str) -> RequestInfo {
        RequestInfo { verb: verb.into(), path: path.into(), ..Default::default() }
    }

    #[test]
    fn resource_rules() {
        let pods_read = policy_rule(&["get", "list", "watch"], &[""], &["pods"]);
        let cases = [
            (&pods_read, resource_request("get", "", "pods", "", "web"), true),
            (&pods_read, resource_request("list", "", "pods", "", ""), true),
            (&pods_read, resource_request("delete", "", "pods", "", "web"), false),
            (&pods_read, resource_request("get", "apps", "pods", "", "web"), false),
            // a resource does not grant its subresources
            (&pods_read, resource_request("get", "", "pods", "log", "web"), false),
            (&pods_read, resource_request("create", "", "pods", "exec", "web"), false),
        ];
        for (rule, req, want) in cases {
            assert_eq!(rule_allows(&req, rule), want, "{req:?}");
        }

        let exec = policy_rule(&["create"], &[""], &["pods/exec"]);
        assert!(rule_allows(&resource_request("create", "", "pods", "exec", "web"), &exec));
        assert!(!rule_allows(&resource_request("create", "", "pods", "", "web"), &exec));

        let any_scale = policy_rule(&["get", "patch"], &["apps"], &["*/scale"]);
        assert!(rule_allows(&resource_request("patch", "apps", "deployments", "scale", "web"), &any_scale));
        assert!(!rule_allows(&resource_request("patch", "apps", "deployments", "", "web"), &any_scale));
        assert!(!rule_allows(&resource_request("patch", "apps", "deployments", "status", "web"), &any_scale));
        assert!(!rule_allows(&resource_request("patch", "apps", "deployments", "xscale", "web"), &any_scale));

        let star = policy_rule(&["*"], &["*"], &["*"]);
        assert!(rule_allows(&resource_request("escalate", "rbac.authorization.k8s.io", "roles", "", "x"), &star));
        assert!(rule_allows(&resource_request("create", "", "pods", "exec", "x"), &star));
        // resource rules never allow paths
        assert!(!rule_allows(&path_request("get", "/healthz"), &star));
    }

    #[test]
    fn resource_names() {
        let one =
            named(policy_rule(&["get", "update", "list"], &["coordination.k8s.io"], &["leases"]), &["kube-scheduler"]);
        let lease = |verb: &str, name: &str| resource_request(verb, "coordination.k8s.io", "leases", "", name);
        assert!(rule_allows(&lease("get", "kube-scheduler"), &one));
        assert!(!rule_allows(&lease("get", "other"), &one));
        // a request without a name (list, create) is not one of the names
        assert!(!rule_allows(&lease("list", ""), &one));
        assert!(rule_allows(&lease("list", "kube-scheduler"), &one));
    }

    #[test]
    fn non_resource_rules() {
        let rule = url_rule(&["get"], &["/healthz", "/healthz/*", "/api*", "/version/"]);
        for (verb, path, want) in [
            ("get", "/healthz", true),
            ("get", "/healthz/etcd", true),
            ("get", "/healthz/", true),
            ("get", "/healthzx", false),
            ("get", "/api", true),
            ("get", "/apis/apps", true),
            ("get", "/version/", true),
            ("get", "/version", false),
            ("post", "/healthz", false),
            ("get", "/metrics", false),
        ] {
            assert_eq!(rule_allows(&path_request(verb, path), &rule), want, "{verb} {path}");
        }
        let all = url_rule(&["*"], &["*"]);
        assert!(rule_allows(&path_request("delete", "/anything"), &all));
        // path rules never allow resources
        assert!(!rule_allows(&resource_request("get", "", "pods", "", ""), &all));
        // an empty rule allows nothing
        assert!(!rule_allows(&path_request("get", "/"), &PolicyRule::default()));
    }
}
