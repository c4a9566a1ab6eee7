//! Services through the registry: cluster IPs and node ports claimed, refused, released and
//! reclaimed as `crate::services` promises, over the in-memory store.

use super::*;
use crate::services::{ServiceRanges, parse_cidr};
use skiff_core::kinds::SERVICES;
use skiff_core::meta;
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

/// A registry on `cidr` (one range, or two), with the node ports of [`registry`].
async fn registry_on(cidr: &str) -> Registry {
    let ranges = ServiceRanges { cidr: parse_cidr(cidr).expect("cidr"), node_ports: 30000..=30002 };
    let reg = Registry::with_service_ranges(Arc::new(MemoryStore::new()), ranges);
    reg.ensure_namespace("default").await.expect("namespace");
    reg
}

/// A dual-stack registry: 6 IPv4 addresses, 7 IPv6 ones (an IPv6 range has no broadcast).
async fn dual() -> Registry {
    registry_on("10.96.0.0/29,fd00:96::/125").await
}

fn web(spec: Value) -> Value {
    let mut spec = spec;
    spec["ports"] = json!([{"port": 80}]);
    spec
}

fn svc_ref(name: &str) -> ObjectRef<'_> {
    ObjectRef { kind: SERVICES, namespace: "default", name }
}

async fn update(reg: &Registry, svc: Value) -> Result<Value, ApiError> {
    let name = meta::name(&svc).to_string();
    reg.update(svc_ref(&name), svc, skiff_core::kinds::Part::Main, &opts()).await
}

async fn claimed(reg: &Registry, ip: &str) -> bool {
    reg.store().get(&format!("/registry/skiff/serviceips/{ip}")).await.expect("get").is_some()
}

fn ip_of(svc: &Value, i: usize) -> std::net::IpAddr {
    svc["spec"]["clusterIPs"][i].as_str().and_then(|s| s.parse().ok()).expect("an address")
}

