//! The worker's loop driven through its seams' recording fakes: the calls it makes, in order,
//! and the status it writes, for a pod starting, failing pulls, exits under each restart policy,
//! init containers, a missing Secret, deletion, and a lost or re-adopted sandbox. No root, network or API server:
//! the real seams are exercised by the root tests (`crates/skiff-node/tests/`, `skiff`'s
//! `tests/node.rs`).

use super::fakes::{Fake, POD_IP, Script};
use super::*;
use crate::agent::state::AgentConfig;
use serde_json::{Value, json};

const IMAGE: &str = "docker.io/library/busybox:latest";
const UID: &str = "u-1";

/// A pod `web` with `spec`.
fn pod(spec: Value) -> Pod {
    let pod = json!({ "metadata": { "name": "web", "namespace": "default", "uid": UID }, "spec": spec });
    serde_json::from_value(pod).expect("pod")
}

/// A container of image `busybox` that the node has (`IfNotPresent`).
fn container(name: &str) -> Value {
    json!({ "name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent" })
}

/// A pod with one app container `app` and `restartPolicy`.
fn one_container(policy: &str) -> Pod {
    pod(json!({ "containers": [container("app")], "restartPolicy": policy }))
}

/// A worker for `pod` acting through fakes, with its agent's state in a temporary directory.
struct Harness {
    worker: Worker,
    fake: Arc<Fake>,
    _data: tempfile::TempDir,
}

fn harness(pod: Pod, mut script: Script) -> Harness {
    let data = tempfile::tempdir().expect("tempdir");
    // Never reached: every API call goes through the fake.
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().expect("uri"))).expect("client");
    let config = AgentConfig {
        node_name: "node".into(),
        data_dir: data.path().to_path_buf(),
        shim_exe: "/nonexistent".into(),
        runtime_exe: "/nonexistent".into(),
        pod_subnet: crate::net::ipam::Subnet::parse("10.42.0.0/24").expect("subnet"),
        pod_subnet_v6: None,
        bridge: "skiff-test0".into(),
        log_limits: Default::default(),
        outbound_nat: false,
        network_client: client.clone(),
        storage_client: client.clone(),
        local_storage: None,
        client,
        annotations: Default::default(),
        seccomp: crate::seccomp::NodeSeccomp::new(data.path(), false),
        max_pods: 110,
        dns: crate::dns::resolv::ClusterDnsConfig {
            ip: std::net::Ipv4Addr::new(10, 43, 0, 10),
            domain: "cluster.local".into(),
        },
        service_proxy: false,
        socket_lb: false,
        network_policy: false,
        ingress: None,
    };
    let agent = Agent::new(config).expect("agent");
    agent.services.publish(crate::service_view::Snapshot { listed: true, ..Default::default() });
    script.local_images.insert(IMAGE.into());
    let fake = Fake::new(PodDir::new(&agent.pods_root(), UID), script);
    let worker = Worker::new(agent, fake.seams(), Arc::new(pod));
    Harness { worker, fake, _data: data }
}

impl Harness {
    /// One round and the status write that follows it, as `run` does; the calls they made and
    /// when the next round is due.
    async fn round(&mut self) -> (Vec<String>, Duration) {
        let next = self.worker.sync().await;
        self.worker.write_status().await;
        (self.fake.take_calls(), next)
    }

    /// A pod whose containers have been started, with the calls so far forgotten.
    async fn started(pod: Pod) -> Harness {
        let mut h = harness(pod, Script::default());
        h.round().await;
        h
    }

    fn status(&self) -> Value {
        self.fake.status()
    }
}

/// What setting up a new sandbox calls.
const NEW_SANDBOX: [&str; 5] =
    ["sandbox.adopt", "sandbox.spawn", "sandbox.watch", "net.connect", "net.open_host_ports 10.42.0.7"];

/// `run` driving a pod of one container `app`, once it has started it.
struct Running {
    /// The pod's updates, as the agent's watch sends them.
    tx: watch::Sender<Option<Arc<Pod>>>,
    task: tokio::task::JoinHandle<()>,
    pod: Pod,
    fake: Arc<Fake>,
    _data: tempfile::TempDir,
}

