//! End to end: persistent volumes with real pods, driven by kubectl: a claim against the default
//! `local-path` class is provisioned when its first pod is scheduled, its data outlives the pod
//! and a killed server, a claim in use is kept until its pod is gone, a released volume goes with
//! its directory; a static hostPath volume binds by class and size; two claims racing for one
//! volume: exactly one binds; a claim for a class that does not exist stays Pending and says
//! why; a `local` volume binds on its node; a claim of a class that allows expansion grows.

mod common;

use common::{Kubectl, Server, eventually, import_busybox};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// This file's bridge (`skt50`): no other test binary uses it.
const NET: u8 = 50;

fn claim(name: &str, class: Option<&str>, size: &str) -> String {
    let class = class.map(|c| format!("  storageClassName: \"{c}\"\n")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n{class}  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: {size}\n"
    )
}

fn pod(name: &str, claim: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, \"{script}\"]\n    volumeMounts:\n    - {{name: data, mountPath: /data}}\n  volumes:\n  - name: data\n    persistentVolumeClaim:\n      claimName: {claim}\n"
    )
}

/// Wait for `pod` to be Ready; if it is not, fail with what describe says of it and its claims.
fn ready(k: &Kubectl, pod: &str) {
    let run = k.run(&["wait", "--for=condition=Ready", &format!("pod/{pod}"), "--timeout=60s"]);
    if run.code != 0 {
        let pod = k.run(&["describe", "pod", pod]).stdout;
        let claims = k.run(&["describe", "pvc"]).stdout;
        let volumes = k.run(&["get", "pv", "-o", "yaml"]).stdout;
        panic!("not ready: {}\n{pod}\n{claims}\n{volumes}", run.stderr);
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn claims_are_provisioned_mounted_kept_and_released() {
    let mut server = Server::with_node(NET, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    assert!(eventually(WAIT, || k.run(&["get", "serviceaccount", "default"]).code == 0));

    // The default class, as k3s ships it.
    let classes = k.run(&["get", "storageclass"]).ok();
    let row = classes.lines().nth(1).map(words).unwrap_or_default();
    assert_eq!(
        row[..6],
        ["local-path", "(default)", "skiff.dev/local-path", "Delete", "WaitForFirstConsumer", "false"],
        "{classes}"
    );

    // A claim waits for its first consumer.
    k.run_stdin(&["apply", "-f", "-"], &claim("data", None, "64Mi")).ok();
    assert_eq!(k.jsonpath(&["pvc", "data"], "{.spec.storageClassName}"), "local-path");
    assert_eq!(k.jsonpath(&["pvc", "data"], "{.status.phase}"), "Pending");
    assert!(eventually(WAIT, || {
        k.run(&["get", "events", "--field-selector", "involvedObject.name=data"])
            .stdout
            .contains("WaitForFirstConsumer")
    }));

    // Its pod gets it provisioned on the node, bound and mounted.
    k.run_stdin(
        &["apply", "-f", "-"],
        &pod("writer", "data", "echo hello > /data/f && hostname >> /data/f && sleep 3600"),
    )
    .ok();
    ready(&k, "writer");
    assert_eq!(k.jsonpath(&["pvc", "data"], "{.status.phase}"), "Bound");
    let volume = k.jsonpath(&["pvc", "data"], "{.spec.volumeName}");
    assert!(volume.starts_with("pvc-"), "{volume}");
    let pvs = k.run(&["get", "pv"]).ok();
    let row = pvs.lines().find(|l| l.starts_with(&volume)).map(words).unwrap_or_default();
    assert_eq!(row[1..7], ["64Mi", "RWO", "Delete", "Bound", "default/data", "local-path"], "{pvs}");
    let dir = k.jsonpath(&["pv", &volume], "{.spec.hostPath.path}");
    assert!(dir.starts_with(&server.data_dir().join("storage").display().to_string()), "{dir}");
    assert_eq!(k.run(&["exec", "writer", "--", "cat", "/data/f"]).ok(), "hello\nwriter\n");

    // The claim in use stays while its pod does.
    k.run(&["delete", "pvc", "data", "--wait=false"]).ok();
    assert_eq!(k.jsonpath(&["pvc", "data"], "{.status.phase}"), "Bound");
    assert!(!k.jsonpath(&["pvc", "data"], "{.metadata.deletionTimestamp}").is_empty());
    assert!(k.jsonpath(&["pvc", "data"], "{.metadata.finalizers}").contains("kubernetes.io/pvc-protection"));

    // A killed server keeps every binding and the data.
    server.kill_and_restart();
    let k = server.kubectl("1.32");
    assert!(eventually(WAIT, || k.jsonpath(&["pvc", "data"], "{.status.phase}") == "Bound"));
    assert!(eventually(WAIT, || k.run(&["exec", "writer", "--", "cat", "/data/f"]).stdout == "hello\nwriter\n"));

    // Once the pod goes, so do the claim, the volume and its directory (policy Delete).
    k.run(&["delete", "pod", "writer"]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "pvc", "data"]).code != 0), "the claim goes with its pod");
    assert!(eventually(WAIT, || k.run(&["get", "pv", &volume]).code != 0), "the released volume is deleted");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} removed");
}

