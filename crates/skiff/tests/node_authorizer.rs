//! End to end, kubectl 1.32 as a node: `system:node:n1` in `system:nodes` (a kubeconfig minted by
//! `skiff kubeconfig`) against the default `--authorization-mode Node,RBAC` on an API-only
//! server. It reads the Secret and ConfigMap its pod uses and not those of n2's pod; lists its
//! pods by `spec.nodeName` only; writes the status of its pod, not n2's; cannot touch Node n2,
//! nor delete n2's pod; gets tokens only bound to its own pod; and once its pod is gone its
//! Secret is refused again. Every refusal is upstream's Forbidden, reason included.

mod common;

use common::{Kubectl, Server, eventually, skiff};
use std::time::Duration;

/// Two nodes, each with a pod that reads a Secret and a ConfigMap and runs as its own account.
const OBJECTS: &str = "apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: app}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: other}
---
apiVersion: v1
kind: Secret
metadata: {name: s1}
stringData: {k: one}
---
apiVersion: v1
kind: Secret
metadata: {name: s2}
stringData: {k: two}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c1}
data: {k: one}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c2}
data: {k: two}
---
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  nodeName: n1
  serviceAccountName: app
  containers:
  - name: c
    image: busybox
    envFrom: [{configMapRef: {name: c1}}]
  volumes: [{name: s, secret: {secretName: s1}}]
---
apiVersion: v1
kind: Pod
metadata: {name: p2}
spec:
  nodeName: n2
  serviceAccountName: other
  containers:
  - name: c
    image: busybox
    envFrom: [{configMapRef: {name: c2}}]
  volumes: [{name: s, secret: {secretName: s2}}]
";

/// A kubeconfig for node `name`, minted from the server's CA.
fn node_identity(server: &Server, name: &str) -> std::path::PathBuf {
    let user = format!("system:node:{name}");
    let (code, out, err) = skiff(server.data_dir(), &["kubeconfig", "--user", &user, "--group", "system:nodes"]);
    assert_eq!(code, 0, "skiff kubeconfig --user {user}: {err}");
    let path = server.data_dir().join(format!("node-{name}.yaml"));
    std::fs::write(&path, out).expect("write kubeconfig");
    path
}

/// Assert `args` fail with `message` in kubectl's error output.
#[track_caller]
fn refused(kubectl: &Kubectl, args: &[&str], message: &str) {
    let run = kubectl.run(args);
    assert!(run.code != 0 && run.stderr.contains(message), "{args:?}: wanted {message:?}\n{}", run.combined());
}

const UNRELATED: &str = "no relationship found between node 'n1' and this object";

