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

/// The body of an HTTP/1.0 GET of `path` from `addr`.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(10)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    // A Host header: `kubectl proxy` only serves the hosts it accepts (localhost, 127.0.0.1).
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).ok()?;
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
    let pod_ips = || words(&k.jsonpath(&["pods", "-l", "app=web"], "{.items[*].status.podIP}"));
    let ready_ips = || words(&k.jsonpath(&["endpoints", "web"], "{.subsets[*].addresses[*].ip}"));
    assert!(
        eventually(WAIT, || ready_ips().len() == 3 && ready_ips() == pod_ips()),
        "{:?} vs {:?}",
        ready_ips(),
        pod_ips()
    );
    assert_eq!(k.jsonpath(&["endpoints", "web"], "{.subsets[0].ports[0].port}"), "8080");
    let slice = k.jsonpath(
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
        let through =
            eventually(WAIT, || http_get(&format!("127.0.0.1:{local}"), "/ready").is_some_and(|b| b == "ok\n"));
        let _ = fwd.kill();
        let _ = fwd.wait();
        assert!(through, "kubectl {v}: nothing through port-forward svc/web");
    }

    // A pod that fails readiness leaves the addresses for the not-ready ones.
    let first = k.run(&["get", "pods", "-l", "app=web", "-o", "name"]).ok().lines().next().expect("a pod").to_string();
    let first_ip = k.run(&["get", &first, "-o", "jsonpath={.status.podIP}"]).ok();
    k.run(&["exec", &first, "--", "sh", "-c", "rm /www/ready"]).ok();
    let not_ready = || words(&k.jsonpath(&["endpoints", "web"], "{.subsets[*].notReadyAddresses[*].ip}"));
    assert!(
        eventually(WAIT, || not_ready() == [first_ip.clone()] && ready_ips().len() == 2),
        "{:?} {:?}",
        ready_ips(),
        not_ready()
    );

    // Scaled down, then the Service deleted: its endpoints go with it.
    k.run(&["scale", "deployment", "web", "--replicas=1"]).ok();
    let all = || {
        words(&k.jsonpath(
            &["endpointslices", "-l", "kubernetes.io/service-name=web"],
            "{.items[*].endpoints[*].addresses[*]}",
        ))
    };
    assert!(eventually(WAIT, || all().len() == 1), "{:?}", all());
    k.run(&["delete", "service", "web"]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "endpoints", "web"]).code != 0));
    assert!(eventually(WAIT, || k
        .run(&["get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "name"])
        .stdout
        .trim()
        .is_empty()));
}

/// A client pod, a headless Service with a named pod under it, and an ExternalName.
const DNS_OBJECTS: &str = "apiVersion: v1
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
  name: db
spec:
  clusterIP: None
  selector: {role: db}
  ports:
  - {name: pg, port: 5432}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  labels: {role: db}
spec:
  hostname: db-0
  subdomain: db
  terminationGracePeriodSeconds: 1
  hostAliases:
  - {ip: 192.0.2.7, hostnames: [legacy.example]}
  containers:
  - {name: c, image: busybox:1.36, command: [sleep, '3600']}
---
apiVersion: v1
kind: Service
metadata:
  name: mail
spec:
  type: ExternalName
  externalName: mail.example.com
";

/// Cluster DNS from inside pods: Services by short and full name, headless Services' pods, SRV,
/// pod A records, ExternalName CNAMEs, the resolv.conf and hosts file the kubelet writes, and
/// the service link variables.
#[test]
fn pods_find_services_by_name() {
    let net = NET + 1;
    let server = Server::with_node(net, |d| import_busybox(d, &["nslookup", "hostname", "env"]));
    let k = server.kubectl("1.32");
    let dns_ip = Server::cluster_dns(net);
    assert_eq!(k.jsonpath(&["service", "-n", "kube-system", "kube-dns"], "{.spec.clusterIP}"), dns_ip);
    k.run_stdin(&["apply", "-f", "-"], WEB).ok();
    k.run(&["expose", "deployment", "web", "--port=80", "--target-port=http"]).ok();
    k.run_stdin(&["apply", "-f", "-"], DNS_OBJECTS).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/client", "pod/db-0", "--timeout=60s"]).ok();
    k.run(&["rollout", "status", "deployment/web", "--timeout=60s"]).ok();
    let web_ip = k.jsonpath(&["service", "web"], "{.spec.clusterIP}");
    let exec = |args: &[&str]| {
        let mut all = vec!["exec", "client", "--"];
        all.extend_from_slice(args);
        k.run(&all)
    };

    let resolv = exec(&["cat", "/etc/resolv.conf"]).ok();
    assert!(
        resolv.starts_with("search default.svc.cluster.local svc.cluster.local cluster.local")
            && resolv.contains(&format!("nameserver {dns_ip}\n"))
            && resolv.contains("options ndots:5"),
        "{resolv}"
    );
    // By full name and by the short name the search list completes.
    for name in ["web.default.svc.cluster.local", "web"] {
        let found = eventually(WAIT, || exec(&["nslookup", name]).stdout.contains(&format!("Address: {web_ip}")));
        assert!(found, "{name}: {}", exec(&["nslookup", name]).combined());
    }
    // A headless Service: every ready pod, and the pod named through its subdomain.
    let db_ip = k.jsonpath(&["pod", "db-0"], "{.status.podIP}");
    let headless = eventually(WAIT, || exec(&["nslookup", "db.default.svc.cluster.local"]).stdout.contains(&db_ip));
    assert!(headless, "{}", exec(&["nslookup", "db.default.svc.cluster.local"]).combined());
    assert!(exec(&["nslookup", "db-0.db.default.svc.cluster.local"]).stdout.contains(&db_ip));
    let srv = exec(&["nslookup", "-type=srv", "_pg._tcp.db.default.svc.cluster.local"]).ok();
    assert!(srv.contains("5432") && srv.contains("db-0.db.default.svc.cluster.local"), "{srv}");
    // A pod by its address, and an ExternalName as its CNAME.
    let pod_name = format!("{}.default.pod.cluster.local", db_ip.replace('.', "-"));
    assert!(exec(&["nslookup", &pod_name]).stdout.contains(&db_ip));
    let cname = exec(&["nslookup", "-type=cname", "mail.default.svc.cluster.local"]).ok();
    assert!(cname.contains("mail.example.com"), "{cname}");
    // A name that is not there, and one that goes once its Service does.
    assert_ne!(exec(&["nslookup", "nope.default.svc.cluster.local"]).code, 0);
    k.run(&["delete", "service", "mail"]).ok();
    assert!(eventually(WAIT, || exec(&["nslookup", "-type=cname", "mail.default.svc.cluster.local"]).code != 0));

    // The named pod's own names.
    let in_db = |args: &[&str]| {
        let mut all = vec!["exec", "db-0", "--"];
        all.extend_from_slice(args);
        k.run(&all).ok()
    };
    assert_eq!(in_db(&["hostname"]).trim(), "db-0");
    let hosts = in_db(&["cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{db_ip}\tdb-0.db.default.svc.cluster.local\tdb-0\n")), "{hosts}");
    assert!(hosts.contains("# Entries added by HostAliases.\n192.0.2.7\tlegacy.example\n"), "{hosts}");

    // Service links: the API server's and the namespace's Services (created before the pod).
    let env = exec(&["env"]).ok();
    for var in [
        format!("KUBERNETES_SERVICE_HOST=10.43.{net}.1"),
        "KUBERNETES_SERVICE_PORT=443".to_string(),
        format!("WEB_SERVICE_HOST={web_ip}"),
        format!("WEB_PORT_80_TCP_ADDR={web_ip}"),
    ] {
        assert!(env.lines().any(|l| l == var), "{var} missing from {env}");
    }
}

