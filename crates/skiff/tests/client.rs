//! A second, independent client (kube-rs) against `skiff server`, and raw requests with bad input:
//! each gets the Status a real apiserver gives, and the server keeps serving.

mod common;

use common::Server;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

async fn client(server: &Server) -> Client {
    let kc = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("client")
}

/// A client that shows 429/503/504 answers instead of retrying them as the default one does.
async fn client_without_retries(server: &Server) -> Client {
    let kc = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    config.default_retry = false;
    Client::try_from(config).expect("client")
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "kube-rs"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}),
    )
    .expect("pod")
}

/// Send a raw request; returns (status code, body as JSON).
async fn raw(client: &Client, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .body(body)
        .expect("request");
    let resp = client.send(req.map(kube::client::Body::from)).await.expect("send");
    let code = resp.status().as_u16();
    let bytes = http_body_util_collect(resp).await;
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn http_body_util_collect(resp: http::Response<kube::client::Body>) -> Vec<u8> {
    use http_body_util::BodyExt;
    resp.into_body().collect().await.map(|c| c.to_bytes().to_vec()).unwrap_or_default()
}

#[tokio::test]
async fn kube_rs_lists_creates_patches_and_watches() {
    let server = Server::start();
    let client = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let created = pods.create(&PostParams::default(), &pod("k1")).await.expect("create");
    assert_eq!(created.metadata.name.as_deref(), Some("k1"));
    assert!(created.metadata.uid.is_some());
    let spec = created.spec.expect("spec");
    assert_eq!(spec.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(created.status.and_then(|s| s.phase).as_deref(), Some("Pending"));

    let list = pods.list(&ListParams::default().labels("app=kube-rs")).await.expect("list");
    assert_eq!(list.items.len(), 1);
    let rv = list.metadata.resource_version.expect("list rv");

    let mut stream = pods.watch(&WatchParams::default(), &rv).await.expect("watch").boxed();
    let patch = json!({"metadata": {"labels": {"patched": "yes"}}});
    pods.patch("k1", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("merge patch");
    let strategic = json!({"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}});
    let p = pods.patch("k1", &PatchParams::default(), &Patch::Strategic(&strategic)).await.expect("strategic patch");
    assert_eq!(p.spec.expect("spec").containers[0].image.as_deref(), Some("busybox:1.37"));
    let ssa = PatchParams::apply("kube-rs-test");
    let applied =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "k1", "labels": {"owner": "kube-rs-test"}}});
    pods.patch("k1", &ssa, &Patch::Apply(&applied)).await.expect("apply");

    let mut modified = 0;
    while modified < 3 {
        match tokio::time::timeout(std::time::Duration::from_secs(5), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Modified(_)))) => modified += 1,
            Ok(Ok(Some(WatchEvent::Bookmark(_)))) => {}
            other => panic!("unexpected watch result: {other:?}"),
        }
    }

    let got = pods.get("k1").await.expect("get");
    let labels = got.metadata.labels.clone().expect("labels");
    assert_eq!(labels.get("patched").map(String::as_str), Some("yes"));
    assert_eq!(labels.get("owner").map(String::as_str), Some("kube-rs-test"));

    // Optimistic concurrency: an update with a stale resourceVersion is a 409 Conflict.
    let mut stale = got.clone();
    stale.metadata.resource_version = Some(rv.clone());
    let err = pods.replace("k1", &PostParams::default(), &stale).await.expect_err("stale update");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"), "{err:?}");

    // dryRun writes nothing.
    let dry = PostParams { dry_run: true, ..Default::default() };
    pods.create(&dry, &pod("dry")).await.expect("dry run create");
    assert!(pods.get_opt("dry").await.expect("get").is_none());

    pods.delete("k1", &DeleteParams::default()).await.expect("delete");
    assert!(pods.get_opt("k1").await.expect("get").is_none());

    let nss: Api<Namespace> = Api::all(client);
    assert!(nss.get("kube-system").await.is_ok());
}

