//! The filters in a router shaped like the server's (fake authentication, impersonation and
//! authorization around small handlers), writing to a real log file.

use super::*;
use crate::audit::Options;
use axum::Router;
use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::json;
use skiff_core::auth::Decision;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitManagedFields: true
rules:
  - level: None
    users: ["system:anonymous"]
    verbs: ["get"]
  - level: Metadata
    resources: [{group: "", resources: ["secrets"]}]
  - level: RequestResponse
    resources: [{group: "", resources: ["pods", "pods/log", "pods/exec"]}]
  - level: Metadata
    omitStages: [RequestReceived]
"#;

/// `x-user: NAME` authenticates; anything else is 401 (anonymous on `/version`).
async fn fake_authn(mut req: Request, next: Next) -> Response {
    let name = req.headers().get("x-user").and_then(|v| v.to_str().ok()).map(String::from);
    let user = match name {
        Some(n) => UserInfo::new(n, &["system:authenticated"]),
        None if req.uri().path() == "/version" => UserInfo::anonymous(),
        None => return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response(),
    };
    req.extensions_mut().insert(User(Arc::new(user)));
    next.run(req).await
}

async fn fake_impersonate(mut req: Request, next: Next) -> Response {
    if let Some(name) = req.headers().get("impersonate-user").and_then(|v| v.to_str().ok()) {
        let acting = UserInfo::new(name, &["system:authenticated"]);
        req.extensions_mut().insert(User(Arc::new(acting)));
    }
    next.run(req).await
}

/// Jane may not delete.
async fn fake_authz(req: Request, next: Next) -> Response {
    let user = req.extensions().get::<User>().map(|u| u.0.name.clone()).unwrap_or_default();
    let denied = user == "jane" && req.method() == axum::http::Method::DELETE;
    let verdict = if denied {
        Verdict { decision: Decision::NoOpinion, reason: String::new() }
    } else {
        Verdict { decision: Decision::Allow, reason: "RBAC: allowed by test".into() }
    };
    record_decision(&req, &verdict);
    if denied {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods \"web\" is forbidden: User \"jane\" cannot delete resource \"pods\"",
            "reason": "Forbidden", "details": {"name": "web", "kind": "pods"}, "code": 403});
        return crate::http::json(StatusCode::FORBIDDEN, &status, &[]);
    }
    next.run(req).await
}

async fn create(body: Body) -> Response {
    let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let mut obj: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    obj["metadata"]["uid"] = json!("u-1");
    obj["metadata"]["managedFields"] = json!([{"manager": "kubectl"}]);
    crate::http::json(StatusCode::CREATED, &obj, &[])
}

async fn boom() -> &'static str {
    panic!("boom")
}

fn app(auditor: Arc<Auditor>) -> Router {
    Router::new()
        .route("/version", get(|| async { "v" }))
        .route("/api/v1/namespaces/{ns}/pods", post(create))
        .route("/api/v1/namespaces/{ns}/secrets", post(create))
        .route("/api/v1/namespaces/{ns}/pods/{name}", axum::routing::delete(|| async { "deleted" }))
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(|| async { Body::from("log lines\n") }))
        .route("/api/v1/namespaces/{ns}/pods/{name}/status", get(boom))
        .route("/api/v1/namespaces/{ns}/pods/{name}/exec", get(upgrade))
        .layer(from_fn(fake_authz))
        .layer(from_fn_with_state(auditor.clone(), acting))
        .layer(from_fn(fake_impersonate))
        .layer(from_fn_with_state(auditor.clone(), authenticated))
        .layer(from_fn(fake_authn))
        .layer(from_fn_with_state(auditor, init))
}

struct Harness {
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
    app: Router,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).expect("policy");
    let log = dir.path().join("audit.log");
    let options = Options { policy_file: Some(policy), log_path: Some(log.clone()), ..Options::default() };
    let auditor = Arc::new(Auditor::new(&options, false).expect("auditor"));
    Harness { app: app(auditor), log, _dir: dir }
}

