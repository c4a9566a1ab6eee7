//! Every kind of name the zone answers, and the ones it does not.

use super::*;
use serde_json::json;

fn service(ns: &str, name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}, "spec": spec})).expect("service")
}

fn slice(ns: &str, svc: &str, endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{svc}-x"), "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "endpoints": endpoints,
    }))
    .expect("slice")
}

fn zone() -> Zone {
    let services = [
        service(
            "default",
            "web",
            json!({"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        service("db", "pg", json!({"clusterIP": "None", "ports": [{"name": "sql", "port": 5432}]})),
        service("default", "ext", json!({"type": "ExternalName", "externalName": "Example.COM"})),
    ];
    let slices = [slice(
        "db",
        "pg",
        json!([
            {"addresses": ["10.42.0.7"], "hostname": "pg-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.8"], "conditions": {"ready": true}},
            {"addresses": ["10.42.0.9"], "hostname": "pg-2", "conditions": {"ready": false}},
        ]),
    )];
    Zone::build("cluster.local", &services, &slices)
}

fn a(ip: &str) -> Record {
    Record::A(ip.parse().expect("ip"))
}

#[test]
fn services_by_name() {
    let z = zone();
    assert_eq!(z.answer("web.default.svc.cluster.local.", Type::A), Answer::Records(vec![a("10.43.0.20")]));
    assert_eq!(z.answer("web.default.svc.cluster.local.", Type::Aaaa), Answer::NoData);
    assert_eq!(z.answer("nope.default.svc.cluster.local.", Type::A), Answer::NxDomain);
    // Headless: every ready endpoint, and the named ones by their own names.
    assert_eq!(z.answer("pg.db.svc.cluster.local.", Type::A), Answer::Records(vec![a("10.42.0.7"), a("10.42.0.8")]));
    assert_eq!(z.answer("pg-0.pg.db.svc.cluster.local.", Type::A), Answer::Records(vec![a("10.42.0.7")]));
    assert_eq!(z.answer("pg-2.pg.db.svc.cluster.local.", Type::A), Answer::NxDomain);
    assert_eq!(
        z.answer("ext.default.svc.cluster.local.", Type::A),
        Answer::Records(vec![Record::Cname("example.com.".into())])
    );
}

#[test]
fn srv_pods_and_reverse_names() {
    let z = zone();
    assert_eq!(
        z.answer("_http._tcp.web.default.svc.cluster.local.", Type::Srv),
        Answer::Records(vec![Record::Srv { port: 80, target: "web.default.svc.cluster.local.".into() }])
    );
    assert_eq!(
        z.answer("_sql._tcp.pg.db.svc.cluster.local.", Type::Srv),
        Answer::Records(vec![
            Record::Srv { port: 5432, target: "pg-0.pg.db.svc.cluster.local.".into() },
            Record::Srv { port: 5432, target: "10-42-0-8.pg.db.svc.cluster.local.".into() },
        ])
    );
    // Each SRV target resolves, the unnamed endpoint's by its dashed address (as CoreDNS).
    assert_eq!(z.answer("10-42-0-8.pg.db.svc.cluster.local.", Type::A), Answer::Records(vec![a("10.42.0.8")]));
    assert_eq!(z.answer("10-42-0-9.pg.db.svc.cluster.local.", Type::A), Answer::NxDomain, "not ready");
    assert_eq!(
        z.answer("8.0.42.10.in-addr.arpa.", Type::Ptr),
        Answer::Records(vec![Record::Ptr("10-42-0-8.pg.db.svc.cluster.local.".into())])
    );
    assert_eq!(z.answer("_http._udp.web.default.svc.cluster.local.", Type::Srv), Answer::NxDomain);
    assert_eq!(z.answer("10-42-0-5.default.pod.cluster.local.", Type::A), Answer::Records(vec![a("10.42.0.5")]));
    assert_eq!(z.answer("x-y.default.pod.cluster.local.", Type::A), Answer::NxDomain);
    assert_eq!(
        z.answer("20.0.43.10.in-addr.arpa.", Type::Ptr),
        Answer::Records(vec![Record::Ptr("web.default.svc.cluster.local.".into())])
    );
    assert_eq!(
        z.answer("7.0.42.10.in-addr.arpa.", Type::Ptr),
        Answer::Records(vec![Record::Ptr("pg-0.pg.db.svc.cluster.local.".into())])
    );
    assert_eq!(z.answer("1.1.168.192.in-addr.arpa.", Type::Ptr), Answer::NotOurs);
}

#[test]
fn the_zone_and_outside_it() {
    let z = zone();
    assert_eq!(z.answer("cluster.local.", Type::A), Answer::NoData);
    assert_eq!(z.answer("default.svc.cluster.local.", Type::A), Answer::NoData);
    assert_eq!(z.answer("a.b.c.d.e.f.cluster.local.", Type::A), Answer::NxDomain);
    assert_eq!(z.answer("example.com.", Type::A), Answer::NotOurs);
    assert_eq!(z.answer("notcluster.local.", Type::A), Answer::NotOurs);
}

#[test]
fn an_unlisted_zone_answers_nothing_to_cache() {
    let z = Zone::unlisted("cluster.local");
    assert_eq!(z.answer("web.default.svc.cluster.local.", Type::A), Answer::NotReady);
    assert_eq!(z.answer("example.com.", Type::A), Answer::NotOurs);
}

fn slice_of(ns: &str, svc: &str, name: &str, address_type: &str, endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": address_type, "endpoints": endpoints,
    }))
    .expect("slice")
}