#[tokio::test]
async fn bad_input_gets_kubernetes_status_errors() {
    let server = Server::start();
    let client = client(&server).await;
    let pods_path = "/api/v1/namespaces/default/pods";
    let json_ct = "application/json";

    let (code, s) = raw(&client, "POST", pods_path, json_ct, b"{not json".to_vec()).await;
    assert_eq!((code, s["kind"].as_str(), s["reason"].as_str()), (400, Some("Status"), Some("BadRequest")));

    let wrong_kind = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
    let (code, s) = raw(&client, "POST", pods_path, json_ct, wrong_kind.to_string().into_bytes()).await;
    assert_eq!(code, 400, "{s}");

    let wrong_version = json!({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "x"}});
    let (code, s) = raw(&client, "POST", pods_path, json_ct, wrong_version.to_string().into_bytes()).await;
    assert_eq!(code, 400);
    assert_eq!(s["message"], "the API version in the data (apps/v1) does not match the expected API version (v1)");

    let bad_name = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"},
        "spec": {"containers": [{"name": "c", "image": "x"}]}});
    let (code, s) = raw(&client, "POST", pods_path, json_ct, bad_name.to_string().into_bytes()).await;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");

    let wrong_type = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": "eighty"}]}]}});
    let (code, s) = raw(&client, "POST", pods_path, json_ct, wrong_type.to_string().into_bytes()).await;
    assert_eq!(code, 400, "{s}");
    assert!(s["message"].as_str().unwrap_or("").contains("containerPort"), "{s}");

    let huge = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge", "annotations": {"a": "x".repeat(4 << 20)}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}})
    .to_string()
    .into_bytes();
    let (code, s) = raw(&client, "POST", pods_path, json_ct, huge).await;
    assert_eq!((code, s["reason"].as_str()), (413, Some("RequestEntityTooLarge")));

    let (code, s) = raw(&client, "GET", "/api/v1/namespaces/default/widgets", json_ct, vec![]).await;
    assert_eq!((code, s["reason"].as_str()), (404, Some("NotFound")));
    let (code, _) = raw(&client, "GET", "/apis/apps/v1/widgets", json_ct, vec![]).await;
    assert_eq!(code, 404);

    let (code, s) = raw(&client, "GET", "/api/v1/pods?fieldValidation=Sometimes", json_ct, vec![]).await;
    assert_eq!(code, 400, "{s}");
    let (code, s) = raw(&client, "GET", "/api/v1/pods?labelSelector=a%20in%20b", json_ct, vec![]).await;
    assert_eq!(code, 400, "{s}");
    let (code, s) = raw(&client, "GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx", json_ct, vec![]).await;
    assert_eq!((code, s["message"].as_str()), (400, Some("field label not supported: spec.bogus")));

    // Upstream's decoding rules: only object media types, a uid is a precondition, apply names its
    // manager, generateName must make a valid name, path segments are percent-decoded.
    for ct in ["text/plain", "application/xml"] {
        let (code, s) = raw(&client, "POST", pods_path, ct, pod_json("typed")).await;
        assert_eq!((code, s["reason"].as_str()), (415, Some("UnsupportedMediaType")), "{ct}: {s}");
    }
    let twice = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b"},"spec":{"containers":[{"name":"c","image":"x"}]}}"#;
    let strict = format!("{pods_path}?fieldValidation=Strict");
    let (code, s) = raw(&client, "POST", &strict, json_ct, twice.to_vec()).await;
    assert_eq!(
        (code, s["message"].as_str()),
        (
            400,
            Some(
                "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: duplicate field \"metadata.name\""
            )
        )
    );
    let (code, _) = raw(&client, "POST", pods_path, json_ct, pod_json("my-pod")).await;
    assert_eq!(code, 201);
    let (code, s) = raw(&client, "GET", &format!("{pods_path}/my%2Dpod"), json_ct, vec![]).await;
    assert_eq!((code, s["metadata"]["name"].as_str()), (200, Some("my-pod")), "{s}");
    let mut other_uid = s.clone();
    other_uid["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    let (code, e) =
        raw(&client, "PUT", &format!("{pods_path}/my-pod"), json_ct, other_uid.to_string().into_bytes()).await;
    assert_eq!(code, 409, "{e}");
    assert!(e["message"].as_str().unwrap_or("").contains("Precondition failed: UID in precondition"), "{e}");
    let apply = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"my-pod"}}"#.to_vec();
    let (code, e) = raw(&client, "PATCH", &format!("{pods_path}/my-pod"), "application/apply-patch+yaml", apply).await;
    assert_eq!(
        (code, e["message"].as_str()),
        (400, Some("PATCH, application/apply-patch+yaml requests must have a fieldManager"))
    );
    let long = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "g".repeat(300)},
        "spec": {"containers": [{"name": "c", "image": "x"}]}});
    let (code, e) = raw(&client, "POST", pods_path, json_ct, long.to_string().into_bytes()).await;
    assert_eq!((code, e["details"]["causes"][0]["field"].as_str()), (422, Some("metadata.generateName")), "{e}");

    let (code, _) = raw(&client, "POST", pods_path, json_ct, pod_json("w1")).await;
    assert_eq!(code, 201);

    // Concurrent conflicting updates: exactly one of two writers with the same resourceVersion wins.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let base = pods.get("w1").await.expect("get");
    let (a, b) = (base.clone(), base.clone());
    let (pa, pb) = (pods.clone(), pods.clone());
    let ra = tokio::spawn(async move {
        let mut a = a;
        a.metadata.labels = Some([("writer".to_string(), "a".to_string())].into());
        pa.replace("w1", &PostParams::default(), &a).await.is_ok()
    });
    let rb = tokio::spawn(async move {
        let mut b = b;
        b.metadata.labels = Some([("writer".to_string(), "b".to_string())].into());
        pb.replace("w1", &PostParams::default(), &b).await.is_ok()
    });
    let wins = [ra.await.expect("a"), rb.await.expect("b")].iter().filter(|w| **w).count();
    assert_eq!(wins, 1);

    // And the server still serves.
    let (code, _) = raw(&client, "GET", pods_path, json_ct, vec![]).await;
    assert_eq!(code, 200);
}

