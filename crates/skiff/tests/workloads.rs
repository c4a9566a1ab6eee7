//! End to end: Deployments and ReplicaSets run by the controller manager, with real pods on a
//! node, driven by kubectl as the course does (create, rollout status, set image, history, undo,
//! scale, cascading deletes), a rollout that cannot finish, and ReplicationControllers.

mod common;

use common::{KUBECTL_VERSIONS, Kubectl, Server, eventually, import_busybox, skiff};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);
/// This file's bridges (`skt20`-`skt25`, `skt33`, `skt56`): no other test binary uses them.
const NET: u8 = 20;
/// The ReplicationController test's bridge.
const RC_NET: u8 = 56;

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
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
      - name: busybox
        image: busybox:1.36
        command: [sleep, \"3600\"]
";

fn jsonpath(k: &Kubectl, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let expr = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &expr]);
    k.run(&args).stdout
}

fn running_pods(k: &Kubectl, selector: &str) -> usize {
    let out = k.run(&["get", "pods", "-l", selector, "--field-selector=status.phase=Running", "-o", "name"]).stdout;
    out.lines().filter(|l| !l.is_empty()).count()
}

fn all_pods(k: &Kubectl, selector: &str) -> usize {
    k.run(&["get", "pods", "-l", selector, "-o", "name"]).stdout.lines().filter(|l| !l.is_empty()).count()
}

