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
