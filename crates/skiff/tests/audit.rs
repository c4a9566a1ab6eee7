//! End to end: the audit log. With upstream's policy format (Secrets at Metadata, pods at
//! RequestResponse, nothing for anonymous gets), the file records who did what: the admin's
//! pod create with its object, the Secret without its data, jane's refused delete with the
//! decision, a failed authentication; the `Audit-Id` a client sees names an event; an exec
//! session's request completes when the session ends, and /metrics counts the events. A
//! malformed policy stops the server from starting, naming the file and the field.

mod common;

use common::{Kubectl, Server, eventually, skiff};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// This file's node network (tests/common: each node test has its own).
const NET: u8 = 49;

const POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: ["system:anonymous"]
    verbs: ["get"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets"]
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["pods"]
"#;

const POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers: [{name: web, image: busybox}]
";

fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event ({e}): {l}")))
        .collect()
}

/// The first event that `f` picks, waiting for the writer.
fn find(log: &Path, f: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    let seen = eventually(Duration::from_secs(10), || {
        found = events(log).into_iter().find(&f);
        found.is_some()
    });
    assert!(seen, "no such event in:\n{}", std::fs::read_to_string(log).unwrap_or_default());
    found.unwrap_or_default()
}

#[test]
fn the_audit_log_records_who_did_what() {
    let files = tempfile::tempdir().expect("tempdir");
    let policy = files.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).expect("policy");
    let log = files.path().join("audit/audit.log");
    let (p, l) = (policy.to_string_lossy().into_owned(), log.to_string_lossy().into_owned());
    let server = Server::start_with(&["--audit-policy-file", &p, "--audit-log-path", &l]);
    let admin = server.kubectl("1.32");

    admin.run_stdin(&["create", "-f", "-"], POD).ok();
    let value = "hunter2-audit-test";
    admin.run(&["create", "secret", "generic", "db", &format!("--from-literal=password={value}")]).ok();

    let (code, out, err) = skiff(server.data_dir(), &["kubeconfig", "--user", "jane"]);
    assert_eq!(code, 0, "skiff kubeconfig --user: {err}");
    let jane_config = server.data_dir().join("jane.yaml");
    std::fs::write(&jane_config, out).expect("write kubeconfig");
    let jane = Kubectl::new("1.32", &jane_config, server.data_dir());
    let refused = jane.run(&["delete", "pod", "web"]).fails();
    assert!(refused.contains(r#"User "jane" cannot delete resource "pods""#), "{refused}");

    // The Audit-Id header of a response, as kubectl prints response headers.
    let get = admin.run(&["get", "pod", "web", "-v=8"]);
    let audit_id = get
        .stderr
        .split("Audit-Id: ")
        .nth(1)
        .and_then(|rest| rest.get(..36))
        .unwrap_or_else(|| panic!("no Audit-Id header in:\n{}", get.stderr))
        .to_string();

    // A token the server does not know: anonymous on public paths, 401 elsewhere.
    let anon = server.kubectl_with_token("1.32", "not-a-token");
    anon.run(&["get", "--raw", "/version"]).ok();
    anon.run(&["get", "--raw", "/api/v1/namespaces/default/pods"]).fails();

    // The admin's create: the object sent and the one stored.
    let create = find(&log, |e| {
        e["verb"] == "create" && e["objectRef"]["resource"] == "pods" && e["stage"] == "ResponseComplete"
    });
    assert_eq!(create["kind"], "Event");
    assert_eq!(create["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(create["level"], "RequestResponse");
    assert_eq!(create["user"]["username"], "skiff-admin");
    assert_eq!(create["objectRef"]["name"], "web");
    assert_eq!(create["objectRef"]["namespace"], "default");
    assert_eq!(create["objectRef"]["apiVersion"], "v1");
    assert_eq!(create["responseStatus"]["code"], 201);
    assert_eq!(create["requestObject"]["spec"]["containers"][0]["image"], "busybox");
    assert!(create["responseObject"]["metadata"]["uid"].is_string(), "{create}");
    assert_eq!(create["annotations"]["authorization.k8s.io/decision"], "allow");
    assert_eq!(create["sourceIPs"][0], "127.0.0.1");
    assert!(create["userAgent"].as_str().is_some_and(|ua| ua.starts_with("kubectl")), "{create}");
    let id = create["auditID"].as_str().expect("an audit ID");
    let stages: Vec<Value> =
        events(&log).into_iter().filter(|e| e["auditID"] == id).map(|e| e["stage"].clone()).collect();
    assert_eq!(stages, ["RequestReceived", "ResponseComplete"]);

    // The Secret: who and what, never its data.
    let secret = find(&log, |e| {
        e["verb"] == "create" && e["objectRef"]["resource"] == "secrets" && e["stage"] == "ResponseComplete"
    });
    assert_eq!(secret["level"], "Metadata");
    assert_eq!(secret["objectRef"]["name"], "db");
    assert!(secret.get("requestObject").is_none() && secret.get("responseObject").is_none(), "{secret}");

    // Jane's refusal, with authorization's decision.
    let denied =
        find(&log, |e| e["verb"] == "delete" && e["user"]["username"] == "jane" && e["stage"] == "ResponseComplete");
    assert_eq!(denied["objectRef"]["name"], "web");
    assert_eq!(denied["responseStatus"]["code"], 403);
    assert_eq!(denied["responseStatus"]["reason"], "Forbidden");
    assert_eq!(denied["annotations"]["authorization.k8s.io/decision"], "forbid");

    // The header names the event of that request.
    let got = find(&log, |e| e["auditID"] == audit_id.as_str() && e["stage"] == "ResponseComplete");
    assert_eq!(got["verb"], "get");
    // kubectl asks for a Table: recorded as sent.
    assert_eq!(got["responseObject"]["kind"], "Table", "{got}");
    assert_eq!(got["responseObject"]["rows"][0]["object"]["metadata"]["name"], "web", "{got}");

    // A failed authentication is recorded without a user; anonymous gets not at all.
    let unauthenticated = find(&log, |e| e["responseStatus"]["code"] == 401);
    assert_eq!(unauthenticated["user"], serde_json::json!({}));
    assert_eq!(unauthenticated["verb"], "list");
    assert_eq!(unauthenticated["responseStatus"]["message"], "Authentication failed, attempted: bearer");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("system:anonymous"), "anonymous gets are not audited");
    let encoded = "aHVudGVyMi1hdWRpdC10ZXN0"; // base64 of the value
    assert!(!text.contains(value) && !text.contains(encoded), "no Secret data in the log");

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&log).expect("stat").permissions().mode() & 0o777, 0o600);
}

