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
    http_get_path(ip, port, "/")
}

fn http_get_path(ip: &str, port: u16, path: &str) -> Option<String> {
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// What `kubectl logs -f POD` prints until `needle` shows up.
fn follow_logs_until(k: &Kubectl, pod: &str, needle: &str) -> String {
    let mut follow = k.command(&["logs", "-f", pod]).stdout(std::process::Stdio::piped()).spawn().expect("logs -f");
    let mut out = follow.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = out.read(&mut buf).expect("read logs -f");
        assert!(n > 0, "logs -f ended early after {} bytes", seen.len());
        seen.extend_from_slice(&buf[..n]);
    }
    let _ = follow.kill();
    let _ = follow.wait();
    String::from_utf8_lossy(&seen).into_owned()
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
    let under = format!("{}/", data.display());
    let left: Vec<&str> =
        mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&under)).collect();
    assert!(left.is_empty(), "mounts left under the data dir: {left:?}");
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
        "FROM busybox:1.36\nCOPY app.txt /www/index.html\nCOPY old.txt /www/old.txt\nARG GREETING=built\n\
         RUN echo \"$GREETING by RUN in $(pwd) as $(id -u)\" > /www/run.txt && rm /www/old.txt\n\
         CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(ctx.path().join("app.txt"), "spring says hi\n").expect("app");
    std::fs::write(ctx.path().join("old.txt"), "removed by RUN\n").expect("old");
    let (code, _, err) =
        skiff(server.data_dir(), &["build", "-t", "spring-server", ctx.path().to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    // A failing RUN fails the build with the command's exit code.
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(bad.path().join("Dockerfile"), "FROM busybox:1.36\nRUN echo failing; exit 3\n").expect("Dockerfile");
    let (code, _, err) = skiff(server.data_dir(), &["build", "-t", "bad:1", bad.path().to_str().expect("utf8")]);
    assert_ne!(code, 0);
    assert!(err.contains("did not complete successfully: exit code: 3"), "{err}");

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
    // A running pod's image is kept by an image-store lease that names its manifest.
    let image_id = pod_field(&k, "spring-local", ".status.containerStatuses[0].imageID");
    let digest = image_id.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
    let leases: Vec<String> = std::fs::read_dir(server.data_dir().join("images/leases"))
        .map(|d| d.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
        .unwrap_or_default();
    assert!(!digest.is_empty() && leases.iter().any(|l| l.contains(&digest)), "{image_id} not in {leases:?}");
    // What RUN wrote is in the image, and what it removed is gone.
    let run_txt = http_get_path(&spring_ip, 8080, "/run.txt").unwrap_or_default();
    assert!(run_txt.contains("built by RUN in / as 0"), "{run_txt}");
    assert!(http_get_path(&spring_ip, 8080, "/old.txt").unwrap_or_default().contains("404"), "old.txt survived RUN rm");

    // Two containers share the pod's network: the client reaches the web server on localhost.
    assert!(eventually(WAIT, || row_is(&k, "pair", "2/2", "Running")), "{}", describe("pair"));
    assert!(eventually(WAIT, || k.run(&["logs", "pair", "-c", "client"]).stdout.contains("hello from the pair")));

    // logs -f streams new lines as they come.
    follow_logs_until(&k, "counter", "line 12");

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

/// The pod `name` (busybox) that writes `lines` numbered lines in bursts after a pause, then idles.
fn chatty_pod(name: &str, lines: u32) -> String {
    let script = format!(
        "trap 'exit 0' TERM; sleep 5; i=0; while [ $i -lt {lines} ]; do j=0; while [ $j -lt 40 ]; do echo line $i; i=$((i+1)); j=$((j+1)); done; sleep 0.05; done; while true; do sleep 1; done"
    );
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [\"sh\", \"-c\", \"{script}\"]\n"
    )
}

/// A busybox pod serving the web image's page on port 80, with `extra` container fields.
fn web_pod(name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: web\n    image: {image}\n{extra}"
    )
}

fn host_port(port: u16) -> String {
    format!("    ports:\n    - containerPort: 80\n      hostPort: {port}\n")
}

#[test]
fn pull_secrets_host_ports_rotated_logs_and_interrupted_pods() {
    // A registry that wants a password, with an image only it has.
    let registry = Registry::start(Some(("puller", "s3cret")));
    let build = tempfile::tempdir().expect("tempdir");
    let creds =
        format!("configs:\n  \"{}\":\n    auth:\n      username: puller\n      password: s3cret\n", registry.host);
    mirror_config(build.path(), &registry, &creds);
    web_image(build.path(), "web:1", "private page\n");
    let private = format!("{}/private/web:1", registry.host);
    assert_eq!(skiff(build.path(), &["tag", "web:1", &private]).0, 0);
    let (code, _, err) = skiff(build.path(), &["push", "--insecure", &private]);
    assert_eq!(code, 0, "{err}");
    // A "registry" that accepts connections and never answers: pulls from it hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_host = format!("127.0.0.1:{}", silent.local_addr().expect("addr").port());

    let mut server =
        Server::with_node_args(3, &["--container-log-max-size", "16Ki", "--container-log-max-files", "3"], |d| {
            web_image(d, "busybox:1.36", "public page\n");
            // The node has no credentials of its own for the private registry.
            let extra = format!(
                "  \"{silent_host}\":\n    endpoint: [\"http://{silent_host}\"]\ndisable-default-endpoint: true\n"
            );
            mirror_config(d, &registry, &extra);
        });
    let k = server.kubectl("1.32");
    let describe = |k: &Kubectl, pod: &str| k.run(&["describe", "pod", pod]).stdout;

    // imagePullSecrets: `kubectl create secret docker-registry` and a pod that uses it.
    k.run(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server",
        &registry.host,
        "--docker-username",
        "puller",
        "--docker-password",
        "s3cret",
    ])
    .ok();
    let row = k.run(&["get", "secret", "regcred", "--no-headers"]).ok();
    assert!(row.split_whitespace().take(3).eq(["regcred", "kubernetes.io/dockerconfigjson", "1"]), "{row}");
    let bad = k.run_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bad\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: \"{not json\"\n");
    let bad = bad.fails();
    assert!(bad.contains("data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\""), "{bad}");

    let (hp, held_port) = (common::registry::free_port(), common::registry::free_port());
    let pull_secret = "  imagePullSecrets:\n  - name: regcred\n";
    let private_pod = format!("{}{}", web_pod("private", &private, &host_port(hp)), pull_secret);
    k.run_stdin(&["apply", "-f", "-"], &private_pod).ok();
    let denied =
        web_pod("denied", &private, "    imagePullPolicy: Always\n") + "  imagePullSecrets:\n  - name: missing\n";
    k.run_stdin(&["apply", "-f", "-"], &denied).ok();
    // hostPort: a port some other program holds keeps the pod from starting until it is free.
    let holder = std::net::TcpListener::bind(("127.0.0.1", held_port)).expect("hold a port");
    k.run_stdin(&["apply", "-f", "-"], &web_pod("held", "busybox:1.36", &host_port(held_port))).ok();

    assert!(eventually(WAIT, || row_is(&k, "private", "1/1", "Running")), "{}", describe(&k, "private"));
    assert!(http_get("127.0.0.1", hp).unwrap_or_default().contains("private page"), "hostPort {hp}");
    // A second pod wanting the same host port is not scheduled on this node.
    k.run_stdin(&["apply", "-f", "-"], &web_pod("clash", "busybox:1.36", &host_port(hp))).ok();
    assert!(eventually(WAIT, || row_is(&k, "denied", "0/1", "ImagePullBackOff")), "{}", describe(&k, "denied"));
    let text = describe(&k, "denied");
    assert!(text.contains("FailedToRetrieveImagePullSecret"), "{text}");
    assert!(text.contains("Unable to retrieve some image pull secrets (missing)"), "{text}");
    assert!(text.contains("unauthorized"), "{text}");
    assert!(eventually(WAIT, || describe(&k, "clash").contains("didn't have free ports for the requested pod ports")));
    assert_eq!(pod_field(&k, "clash", ".status.phase"), "Pending");
    assert!(eventually(WAIT, || describe(&k, "held").contains("FailedCreatePodSandBox")), "{}", describe(&k, "held"));
    let text = describe(&k, "held");
    assert!(text.contains(&format!("hostPort {held_port}/TCP on 0.0.0.0: Address already in use")), "{text}");
    drop(holder);
    assert!(eventually(WAIT, || row_is(&k, "held", "1/1", "Running")), "{}", describe(&k, "held"));
    assert!(eventually(WAIT, || http_get("127.0.0.1", held_port).unwrap_or_default().contains("public page")));

    // Logs rotate at 16 KiB, three files kept; `logs -f` follows across every rotation.
    k.run_stdin(&["apply", "-f", "-"], &chatty_pod("chatty", 3000)).ok();
    assert!(eventually(WAIT, || row_is(&k, "chatty", "1/1", "Running")), "{}", describe(&k, "chatty"));
    let seen = follow_logs_until(&k, "chatty", "line 2999\n");
    let followed: Vec<String> = seen.lines().map(String::from).collect();
    let expected: Vec<String> = (0..3000).map(|i| format!("line {i}")).collect();
    let first_gap = followed.iter().zip(&expected).position(|(a, b)| a != b);
    assert!(
        followed.len() == expected.len() && first_gap.is_none(),
        "logs -f lost or reordered lines across rotations: {} lines, first difference at {first_gap:?}: {:?}",
        followed.len(),
        first_gap.and_then(|i| followed.get(i))
    );
    let uid = pod_field(&k, "chatty", ".metadata.uid");
    let log = server.data_dir().join("pods").join(&uid).join("logs/c/0.log");
    let rotated = |n: u32| log.with_file_name(format!("0.log.{n}"));
    assert!(rotated(1).exists() && rotated(2).exists() && !rotated(3).exists(), "three files kept");
    assert!(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) <= 16 * 1024);
    let all = k.run(&["logs", "chatty"]).ok();
    assert!(all.ends_with("line 2999\n") && !all.starts_with("line 0\n"), "the oldest lines are rotated away");

    // Bad input: an impossible securityContext, a pull that hangs deleted mid-pull, and the
    // server killed (SIGKILL) while a pod is starting.
    let nonroot = web_pod("nonroot", "busybox:1.36", "    securityContext:\n      runAsNonRoot: true\n");
    k.run_stdin(&["apply", "-f", "-"], &nonroot).ok();
    assert!(eventually(WAIT, || row_is(&k, "nonroot", "0/1", "CreateContainerConfigError")));
    assert!(describe(&k, "nonroot").contains("container has runAsNonRoot and image will run as root"));
    k.run_stdin(&["apply", "-f", "-"], &web_pod("hang", &format!("{silent_host}/hangs:1"), "")).ok();
    assert!(eventually(WAIT, || describe(&k, "hang").contains("Pulling")));
    // The pull would wait a minute for the silent registry; the deletion does not.
    k.run(&["delete", "pod", "hang", "--timeout=20s"]).ok();
    k.run_stdin(&["apply", "-f", "-"], &web_pod("interrupted", "busybox:1.36", "")).ok();
    server.kill_and_restart();
    let k = server.kubectl("1.32");
    assert!(eventually(WAIT, || row_is(&k, "interrupted", "1/1", "Running")), "{}", describe(&k, "interrupted"));
    assert!(row_is(&k, "private", "1/1", "Running"));
    assert!(eventually(WAIT, || http_get("127.0.0.1", hp).unwrap_or_default().contains("private page")));

    // A burst of pods, then everything deleted: the host is as it was.
    let burst: String =
        (0..20).map(|i| format!("---\n{}", web_pod(&format!("burst-{i}"), "busybox:1.36", ""))).collect();
    k.run_stdin(&["apply", "-f", "-"], &burst).ok();
    assert!(eventually(WAIT, || (0..20).all(|i| row_is(&k, &format!("burst-{i}"), "1/1", "Running"))));
    k.run(&["delete", "pod", "--all", "--grace-period=2"]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "pods", "-o", "name"]).stdout.trim().is_empty()));
    assert_host_clean(&server, "skt3");
    assert!(http_get("127.0.0.1", hp).is_none(), "the hostPort is closed with its pod");
    drop(silent);
}

