//! End to end: probes on real containers, driven by kubectl. A readiness probe (httpGet on a
//! named port) holds READY at 0/1 until it succeeds; a failing exec liveness probe restarts the
//! container with the kubelet's events; a probe on a port nothing listens on says so.

mod common;

use common::{Kubectl, Server, eventually, import_busybox};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// This file's bridge (`skt28`): no other test binary uses it.
const NET: u8 = 28;

const WEB: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox:1.36
    command: [sh, -c, \"mkdir -p /www /state && echo > /state/alive && exec httpd -f -p 8080 -h /www\"]
    ports:
    - {name: http, containerPort: 8080}
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
    livenessProbe:
      exec:
        command: [cat, /state/alive]
      periodSeconds: 1
      failureThreshold: 1
";

fn get(k: &Kubectl, pod: &str, path: &str) -> String {
    k.run(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]).stdout
}

fn events(k: &Kubectl, pod: &str) -> String {
    let selector = format!("involvedObject.name={pod}");
    k.run(&[
        "get",
        "events",
        "--field-selector",
        &selector,
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ])
    .stdout
}

#[test]
fn readiness_gates_ready_and_a_failing_liveness_probe_restarts_the_container() {
    let server = Server::with_node(NET, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], WEB).ok();
    assert!(eventually(WAIT, || get(&k, "web", "{.status.phase}") == "Running"), "{}", server.log());
    let unready = "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 404";
    assert!(eventually(WAIT, || events(&k, "web").contains(unready)), "{}", events(&k, "web"));
    let row = k.run(&["get", "pod", "web", "--no-headers"]).ok();
    assert!(row.split_whitespace().nth(1) == Some("0/1"), "{row}");
    assert_eq!(get(&k, "web", "{.status.conditions[?(@.type==\"Ready\")].status}"), "False");

    k.run(&["exec", "web", "--", "sh", "-c", "echo > /www/ready"]).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]).ok();
    assert_eq!(get(&k, "web", "{.status.containerStatuses[0].ready}"), "true");

    k.run(&["exec", "web", "--", "sh", "-c", "rm /state/alive"]).ok();
    assert!(
        eventually(WAIT, || get(&k, "web", "{.status.containerStatuses[0].restartCount}") == "1"),
        "{}",
        k.run(&["describe", "pod", "web"]).stdout
    );
    let seen = events(&k, "web");
    assert!(
        seen.contains("Unhealthy: Liveness probe failed: cat: can't open '/state/alive': No such file or directory"),
        "{seen}"
    );
    assert!(seen.contains("Killing: Container web failed liveness probe, will be restarted"), "{seen}");
    // The new attempt has a fresh filesystem: alive again, and not ready until /www/ready exists.
    assert!(eventually(WAIT, || get(&k, "web", "{.status.phase}") == "Running"));
    assert_eq!(get(&k, "web", "{.status.containerStatuses[0].ready}"), "false");
    // httpd as PID 1 ignores SIGTERM: killed once the 1 s grace period has passed.
    assert_eq!(get(&k, "web", "{.status.containerStatuses[0].lastState.terminated.exitCode}"), "137");
}

