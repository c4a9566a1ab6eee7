//! Node selectors as volumes and classes use them: a volume's `nodeAffinity` (upstream's
//! `CheckNodeAffinity`: any term, every requirement of it) and a class's `allowedTopologies`.

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement, PersistentVolume, TopologySelectorTerm};
use std::collections::BTreeMap;

/// Whether `node` may use `volume`: it has no required node affinity, or one of its terms
/// matches the node's labels (and `matchFields` its name).
pub fn volume_fits_node(volume: &PersistentVolume, node: &Node) -> bool {
    let Some(required) = volume.spec.as_ref().and_then(|s| s.node_affinity.as_ref()).and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    let labels = node.metadata.labels.clone().unwrap_or_default();
    selector_matches(required, &labels, node.metadata.name.as_deref().unwrap_or_default())
}

/// Terms are ORed; a term's requirements ANDed; an empty term matches nothing.
pub fn selector_matches(selector: &NodeSelector, labels: &BTreeMap<String, String>, name: &str) -> bool {
    selector.node_selector_terms.iter().any(|term| {
        let expressions = term.match_expressions.as_deref().unwrap_or_default();
        let fields = term.match_fields.as_deref().unwrap_or_default();
        if expressions.is_empty() && fields.is_empty() {
            return false;
        }
        let field = |key: &str| (key == "metadata.name").then_some(name);
        expressions.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
            && fields.iter().all(|r| requirement_matches(r, field(&r.key)))
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|w| w == v)),
        "NotIn" => value.is_none_or(|v| values.iter().all(|w| w != v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(number), values) else { return false };
            let Some(want) = number(want) else { return false };
            if r.operator == "Gt" { have > want } else { have < want }
        }
        _ => false,
    }
}

/// Whether a class's `allowedTopologies` let a volume be made for a node with `labels`: no terms
/// allow every node; otherwise one term whose every key has one of its values.
pub fn topology_allows(terms: Option<&[TopologySelectorTerm]>, labels: &BTreeMap<String, String>) -> bool {
    let terms = terms.unwrap_or_default();
    terms.is_empty()
        || terms.iter().any(|t| {
            t.match_label_expressions.iter().flatten().all(|e| labels.get(&e.key).is_some_and(|v| e.values.contains(v)))
        })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{node, on_node, volume};
    use super::*;
    use serde_json::json;

    #[test]
    fn volumes_fit_the_nodes_their_affinity_names() {
        let local = volume("v", json!({"nodeAffinity": on_node("a")}));
        assert!(volume_fits_node(&local, &node("a")));
        assert!(!volume_fits_node(&local, &node("b")));
        assert!(volume_fits_node(&volume("v", json!({})), &node("b")));
        let empty_term = volume("v", json!({"nodeAffinity": {"required": {"nodeSelectorTerms": [{}]}}}));
        assert!(!volume_fits_node(&empty_term, &node("a")));
    }

    #[test]
    fn requirement_operators() {
        let labels: BTreeMap<String, String> =
            [("zone".to_string(), "z1".to_string()), ("disks".to_string(), "4".to_string())].into();
        let sel = |exprs: serde_json::Value| -> NodeSelector {
            serde_json::from_value(json!({"nodeSelectorTerms": [{"matchExpressions": exprs}]})).expect("selector")
        };
        let yes = |e| selector_matches(&sel(e), &labels, "n");
        assert!(yes(json!([{"key": "zone", "operator": "In", "values": ["z1", "z2"]}])));
        assert!(!yes(json!([{"key": "zone", "operator": "NotIn", "values": ["z1"]}])));
        assert!(yes(json!([{"key": "rack", "operator": "DoesNotExist"}])));
        assert!(yes(json!([{"key": "disks", "operator": "Gt", "values": ["3"]}])));
        assert!(!yes(json!([{"key": "disks", "operator": "Lt", "values": ["3"]}])));
        assert!(!yes(json!([{"key": "zone", "operator": "Exists"}, {"key": "rack", "operator": "Exists"}])));
        let by_name: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
        ]}))
        .expect("selector");
        assert!(selector_matches(&by_name, &labels, "n"));
        assert!(!selector_matches(&by_name, &labels, "m"));
    }

    #[test]
    fn allowed_topologies() {
        let labels: BTreeMap<String, String> = [("zone".to_string(), "z1".to_string())].into();
        let terms: Vec<TopologySelectorTerm> =
            serde_json::from_value(json!([{"matchLabelExpressions": [{"key": "zone", "values": ["z2"]}]}]))
                .expect("terms");
        assert!(!topology_allows(Some(&terms), &labels));
        assert!(topology_allows(None, &labels));
    }
}