/// A tmpfs of `size` mounted on `path`, unmounted (and the directory removed) on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount");
        assert!(ok.success(), "mounting a tmpfs on {}", path.display());
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Write zeros to `path` until the file system is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 1 << 20];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_fails_writes_clearly_and_the_node_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _tmpfs = Tmpfs::mount(dir.path(), "64m");
    let server = Server::with_node_in(dir, 4, &[], |d| web_image(d, "busybox:1.36", "still here\n"));
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], &web_pod("before", "busybox:1.36", "")).ok();
    assert!(eventually(WAIT, || row_is(&k, "before", "1/1", "Running")));
    let ip = pod_field(&k, "before", ".status.podIP");

    let filler = server.data_dir().join("filler");
    fill(&filler);
    // Creating pods now fails with a clear error (the store may still have room for a few).
    let failure = (0..50).find_map(|i| {
        let r = k.run_stdin(&["apply", "-f", "-"], &web_pod(&format!("during-{i}"), "busybox:1.36", ""));
        (r.code != 0).then_some(r.stderr)
    });
    let failure = failure.expect("writes fail once the disk is full");
    assert!(failure.contains("No space left on device") && failure.contains("is full"), "{failure}");
    // Reads still work and the running pod keeps serving.
    assert!(row_is(&k, "before", "1/1", "Running"));
    assert!(http_get(&ip, 80).unwrap_or_default().contains("still here"));

    // With space again the same server takes writes, and every pod it accepted starts.
    std::fs::remove_file(&filler).expect("free the disk");
    k.run_stdin(&["apply", "-f", "-"], &web_pod("after", "busybox:1.36", "")).ok();
    let all_running = || {
        let names = k.run(&["get", "pods", "-o", "name"]).stdout;
        let names: Vec<&str> = names.lines().map(|n| n.trim_start_matches("pod/")).collect();
        names.contains(&"after") && names.iter().all(|n| row_is(&k, n, "1/1", "Running"))
    };
    assert!(eventually(WAIT, all_running), "{}", k.run(&["get", "pods"]).stdout);
    k.run(&["delete", "pod", "--all", "--grace-period=2"]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "pods", "-o", "name"]).stdout.trim().is_empty()));
    assert_host_clean(&server, "skt4");
}