fn pod_json(name: &str) -> Vec<u8> {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
        .to_string()
        .into_bytes()
}

/// The watch history is in the store: watchers resume across `kill -9` and restart without
/// listing again, whoever they are (the kube crate's `watcher`, an informer-style loop on the
/// official Python client, a raw watch from kubectl), and see every change. The changes made
/// between two restarts reach them from the store's log on disk, not from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_resume_across_kill_and_restart() {
    use kube::runtime::{WatchStreamExt, watcher};
    let mut server = Server::start();
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
    for name in ["a0", "a1"] {
        pods.create(&PostParams::default(), &pod(name)).await.expect("create");
    }
    // Two kube watchers: list-then-watch, and watch-list (sendInitialEvents, with bookmarks).
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let mut watching = Vec::new();
    for (strategy, config) in [(0, watcher::Config::default()), (1, watcher::Config::default().streaming_lists())] {
        let tx = tx.clone();
        watching.push(tokio::spawn(watcher(pods.clone(), config).default_backoff().for_each(move |e| {
            let _ = tx.send((strategy, e.map_err(|e| e.to_string())));
            futures::future::ready(())
        })));
    }
    let python = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/informer.py"))
        .args([server.kubeconfig().to_str().expect("utf-8"), "default", "60", "a0,a1,b0,b1,b2,c0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    // The informer must have listed before the first restart, or its resume proves nothing.
    let mut python = python;
    let mut python_out = std::io::BufReader::new(python.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut python_out, &mut first).expect("informer output");
    assert_eq!(first.trim(), "LISTED", "the informer's first list");
    // Per watcher: the pods it saw added, and how many times it (re)listed.
    let mut names = [Vec::new(), Vec::new()];
    let mut lists = [0, 0];
    let mut next = async |names: &mut [Vec<String>; 2], lists: &mut [usize; 2]| match tokio::time::timeout(
        std::time::Duration::from_secs(30),
        seen.recv(),
    )
    .await
    {
        Ok(Some((w, Ok(watcher::Event::Init)))) => lists[w] += 1,
        Ok(Some((w, Ok(watcher::Event::InitApply(p) | watcher::Event::Apply(p))))) => {
            names[w].push(p.metadata.name.unwrap_or_default())
        }
        Ok(Some(_)) => {}
        other => panic!("the kube watchers stopped: {other:?}"),
    };
    while names.iter().any(|n| n.len() < 2) {
        next(&mut names, &mut lists).await;
    }
    let (_, listed) = raw(&client(&server).await, "GET", "/api/v1/namespaces/default/pods", "", vec![]).await;
    let rv = listed["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    std::thread::sleep(std::time::Duration::from_secs(1));

    server.kill_and_restart();
    let pods_now: Api<Pod> = Api::namespaced(client(&server).await, "default");
    for name in ["b0", "b1", "b2"] {
        pods_now.create(&PostParams::default(), &pod(name)).await.expect("create");
    }
    server.kill_and_restart();
    let pods_now: Api<Pod> = Api::namespaced(client(&server).await, "default");
    pods_now.create(&PostParams::default(), &pod("c0")).await.expect("create");

    while names.iter().any(|n| n.len() < 6) {
        next(&mut names, &mut lists).await;
    }
    watching.iter().for_each(|w| w.abort());
    for (names, lists) in names.iter().zip(lists) {
        assert_eq!(names, &["a0", "a1", "b0", "b1", "b2", "c0"], "every pod once, in order");
        assert_eq!(lists, 1, "each kube watcher listed only at its start");
    }

    let mut text = String::new();
    std::io::Read::read_to_string(&mut python_out, &mut text).expect("informer output");
    let out = python.wait_with_output().expect("python informer");
    assert!(text.contains("LISTS 1\n"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("SEEN a0,a1,b0,b1,b2,c0"), "{text}");

    // kubectl, watching from before both restarts: the store's log replays what came after.
    let path = format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1");
    let lines = server.kubectl("1.32").run(&["get", "--raw", &path]).ok();
    let added: Vec<String> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "ADDED")
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(added, ["b0", "b1", "b2", "c0"]);
}

/// Lists read at one revision (every page of a paginated list too), resourceVersion and
/// resourceVersionMatch mean what they mean upstream, and compaction turns old revisions into
/// upstream's 410s.
#[tokio::test]
async fn lists_are_snapshots_and_compaction_expires_old_revisions() {
    let server = Server::start_with(&["--compaction-interval-seconds", "1"]);
    let c = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    for i in 0..5 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"))).await.expect("create");
    }
    // For the continue token given to other lists, below.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}});
    assert_eq!(raw(&c, "POST", "/api/v1/namespaces", "application/json", ns.to_string().into()).await.0, 201);
    let elsewhere: Api<Pod> = Api::namespaced(c.clone(), "elsewhere");
    for name in ["p0", "p1", "p7"] {
        elsewhere.create(&PostParams::default(), &pod(name)).await.expect("create elsewhere");
    }
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "p5"}});
    let secrets = "/api/v1/namespaces/default/secrets";
    assert_eq!(raw(&c, "POST", secrets, "application/json", secret.to_string().into()).await.0, 201);
    let base = "/api/v1/namespaces/default/pods";
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let (code, first) = raw(&c, "GET", &format!("{base}?limit=2"), "", vec![]).await;
    assert_eq!((code, names(&first)), (200, vec!["p0".to_string(), "p1".to_string()]));
    let rv = first["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    let token = first["metadata"]["continue"].as_str().expect("continue").to_string();
    // The token carries a key relative to the list, as upstream's: given to another namespace's
    // or another resource's list, it continues there after the same name, showing nothing else.
    let (code, other) =
        raw(&c, "GET", &format!("/api/v1/namespaces/elsewhere/pods?limit=10&continue={token}"), "", vec![]).await;
    assert_eq!((code, names(&other)), (200, vec!["p7".to_string()]), "{other}");
    let (code, other) = raw(&c, "GET", &format!("{secrets}?limit=10&continue={token}"), "", vec![]).await;
    assert_eq!((code, names(&other)), (200, vec!["p5".to_string()]), "{other}");
    // Changes after the first page do not show in the later ones.
    pods.delete("p3", &DeleteParams::default().grace_period(0)).await.expect("delete");
    pods.create(&PostParams::default(), &pod("p9")).await.expect("create");
    let mut all = names(&first);
    let mut next = Some(token.clone());
    while let Some(t) = next {
        let (code, page) = raw(&c, "GET", &format!("{base}?limit=2&continue={t}"), "", vec![]).await;
        assert_eq!(code, 200, "{page}");
        assert_eq!(page["metadata"]["resourceVersion"].as_str(), Some(rv.as_str()));
        all.extend(names(&page));
        next = page["metadata"]["continue"].as_str().map(String::from);
    }
    assert_eq!(all, ["p0", "p1", "p2", "p3", "p4"]);
    // Exact reads the past; the current state has the changes.
    let (_, exact) =
        raw(&c, "GET", &format!("{base}?resourceVersion={rv}&resourceVersionMatch=Exact"), "", vec![]).await;
    assert_eq!(names(&exact), ["p0", "p1", "p2", "p3", "p4"]);
    let (_, now) = raw(&c, "GET", base, "", vec![]).await;
    assert_eq!(names(&now), ["p0", "p1", "p2", "p4", "p9"]);

    // Bad resourceVersions and combinations: upstream's answers.
    let (code, s) = raw(&c, "GET", &format!("{base}?resourceVersion=abc"), "", vec![]).await;
    assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")), "{s}");
    let (code, s) = raw(&c, "GET", &format!("{base}?resourceVersion=5&continue={token}"), "", vec![]).await;
    assert_eq!(
        (code, s["message"].as_str()),
        (400, Some("specifying resource version is not allowed when using continue"))
    );
    let (code, s) = raw(&c, "GET", &format!("{base}?resourceVersionMatch=Exact"), "", vec![]).await;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")), "{s}");
    let current: u64 = now["metadata"]["resourceVersion"].as_str().and_then(|r| r.parse().ok()).expect("rv");
    let started = std::time::Instant::now();
    let once = client_without_retries(&server).await;
    let (code, s) = raw(&once, "GET", &format!("{base}?resourceVersion={}", current + 100), "", vec![]).await;
    assert_eq!((code, s["reason"].as_str()), (504, Some("Timeout")), "{s}");
    assert_eq!(s["details"]["causes"][0]["reason"], "ResourceVersionTooLarge");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "waited for the revision first");
    let (code, s) =
        raw(&once, "GET", &format!("{base}?watch=true&resourceVersion={}", current + 100), "", vec![]).await;
    assert_eq!((code, s["reason"].as_str()), (504, Some("Timeout")), "a watch from the future too: {s}");

    // Once compacted (every second here), the old revision is gone for lists, pages and watches.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    pods.create(&PostParams::default(), &pod("after")).await.expect("create");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (code, s) =
        raw(&c, "GET", &format!("{base}?resourceVersion={rv}&resourceVersionMatch=Exact"), "", vec![]).await;
    assert_eq!(
        (code, s["message"].as_str()),
        (410, Some("The resourceVersion for the provided list is too old.")),
        "{s}"
    );
    let (code, s) = raw(&c, "GET", &format!("{base}?limit=2&continue={token}"), "", vec![]).await;
    assert_eq!((code, s["reason"].as_str()), (410, Some("Expired")), "{s}");
    assert!(s["message"].as_str().is_some_and(|m| m.starts_with("The provided continue parameter is too old")));
    let fresh = s["metadata"]["continue"].as_str().expect("a token that continues at the latest revision");
    let (code, rest) = raw(&c, "GET", &format!("{base}?limit=10&continue={fresh}"), "", vec![]).await;
    assert_eq!((code, names(&rest)), (200, vec!["p2".into(), "p4".into(), "p9".into()]), "{rest}");
    let req = http::Request::builder()
        .uri(format!("{base}?watch=true&resourceVersion={rv}"))
        .body(Vec::new())
        .expect("request");
    let resp = c.send(req.map(kube::client::Body::from)).await.expect("send");
    let body = http_body_util_collect(resp).await;
    let ev: Value = serde_json::from_slice(body.split(|b| *b == b'\n').next().expect("line")).expect("event");
    assert_eq!((ev["type"].as_str(), ev["object"]["code"].as_u64()), (Some("ERROR"), Some(410)), "{ev}");
    assert_eq!(ev["object"]["reason"], "Expired");
}

