//! Which level a request is audited at: the first rule of the policy that matches the
//! authenticated user (not the impersonated one) and the request's attributes, as upstream's
//! policy checker decides; no rule matching is `None`.

use super::policy::{Level, Policy, Rule, Stages};
use skiff_core::auth::{RequestInfo, UserInfo};

/// What the policy says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestConfig {
    pub level: Level,
    pub omit_stages: Stages,
    pub omit_managed_fields: bool,
}

impl Policy {
    /// `user` is `None` for a request that failed authentication.
    pub fn evaluate(&self, user: Option<&UserInfo>, request: &RequestInfo) -> RequestConfig {
        match self.rules.iter().find(|r| matches(r, user, request)) {
            Some(rule) => RequestConfig {
                level: rule.level,
                omit_stages: rule.omit_stages,
                omit_managed_fields: rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
            },
            None => RequestConfig {
                level: Level::None,
                omit_stages: self.omit_stages,
                omit_managed_fields: self.omit_managed_fields,
            },
        }
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|s| s == value)
}

fn matches(rule: &Rule, user: Option<&UserInfo>, request: &RequestInfo) -> bool {
    if !rule.users.is_empty() && !user.is_some_and(|u| has(&rule.users, &u.name)) {
        return false;
    }
    if !rule.user_groups.is_empty() && !user.is_some_and(|u| u.groups.iter().any(|g| has(&rule.user_groups, g))) {
        return false;
    }
    if !rule.verbs.is_empty() && !has(&rule.verbs, &request.verb) {
        return false;
    }
    if !rule.namespaces.is_empty() || !rule.resources.is_empty() {
        return matches_resource(rule, request);
    }
    if !rule.non_resource_urls.is_empty() {
        return !request.is_resource_request
            && rule.non_resource_urls.iter().any(|spec| path_matches(&request.path, spec));
    }
    true
}

/// `*`, the path itself, or a prefix ending in `*`.
fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*" || spec == path || spec.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
}

fn matches_resource(rule: &Rule, request: &RequestInfo) -> bool {
    if !request.is_resource_request {
        return false;
    }
    // Cluster-scoped resources are in the namespace "".
    if !rule.namespaces.is_empty() && !has(&rule.namespaces, &request.namespace) {
        return false;
    }
    if rule.resources.is_empty() {
        return true;
    }
    let combined = request.combined_resource();
    let (resource, subresource) = (request.resource.as_str(), request.subresource.as_str());
    rule.resources.iter().filter(|gr| gr.group == request.api_group || gr.group == "*").any(|gr| {
        let named = gr.resource_names.is_empty() || has(&gr.resource_names, &request.name);
        gr.resources.is_empty()
            || (named
                && gr.resources.iter().any(|res| {
                    res == &combined
                        || res == "*"
                        || (!subresource.is_empty() && res.strip_prefix("*/") == Some(subresource))
                        || res.strip_suffix("/*") == Some(resource)
                }))
    })
}

#[cfg(test)]
mod tests {
    //! Upstream's checker cases: each request against rule lists, the first match winning.
    use super::*;
    use crate::audit::policy::{GroupResources, Stage};

    fn tim() -> UserInfo {
        UserInfo::new("tim@k8s.io", &["humans", "developers"])
    }

    fn request(name: &str) -> (Option<UserInfo>, RequestInfo) {
        let resource = |verb: &str, ns: &str, group: &str, res: &str, sub: &str, obj: &str, path: &str| RequestInfo {
            is_resource_request: true,
            verb: verb.into(),
            namespace: ns.into(),
            api_group: group.into(),
            resource: res.into(),
            subresource: sub.into(),
            name: obj.into(),
            path: path.into(),
            ..Default::default()
        };
        let pod = "/api/v1/namespaces/default/pods/busybox";
        match name {
            "namespaced" => (Some(tim()), resource("get", "default", "", "pods", "", "busybox", pod)),
            "cluster" => (
                Some(tim()),
                resource("get", "", "rbac.authorization.k8s.io", "clusterroles", "", "edit", "/apis/rbac/edit"),
            ),
            "nonResource" => (
                Some(tim()),
                RequestInfo { verb: "get".into(), path: "/logs/kubelet.log".into(), ..Default::default() },
            ),
            "subresource" => (Some(tim()), resource("get", "default", "", "pods", "log", "busybox", pod)),
            "Unauthorized" => (None, resource("get", "default", "", "pods", "", "busybox", pod)),
            "ClusterRoleUpdate" => (
                Some(tim()),
                resource("update", "", "rbac.authorization.k8s.io", "clusterroles", "status", "somerole", "/x"),
            ),
            other => panic!("no request {other}"),
        }
    }

