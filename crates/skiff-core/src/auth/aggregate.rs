//! ClusterRole aggregation, as upstream's clusterrole-aggregation controller does it
//! (`pkg/controller/clusterroleaggregation`): a ClusterRole with an `aggregationRule` gets the
//! rules of every other ClusterRole its selectors match, in selector order, roles by name, each
//! rule once. The caller stores the roles that changed.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};

use crate::field::Path;
use crate::selector::{LabelSelector, validate_api_with};

/// Rules compared as apimachinery's semantic equality does: an absent list equals an empty one.
fn same_rule(a: &PolicyRule, b: &PolicyRule) -> bool {
    let l = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    a.verbs == b.verbs
        && l(&a.api_groups) == l(&b.api_groups)
        && l(&a.resources) == l(&b.resources)
        && l(&a.resource_names) == l(&b.resource_names)
        && l(&a.non_resource_urls) == l(&b.non_resource_urls)
}

fn same_rules(a: &[PolicyRule], b: &[PolicyRule]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_rule(x, y))
}

/// The selectors of a role's aggregationRule; `None` if it has none, or one that does not
/// parse (upstream's controller then fails that role and leaves it as it is).
fn selectors(role: &ClusterRole) -> Option<Vec<LabelSelector>> {
    let rule = role.aggregation_rule.as_ref()?;
    let mut out = Vec::new();
    for s in rule.cluster_role_selectors.iter().flatten() {
        let value = serde_json::to_value(s).ok()?;
        if !validate_api_with(&value, &Path::new("selector"), false).is_empty() {
            return None;
        }
        out.push(LabelSelector::from_api(&value));
    }
    Some(out)
}

