//! End to end: Services and their endpoints with real pods, driven by kubectl as the course
//! does (`create deployment`, `expose`, `get endpoints`, `get endpointslices`, `port-forward
//! svc/`): the addresses follow the pods' readiness, scaling and deletion.

mod common;

use common::{KUBECTL_VERSIONS, Kubectl, Server, eventually, import_busybox};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// This file's bridges (`skt34`...): no other test binary uses them.
const NET: u8 = 34;

/// Three web pods, each ready only while `/www/ready` exists.
const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox:1.36
        command: [sh, -c, \"mkdir -p /www && echo ok > /www/ready && exec httpd -f -p 8080 -h /www\"]
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          httpGet: {path: /ready, port: http}
          periodSeconds: 1
";

fn get(k: &Kubectl, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let expr = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &expr]);
    k.run(&args).stdout
}

/// The body of GET / from 127.0.0.1:`port`.
fn get_body(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /ready HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

fn words(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.split_whitespace().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn endpoints_follow_the_pods_a_service_selects() {
    let server = Server::with_node(NET, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], WEB).ok();
    k.run(&["rollout", "status", "deployment/web", "--timeout=60s"]).ok();
    let exposed = k.run(&["expose", "deployment", "web", "--port=80", "--target-port=http"]).ok();
    assert_eq!(exposed.trim(), "service/web exposed");
    let pod_ips = || words(&get(&k, &["pods", "-l", "app=web"], "{.items[*].status.podIP}"));
    let ready_ips = || words(&get(&k, &["endpoints", "web"], "{.subsets[*].addresses[*].ip}"));
    assert!(
        eventually(WAIT, || ready_ips().len() == 3 && ready_ips() == pod_ips()),
        "{:?} vs {:?}",
        ready_ips(),
        pod_ips()
    );
    assert_eq!(get(&k, &["endpoints", "web"], "{.subsets[0].ports[0].port}"), "8080");
    let slice = get(
        &k,
        &["endpointslices", "-l", "kubernetes.io/service-name=web"],
        "{.items[0].metadata.ownerReferences[0].name} {.items[0].ports[0].port} {.items[0].endpoints[*].conditions.ready}",
    );
    assert_eq!(slice, "web 8080 true true true");
    // The Table columns, with every kubectl.
    for v in KUBECTL_VERSIONS {
        let kv = server.kubectl(v);
        let row = kv.run(&["get", "endpoints", "web", "--no-headers"]).ok();
        assert!(row.starts_with("web ") && row.contains(":8080"), "kubectl {v}: {row}");
        let slices = kv.run(&["get", "endpointslices", "--no-headers"]).ok();
        assert!(
            slices.lines().any(|l| l.starts_with("web-") && l.contains("IPv4") && l.contains("8080")),
            "kubectl {v}: {slices}"
        );
    }

    // `port-forward svc/web`: kubectl picks a pod behind the Service and its target port.
    for v in KUBECTL_VERSIONS {
        let local = common::registry::free_port();
        let mut fwd = server
            .kubectl(v)
            .command(&["port-forward", "svc/web", &format!("{local}:80")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl port-forward");
        let through = eventually(WAIT, || get_body(local).is_some_and(|b| b == "ok\n"));
        let _ = fwd.kill();
        let _ = fwd.wait();
        assert!(through, "kubectl {v}: nothing through port-forward svc/web");
    }

    // A pod that fails readiness leaves the addresses for the not-ready ones.
    let first = k.run(&["get", "pods", "-l", "app=web", "-o", "name"]).ok().lines().next().expect("a pod").to_string();
    let first_ip = k.run(&["get", &first, "-o", "jsonpath={.status.podIP}"]).ok();
    k.run(&["exec", &first, "--", "sh", "-c", "rm /www/ready"]).ok();
    let not_ready = || words(&get(&k, &["endpoints", "web"], "{.subsets[*].notReadyAddresses[*].ip}"));
    assert!(
        eventually(WAIT, || not_ready() == [first_ip.clone()] && ready_ips().len() == 2),
        "{:?} {:?}",
        ready_ips(),
        not_ready()
    );

    // Scaled down, then the Service deleted: its endpoints go with it.
    k.run(&["scale", "deployment", "web", "--replicas=1"]).ok();
    let all = || {
        words(&get(
            &k,
            &["endpointslices", "-l", "kubernetes.io/service-name=web"],
            "{.items[*].endpoints[*].addresses[*]}",
        ))
    };
    assert!(eventually(WAIT, || all().len() == 1), "{:?}", all());
    k.run(&["delete", "service", "web"]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "endpoints", "web"]).code != 0));
    assert!(eventually(WAIT, || k.run(&["get", "endpointslices", "-o", "name"]).stdout.trim().is_empty()));
}