/// Three web pods that answer `/name` with their own name, ready while `/www/ready` exists.
const HELLO: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 3
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
        command: [sh, -c, \"mkdir -p /www && hostname > /www/name && echo ok > /www/ready && exec httpd -f -p 8080 -h /www\"]
        readinessProbe:
          httpGet: {path: /ready, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox:1.36, command: [sleep, '3600']}
";

/// `count` GETs of `url` from inside `pod`, one answer (or error) per line.
fn fetch_many(k: &Kubectl, pod: &str, url: &str, count: u32) -> Vec<String> {
    // No `-T`: Debian's busybox 1.35 wget crashes with it (and on a refused connection).
    let script = format!("i=0; while [ $i -lt {count} ]; do wget -qO- {url} 2>&1; i=$((i+1)); done");
    let out = k.run(&["exec", pod, "--", "sh", "-c", &script]);
    assert!(out.stderr.is_empty(), "kubectl exec: {}", out.stderr);
    out.stdout.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// The service proxy: a cluster IP spreads requests over every ready pod (and none to a pod that
/// failed readiness), by name through the cluster DNS too, a pod reaches itself through its
/// Service, a node port answers on the node, and a Service with no endpoints refuses at once.
#[test]
fn service_traffic_reaches_ready_endpoints() {
    let net = NET + 2;
    let server = Server::with_node(net, |d| {
        import_busybox(d, &["wget", "hostname", "nc"]);
        common::import_python(d);
    });
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], HELLO).ok();
    let sleep = ["--", "python3", "-c", "import time; time.sleep(3600)"];
    k.run(&[&["run", "py", "--image=python:3", "--image-pull-policy=Never"][..], &sleep].concat()).ok();
    k.run(&["rollout", "status", "deployment/hello", "--timeout=60s"]).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/client", "--timeout=60s"]).ok();
    k.run(&["expose", "deployment", "hello", "--port=80", "--target-port=8080", "--type=NodePort"]).ok();
    let ip = k.jsonpath(&["service", "hello"], "{.spec.clusterIP}");
    let pods = words(&k.jsonpath(&["pods", "-l", "app=hello"], "{.items[*].metadata.name}"));
    let endpoints = || words(&k.jsonpath(&["endpoints", "hello"], "{.subsets[*].addresses[*].ip}"));
    assert!(eventually(WAIT, || endpoints().len() == 3), "{:?}", endpoints());

    // Every backend answers, through the address and through the names.
    for url in
        [format!("http://{ip}/name"), "http://hello/name".into(), "http://hello.default.svc.cluster.local/name".into()]
    {
        let mut seen = Vec::new();
        let all = eventually(WAIT, || {
            seen.extend(fetch_many(&k, "client", &url, 20));
            seen.sort();
            seen.dedup();
            seen == pods
        });
        assert!(all, "{url}: {seen:?} (pods {pods:?})");
    }

    // From a Python program, through glibc's resolver (search list, ndots) and urllib.
    k.run(&["wait", "--for=condition=Ready", "pod/py", "--timeout=60s"]).ok();
    let program = "import socket, urllib.request as u\n\
        print(socket.gethostbyname('hello'))\n\
        for url in ['http://hello/name', 'http://hello.default.svc.cluster.local/name']:\n\
        \x20   print(u.urlopen(url, timeout=5).read().decode().strip())\n";
    let py = k.run(&["exec", "py", "--", "python3", "-c", program]).ok();
    let lines: Vec<&str> = py.lines().collect();
    assert!(
        lines.len() == 3
            && lines[0] == ip
            && pods.contains(&lines[1].to_string())
            && pods.contains(&lines[2].to_string()),
        "{py}"
    );

    // Hairpin: a pod through its own Service, reaching itself too.
    let me = &pods[0];
    let mut seen = Vec::new();
    let itself = eventually(WAIT, || {
        seen.extend(fetch_many(&k, me, &format!("http://{ip}/name"), 20));
        seen.contains(me)
    });
    assert!(itself, "{me} never reached itself: {seen:?}");

    // A node port answers on the node's addresses (here its bridge's, which the test made).
    let node_port: u16 = k.jsonpath(&["service", "hello"], "{.spec.ports[0].nodePort}").parse().expect("node port");
    let gateway = format!("10.150.{net}.1:{node_port}");
    let from_host = || http_get(&gateway, "/name").map(|b| b.trim().to_string());
    assert!(eventually(WAIT, || from_host().is_some_and(|n| pods.contains(&n))), "{:?}", from_host());

    // The `kubernetes` Service leads to the API server, from pods and from the node, under a
    // certificate that names its address.
    let api_port = server.port;
    assert_eq!(
        k.jsonpath(&["endpoints", "kubernetes"], "{.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}"),
        format!("10.150.{net}.1:{api_port}")
    );
    let api_ip = k.jsonpath(&["service", "kubernetes"], "{.spec.clusterIP}");
    let connects = k.run(&["exec", "client", "--", "sh", "-c", &format!("echo | nc -w 5 {api_ip} 443")]);
    assert_eq!(connects.code, 0, "{}", connects.combined());
    let ca = server.data_dir().join("pki/ca.crt");
    let token = std::fs::read_to_string(server.data_dir().join("pki/token")).expect("token");
    let version = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--cacert"])
        .arg(&ca)
        .args(["-H", &format!("Authorization: Bearer {}", token.trim()), &format!("https://{api_ip}/version")])
        .output()
        .expect("curl");
    assert!(String::from_utf8_lossy(&version.stdout).contains("gitVersion"), "{version:?}");

    // `kubectl proxy`: the Service's and a pod's proxy subresources, with every kubectl.
    for v in KUBECTL_VERSIONS {
        let local = common::registry::free_port();
        let mut proxy = server
            .kubectl(v)
            .command(&["proxy", &format!("--port={local}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl proxy");
        let addr = format!("127.0.0.1:{local}");
        let through_service = eventually(WAIT, || {
            http_get(&addr, "/api/v1/namespaces/default/services/hello:80/proxy/name")
                .is_some_and(|b| pods.contains(&b.trim().to_string()))
        });
        let to_pod = http_get(&addr, &format!("/api/v1/namespaces/default/pods/{}:8080/proxy/name", pods[1]));
        let _ = proxy.kill();
        let _ = proxy.wait();
        assert!(through_service, "kubectl {v}: nothing through services/hello:80/proxy");
        assert_eq!(to_pod.map(|b| b.trim().to_string()), Some(pods[1].clone()), "kubectl {v}");
    }

    // A load balancer: served on the node's own addresses, which its status names.
    k.run(&[
        "expose",
        "deployment",
        "hello",
        "--name=hello-lb",
        "--type=LoadBalancer",
        "--port=8081",
        "--target-port=8080",
    ])
    .ok();
    let node_ip = k.jsonpath(&["node", "skiff-test"], "{.status.addresses[?(@.type=='InternalIP')].address}");
    let lb_ip = || k.jsonpath(&["service", "hello-lb"], "{.status.loadBalancer.ingress[*].ip}");
    assert!(eventually(WAIT, || lb_ip() == node_ip), "{} vs {node_ip}", lb_ip());
    let row = k.run(&["get", "service", "hello-lb", "--no-headers"]).ok();
    assert!(
        row.contains(&format!("LoadBalancer   {}", k.jsonpath(&["service", "hello-lb"], "{.spec.clusterIP}")))
            && row.contains(&node_ip),
        "{row}"
    );
    let table = format!("skiff-svc-skt{net}");
    let rules = || {
        String::from_utf8_lossy(
            &std::process::Command::new("nft").args(["list", "table", "ip", &table]).output().expect("nft").stdout,
        )
        .into_owned()
    };
    assert!(
        eventually(WAIT, || rules().contains(&format!("{node_ip} . tcp . 8081 : goto external-default/hello-lb/tcp/"))),
        "{}",
        rules()
    );

    // Session affinity: one client, one pod.
    k.run(&["patch", "service", "hello", "-p", r#"{"spec":{"sessionAffinity":"ClientIP"}}"#]).ok();
    assert!(eventually(WAIT, || rules().contains("update @affinity-default/hello/tcp/")), "{}", rules());
    let mut sticky = fetch_many(&k, "client", &format!("http://{ip}/name"), 15);
    sticky.dedup();
    assert_eq!(sticky.len(), 1, "{sticky:?}");
    k.run(&["patch", "service", "hello", "-p", r#"{"spec":{"sessionAffinity":"None"}}"#]).ok();

    // Not ready: out of the rotation.
    k.run(&["exec", me, "--", "sh", "-c", "rm /www/ready"]).ok();
    assert!(eventually(WAIT, || endpoints().len() == 2), "{:?}", endpoints());
    std::thread::sleep(Duration::from_millis(500));
    let answers = fetch_many(&k, "client", &format!("http://{ip}/name"), 30);
    assert!(!answers.contains(me) && answers.len() == 30, "{me} still answers: {answers:?}");

    // No endpoints: refused, not left to time out.
    k.run(&["create", "service", "clusterip", "nothing", "--tcp=80:8080"]).ok();
    let nothing = k.jsonpath(&["service", "nothing"], "{.spec.clusterIP}");
    let connect = || k.run(&["exec", "client", "--", "nc", "-w", "5", &nothing, "80"]).stderr;
    assert!(eventually(WAIT, || connect().contains("Connection refused")), "{}", connect());
}

/// A Deployment `NAME` of two pods answering `/name` and `/other/name` with their own name.
fn named_web(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox:1.36
        command: [sh, -c, \"mkdir -p /www/other && hostname > /www/name && hostname > /www/other/name && exec httpd -f -p 8080 -h /www\"]
        ports: [{{name: http, containerPort: 8080}}]
"
    )
}

const INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  tls:
  - hosts: [hello.test]
    secretName: hello-tls
  rules:
  - host: hello.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: hello, port: {number: 80}}}}
      - {path: /other, pathType: Prefix, backend: {service: {name: bye, port: {number: 80}}}}
  - host: bye.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: bye, port: {number: 80}}}}
  - host: broken.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: gone, port: {number: 80}}}}
