//! `desired`: which pods a Service's endpoints hold, in which families, and how they stand;
//! `pair_slices`: which existing slices are reused.

use super::*;
use serde_json::json;

fn service(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default", "uid": "s1"}, "spec": spec}))
        .expect("service")
}

/// A pod labelled app=web at `ip`, Ready or not, with a container port named `http` = 8080.
fn pod(name: &str, ip: Option<&str>, ready: bool) -> Arc<Pod> {
    let status = if ready { "True" } else { "False" };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "node1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": status}]},
        }))
        .expect("pod"),
    )
}

fn web() -> Service {
    service(
        json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]}),
    )
}

#[test]
fn ready_pods_are_addresses_others_not_ready_and_pods_without_an_ip_are_left_out() {
    let pods = [pod("a", Some("10.42.0.6"), true), pod("b", Some("10.42.0.5"), false), pod("c", None, true)];
    let d = desired(&web(), &pods).expect("a selector");
    let subsets = d.endpoints.subsets.clone().expect("subsets");
    assert_eq!(subsets.len(), 1);
    let ips = |v: &Option<Vec<EndpointAddress>>| v.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>();
    assert_eq!(ips(&subsets[0].addresses), ["10.42.0.6"]);
    assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.42.0.5"]);
    let port = &subsets[0].ports.as_ref().expect("ports")[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
    assert_eq!(d.slices.len(), 1);
    let DesiredSlice { ports, endpoints, .. } = &d.slices[0];
    assert_eq!(ports[0].port, Some(8080));
    let conditions: Vec<(String, Option<bool>)> =
        endpoints.iter().map(|e| (e.addresses[0].clone(), e.conditions.as_ref().and_then(|c| c.ready))).collect();
    assert_eq!(conditions, [("10.42.0.5".into(), Some(false)), ("10.42.0.6".into(), Some(true))]);
    assert_eq!(endpoints[1].node_name.as_deref(), Some("node1"));
    assert_eq!(endpoints[1].target_ref.as_ref().and_then(|r| r.name.as_deref()), Some("a"));
}

#[test]
fn terminating_pods_drain_from_endpoints_but_stay_in_slices_as_terminating() {
    let mut going = Pod::clone(&pod("a", Some("10.42.0.6"), true));
    going.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()));
    let d = desired(&web(), &[Arc::new(going)]).expect("a selector");
    assert_eq!(d.endpoints.subsets, None);
    let c = d.slices[0].endpoints[0].conditions.clone().expect("conditions");
    assert_eq!((c.ready, c.serving, c.terminating), (Some(false), Some(true), Some(true)));
}

#[test]
fn services_without_selectors_are_not_ours_and_no_pods_is_one_empty_slice() {
    assert_eq!(desired(&service(json!({"ports": [{"port": 443}]})), &[]), None);
    let d = desired(
        &service(json!({"selector": {"app": "none"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]})),
        &[pod("a", Some("10.42.0.6"), true)],
    )
    .expect("a selector");
    assert_eq!(d.endpoints.subsets, None);
    assert_eq!(d.slices.len(), 1);
    assert_eq!(d.slices[0].ports[0].port, Some(8080));
    assert!(d.slices[0].endpoints.is_empty());
}

#[test]
fn a_slice_holds_at_most_a_hundred_endpoints_and_finished_pods_are_out() {
    let mut pods: Vec<Arc<Pod>> =
        (0..250).map(|i| pod(&format!("p{i}"), Some(&format!("10.42.{}.{}", i / 200, i % 200 + 1)), true)).collect();
    let mut done = Pod::clone(&pods[0]);
    done.status.as_mut().expect("status").phase = Some("Succeeded".into());
    pods[0] = Arc::new(done);
    let d = desired(&web(), &pods).expect("a selector");
    let sizes: Vec<usize> = d.slices.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, [100, 100, 49]);
}

/// A pod like [`pod`] with `status.podIPs` = `ips` (and `podIP` their first), named `name` as
/// the host `name` under the subdomain `web`.
fn dual(name: &str, ips: &[&str], ready: bool) -> Arc<Pod> {
    let mut p = Pod::clone(&pod(name, ips.first().copied(), ready));
    let spec = p.spec.as_mut().expect("spec");
    (spec.hostname, spec.subdomain) = (Some(name.into()), Some("web".into()));
    p.status.as_mut().expect("status").pod_ips =
        Some(ips.iter().map(|ip| k8s_openapi::api::core::v1::PodIP { ip: ip.to_string() }).collect());
    Arc::new(p)
}

