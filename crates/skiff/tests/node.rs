//! Pods as real containers (root): `skiff server` with its node agent, driven by the real
//! kubectl binaries. The tutorial's nginx-pod from a loopback registry mirroring docker.io,
//! its network (pod IP reachable, host localhost not), the Spring image flow, restart policies,
//! OOM, logs, a server restart under running pods, and a host left clean after deletion.
//! Traffic goes only to loopback and to the pods these tests create.

mod common;

use common::registry::{Registry, mirror_config};
use common::{KUBECTL_VERSIONS, Kubectl, Server, busybox_rootfs, eventually, skiff, tutorial_pod};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A web page and an `sh` that stops on SIGTERM, as a real web server image would.
fn web_image(data: &Path, reference: &str, page: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, _) = busybox_rootfs(tmp.path());
    std::fs::create_dir_all(root.join("www")).expect("www");
    std::fs::write(root.join("www/index.html"), page).expect("page");
    for applet in ["wget", "hostname"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    let tar = tmp.path().join("web.tar");
    let ok =
        std::process::Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().expect("tar");
    assert!(ok.success());
    let cmd = r#"CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait"]"#;
    let (code, _, err) = skiff(data, &["import", "-c", cmd, tar.to_str().expect("utf8"), reference]);
    assert_eq!(code, 0, "{err}");
}

/// GET / from ip:port (None when nothing answers).
fn http_get(ip: &str, port: u16) -> Option<String> {
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn pod_field(k: &Kubectl, pod: &str, path: &str) -> String {
    k.run(&["get", "pod", pod, "-o", &format!("jsonpath={{{path}}}")]).stdout
}

/// `kubectl get pods` row of `pod` has READY and STATUS as given.
fn row_is(k: &Kubectl, pod: &str, ready: &str, status: &str) -> bool {
    let out = k.run(&["get", "pods", pod]).stdout;
    out.lines().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.first() == Some(&pod) && cols.get(1) == Some(&ready) && cols.get(2) == Some(&status)
    })
}

/// Nothing of the node's pods is left on the host: pod dirs, addresses, veths on the bridge,
/// mounts, cgroups.
fn assert_host_clean(server: &Server, bridge: &str) {
    let data = server.data_dir();
    let empty = |p: &Path| std::fs::read_dir(p).map(|d| d.count() == 0).unwrap_or(true);
    assert!(
        eventually(WAIT, || empty(&data.join("pods"))),
        "pod directories left: {:?}",
        std::fs::read_dir(data.join("pods")).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    assert!(empty(&data.join("ipam").join(bridge)), "pod addresses leaked");
    let links = std::process::Command::new("ip").args(["-o", "link", "show", "master", bridge]).output().expect("ip");
    assert!(links.stdout.is_empty(), "veths left on {bridge}: {}", String::from_utf8_lossy(&links.stdout));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&data.display().to_string()), "mounts left under the data dir");
    let leases = std::fs::read_dir(data.join("images/leases")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leases, 0, "image leases left");
}

