//! Discovery documents: `/version`, `/api`, `/apis`, `/api/v1`, legacy and aggregated (v2, v2beta1).

use crate::catalog::Snapshot;
use crate::resource_metrics;
use serde_json::{Value, json};
use skiff_core::kinds;

/// The Kubernetes minor version skiff's API corresponds to; the kubectl dispatcher picks its
/// client from it.
pub const KUBE_MINOR: &str = "32";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-skiff.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "skiff",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn api_versions(server_address: &str) -> Value {
    let versions = kinds::groups().into_iter().find(|(g, _)| g.is_empty()).map(|(_, v)| v).unwrap_or_default();
    json!({"kind": "APIVersions", "versions": versions,
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

/// A named group as `/apis` and `/apis/GROUP` describe it (the first version is preferred).
fn group_entry(group: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": kinds::group_version(group, v), "version": v});
    json!({"name": group, "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(|v| gv(v))})
}

/// `/apis`: every named group.
pub fn api_group_list(served: &Snapshot) -> Value {
    let mut groups: Vec<Value> =
        served.groups().into_iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| group_entry(g, &v)).collect();
    groups.push(group_entry(resource_metrics::GROUP, &[resource_metrics::VERSION]));
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`, if the group is served.
pub fn api_group(served: &Snapshot, group: &str) -> Option<Value> {
    let metrics = (group == resource_metrics::GROUP).then(|| (group, vec![resource_metrics::VERSION]));
    let (_, versions) = metrics.or_else(|| served.groups().into_iter().find(|(g, _)| !g.is_empty() && *g == group))?;
    let mut g = group_entry(group, &versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// `/api/v1` or `/apis/GROUP/VERSION`, if any kind is served there.
pub fn api_resource_list(served: &Snapshot, group: &str, version: &str) -> Option<Value> {
    if (group, version) == (resource_metrics::GROUP, resource_metrics::VERSION) {
        return Some(resource_metrics::resource_list());
    }
    let mut resources = Vec::new();
    for k in served.in_group_version(group, version) {
        let i = k.info();
        let mut r = json!({"name": i.plural, "singularName": i.singular, "namespaced": i.namespaced, "kind": i.kind,
            "verbs": i.verbs});
        if !i.short_names.is_empty() {
            r["shortNames"] = json!(i.short_names);
        }
        if !i.categories.is_empty() {
            r["categories"] = json!(i.categories);
        }
        resources.push(r);
        for (sub, kind, verbs) in i.subresources {
            let (group, version, kind) = i.response_kind(kind);
            let mut r = json!({"name": format!("{}/{sub}", i.plural), "singularName": "", "namespaced": i.namespaced,
                "kind": kind, "verbs": verbs});
            // Upstream names the group version of a response kind from another group.
            if (group, version) != (i.group, i.version) {
                r["group"] = json!(group);
                r["version"] = json!(version);
            }
            resources.push(r);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let mut list = json!({"kind": "APIResourceList", "groupVersion": kinds::group_version(group, version),
        "resources": resources});
    // Upstream's `/apis/GROUP/VERSION` carries an apiVersion; its `/api/v1` does not.
    if !group.is_empty() {
        list["apiVersion"] = json!("v1");
    }
    Some(list)
}

/// Which aggregated discovery version an Accept header asks for, if any.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("g=apidiscovery.k8s.io") && p.contains("as=APIGroupDiscoveryList") {
            if p.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if p.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// One resource of an aggregated discovery document.
fn aggregated_resource(i: &kinds::ResourceInfo) -> Value {
    let kind_ref = |kind: &'static str| {
        let (group, version, kind) = i.response_kind(kind);
        json!({"group": group, "version": version, "kind": kind})
    };
    let subs: Vec<Value> = i
        .subresources
        .iter()
        .map(|(s, kind, verbs)| json!({"subresource": s, "responseKind": kind_ref(kind), "verbs": verbs}))
        .collect();
    let mut r = json!({"resource": i.plural, "responseKind": kind_ref(i.kind),
        "scope": if i.namespaced { "Namespaced" } else { "Cluster" }, "singularResource": i.singular,
        "verbs": i.verbs});
    if !i.short_names.is_empty() {
        r["shortNames"] = json!(i.short_names);
    }
    if !i.categories.is_empty() {
        r["categories"] = json!(i.categories);
    }
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

/// Aggregated discovery for the core group (`/api`) or the named groups (`/apis`).
pub fn aggregated(served: &Snapshot, version: &str, core: bool) -> Value {
    let mut items: Vec<Value> = served
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> =
                        served.in_group_version(group, v).map(|k| aggregated_resource(k.info())).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !group.is_empty() {
                metadata["name"] = json!(group);
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    if !core {
        items.push(resource_metrics::aggregated());
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> Snapshot {
        Snapshot::default()
    }

    #[test]
    fn picks_aggregated_version_from_accept() {
        let a132 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(a132), Some("v2"));
        let a127 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(a127), Some("v2beta1"));
        assert_eq!(aggregated_version("application/json, */*"), None);
    }

    #[test]
    fn resource_list_has_pods_with_short_name() {
        let l = api_resource_list(&served(), "", "v1").expect("core");
        let pods = l["resources"].as_array().expect("list").iter().find(|r| r["name"] == "pods").expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert!(l["resources"].as_array().expect("list").iter().any(|r| r["name"] == "pods/status"));
        assert!(!l["resources"].as_array().expect("list").iter().any(|r| r["name"] == "leases"));
    }

    #[test]
    fn named_groups_from_the_kinds_table() {
        let groups = api_group_list(&served());
        let coordination = &groups["groups"][0];
        assert_eq!(coordination["name"], "coordination.k8s.io");
        assert_eq!(
            coordination["preferredVersion"],
            json!({"groupVersion": "coordination.k8s.io/v1", "version": "v1"})
        );
        assert_eq!(api_group(&served(), "coordination.k8s.io").expect("group")["kind"], "APIGroup");
        assert!(api_group(&served(), "").is_none() && api_group(&served(), "batch.example").is_none());
        let leases = api_resource_list(&served(), "coordination.k8s.io", "v1").expect("leases");
        assert_eq!(leases["groupVersion"], "coordination.k8s.io/v1");
        assert_eq!(leases["resources"][0]["name"], "leases");
        assert!(api_resource_list(&served(), "coordination.k8s.io", "v2").is_none());

        let core = aggregated(&served(), "v2", true);
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
        assert!(core["items"][0]["metadata"].get("name").is_none());
        let named = aggregated(&served(), "v2", false);
        assert_eq!(named["items"][0]["metadata"]["name"], "coordination.k8s.io");
        let lease = &named["items"][0]["versions"][0]["resources"][0];
        assert_eq!(lease["responseKind"], json!({"group": "coordination.k8s.io", "version": "v1", "kind": "Lease"}));
        assert_eq!(lease["scope"], "Namespaced");
    }

    /// As a 1.32 API server lists them: the RBAC kinds with no short names, ServiceAccounts as
    /// `sa` with `serviceaccounts/token` answering an `authentication.k8s.io/v1` TokenRequest.
    #[test]
    fn rbac_kinds_and_service_accounts() {
        let rbac = api_resource_list(&served(), "rbac.authorization.k8s.io", "v1").expect("rbac");
        let resources = rbac["resources"].as_array().expect("list");
        let names: Vec<(&str, bool)> =
            resources.iter().map(|r| (r["name"].as_str().unwrap_or(""), r["namespaced"] == true)).collect();
        assert_eq!(
            names,
            [("clusterrolebindings", false), ("clusterroles", false), ("rolebindings", true), ("roles", true)]
        );
        assert!(resources.iter().all(|r| r.get("shortNames").is_none() && r["verbs"] == json!(kinds::VERBS)));
        assert!(
            api_group_list(&served())["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .any(|g| g["name"] == kinds::RBAC_GROUP)
        );

        let core = api_resource_list(&served(), "", "v1").expect("core");
        let core = core["resources"].as_array().expect("list");
        let sa = core.iter().find(|r| r["name"] == "serviceaccounts").expect("serviceaccounts");
        assert_eq!((&sa["shortNames"], &sa["kind"]), (&json!(["sa"]), &json!("ServiceAccount")));
        let token = core.iter().find(|r| r["name"] == "serviceaccounts/token").expect("token");
        assert_eq!(
            token,
            &json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
                "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]})
        );
        let aggregated = aggregated(&served(), "v2", true);
        let resources = aggregated["items"][0]["versions"][0]["resources"].as_array().expect("resources");
        let sa = resources.iter().find(|r| r["resource"] == "serviceaccounts").expect("serviceaccounts");
        assert_eq!(
            sa["subresources"],
            json!([{"subresource": "token", "verbs": ["create"],
                "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}}])
        );
    }
}
