//! API server benchmark (not a test): cold start, idle RSS, create throughput (1,000 pods from
//! 8 concurrent clients), LIST of 1,000 pods as a Table, and watch fan-out latency (100 watchers).
//! The durable (redb) and in-memory stores run side by side in one run, so their ratio is
//! meaningful on a noisy machine.
//!
//! Run: `cargo bench -p skiff --bench api` (builds the release binary it measures).

#[path = "../tests/common/mod.rs"]
mod common;

use common::Server;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use std::time::{Duration, Instant};

const PODS: usize = 1000;
const WRITERS: usize = 8;
const WATCHERS: usize = 100;

async fn client(server: &Server) -> Client {
    let kc = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("client")
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "yes"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"], "ports": [{"containerPort": 80}]}]}}))
    .expect("pod")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Time from spawning the process to the first authenticated answer.
async fn cold_start(store: &str) -> f64 {
    let start = Instant::now();
    let server = Server::start_with(&["--store", store]);
    let c = client(&server).await;
    loop {
        if c.apiserver_version().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed().as_secs_f64() * 1000.0
}

struct Figures {
    cold_start_ms: f64,
    idle_rss_mib: f64,
    creates_per_s: f64,
    list_table_ms: f64,
    watch_p50_ms: f64,
    watch_p99_ms: f64,
    rss_after_mib: f64,
}

async fn run(store: &str) -> Figures {
    let cold = median(futures::future::join_all((0..5).map(|_| cold_start(store))).await);
    let server = Server::start_with(&["--store", store]);
    let c = client(&server).await;
    c.apiserver_version().await.expect("version");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(server.pid()) as f64 / 1024.0;

    // Create throughput: WRITERS clients, PODS pods in all.
    let start = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let api: Api<Pod> = Api::namespaced(c.clone(), "default");
            tokio::spawn(async move {
                for i in (w..PODS).step_by(WRITERS) {
                    api.create(&PostParams::default(), &pod(&format!("p{i}"))).await.expect("create");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    let creates_per_s = PODS as f64 / start.elapsed().as_secs_f64();

    // LIST of all pods as a Table, as `kubectl get pods` asks.
    let mut list_ms = Vec::new();
    for _ in 0..10 {
        let req = http::Request::builder()
            .uri("/api/v1/namespaces/default/pods?limit=500")
            .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
            .body(Vec::new())
            .expect("request");
        let t = Instant::now();
        let text = c.request_text(req).await.expect("list");
        list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(text.contains("\"kind\":\"Table\""));
    }

    // Watch fan-out: WATCHERS watchers, 10 events, latency from create start to each delivery.
    let api: Api<Pod> = Api::namespaced(c.clone(), "default");
    let rv = api.list_metadata(&Default::default()).await.expect("list").metadata.resource_version.expect("rv");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let api = api.clone();
        let tx = tx.clone();
        let rv = rv.clone();
        watchers.push(tokio::spawn(async move {
            let mut s = api.watch(&WatchParams::default().labels("fanout=yes"), &rv).await.expect("watch").boxed();
            while let Some(Ok(ev)) = s.next().await {
                if let WatchEvent::Added(p) = ev {
                    let _ = tx.send((p.metadata.name.unwrap_or_default(), Instant::now()));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    for i in 0..10 {
        let mut p = pod(&format!("fan{i}"));
        p.metadata.labels = Some([("fanout".to_string(), "yes".to_string())].into());
        let sent = Instant::now();
        api.create(&PostParams::default(), &p).await.expect("create");
        for _ in 0..WATCHERS {
            let (_, at) = rx.recv().await.expect("event");
            latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
        }
    }
    for w in watchers {
        w.abort();
    }
    let rss_after = rss_kib(server.pid()) as f64 / 1024.0;
    Figures {
        cold_start_ms: cold,
        idle_rss_mib: idle_rss,
        creates_per_s,
        list_table_ms: median(list_ms),
        watch_p50_ms: percentile(latencies.clone(), 0.5),
        watch_p99_ms: percentile(latencies, 0.99),
        rss_after_mib: rss_after,
    }
}

#[tokio::main]
async fn main() {
    let redb = run("redb").await;
    let memory = run("memory").await;
    println!("skiff API server benchmark ({PODS} pods, {WRITERS} writers, {WATCHERS} watchers)");
    println!("{:<38} {:>12} {:>12} {:>8}", "figure", "redb", "memory", "ratio");
    let rows = [
        ("cold start to first answer (ms)", redb.cold_start_ms, memory.cold_start_ms),
        ("idle RSS (MiB)", redb.idle_rss_mib, memory.idle_rss_mib),
        ("create throughput (pods/s)", redb.creates_per_s, memory.creates_per_s),
        ("LIST 1000 pods as Table (ms, median)", redb.list_table_ms, memory.list_table_ms),
        ("watch fan-out latency p50 (ms)", redb.watch_p50_ms, memory.watch_p50_ms),
        ("watch fan-out latency p99 (ms)", redb.watch_p99_ms, memory.watch_p99_ms),
        ("RSS after the run (MiB)", redb.rss_after_mib, memory.rss_after_mib),
    ];
    for (name, a, b) in rows {
        println!("{name:<38} {a:>12.1} {b:>12.1} {:>8.2}", a / b);
    }
}