#[tokio::test]
async fn finalizers_generate_name_and_watch_timeout() {
    let server = Server::start();
    let client = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // generateName: the server picks the name.
    let mut generated = pod("");
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let made = pods.create(&PostParams::default(), &generated).await.expect("create");
    let name = made.metadata.name.expect("name");
    assert!(name.starts_with("gen-") && name.len() == "gen-".len() + 5, "{name}");

    // A finalizer holds the object after delete until it is removed.
    let mut held = pod("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    pods.create(&PostParams::default(), &held).await.expect("create");
    pods.delete("held", &DeleteParams::default()).await.expect("delete");
    let still = pods.get("held").await.expect("still there");
    assert!(still.metadata.deletion_timestamp.is_some());
    let unhold = json!({"metadata": {"finalizers": null}});
    pods.patch("held", &PatchParams::default(), &Patch::Merge(&unhold)).await.expect("remove finalizer");
    assert!(pods.get_opt("held").await.expect("get").is_none());

    // timeoutSeconds ends the watch.
    let started = std::time::Instant::now();
    let mut w = pods.watch(&WatchParams::default().timeout(1), "0").await.expect("watch").boxed();
    while let Some(ev) = w.next().await {
        ev.expect("event");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn bookmarks_arrive_on_idle_watches_that_ask() {
    let server = Server::start_with(&["--watch-bookmark-seconds", "1"]);
    let c = client(&server).await;
    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion=0")
        .body(Vec::new())
        .expect("request");
    let resp = c.send(req.map(kube::client::Body::from)).await.expect("send");
    // A write elsewhere while the watch is idle: the bookmark carries the store's revision, so a
    // quiet watcher stays within the history.
    let (code, elsewhere) =
        raw(&c, "POST", "/api/v1/namespaces/kube-system/pods", "application/json", pod_json("elsewhere")).await;
    assert_eq!(code, 201, "{elsewhere}");
    let written: u64 = elsewhere["metadata"]["resourceVersion"].as_str().and_then(|r| r.parse().ok()).expect("rv");
    let body = http_body_util_collect(resp).await;
    let events: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("event"))
        .collect();
    let bookmark = events.iter().rfind(|e| e["type"] == "BOOKMARK").expect("a bookmark within 3 s");
    assert_eq!(bookmark["object"]["kind"], "Pod");
    let rv: u64 = bookmark["object"]["metadata"]["resourceVersion"].as_str().and_then(|r| r.parse().ok()).expect("rv");
    assert!(rv >= written, "bookmark at {rv}, the store at {written}");

    // A watch-list (sendInitialEvents, as client-go's WatchList asks): the current state, then a
    // bookmark that marks its end, even from a resourceVersion after it.
    let (code, _) = raw(&c, "POST", "/api/v1/namespaces/default/pods", "application/json", pod_json("listed")).await;
    assert_eq!(code, 201);
    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=1")
        .body(Vec::new())
        .expect("request");
    let resp = c.send(req.map(kube::client::Body::from)).await.expect("send");
    let body = http_body_util_collect(resp).await;
    let events: Vec<Value> =
        body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).filter_map(|l| serde_json::from_slice(l).ok()).collect();
    assert_eq!(events[0]["type"], "ADDED", "{events:?}");
    assert_eq!(events[0]["object"]["metadata"]["name"], "listed");
    assert_eq!(events[1]["type"], "BOOKMARK", "{events:?}");
    assert_eq!(events[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    // Without the options upstream requires: 422.
    let (code, s) =
        raw(&c, "GET", "/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=true", "application/json", vec![])
            .await;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")), "{s}");
}

/// HTTP/1.1 Upgrade requests over TLS are accepted and answered (the SPDY/WebSocket streams
/// themselves come with exec and port-forward).
#[test]
fn upgrade_requests_over_tls_get_status_answers() {
    let server = Server::start();
    let token = std::fs::read_to_string(server.data_dir().join("pki/token")).expect("token");
    let url =
        format!("https://127.0.0.1:{}/api/v1/namespaces/default/pods/nope/exec?command=sh&stdout=true", server.port);
    let out = std::process::Command::new("curl")
        .args(["-sk", "--http1.1", "-X", "POST", "-H", "Connection: Upgrade", "-H", "Upgrade: SPDY/3.1"])
        .args([
            "-H",
            "X-Stream-Protocol-Version: v4.channel.k8s.io",
            "-H",
            &format!("Authorization: Bearer {}", token.trim()),
        ])
        .args(["-w", "\n%{http_code}", &url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').expect("status line");
    assert_eq!(code, "404", "{text}");
    let status: Value = serde_json::from_str(body).expect("Status JSON");
    assert_eq!(status["message"], "pods \"nope\" not found");
}

/// Run `tests/clients/slow_clients.py MODE` against `server`: what it prints.
fn slow_clients(server: &Server, mode: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/slow_clients.py");
    let token = std::fs::read_to_string(server.data_dir().join("pki/token")).expect("token");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(mode)
        .arg(server.port.to_string())
        .arg(token.trim())
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A client that never finishes its request headers loses its connection after the header read
/// timeout (kube-apiserver's 32 s, 1 s here), and well-behaved clients are served all along.
#[test]
fn half_sent_requests_are_cut_off() {
    let server = Server::start_with(&["--request-header-timeout-seconds", "1"]);
    let text = slow_clients(&server, "half-sent");
    let mut words = text.split_whitespace();
    let closed: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let took: f64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(99.0);
    assert_eq!(closed, 20, "{text}");
    assert!(took < 5.0, "{text}");
    assert_eq!(server.kubectl("1.32").run(&["get", "pods"]).code, 0);
}

/// Past `--max-connections`, a new connection waits (its TLS handshake does not complete) until
/// one of the open ones goes.
#[test]
fn connections_are_bounded() {
    // The controllers' watches would hold connections of their own.
    let server = Server::start_with(&["--max-connections", "4", "--disable-controller-manager"]);
    assert_eq!(slow_clients(&server, "bounded"), "held waited served");
}

/// Requests in flight are bounded per kind (one mutating seat here): a create that holds its
/// seat makes the next wait, then get upstream's 429 with `Retry-After`; reads have their own
/// seats; a body announced over the limit is refused before it is sent; a connection with
/// nothing in flight is closed after the idle timeout (kube-apiserver's 90 s, 2 s here).
#[test]
fn requests_in_flight_bodies_and_idle_connections_are_bounded() {
    // Without the controllers: their Lease renewals would take the one mutating seat now and then.
    let server = Server::start_with(&[
        "--max-mutating-requests-inflight",
        "1",
        "--idle-timeout-seconds",
        "2",
        "--disable-controller-manager",
    ]);
    // The controller manager would make it: pods run as it.
    server.kubectl("1.32").run(&["create", "serviceaccount", "default"]).ok();
    assert_eq!(slow_clients(&server, "inflight"), "429 1 waited 200 201");
    let text = slow_clients(&server, "early-413");
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!((words[0], words[2]), ("413", "413"), "{text}");
    assert!(words[1].starts_with("0.") && words[3].starts_with("0."), "answered before any body: {text}");
    let text = slow_clients(&server, "idle");
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words[..2], ["200", "closed"], "{text}");
    assert!(words[2].parse::<u64>().is_ok_and(|s| (1..=4).contains(&s)), "{text}");
}

/// Acknowledged means durable, with group commit and compaction running: rounds of concurrent
/// creates and updates are cut by `kill -9`, and after each restart every acknowledged create
/// is there, the updated object is at least at its last acknowledged value, and the store keeps
/// serving writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_during_group_commit_and_compaction() {
    let mut server = Server::start_with(&["--compaction-interval-seconds", "1"]);
    let mut acknowledged: Vec<String> = Vec::new();
    let mut counter_floor = 0u64;
    {
        let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
        pods.create(&PostParams::default(), &pod("counter")).await.expect("create counter");
    }
    for round in 0..4 {
        let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let highest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(counter_floor));
        let mut writers = Vec::new();
        for w in 0..8 {
            let (pods, acked) = (pods.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("r{round}-w{w}-{i}");
                    if pods.create(&PostParams::default(), &pod(&name)).await.is_err() {
                        return;
                    }
                    acked.lock().expect("lock").push(name);
                }
            }));
        }
        // One object updated over and over: history for the compactor to work on.
        let (counter, high) = (pods.clone(), highest.clone());
        writers.push(tokio::spawn(async move {
            for n in counter_floor + 1.. {
                let patch = json!({"metadata": {"annotations": {"n": n.to_string(), "pad": "x".repeat(4096)}}});
                if counter.patch("counter", &PatchParams::default(), &Patch::Merge(&patch)).await.is_err() {
                    return;
                }
                high.store(n, std::sync::atomic::Ordering::SeqCst);
            }
        }));
        tokio::time::sleep(std::time::Duration::from_millis(1200 + 300 * round)).await;
        server.kill_and_restart();
        for w in writers {
            let _ = w.await;
        }
        acknowledged.extend(acked.lock().expect("lock").drain(..));
        counter_floor = highest.load(std::sync::atomic::Ordering::SeqCst);
        let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
        let names: std::collections::HashSet<String> = pods
            .list(&ListParams::default())
            .await
            .expect("list after restart")
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        let lost: Vec<&String> = acknowledged.iter().filter(|n| !names.contains(*n)).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged creates lost: {lost:?}");
        let counter = pods.get("counter").await.expect("counter");
        let n: u64 = counter.metadata.annotations.and_then(|a| a.get("n").and_then(|n| n.parse().ok())).unwrap_or(0);
        assert!(n >= counter_floor, "round {round}: counter at {n}, acknowledged {counter_floor}");
        counter_floor = n;
    }
    assert!(acknowledged.len() > 100, "only {} creates acknowledged", acknowledged.len());
}