#[test]
fn tutorial_nginx_pod_runs_from_a_docker_io_mirror_with_every_kubectl() {
    let registry = Registry::start(None);
    let build = tempfile::tempdir().expect("tempdir");
    web_image(build.path(), "nginx:latest", "<h1>Welcome to nginx!</h1>\n");
    let pushed = format!("{}/library/nginx:latest", registry.host);
    assert_eq!(skiff(build.path(), &["tag", "nginx:latest", &pushed]).0, 0);
    let (code, _, err) = skiff(build.path(), &["push", "--insecure", &pushed]);
    assert_eq!(code, 0, "{err}");

    let server = Server::with_node(1, |d| mirror_config(d, &registry, "disable-default-endpoint: true\n"));
    for version in KUBECTL_VERSIONS {
        let k = server.kubectl(version);
        k.run_stdin(&["apply", "-f", "-"], &tutorial_pod("nginx-pod", "nginx")).ok();
        assert!(
            eventually(WAIT, || row_is(&k, "nginx-pod", "1/1", "Running")),
            "kubectl {version}: {}\n{}",
            k.run(&["describe", "pod", "nginx-pod"]).stdout,
            server.log()
        );
        let ip = pod_field(&k, "nginx-pod", ".status.podIP");
        assert!(ip.starts_with("10.150.1."), "pod IP {ip:?}");
        let page = http_get(&ip, 80).unwrap_or_default();
        assert!(page.contains("Welcome to nginx!"), "kubectl {version}: {page}");
        // containerPort opens nothing on the host: the tutorial's `curl localhost` fails.
        assert!(!http_get("127.0.0.1", 80).unwrap_or_default().contains("Welcome to nginx!"));
        let events = k.run(&["get", "events", "--field-selector", "involvedObject.name=nginx-pod"]).ok();
        for reason in ["Scheduled", "Pulling", "Pulled", "Created", "Started"] {
            assert!(events.contains(reason), "{reason} missing from {events}");
        }
        let deleted = k.run(&["delete", "pod", "nginx-pod"]).ok();
        assert!(deleted.contains("pod \"nginx-pod\" deleted"), "{deleted}");
        assert!(k.run(&["get", "pod", "nginx-pod"]).fails().contains("NotFound"));
        assert!(http_get(&ip, 80).is_none(), "the pod still answers after deletion");
        assert_host_clean(&server, "skt1");
    }
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "echo crashing; exit 3"]
---
apiVersion: v1
kind: Pod
metadata:
  name: done
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "echo finished on $(hostname)"]
---
apiVersion: v1
kind: Pod
metadata:
  name: oom
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "x=a; while true; do x=$x$x; done"]
    resources:
      limits:
        memory: 16Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: pair
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: busybox:1.36
  - name: client
    image: busybox:1.36
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do wget -qO- http://localhost:80/; sleep 0.3; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: counter
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]
"#;

fn spring_pod(name: &str, policy: Option<&str>) -> String {
    let policy = policy.map(|p| format!("    imagePullPolicy: {p}\n")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: spring\n    image: spring-server\n{policy}    ports:\n    - containerPort: 8080\n"
    )
}