fn web_with(extra: serde_json::Value) -> Service {
    let mut spec = json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]});
    spec.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    service(spec)
}

/// An endpoint as (addresses, hostname).
type Seen = (Vec<String>, Option<String>);

/// Each slice as (addressType, its endpoints).
fn by_family(d: &Desired) -> Vec<(&'static str, Vec<Seen>)> {
    d.slices
        .iter()
        .map(|s| {
            let eps = s.endpoints.iter().map(|e| (e.addresses.clone(), e.hostname.clone())).collect();
            (s.address_type.as_str(), eps)
        })
        .collect()
}

fn endpoints_ips(d: &Desired) -> (Vec<String>, Vec<String>) {
    let subsets = d.endpoints.subsets.clone().unwrap_or_default();
    let ips = |f: fn(&EndpointSubset) -> &Option<Vec<EndpointAddress>>| {
        subsets.iter().flat_map(|s| f(s).iter().flatten().map(|a| a.ip.clone())).collect()
    };
    (ips(|s| &s.addresses), ips(|s| &s.not_ready_addresses))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_dual_stack_service_has_slices_of_each_family_and_endpoints_of_its_primary_one() {
    let pods = [
        dual("a", &["10.42.0.6", "fd00:42::6"], true),
        dual("b", &["10.42.0.5"], false),
        dual("c", &["fd00:42::7"], true),
    ];
    let svc = web_with(json!({"ipFamilies": ["IPv4", "IPv6"], "clusterIPs": ["10.43.0.9", "fd00:43::9"]}));
    let d = desired(&svc, &pods).expect("a selector");
    let host = |h: &str| Some(h.to_string());
    assert_eq!(
        by_family(&d),
        [
            ("IPv4", vec![(strings(&["10.42.0.5"]), host("b")), (strings(&["10.42.0.6"]), host("a"))]),
            ("IPv6", vec![(strings(&["fd00:42::6"]), host("a")), (strings(&["fd00:42::7"]), host("c"))]),
        ]
    );
    // Every family's slices carry the same ports and conditions.
    assert!(d.slices.iter().all(|s| s.ports[0].port == Some(8080)));
    let ready: Vec<Option<bool>> =
        d.slices[1].endpoints.iter().map(|e| e.conditions.as_ref().and_then(|c| c.ready)).collect();
    assert_eq!(ready, [Some(true), Some(true)]);
    // Endpoints: IPv4 only; the IPv6-only pod is left out.
    assert_eq!(endpoints_ips(&d), (strings(&["10.42.0.6"]), strings(&["10.42.0.5"])));

    // IPv6 primary: the Endpoints hold the IPv6 addresses, and its slices come first.
    let svc = web_with(json!({"ipFamilies": ["IPv6", "IPv4"], "clusterIPs": ["fd00:43::9", "10.43.0.9"]}));
    let d = desired(&svc, &pods).expect("a selector");
    let families: Vec<&str> = d.slices.iter().map(|s| s.address_type.as_str()).collect();
    assert_eq!(families, ["IPv6", "IPv4"]);
    assert_eq!(endpoints_ips(&d), (strings(&["fd00:42::6", "fd00:42::7"]), vec![]));
}

#[test]
fn a_family_without_endpoints_has_one_empty_slice_and_single_stack_pods_stay_in_their_family() {
    let pods = [dual("a", &["10.42.0.6"], true)];
    let d =
        desired(&web_with(json!({"ipFamilies": ["IPv6"], "clusterIPs": ["fd00:43::9"]})), &pods).expect("a selector");
    assert_eq!(by_family(&d), [("IPv6", vec![])]);
    // A named target port needs a pod to resolve.
    assert!(d.slices[0].ports.is_empty());
    assert_eq!(d.endpoints.subsets, None);

    let svc = web_with(json!({"ipFamilies": ["IPv4", "IPv6"], "clusterIPs": ["10.43.0.9", "fd00:43::9"]}));
    let d = desired(&svc, &pods).expect("a selector");
    assert_eq!(by_family(&d), [("IPv4", vec![(strings(&["10.42.0.6"]), Some("a".into()))]), ("IPv6", vec![])]);
}

#[test]
fn families_come_from_ip_families_else_cluster_ips_else_ipv4() {
    let of = |spec: serde_json::Value| -> Vec<&'static str> {
        families(service(spec).spec.as_ref().expect("spec")).into_iter().map(Family::as_str).collect()
    };
    assert_eq!(of(json!({"ipFamilies": ["IPv6", "IPv4"], "clusterIPs": ["fd00::1", "10.43.0.1"]})), ["IPv6", "IPv4"]);
    assert_eq!(of(json!({"ipFamilies": ["IPv6"], "clusterIP": "None", "clusterIPs": ["None"]})), ["IPv6"]);
    // Objects from before ipFamilies: the cluster IPs say.
    assert_eq!(of(json!({"clusterIP": "fd00:43::1"})), ["IPv6"]);
    assert_eq!(of(json!({"clusterIP": "10.43.0.1", "clusterIPs": ["10.43.0.1", "fd00:43::1"]})), ["IPv4", "IPv6"]);
    assert_eq!(of(json!({"clusterIP": "None"})), ["IPv4"]);
    assert_eq!(of(json!({})), ["IPv4"]);
}