";

/// The built-in ingress: hosts and paths to their Services, TLS from a Secret by SNI, HTTP/2,
/// a clear 502 for a missing Service, 404 for an unknown host; the Ingress's status and columns.
#[test]
fn ingress_serves_hosts_paths_and_tls() {
    let net = NET + 3;
    let server = Server::with_node(net, |d| {
        import_busybox(d, &["hostname"]);
        common::import_python(d);
    });
    let k = server.kubectl("1.32");
    let classes = k.run(&["get", "ingressclass", "--no-headers"]).ok();
    assert!(classes.starts_with("skiff ") && classes.contains("skiff.dev/ingress"), "{classes}");
    for name in ["hello", "bye"] {
        k.run_stdin(&["apply", "-f", "-"], &named_web(name)).ok();
        k.run(&["expose", "deployment", name, "--port=80", "--target-port=http"]).ok();
    }
    k.run(&["rollout", "status", "deployment/hello", "--timeout=60s"]).ok();
    k.run(&["rollout", "status", "deployment/bye", "--timeout=60s"]).ok();
    // A certificate for hello.test, as a user makes one.
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hello.test"])
        .args(["-addext", "subjectAltName=DNS:hello.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (crt_s, key_s) = (crt.to_str().expect("utf8"), key.to_str().expect("utf8"));
    k.run(&["create", "secret", "tls", "hello-tls", &format!("--cert={crt_s}"), &format!("--key={key_s}")]).ok();
    k.run_stdin(&["apply", "-f", "-"], INGRESS).ok();

    let names = |app: &str| words(&k.jsonpath(&["pods", "-l", &format!("app={app}")], "{.items[*].metadata.name}"));
    let (hello, bye) = (names("hello"), names("bye"));
    let http_port = server.arg("--ingress-http-port").expect("port").to_string();
    let https_port = server.arg("--ingress-https-port").expect("port").to_string();
    let curl = |args: &[&str]| {
        let out =
            std::process::Command::new("curl").args(["-s", "--max-time", "10"]).args(args).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let plain = |host: &str, path: &str| {
        curl(&["-H", &format!("Host: {host}"), &format!("http://127.0.0.1:{http_port}{path}")])
    };
    assert!(eventually(WAIT, || hello.contains(&plain("hello.test", "/name"))), "{}", plain("hello.test", "/name"));
    assert!(bye.contains(&plain("hello.test", "/other/name")), "{}", plain("hello.test", "/other/name"));
    assert!(bye.contains(&plain("bye.test:80", "/name")), "{}", plain("bye.test", "/name"));
    assert_eq!(plain("broken.test", "/"), "502 Bad Gateway: service \"default/gone\" not found");
    assert_eq!(plain("nobody.test", "/"), "404 page not found");

    // HTTPS with the Secret's certificate (curl checks it against the name), over HTTP/2.
    let resolve = format!("hello.test:{https_port}:127.0.0.1");
    let url = format!("https://hello.test:{https_port}/name");
    let secure = || curl(&["--resolve", &resolve, "--cacert", crt_s, "--http2", "-w", " %{http_version}", &url]);
    let answer = secure();
    let got: Vec<&str> = answer.split_whitespace().collect();
    assert!(got.len() == 2 && hello.contains(&got[0].to_string()) && got[1] == "2", "{answer}");

    // The Ingress's status names the node, and the columns say so.
    let node_ip = k.jsonpath(&["node", "skiff-test"], "{.status.addresses[?(@.type=='InternalIP')].address}");
    assert!(eventually(WAIT, || k.jsonpath(&["ingress", "web"], "{.status.loadBalancer.ingress[*].ip}") == node_ip));
    let row = k.run(&["get", "ingress", "web", "--no-headers"]).ok();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..5], ["web", "skiff", "hello.test,bye.test,broken.test", &node_ip, "80,"], "{row}");

    // A WebSocket-style upgrade is passed through: after the backend's 101, bytes flow both
    // ways on the same connection.
    k.run_stdin(&["apply", "-f", "-"], UPGRADE_ECHO).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/upgrade", "--timeout=60s"]).ok();
    k.run(&["expose", "pod", "upgrade", "--port=80", "--target-port=8080"]).ok();
    k.run_stdin(&["apply", "-f", "-"], UPGRADE_INGRESS).ok();
    let talk = || -> Option<String> {
        let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{http_port}")).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .ok()?;
        let mut head = [0u8; 512];
        let n = s.read(&mut head).ok()?;
        let head = String::from_utf8_lossy(&head[..n]).to_string();
        if !head.starts_with("HTTP/1.1 101") {
            return Some(head);
        }
        s.write_all(b"ping").ok()?;
        let mut back = [0u8; 4];
        s.read_exact(&mut back).ok()?;
        Some(String::from_utf8_lossy(&back).to_string())
    };
    assert!(eventually(WAIT, || talk().as_deref() == Some("ping")), "{:?}", talk());
}

/// A backend that answers any request with 101 and then echoes bytes (Python's standard
/// library: no WebSocket framing needed to show the upgrade passes).
const UPGRADE_ECHO: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: upgrade
  labels: {app: upgrade}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: python:3
    imagePullPolicy: Never
    command:
    - python3
    - -c
    - |
      import socketserver
      class Echo(socketserver.StreamRequestHandler):
          def handle(self):
              while self.rfile.readline() not in (b"\r\n", b""):
                  pass
              self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
              self.wfile.flush()
              while True:
                  data = self.request.recv(4096)
                  if not data:
                      return
                  self.request.sendall(data)
      socketserver.ThreadingTCPServer.allow_reuse_address = True
      socketserver.ThreadingTCPServer(("0.0.0.0", 8080), Echo).serve_forever()
"#;

const UPGRADE_INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: upgrade
spec:
  rules:
  - host: ws.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: upgrade, port: {number: 80}}}}