impl Harness {
    async fn call(&self, req: HttpRequest<Body>) -> (StatusCode, String, Vec<u8>) {
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let id = resp.headers().get("audit-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes().to_vec();
        (status, id, body)
    }

    /// The events of `audit_id`, once `count` are written.
    fn events(&self, audit_id: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let events: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
                .filter(|e| e["auditID"] == audit_id)
                .collect();
            if events.len() >= count || Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn request(method: &str, uri: &str, user: Option<&str>, body: &str) -> HttpRequest<Body> {
    let mut b = HttpRequest::builder().method(method).uri(uri).header("user-agent", "test/1.0");
    if let Some(u) = user {
        b = b.header("x-user", u);
    }
    b.header("content-type", "application/json").body(Body::from(body.to_string())).expect("request")
}

#[tokio::test]
async fn a_create_is_recorded_with_its_objects_at_each_stage() {
    let h = harness();
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let (status, id, _) =
        h.call(request("POST", "/api/v1/namespaces/default/pods?fieldManager=kubectl", Some("admin"), pod)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(id.len(), 36, "a uuid: {id}");
    let events = h.events(&id, 2);
    assert_eq!(events.len(), 2, "{events:?}");
    let (received, complete) = (&events[0], &events[1]);
    assert_eq!(received["stage"], "RequestReceived");
    assert_eq!(received["level"], "RequestResponse");
    assert_eq!(received["requestURI"], "/api/v1/namespaces/default/pods?fieldManager=kubectl");
    assert_eq!(received["verb"], "create");
    assert_eq!(received["user"], json!({"username": "admin", "groups": ["system:authenticated"]}));
    assert_eq!(received["userAgent"], "test/1.0");
    assert_eq!(received["objectRef"], json!({"resource": "pods", "namespace": "default", "apiVersion": "v1"}));
    assert!(received.get("requestObject").is_none() && received.get("annotations").is_none());
    assert_eq!(received["stageTimestamp"], received["requestReceivedTimestamp"]);

    assert_eq!(complete["stage"], "ResponseComplete");
    assert_eq!(complete["objectRef"]["name"], "web", "named from the body");
    assert_eq!(complete["responseStatus"], json!({"metadata": {}, "code": 201}));
    assert_eq!(complete["requestObject"]["spec"]["containers"][0]["image"], "busybox");
    assert_eq!(complete["responseObject"]["metadata"], json!({"name": "web", "uid": "u-1"}), "managed fields omitted");
    assert_eq!(
        complete["annotations"],
        json!({"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC: allowed by test"})
    );
}

#[tokio::test]
async fn metadata_level_keeps_bodies_out_and_a_refusal_is_recorded() {
    let h = harness();
    let secret = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},"data":{"password":"c2VjcmV0"}}"#;
    let (_, id, _) = h.call(request("POST", "/api/v1/namespaces/default/secrets", Some("admin"), secret)).await;
    let events = h.events(&id, 2);
    let complete = events.last().expect("events");
    assert_eq!(complete["level"], "Metadata");
    assert_eq!(complete["objectRef"]["name"], "db");
    assert!(complete.get("requestObject").is_none() && complete.get("responseObject").is_none(), "{complete}");
    assert!(!std::fs::read_to_string(&h.log).expect("log").contains("c2VjcmV0"));

    let (status, id, _) = h.call(request("DELETE", "/api/v1/namespaces/default/pods/web", Some("jane"), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let events = h.events(&id, 2);
    let complete = events.last().expect("events");
    assert_eq!(complete["verb"], "delete");
    assert_eq!(complete["user"]["username"], "jane");
    assert_eq!(complete["objectRef"]["name"], "web");
    assert_eq!(complete["responseStatus"]["code"], 403);
    assert_eq!(complete["responseStatus"]["reason"], "Forbidden");
    assert_eq!(complete["responseStatus"]["status"], "Failure");
    assert_eq!(complete["annotations"]["authorization.k8s.io/decision"], "forbid");
    assert_eq!(complete["responseObject"]["kind"], "Status");
}

#[tokio::test]
async fn impersonation_names_both_users() {
    let h = harness();
    let mut req = request("DELETE", "/api/v1/namespaces/default/pods/web", Some("admin"), "");
    req.headers_mut().insert("impersonate-user", "jane".parse().expect("value"));
    let (status, id, _) = h.call(req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "acting as jane");
    let events = h.events(&id, 2);
    let complete = events.last().expect("events");
    assert_eq!(complete["user"]["username"], "admin");
    assert_eq!(complete["impersonatedUser"]["username"], "jane");
    assert!(events[0].get("impersonatedUser").is_none(), "not known when received");
}

#[tokio::test]
async fn long_running_requests_start_then_complete() {
    let h = harness();
    let (_, id, body) =
        h.call(request("GET", "/api/v1/namespaces/default/pods/web/log?follow=true", Some("admin"), "")).await;
    assert_eq!(body, b"log lines\n");
    let events = h.events(&id, 3);
    let stages: Vec<&str> = events.iter().filter_map(|e| e["stage"].as_str()).collect();
    assert_eq!(stages, ["RequestReceived", "ResponseStarted", "ResponseComplete"]);
    assert_eq!(events[1]["responseStatus"], json!({"metadata": {}, "code": 200}));
    assert!(events[2].get("responseObject").is_none(), "streams are not recorded");
    assert_eq!(events[2]["objectRef"]["subresource"], "log");
}

#[tokio::test]
async fn skipped_unauthenticated_and_panicking_requests() {
    let h = harness();
    // Anonymous gets are not audited, but still get an Audit-Id; a client's own is kept.
    let mut req = request("GET", "/version", None, "");
    req.headers_mut().insert("audit-id", "client-chosen".parse().expect("value"));
    let (_, id, _) = h.call(req).await;
    assert_eq!(id, "client-chosen");

    let mut req = request("GET", "/api/v1/namespaces/default/configmaps", None, "");
    req.headers_mut().insert("authorization", "Bearer nope".parse().expect("value"));
    let (status, id, _) = h.call(req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let events = h.events(&id, 1);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["stage"], "ResponseStarted");
    assert_eq!(events[0]["user"], json!({}));
    assert_eq!(events[0]["verb"], "list");
    assert_eq!(
        events[0]["responseStatus"],
        json!({"metadata": {}, "message": "Authentication failed, attempted: bearer", "code": 401})
    );

    let app = h.app.clone();
    let req = request("GET", "/api/v1/namespaces/default/pods/web/status", Some("admin"), "");
    let id_req = req.headers().get("audit-id").cloned();
    assert!(id_req.is_none());
    let outcome = tokio::spawn(async move { app.oneshot(req).await }).await;
    assert!(outcome.is_err_and(|e| e.is_panic()), "the panic goes on");
    let deadline = Instant::now() + Duration::from_secs(10);
    let panic = loop {
        let text = std::fs::read_to_string(&h.log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("\"stage\":\"Panic\"")) {
            break serde_json::from_str::<Value>(line).expect("json");
        }
        assert!(Instant::now() < deadline, "a Panic event");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(panic["responseStatus"]["code"], 500);
    assert_eq!(panic["responseStatus"]["message"], "APIServer panic'd: boom");
}

#[tokio::test]
async fn without_a_policy_only_the_id_is_given() {
    let app = app(Arc::new(Auditor::disabled()));
    let resp = app.oneshot(request("GET", "/version", None, "")).await.expect("infallible");
    assert!(resp.headers().get("audit-id").is_some());
}

/// Answers 101 and echoes five bytes over the upgraded connection, as exec's sessions run
/// after their handler has returned.
async fn upgrade(mut req: Request) -> Response {
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Ok(upgraded) = on.await {
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buf = [0u8; 5];
            if io.read_exact(&mut buf).await.is_ok() {
                let _ = io.write_all(&buf).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "test")
        .body(Body::empty())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_upgraded_stream_still_works_and_is_audited() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = harness();
    let app = h.app.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = "GET /api/v1/namespaces/default/pods/web/exec?command=sh HTTP/1.1\r\nhost: x\r\nx-user: admin\r\n\
                connection: upgrade\r\nupgrade: test\r\n\r\n";
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        conn.read_exact(&mut byte).await.expect("response head");
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let id = head.lines().find_map(|l| l.strip_prefix("audit-id: ")).expect("an Audit-Id").trim().to_string();
    conn.write_all(b"hello").await.expect("write");
    let mut echo = [0u8; 5];
    conn.read_exact(&mut echo).await.expect("echo");
    assert_eq!(&echo, b"hello");
    let events = h.events(&id, 3);
    let stages: Vec<&str> = events.iter().filter_map(|e| e["stage"].as_str()).collect();
    assert_eq!(stages, ["RequestReceived", "ResponseStarted", "ResponseComplete"]);
    assert_eq!(events[1]["responseStatus"]["code"], 101);
    assert_eq!(events[1]["objectRef"]["subresource"], "exec");
}