#[test]
fn an_old_headless_service_lists_each_pod_by_its_pod_ip_family_in_endpoints() {
    // Upstream's fallback without ipFamilies: a headless Service's Endpoints take the family of
    // each pod's `status.podIP`.
    let v6_first = dual("a", &["fd00:42::6", "10.42.0.6"], true);
    let v4_first = dual("b", &["10.42.0.5", "fd00:42::5"], true);
    let d = desired(&web_with(json!({"clusterIP": "None"})), &[v6_first.clone(), v4_first]).expect("a selector");
    assert_eq!(endpoints_ips(&d), (strings(&["10.42.0.5", "fd00:42::6"]), vec![]));
    // An old headful one: the cluster IP's.
    let d = desired(&web_with(json!({"clusterIP": "fd00:43::1"})), &[v6_first]).expect("a selector");
    assert_eq!(endpoints_ips(&d), (strings(&["fd00:42::6"]), vec![]));
    assert_eq!(by_family(&d), [("IPv6", vec![(strings(&["fd00:42::6"]), Some("a".into()))])]);
}

#[test]
fn addresses_are_spelled_as_upstream_spells_them() {
    // RFC 5952 for IPv6, an IPv4-mapped address as IPv4, and what does not parse left out.
    let pods = [dual("a", &["FD00:0042:0:0::6", "::ffff:10.42.0.6"], true), dual("b", &["nonsense"], true)];
    let svc = web_with(json!({"ipFamilies": ["IPv4", "IPv6"], "clusterIPs": ["10.43.0.9", "fd00:43::9"]}));
    let d = desired(&svc, &pods).expect("a selector");
    assert_eq!(
        by_family(&d),
        [
            ("IPv4", vec![(strings(&["10.42.0.6"]), Some("a".into()))]),
            ("IPv6", vec![(strings(&["fd00:42::6"]), Some("a".into()))]),
        ]
    );
}

#[test]
fn slices_are_reused_within_their_family_and_those_of_a_dropped_family_are_deleted() {
    let existing = |name: &str, address_type: &str| -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name}, "addressType": address_type, "endpoints": []}))
                .expect("slice"),
        )
    };
    let names =
        |v: &[Arc<EndpointSlice>]| v.iter().map(|s| s.metadata.name.clone().unwrap_or_default()).collect::<Vec<_>>();
    let pods = [dual("a", &["10.42.0.6", "fd00:42::6"], true)];

    // IPv4 → IPv6 only: the IPv6 slice is kept, the IPv4 one goes.
    let d = desired(&web_with(json!({"ipFamilies": ["IPv6"], "clusterIPs": ["fd00:43::9"]})), &pods).expect("selector");
    let (pairs, unused) = pair_slices(vec![existing("web-4", "IPv4"), existing("web-6", "IPv6")], &d.slices);
    let reused: Vec<(&str, Option<String>)> = pairs
        .iter()
        .map(|(w, s)| (w.address_type.as_str(), s.as_ref().and_then(|s| s.metadata.name.clone())))
        .collect();
    assert_eq!(reused, [("IPv6", Some("web-6".into()))]);
    assert_eq!(names(&unused), ["web-4"]);

    // Single stack → dual stack: the IPv4 slice is reused for IPv4 only, an IPv6 one is new.
    let svc = web_with(json!({"ipFamilies": ["IPv4", "IPv6"], "clusterIPs": ["10.43.0.9", "fd00:43::9"]}));
    let d = desired(&svc, &pods).expect("selector");
    let (pairs, unused) = pair_slices(vec![existing("web-4", "IPv4")], &d.slices);
    let reused: Vec<(&str, Option<String>)> = pairs
        .iter()
        .map(|(w, s)| (w.address_type.as_str(), s.as_ref().and_then(|s| s.metadata.name.clone())))
        .collect();
    assert_eq!(reused, [("IPv4", Some("web-4".into())), ("IPv6", None)]);
    assert!(unused.is_empty());
}