";

const POLICY_PODS: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox:1.36
    command: [sh, -c, \"mkdir -p /www && hostname > /www/name && exec httpd -f -p 8080 -h /www\"]
    readinessProbe:
      httpGet: {path: /name, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  labels: {role: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox:1.36, command: [sleep, '3600']}
---
apiVersion: v1
kind: Pod
metadata:
  name: stranger
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox:1.36, command: [sleep, '3600']}
";

const DENY_ALL: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
spec:
  podSelector: {}
";

const ALLOW_CLIENTS: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-clients
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: client}
    ports:
    - {port: 8080}
";

/// NetworkPolicy: a default deny blocks pods (the node's probes still pass), an allow rule
/// opens the way for the pods it names only, and removing the policies opens it again.
#[test]
fn network_policies_deny_and_allow() {
    let net = NET + 4;
    let server = Server::with_node(net, |d| import_busybox(d, &["hostname", "nc"]));
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], POLICY_PODS).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/web", "pod/client", "pod/stranger", "--timeout=60s"]).ok();
    let web_ip = k.jsonpath(&["pod", "web"], "{.status.podIP}");
    let reaches = |from: &str| {
        let script = format!("printf 'GET /name HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {web_ip} 8080");
        k.run(&["exec", from, "--", "sh", "-c", &script]).stdout.contains("\nweb")
    };
    assert!(reaches("client") && reaches("stranger"), "open before any policy");

    k.run_stdin(&["apply", "-f", "-"], DENY_ALL).ok();
    assert!(eventually(WAIT, || !reaches("client") && !reaches("stranger")), "the default deny blocks");
    // The node is not a pod: its readiness probes still reach the pod.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(k.jsonpath(&["pod", "web"], "{.status.conditions[?(@.type=='Ready')].status}"), "True");

    k.run_stdin(&["apply", "-f", "-"], ALLOW_CLIENTS).ok();
    assert!(eventually(WAIT, || reaches("client")), "the allow rule opens the way for clients");
    assert!(!reaches("stranger"), "and only for them");

    k.run(&["delete", "networkpolicy", "--all"]).ok();
    assert!(eventually(WAIT, || reaches("stranger")), "open again without policies");
}

