//! End to end: a StatefulSet as a database's manifest has it (a headless Service, a claim
//! template), with real pods and volumes, driven by kubectl 1.27, 1.29 and 1.32: replicas made
//! in order with stable names, DNS names and data; a deleted pod comes back as itself; scaling
//! down keeps the claims and scaling up finds them; `rollout status|history|undo|restart`; a
//! killed server keeps every claim bound and its data.

mod common;

use common::{KUBECTL_VERSIONS, Kubectl, Server, eventually, import_busybox};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);
/// This file's bridge (`skt52`): no other test binary uses it.
const NET: u8 = 52;

const WEB: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: web, port: 80}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:1.36
        command: [sh, -c, "hostname >> /data/names && exec sleep 3600"]
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 16Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.36
    command: [sleep, "3600"]
"#;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn names(k: &Kubectl, pod: &str) -> String {
    k.run(&["exec", pod, "--", "cat", "/data/names"]).stdout
}

/// `kubectl rollout status`, failing the test with the set's state when it does not finish.
fn rolled_out(k: &Kubectl) -> String {
    let run = k.run(&["rollout", "status", "sts/web", "--timeout=90s"]);
    if run.code != 0 {
        let sts = k.run(&["get", "sts", "web", "-o", "yaml"]).stdout;
        let pods = k.run(&["get", "pods", "-o", "wide"]).stdout;
        let events = k.run(&["get", "events"]).stdout;
        panic!("not rolled out: {}\n{sts}\n{pods}\n{events}", run.combined());
    }
    run.stdout
}

/// The pod's DNS name under the headless Service, as the client pod resolves it.
fn resolves(k: &Kubectl, name: &str, ip: &str) -> bool {
    eventually(WAIT, || k.run(&["exec", "client", "--", "nslookup", name]).stdout.contains(&format!("Address: {ip}")))
}

