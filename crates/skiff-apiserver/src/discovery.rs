//! Discovery documents: `/version`, `/api`, `/apis`, `/api/v1`, legacy and aggregated (v2, v2beta1).

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
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

pub fn api_group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
}

pub fn api_resource_list() -> Value {
    let mut resources = Vec::new();
    for k in kinds::all() {
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
            resources
                .push(json!({"name": format!("{}/{sub}", i.plural), "singularName": "", "namespaced": i.namespaced,
                "kind": kind, "verbs": verbs}));
        }
    }
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": resources})
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

/// Aggregated discovery for the core group (`/api`) or the named groups (`/apis`, none yet).
pub fn aggregated(version: &str, core: bool) -> Value {
    let mut items = Vec::new();
    if core {
        let resources: Vec<Value> = kinds::all()
            .iter()
            .map(|k| {
                let i = k.info();
                let subs: Vec<Value> = i
                    .subresources
                    .iter()
                    .map(|(s, kind, verbs)| {
                        json!({"subresource": s, "responseKind": {"group": "", "version": "v1", "kind": kind}, "verbs": verbs})
                    })
                    .collect();
                let mut r = json!({"resource": i.plural, "responseKind": {"group": "", "version": "v1", "kind": i.kind},
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
            })
            .collect();
        items.push(json!({"metadata": {"creationTimestamp": null},
            "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}]}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let l = api_resource_list();
        let pods = l["resources"].as_array().expect("list").iter().find(|r| r["name"] == "pods").expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert!(l["resources"].as_array().expect("list").iter().any(|r| r["name"] == "pods/status"));
    }
}