#[test]
fn a_static_volume_binds_by_class_and_size_and_data_outlives_pods() {
    let server = Server::with_node(NET + 1, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.27");
    assert!(eventually(WAIT, || k.run(&["get", "serviceaccount", "default"]).code == 0));
    let host = tempfile::tempdir().expect("tempdir");
    let pv = |name: &str, size: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\nspec:\n  capacity: {{storage: {size}}}\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"\"\n  hostPath: {{path: {}/{name}, type: DirectoryOrCreate}}\n",
            host.path().display()
        )
    };
    k.run_stdin(&["apply", "-f", "-"], &format!("{}---\n{}", pv("small", "1Gi"), pv("big", "5Gi"))).ok();
    // The smallest volume that fits: `big` for 2Gi.
    k.run_stdin(&["apply", "-f", "-"], &claim("static", Some(""), "2Gi")).ok();
    assert!(eventually(WAIT, || k.jsonpath(&["pvc", "static"], "{.spec.volumeName}") == "big"));
    assert_eq!(k.jsonpath(&["pv", "big"], "{.status.phase}"), "Bound");
    assert_eq!(k.jsonpath(&["pv", "small"], "{.status.phase}"), "Available");
    let pvcs = k.run(&["get", "pvc", "static"]).ok();
    assert_eq!(words(pvcs.lines().nth(1).unwrap_or_default())[1..5], ["Bound", "big", "5Gi", "RWO"], "{pvcs}");

    k.run_stdin(&["apply", "-f", "-"], &pod("first", "static", "echo kept > /data/f && sleep 3600")).ok();
    ready(&k, "first");
    k.run(&["delete", "pod", "first"]).ok();
    k.run_stdin(&["apply", "-f", "-"], &pod("second", "static", "sleep 3600")).ok();
    ready(&k, "second");
    assert_eq!(k.run(&["exec", "second", "--", "cat", "/data/f"]).ok(), "kept\n");
    assert_eq!(std::fs::read_to_string(host.path().join("big/f")).expect("on the host"), "kept\n");

    // A read-only mount of a subPath of the same claim, beside the writer (ReadWriteOnce is per node).
    k.run(&["exec", "second", "--", "sh", "-c", "mkdir -p /data/sub && echo s > /data/sub/g"]).ok();
    let reader = pod("reader", "static", "sleep 3600").replace(
        "    - {name: data, mountPath: /data}",
        "    - {name: data, mountPath: /data, subPath: sub, readOnly: true}",
    );
    k.run_stdin(&["apply", "-f", "-"], &reader).ok();
    ready(&k, "reader");
    assert_eq!(k.run(&["exec", "reader", "--", "cat", "/data/g"]).ok(), "s\n");
    let write = k.run(&["exec", "reader", "--", "sh", "-c", "echo x > /data/new"]);
    assert!(write.code != 0 && write.stderr.contains("Read-only file system"), "{}", write.stderr);
    k.run(&["delete", "pod", "reader", "--wait=false"]).ok();

    // Retain: the claim goes, the volume stays Released with its data.
    k.run(&["delete", "pod", "second"]).ok();
    k.run(&["delete", "pvc", "static"]).ok();
    assert!(eventually(WAIT, || k.jsonpath(&["pv", "big"], "{.status.phase}") == "Released"));
    assert!(host.path().join("big/f").exists());

    // Two claims racing for one static volume (`small`, the only one Available): exactly one
    // gets it, the other waits and says why.
    let racers = format!("{}---\n{}", claim("racer-a", Some(""), "1Gi"), claim("racer-b", Some(""), "1Gi"));
    k.run_stdin(&["apply", "-f", "-"], &racers).ok();
    let on_small = || {
        let volumes: Vec<String> =
            ["racer-a", "racer-b"].iter().map(|c| k.jsonpath(&["pvc", c], "{.spec.volumeName}")).collect();
        volumes.iter().filter(|v| *v == "small").count()
    };
    assert!(eventually(WAIT, || on_small() == 1));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(on_small(), 1, "still exactly one");
    let mut phases: Vec<String> =
        ["racer-a", "racer-b"].iter().map(|c| k.jsonpath(&["pvc", c], "{.status.phase}")).collect();
    phases.sort();
    assert_eq!(phases, ["Bound", "Pending"]);
    let loser = if k.jsonpath(&["pvc", "racer-a"], "{.status.phase}") == "Pending" { "racer-a" } else { "racer-b" };
    assert!(eventually(WAIT, || {
        k.run(&["describe", "pvc", loser]).stdout.contains("no persistent volumes available for this claim")
    }));

    // A class that does not exist: Pending, with the reason.
    k.run_stdin(&["apply", "-f", "-"], &claim("lost", Some("missing"), "1Gi")).ok();
    assert!(eventually(WAIT, || {
        k.run(&["describe", "pvc", "lost"]).stdout.contains("storageclass.storage.k8s.io \"missing\" not found")
    }));
    assert_eq!(k.jsonpath(&["pvc", "lost"], "{.status.phase}"), "Pending");

    // A `local` volume, only on its node, for a class without a provisioner (kubectl 1.29).
    let k = server.kubectl("1.29");
    let node = k.jsonpath(&["nodes"], "{.items[0].metadata.name}");
    std::fs::create_dir(host.path().join("disk")).expect("local disk dir");
    let local = format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: local-disks\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: WaitForFirstConsumer\n---\napiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: disk\nspec:\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce]\n  storageClassName: local-disks\n  local: {{path: {}/disk}}\n  nodeAffinity:\n    required:\n      nodeSelectorTerms:\n      - matchExpressions:\n        - {{key: kubernetes.io/hostname, operator: In, values: [{node}]}}\n",
        host.path().display()
    );
    k.run_stdin(&["apply", "-f", "-"], &local).ok();
    k.run_stdin(&["apply", "-f", "-"], &claim("on-disk", Some("local-disks"), "1Gi")).ok();
    assert_eq!(k.jsonpath(&["pvc", "on-disk"], "{.status.phase}"), "Pending", "waits for its first consumer");
    k.run_stdin(&["apply", "-f", "-"], &pod("disk-user", "on-disk", "echo local > /data/f && sleep 3600")).ok();
    ready(&k, "disk-user");
    assert_eq!(k.jsonpath(&["pvc", "on-disk"], "{.spec.volumeName}"), "disk");
    assert_eq!(std::fs::read_to_string(host.path().join("disk/f")).expect("on the host"), "local\n");

    // Expansion: a local-path class that allows it, a claim grown while its pod runs.
    let growable = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: growable\nprovisioner: skiff.dev/local-path\nallowVolumeExpansion: true\n";
    k.run_stdin(&["apply", "-f", "-"], growable).ok();
    k.run_stdin(&["apply", "-f", "-"], &claim("grow", Some("growable"), "16Mi")).ok();
    k.run_stdin(&["apply", "-f", "-"], &pod("grower", "grow", "echo g > /data/f && sleep 3600")).ok();
    ready(&k, "grower");
    let grown = r#"{"spec":{"resources":{"requests":{"storage":"32Mi"}}}}"#;
    k.run(&["patch", "pvc", "grow", "-p", grown]).ok();
    assert!(eventually(WAIT, || k.jsonpath(&["pvc", "grow"], "{.status.capacity.storage}") == "32Mi"));
    let volume = k.jsonpath(&["pvc", "grow"], "{.spec.volumeName}");
    assert_eq!(k.jsonpath(&["pv", &volume], "{.spec.capacity.storage}"), "32Mi");
    assert_eq!(k.jsonpath(&["pvc", "grow"], "{.status.allocatedResources.storage}"), "32Mi");
    let events = k.run(&["get", "events", "--field-selector", "involvedObject.name=grow"]).ok();
    assert!(events.contains("Resizing") && events.contains("VolumeResizeSuccessful"), "{events}");
    let row = k.run(&["get", "pvc", "grow"]).ok();
    assert_eq!(words(row.lines().nth(1).unwrap_or_default())[3], "32Mi", "{row}");
    assert_eq!(k.run(&["exec", "grower", "--", "cat", "/data/f"]).ok(), "g\n");
    // A class that does not allow it: upstream's refusal.
    let bigger = r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#;
    let refused = k.run(&["patch", "pvc", "on-disk", "-p", bigger]).fails();
    assert!(refused.contains("only dynamically provisioned pvc can be resized"), "{refused}");
}