#[test]
fn a_probe_on_a_port_nothing_listens_on_keeps_the_pod_unready_and_says_why() {
    let server = Server::with_node(NET + 1, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: closed\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sleep, \"3600\"]\n    readinessProbe:\n      tcpSocket: {port: 9999}\n      periodSeconds: 1\n";
    k.run_stdin(&["apply", "-f", "-"], pod).ok();
    assert!(eventually(WAIT, || !get(&k, "closed", "{.status.podIP}").is_empty()));
    let ip = get(&k, "closed", "{.status.podIP}");
    let want = format!("Unhealthy: Readiness probe failed: dial tcp {ip}:9999: connect: connection refused");
    assert!(eventually(WAIT, || events(&k, "closed").contains(&want)), "{}", events(&k, "closed"));
    assert_eq!(get(&k, "closed", "{.status.phase}"), "Running");
    assert_eq!(get(&k, "closed", "{.status.containerStatuses[0].ready}"), "false");

    // HTTPS against a plain-HTTP server fails in the handshake; a gRPC probe with nothing on
    // its port times out connecting, in the kubelet's words.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: secure\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [httpd, -f, -p, \"8443\"]\n    readinessProbe:\n      httpGet: {port: 8443, scheme: HTTPS}\n      periodSeconds: 1\n    livenessProbe:\n      grpc: {port: 9998}\n      periodSeconds: 1\n      failureThreshold: 100\n";
    k.run_stdin(&["apply", "-f", "-"], pod).ok();
    assert!(eventually(WAIT, || !get(&k, "secure", "{.status.podIP}").is_empty()));
    let ip = get(&k, "secure", "{.status.podIP}");
    let tls = format!("Unhealthy: Readiness probe failed: Get \"https://{ip}:8443/\": tls: ");
    let grpc = format!(
        "Unhealthy: Liveness probe failed: timeout: failed to connect service \"{ip}:9998\" within 1s: context deadline exceeded"
    );
    assert!(
        eventually(WAIT, || {
            let seen = events(&k, "secure");
            seen.contains(&tls) && seen.contains(&grpc)
        }),
        "{}",
        events(&k, "secure")
    );
    assert_eq!(get(&k, "secure", "{.status.containerStatuses[0].ready}"), "false");
}

/// postStart runs in the started container; a preStop hook that hangs past the grace period is
/// cut off with an event, and the pod still goes.
#[test]
fn lifecycle_hooks_run_and_a_hanging_pre_stop_hook_does_not_hold_the_pod() {
    let server = Server::with_node(NET + 2, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    let pod = "apiVersion: v1
kind: Pod
metadata:
  name: hooks
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox:1.36
    command: [sleep, \"3600\"]
    lifecycle:
      postStart:
        exec:
          command: [sh, -c, \"echo started > /poststart\"]
      preStop:
        exec:
          command: [sleep, \"3600\"]
";
    k.run_stdin(&["apply", "-f", "-"], pod).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/hooks", "--timeout=60s"]).ok();
    assert_eq!(k.run(&["exec", "hooks", "--", "cat", "/poststart"]).ok(), "started\n");
    let began = std::time::Instant::now();
    k.run(&["delete", "pod", "hooks", "--timeout=30s"]).ok();
    // The hook's 2 s, then 2 s for the stop signal (sleep as PID 1 ignores it), then killed.
    assert!(began.elapsed() < Duration::from_secs(20), "{:?}", began.elapsed());
    let seen = events(&k, "hooks");
    assert!(
        seen.contains(
            "FailedPreStopHook: Exec lifecycle hook ([sleep 3600]) for Container \"c\" in Pod \"hooks_default("
        ),
        "{seen}"
    );
    assert!(seen.contains("failed - error: did not complete within 2s"), "{seen}");

    // terminationMessagePolicy: FallbackToLogsOnError: a failed container's last lines (one
    // stream: stdout and stderr lines are logged as the shim reads them, in no fixed order).
    let fails = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: fails\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, \"echo starting; echo disk full; exit 3\"]\n    terminationMessagePolicy: FallbackToLogsOnError\n";
    k.run_stdin(&["apply", "-f", "-"], fails).ok();
    assert!(eventually(WAIT, || get(&k, "fails", "{.status.phase}") == "Failed"));
    let message = get(&k, "fails", "{.status.containerStatuses[0].state.terminated.message}");
    assert_eq!(message, "starting\ndisk full\n");
}

/// `kubectl top` with no add-on: metrics.k8s.io served from the node's cgroups.
#[test]
fn kubectl_top_shows_what_pods_and_nodes_use() {
    let server = Server::with_node(NET + 3, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: busy\n  labels:\n    app: busy\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: spin\n    image: busybox:1.36\n    command: [sh, -c, \"while true; do :; done\"]\n  - name: idle\n    image: busybox:1.36\n    command: [sleep, \"3600\"]\n";
    k.run_stdin(&["apply", "-f", "-"], pod).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/busy", "--timeout=60s"]).ok();
    let mut rows = String::new();
    assert!(
        eventually(WAIT, || {
            rows = k.run(&["top", "pod", "busy", "--containers"]).stdout;
            rows.lines().count() == 3
        }),
        "{rows}"
    );
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]);
    let spin = rows.iter().find(|r| r[1] == "spin").expect("the spinning container");
    let millicores: u64 = spin[2].trim_end_matches('m').parse().expect("millicores");
    assert!(millicores >= 200, "a busy loop uses most of a core: {spin:?}");
    assert!(rows.iter().any(|r| r[1] == "idle"));
    let by_label = k.run(&["top", "pod", "-l", "app=busy", "--no-headers"]).ok();
    assert!(by_label.starts_with("busy "), "{by_label}");
    for version in ["1.27", "1.32"] {
        let nodes = server.kubectl(version).run(&["top", "node"]).ok();
        let header: Vec<&str> = nodes.lines().next().unwrap_or("").split_whitespace().collect();
        // kubectl's own headers: 1.27 says CPU%, 1.32 CPU(%).
        let percent = if version == "1.27" { ["CPU%", "MEMORY%"] } else { ["CPU(%)", "MEMORY(%)"] };
        assert_eq!(header, ["NAME", "CPU(cores)", percent[0], "MEMORY(bytes)", percent[1]], "{nodes}");
        assert!(nodes.lines().nth(1).is_some_and(|l| l.starts_with("skiff-test ")), "{nodes}");
    }
    let missing = k.run(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope"]).fails();
    assert!(missing.contains("podmetrics.metrics.k8s.io \"nope\" not found"), "{missing}");
}

/// A HorizontalPodAutoscaler (autoscaling/v2) scales a busy Deployment up from the metrics
/// `kubectl top` reads, to its maximum. (`kubectl autoscale` writes autoscaling/v1, not served
/// yet.)
#[test]
fn an_autoscaler_scales_a_busy_deployment_up_to_its_maximum() {
    let server = Server::with_node(NET + 4, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: spin\nspec:\n  selector:\n    matchLabels:\n      app: spin\n  template:\n    metadata:\n      labels:\n        app: spin\n    spec:\n      terminationGracePeriodSeconds: 0\n      containers:\n      - name: spin\n        image: busybox:1.36\n        command: [sh, -c, \"while true; do :; done\"]\n        resources:\n          requests: {cpu: 100m}\n";
    k.run_stdin(&["apply", "-f", "-"], deploy).ok();
    k.run(&["rollout", "status", "deployment/spin", "--timeout=60s"]).ok();
    let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: spin\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: spin}\n  minReplicas: 1\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target: {type: Utilization, averageUtilization: 50}\n";
    let made = k.run_stdin(&["apply", "-f", "-"], hpa).ok();
    assert_eq!(made.trim(), "horizontalpodautoscaler.autoscaling/spin created");
    let replicas = || k.run(&["get", "deployment", "spin", "-o", "jsonpath={.spec.replicas}"]).stdout;
    assert!(eventually(WAIT, || replicas() == "3"), "{}", k.run(&["describe", "hpa", "spin"]).stdout);
    let row = k.run(&["get", "hpa", "spin", "--no-headers"]).ok();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..2], ["spin", "Deployment/spin"], "{row}");
    assert!(row.contains("/50%") && row.contains(" 1 ") && row.contains(" 3 "), "{row}");
    let events = k.run(&["describe", "hpa", "spin"]).ok();
    assert!(
        events.contains("SuccessfulRescale")
            && events.contains("New size: 3; reason: cpu resource utilization (percentage of request) above target"),
        "{events}"
    );
    // Three busy loops: gone at once.
    k.run(&["delete", "deployment", "spin", "--grace-period=0", "--force"]).ok();
    let bad = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: bad\nspec:\n  scaleTargetRef: {kind: Deployment, name: spin}\n  minReplicas: 3\n  maxReplicas: 1\n";
    let refused = k.run_stdin(&["apply", "-f", "-"], bad).fails();
    assert!(
        refused.contains("spec.maxReplicas: Invalid value: 1: must be greater than or equal to `minReplicas`"),
        "{refused}"
    );
}
