//! Kubernetes protobuf request bodies, as stock kubectl sends them (1.32's typed client encodes
//! `create namespace`, `create secret`, `debug --copy-to` and `debug node/...` bodies as
//! protobuf; 1.27 and 1.29 send JSON): the objects they create equal what the same object sent
//! as JSON creates.
//! Traffic goes only to loopback and to pods the tests made.

mod common;

use common::{KUBECTL_VERSIONS, Kubectl, Server, busybox_rootfs, eventually, skiff};
use serde_json::{Value, json};
use std::time::Duration;

/// Measured: kubectl 1.32's typed client encodes these bodies as protobuf; 1.27 and 1.29 send JSON.
fn sends_protobuf(version: &str) -> bool {
    version.rsplit('.').next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= 32)
}

/// Run with `-v=8` and check the POST's Content-Type: protobuf where that kubectl sends it.
#[track_caller]
fn run_create(k: &Kubectl, version: &str, args: &[&str]) -> String {
    let mut all = vec!["-v=8"];
    all.extend_from_slice(args);
    let run = k.run(&all);
    assert_eq!(run.code, 0, "kubectl {version} {args:?} failed:\n{}", run.stderr);
    let post: Vec<&str> = run.stderr.lines().skip_while(|l| !l.contains("POST https://")).take(8).collect();
    let want = if sends_protobuf(version) { "application/vnd.kubernetes.protobuf" } else { "application/json" };
    assert!(
        post.iter().any(|l| l.contains(&format!("Content-Type: {want}"))),
        "kubectl {version} {args:?} sent no {want} POST:\n{}",
        run.stderr
    );
    run.stdout
}

fn get(k: &Kubectl, what: &str) -> Value {
    serde_json::from_str(&k.run(&["get", what, "-o", "json"]).ok()).expect("JSON")
}

/// The object without what differs between any two creations: identity, times, ownership.
fn comparable(mut obj: Value) -> Value {
    if let Some(md) = obj["metadata"].as_object_mut() {
        for k in ["name", "uid", "creationTimestamp", "resourceVersion", "managedFields"] {
            md.remove(k);
        }
        if let Some(Value::Object(labels)) = md.get_mut("labels") {
            labels.remove("kubernetes.io/metadata.name");
        }
    }
    obj
}

/// Go writes non-pointer fields even when unset, and the wire cannot tell them from explicit
/// zeros, so the copy holds `false`/`0` where the original left the field out; nothing else may
/// differ.
fn without_added_zeros(copy: &Value, original: &Value) -> Value {
    match (copy, original) {
        (Value::Object(c), Value::Object(o)) => Value::Object(
            c.iter()
                .filter(|(k, v)| o.contains_key(*k) || !(v == &&json!(false) || v == &&json!(0)))
                .map(|(k, v)| (k.clone(), without_added_zeros(v, o.get(k).unwrap_or(&Value::Null))))
                .collect(),
        ),
        (Value::Array(c), Value::Array(o)) => Value::Array(
            c.iter().enumerate().map(|(i, v)| without_added_zeros(v, o.get(i).unwrap_or(&Value::Null))).collect(),
        ),
        _ => copy.clone(),
    }
}

const WEB: &str = r#"{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "NAME", "labels": {"app": "web"}, "annotations": {"note": "protobuf"}},
  "spec": {
    "terminationGracePeriodSeconds": 0,
    "enableServiceLinks": false,
    "automountServiceAccountToken": false,
    "nodeSelector": {"disk": "ssd"},
    "securityContext": {"runAsUser": 0, "supplementalGroups": [1, 2]},
    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}],
    "volumes": [
      {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
      {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 256, "items": [{"key": "pw", "path": "pw"}]}}
    ],
    "containers": [{
      "name": "app", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
      "command": ["sh", "-c", "sleep 3600"],
      "env": [{"name": "MODE", "value": "prod"},
              {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw", "optional": true}}}],
      "ports": [{"name": "http", "containerPort": 8080}],
      "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}},
      "livenessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 7},
      "readinessProbe": {"tcpSocket": {"port": "http"}},
      "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
      "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]
    }]
  }
}"#;