#[test]
fn a_stateful_set_keeps_names_data_and_order() {
    let mut server = Server::with_node(NET, |d| import_busybox(d, &["nslookup", "hostname"]));
    let k = server.kubectl("1.32");
    assert!(eventually(WAIT, || k.run(&["get", "serviceaccount", "default"]).code == 0));
    k.run_stdin(&["apply", "-f", "-"], WEB).ok();
    let status = rolled_out(&k);
    assert!(status.contains("partitioned roll out complete: 3 new pods have been updated"), "{status}");

    // Made in order, each with its own claim and its own data.
    let created: Vec<String> =
        (0..3).map(|i| k.jsonpath(&["pod", &format!("web-{i}")], "{.metadata.creationTimestamp}")).collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");
    for i in 0..3 {
        assert_eq!(names(&k, &format!("web-{i}")), format!("web-{i}\n"));
        assert_eq!(k.jsonpath(&["pvc", &format!("data-web-{i}")], "{.status.phase}"), "Bound");
    }
    let pod = k.run(&["get", "pod", "web-1", "-o", "json"]).ok();
    for expected in [
        r#""statefulset.kubernetes.io/pod-name": "web-1""#,
        r#""apps.kubernetes.io/pod-index": "1""#,
        r#""hostname": "web-1""#,
        r#""subdomain": "web""#,
        r#""claimName": "data-web-1""#,
    ] {
        assert!(pod.contains(expected), "{expected} in {pod}");
    }

    // The rows every kubectl prints.
    for v in KUBECTL_VERSIONS {
        let kv = server.kubectl(v);
        let sts = kv.run(&["get", "sts"]).ok();
        assert_eq!(words(&sts)[..5], ["NAME", "READY", "AGE", "web", "3/3"], "{v}: {sts}");
        let pvc = kv.run(&["get", "pvc", "data-web-2"]).ok();
        let header = words(pvc.lines().next().unwrap_or_default());
        assert_eq!(header[..6], ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES"], "{v}: {pvc}");
        let row = words(pvc.lines().nth(1).unwrap_or_default());
        let cells = [&row[..2], &row[3..6]].concat();
        assert_eq!(cells, ["data-web-2", "Bound", "16Mi", "RWO", "local-path"], "{v}: {pvc}");
        let all = kv.run(&["get", "pv,pvc,sts,storageclass"]).ok();
        for kind in [
            "persistentvolume/pvc-",
            "persistentvolumeclaim/data-web-0",
            "statefulset.apps/web",
            "storageclass.storage.k8s.io/local-path",
        ] {
            assert!(all.contains(kind), "{v}: {kind} in {all}");
        }
        let wide = kv.run(&["get", "sts", "web", "-o", "wide"]).ok();
        assert_eq!(words(&wide)[..5], ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"], "{v}: {wide}");
    }

    // Each replica by its own DNS name.
    k.run(&["wait", "--for=condition=Ready", "pod/client", "--timeout=60s"]).ok();
    let ip1 = k.jsonpath(&["pod", "web-1"], "{.status.podIP}");
    assert!(resolves(&k, "web-1.web.default.svc.cluster.local", &ip1));

    // A deleted pod comes back as itself: its name, its data, its DNS name.
    let uid = k.jsonpath(&["pod", "web-1"], "{.metadata.uid}");
    k.run(&["delete", "pod", "web-1"]).ok();
    assert!(eventually(WAIT, || {
        let now = k.jsonpath(&["pod", "web-1"], "{.metadata.uid}");
        !now.is_empty() && now != uid
    }));
    rolled_out(&k);
    assert_eq!(names(&k, "web-1"), "web-1\nweb-1\n");
    let ip1 = k.jsonpath(&["pod", "web-1"], "{.status.podIP}");
    assert!(resolves(&k, "web-1.web.default.svc.cluster.local", &ip1));

    // Scaled down, the claims stay; scaled up again, the replicas find their data.
    k.run(&["scale", "sts/web", "--replicas=1"]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "pod", "web-1"]).code != 0 && k.run(&["get", "pod", "web-2"]).code != 0));
    assert_eq!(k.jsonpath(&["pvc", "data-web-2"], "{.status.phase}"), "Bound");
    k.run(&["scale", "sts/web", "--replicas=3"]).ok();
    rolled_out(&k);
    assert_eq!(names(&k, "web-1"), "web-1\nweb-1\nweb-1\n");
    assert_eq!(names(&k, "web-2"), "web-2\nweb-2\n");

    // A rollout, its history, and an undo, as each kubectl reads them.
    k.run(&["rollout", "restart", "sts/web"]).ok();
    let status = rolled_out(&k);
    assert!(status.contains("3 new pods have been updated"), "{status}");
    for v in KUBECTL_VERSIONS {
        let history = server.kubectl(v).run(&["rollout", "history", "sts/web"]).ok();
        let revisions: Vec<&str> = history.lines().skip(2).filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(revisions, ["1", "2"], "{v}: {history}");
    }
    assert!(!k.jsonpath(&["sts", "web"], "{.spec.template.metadata.annotations}").is_empty());
    k.run(&["rollout", "undo", "sts/web"]).ok();
    rolled_out(&k);
    assert_eq!(k.jsonpath(&["sts", "web"], "{.spec.template.metadata.annotations}"), "");
    let history = k.run(&["rollout", "history", "sts/web"]).ok();
    let revisions: Vec<&str> = history.lines().skip(2).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(revisions, ["2", "3"], "the undone revision is renumbered: {history}");
    let current = k.jsonpath(&["sts", "web"], "{.status.currentRevision}");
    assert_eq!(current, k.jsonpath(&["sts", "web"], "{.status.updateRevision}"));
    assert_eq!(k.jsonpath(&["pod", "web-0"], "{.metadata.labels.controller-revision-hash}"), current);

    // A killed server keeps every claim bound and its data.
    server.kill_and_restart();
    let k = server.kubectl("1.32");
    for i in 0..3 {
        let (pod, claim) = (format!("web-{i}"), format!("data-web-{i}"));
        assert!(eventually(WAIT, || k.jsonpath(&["pvc", &claim], "{.status.phase}") == "Bound"), "{claim}");
        assert!(eventually(WAIT, || names(&k, &pod).starts_with(&format!("{pod}\n"))), "{pod}: {}", names(&k, &pod));
    }
    rolled_out(&k);
}