/// A kind of a named group (`coordination.k8s.io/v1`) through kube-rs's typed API, its discovery,
/// a protobuf body as Go clients send it, and the official Python client.
#[tokio::test]
async fn leases_of_a_named_group_through_every_client() {
    use k8s_openapi::api::coordination::v1::Lease;
    let server = Server::start();
    let client = client(&server).await;

    let discovery = kube::discovery::Discovery::new(client.clone()).run().await.expect("discovery");
    let group = discovery.get("coordination.k8s.io").expect("coordination.k8s.io discovered");
    let (ar, caps) = group.recommended_kind("Lease").expect("Lease");
    assert_eq!((ar.plural.as_str(), ar.api_version.as_str()), ("leases", "coordination.k8s.io/v1"));
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "node-a"},
        "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40}}))
    .expect("lease");
    let created = leases.create(&PostParams::default(), &lease).await.expect("create");
    assert_eq!(created.spec.as_ref().and_then(|s| s.lease_duration_seconds), Some(40));
    let renew = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-a"},
        "spec": {"renewTime": "2026-01-01T00:00:00.000001Z"}});
    let applied = leases
        .patch("node-a", &PatchParams::apply("kubelet").force(), &Patch::Apply(&renew))
        .await
        .expect("server-side apply");
    assert_eq!(applied.spec.as_ref().and_then(|s| s.holder_identity.as_deref()), Some("node-a"));
    let all: Api<Lease> = Api::all(client.clone());
    let listed = all.list(&ListParams::default()).await.expect("list across namespaces");
    assert!(listed.items.iter().any(|l| l.metadata.name.as_deref() == Some("node-a")));
    let err = leases.get("nope").await.expect_err("missing");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message == r#"leases.coordination.k8s.io "nope" not found"#),
        "{err:?}"
    );

    // A protobuf body, as client-go's typed clients send it.
    let pb_lease = k8s_pb::api::coordination::v1::Lease {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("from-protobuf".into()),
            ..Default::default()
        }),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: Some("go".into()),
            ..Default::default()
        }),
    };
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some("coordination.k8s.io/v1".into()),
            kind: Some("Lease".into()),
        }),
        raw: Some(prost::Message::encode_to_vec(&pb_lease)),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let body = [b"k8s\0".to_vec(), prost::Message::encode_to_vec(&unknown)].concat();
    let path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    let (code, obj) = raw(&client, "POST", path, "application/vnd.kubernetes.protobuf", body).await;
    assert_eq!((code, &obj["spec"]["holderIdentity"]), (201, &json!("go")), "{obj}");

    let out = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/leases.py"))
        .arg(server.kubeconfig())
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "created coordination.k8s.io/v1 python",
            "read 15",
            "listed ['py-lease']",
            "replaced python-2",
            "patched 1",
            "watched MODIFIED python-2",
            "gone 404 Not Found",
        ]
    );
}

