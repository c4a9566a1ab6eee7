//! End to end, dual stack (where the host has IPv6): with `--pod-cidr` and `--service-cidr`
//! each an IPv4 and an IPv6 network, pods get an address of each family and are reached over
//! both, from the host and from each other; a `PreferDualStack` Service gets a cluster IP of
//! each family, EndpointSlices of each, A and AAAA records, and is proxied in both; a
//! default-deny NetworkPolicy blocks both families.

mod common;

use common::{Kubectl, Server, eventually, import_busybox};
use std::io::{Read, Write};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// This file's bridge (`skt46`): no other test binary uses it.
const NET: u8 = 46;
const POD_CIDRS: &str = "10.150.46.0/24,fd00:10:46::/64";
const SERVICE_CIDRS: &str = "10.43.46.0/24,fd00:43:46::/112";

/// Two web pods that answer `/name` with their own name, a client, and a dual-stack Service.
const HELLO: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 2
  selector:
    matchLabels:
      app: hello
  template:
    metadata:
      labels:
        app: hello
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox:1.36
        command: [sh, -c, \"mkdir -p /www && hostname > /www/name && exec httpd -f -p 8080 -h /www\"]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox:1.36, command: [sleep, '3600']}
---
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: hello}
  ports:
  - {port: 80, targetPort: 8080}
";

const DENY_ALL: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
spec:
  podSelector: {}
";

fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6").is_ok_and(|v| v.trim() == "0")
}

/// The body of an HTTP/1.0 GET of `path` from `addr` (`[v6]:port` or `v4:port`).
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(10)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.trim().to_string())
}

/// `wget` of `url` from the client pod: the body, or the error.
fn fetch(k: &Kubectl, url: &str) -> String {
    // No `-T`: Debian's busybox 1.35 wget crashes with it.
    k.run(&["exec", "client", "--", "sh", "-c", &format!("wget -qO- {url} 2>&1")]).stdout.trim().to_string()
}

/// Whether the service proxy's IPv6 table sends `ip`'s port 80 somewhere (before that, a pod's
/// packets to it would follow the host's default route off the machine).
fn programmed6(ip: &str) -> bool {
    let out = std::process::Command::new("nft").args(["list", "map", "ip6", "skiff-svc-skt46", "service-ips"]).output();
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{ip} . tcp . 80 :")))
}

#[test]
fn pods_and_services_have_both_families() {
    if !host_has_ipv6() {
        eprintln!("skipped: the host has IPv6 switched off");
        return;
    }
    let server = Server::with_node_args(NET, &["--pod-cidr", POD_CIDRS, "--service-cidr", SERVICE_CIDRS], |d| {
        import_busybox(d, &["wget", "nc", "nslookup", "hostname"])
    });
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], HELLO).ok();
    k.run(&["rollout", "status", "deployment/hello", "--timeout=60s"]).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/client", "--timeout=60s"]).ok();

    // Every pod: its IPv4 address, then its IPv6 one at the same offset into the node's /64.
    let names = k.jsonpath(&["pods", "-l", "app=hello"], "{.items[*].metadata.name}");
    let names: Vec<&str> = names.split_whitespace().collect();
    let mut pod_v6 = Vec::new();
    for name in &names {
        let ips = k.jsonpath(&["pod", name], "{.status.podIPs[*].ip}");
        let ips: Vec<&str> = ips.split_whitespace().collect();
        assert_eq!(ips.len(), 2, "{name}: {ips:?}");
        let last = ips[0].rsplit('.').next().and_then(|n| n.parse::<u32>().ok()).expect("IPv4 first");
        assert_eq!(ips[1], format!("fd00:10:46::{last:x}"), "{name}: {ips:?}");
        assert_eq!(k.jsonpath(&["pod", name], "{.status.podIP}"), ips[0]);
        pod_v6.push(ips[1].to_string());
        // The host reaches the pod over IPv6, and so does another pod.
        assert_eq!(http_get(&format!("[{}]:8080", ips[1]), "/name").as_deref(), Some(*name));
        assert_eq!(fetch(&k, &format!("http://[{}]:8080/name", ips[1])), *name);
    }
    let hosts = k.run(&["exec", "client", "--", "cat", "/etc/hosts"]).ok();
    let client_ips = k.jsonpath(&["pod", "client"], "{.status.podIPs[*].ip}");
    for ip in client_ips.split_whitespace() {
        assert!(hosts.contains(&format!("{ip}\tclient\n")), "{ip} missing from {hosts}");
    }

    // The Service: a cluster IP of each family, slices of each, both proxied.
    assert_eq!(k.jsonpath(&["svc", "hello"], "{.spec.ipFamilies[*]}"), "IPv4 IPv6");
    let cluster_ips = k.jsonpath(&["svc", "hello"], "{.spec.clusterIPs[*]}");
    let cluster_ips: Vec<&str> = cluster_ips.split_whitespace().collect();
    assert_eq!(cluster_ips.len(), 2, "{cluster_ips:?}");
    assert!(cluster_ips[0].starts_with("10.43.46.") && cluster_ips[1].starts_with("fd00:43:46::"), "{cluster_ips:?}");
    let slices =
        || k.jsonpath(&["endpointslices", "-l", "kubernetes.io/service-name=hello"], "{.items[*].addressType}");
    assert!(eventually(WAIT, || slices().split_whitespace().count() == 2), "slices: {}", slices());
    let v6_slice = "{.items[?(@.addressType=='IPv6')].endpoints[*].addresses[*]}";
    let mut in_slice: Vec<String> = k
        .jsonpath(&["endpointslices", "-l", "kubernetes.io/service-name=hello"], v6_slice)
        .split_whitespace()
        .map(String::from)
        .collect();
    in_slice.sort();
    pod_v6.sort();
    assert_eq!(in_slice, pod_v6);
    let v6_ip = cluster_ips[1];
    assert!(eventually(WAIT, || programmed6(v6_ip)), "the IPv6 cluster IP is never programmed");
    let mut seen: Vec<String> = (0..12).map(|_| fetch(&k, &format!("http://[{v6_ip}]/name"))).collect();
    seen.sort();
    seen.dedup();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected, "requests to the IPv6 cluster IP reach both pods");
    assert!(names.contains(&fetch(&k, &format!("http://{}/name", cluster_ips[0])).as_str()), "and the IPv4 one");

    // The cluster DNS answers both families for the Service's name.
    let aaaa = k.run(&["exec", "client", "--", "nslookup", "-type=AAAA", "hello.default.svc.cluster.local"]).stdout;
    assert!(aaaa.contains(v6_ip), "{aaaa}");
    let a = k.run(&["exec", "client", "--", "nslookup", "-type=A", "hello.default.svc.cluster.local"]).stdout;
    assert!(a.contains(cluster_ips[0]) && !a.contains(v6_ip), "{a}");

    // A default deny closes both families.
    k.run_stdin(&["apply", "-f", "-"], DENY_ALL).ok();
    let reaches = |ip: &str| {
        let script = format!("printf 'GET /name HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 8080");
        k.run(&["exec", "client", "--", "sh", "-c", &script]).stdout.contains("hello-")
    };
    let v4_pod = k.jsonpath(&["pod", names[0]], "{.status.podIP}");
    assert!(eventually(WAIT, || !reaches(&pod_v6[0]) && !reaches(&v4_pod)), "the default deny blocks both");
    k.run(&["delete", "networkpolicy", "deny-all"]).ok();
    assert!(eventually(WAIT, || reaches(&pod_v6[0]) && reaches(&v4_pod)), "open again");
}