#[test]
fn deployments_roll_out_scale_roll_back_and_delete_their_pods() {
    let server = Server::with_node(NET, |d| {
        import_busybox(d, &[]);
        // The same image under a second tag: a new template for `set image`.
        let (code, _, err) = skiff(d, &["tag", "busybox:1.36", "busybox:1.37"]);
        assert_eq!(code, 0, "{err}");
        // docker.io mirrored to a closed loopback port: a pull never leaves the machine.
        std::fs::write(
            d.join("registries.yaml"),
            "mirrors:\n  docker.io:\n    endpoint: [\"http://127.0.0.1:9\"]\ndisable-default-endpoint: true\n",
        )
        .expect("registries.yaml");
    });
    let k = server.kubectl("1.32");
    // As `kubectl create deployment web --image=busybox:1.36 --replicas=3 -- sleep 3600` makes it,
    // with a short grace period: `sleep` as PID 1 ignores SIGTERM, and each old pod would take 30 s.
    let created = k.run_stdin(&["apply", "-f", "-"], WEB).ok();
    assert_eq!(created.trim(), "deployment.apps/web created");
    let status = k.run(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(
        status.stdout.contains("deployment \"web\" successfully rolled out"),
        "{}\n{}\n{}",
        status.stdout,
        status.stderr,
        server.log()
    );
    assert_eq!(running_pods(&k, "app=web"), 3);
    let rs = k.run(&["get", "rs", "-l", "app=web"]).ok();
    let rows: Vec<Vec<&str>> = rs.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{rs}");
    assert_eq!(rows[1][1..4], ["3", "3", "3"], "{rs}");
    let deploy = k.run(&["get", "deploy", "web"]).ok();
    assert!(
        deploy.lines().nth(1).is_some_and(|r| r.split_whitespace().collect::<Vec<_>>()[1..4] == ["3/3", "3", "3"]),
        "{deploy}"
    );

    // A rolling update (maxSurge 1, maxUnavailable 0 of 3) never has fewer than 3 available.
    let set = k.run(&["set", "image", "deployment/web", "busybox=busybox:1.37"]).ok();
    assert_eq!(set.trim(), "deployment.apps/web image updated");
    let started = Instant::now();
    let mut least = i64::MAX;
    loop {
        let available: i64 = jsonpath(&k, &["deploy", "web"], "{.status.availableReplicas}").parse().unwrap_or(0);
        least = least.min(available);
        let updated = jsonpath(
            &k,
            &["deploy", "web"],
            "{.status.updatedReplicas} {.status.replicas} {.status.availableReplicas}",
        );
        if updated == "3 3 3" && jsonpath(&k, &["deploy", "web"], "{.status.observedGeneration}") == "2" {
            break;
        }
        assert!(started.elapsed() < WAIT, "rollout stuck at {updated}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(least >= 3, "availability fell to {least} during the rolling update");
    let status = k.run(&["rollout", "status", "deployment/web", "--timeout=60s"]).ok();
    assert!(status.contains("successfully rolled out"), "{status}");
    let images = jsonpath(&k, &["pods", "-l", "app=web"], "{.items[*].spec.containers[0].image}");
    assert!(
        eventually(WAIT, || jsonpath(&k, &["pods", "-l", "app=web"], "{.items[*].spec.containers[0].image}")
            == "busybox:1.37 busybox:1.37 busybox:1.37"),
        "{images}"
    );
    let history = k.run(&["rollout", "history", "deployment/web"]).ok();
    assert!(history.contains("1 ") && history.contains("2 "), "{history}");

    // Back to the first template: its ReplicaSet becomes revision 3.
    let undo = k.run(&["rollout", "undo", "deployment/web"]).ok();
    assert_eq!(undo.trim(), "deployment.apps/web rolled back");
    k.run(&["rollout", "status", "deployment/web", "--timeout=90s"]).ok();
    assert_eq!(jsonpath(&k, &["deploy", "web"], "{.spec.template.spec.containers[0].image}"), "busybox:1.36");
    assert_eq!(jsonpath(&k, &["deploy", "web"], "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"), "3");
    assert_eq!(
        k.run(&["get", "rs", "-l", "app=web", "-o", "name"]).ok().lines().count(),
        2,
        "one ReplicaSet per template: {}\n{}",
        k.run(&["get", "rs", "-o", "yaml"]).stdout,
        k.run(&["get", "deploy", "web", "-o", "yaml"]).stdout
    );

    // Scale to nothing and back.
    assert_eq!(k.run(&["scale", "deployment", "web", "--replicas=0"]).ok().trim(), "deployment.apps/web scaled");
    assert!(eventually(WAIT, || all_pods(&k, "app=web") == 0), "{}", k.run(&["get", "pods"]).stdout);
    k.run(&["scale", "deployment", "web", "--replicas=2"]).ok();
    k.run(&["rollout", "status", "deployment/web", "--timeout=90s"]).ok();
    assert_eq!(running_pods(&k, "app=web"), 2);

    // A deleted pod is replaced.
    let victim = k.run(&["get", "pods", "-l", "app=web", "-o", "name"]).ok().lines().next().expect("a pod").to_string();
    k.run(&["delete", &victim, "--wait=false"]).ok();
    assert!(eventually(WAIT, || running_pods(&k, "app=web") == 2
        && !k.run(&["get", "pods", "-o", "name"]).stdout.contains(&victim)));

    // Foreground deletion: the Deployment stays until its ReplicaSets and pods are gone.
    k.run(&["delete", "deployment", "web", "--cascade=foreground", "--wait=false"]).ok();
    let finalizers = jsonpath(&k, &["deploy", "web"], "{.metadata.finalizers}");
    assert!(finalizers.contains("foregroundDeletion") || finalizers.is_empty(), "{finalizers}");
    assert!(eventually(WAIT, || k.run(&["get", "deploy", "web"]).code != 0), "{}", server.log());
    assert!(eventually(WAIT, || all_pods(&k, "app=web") == 0
        && k.run(&["get", "rs", "-l", "app=web", "-o", "name"]).stdout.is_empty()));
}

/// What the course types, with each supported kubectl (the rollout commands are client-side
/// code that changed between versions): `create deployment --replicas`, `rollout status`,
/// `set image`, `rollout undo`, `scale`.
#[test]
fn create_deployment_and_the_rollout_commands_with_every_kubectl() {
    let server = Server::with_node(33, |d| {
        import_busybox(d, &[]);
        let (code, _, err) = skiff(d, &["tag", "busybox:1.36", "busybox:1.37"]);
        assert_eq!(code, 0, "{err}");
    });
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("web{}", v.replace('.', ""));
        let selector = format!("app={name}");
        let deployment = format!("deployment/{name}");
        let rolled_out = |k: &Kubectl| {
            let status = k.run(&["rollout", "status", &deployment, "--timeout=90s"]);
            assert!(
                status.stdout.contains(&format!("deployment \"{name}\" successfully rolled out")),
                "kubectl {v}: {}\n{}",
                status.stdout,
                status.stderr
            );
        };
        // A shell that ends on SIGTERM, so old pods go at once rather than after 30 s.
        let shell = "trap 'exit 0' TERM; sleep 3600 & wait";
        let create = ["create", "deployment", &name, "--image=busybox:1.36", "--replicas=3", "--", "sh", "-c", shell];
        let created = k.run(&create).ok();
        assert_eq!(created.trim(), format!("deployment.apps/{name} created"));
        rolled_out(&k);
        assert_eq!(running_pods(&k, &selector), 3, "kubectl {v}");

        let set = k.run(&["set", "image", &deployment, "busybox=busybox:1.37"]).ok();
        assert_eq!(set.trim(), format!("deployment.apps/{name} image updated"));
        rolled_out(&k);
        let undo = k.run(&["rollout", "undo", &deployment]).ok();
        assert_eq!(undo.trim(), format!("deployment.apps/{name} rolled back"));
        rolled_out(&k);
        let image = jsonpath(&k, &["deploy", &name], "{.spec.template.spec.containers[0].image}");
        assert_eq!(image, "busybox:1.36", "kubectl {v}");

        let scaled = k.run(&["scale", &deployment, "--replicas=0"]).ok();
        assert_eq!(scaled.trim(), format!("deployment.apps/{name} scaled"));
        assert!(eventually(WAIT, || all_pods(&k, &selector) == 0), "kubectl {v}");
    }
}

#[test]
fn a_rollout_that_cannot_finish_exceeds_its_progress_deadline_and_orphans_stay() {
    let server = Server::with_node(NET + 1, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.29");
    let broken = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  progressDeadlineSeconds: 5\n  selector:\n    matchLabels:\n      app: broken\n  template:\n    metadata:\n      labels:\n        app: broken\n    spec:\n      containers:\n      - name: c\n        image: not-here:1\n        imagePullPolicy: Never\n";
    k.run_stdin(&["apply", "-f", "-"], broken).ok();
    let status = k.run(&["rollout", "status", "deployment/broken", "--timeout=60s"]);
    assert_ne!(status.code, 0);
    assert!(
        status.stderr.contains("deployment \"broken\" exceeded its progress deadline"),
        "{}\n{}",
        status.stdout,
        status.stderr
    );
    let reason = jsonpath(&k, &["deploy", "broken"], "{.status.conditions[?(@.type==\"Progressing\")].reason}");
    assert_eq!(reason, "ProgressDeadlineExceeded");

    // A ReplicaSet deleted with --cascade=orphan leaves its pods, without their owner.
    let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: keep\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: keep\n  template:\n    metadata:\n      labels:\n        app: keep\n    spec:\n      containers:\n      - name: c\n        image: busybox:1.36\n        command: [sleep, \"3600\"]\n      terminationGracePeriodSeconds: 1\n";
    k.run_stdin(&["apply", "-f", "-"], rs).ok();
    assert!(eventually(WAIT, || running_pods(&k, "app=keep") == 2), "{}", server.log());
    k.run(&["delete", "rs", "keep", "--cascade=orphan"]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "rs", "keep"]).code != 0));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(all_pods(&k, "app=keep"), 2, "orphaned pods stay");
    assert_eq!(jsonpath(&k, &["pods", "-l", "app=keep"], "{.items[*].metadata.ownerReferences}"), "");
}

/// Jobs and CronJobs with real pods: 5 completions 2 at a time, a Job that keeps failing stops at
/// its backoff limit, an Indexed Job gives each pod its index, and a CronJob every minute.
#[test]
fn jobs_run_to_completion_fail_at_their_limit_and_cronjobs_run_on_schedule() {
    let server = Server::with_node(NET + 2, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    let cron = k
        .run(&[
            "create",
            "cronjob",
            "tick",
            "--image=busybox:1.36",
            "--schedule=*/1 * * * *",
            "--",
            "sh",
            "-c",
            "echo tick",
        ])
        .ok();
    assert_eq!(cron.trim(), "cronjob.batch/tick created");

    let five = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: five\nspec:\n  completions: 5\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox:1.36\n        command: [sh, -c, \"echo done\"]\n";
    k.run_stdin(&["apply", "-f", "-"], five).ok();
    let waited = k.run(&["wait", "--for=condition=complete", "job/five", "--timeout=90s"]);
    assert_eq!(waited.code, 0, "{}\n{}\n{}", waited.stderr, k.run(&["describe", "job", "five"]).stdout, server.log());
    assert_eq!(jsonpath(&k, &["job", "five"], "{.status.succeeded}"), "5");
    let rows = k.run(&["get", "job", "five"]).ok();
    assert!(
        rows.lines().nth(1).is_some_and(|r| r.split_whitespace().collect::<Vec<_>>()[1..3] == ["Complete", "5/5"]),
        "{rows}"
    );
    assert_eq!(all_pods(&k, "batch.kubernetes.io/job-name=five"), 5);
    let logs = k.run(&["logs", "job/five"]).ok();
    assert_eq!(logs.trim(), "done");

    let failing = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: failing\nspec:\n  backoffLimit: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox:1.36\n        command: [sh, -c, \"exit 3\"]\n";
    k.run_stdin(&["apply", "-f", "-"], failing).ok();
    let waited = k.run(&["wait", "--for=condition=failed", "job/failing", "--timeout=90s"]);
    assert_eq!(waited.code, 0, "{}\n{}", waited.stderr, k.run(&["describe", "job", "failing"]).stdout);
    let reason = jsonpath(&k, &["job", "failing"], "{.status.conditions[?(@.type==\"Failed\")].reason}");
    assert_eq!(reason, "BackoffLimitExceeded");
    assert_eq!(jsonpath(&k, &["job", "failing"], "{.status.failed}"), "2");

    let indexed = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: indexed\nspec:\n  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox:1.36\n        command: [sh, -c, \"echo index $JOB_COMPLETION_INDEX\"]\n";
    k.run_stdin(&["apply", "-f", "-"], indexed).ok();
    k.run(&["wait", "--for=condition=complete", "job/indexed", "--timeout=90s"]).ok();
    assert_eq!(jsonpath(&k, &["job", "indexed"], "{.status.completedIndexes}"), "0-2");
    let mut said: Vec<String> = k
        .run(&["get", "pods", "-l", "batch.kubernetes.io/job-name=indexed", "-o", "name"])
        .ok()
        .lines()
        .map(|p| k.run(&["logs", p]).ok().trim().to_string())
        .collect();
    said.sort();
    assert_eq!(said, ["index 0", "index 1", "index 2"]);

    // The CronJob made a Job within a minute of its creation, and the Job ran.
    assert!(
        eventually(Duration::from_secs(90), || !k
            .run(&["get", "jobs", "-l", "", "-o", "name"])
            .stdout
            .lines()
            .filter(|l| l.contains("tick-"))
            .collect::<Vec<_>>()
            .is_empty()),
        "{}",
        k.run(&["describe", "cronjob", "tick"]).stdout
    );
    let ran = jsonpath(&k, &["cronjob", "tick"], "{.status.lastScheduleTime}");
    assert!(!ran.is_empty(), "{}", k.run(&["get", "cronjob", "tick", "-o", "yaml"]).stdout);
    let job =
        k.run(&["get", "jobs", "-o", "name"]).ok().lines().find(|l| l.contains("tick-")).expect("tick job").to_string();
    k.run(&["wait", "--for=condition=complete", &job, "--timeout=60s"]).ok();
    assert_eq!(k.run(&["logs", &job]).ok().trim(), "tick");
}

/// A DaemonSet puts one pod on the node, rolls it to a new template, and leaves when its node
/// selector no longer matches.
/// A DaemonSet on two nodes (this server's and a `skiff agent`'s): one pod on each, a rolling
/// update of both, and none on a node its selector no longer matches.
#[test]
fn daemonsets_follow_their_nodes() {
    let images = |d: &std::path::Path| {
        import_busybox(d, &[]);
        let (code, _, err) = skiff(d, &["tag", "busybox:1.36", "busybox:1.37"]);
        assert_eq!(code, 0, "{err}");
    };
    let server = Server::with_node(NET + 3, images);
    let second = common::agent::Agent::start(&server, "second", NET + 3, common::registry::free_port(), images);
    let k = server.kubectl("1.27");
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels:\n      app: agent\n  template:\n    metadata:\n      labels:\n        app: agent\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: a\n        image: busybox:1.36\n        command: [sleep, \"3600\"]\n";
    assert_eq!(k.run_stdin(&["apply", "-f", "-"], ds).ok().trim(), "daemonset.apps/agent created");
    let status = k.run(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    assert!(
        status.stdout.contains("daemon set \"agent\" successfully rolled out"),
        "{}\n{}\n{}",
        status.stdout,
        status.stderr,
        server.log()
    );
    let sorted = |s: String| {
        let mut v: Vec<String> = s.split_whitespace().map(String::from).collect();
        v.sort();
        v
    };
    let nodes = sorted(k.run(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]).ok());
    assert_eq!(nodes.len(), 2);
    assert_eq!(sorted(jsonpath(&k, &["pods", "-l", "app=agent"], "{.items[*].spec.nodeName}")), nodes);
    let row = k.run(&["get", "ds", "agent"]).ok();
    assert!(
        row.lines().nth(1).is_some_and(|r| r.split_whitespace().collect::<Vec<_>>()[1..6] == ["2", "2", "2", "2", "2"]),
        "{row}\n{}",
        second.log()
    );
    // `kubectl top` reaches the second node through its endpoint too.
    let top = k.run(&["top", "node", "--no-headers"]).ok();
    assert_eq!(sorted(top.lines().filter_map(|l| l.split_whitespace().next()).collect::<Vec<_>>().join(" ")), nodes);
    let pods = k.run(&["top", "pod", "-l", "app=agent", "--no-headers"]).ok();
    assert_eq!(pods.lines().count(), 2, "{pods}");
    k.run(&["set", "image", "ds/agent", "a=busybox:1.37"]).ok();
    k.run(&["rollout", "status", "ds/agent", "--timeout=60s"]).ok();
    assert!(eventually(WAIT, || jsonpath(&k, &["pods", "-l", "app=agent"], "{.items[*].spec.containers[0].image}")
        == "busybox:1.37 busybox:1.37"));
    k.run(&[
        "patch",
        "ds",
        "agent",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"disk":"ssd"}}}}}"#,
    ])
    .ok();
    assert!(eventually(WAIT, || all_pods(&k, "app=agent") == 0), "{}", k.run(&["get", "pods", "-o", "wide"]).stdout);
    assert_eq!(jsonpath(&k, &["ds", "agent"], "{.status.desiredNumberScheduled}"), "0");
}

/// `kubectl drain` evicts through the eviction subresource, which a PodDisruptionBudget guards:
/// while the budget allows no disruption the drain cannot finish; without it, it does.
#[test]
fn drain_respects_pod_disruption_budgets() {
    let server = Server::with_node(NET + 4, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], &WEB.replace("replicas: 3", "replicas: 2")).ok();
    k.run(&["rollout", "status", "deployment/web", "--timeout=60s"]).ok();
    let pdb = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 2\n  selector:\n    matchLabels:\n      app: web\n";
    assert_eq!(k.run_stdin(&["apply", "-f", "-"], pdb).ok().trim(), "poddisruptionbudget.policy/web created");
    assert!(eventually(WAIT, || jsonpath(&k, &["pdb", "web"], "{.status.currentHealthy}") == "2"));
    let rows = k.run(&["get", "pdb", "web"]).ok();
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]);
    assert_eq!(rows[1][..4], ["web", "2", "N/A", "0"]);
    let node = k.run(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]).ok();
    let blocked = k.run(&["drain", &node, "--ignore-daemonsets", "--timeout=8s"]);
    assert_ne!(blocked.code, 0);
    assert!(
        blocked.stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{}",
        blocked.stderr
    );
    assert_eq!(jsonpath(&k, &["node", &node], "{.spec.unschedulable}"), "true", "drain cordons first");
    assert_eq!(running_pods(&k, "app=web"), 2, "no pod went");
    k.run(&["delete", "pdb", "web"]).ok();
    let drained = k.run(&["drain", &node, "--ignore-daemonsets", "--timeout=60s"]).ok();
    assert!(drained.contains(&format!("node/{node} drained")), "{drained}");
    // The replacements wait for a schedulable node.
    assert!(eventually(WAIT, || running_pods(&k, "app=web") == 0));
    k.run(&["uncordon", &node]).ok();
    k.run(&["rollout", "status", "deployment/web", "--timeout=60s"]).ok();
}