/// The aggregated rules of `roles[index]` from the current rules of the others.
fn gather(roles: &[ClusterRole], order: &[usize], index: usize, selectors: &[LabelSelector]) -> Vec<PolicyRule> {
    let me = &roles[index].metadata.name;
    let mut rules: Vec<PolicyRule> = Vec::new();
    for selector in selectors {
        for &i in order {
            let other = &roles[i];
            let labels = other.metadata.labels.clone().unwrap_or_default();
            if other.metadata.name == *me || !selector.matches(&labels) {
                continue;
            }
            for rule in other.rules.iter().flatten() {
                if !rules.iter().any(|r| same_rule(r, rule)) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    rules
}

/// `cluster_roles` with every aggregated role's rules filled in. Aggregated roles may select
/// aggregated roles (`admin` selects `edit`, which selects `view`), so this repeats until
/// nothing changes, as the controller converges by requeueing.
pub fn aggregate(mut cluster_roles: Vec<ClusterRole>) -> Vec<ClusterRole> {
    let mut order: Vec<usize> = (0..cluster_roles.len()).collect();
    order.sort_by(|&a, &b| cluster_roles[a].metadata.name.cmp(&cluster_roles[b].metadata.name));
    let parsed: Vec<Option<Vec<LabelSelector>>> = cluster_roles.iter().map(selectors).collect();
    // Each pass settles at least one more level of nesting; cycles stop at the bound.
    for _ in 0..=cluster_roles.len() {
        let mut changed = false;
        for (i, sels) in parsed.iter().enumerate() {
            let Some(sels) = sels else { continue };
            let rules = gather(&cluster_roles, &order, i, sels);
            let current = cluster_roles[i].rules.as_deref().unwrap_or_default();
            if !same_rules(&rules, current) {
                cluster_roles[i].rules = Some(rules);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    cluster_roles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rules::policy_rule;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector as ApiSelector, LabelSelectorRequirement, ObjectMeta,
    };
    use std::collections::BTreeMap;

    fn role(
        name: &str,
        labels: &[(&str, &str)],
        rules: Option<Vec<PolicyRule>>,
        selects: Option<Vec<ApiSelector>>,
    ) -> ClusterRole {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ClusterRole {
            metadata: ObjectMeta { name: Some(name.into()), labels: Some(labels), ..Default::default() },
            rules,
            aggregation_rule: selects.map(|s| AggregationRule { cluster_role_selectors: Some(s) }),
        }
    }

    fn match_label(key: &str) -> ApiSelector {
        ApiSelector { match_labels: Some([(key.to_string(), "true".to_string())].into()), ..Default::default() }
    }

    fn rules_of<'a>(roles: &'a [ClusterRole], name: &str) -> Option<&'a Vec<PolicyRule>> {
        roles.iter().find(|r| r.metadata.name.as_deref() == Some(name)).and_then(|r| r.rules.as_ref())
    }

    #[test]
    fn nested_aggregation_converges() {
        let to_admin = "rbac.authorization.k8s.io/aggregate-to-admin";
        let to_edit = "rbac.authorization.k8s.io/aggregate-to-edit";
        let to_view = "rbac.authorization.k8s.io/aggregate-to-view";
        let view_rule = policy_rule(&["get"], &[""], &["pods"]);
        let edit_rule = policy_rule(&["create"], &[""], &["pods"]);
        let admin_rule = policy_rule(&["create"], &["rbac.authorization.k8s.io"], &["roles"]);
        let roles = vec![
            // listed so that one pass in list order cannot finish
            role("admin", &[], None, Some(vec![match_label(to_admin)])),
            role("edit", &[(to_admin, "true")], None, Some(vec![match_label(to_edit)])),
            role("view", &[(to_edit, "true")], None, Some(vec![match_label(to_view)])),
            role("system:aggregate-to-view", &[(to_view, "true")], Some(vec![view_rule.clone()]), None),
            role(
                "system:aggregate-to-edit",
                &[(to_edit, "true")],
                Some(vec![edit_rule.clone(), view_rule.clone()]),
                None,
            ),
            role("system:aggregate-to-admin", &[(to_admin, "true")], Some(vec![admin_rule.clone()]), None),
            role(
                "crd-viewer",
                &[(to_view, "true")],
                Some(vec![policy_rule(&["get"], &["example.com"], &["widgets"])]),
                None,
            ),
        ];
        let out = aggregate(roles);
        let widgets = policy_rule(&["get"], &["example.com"], &["widgets"]);
        assert_eq!(rules_of(&out, "view"), Some(&vec![widgets.clone(), view_rule.clone()]));
        // edit: system:aggregate-to-edit before view (by name), each rule once
        assert_eq!(rules_of(&out, "edit"), Some(&vec![edit_rule.clone(), view_rule.clone(), widgets.clone()]));
        // admin: edit's rules (by name "edit" < "system:...") then its own
        assert_eq!(rules_of(&out, "admin"), Some(&vec![edit_rule, view_rule, widgets, admin_rule]));
        // roles without an aggregationRule are untouched
        assert_eq!(rules_of(&out, "crd-viewer").map(Vec::len), Some(1));
    }

    #[test]
    fn nothing_selected_and_invalid_selectors() {
        let stale = policy_rule(&["*"], &["*"], &["*"]);
        let bad = ApiSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "Bogus".into(),
                values: None,
            }]),
            ..Default::default()
        };
        let out = aggregate(vec![
            role("empty", &[], None, Some(vec![match_label("nobody")])),
            role("stale", &[], Some(vec![stale.clone()]), Some(vec![match_label("nobody")])),
            role("broken", &[], Some(vec![stale.clone()]), Some(vec![bad])),
            role("victim", &[("k", "v")], Some(vec![policy_rule(&["get"], &[""], &["secrets"])]), None),
        ]);
        // nothing matched and nothing held: left absent, as the controller leaves it
        assert_eq!(rules_of(&out, "empty"), None);
        // stale rules are dropped when nothing matches any more
        assert_eq!(rules_of(&out, "stale"), Some(&vec![]));
        // an invalid selector changes nothing (never widens)
        assert_eq!(rules_of(&out, "broken"), Some(&vec![stale]));
    }

    #[test]
    fn cycles_terminate() {
        let a_rule = policy_rule(&["get"], &[""], &["a"]);
        let b_rule = policy_rule(&["get"], &[""], &["b"]);
        let out = aggregate(vec![
            role("a", &[("to-b", "true")], Some(vec![a_rule.clone()]), Some(vec![match_label("to-a")])),
            role("b", &[("to-a", "true")], Some(vec![b_rule.clone()]), Some(vec![match_label("to-b")])),
        ]);
        assert_eq!(out.len(), 2);
        assert!(rules_of(&out, "a").is_some_and(|r| r.contains(&b_rule)));
    }
}