#[tokio::test]
async fn a_single_stack_cluster_gives_one_family_and_refuses_the_other() {
    let reg = registry().await;
    let prefer = create(&reg, "prefer", web(json!({"ipFamilyPolicy": "PreferDualStack"}))).await.expect("prefer");
    assert_eq!(prefer["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(prefer["spec"]["ipFamilyPolicy"], "PreferDualStack");
    assert_eq!(prefer["spec"]["clusterIPs"].as_array().map(Vec::len), Some(1));
    let require = create(&reg, "require", web(json!({"ipFamilyPolicy": "RequireDualStack"}))).await;
    assert_eq!(
        message(require.expect_err("no second family")),
        "Service \"require\" is invalid: spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
    );
    let v6 = create(&reg, "v6", web(json!({"ipFamilies": ["IPv6"]}))).await;
    assert_eq!(
        message(v6.expect_err("no IPv6")),
        "Service \"v6\" is invalid: spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"
    );
    let both = create(&reg, "both", web(json!({"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"})));
    assert_eq!(
        message(both.await.expect_err("no IPv6")),
        "Service \"both\" is invalid: spec.ipFamilies[1]: Invalid value: \"IPv6\": not configured on this cluster"
    );
    let asked = create(&reg, "asked", web(json!({"clusterIP": "fd00::5", "clusterIPs": ["fd00::5"]}))).await;
    assert_eq!(
        message(asked.expect_err("no IPv6")),
        "Service \"asked\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"fd00::5\"}: IPv6 is not configured on this cluster"
    );
    let single = create(&reg, "single", web(json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4", "IPv6"]})));
    assert_eq!(
        message(single.await.expect_err("two families, one stack")),
        "Service \"single\" is invalid: spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"
    );
    // Nothing was claimed by the refused ones: the five other addresses are free.
    for i in 0..5 {
        create(&reg, &format!("s{i}"), web(json!({}))).await.expect("a free address");
    }
}

#[tokio::test]
async fn headless_and_external_name_services_get_families_as_upstream() {
    for (cidr, selectorless) in
        [("10.96.0.0/29", json!(["IPv4", "IPv6"])), ("fd00:96::/125,10.96.0.0/29", json!(["IPv6", "IPv4"]))]
    {
        let reg = registry_on(cidr).await;
        // Headless without a selector: both families, whatever the cluster has.
        let bare = create(&reg, "bare", json!({"clusterIP": "None"})).await.expect("headless");
        assert_eq!(bare["spec"]["ipFamilyPolicy"], "RequireDualStack", "{cidr}");
        assert_eq!(bare["spec"]["ipFamilies"], selectorless, "{cidr}");
        assert_eq!(bare["spec"]["clusterIPs"], json!(["None"]));
        // With a selector: as any service, the primary family by default.
        let selected = create(&reg, "selected", json!({"clusterIP": "None", "selector": {"app": "web"}}));
        let selected = selected.await.expect("headless");
        assert_eq!(selected["spec"]["ipFamilyPolicy"], "SingleStack");
        assert_eq!(selected["spec"]["ipFamilies"], json!([selectorless[0]]));
        let external = create(&reg, "db", json!({"type": "ExternalName", "externalName": "db.example.com"}));
        let external = external.await.expect("external name");
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            assert_eq!(external["spec"].get(f), None, "{f}");
        }
        // From ExternalName to ClusterIP: families and an address, as on create.
        let mut internal = external.clone();
        internal["spec"] = web(json!({"type": "ClusterIP"}));
        let internal = update(&reg, internal).await.expect("to ClusterIP");
        assert_eq!(internal["spec"]["ipFamilyPolicy"], "SingleStack");
        assert_eq!(internal["spec"]["ipFamilies"], json!([selectorless[0]]));
        assert!(claimed(&reg, internal["spec"]["clusterIP"].as_str().unwrap_or_default()).await, "{cidr}");
    }
    // A headless PreferDualStack service with a selector on a dual-stack cluster: both families.
    let reg = dual().await;
    let spec = json!({"clusterIP": "None", "selector": {"app": "web"}, "ipFamilyPolicy": "PreferDualStack"});
    let prefer = create(&reg, "prefer", spec).await.expect("headless");
    assert_eq!(prefer["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert_eq!(prefer["spec"]["clusterIPs"], json!(["None"]));
}

#[tokio::test]
async fn a_dual_stack_cluster_gives_addresses_in_the_order_of_the_families() {
    let reg = dual().await;
    let v4: ipnet::IpNet = "10.96.0.0/29".parse().expect("net");
    let v6: ipnet::IpNet = "fd00:96::/125".parse().expect("net");
    // The family of a requested address is the service's when it names none.
    let asked = create(&reg, "asked", web(json!({"clusterIP": "fd00:96::5", "clusterIPs": ["fd00:96::5"]})));
    let asked = asked.await.expect("asked");
    assert_eq!(
        (asked["spec"]["ipFamilies"].clone(), asked["spec"]["clusterIP"].clone()),
        (json!(["IPv6"]), json!("fd00:96::5"))
    );
    // No policy: SingleStack, the primary family.
    let single = create(&reg, "single", web(json!({}))).await.expect("single");
    assert_eq!(single["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(single["spec"]["ipFamilies"], json!(["IPv4"]));
    assert!(v4.contains(&ip_of(&single, 0)));
    // PreferDualStack: both, primary first.
    let prefer = create(&reg, "prefer", web(json!({"ipFamilyPolicy": "PreferDualStack"}))).await.expect("prefer");
    assert_eq!(prefer["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert!(v4.contains(&ip_of(&prefer, 0)) && v6.contains(&ip_of(&prefer, 1)), "{}", prefer["spec"]);
    assert_eq!(prefer["spec"]["clusterIP"], prefer["spec"]["clusterIPs"][0]);
    assert!(claimed(&reg, &ip_of(&prefer, 1).to_string()).await);
    // IPv6 first makes it the primary.
    let six = create(&reg, "six", web(json!({"ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "RequireDualStack"})));
    let six = six.await.expect("v6 first");
    assert_eq!(six["spec"]["ipFamilies"], json!(["IPv6", "IPv4"]));
    assert!(v6.contains(&ip_of(&six, 0)) && v4.contains(&ip_of(&six, 1)), "{}", six["spec"]);
    assert_eq!(six["spec"]["clusterIP"], six["spec"]["clusterIPs"][0]);
    // RequireDualStack naming one family gets the other too.
    let require = create(&reg, "require", web(json!({"ipFamilies": ["IPv6"], "ipFamilyPolicy": "RequireDualStack"})));
    assert_eq!(require.await.expect("require")["spec"]["ipFamilies"], json!(["IPv6", "IPv4"]));
}

#[tokio::test]
async fn requested_dual_stack_addresses_are_checked_and_released_on_failure() {
    let reg = dual().await;
    let both = json!({"clusterIP": "10.96.0.2", "clusterIPs": ["10.96.0.2", "fd00:96::2"], "ipFamilyPolicy": "RequireDualStack"});
    let svc = create(&reg, "both", web(both)).await.expect("both");
    assert_eq!(svc["spec"]["clusterIPs"], json!(["10.96.0.2", "fd00:96::2"]));
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    // Written otherwise, the same IPv6 address is the same claim.
    let again = json!({"clusterIP": "10.96.0.3", "clusterIPs": ["10.96.0.3", "fd00:96:0:0::2"], "ipFamilyPolicy": "RequireDualStack"});
    let taken = create(&reg, "again", web(again)).await;
    assert_eq!(
        message(taken.expect_err("taken")),
        "Service \"again\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.96.0.3\", \"fd00:96:0:0::2\"}: failed to allocate IP fd00:96:0:0::2: provided IP is already allocated"
    );
    assert!(!claimed(&reg, "10.96.0.3").await, "the IPv4 claim of the failed create was released");
    let outside = json!({"clusterIP": "10.96.0.4", "clusterIPs": ["10.96.0.4", "fd00:97::4"], "ipFamilyPolicy": "PreferDualStack"});
    let outside = create(&reg, "outside", web(outside)).await;
    assert_eq!(
        message(outside.expect_err("outside")),
        "Service \"outside\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.96.0.4\", \"fd00:97::4\"}: failed to allocate IP fd00:97::4: the provided IP (fd00:97::4) is not in the valid range. The range of valid IPs is fd00:96::/125"
    );
    // The network's own address is no service's.
    let network = create(&reg, "network", web(json!({"clusterIP": "fd00:96::", "clusterIPs": ["fd00:96::"]}))).await;
    assert!(message(network.expect_err("network")).contains("is not in the valid range"));
    // One address asked for, two families: the other is allocated.
    let half = json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"], "ipFamilyPolicy": "PreferDualStack"});
    let half = create(&reg, "half", web(half)).await.expect("half");
    assert_eq!(half["spec"]["clusterIPs"][0], "10.96.0.5");
    assert!(ip_of(&half, 1).is_ipv6());
    let single = json!({"clusterIP": "10.96.0.6", "clusterIPs": ["10.96.0.6", "fd00:96::6"]});
    let single = create(&reg, "single", web(single)).await;
    assert_eq!(
        message(single.expect_err("two addresses, one stack")),
        "Service \"single\" is invalid: spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"
    );
}

#[tokio::test]
async fn the_ipv6_range_fills_up_and_a_full_range_leaves_nothing_claimed() {
    let reg = dual().await;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..7 {
        let svc = create(&reg, &format!("v6-{i}"), web(json!({"ipFamilies": ["IPv6"]}))).await.expect("v6");
        let ip = ip_of(&svc, 0);
        assert!(seen.insert(ip), "{ip} handed out twice");
        assert_ne!(ip.to_string(), "fd00:96::");
    }
    // fd00:96::7 is a usable address: IPv6 has no broadcast.
    assert!(seen.contains(&"fd00:96::7".parse::<std::net::IpAddr>().expect("ip")));
    let full = create(&reg, "full", web(json!({"ipFamilyPolicy": "PreferDualStack"}))).await.expect_err("full");
    assert_eq!(full.code(), 500);
    assert!(message(full).contains("failed to allocate a serviceIP: range is full"));
    // The IPv4 address it took first went back: all six are still free.
    for i in 0..6 {
        create(&reg, &format!("v4-{i}"), web(json!({}))).await.expect("a free IPv4 address");
    }
}

#[tokio::test]
async fn upgrades_allocate_the_secondary_and_downgrades_release_it() {
    let reg = dual().await;
    let svc = create(&reg, "web", web(json!({}))).await.expect("create");
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    // Upgrade: the policy alone is enough.
    let mut up = svc.clone();
    up["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
    let up = update(&reg, up).await.expect("upgrade");
    assert_eq!(up["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert_eq!(up["spec"]["clusterIPs"][0], svc["spec"]["clusterIP"]);
    let secondary = ip_of(&up, 1);
    assert!(secondary.is_ipv6() && claimed(&reg, &secondary.to_string()).await);
    // A replace from the original file (no addresses, no families, no policy) keeps both.
    let replaced = update(&reg, service("web", web(json!({})))).await.expect("replace");
    assert_eq!(replaced["spec"]["clusterIPs"], up["spec"]["clusterIPs"]);
    assert_eq!(replaced["spec"]["ipFamilyPolicy"], "PreferDualStack");
    // Dropping the secondary needs SingleStack.
    let mut half = up.clone();
    half["spec"]["clusterIPs"] = json!([svc["spec"]["clusterIP"]]);
    let half = update(&reg, half).await;
    assert_eq!(
        message(half.expect_err("not single")),
        "Service \"web\" is invalid: spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be 'SingleStack' to release the secondary cluster IP"
    );
    // Downgrade: SingleStack, the rest as it was.
    let mut down = up.clone();
    down["spec"]["ipFamilyPolicy"] = json!("SingleStack");
    let down = update(&reg, down).await.expect("downgrade");
    assert_eq!(down["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(down["spec"]["clusterIPs"], json!([svc["spec"]["clusterIP"]]));
    assert!(!claimed(&reg, &secondary.to_string()).await, "the secondary was released");
    // The primary family may not change: the kept address is of the old one.
    let mut swapped = down.clone();
    swapped["spec"]["ipFamilies"] = json!(["IPv6"]);
    swapped["spec"].as_object_mut().map(|s| (s.remove("clusterIP"), s.remove("clusterIPs")));
    let swapped = update(&reg, swapped).await;
    assert_eq!(
        message(swapped.expect_err("primary family")),
        format!(
            "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: {}: expected an IPv6 value as indicated by `ipFamilies[0]`",
            svc["spec"]["clusterIP"]
        )
    );
    // Upgrade naming the secondary address.
    let mut named = down.clone();
    named["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    named["spec"]["clusterIPs"] = json!([svc["spec"]["clusterIP"], "fd00:96::3"]);
    let named = update(&reg, named).await.expect("named upgrade");
    assert_eq!(named["spec"]["clusterIPs"][1], "fd00:96::3");
    assert!(claimed(&reg, "fd00:96::3").await);
    // To ExternalName: the fields go and every address is released.
    let mut external = named.clone();
    external["spec"]["type"] = json!("ExternalName");
    external["spec"]["externalName"] = json!("db.example.com");
    let external = update(&reg, external).await.expect("external name");
    assert_eq!(external["spec"].get("clusterIPs"), None);
    assert_eq!(external["spec"].get("ipFamilies"), None);
    assert!(!claimed(&reg, "fd00:96::3").await);
    assert!(!claimed(&reg, svc["spec"]["clusterIP"].as_str().unwrap_or_default()).await);
}

#[tokio::test]
async fn an_ipv6_primary_cluster_gives_ipv6_first_and_the_kubernetes_service_its_first_address() {
    let reg = registry_on("fd00:96::/120,10.96.0.0/29").await;
    let svc = create(&reg, "web", web(json!({}))).await.expect("create");
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv6"]));
    assert!(ip_of(&svc, 0).is_ipv6());
    let prefer = create(&reg, "prefer", web(json!({"ipFamilyPolicy": "PreferDualStack"}))).await.expect("prefer");
    assert_eq!(prefer["spec"]["ipFamilies"], json!(["IPv6", "IPv4"]));
    reg.ensure_kubernetes_service(6443).await.expect("kubernetes");
    let k = reg.get(svc_ref("kubernetes")).await.expect("get");
    assert_eq!(k["spec"]["clusterIPs"], json!(["fd00:96::1"]));
    assert_eq!(
        (k["spec"]["ipFamilies"].clone(), k["spec"]["ipFamilyPolicy"].clone()),
        (json!(["IPv6"]), json!("SingleStack"))
    );
}