#[test]
fn lifecycles_logs_spring_flow_and_a_server_restart() {
    let mut server = Server::with_node(2, |d| {
        web_image(d, "busybox:1.36", "hello from the pair\n");
        // docker.io mirrored to a closed loopback port: pulls fail fast, and never leave the machine.
        std::fs::write(
            d.join("registries.yaml"),
            "mirrors:\n  docker.io:\n    endpoint: [\"http://127.0.0.1:9\"]\ndisable-default-endpoint: true\n",
        )
        .expect("registries.yaml");
    });
    // The tutorial's Spring flow: build an image locally, then run it in a pod.
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox:1.36\nCOPY app.txt /www/index.html\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(ctx.path().join("app.txt"), "spring says hi\n").expect("app");
    let (code, _, err) =
        skiff(server.data_dir(), &["build", "-t", "spring-server", ctx.path().to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");

    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], PODS).ok();
    k.run_stdin(&["apply", "-f", "-"], &spring_pod("spring", None)).ok();
    k.run_stdin(&["apply", "-f", "-"], &spring_pod("spring-local", Some("IfNotPresent"))).ok();

    let describe = |pod: &str| k.run(&["describe", "pod", pod]).stdout;
    assert!(eventually(WAIT, || row_is(&k, "done", "0/1", "Completed")), "{}", describe("done"));
    assert_eq!(k.run(&["logs", "done"]).ok(), "finished on done\n");
    assert!(eventually(WAIT, || row_is(&k, "oom", "0/1", "OOMKilled")), "{}", describe("oom"));
    assert_eq!(pod_field(&k, "oom", ".status.phase"), "Failed");
    assert!(eventually(WAIT, || row_is(&k, "crash", "0/1", "CrashLoopBackOff")), "{}", describe("crash"));
    assert_eq!(pod_field(&k, "crash", ".status.containerStatuses[0].lastState.terminated.exitCode"), "3");
    assert_eq!(k.run(&["logs", "crash", "--previous"]).ok(), "crashing\n");
    assert!(describe("crash").contains("Back-off restarting failed container c"));

    // spring-server: policy Always (no tag) → the pull fails → ImagePullBackOff, and the
    // message says the image is right here and what to change.
    assert!(eventually(WAIT, || row_is(&k, "spring", "0/1", "ImagePullBackOff")), "{}", describe("spring"));
    let text = describe("spring");
    assert!(text.contains("exists in this node's local image store"), "{text}");
    assert!(text.contains("imagePullPolicy: IfNotPresent"), "{text}");
    let waiting = pod_field(&k, "spring", ".status.containerStatuses[0].state.waiting.message");
    assert!(waiting.contains("local image store"), "{waiting}");
    let logs = k.run(&["logs", "spring"]).fails();
    assert!(logs.contains("is waiting to start: trying and failing to pull image"), "{logs}");
    assert!(eventually(WAIT, || row_is(&k, "spring-local", "1/1", "Running")), "{}", describe("spring-local"));
    let spring_ip = pod_field(&k, "spring-local", ".status.podIP");
    assert!(http_get(&spring_ip, 8080).unwrap_or_default().contains("spring says hi"));

    // Two containers share the pod's network: the client reaches the web server on localhost.
    assert!(eventually(WAIT, || row_is(&k, "pair", "2/2", "Running")), "{}", describe("pair"));
    assert!(eventually(WAIT, || k.run(&["logs", "pair", "-c", "client"]).stdout.contains("hello from the pair")));

    // logs -f streams new lines as they come.
    let mut follow =
        k.command(&["logs", "-f", "counter"]).stdout(std::process::Stdio::piped()).spawn().expect("logs -f");
    let mut out = follow.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("line 12") {
        let n = out.read(&mut buf).expect("read logs -f");
        assert!(n > 0, "logs -f ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let _ = follow.kill();
    let _ = follow.wait();

    // The server goes away (SIGKILL) and comes back: pods keep running, nothing restarts,
    // logs continue.
    let before = pod_field(&k, "counter", ".status.containerStatuses[0].containerID");
    let crash_restarts: u32 = pod_field(&k, "crash", ".status.containerStatuses[0].restartCount").parse().unwrap_or(0);
    server.kill_and_restart();
    let k = server.kubectl("1.32");
    assert!(http_get(&spring_ip, 8080).unwrap_or_default().contains("spring says hi"));
    assert!(eventually(WAIT, || row_is(&k, "counter", "1/1", "Running")));
    assert_eq!(pod_field(&k, "counter", ".status.containerStatuses[0].containerID"), before);
    assert_eq!(pod_field(&k, "counter", ".status.containerStatuses[0].restartCount"), "0");
    let last = |k: &Kubectl| -> u32 {
        let out = k.run(&["logs", "counter", "--tail=1"]).stdout;
        out.trim().trim_start_matches("line ").parse().unwrap_or(0)
    };
    let n = last(&k);
    assert!(eventually(WAIT, || last(&k) > n + 3), "logs do not continue after the restart");
    assert!(eventually(WAIT, || {
        pod_field(&k, "crash", ".status.containerStatuses[0].restartCount").parse().unwrap_or(0) > crash_restarts
    }));
    for version in KUBECTL_VERSIONS {
        let kv = server.kubectl(version);
        assert!(row_is(&kv, "counter", "1/1", "Running"), "kubectl {version}: {}", kv.run(&["get", "pods"]).stdout);
    }

    // Deleting every pod leaves the host as it was.
    k.run(&["delete", "pod", "--all", "--grace-period=3"]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "pods", "-o", "name"]).stdout.trim().is_empty()));
    assert_host_clean(&server, "skt2");
}