const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";

/// A network namespace standing in for "the outside": a veth to the host, `host_ip` on the host end
/// and `ns_ip` inside, and a web server there whose CGI answers with the caller's address.
struct Outside {
    name: String,
    /// The host's IPv4 forwarding setting before the test (the NAT setup switches it on).
    forwarding: String,
    server: std::process::Child,
    _www: tempfile::TempDir,
}

impl Outside {
    fn start(name: &str, host_ip: &str, ns_ip: &str) -> Self {
        let sh = |cmd: &str| {
            let ok = std::process::Command::new("sh").arg("-c").arg(cmd).status().expect("sh");
            assert!(ok.success(), "{cmd}");
        };
        let quiet = |args: &[&str]| {
            let _ = std::process::Command::new("ip").args(args).stderr(std::process::Stdio::null()).status();
        };
        quiet(&["netns", "del", name]);
        let forwarding = std::fs::read_to_string(FORWARDING).expect("ip_forward");
        sh(&format!(
            "ip netns add {name} && ip link add {name}h type veth peer name {name}n && \
             ip link set {name}n netns {name} && ip addr add {host_ip}/30 dev {name}h && ip link set {name}h up && \
             ip -n {name} addr add {ns_ip}/30 dev {name}n && ip -n {name} link set {name}n up && ip -n {name} link set lo up"
        ));
        let www = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(www.path().join("cgi-bin")).expect("cgi-bin");
        let script = www.path().join("cgi-bin/peer");
        std::fs::write(&script, "#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho\necho $REMOTE_ADDR\n")
            .expect("script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let server = std::process::Command::new("ip")
            .args(["netns", "exec", name, "busybox", "httpd", "-f", "-p", &format!("{ns_ip}:8080"), "-h"])
            .arg(www.path())
            .spawn()
            .expect("httpd in the netns");
        Outside { name: name.into(), forwarding, server, _www: www }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        for args in [vec!["netns", "del", &self.name], vec!["link", "del", &format!("{}h", self.name)]] {
            let _ = std::process::Command::new("ip").args(&args).stderr(std::process::Stdio::null()).status();
        }
        let _ = std::fs::write(FORWARDING, &self.forwarding);
    }
}

#[test]
fn outbound_nat_masquerades_pod_traffic_leaving_the_pod_network() {
    // "Outside" is a namespace this test makes: nothing leaves the machine.
    let outside = Outside::start("skext5", "198.18.5.1", "198.18.5.2");
    let dir = tempfile::tempdir().expect("tempdir");
    web_image(dir.path(), "busybox:1.36", "");
    let server = Server::start_in(
        dir,
        &[
            "--pod-cidr",
            "10.150.5.0/24",
            "--bridge",
            "skt5",
            "--cluster-dns",
            "10.43.5.10",
            "--service-cidr",
            "10.43.5.0/24",
            "--disable-ingress",
            "--node-name",
            "skiff-test",
        ],
    );
    let k = server.kubectl("1.32");
    let nft_table =
        || std::process::Command::new("nft").args(["list", "table", "ip", "skiff-skt5"]).output().expect("nft");
    // The agent sets the rule up as it starts, beside the API server that answers first.
    let masquerade = "ip saddr 10.150.5.0/24 ip daddr != 10.150.5.0/24 masquerade";
    let rules = || String::from_utf8_lossy(&nft_table().stdout).into_owned();
    assert!(eventually(Duration::from_secs(10), || rules().contains(masquerade)), "{}", rules());
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: caller\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [\"wget\", \"-qO-\", \"http://198.18.5.2:8080/cgi-bin/peer\"]\n";
    k.run_stdin(&["apply", "-f", "-"], pod).ok();
    assert!(
        eventually(WAIT, || row_is(&k, "caller", "0/1", "Completed")),
        "{}",
        k.run(&["describe", "pod", "caller"]).stdout
    );
    // The outside saw the node's address, not the pod's.
    assert_eq!(k.run(&["logs", "caller"]).ok().trim(), "198.18.5.1");
    k.run(&["delete", "pod", "caller"]).ok();
    drop(server);
    // The NAT table outlives the server (pods outlive it too); a node started without NAT removes it.
    let dir = tempfile::tempdir().expect("tempdir");
    let again = Server::start_in(
        dir,
        &[
            "--pod-cidr",
            "10.150.5.0/24",
            "--bridge",
            "skt5",
            "--cluster-dns",
            "10.43.5.10",
            "--service-cidr",
            "10.43.5.0/24",
            "--disable-ingress",
            "--node-name",
            "skiff-test",
            "--disable-outbound-nat",
        ],
    );
    let gone = || !nft_table().status.success();
    assert!(eventually(WAIT, gone), "the NAT table is left behind");
    drop(again);
    drop(outside);
}
