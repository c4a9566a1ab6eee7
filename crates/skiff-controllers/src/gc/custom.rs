//! The custom kinds the collector follows: what a CustomResourceDefinition serves, and how the
//! set of watched kinds changes when the definitions do (pure; the watches are in `watch`).

use kube::core::ApiResource;
use serde_json::Value;
use std::collections::HashMap;

/// The CustomResourceDefinitions themselves, read whole: their spec and status say what they
/// serve.
pub(super) fn definitions() -> ApiResource {
    ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    }
}

/// A custom kind as the collector watches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Custom {
    /// The resource in the one version watched: all versions share one storage, so one watch
    /// sees every object.
    pub resource: ApiResource,
    pub namespaced: bool,
    /// Every served version: an owner reference may name any of them.
    pub versions: Vec<String>,
}

fn text(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// What `crd` serves, once it is established: its accepted names, its scope, and the version to
/// watch (the storage version if served, else the first served one).
pub(super) fn resource_of(crd: &Value) -> Option<Custom> {
    let conditions = crd["status"]["conditions"].as_array()?;
    if !conditions.iter().any(|c| c["type"] == "Established" && c["status"] == "True") {
        return None;
    }
    let group = text(&crd["spec"]["group"])?;
    let names = &crd["status"]["acceptedNames"];
    let (kind, plural) = (text(&names["kind"])?, text(&names["plural"])?);
    let namespaced = match crd["spec"]["scope"].as_str()? {
        "Namespaced" => true,
        "Cluster" => false,
        _ => return None,
    };
    let served: Vec<&str> = crd["spec"]["versions"]
        .as_array()?
        .iter()
        .filter(|v| v["served"] == true)
        .filter_map(|v| text(&v["name"]))
        .collect();
    let storage = crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| text(&v["name"]))
        .filter(|v| served.contains(v));
    let version = storage.or(served.first().copied())?;
    Some(Custom {
        resource: ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: format!("{group}/{version}"),
            kind: kind.into(),
            plural: plural.into(),
        },
        namespaced,
        versions: served.into_iter().map(str::to_owned).collect(),
    })
}

/// What the collector keeps of one definition, served or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Definition {
    pub group: String,
    /// The accepted kind, else the one asked for (empty if neither).
    pub kind: String,
    pub served: Option<Custom>,
}

pub(super) fn definition_of(crd: &Value) -> Definition {
    let names = [&crd["status"]["acceptedNames"]["kind"], &crd["spec"]["names"]["kind"]];
    Definition {
        group: crd["spec"]["group"].as_str().unwrap_or_default().into(),
        kind: names.into_iter().find_map(text).unwrap_or_default().into(),
        served: resource_of(crd),
    }
}

/// The changes that take the watched custom kinds from the definitions `before` to those `now`
/// (both by CRD name).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Watches to end: their definition is gone, no longer served, or served differently.
    pub stop: Vec<String>,
    /// Watches to start (again, for a definition served differently).
    pub start: Vec<(String, Custom)>,
    /// (group, kind) of the deleted definitions: the API server deleted their objects with
    /// them, so a reference to one names an object that is gone.
    pub retire: Vec<(String, String)>,
}

