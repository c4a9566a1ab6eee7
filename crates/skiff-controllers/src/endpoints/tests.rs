//! `desired`: which pods a Service's endpoints hold, and how they stand.

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
    let (ports, endpoints) = &d.slices[0];
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
    let c = d.slices[0].1[0].conditions.clone().expect("conditions");
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
    assert_eq!(d.slices[0].0[0].port, Some(8080));
    assert!(d.slices[0].1.is_empty());
}

#[test]
fn a_slice_holds_at_most_a_hundred_endpoints_and_finished_pods_are_out() {
    let mut pods: Vec<Arc<Pod>> =
        (0..250).map(|i| pod(&format!("p{i}"), Some(&format!("10.42.{}.{}", i / 200, i % 200 + 1)), true)).collect();
    let mut done = Pod::clone(&pods[0]);
    done.status.as_mut().expect("status").phase = Some("Succeeded".into());
    pods[0] = Arc::new(done);
    let d = desired(&web(), &pods).expect("a selector");
    let sizes: Vec<usize> = d.slices.iter().map(|(_, e)| e.len()).collect();
    assert_eq!(sizes, [100, 100, 49]);
}
