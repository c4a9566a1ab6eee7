//! Services through the registry: cluster IPs and node ports claimed, refused, released and
//! reclaimed as `crate::services` promises, over the in-memory store.

use super::*;
use crate::services::{ServiceRanges, parse_cidr};
use skiff_core::kinds::SERVICES;
use skiff_store::MemoryStore;

/// A registry whose services come from a /29 (6 addresses) and 3 node ports.
async fn registry() -> Registry {
    let ranges = ServiceRanges { cidr: parse_cidr("10.96.0.0/29").expect("cidr"), node_ports: 30000..=30002 };
    let reg = Registry::with_service_ranges(Arc::new(MemoryStore::new()), ranges);
    reg.ensure_namespace("default").await.expect("namespace");
    reg
}

fn opts() -> WriteOptions {
    WriteOptions { field_manager: "test".into(), ..Default::default() }
}

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

async fn create(reg: &Registry, name: &str, spec: Value) -> Result<Value, ApiError> {
    reg.create(SERVICES, "default", service(name, spec), &opts()).await
}

fn message(e: ApiError) -> String {
    e.to_string()
}

#[tokio::test]
async fn addresses_are_unique_until_the_range_is_full_and_come_back_on_delete() {
    let reg = registry().await;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..6 {
        let svc = create(&reg, &format!("s{i}"), json!({"ports": [{"port": 80}]})).await.expect("create");
        let ip = svc["spec"]["clusterIP"].as_str().expect("an address").to_string();
        assert_eq!(svc["spec"]["clusterIPs"], json!([ip]));
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
        assert!(seen.insert(ip.clone()), "{ip} handed out twice");
        assert!(!["10.96.0.0", "10.96.0.7"].contains(&ip.as_str()), "{ip}");
    }
    let full = create(&reg, "s6", json!({"ports": [{"port": 80}]})).await.expect_err("full");
    assert_eq!(full.code(), 500);
    assert!(message(full).contains("failed to allocate a serviceIP: range is full"));
    // A delete gives its address back; asking for it by name works.
    let r = ObjectRef { kind: SERVICES, namespace: "default", name: "s0" };
    let gone = reg.delete(r, &DeleteOptions::default(), false).await.expect("delete");
    let crate::registry::Deleted::Gone(gone) = gone else { panic!("a service goes at once") };
    let ip = gone["spec"]["clusterIP"].clone();
    let again = create(&reg, "again", json!({"clusterIP": ip, "ports": [{"port": 80}]})).await.expect("reuse");
    assert_eq!(again["spec"]["clusterIP"], ip);
}

#[tokio::test]
async fn requested_addresses_and_ports_are_checked_as_upstream() {
    let reg = registry().await;
    create(&reg, "a", json!({"clusterIP": "10.96.0.2", "ports": [{"port": 80}]})).await.expect("a");
    let taken = create(&reg, "b", json!({"clusterIP": "10.96.0.2", "ports": [{"port": 80}]})).await;
    assert_eq!(
        message(taken.expect_err("taken")),
        "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.96.0.2\"}: failed to allocate IP 10.96.0.2: provided IP is already allocated"
    );
    let outside = create(&reg, "c", json!({"clusterIP": "10.0.0.1", "ports": [{"port": 80}]})).await;
    assert_eq!(
        message(outside.expect_err("outside")),
        "Service \"c\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.0.0.1\"}: failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/29"
    );
    let np = create(&reg, "np", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]}))
        .await
        .expect("node port");
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30001);
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    let spec = json!({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30001}, {"name": "b", "port": 81, "nodePort": 80}]});
    let bad = create(&reg, "np2", spec).await;
    let text = message(bad.expect_err("taken and out of range"));
    assert!(
        text.contains("spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated"),
        "{text}"
    );
    assert!(text.contains("spec.ports[1].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-30002"), "{text}");
    // The failed create released what it had claimed: two ports remain for one service.
    let two = json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]});
    let ok = create(&reg, "np3", two).await.expect("two free ports");
    let ports: Vec<i64> = (0..2).map(|i| ok["spec"]["ports"][i]["nodePort"].as_i64().unwrap_or(0)).collect();
    assert!(ports.iter().all(|p| [30000, 30002].contains(p)) && ports[0] != ports[1], "{ports:?}");
}

#[tokio::test]
async fn a_claim_whose_service_never_came_is_taken_after_its_grace() {
    let reg = registry().await;
    // Claims as the allocator writes them: one from long ago, one just made.
    let claim = |name: &str, at: String| json!({"namespace": "default", "name": name, "uid": "u", "at": at});
    let stale = claim("ghost", "2020-01-01T00:00:00Z".into());
    let young = claim("ghost2", Timestamp::now().to_string());
    let store = reg.store().clone();
    for (ip, c) in [("10.96.0.2", stale), ("10.96.0.3", young)] {
        let key = format!("/registry/skiff/serviceips/{ip}");
        store.create(&key, serde_json::to_vec(&c).expect("json")).await.expect("claim");
    }
    create(&reg, "a", json!({"clusterIP": "10.96.0.2", "ports": [{"port": 80}]})).await.expect("stale claim taken");
    let held = create(&reg, "b", json!({"clusterIP": "10.96.0.3", "ports": [{"port": 80}]})).await;
    assert!(message(held.expect_err("young claim kept")).contains("provided IP is already allocated"));
}

#[tokio::test]
async fn updates_keep_what_was_given_and_release_what_is_dropped() {
    let reg = registry().await;
    let svc = create(&reg, "web", json!({"type": "NodePort", "ports": [{"port": 80}]})).await.expect("create");
    let port = svc["spec"]["ports"][0]["nodePort"].clone();
    // To ClusterIP: the node port goes back; the address stays.
    let mut internal = svc.clone();
    internal["spec"]["type"] = json!("ClusterIP");
    internal["spec"]["ports"][0].as_object_mut().map(|p| p.remove("nodePort"));
    internal["spec"].as_object_mut().map(|s| s.remove("externalTrafficPolicy"));
    let r = ObjectRef { kind: SERVICES, namespace: "default", name: "web" };
    let updated = reg.update(r, internal, skiff_core::kinds::Part::Main, &opts()).await.expect("update");
    assert_eq!(updated["spec"]["clusterIP"], svc["spec"]["clusterIP"]);
    assert_eq!(updated["spec"]["ports"][0].get("nodePort"), None);
    let other = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]});
    create(&reg, "other", other).await.expect("the released port is free");
}