#[test]
fn kubectl_protobuf_bodies_create_what_json_creates() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let tag = v.replace('.', "-");

        // Namespace.
        run_create(&k, v, &["create", "namespace", &format!("pb-{tag}")]);
        let json_ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("json-{tag}")}});
        k.run_stdin(&["create", "-f", "-"], &json_ns.to_string()).ok();
        let (pb, js) = (get(&k, &format!("namespace/pb-{tag}")), get(&k, &format!("namespace/json-{tag}")));
        assert_eq!(comparable(pb), comparable(js), "kubectl {v}: namespace");

        // Secret, with bytes that are not UTF-8.
        let bin = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(bin.path(), [0u8, 0xff, b'a']).expect("write");
        let from_file = format!("--from-file=bin={}", bin.path().display());
        run_create(
            &k,
            v,
            &[
                "create",
                "secret",
                "generic",
                &format!("pb-{tag}"),
                "--from-literal=user=me",
                &from_file,
                "--type=demo/x",
            ],
        );
        let json_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("json-{tag}")},
            "type": "demo/x", "data": {"user": "bWU=", "bin": "AP9h"}});
        k.run_stdin(&["create", "-f", "-"], &json_secret.to_string()).ok();
        let (pb, js) = (get(&k, &format!("secret/pb-{tag}")), get(&k, &format!("secret/json-{tag}")));
        assert_eq!(pb["data"]["bin"], "AP9h");
        assert_eq!(comparable(pb), comparable(js), "kubectl {v}: secret");

        // A Pod: `debug --copy-to` reads the JSON-created pod and POSTs its copy as protobuf.
        let web = format!("web-{tag}");
        k.run_stdin(&["create", "-f", "-"], &WEB.replace("NAME", &web)).ok();
        let copy = format!("{web}-copy");
        run_create(
            &k,
            v,
            &[
                "debug",
                &web,
                &format!("--copy-to={copy}"),
                "--image=busybox:1.36",
                "--image-pull-policy=IfNotPresent",
                "-c",
                "dbg",
                "--",
                "sleep",
                "100",
            ],
        );
        let (original, copied) = (get(&k, &format!("pod/{web}")), get(&k, &format!("pod/{copy}")));
        let mut spec = without_added_zeros(&copied["spec"], &original["spec"]);
        let containers = spec["containers"].as_array_mut().expect("containers");
        let debugger = containers.pop().expect("debugger container");
        assert_eq!(debugger["name"], "dbg");
        assert_eq!(debugger["command"], json!(["sleep", "100"]));
        assert_eq!(spec, original["spec"], "kubectl {v}: the copy's spec is the original's");

        // `debug node/...` creates its pod through protobuf too: host namespaces, a hostPath.
        if k.run(&["get", "node", "n1"]).code != 0 {
            let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
            k.run_stdin(&["create", "-f", "-"], &node.to_string()).ok();
        }
        run_create(&k, v, &["debug", "node/n1", "--image=busybox:1.36"]);
        let pods = get(&k, "pods");
        let debugger = pods["items"]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .rfind(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("node-debugger-n1-")))
            })
            .expect("node debugger pod")
            .clone();
        assert_eq!(debugger["spec"]["nodeName"], "n1");
        assert_eq!(debugger["spec"]["hostPID"], true);
        assert_eq!(debugger["spec"]["volumes"][0]["hostPath"]["path"], "/");
        assert_eq!(debugger["spec"]["containers"][0]["volumeMounts"][0]["mountPath"], "/host");
    }
}

#[test]
fn kubectl_debug_copy_runs() {
    let server = Server::with_node(45, |data| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (_, tar) = busybox_rootfs(tmp.path());
        let (code, _, err) =
            skiff(data, &["import", "-c", r#"CMD ["sh"]"#, tar.to_str().expect("utf8"), "busybox:1.36"]);
        assert_eq!(code, 0, "{err}");
    });
    let k = server.kubectl("1.32");
    let web = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": "busybox:1.36",
        "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]}}"#;
    k.run_stdin(&["create", "-f", "-"], web).ok();
    let phase = |k: &Kubectl, pod: &str| k.run(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]).stdout;
    assert!(eventually(Duration::from_secs(60), || phase(&k, "web") == "Running"), "{}", server.log());
    for v in KUBECTL_VERSIONS {
        let kv = server.kubectl(v);
        let copy = format!("web-copy-{}", v.replace('.', "-"));
        run_create(
            &kv,
            v,
            &[
                "debug",
                "web",
                &format!("--copy-to={copy}"),
                "--image=busybox:1.36",
                "--image-pull-policy=IfNotPresent",
                "--",
                "sleep",
                "100",
            ],
        );
        let ready =
            |pod: &str| kv.run(&["get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[*].ready}"]).stdout;
        assert!(
            eventually(Duration::from_secs(60), || phase(&kv, &copy) == "Running" && ready(&copy) == "true true"),
            "kubectl {v}: {}",
            kv.run(&["describe", "pod", &copy]).stdout
        );
        kv.run(&["delete", "pod", &copy, "--grace-period=0", "--force"]).ok();
    }
}