async fn running(script: Script) -> Running {
    let Harness { worker, fake, _data } = harness(one_container("Always"), script);
    let (tx, rx) = watch::channel(Some(worker.pod.clone()));
    let task = tokio::spawn(run_with(worker.agent.clone(), fake.seams(), rx));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fake.calls().iter().any(|c| c == "sandbox.start app/0") {
        assert!(Instant::now() < deadline, "not started: {:?}", fake.calls());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fake.take_calls();
    Running { tx, task, pod: Pod::clone(&worker.pod), fake, _data }
}

impl Running {
    /// Send the pod's next version (None: gone from the API) and wait for the worker to end.
    async fn send_and_end(self, pod: Option<Pod>) -> Vec<String> {
        self.tx.send(pod.map(Arc::new)).expect("send");
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("the worker ends").expect("join");
        self.fake.take_calls()
    }
}

/// The container starts among `calls`.
fn starts(calls: &[String]) -> Vec<&str> {
    calls.iter().map(String::as_str).filter(|c| c.starts_with("sandbox.start")).collect()
}

#[tokio::test]
async fn a_pod_starts_sandbox_network_image_rootfs_then_status() {
    let spec = json!({ "containers": [{ "name": "app", "image": "busybox" }] });
    let mut h = harness(pod(spec), Script::default());
    h.fake.script().local_images.clear();
    let (calls, next) = h.round().await;
    let then = [
        // ContainerCreating, before a pull that may take long.
        "api.patch_status web",
        &format!("images.local {IMAGE}"),
        "event Pulling",
        // `busybox` has no tag: `Always` pulls.
        &format!("images.pull {IMAGE}"),
        "event Pulled",
        "images.unpack",
        "images.set_lease pod-u-1 1",
        "rootfs.prepare app/0",
        "event Created",
        "sandbox.start app/0",
        "event Started",
        "api.patch_status web",
    ];
    assert_eq!(calls, [&NEW_SANDBOX[..], &then].concat());
    assert_eq!(next, RESYNC);
    let statuses = h.fake.statuses();
    assert_eq!(statuses[0]["phase"], "Pending");
    assert_eq!(statuses[0]["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
    let status = h.status();
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["podIP"], POD_IP.to_string());
    let app = &status["containerStatuses"][0];
    assert!(app["state"]["running"]["startedAt"].is_string(), "{app}");
    assert_eq!(app["ready"], true);
    assert_eq!(app["restartCount"], 0);
    assert!(app["imageID"].as_str().is_some_and(|id| id.starts_with("docker.io/library/busybox@sha256:")), "{app}");
    // Nothing changed: the next round writes nothing.
    let (calls, _) = h.round().await;
    assert_eq!(calls, Vec::<String>::new());
}

#[tokio::test]
async fn a_failed_pull_is_err_image_pull_then_image_pull_back_off() {
    let spec = json!({ "containers": [{ "name": "app", "image": "busybox" }] });
    let mut h = harness(pod(spec), Script { pull_error: Some("registry says no".into()), ..Default::default() });
    h.fake.script().local_images.clear();
    let (calls, next) = h.round().await;
    // After the sandbox, its network and the ContainerCreating status (as when a pod starts):
    assert_eq!(
        calls[NEW_SANDBOX.len() + 1..],
        [
            format!("images.local {IMAGE}"),
            "event Pulling".into(),
            format!("images.pull {IMAGE}"),
            "event Failed".into(),
            "event Failed".into(),
            "api.patch_status web".into(),
        ]
    );
    // Shown for a moment; then the next round says ImagePullBackOff.
    assert_eq!(next, PULL_ERROR_SHOWN);
    let waiting = &h.status()["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "ErrImagePull");
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Failed to pull image \"busybox\"") && message.contains("registry says no"),
        "{message}"
    );
    assert_eq!(h.fake.events().last().map(|e| e.1.as_str()), Some("Error: ErrImagePull"));

    // The next round, within the back-off: no pull, ImagePullBackOff until the back-off ends.
    let (calls, next) = h.round().await;
    assert_eq!(calls, [format!("images.local {IMAGE}"), "event BackOff".into(), "api.patch_status web".into()]);
    assert!(next > Duration::from_secs(9) && next <= backoff::INITIAL, "{next:?}");
    let waiting = &h.status()["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "ImagePullBackOff");
    assert!(waiting["message"].as_str().is_some_and(|m| m.starts_with("Back-off pulling image \"busybox\"")));
    // Said once: a third round neither pulls nor repeats the event.
    let (calls, _) = h.round().await;
    assert_eq!(calls, [format!("images.local {IMAGE}")]);
}

#[tokio::test]
async fn an_exit_under_each_restart_policy() {
    // (policy, exit code, restarts, the pod's phase when it does not)
    let cases = [
        ("Never", 0, false, "Succeeded"),
        ("Never", 1, false, "Failed"),
        ("OnFailure", 0, false, "Succeeded"),
        ("OnFailure", 1, true, ""),
        ("Always", 0, true, ""),
        ("Always", 1, true, ""),
    ];
    for (policy, code, restarts, phase) in cases {
        let case = format!("{policy}, exit {code}");
        let mut h = Harness::started(one_container(policy)).await;
        h.fake.exit("app", 0, code, None);
        let (calls, next) = h.round().await;
        let app = &h.status()["containerStatuses"][0];
        if !restarts {
            // Recorded and finished: nothing to start, no event.
            assert_eq!(calls, ["api.patch_status web"], "{case}");
            assert_eq!(next, RESYNC, "{case}");
            assert_eq!(h.status()["phase"], phase, "{case}");
            let terminated = &app["state"]["terminated"];
            assert_eq!(terminated["exitCode"], code, "{case}");
            assert_eq!(terminated["reason"], if code == 0 { "Completed" } else { "Error" }, "{case}");
            assert!(h.worker.dir.latest_attempts("app")[0].handled, "{case}");
            continue;
        }
        // Recorded, counted for the back-off, and waiting for it.
        assert_eq!(calls, ["event BackOff", "api.patch_status web"], "{case}");
        assert!(next > Duration::from_secs(9) && next <= backoff::INITIAL, "{case}: {next:?}");
        assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff", "{case}");
        assert_eq!(app["lastState"]["terminated"]["exitCode"], code, "{case}");
        assert_eq!(app["restartCount"], 1, "{case}");
        // Once the back-off has passed: a fresh root filesystem and the next attempt.
        h.worker.agent.backoff.lock().expect("backoff").reset(&format!("run/{UID}/app"));
        let (calls, next) = h.round().await;
        assert_eq!(
            calls,
            [
                "rootfs.unmount app/0",
                &format!("images.local {IMAGE}"),
                "images.unpack",
                "images.set_lease pod-u-1 1",
                "rootfs.prepare app/1",
                "event Created",
                "sandbox.start app/1",
                "event Started",
                "api.patch_status web",
            ],
            "{case}"
        );
        assert_eq!(next, RESYNC, "{case}");
        let app = &h.status()["containerStatuses"][0];
        assert!(app["state"]["running"].is_object(), "{case}: {app}");
        assert_eq!(app["restartCount"], 1, "{case}");
        assert_eq!(app["lastState"]["terminated"]["exitCode"], code, "{case}");
    }
}

#[tokio::test]
async fn init_containers_run_one_at_a_time_before_the_app_containers() {
    let spec = json!({ "initContainers": [container("i1"), container("i2")], "containers": [container("app")] });
    let mut h = harness(pod(spec), Script::default());
    let (calls, _) = h.round().await;
    assert_eq!(starts(&calls), ["sandbox.start i1/0"]);
    let status = h.status();
    assert_eq!(status["phase"], "Pending");
    assert!(status["initContainerStatuses"][0]["state"]["running"].is_object(), "{status}");
    assert_eq!(status["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");

    h.fake.exit("i1", 0, 0, None);
    let (calls, _) = h.round().await;
    assert_eq!(starts(&calls), ["sandbox.start i2/0"]);

    h.fake.exit("i2", 0, 0, None);
    let (calls, _) = h.round().await;
    assert_eq!(starts(&calls), ["sandbox.start app/0"]);
    let status = h.status();
    assert_eq!(status["phase"], "Running");
    for i in 0..2 {
        assert_eq!(status["initContainerStatuses"][i]["state"]["terminated"]["reason"], "Completed", "{status}");
    }
    assert!(status["containerStatuses"][0]["state"]["running"].is_object(), "{status}");
}

/// What tearing a pod down calls (its shim already stopped).
const TEAR_DOWN: [&str; 7] = [
    "net.close_host_ports",
    "sandbox.adopt",
    "rootfs.unmount_all",
    "memory.unmount_all",
    "net.disconnect",
    "sandbox.remove_cgroups",
    "images.remove_lease pod-u-1",
];

/// The calls of a graceful deletion of a pod whose container `app` ran.
fn deletion_calls() -> Vec<String> {
    let stop = [
        "sandbox.adopt",
        "event Killing",
        // The image's STOPSIGNAL, if it has one.
        &format!("images.local {IMAGE}"),
        "sandbox.signal app 15",
        "sandbox.shutdown",
        // The stopped containers, while the pod goes.
        "api.patch_status web",
    ];
    [&stop[..], &TEAR_DOWN, &["api.delete web"]].concat().into_iter().map(String::from).collect()
}

/// `pod` being deleted with a grace period of `grace` seconds.
fn deleted(mut pod: Pod, grace: i64) -> Pod {
    pod.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
    pod.metadata.deletion_grace_period_seconds = Some(grace);
    pod
}

#[tokio::test]
async fn deletion_signals_waits_kills_tears_down_and_removes_the_object() {
    let mut h = Harness::started(one_container("Always")).await;
    h.fake.script().obey_signals = true;
    h.worker.pod = Arc::new(deleted(Pod::clone(&h.worker.pod), 30));
    let began = Instant::now();
    h.worker.delete().await;
    // The container stopped on SIGTERM: no need to wait out the grace period.
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(h.fake.take_calls(), deletion_calls());
    let terminated = &h.status()["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 143);
    assert_eq!(terminated["signal"], 15);
    assert!(!h.worker.dir.root().exists());
}

#[tokio::test]
async fn a_container_that_ignores_its_stop_signal_is_killed_after_the_grace_period() {
    let mut h = Harness::started(one_container("Always")).await;
    h.worker.pod = Arc::new(deleted(Pod::clone(&h.worker.pod), 1));
    let began = Instant::now();
    h.worker.delete().await;
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert_eq!(h.fake.take_calls(), deletion_calls());
    assert_eq!(h.status()["containerStatuses"][0]["state"]["terminated"]["exitCode"], 137);
}

#[tokio::test]
async fn the_loop_starts_a_pod_then_deletes_it_when_asked() {
    let r = running(Script { obey_signals: true, ..Default::default() }).await;
    let pod = deleted(r.pod.clone(), 30);
    let calls = r.send_and_end(Some(pod)).await;
    // Anything the round still did first (a status write) comes before the deletion.
    let from = calls.iter().position(|c| c == "event Killing").map_or(0, |i| i - 1);
    assert_eq!(calls[from..], deletion_calls());
}

impl Running {
    /// Wait until the worker has made `call`, long before its next resync (a minute) would have.
    async fn wait_for_call(&self, call: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.fake.calls().iter().any(|c| c == call) {
            assert!(Instant::now() < deadline, "no {call:?} before the resync: {:?}", self.fake.calls());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn the_loop_hears_of_exits_and_of_a_lost_shim_from_the_shim_not_by_polling() {
    let r = running(Script::default()).await;
    // The shim records an exit and tells the worker's watch: the back-off starts at once.
    r.fake.exit("app", 0, 1, None);
    r.wait_for_call("event BackOff").await;
    r.fake.take_calls();
    // The shim dies: its watch ends, and the worker recovers the sandbox at once.
    r.fake.lose_sandbox();
    r.wait_for_call("sandbox.spawn").await;
    r.send_and_end(None).await;
}

#[tokio::test]
async fn a_force_deleted_pod_is_killed_and_torn_down_without_an_api_call() {
    let calls = running(Script::default()).await.send_and_end(None).await;
    // No stop signal, no status, no API call: the object is gone already.
    let from = calls.iter().position(|c| c == "sandbox.shutdown").expect("shut down");
    assert_eq!(calls[from - 1..], [&["sandbox.adopt", "sandbox.shutdown"][..], &TEAR_DOWN].concat());
}

#[tokio::test]
async fn a_lost_sandbox_is_recovered_and_its_containers_restarted() {
    let mut h = Harness::started(one_container("Always")).await;
    // The shim died (killed, or the machine rebooted) while `app` ran.
    h.fake.lose_sandbox();
    let next = h.worker.sync().await;
    assert_eq!(next, Duration::ZERO);
    assert_eq!(h.fake.take_calls(), Vec::<String>::new());
    let lost = h.worker.dir.exited("app", 0).expect("the lost attempt has an exit");
    assert_eq!(lost.exit_code, 255);

    let (calls, _) = h.round().await;
    // A new sandbox; the lost attempt counts as a crash.
    assert_eq!(calls, [&NEW_SANDBOX[..], &["event BackOff", "api.patch_status web"]].concat());
    let app = &h.status()["containerStatuses"][0];
    assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(app["lastState"]["terminated"]["exitCode"], 255);
    assert_eq!(app["restartCount"], 1);
}

#[tokio::test]
async fn a_running_sandbox_is_re_adopted_after_an_agent_restart() {
    let script = Script { shim_running: true, address: Some(Ipv4Addr::new(10, 42, 0, 9)), ..Default::default() };
    let mut h = harness(one_container("Always"), script);
    let started = crate::pod_dir::Started { pid: 77, started_at: crate::pod_dir::now_rfc3339() };
    h.worker.dir.write_started("app", 0, &started).expect("started");
    let (calls, next) = h.round().await;
    assert_eq!(
        calls,
        ["sandbox.adopt", "sandbox.watch", "net.address", "net.open_host_ports 10.42.0.9", "api.patch_status web"]
    );
    assert_eq!(next, RESYNC);
    let status = h.status();
    assert_eq!(status["podIP"], "10.42.0.9");
    assert!(status["containerStatuses"][0]["state"]["running"].is_object(), "{status}");
    // The agent died between the network and the pod's files: they are written on adoption.
    let hosts = std::fs::read_to_string(h.worker.dir.etc().join("hosts")).expect("hosts written");
    assert!(hosts.contains("10.42.0.9\tweb"), "{hosts}");
}

#[tokio::test]
async fn a_missing_secret_is_create_container_config_error_until_it_exists() {
    let mut app = container("app");
    app["env"] =
        json!([{ "name": "PASSWORD", "valueFrom": { "secretKeyRef": { "name": "creds", "key": "password" } } }]);
    let mut h = harness(pod(json!({ "containers": [app] })), Script::default());
    let (calls, next) = h.round().await;
    // Read at the start, before anything is mounted; nothing is.
    let from = calls.iter().position(|c| c == "images.set_lease pod-u-1 1").expect("the image") + 1;
    assert_eq!(calls[from..], ["api.secret creds", "event Failed", "api.patch_status web"]);
    assert_eq!(next, Duration::from_secs(10));
    let waiting = &h.status()["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "CreateContainerConfigError");
    assert_eq!(waiting["message"], "secret \"creds\" not found");

    let secret = json!({ "metadata": { "name": "creds" }, "data": { "password": "aHVudGVyMg==" } });
    h.fake.script().secrets.insert("creds".into(), serde_json::from_value(secret).expect("secret"));
    let (calls, _) = h.round().await;
    assert_eq!(starts(&calls), ["sandbox.start app/0"]);
    assert!(calls.contains(&"rootfs.prepare app/0".to_string()), "{calls:?}");
}

/// A pod whose container `app` mounts ConfigMap `cfg` and Secret `creds` as volumes.
fn with_volumes() -> Pod {
    let mut app = container("app");
    app["volumeMounts"] =
        json!([{ "name": "config", "mountPath": "/etc/app" }, { "name": "creds", "mountPath": "/creds" }]);
    pod(json!({ "containers": [app], "volumes": [
        { "name": "config", "configMap": { "name": "cfg" } },
        { "name": "creds", "secret": { "secretName": "creds" } }
    ]}))
}

fn config_map(data: Value) -> k8s_openapi::api::core::v1::ConfigMap {
    serde_json::from_value(json!({ "metadata": { "name": "cfg" }, "data": data })).expect("configmap")
}

#[tokio::test]
async fn volumes_wait_for_their_objects_then_follow_their_changes() {
    let mut h = harness(with_volumes(), Script::default());
    let secret = json!({ "metadata": { "name": "creds" }, "data": { "password": "aHVudGVyMg==" } });
    h.fake.script().secrets.insert("creds".into(), serde_json::from_value(secret).expect("secret"));
    // The ConfigMap is missing: FailedMount, and nothing starts (not even the sandbox).
    let (calls, next) = h.round().await;
    assert_eq!(
        calls[..5],
        [
            "api.track [secret/creds configmap/cfg]",
            "api.secret creds",
            "api.config_map cfg",
            "event FailedMount",
            "api.patch_status web"
        ]
    );
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert_eq!(next, Duration::from_millis(500), "the kubelet's first volume back-off");
    let events = h.fake.events();
    assert_eq!(events[0].1, "MountVolume.SetUp failed for volume \"config\" : configmap \"cfg\" not found");
    let waiting = &h.status()["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "ContainerCreating");

    // It appears: the Secret's volume gets its tmpfs, both are written, the pod starts.
    h.fake.script().config_maps.insert("cfg".into(), config_map(json!({ "mode": "fast" })));
    let (calls, _) = h.round().await;
    assert_eq!(calls[..4], ["api.secret creds", "api.config_map cfg", "memory.mount creds", "sandbox.adopt"]);
    assert_eq!(starts(&calls), ["sandbox.start app/0"]);
    let config = volumes::dir(&h.worker.dir, "config");
    assert_eq!(std::fs::read_to_string(config.join("mode")).expect("mode"), "fast");
    let creds = volumes::dir(&h.worker.dir, "creds");
    assert_eq!(std::fs::read_to_string(creds.join("password")).expect("password"), "hunter2");

    // A change to the ConfigMap is written on the next round (its watch wakes the worker); a
    // ConfigMap deleted later keeps the files it had, and the pod runs on.
    h.fake.script().config_maps.insert("cfg".into(), config_map(json!({ "mode": "slow" })));
    h.worker.objects_changed();
    h.round().await;
    assert_eq!(std::fs::read_to_string(config.join("mode")).expect("mode"), "slow");
    h.fake.script().config_maps.clear();
    h.worker.objects_changed();
    let (calls, next) = h.round().await;
    assert!(calls.contains(&"event FailedMount".to_string()), "{calls:?}");
    assert_eq!(next, RESYNC);
    assert_eq!(std::fs::read_to_string(config.join("mode")).expect("mode"), "slow");
}

#[tokio::test]
async fn the_loop_rewrites_volumes_when_a_tracked_object_changes_and_untracks_on_deletion() {
    let Harness { worker, fake, _data } = harness(with_volumes(), Script::default());
    let secret = json!({ "metadata": { "name": "creds" }, "data": {} });
    fake.script().secrets.insert("creds".into(), serde_json::from_value(secret).expect("secret"));
    fake.script().config_maps.insert("cfg".into(), config_map(json!({ "mode": "fast" })));
    let config = volumes::dir(&worker.dir, "config");
    let (tx, rx) = watch::channel(Some(worker.pod.clone()));
    let task = tokio::spawn(run_with(worker.agent.clone(), fake.seams(), rx));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fake.calls().iter().any(|c| c == "sandbox.start app/0") {
        assert!(Instant::now() < deadline, "not started: {:?}", fake.calls());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fake.script().config_maps.insert("cfg".into(), config_map(json!({ "mode": "slow" })));
    fake.object_changed();
    while std::fs::read_to_string(config.join("mode")).ok().as_deref() != Some("slow") {
        assert!(Instant::now() < deadline, "not rewritten: {:?}", fake.calls());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tx.send(None).expect("send");
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the worker ends").expect("join");
    let calls = fake.take_calls();
    let untrack = calls.iter().position(|c| c == "api.track []").expect("untracked");
    assert!(untrack < calls.iter().position(|c| c == "memory.unmount_all").expect("unmounted"), "{calls:?}");
}

/// A pod as the ServiceAccount admission leaves it: the `kube-api-access` volume in its container.
fn with_api_access() -> Pod {
    let mut app = container("app");
    app["volumeMounts"] = json!([{ "name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true }]);
    pod(
        json!({ "serviceAccountName": "robot", "containers": [app], "volumes": [{ "name": "kube-api-access-x", "projected": {
        "defaultMode": 0o644, "sources": [
            { "serviceAccountToken": { "path": "token", "expirationSeconds": 3607 } },
            { "configMap": { "name": "kube-root-ca.crt", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
            { "downwardAPI": { "items": [{ "path": "namespace", "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" } }] } }
        ]}}]}),
    )
}

#[tokio::test]
async fn the_token_is_asked_bound_to_the_pod_written_and_refreshed_when_due() {
    let mut h = harness(with_api_access(), Script::default());
    let ca = json!({ "metadata": { "name": "kube-root-ca.crt" }, "data": { "ca.crt": "PEM" } });
    h.fake.script().config_maps.insert("kube-root-ca.crt".into(), serde_json::from_value(ca).expect("configmap"));
    h.fake.script().token_error = Some("serviceaccounts \"robot\" not found".into());
    let (calls, next) = h.round().await;
    assert!(calls.contains(&"api.token robot [] 3607".to_string()), "{calls:?}");
    assert_eq!(next, Duration::from_millis(500));
    let (_, next) = h.round().await;
    assert_eq!(next, Duration::from_secs(1), "doubled");
    assert_eq!(
        h.fake.events()[0].1,
        "MountVolume.SetUp failed for volume \"kube-api-access-x\" : failed to fetch token: serviceaccounts \"robot\" not found"
    );
    // The account appears: the token, the CA and the namespace are written; the pod starts.
    h.fake.script().token_error = None;
    let (calls, _) = h.round().await;
    assert_eq!(starts(&calls), ["sandbox.start app/0"]);
    let dir = volumes::dir(&h.worker.dir, "kube-api-access-x");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect(f);
    assert_eq!((read("token"), read("ca.crt"), read("namespace")), ("token-1".into(), "PEM".into(), "default".into()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("token")).expect("token").permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    // Kept while good: a resync asks nothing.
    h.worker.objects_changed();
    let (calls, _) = h.round().await;
    assert!(!calls.iter().any(|c| c.starts_with("api.token")), "{calls:?}");
    // Past 80% of its life: asked again and rewritten; a failed refresh keeps the old one.
    let key = (String::new(), 3607);
    h.worker.tokens.get_mut(&key).expect("cached").expires = jiff::Timestamp::now().as_second() + 60;
    assert!(h.worker.volumes_due());
    h.fake.script().token_error = Some("the API is away".into());
    let (calls, _) = h.round().await;
    assert!(calls.contains(&"api.token robot [] 3607".to_string()), "{calls:?}");
    assert!(!calls.contains(&"event FailedMount".to_string()), "{calls:?}");
    assert_eq!(read("token"), "token-1");
    h.fake.script().token_error = None;
    h.round().await;
    assert_eq!(read("token"), "token-2");
}

#[test]
fn qos_classes() {
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let with = |limits: &[(&str, &str)]| PodSpec {
        containers: vec![Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                limits: Some(limits.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(qos_class(&with(&[])), "BestEffort");
    assert_eq!(qos_class(&with(&[("memory", "64Mi")])), "Burstable");
    assert_eq!(qos_class(&with(&[("memory", "64Mi"), ("cpu", "1")])), "Guaranteed");
}

#[tokio::test]
async fn readiness_probes_decide_ready_and_a_failed_liveness_probe_restarts_the_container() {
    use crate::agent::probe::{Kind, Outcome};
    let mut app = container("app");
    app["readinessProbe"] = json!({ "httpGet": { "port": 80 }, "periodSeconds": 1 });
    app["livenessProbe"] = json!({ "tcpSocket": { "port": 80 }, "periodSeconds": 1, "failureThreshold": 1 });
    let spec = json!({ "containers": [app], "terminationGracePeriodSeconds": 5 });
    let mut h = harness(pod(spec), Script { obey_signals: true, ..Default::default() });
    let unready = Outcome::Failure("HTTP probe failed with statuscode: 503".into());
    h.fake.script().probes.insert(("app".into(), Kind::Readiness), unready);
    h.round().await;
    let ready = |h: &Harness| {
        let s = h.status();
        let condition = s["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned());
        (s["containerStatuses"][0]["ready"].clone(), condition.map(|c| c["status"].clone()).unwrap_or_default())
    };
    assert_eq!(ready(&h), (json!(false), json!("False")), "not ready before its first probe");

    let (calls, next) = h.round().await;
    assert!(calls.contains(&"probe app Liveness".into()) && calls.contains(&"probe app Readiness".into()), "{calls:?}");
    assert!(next <= Duration::from_secs(1), "{next:?}");
    let events = h.fake.events();
    assert!(
        events.contains(&("Unhealthy".into(), "Readiness probe failed: HTTP probe failed with statuscode: 503".into()))
    );
    assert_eq!(ready(&h), (json!(false), json!("False")));

    // Readiness recovers: ready, and the pod's Ready condition with it.
    h.fake.script().probes.clear();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.round().await;
    assert_eq!(ready(&h), (json!(true), json!("True")));

    // Liveness fails (threshold 1): Unhealthy, then the container is stopped and restarts.
    let refused = Outcome::Failure("dial tcp 10.42.0.7:80: connect: connection refused".into());
    h.fake.script().probes.insert(("app".into(), Kind::Liveness), refused);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.round().await;
    let events = h.fake.events();
    assert!(events.contains(&(
        "Unhealthy".into(),
        "Liveness probe failed: dial tcp 10.42.0.7:80: connect: connection refused".into()
    )));
    let (calls, _) = h.round().await;
    let at = |call: &str| calls.iter().position(|c| c == call);
    assert!(at("event Killing").is_some_and(|k| at("sandbox.signal app 15").is_some_and(|s| k < s)), "{calls:?}");
    let killing = h.fake.events().into_iter().find(|(r, _)| r == "Killing").map(|(_, m)| m);
    assert_eq!(killing.as_deref(), Some("Container app failed liveness probe, will be restarted"));
    let exited = h.worker.dir.exited("app", 0).expect("stopped");
    assert_eq!(exited.exit_code, 143);
    h.fake.script().probes.clear();
    // The exit is recorded (a crash, for the back-off); once that has passed, the next attempt.
    let (calls, _) = h.round().await;
    assert!(calls.contains(&"event BackOff".into()), "{calls:?}");
    h.worker.agent.backoff.lock().expect("backoff").reset(&format!("run/{UID}/app"));
    let (calls, _) = h.round().await;
    assert!(starts(&calls).contains(&"sandbox.start app/1"), "{calls:?}");
    assert_eq!(h.status()["containerStatuses"][0]["restartCount"], 1);
    assert_eq!(ready(&h), (json!(false), json!("False")), "a new attempt is not ready until probed");
}

/// A pod whose container `app` has `lifecycle`.
fn with_lifecycle(lifecycle: Value) -> Pod {
    let mut app = container("app");
    app["lifecycle"] = lifecycle;
    pod(json!({ "containers": [app], "terminationGracePeriodSeconds": 3 }))
}

#[tokio::test]
async fn a_pre_stop_hook_runs_before_the_stop_signal_and_a_failing_one_is_an_event() {
    let mut h = Harness::started(with_lifecycle(json!({ "preStop": { "exec": { "command": ["drain"] } } }))).await;
    h.fake.script().obey_signals = true;
    h.fake.script().hooks.insert("drain".into(), crate::agent::probe::Outcome::Failure("error: boom".into()));
    h.worker.pod = Arc::new(deleted(Pod::clone(&h.worker.pod), 30));
    h.worker.delete().await;
    let calls = h.fake.take_calls();
    let at = |call: &str| calls.iter().position(|c| c == call).unwrap_or_else(|| panic!("no {call}: {calls:?}"));
    assert!(at("event Killing") < at("hook app drain"));
    assert!(at("hook app drain") < at("event FailedPreStopHook"));
    assert!(at("event FailedPreStopHook") < at("sandbox.signal app 15"));
    let failed = h.fake.events().into_iter().find(|(r, _)| r == "FailedPreStopHook").map(|(_, m)| m);
    assert_eq!(
        failed.as_deref(),
        Some(
            "Exec lifecycle hook ([drain]) for Container \"app\" in Pod \"web_default(u-1)\" failed - error: boom, message: \"\""
        )
    );
}

#[tokio::test]
async fn a_failing_post_start_hook_stops_the_container() {
    let mut h =
        harness(with_lifecycle(json!({ "postStart": { "exec": { "command": ["setup"] } } })), Script::default());
    h.fake.script().obey_signals = true;
    h.fake.script().hooks.insert("setup".into(), crate::agent::probe::Outcome::Failure("error: no".into()));
    let (calls, _) = h.round().await;
    let at = |call: &str| calls.iter().position(|c| c == call).unwrap_or_else(|| panic!("no {call}: {calls:?}"));
    assert!(at("sandbox.start app/0") < at("hook app setup"));
    assert!(at("hook app setup") < at("event FailedPostStartHook"));
    assert!(at("event FailedPostStartHook") < at("sandbox.signal app 15"));
    assert_eq!(h.worker.dir.exited("app", 0).map(|e| e.exit_code), Some(143));
}

#[test]
fn volume_back_off_doubles_up_to_the_kubelets_cap() {
    let delays: Vec<u64> = (1..=10).map(|n| u64::try_from(mount_retry(n).as_millis()).expect("ms")).collect();
    assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 122000, 122000]);
}