pub(super) fn plan(before: &HashMap<String, Definition>, now: &HashMap<String, Definition>) -> Plan {
    let served = |defs: &HashMap<String, Definition>, name: &str| defs.get(name).and_then(|d| d.served.clone());
    let mut plan = Plan::default();
    for (name, old) in before {
        if old.served.is_some() && served(now, name) != old.served {
            plan.stop.push(name.clone());
        }
        if !now.contains_key(name) && !old.kind.is_empty() {
            plan.retire.push((old.group.clone(), old.kind.clone()));
        }
    }
    for (name, new) in now {
        if let Some(custom) = &new.served
            && served(before, name).as_ref() != Some(custom)
        {
            plan.start.push((name.clone(), custom.clone()));
        }
    }
    plan.stop.sort();
    plan.start.sort_by(|a, b| a.0.cmp(&b.0));
    plan.retire.sort();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(established: &str, versions: Value) -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "kind": "Widget"},
                "scope": "Namespaced",
                "versions": versions,
            },
            "status": {
                "acceptedNames": {"plural": "widgets", "kind": "Widget"},
                "conditions": [
                    {"type": "NamesAccepted", "status": "True"},
                    {"type": "Established", "status": established},
                ],
            },
        })
    }

    fn widgets(version: &str, versions: &[&str]) -> Custom {
        Custom {
            resource: ApiResource {
                group: "example.com".into(),
                version: version.into(),
                api_version: format!("example.com/{version}"),
                kind: "Widget".into(),
                plural: "widgets".into(),
            },
            namespaced: true,
            versions: versions.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn an_established_definition_serves_its_storage_version() {
        let versions = json!([
            {"name": "v1beta1", "served": true, "storage": false},
            {"name": "v1", "served": true, "storage": true},
            {"name": "v1alpha1", "served": false, "storage": false},
        ]);
        assert_eq!(resource_of(&crd("True", versions)), Some(widgets("v1", &["v1beta1", "v1"])));
    }

    #[test]
    fn an_unserved_storage_version_gives_way_to_the_first_served() {
        let versions = json!([
            {"name": "v1", "served": false, "storage": true},
            {"name": "v2", "served": true, "storage": false},
            {"name": "v3", "served": true},
        ]);
        assert_eq!(resource_of(&crd("True", versions)), Some(widgets("v2", &["v2", "v3"])));
    }

    #[test]
    fn what_is_not_served_yields_nothing() {
        let v1 = json!([{"name": "v1", "served": true, "storage": true}]);
        assert_eq!(resource_of(&crd("False", v1.clone())), None);
        assert_eq!(resource_of(&crd("True", json!([{"name": "v1", "served": false, "storage": true}]))), None);
        let mut no_status = crd("True", v1.clone());
        no_status["status"] = Value::Null;
        assert_eq!(resource_of(&no_status), None);
        // Names not accepted (yet): nothing to serve them under.
        let mut unnamed = crd("True", v1);
        unnamed["status"]["acceptedNames"] = json!({});
        assert_eq!(resource_of(&unnamed), None);
    }

    #[test]
    fn the_scope_says_whether_objects_have_a_namespace() {
        let mut c = crd("True", json!([{"name": "v1", "served": true, "storage": true}]));
        c["spec"]["scope"] = json!("Cluster");
        assert_eq!(resource_of(&c).map(|c| c.namespaced), Some(false));
        c["spec"]["scope"] = json!("Galaxy");
        assert_eq!(resource_of(&c), None);
    }

    #[test]
    fn a_definition_keeps_its_kind_while_not_served() {
        let mut c = crd("False", json!([{"name": "v1", "served": true, "storage": true}]));
        c["status"]["acceptedNames"] = json!({});
        let d = definition_of(&c);
        assert_eq!((d.group.as_str(), d.kind.as_str(), d.served), ("example.com", "Widget", None));
    }

    fn defs(entries: &[(&str, Option<Custom>)]) -> HashMap<String, Definition> {
        entries
            .iter()
            .map(|(name, served)| {
                let d = Definition { group: "example.com".into(), kind: "Widget".into(), served: served.clone() };
                (name.to_string(), d)
            })
            .collect()
    }

    #[test]
    fn a_definition_served_starts_a_watch_once() {
        let v1 = widgets("v1", &["v1"]);
        let p = plan(&defs(&[("w", None)]), &defs(&[("w", Some(v1.clone()))]));
        assert_eq!(p, Plan { start: vec![("w".into(), v1.clone())], ..Plan::default() });
        let same = defs(&[("w", Some(v1))]);
        assert_eq!(plan(&same, &same), Plan::default());
    }

    #[test]
    fn a_definition_served_differently_is_watched_anew() {
        let (v1, v2) = (widgets("v1", &["v1", "v2"]), widgets("v2", &["v1", "v2"]));
        let p = plan(&defs(&[("w", Some(v1))]), &defs(&[("w", Some(v2.clone()))]));
        assert_eq!(p, Plan { stop: vec!["w".into()], start: vec![("w".into(), v2)], retire: vec![] });
    }

    #[test]
    fn a_definition_no_longer_established_stops_its_watch_without_retiring_the_kind() {
        let p = plan(&defs(&[("w", Some(widgets("v1", &["v1"])))]), &defs(&[("w", None)]));
        assert_eq!(p, Plan { stop: vec!["w".into()], ..Plan::default() });
    }

    #[test]
    fn a_deleted_definition_retires_its_kind() {
        let p = plan(&defs(&[("w", Some(widgets("v1", &["v1"])))]), &HashMap::new());
        let retire = vec![("example.com".to_string(), "Widget".to_string())];
        assert_eq!(p, Plan { stop: vec!["w".into()], start: vec![], retire });
        // Deleted before it was ever served: no object of it can be left either.
        let p = plan(&defs(&[("w", None)]), &HashMap::new());
        assert_eq!((p.stop.len(), p.retire.len()), (0, 1));
    }
}