/// Deployments through kube-rs (create, watch the controller's status, the scale subresource) and
/// the official Python client. No node here: the pods stay pending, the controllers still act.
#[tokio::test]
async fn deployments_through_kube_rs_and_the_python_client() {
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    use k8s_openapi::api::autoscaling::v1::Scale;
    let server = Server::start();
    let client = client(&server).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "rs-web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "rs-web"}},
            "template": {"metadata": {"labels": {"app": "rs-web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .expect("deployment");
    deployments.create(&PostParams::default(), &d).await.expect("create");
    let params = WatchParams::default().fields("metadata.name=rs-web").timeout(30);
    let mut events = deployments.watch(&params, "0").await.expect("watch").boxed();
    let mut updated = None;
    while let Some(event) = events.next().await {
        if let Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)) = event {
            let status = d.status.unwrap_or_default();
            if status.updated_replicas == Some(2) {
                updated = status.replicas;
                break;
            }
        }
    }
    assert_eq!(updated, Some(2), "the controller reports the new ReplicaSet's pods");
    let scale: Scale = deployments
        .patch_scale("rs-web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
    assert_eq!(
        deployments.get_scale("rs-web").await.expect("get scale").status.map(|s| s.selector),
        Some(Some("app=rs-web".into()))
    );
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let made = sets.list(&ListParams::default().labels("app=rs-web")).await.expect("list");
    assert_eq!(made.items.len(), 1);
    deployments.delete("rs-web", &DeleteParams::foreground()).await.expect("delete");

    let out = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/deployments.py"))
        .arg(server.kubeconfig())
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "created RollingUpdate 25%",
            "watched MODIFIED 2",
            "scaled 3 app=py-web",
            "read scale 3",
            "replicasets 1 Deployment 1",
            "deleted"
        ]
    );
}