/// Services of each family and both, and a dual-stack headless one with slices of each family.
fn dual_zone() -> Zone {
    let services = [
        service(
            "default",
            "both",
            json!({"clusterIP": "10.43.0.21", "clusterIPs": ["10.43.0.21", "fd00:43::21"], "ipFamilies": ["IPv4", "IPv6"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        service(
            "default",
            "six",
            json!({"clusterIP": "fd00:43::22", "clusterIPs": ["fd00:43::22"], "ipFamilies": ["IPv6"]}),
        ),
        service(
            "db",
            "pg",
            json!({"clusterIP": "None", "clusterIPs": ["None"], "ipFamilies": ["IPv4", "IPv6"],
                   "ports": [{"name": "sql", "port": 5432}]}),
        ),
    ];
    let slices = [
        slice_of(
            "db",
            "pg",
            "pg-v4",
            "IPv4",
            json!([
                {"addresses": ["10.42.0.7"], "hostname": "pg-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.8"], "conditions": {"ready": true}},
            ]),
        ),
        slice_of(
            "db",
            "pg",
            "pg-v6",
            "IPv6",
            json!([
                {"addresses": ["fd00:42::7"], "hostname": "pg-0", "conditions": {"ready": true}},
                {"addresses": ["fd00:42::8"], "conditions": {"ready": true}},
                {"addresses": ["fd00:42::"], "conditions": {"ready": true}},
                {"addresses": ["fd00:42::9"], "hostname": "pg-3", "conditions": {"ready": true}},
                {"addresses": ["fd00:42::a"], "hostname": "pg-4", "conditions": {"ready": false}},
            ]),
        ),
    ];
    Zone::build("cluster.local", &services, &slices)
}

fn aaaa(ip: &str) -> Record {
    Record::Aaaa(ip.parse().expect("ip"))
}

#[test]
fn cluster_ips_answer_in_their_family() {
    let z = dual_zone();
    let both = "both.default.svc.cluster.local.";
    assert_eq!(z.answer(both, Type::A), Answer::Records(vec![a("10.43.0.21")]));
    assert_eq!(z.answer(both, Type::Aaaa), Answer::Records(vec![aaaa("fd00:43::21")]));
    let six = "six.default.svc.cluster.local.";
    assert_eq!(z.answer(six, Type::Aaaa), Answer::Records(vec![aaaa("fd00:43::22")]));
    // The name exists, with no IPv4 address: no data, not NXDOMAIN.
    assert_eq!(z.answer(six, Type::A), Answer::NoData);
    assert_eq!(z.answer(six, Type::Srv), Answer::NoData);
    // A dual-stack Service's SRV is one target, as before.
    assert_eq!(
        z.answer("_http._tcp.both.default.svc.cluster.local.", Type::Srv),
        Answer::Records(vec![Record::Srv { port: 80, target: both.into() }])
    );
}

#[test]
fn headless_services_answer_each_family_from_its_slices() {
    let z = dual_zone();
    let pg = "pg.db.svc.cluster.local.";
    assert_eq!(z.answer(pg, Type::A), Answer::Records(vec![a("10.42.0.7"), a("10.42.0.8")]));
    assert_eq!(
        z.answer(pg, Type::Aaaa),
        Answer::Records(vec![aaaa("fd00:42::"), aaaa("fd00:42::7"), aaaa("fd00:42::8"), aaaa("fd00:42::9")])
    );
    // Endpoint hostnames, per family; one with IPv6 only has no A; a not-ready one is no name.
    assert_eq!(z.answer("pg-0.pg.db.svc.cluster.local.", Type::A), Answer::Records(vec![a("10.42.0.7")]));
    assert_eq!(z.answer("pg-0.pg.db.svc.cluster.local.", Type::Aaaa), Answer::Records(vec![aaaa("fd00:42::7")]));
    assert_eq!(z.answer("pg-3.pg.db.svc.cluster.local.", Type::Aaaa), Answer::Records(vec![aaaa("fd00:42::9")]));
    assert_eq!(z.answer("pg-3.pg.db.svc.cluster.local.", Type::A), Answer::NoData);
    assert_eq!(z.answer("pg-4.pg.db.svc.cluster.local.", Type::Aaaa), Answer::NxDomain);
    // SRV: a named endpoint once whatever its families; unnamed ones by address, dashes for
    // colons (CoreDNS's `endpointHostname`, a trailing dash ending in 0).
    let srv = |target: &str| Record::Srv { port: 5432, target: format!("{target}.pg.db.svc.cluster.local.") };
    assert_eq!(
        z.answer("_sql._tcp.pg.db.svc.cluster.local.", Type::Srv),
        Answer::Records(vec![srv("pg-0"), srv("10-42-0-8"), srv("fd00-42--0"), srv("fd00-42--8"), srv("pg-3")])
    );
}

#[test]
fn pod_names_of_each_family() {
    let z = dual_zone();
    let pod = |label: &str, kind| z.answer(&format!("{label}.default.pod.cluster.local."), kind);
    assert_eq!(pod("fd00-42--5", Type::Aaaa), Answer::Records(vec![aaaa("fd00:42::5")]));
    assert_eq!(pod("fd00-42-0-0-0-0-0-5", Type::Aaaa), Answer::Records(vec![aaaa("fd00:42::5")]));
    assert_eq!(pod("--1", Type::Aaaa), Answer::Records(vec![aaaa("::1")]));
    // The other family's question: the name exists, with no data.
    assert_eq!(pod("fd00-42--5", Type::A), Answer::NoData);
    assert_eq!(pod("10-42-0-5", Type::Aaaa), Answer::NoData);
    assert_eq!(pod("10-42-0-5", Type::A), Answer::Records(vec![a("10.42.0.5")]));
    // Three dashes and no `--` is read as IPv4 (CoreDNS's rule), so this is no address.
    assert_eq!(pod("fd00-42-0-5", Type::Aaaa), Answer::NxDomain);
    assert_eq!(pod("fd00-42--5-x", Type::Aaaa), Answer::NxDomain);
}

#[test]
fn ip6_arpa_names_of_cluster_ips_and_endpoints() {
    let z = dual_zone();
    let arpa = |ip: &str| {
        let IpAddr::V6(ip) = ip.parse::<IpAddr>().expect("ip") else { panic!("not IPv6") };
        let hex: String = ip.octets().iter().map(|b| format!("{b:02x}")).collect();
        let nibbles: Vec<String> = hex.chars().rev().map(String::from).collect();
        format!("{}.ip6.arpa.", nibbles.join("."))
    };
    assert_eq!(
        arpa("fd00:43::21"),
        "1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.",
        "the helper spells RFC 3596 names"
    );
    let ptr = |name: &str| Answer::Records(vec![Record::Ptr(name.into())]);
    assert_eq!(z.answer(&arpa("fd00:43::21"), Type::Ptr), ptr("both.default.svc.cluster.local."));
    assert_eq!(z.answer("21.0.43.10.in-addr.arpa.", Type::Ptr), ptr("both.default.svc.cluster.local."));
    assert_eq!(z.answer(&arpa("fd00:43::22"), Type::Ptr), ptr("six.default.svc.cluster.local."));
    assert_eq!(z.answer(&arpa("fd00:42::7"), Type::Ptr), ptr("pg-0.pg.db.svc.cluster.local."));
    assert_eq!(z.answer(&arpa("fd00:42::9"), Type::Ptr), ptr("pg-3.pg.db.svc.cluster.local."));
    assert_eq!(z.answer(&arpa("fd00:43::21"), Type::A), Answer::NoData);
    // An unnamed endpoint by its dashed address; other addresses and names that are not 32
    // nibbles are not ours.
    assert_eq!(z.answer(&arpa("fd00:42::8"), Type::Ptr), ptr("fd00-42--8.pg.db.svc.cluster.local."));
    assert_eq!(z.answer("fd00-42--8.pg.db.svc.cluster.local.", Type::Aaaa), Answer::Records(vec![aaaa("fd00:42::8")]));
    assert_eq!(z.answer(&arpa("2001:db8::1"), Type::Ptr), Answer::NotOurs);
    assert_eq!(z.answer("3.4.0.0.0.0.d.f.ip6.arpa.", Type::Ptr), Answer::NotOurs);
    assert_eq!(z.answer(&arpa("fd00:43::21").replacen("1.", "x.", 1), Type::Ptr), Answer::NotOurs);
}

#[test]
fn old_services_without_cluster_ips_still_answer_by_cluster_ip() {
    let services = [service("default", "old", json!({"clusterIP": "fd00:43::30"}))];
    let z = Zone::build("cluster.local", &services, &[] as &[EndpointSlice]);
    assert_eq!(z.answer("old.default.svc.cluster.local.", Type::Aaaa), Answer::Records(vec![aaaa("fd00:43::30")]));
    assert_eq!(z.answer("old.default.svc.cluster.local.", Type::A), Answer::NoData);
}