    fn rule(name: &str) -> Rule {
        let base = |level| Rule {
            level,
            users: vec![],
            user_groups: vec![],
            verbs: vec![],
            resources: vec![],
            namespaces: vec![],
            non_resource_urls: vec![],
            omit_stages: Stages::default(),
            omit_managed_fields: None,
        };
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let core = |res: &[&str]| vec![GroupResources { resources: strings(res), ..Default::default() }];
        let get = |level, resources| Rule { verbs: strings(&["get"]), resources, ..base(level) };
        match name {
            "default" => base(Level::Metadata),
            "create" => Rule { verbs: strings(&["create"]), ..base(Level::Request) },
            "tims" => Rule { users: strings(&["tim@k8s.io"]), ..base(Level::Metadata) },
            "humans" => Rule { user_groups: strings(&["humans"]), ..base(Level::Metadata) },
            "serviceAccounts" => Rule { user_groups: strings(&["system:serviceaccounts"]), ..base(Level::Request) },
            "getPods" => get(Level::RequestResponse, core(&["pods"])),
            "getPodLogs" => get(Level::Request, core(&["pods/log"])),
            "getPodWildcardMatching" => get(Level::Request, core(&["*"])),
            "getPodResourceWildcardMatching" => get(Level::Request, core(&["*/log"])),
            "getPodSubResourceWildcardMatching" => get(Level::Request, core(&["pods/*"])),
            "getClusterRoles" => Rule {
                namespaces: strings(&[""]),
                ..get(
                    Level::RequestResponse,
                    vec![GroupResources {
                        group: "rbac.authorization.k8s.io".into(),
                        resources: strings(&["clusterroles"]),
                        ..Default::default()
                    }],
                )
            },
            "getGroupWildCardMatchingWithSubresourceWildcardMatching" => Rule {
                verbs: strings(&["update"]),
                resources: vec![GroupResources {
                    group: "*".into(),
                    resources: strings(&["*/status"]),
                    ..Default::default()
                }],
                ..base(Level::RequestResponse)
            },
            "getLogs" => Rule {
                verbs: strings(&["get"]),
                non_resource_urls: strings(&["/logs*"]),
                ..base(Level::RequestResponse)
            },
            "getMetrics" => {
                Rule { verbs: strings(&["get"]), non_resource_urls: strings(&["/metrics"]), ..base(Level::Request) }
            }
            "clusterRoleEdit" => Rule {
                resources: vec![GroupResources {
                    group: "rbac.authorization.k8s.io".into(),
                    resources: strings(&["clusterroles"]),
                    resource_names: strings(&["edit"]),
                }],
                ..base(Level::Request)
            },
            "omit RequestReceived" => {
                Rule { omit_stages: [Stage::RequestReceived].into_iter().collect(), ..base(Level::Request) }
            }
            "only audit panic" => Rule {
                omit_stages: [Stage::RequestReceived, Stage::ResponseStarted, Stage::ResponseComplete]
                    .into_iter()
                    .collect(),
                ..base(Level::Request)
            },
            other => panic!("no rule {other}"),
        }
    }

    /// The policy of `rules` with policy-wide `stages`, merged as loading merges them.
    fn check(req: &str, level: Level, stages: Stages, omitted: Stages, rules: &[&str]) {
        let rules = rules
            .iter()
            .map(|r| {
                let r = rule(r);
                Rule { omit_stages: r.omit_stages.union(stages), ..r }
            })
            .collect();
        let policy = Policy { rules, omit_stages: stages, omit_managed_fields: false };
        let (user, info) = request(req);
        let got = policy.evaluate(user.as_ref(), &info);
        assert_eq!(got.level, level, "{req} with {rules:?}", rules = policy.rules);
        assert_eq!(got.omit_stages, omitted, "{req}");
    }

