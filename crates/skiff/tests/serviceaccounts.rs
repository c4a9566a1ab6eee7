//! ServiceAccounts end to end: `kubectl create token` (1.27, 1.29, 1.32) and the token as a
//! bearer (Forbidden naming the account until a RoleBinding grants it), a pod-bound token that
//! dies with its pod, OIDC discovery for service accounts; and, root with real pods, the
//! projected `kube-api-access` volume (token, CA, namespace) a program in a pod finds, and the
//! official Python client's `load_incluster_config()` and the kube crate's `Config::incluster()`
//! listing pods through the `kubernetes` Service: Forbidden before a RoleBinding, allowed after.

mod common;

use common::{KUBECTL_VERSIONS, Kubectl, Server, eventually, import_host_binary, import_python, skiff};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// This file's bridges (`skt47`, `skt48`): no other test binary uses them.
const NET: u8 = 47;
const WAIT: Duration = Duration::from_secs(60);
const FORBIDDEN: &str = r#"User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default""#;

/// `kubectl create token` with `args`, as `k` prints it.
fn token(k: &Kubectl, args: &[&str]) -> String {
    let mut all = vec!["create", "token"];
    all.extend_from_slice(args);
    k.run(&all).ok().trim().to_string()
}

/// The claims of a JWT, unverified.
fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[test]
fn tokens_authenticate_as_their_account_until_what_they_are_bound_to_goes() {
    let server = Server::start();
    let admin = server.kubectl("1.32");
    // The controller manager makes the default account (and the CA ConfigMap) in every namespace.
    assert!(eventually(WAIT, || admin.run(&["get", "serviceaccount", "default"]).code == 0), "{}", server.log());
    assert!(admin.run(&["get", "configmap", "kube-root-ca.crt", "-n", "kube-system"]).code == 0);

    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let jwt = token(&k, &["default"]);
        let c = claims(&jwt);
        assert_eq!(c["sub"], "system:serviceaccount:default:default", "kubectl {v}: {c}");
        assert_eq!(c["aud"], serde_json::json!(["https://kubernetes.default.svc.cluster.local"]), "kubectl {v}");
        assert_eq!(c["exp"].as_i64().zip(c["iat"].as_i64()).map(|(e, i)| e - i), Some(3600), "kubectl {v}");
        let c = claims(&token(&k, &["default", "--audience", "vault", "--duration", "10m"]));
        assert_eq!(
            (c["aud"].clone(), c["exp"].as_i64().zip(c["iat"].as_i64()).map(|(e, i)| e - i)),
            (serde_json::json!(["vault"]), Some(600))
        );
        let err = k.run(&["create", "token", "default", "--duration", "5m"]).fails();
        assert!(err.contains("may not specify a duration less than 10 minutes"), "kubectl {v}: {err}");
        let err = k.run(&["create", "token", "nobody"]).fails();
        assert!(err.contains(r#"serviceaccounts "nobody" not found"#), "kubectl {v}: {err}");

        // The token as a bearer: authenticated, and denied what its account may not do.
        let as_sa = server.kubectl_with_token(v, &jwt);
        let err = as_sa.run(&["get", "pods"]).fails();
        assert!(err.contains(FORBIDDEN), "kubectl {v}: {err}");
        // A token for another audience is not one for the API server.
        let vault = token(&k, &["default", "--audience", "vault"]);
        let err = server.kubectl_with_token(v, &vault).run(&["get", "pods"]).fails();
        assert!(err.contains("Unauthorized"), "kubectl {v}: {err}");
    }

    admin.run(&["create", "rolebinding", "sa-view", "--clusterrole=view", "--serviceaccount=default:default"]).ok();
    let jwt = token(&admin, &["default"]);
    let as_sa = server.kubectl_with_token("1.32", &jwt);
    assert!(eventually(WAIT, || as_sa.run(&["get", "pods"]).code == 0), "{}", as_sa.run(&["get", "pods"]).combined());
    // Every service account may read the issuer's discovery documents.
    let config = as_sa.run(&["get", "--raw", "/.well-known/openid-configuration"]).ok();
    let config: serde_json::Value = serde_json::from_str(&config).expect("JSON");
    assert_eq!(config["issuer"], "https://kubernetes.default.svc.cluster.local");
    let jwks: serde_json::Value =
        serde_json::from_str(&as_sa.run(&["get", "--raw", "/openid/v1/jwks"]).ok()).expect("JSON");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");

    // A token bound to a pod works while the pod lives, and not a moment after.
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}"#;
    admin.run_stdin(&["create", "-f", "-"], pod).ok();
    for v in KUBECTL_VERSIONS {
        let bound =
            token(&server.kubectl(v), &["default", "--bound-object-kind", "Pod", "--bound-object-name", "holder"]);
        let c = claims(&bound);
        assert_eq!(c["kubernetes.io"]["pod"]["name"], "holder", "kubectl {v}: {c}");
    }
    let bound = token(&admin, &["default", "--bound-object-kind", "Pod", "--bound-object-name", "holder"]);
    let as_pod = server.kubectl_with_token("1.32", &bound);
    as_pod.run(&["get", "pods"]).ok();
    admin.run(&["delete", "pod", "holder", "--grace-period=0", "--force"]).ok();
    let err = as_pod.run(&["get", "pods"]).fails();
    assert!(err.contains("Unauthorized"), "{err}");
    let err = admin
        .run(&["create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "holder"])
        .fails();
    assert!(err.contains(r#"pods "holder" not found"#), "{err}");
    // The account deleted: its tokens die with it.
    admin.run(&["delete", "serviceaccount", "default"]).ok();
    let err = as_sa.run(&["get", "pods"]).fails();
    assert!(err.contains("Unauthorized"), "{err}");
}

/// The `kubernetes` Python package (and what it needs), installed once per machine from PyPI
/// for Debian's python3, with the shared libraries its extension modules load (libgcc_s,
/// libstdc++) at their paths: a build context (`site/`, `root/`, a Dockerfile).
fn python_kubernetes() -> PathBuf {
    let cache = std::env::temp_dir().join("skiff-tests-python-kubernetes");
    if cache.join("Dockerfile").is_file() {
        return cache;
    }
    let partial = std::env::temp_dir().join(format!("skiff-tests-python-kubernetes.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let site = partial.join("site");
    let out = Command::new("/usr/bin/python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile", "--target"])
        .arg(&site)
        .arg("kubernetes")
        .output()
        .expect("python3 -m pip (Debian's python3-pip)");
    assert!(out.status.success(), "pip install kubernetes: {}", String::from_utf8_lossy(&out.stderr));
    let find = Command::new("find").arg(&site).args(["-name", "*.so"]).output().expect("find");
    let mut libs = std::collections::BTreeSet::new();
    for object in String::from_utf8_lossy(&find.stdout).lines() {
        let out = Command::new("ldd").arg(object).output().expect("ldd");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(path) = line.split("=>").nth(1).and_then(|p| p.split_whitespace().next()) {
                libs.insert(PathBuf::from(path));
            }
        }
    }
    for lib in libs.iter().filter(|l| l.is_absolute()) {
        let to = partial.join("root").join(lib.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(lib, &to).unwrap_or_else(|e| panic!("copying {}: {e}", lib.display()));
    }
    let dockerfile = "FROM python:3\nCOPY root/ /\nCOPY site /site\nENV PYTHONPATH=/site\n";
    std::fs::write(partial.join("Dockerfile"), dockerfile).expect("Dockerfile");
    if std::fs::rename(&partial, &cache).is_err() {
        let _ = std::fs::remove_dir_all(&partial); // another test process made it meanwhile
    }
    cache
}

/// python:3 and, built on it, `python-kubernetes` with the client on its path.
fn prepare(data: &Path) {
    import_python(data);
    let context = python_kubernetes();
    let (code, _, err) = skiff(data, &["build", "-t", "python-kubernetes", context.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    common::import_busybox(data, &["stat"]);
}

/// Lists the pods of the namespace the pod runs in, with the in-cluster configuration.
const LIST_PODS: &str = r#"
import json
from kubernetes import client, config
config.load_incluster_config()
namespace = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
try:
    pods = client.CoreV1Api().list_namespaced_pod(namespace)
    print("PODS", " ".join(sorted(p.metadata.name for p in pods.items)))
except client.ApiException as e:
    print("STATUS", e.status)
    print(json.loads(e.body)["message"])
"#;

/// Run a pod of `image` with `command` to its end; its log.
fn run_to_end(k: &Kubectl, name: &str, image: &str, command: &[&str]) -> String {
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": image,
            "imagePullPolicy": "IfNotPresent", "command": command}]}});
    k.run_stdin(&["create", "-f", "-"], &pod.to_string()).ok();
    let phase = || k.run(&["get", "pod", name, "-o", "jsonpath={.status.phase}"]).stdout;
    assert!(
        eventually(WAIT, || matches!(phase().as_str(), "Succeeded" | "Failed")),
        "{}",
        k.run(&["describe", "pod", name]).stdout
    );
    k.run(&["logs", name]).ok()
}

#[test]
fn programs_in_pods_use_the_mounted_credentials_and_the_kubernetes_service() {
    let server = Server::with_node(NET, prepare);
    let k = server.kubectl("1.32");
    assert!(eventually(WAIT, || k.run(&["get", "serviceaccount", "default"]).code == 0), "{}", server.log());

    // What the ServiceAccount admission mounted and the node wrote.
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let script = format!(
        "ls {dir}; cat {dir}/namespace; echo; stat -L -c %a {dir}/token; head -c 2 {dir}/token; echo; \
         head -1 {dir}/ca.crt; echo host=$KUBERNETES_SERVICE_HOST port=$KUBERNETES_SERVICE_PORT"
    );
    let log = run_to_end(&k, "files", "busybox:1.36", &["sh", "-c", &script]);
    let service_ip = k.run(&["get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]).ok();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "ca.crt",
            "namespace",
            "token",
            "default",
            "644",
            "ey",
            "-----BEGIN CERTIFICATE-----",
            &format!("host={service_ip} port=443"),
        ],
        "{log}"
    );
    let volume = k.run(&["get", "pod", "files", "-o", "jsonpath={.spec.volumes[0].name}"]).ok();
    assert!(volume.starts_with("kube-api-access-"), "{volume}");

    // The Python client in a pod: denied, then allowed once a RoleBinding grants its account.
    let log = run_to_end(&k, "before", "python-kubernetes", &["python3", "-c", LIST_PODS]);
    assert!(log.contains("STATUS 403") && log.contains(FORBIDDEN), "{log}");
    k.run(&["create", "rolebinding", "sa-view", "--clusterrole=view", "--serviceaccount=default:default"]).ok();
    let log = run_to_end(&k, "after", "python-kubernetes", &["python3", "-c", LIST_PODS]);
    assert!(log.contains("PODS after before files"), "{log}");

    // automountServiceAccountToken: false on the account: nothing mounted.
    k.run(&["create", "serviceaccount", "quiet"]).ok();
    k.run(&["patch", "serviceaccount", "quiet", "-p", r#"{"automountServiceAccountToken": false}"#]).ok();
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quiet"}, "spec": {"serviceAccountName": "quiet",
        "restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", "ls /var/run/secrets/kubernetes.io/serviceaccount || echo none"]}]}}"#;
    k.run_stdin(&["create", "-f", "-"], pod).ok();
    let phase = || k.run(&["get", "pod", "quiet", "-o", "jsonpath={.status.phase}"]).stdout;
    assert!(eventually(WAIT, || phase() == "Succeeded"), "{}", k.run(&["describe", "pod", "quiet"]).stdout);
    assert!(k.run(&["logs", "quiet"]).ok().contains("none"));
}

