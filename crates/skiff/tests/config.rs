//! End to end: ConfigMaps and Secrets consumed by real pods, as the course uses them: created
//! with kubectl (`--from-literal`, `--from-file`, `--from-env-file`), read through
//! `configMapKeyRef`, `envFrom` and volumes (items, modes, `subPath`, projected, downward API),
//! a mounted ConfigMap updated in the running pod, Secret volumes on a tmpfs, and what a missing
//! object or key does (FailedMount, CreateContainerConfigError) until it exists.

mod common;

use common::{Kubectl, Server, eventually, import_busybox};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// This file's bridge (`skt26`): no other test binary uses it.
const NET: u8 = 26;

const APP: &str = "apiVersion: v1
kind: Pod
metadata:
  name: app
  labels:
    app: shop
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:1.36
    command: [sleep, \"3600\"]
    env:
    - name: MODE
      valueFrom:
        configMapKeyRef: {name: app-config, key: mode}
    - name: PASSWORD
      valueFrom:
        secretKeyRef: {name: creds, key: password}
    envFrom:
    - configMapRef: {name: app-config}
      prefix: CFG_
    volumeMounts:
    - {name: config, mountPath: /etc/config}
    - {name: creds, mountPath: /etc/creds}
    - {name: files, mountPath: /etc/app.conf, subPath: app.conf}
    - {name: all, mountPath: /etc/all}
  volumes:
  - name: config
    configMap: {name: app-config}
  - name: creds
    secret:
      secretName: creds
      defaultMode: 0400
      items:
      - {key: password, path: db/password}
  - name: files
    configMap: {name: files}
  - name: all
    projected:
      sources:
      - configMap:
          name: app-config
          items: [{key: color, path: color}]
      - downwardAPI:
          items:
          - {path: labels, fieldRef: {fieldPath: metadata.labels}}
";

fn sh(k: &Kubectl, pod: &str, script: &str) -> String {
    k.run(&["exec", pod, "--", "sh", "-c", script]).stdout
}

#[test]
fn pods_read_config_maps_and_secrets_and_follow_config_map_updates() {
    let server = Server::with_node(NET, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    let files = tempfile::tempdir().expect("tempdir");
    let conf = files.path().join("app.conf");
    std::fs::write(&conf, "listen 8080\n").expect("app.conf");
    let envfile = files.path().join("env");
    std::fs::write(&envfile, "# settings\nREGION=north\nTIER=gold\n").expect("env file");
    k.run(&["create", "configmap", "app-config", "--from-literal=mode=fast", "--from-literal=color=blue"]).ok();
    k.run(&["create", "configmap", "files", &format!("--from-file={}", conf.display())]).ok();
    let from_env = k.run(&["create", "configmap", "region", &format!("--from-env-file={}", envfile.display())]).ok();
    assert_eq!(from_env.trim(), "configmap/region created");
    assert_eq!(k.run(&["get", "configmap", "region", "-o", "jsonpath={.data.TIER}"]).ok(), "gold");
    k.run(&["create", "secret", "generic", "creds", "--from-literal=password=hunter2"]).ok();

    k.run_stdin(&["apply", "-f", "-"], APP).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/app", "--timeout=60s"]).ok();
    assert_eq!(sh(&k, "app", "echo $MODE $CFG_mode $CFG_color $PASSWORD"), "fast fast blue hunter2\n");
    assert_eq!(sh(&k, "app", "cat /etc/config/mode /etc/config/color"), "fastblue");
    assert_eq!(sh(&k, "app", "cat /etc/creds/db/password; stat -L -c %a /etc/creds/db/password"), "hunter2400\n");
    assert_eq!(sh(&k, "app", "cat /etc/app.conf"), "listen 8080\n");
    assert_eq!(sh(&k, "app", "cat /etc/all/color; echo; cat /etc/all/labels"), "blue\napp=\"shop\"");
    // Mounted read-only; the Secret on a tmpfs (in the pod and on the node: never on disk).
    let write = k.run(&["exec", "app", "--", "sh", "-c", "echo x > /etc/config/mode"]);
    assert!(write.stderr.contains("Read-only file system"), "{}", write.stderr);
    assert!(sh(&k, "app", "grep ' /etc/creds ' /proc/mounts").starts_with("tmpfs "));
    let uid = k.run(&["get", "pod", "app", "-o", "jsonpath={.metadata.uid}"]).ok();
    let volume = server.data_dir().join("pods").join(&uid).join("volumes").join("creds");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let on_node = mounts.lines().find(|l| l.split(' ').nth(4) == Some(volume.to_str().expect("utf-8")));
    assert!(on_node.is_some_and(|l| l.contains(" - tmpfs ")), "{volume:?} is no tmpfs");

    // An update reaches the mounted files in the running pod (environment variables stay).
    let updated =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  mode: slow\n  color: blue\n";
    k.run_stdin(&["apply", "-f", "-"], updated).ok();
    assert!(
        eventually(WAIT, || sh(&k, "app", "cat /etc/config/mode") == "slow"),
        "not updated: {}",
        sh(&k, "app", "ls -la /etc/config/")
    );
    assert_eq!(sh(&k, "app", "echo $MODE"), "fast\n");

    k.run(&["delete", "pod", "app"]).ok();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&uid), "the pod's tmpfs outlived it");
}

#[test]
fn a_missing_config_map_or_key_holds_the_pod_until_it_exists() {
    let server = Server::with_node(NET + 1, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.29");
    let waits = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: waits\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sleep, \"3600\"]\n    volumeMounts:\n    - {name: cfg, mountPath: /cfg}\n  volumes:\n  - name: cfg\n    configMap: {name: later}\n";
    k.run_stdin(&["apply", "-f", "-"], waits).ok();
    let message = "MountVolume.SetUp failed for volume \"cfg\" : configmap \"later\" not found";
    assert!(
        eventually(WAIT, || k.run(&["describe", "pod", "waits"]).stdout.contains(message)),
        "{}",
        k.run(&["describe", "pod", "waits"]).stdout
    );
    let row = k.run(&["get", "pod", "waits", "--no-headers"]).ok();
    assert!(row.contains("ContainerCreating"), "{row}");
    k.run(&["create", "configmap", "later", "--from-literal=k=v"]).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/waits", "--timeout=60s"]).ok();
    assert_eq!(sh(&k, "waits", "cat /cfg/k"), "v");

    let key = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: key\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sleep, \"3600\"]\n    env:\n    - name: X\n      valueFrom:\n        configMapKeyRef: {name: later, key: nope}\n";
    k.run_stdin(&["apply", "-f", "-"], key).ok();
    let reason =
        "{.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}";
    let want = "CreateContainerConfigError: couldn't find key nope in ConfigMap default/later";
    assert!(
        eventually(WAIT, || k.run(&["get", "pod", "key", "-o", &format!("jsonpath={reason}")]).stdout == want),
        "{}",
        k.run(&["get", "pod", "key", "-o", "yaml"]).stdout
    );
    let bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n  volumes:\n  - name: cfg\n    configMap:\n      name: later\n      items: [{key: k, path: ../escape}]\n";
    let refused = k.run_stdin(&["apply", "-f", "-"], bad).fails();
    assert!(
        refused
            .contains("spec.volumes[0].configMap.items[0].path: Invalid value: \"../escape\": must not contain '..'"),
        "{refused}"
    );
}