    fn levels(s: Stages) {
        use Level::*;
        let cases: &[(&str, Level, &[&str])] = &[
            ("namespaced", Metadata, &["default"]),
            ("namespaced", None, &["create"]),
            ("namespaced", Metadata, &["tims"]),
            ("namespaced", Metadata, &["humans"]),
            ("namespaced", None, &["serviceAccounts"]),
            ("namespaced", RequestResponse, &["getPods"]),
            ("namespaced", None, &["getClusterRoles"]),
            ("namespaced", None, &["getLogs"]),
            ("namespaced", None, &["getMetrics"]),
            ("namespaced", Metadata, &["getMetrics", "serviceAccounts", "default"]),
            ("namespaced", RequestResponse, &["getMetrics", "getPods", "default"]),
            ("namespaced", RequestResponse, &["getPodLogs", "getPods"]),
            ("cluster", Metadata, &["default"]),
            ("cluster", None, &["create"]),
            ("cluster", Metadata, &["tims"]),
            ("cluster", Metadata, &["humans"]),
            ("cluster", None, &["serviceAccounts"]),
            ("cluster", None, &["getPods"]),
            ("cluster", RequestResponse, &["getClusterRoles"]),
            ("cluster", Request, &["clusterRoleEdit", "getClusterRoles"]),
            ("cluster", None, &["getLogs"]),
            ("cluster", None, &["getMetrics"]),
            ("cluster", Metadata, &["getMetrics", "serviceAccounts", "default"]),
            ("cluster", RequestResponse, &["getMetrics", "getClusterRoles", "default"]),
            ("cluster", None, &["getPodLogs", "getPods"]),
            ("nonResource", Metadata, &["default"]),
            ("nonResource", None, &["create"]),
            ("nonResource", Metadata, &["tims"]),
            ("nonResource", Metadata, &["humans"]),
            ("nonResource", None, &["serviceAccounts"]),
            ("nonResource", None, &["getPods"]),
            ("nonResource", None, &["getClusterRoles"]),
            ("nonResource", RequestResponse, &["getLogs"]),
            ("nonResource", None, &["getMetrics"]),
            ("nonResource", Metadata, &["getMetrics", "serviceAccounts", "default"]),
            ("nonResource", RequestResponse, &["getLogs", "getClusterRoles", "default"]),
            ("nonResource", None, &["getPodLogs", "getPods"]),
            ("subresource", Request, &["getPodLogs", "getPods"]),
            ("subresource", Request, &["getPodWildcardMatching"]),
            ("subresource", Request, &["getPodResourceWildcardMatching"]),
            ("subresource", Request, &["getPodSubResourceWildcardMatching"]),
            ("Unauthorized", None, &["tims"]),
            ("Unauthorized", Metadata, &["tims", "default"]),
            ("Unauthorized", None, &["humans"]),
            ("Unauthorized", Metadata, &["humans", "default"]),
            ("ClusterRoleUpdate", RequestResponse, &["getGroupWildCardMatchingWithSubresourceWildcardMatching"]),
        ];
        for (req, level, rules) in cases {
            check(req, *level, s, s, rules);
        }
    }

    fn stages(list: &[Stage]) -> Stages {
        list.iter().copied().collect()
    }

    #[test]
    fn rules_match_as_upstreams_checker() {
        levels(Stages::default());
        let received = stages(&[Stage::RequestReceived]);
        let all_but_panic = stages(&[Stage::RequestReceived, Stage::ResponseStarted, Stage::ResponseComplete]);
        for req in ["namespaced", "cluster", "nonResource"] {
            check(req, Level::Request, Stages::default(), received, &["omit RequestReceived", "getPods", "default"]);
            check(req, Level::Request, Stages::default(), all_but_panic, &["only audit panic", "getPods", "default"]);
        }
    }

    #[test]
    fn policy_wide_stages_join_each_rules() {
        let policy_stages = stages(&[Stage::RequestReceived, Stage::ResponseStarted]);
        levels(policy_stages);
        let all_but_panic = stages(&[Stage::RequestReceived, Stage::ResponseStarted, Stage::ResponseComplete]);
        for req in ["namespaced", "cluster"] {
            check(req, Level::Request, policy_stages, policy_stages, &["omit RequestReceived", "getPods", "default"]);
            check(req, Level::Request, policy_stages, all_but_panic, &["only audit panic", "getPods", "default"]);
        }
        check("nonResource", Level::Metadata, policy_stages, policy_stages, &["default", "omit RequestReceived"]);
    }

    #[test]
    fn managed_fields_follow_the_rule_then_the_policy() {
        let (user, info) = request("namespaced");
        let mut policy =
            Policy { rules: vec![rule("default")], omit_stages: Stages::default(), omit_managed_fields: true };
        assert!(policy.evaluate(user.as_ref(), &info).omit_managed_fields);
        policy.rules[0].omit_managed_fields = Some(false);
        assert!(!policy.evaluate(user.as_ref(), &info).omit_managed_fields);
    }
}