/// `kill -9` of the server in the middle of a rolling update: after the restart the rollout
/// finishes with no pod lost or made twice, and never more than replicas + maxSurge pods.
#[test]
fn a_rollout_survives_kill_9_of_the_server() {
    let mut server = Server::with_node(NET + 5, |d| {
        import_busybox(d, &[]);
        let (code, _, err) = skiff(d, &["tag", "busybox:1.36", "busybox:1.37"]);
        assert_eq!(code, 0, "{err}");
    });
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], &WEB.replace("replicas: 3", "replicas: 4")).ok();
    k.run(&["rollout", "status", "deployment/web", "--timeout=90s"]).ok();
    k.run(&["set", "image", "deployment/web", "busybox=busybox:1.37"]).ok();
    // Mid-rollout: some new pods exist.
    assert!(eventually(WAIT, || jsonpath(&k, &["pods", "-l", "app=web"], "{.items[*].spec.containers[0].image}")
        .contains("1.37")));
    server.kill_and_restart();
    let k = server.kubectl("1.32");
    let started = Instant::now();
    let mut most = 0;
    loop {
        // Pods not being deleted: at most replicas (4) + maxSurge (1).
        let live = k
            .run(&[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{end}",
            ])
            .stdout;
        most = most.max(live.split('|').filter(|d| d.is_empty()).count().saturating_sub(1));
        let done = jsonpath(
            &k,
            &["deploy", "web"],
            "{.status.updatedReplicas} {.status.replicas} {.status.availableReplicas}",
        );
        if done == "4 4 4" {
            break;
        }
        assert!(started.elapsed() < WAIT, "stuck at {done}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(most <= 5, "{most} pods at once");
    assert!(eventually(WAIT, || jsonpath(&k, &["pods", "-l", "app=web"], "{.items[*].spec.containers[0].image}")
        == "busybox:1.37 busybox:1.37 busybox:1.37 busybox:1.37"));
    assert_eq!(k.run(&["get", "rs", "-l", "app=web", "-o", "name"]).ok().lines().count(), 2);
}

/// 1,000 pods owned by one ReplicaSet, deleted with foreground propagation: the ReplicaSet stays
/// (with the `foregroundDeletion` finalizer) until the garbage collector has deleted every pod,
/// nothing is re-created meanwhile, and kubectl's wait ends. No node: the pods never run, so
/// each is deleted at once.
#[test]
fn a_thousand_pods_deleted_with_foreground_propagation() {
    let server = Server::start();
    let k = server.kubectl("1.32");
    let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: big\nspec:\n  replicas: 1000\n  selector:\n    matchLabels:\n      app: big\n  template:\n    metadata:\n      labels:\n        app: big\n    spec:\n      containers:\n      - name: c\n        image: busybox:1.36\n";
    k.run_stdin(&["apply", "-f", "-"], rs).ok();
    assert!(
        eventually(Duration::from_secs(180), || all_pods(&k, "app=big") == 1000),
        "{} pods\n{}",
        all_pods(&k, "app=big"),
        server.log()
    );
    let replicas = jsonpath(&k, &["rs", "big"], "{.status.replicas}");
    assert_eq!(replicas, "1000");

    let deleted = k.run(&["delete", "rs", "big", "--cascade=foreground", "--timeout=180s"]);
    assert_eq!(deleted.code, 0, "{}\n{}", deleted.stdout, deleted.stderr);
    assert_eq!(deleted.stdout.trim(), "replicaset.apps \"big\" deleted");
    assert_ne!(k.run(&["get", "rs", "big"]).code, 0, "the ReplicaSet is gone once its pods are");
    assert_eq!(all_pods(&k, "app=big"), 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(all_pods(&k, "app=big"), 0, "no pod came back");
}

/// A ReplicationController of two pods, its selector and labels defaulted from the template:
/// `get rc` prints upstream's columns, `scale rc` goes through its scale subresource, it is in
/// `get all` and in `apply --prune`'s default set, and deleting it deletes its pods.
#[test]
fn replication_controllers_keep_scale_and_take_their_pods_away() {
    let server = Server::with_node(RC_NET, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    let rc = "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        app: rcweb\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: busybox\n        image: busybox:1.36\n        command: [sleep, \"3600\"]\n";
    let created = k.run_stdin(&["apply", "-f", "-"], rc).ok();
    assert_eq!(created.trim(), "replicationcontroller/web created");
    let row = |k: &Kubectl| {
        let out = k.run(&["get", "rc", "web"]).ok();
        out.lines()
            .nth(1)
            .map(|r| r.split_whitespace().skip(1).take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert!(
        eventually(WAIT, || running_pods(&k, "app=rcweb") == 2 && row(&k) == "2 2 2"),
        "{}\n{}\n{}",
        k.run(&["get", "rc", "web", "-o", "yaml"]).stdout,
        k.run(&["get", "pods", "-o", "wide"]).stdout,
        server.log()
    );
    let table = k.run(&["get", "rc", "-o", "wide"]).ok();
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]);
    let wide: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(wide[5..], ["busybox", "busybox:1.36", "app=rcweb"], "{table}");
    assert_eq!(jsonpath(&k, &["rc", "web"], "{.metadata.labels.app} {.spec.selector.app}"), "rcweb rcweb");
    let owners = jsonpath(&k, &["pods", "-l", "app=rcweb"], "{.items[*].metadata.ownerReferences[0].kind}");
    assert_eq!(owners, "ReplicationController ReplicationController");
    assert_eq!(
        jsonpath(&k, &["pods", "-l", "app=rcweb"], "{.items[0].metadata.ownerReferences[0].blockOwnerDeletion}"),
        "true"
    );
    assert!(k.run(&["get", "all"]).ok().contains("replicationcontroller/web"));

    assert_eq!(k.run(&["scale", "rc", "web", "--replicas=3"]).ok().trim(), "replicationcontroller/web scaled");
    assert!(eventually(WAIT, || running_pods(&k, "app=rcweb") == 3 && row(&k) == "3 3 3"), "{}", row(&k));
    assert_eq!(
        jsonpath(
            &k,
            &["rc", "web"],
            "{.status.fullyLabeledReplicas} {.status.availableReplicas} {.status.observedGeneration}"
        ),
        "3 3 2"
    );

    // kubectl's default prune set includes ReplicationControllers (`-l` selects what is applied
    // too: the manifest's own labels).
    let labelled = rc.replacen("name: web\n", "name: web\n  labels:\n    app: rcweb\n", 1);
    let pruned = k.run_stdin(&["apply", "--prune", "-l", "app=rcweb", "-f", "-"], &labelled);
    assert_eq!(pruned.code, 0, "{}", pruned.combined());
    assert!(pruned.stdout.contains("replicationcontroller/web configured"), "{}", pruned.combined());
    assert!(eventually(WAIT, || all_pods(&k, "app=rcweb") == 2), "{}", row(&k));

    let deleted = k.run(&["delete", "rc", "web"]).ok();
    assert_eq!(deleted.trim(), "replicationcontroller \"web\" deleted");
    assert!(eventually(WAIT, || all_pods(&k, "app=rcweb") == 0), "{}", k.run(&["get", "pods"]).stdout);
}