#[test]
fn a_node_reaches_only_what_its_pods_use() {
    let server = Server::start();
    let admin = server.kubectl("1.32");
    admin.run_stdin(&["apply", "-f", "-"], OBJECTS).ok();
    let uid = |pod: &str| admin.run(&["get", "pod", pod, "-o", "jsonpath={.metadata.uid}"]).ok();
    let (p1, p2) = (uid("p1"), uid("p2"));
    let n1 = Kubectl::new("1.32", &node_identity(&server, "n1"), server.data_dir());

    // Its pod's Secret and ConfigMap (the graph follows the pods through a watch: a moment).
    assert!(
        eventually(Duration::from_secs(10), || n1.run(&["get", "secret", "s1"]).code == 0),
        "{}",
        n1.run(&["get", "secret", "s1"]).combined()
    );
    assert_eq!(n1.run(&["get", "configmap", "c1", "-o", "jsonpath={.data.k}"]).ok(), "one");
    // As the kubelet watches them: one object by field selector.
    n1.run(&["get", "secrets", "--field-selector", "metadata.name=s1", "-o", "name"]).ok();
    let prefix = r#"User "system:node:n1" cannot get resource"#;
    refused(
        &n1,
        &["get", "secret", "s2"],
        &format!(
            r#"secrets "s2" is forbidden: {prefix} "secrets" in API group "" in the namespace "default": {UNRELATED}"#
        ),
    );
    refused(
        &n1,
        &["get", "configmap", "c2"],
        &format!(
            r#"configmaps "c2" is forbidden: {prefix} "configmaps" in API group "" in the namespace "default": {UNRELATED}"#
        ),
    );
    refused(
        &n1,
        &["get", "secrets"],
        r#"secrets is forbidden: User "system:node:n1" cannot list resource "secrets" in API group "" in the namespace "default": No Object name found"#,
    );
    assert_eq!(n1.run(&["auth", "can-i", "get", "secrets/s1"]).ok().trim(), "yes");
    // kubectl prints the authorizer's reason after a refusal
    assert_eq!(n1.run(&["auth", "can-i", "get", "secrets/s2"]).stdout.trim(), format!("no - {UNRELATED}"));

    // Its pods, by field selector only.
    let mine = n1.run(&["get", "pods", "-A", "--field-selector", "spec.nodeName=n1", "-o", "name"]).ok();
    assert_eq!(mine.trim(), "pod/p1");
    refused(
        &n1,
        &["get", "pods"],
        r#"pods is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" in the namespace "default": can only list/watch pods with spec.nodeName field selector"#,
    );
    refused(
        &n1,
        &["get", "pods", "--field-selector", "spec.nodeName=n2"],
        "can only list/watch pods with spec.nodeName field selector",
    );
    n1.run(&["get", "pod", "p1"]).ok();
    refused(
        &n1,
        &["get", "pod", "p2"],
        &format!(r#"pods "p2" is forbidden: {prefix} "pods" in API group "" in the namespace "default": {UNRELATED}"#),
    );

    // Writes as a kubelet sends them, straight to the API (`kubectl patch` and `label` GET the
    // object first, which a node may not for another node's objects, nor for pods/status):
    // `path`'s object as `reader` sees it, changed by `change`, PUT to `path` + `sub` as n1.
    let put = |reader: &Kubectl, path: &str, sub: &str, change: &dyn Fn(&mut serde_json::Value)| {
        let mut obj: serde_json::Value =
            serde_json::from_str(&reader.run(&["get", "--raw", path]).ok()).expect("object json");
        change(&mut obj);
        let file = server.data_dir().join("put.json");
        std::fs::write(&file, obj.to_string()).expect("write body");
        n1.run(&["replace", "--raw", &format!("{path}{sub}"), "-f", &file.to_string_lossy()])
    };
    let message = |obj: &mut serde_json::Value| obj["status"]["message"] = serde_json::json!("from n1");

    // The status of its pod, not n2's.
    put(&n1, "/api/v1/namespaces/default/pods/p1", "/status", &message).ok();
    assert_eq!(admin.run(&["get", "pod", "p1", "-o", "jsonpath={.status.message}"]).ok(), "from n1");
    let run = put(&admin, "/api/v1/namespaces/default/pods/p2", "/status", &message);
    let want =
        r#"pods "p2" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself"#;
    assert!(run.code != 0 && run.stderr.contains(want), "{}", run.combined());
    assert_eq!(admin.run(&["get", "pod", "p2", "-o", "jsonpath={.status.message}"]).ok(), "");

    // Its own Node only, without restricted labels.
    n1.run(&["get", "node", "n1"]).ok();
    refused(
        &n1,
        &["get", "nodes"],
        r#"nodes is forbidden: User "system:node:n1" cannot list resource "nodes" in API group "" at the cluster scope: node 'n1' cannot read all nodes, only its own Node object"#,
    );
    refused(&n1, &["label", "node", "n2", "x=y"], "node 'n1' cannot read 'n2', only its own Node object");
    let label = |obj: &mut serde_json::Value| obj["metadata"]["labels"]["x"] = serde_json::json!("y");
    let run = put(&admin, "/api/v1/nodes/n2", "", &label);
    let want = r#"nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2""#;
    assert!(run.code != 0 && run.stderr.contains(want), "{}", run.combined());
    assert_eq!(admin.run(&["get", "node", "n2", "-o", "jsonpath={.metadata.labels.x}"]).ok(), "");
    n1.run(&["label", "node", "n1", "example.com/team=blue"]).ok();
    refused(
        &n1,
        &["label", "node", "n1", "node-restriction.kubernetes.io/pool=a"],
        r#"nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"#,
    );

    // Deletes of its pods only.
    refused(
        &n1,
        &["delete", "pod", "p2"],
        r#"pods "p2" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself"#,
    );

    // Tokens bound to its pod, for the account that pod runs as.
    let token = n1
        .run(&[
            "create",
            "token",
            "app",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "p1",
            "--bound-object-uid",
            &p1,
        ])
        .ok();
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    refused(
        &n1,
        &[
            "create",
            "token",
            "app",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "p2",
            "--bound-object-uid",
            &p2,
        ],
        r#"serviceaccounts "app" is forbidden: node requested token bound to a pod scheduled on a different node"#,
    );
    refused(
        &n1,
        &[
            "create",
            "token",
            "other",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "p2",
            "--bound-object-uid",
            &p2,
        ],
        &format!(
            r#"serviceaccounts "other" is forbidden: User "system:node:n1" cannot create resource "serviceaccounts/token" in API group "" in the namespace "default": {UNRELATED}"#
        ),
    );
    refused(
        &n1,
        &["create", "token", "app"],
        r#"serviceaccounts "app" is forbidden: node requested token not bound to a pod"#,
    );

    // Once its pod is gone, so is its reach.
    admin.run(&["delete", "pod", "p1", "--grace-period=0", "--force"]).ok();
    assert!(
        eventually(Duration::from_secs(10), || n1.run(&["get", "secret", "s1"]).stderr.contains(UNRELATED)),
        "{}",
        n1.run(&["get", "secret", "s1"]).combined()
    );
    refused(&n1, &["get", "configmap", "c1"], UNRELATED);
}