/// The kube crate's in-cluster program (examples/kube_incluster.rs), which `cargo test -p skiff`
/// builds into `examples/` next to the skiff binary (`--test serviceaccounts` alone builds none).
fn kube_incluster() -> PathBuf {
    let skiff = Path::new(env!("CARGO_BIN_EXE_skiff"));
    let program = skiff.parent().expect("target dir").join("examples/kube_incluster");
    assert!(program.is_file(), "{} is missing: `cargo build -p skiff --examples`", program.display());
    program
}

#[test]
fn the_kube_crates_in_cluster_config_works_in_a_pod() {
    let program = kube_incluster();
    let server = Server::with_node(NET + 1, |d| import_host_binary(d, &program, "kube-incluster"));
    let k = server.kubectl("1.32");
    k.run(&["create", "namespace", "apps"]).ok();
    k.run(&["create", "serviceaccount", "lister", "-n", "apps"]).ok();
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lister", "namespace": "apps"},
        "spec": {"serviceAccountName": "lister", "restartPolicy": "Never", "containers": [{"name": "main",
            "image": "kube-incluster", "imagePullPolicy": "IfNotPresent"}]}});
    k.run_stdin(&["create", "-f", "-"], &pod.to_string()).ok();
    let log = || k.run(&["logs", "-n", "apps", "lister"]).stdout;
    let describe = || k.run(&["describe", "pod", "-n", "apps", "lister"]).stdout;

    // Denied, with upstream's words naming the account, until a RoleBinding grants it.
    let forbidden = r#"forbidden: pods is forbidden: User "system:serviceaccount:apps:lister" cannot list resource "pods" in API group "" in the namespace "apps""#;
    assert!(eventually(WAIT, || log().lines().any(|l| l == forbidden)), "{}\n{}", log(), describe());
    k.run(&["create", "rolebinding", "view", "-n", "apps", "--clusterrole=view", "--serviceaccount=apps:lister"]).ok();
    let phase = || k.run(&["get", "pod", "-n", "apps", "lister", "-o", "jsonpath={.status.phase}"]).stdout;
    assert!(eventually(WAIT, || phase() == "Succeeded"), "{}\n{}", log(), describe());
    let log = log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.last(), Some(&"pods: 1"), "{log}");
    assert!(lines[..lines.len() - 1].iter().all(|l| *l == forbidden), "{log}");
}