const ECHO: &str = "apiVersion: v1
kind: Pod
metadata:
  name: echo
  labels: {app: echo}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: busybox:1.36
    command: [nc, -l, -l, -p, '9000', -e, cat]
";

/// A connection through a cluster IP outlives a kill -9 and restart of the server: the node's
/// rules are rebuilt the same, in one transaction, and the connection's translation lives on
/// in conntrack.
#[test]
fn established_connections_survive_a_server_restart() {
    use std::io::BufRead;
    let net = NET + 5;
    let mut server = Server::with_node(net, |d| import_busybox(d, &["nc"]));
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], ECHO).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/echo", "--timeout=60s"]).ok();
    k.run(&["expose", "pod", "echo", "--port=9000"]).ok();
    let ip = k.jsonpath(&["service", "echo"], "{.spec.clusterIP}");
    let addr: std::net::SocketAddr = format!("{ip}:9000").parse().expect("addr");
    let mut conn = None;
    assert!(eventually(WAIT, || {
        conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok();
        conn.is_some()
    }));
    let mut conn = conn.expect("connected");
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut reader = std::io::BufReader::new(conn.try_clone().expect("clone"));
    let mut echo = |line: &str| -> String {
        conn.write_all(format!("{line}\n").as_bytes()).expect("write");
        let mut back = String::new();
        reader.read_line(&mut back).expect("read");
        back.trim().to_string()
    };
    assert_eq!(echo("before"), "before");
    let table = format!("skiff-svc-skt{net}");
    // The table's lines, sorted: chains are listed in the order they were made, which a
    // restart (one transaction) and a running node (changes) need not share.
    let rules = || {
        let out = std::process::Command::new("nft").args(["list", "table", "ip", &table]).output().expect("nft");
        let mut lines: Vec<String> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect();
        lines.sort();
        lines
    };
    let before = rules();
    server.kill_and_restart();
    assert!(eventually(WAIT, || server.kubectl("1.32").run(&["get", "pod", "echo"]).code == 0));
    assert_eq!(echo("after"), "after");
    // The same rules once the node has listed again (a rebuild, not a second copy).
    assert!(eventually(WAIT, || rules() == before), "{:?}\nvs\n{before:?}", rules());
}