/// The metric `name`'s value in the server's /metrics.
fn metric(k: &Kubectl, name: &str) -> u64 {
    let text = k.run(&["get", "--raw", "/metrics"]).ok();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn an_exec_session_is_complete_when_it_ends_and_metrics_count_events() {
    let files = tempfile::tempdir().expect("tempdir");
    let policy = files.path().join("policy.yaml");
    // A rule on `pods` is not one on its subresources: exec is named.
    std::fs::write(&policy, POLICY.replace(r#"resources: ["pods"]"#, r#"resources: ["pods", "pods/exec"]"#))
        .expect("policy");
    let log = files.path().join("audit.log");
    let (p, l) = (policy.to_string_lossy().into_owned(), log.to_string_lossy().into_owned());
    let server = Server::with_node_args(NET, &["--audit-policy-file", &p, "--audit-log-path", &l], |data| {
        common::import_busybox(data, &[])
    });
    let k = server.kubectl("1.32");
    let account = || k.run(&["get", "serviceaccount", "default"]).code == 0;
    assert!(eventually(Duration::from_secs(30), account), "{}", server.log());
    let pod =
        POD.replace("image: busybox}", "image: busybox:1.36, imagePullPolicy: IfNotPresent, command: [sleep, '3600']}");
    k.run_stdin(&["create", "-f", "-"], &pod).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]).ok();
    // A session of two seconds: its request completes when it ends, not when it is upgraded.
    k.run(&["exec", "web", "--", "sleep", "2"]).ok();
    let exec =
        |stage: &'static str| find(&log, move |e| e["objectRef"]["subresource"] == "exec" && e["stage"] == stage);
    let (started, complete) = (exec("ResponseStarted"), exec("ResponseComplete"));
    assert_eq!(started["auditID"], complete["auditID"]);
    assert_eq!(complete["responseStatus"]["code"], 101, "{complete}");
    // kubectl 1.32 execs over a WebSocket: a GET.
    assert_eq!(complete["verb"], "get");
    let at = |e: &Value| e["stageTimestamp"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).expect("time");
    let session = at(&complete).duration_since(at(&started));
    assert!(session >= jiff::SignedDuration::from_millis(1900), "complete {session:?} after started");

    // Every event written is counted, none dropped.
    let written = events(&log).len() as u64;
    assert!(metric(&k, "apiserver_audit_event_total") >= written);
    assert_eq!(metric(&k, "apiserver_audit_error_total{plugin=\"log\"}"), 0);
}

#[test]
fn a_malformed_policy_stops_the_start() {
    let files = tempfile::tempdir().expect("tempdir");
    let policy = files.path().join("policy.yaml");
    std::fs::write(&policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n").expect("write");
    let p = policy.to_string_lossy().into_owned();
    let log = files.path().join("audit.log").to_string_lossy().into_owned();
    let args = ["server", "--disable-agent", "--store", "memory", "--listen", "127.0.0.1:0"];
    let (code, _, err) =
        skiff(files.path(), &[&args[..], &["--audit-policy-file", &p, "--audit-log-path", &log]].concat());
    assert_ne!(code, 0);
    assert!(err.contains(&p) && err.contains(r#"rules[0].level: Unsupported value: "Everything""#), "{err}");
}
