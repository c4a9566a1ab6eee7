//! One pod's worker: the kubelet's syncPod for a single pod, as a loop over an explicit stage.
//!
//! `Sandbox` (start or re-adopt the shim, address, network, /etc files) → `Containers` (init
//! containers in order, then the app containers: pull, prepare, start, restart by policy with
//! back-off) → `Terminating` (signal, grace period, kill) → torn down and the API object removed.
//! What runs is read back from the pod directory each round (the shim writes it), so a restarted
//! agent carries on from the files. Status is derived and written only when it changes.

use crate::agent::Agent;
use crate::backoff;
use crate::container::{self, Attempt, PrepareError};
use crate::env;
use crate::events::Type::{Normal, Warning};
use crate::pod_dir::{Exited, PodDir, PodMeta, write_json};
use crate::pull::{self, PullDecision};
use crate::sandbox::Sandbox;
use crate::shim::Request;
use crate::status::{self, InitState};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    Pod, PodCondition, PodIP, Secret,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often running containers are checked for exits (the shim records them on disk).
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Sandbox,
    Containers,
}

struct Worker {
    agent: Arc<Agent>,
    pod: Pod,
    uid: String,
    dir: PodDir,
    stage: Stage,
    sandbox: Option<Sandbox>,
    ip: Option<Ipv4Addr>,
    /// Why a container is not running, while it waits (ErrImagePull, CrashLoopBackOff, ...).
    waiting: HashMap<String, (String, String)>,
    /// The image each container runs (`repo@digest`), once resolved.
    image_ids: HashMap<String, String>,
    last_status: Option<serde_json::Value>,
    start_time: Option<Time>,
}

/// Drive one pod until it is deleted. The channel carries the latest Pod (None: gone from the API).
pub async fn run(agent: Arc<Agent>, mut rx: watch::Receiver<Option<Pod>>) {
    let first = rx.borrow_and_update().clone();
    let Some(pod) = first else { return };
    tracing::debug!(pod = ?pod.metadata.name, "pod worker started");
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let dir = PodDir::new(&agent.pods_root(), &uid);
    let start_time = pod.status.as_ref().and_then(|s| s.start_time.clone());
    let mut w = Worker {
        agent,
        pod,
        uid,
        dir,
        stage: Stage::Sandbox,
        sandbox: None,
        ip: None,
        waiting: HashMap::new(),
        image_ids: HashMap::new(),
        last_status: None,
        start_time,
    };
    loop {
        let latest = rx.borrow_and_update().clone();
        match latest {
            Some(pod) => w.pod = pod,
            None => {
                // Gone from the API (force deletion): stop everything now.
                w.kill(Duration::ZERO).await;
                tear_down(&w.agent, &w.dir).await;
                return;
            }
        }
        if w.pod.metadata.deletion_timestamp.is_some() {
            let grace = w.pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0) as u64;
            tracing::debug!(pod = %w.name(), grace, "stopping the pod");
            w.kill(Duration::from_secs(grace)).await;
            tracing::debug!(pod = %w.name(), "pod stopped");
            // Show the stopped containers (`0/1 Terminating`) while the sandbox goes, as upstream.
            w.waiting.clear();
            w.write_status().await;
            tear_down(&w.agent, &w.dir).await;
            tracing::debug!(pod = %w.name(), "pod torn down");
            w.remove_from_api().await;
            tracing::debug!(pod = %w.name(), "pod removed from the API");
            return;
        }
        // A deletion interrupts whatever the round waits for (a pull that hangs, a slow start):
        // the next round stops the pod, and tear-down cleans what the round left half done.
        let deleted = rx.wait_for(|p| p.as_ref().is_none_or(|p| p.metadata.deletion_timestamp.is_some()));
        let next = tokio::select! {
            next = w.sync() => next,
            changed = deleted => if changed.is_err() { return } else { continue },
        };
        w.write_status().await;
        // Sleep until the next sync is due, or the pod's spec or deletion changes. Our own status
        // writes come back through the watch too: they must not cut a back-off short (the
        // kubelet shows ErrImagePull until its next sync, then ImagePullBackOff).
        let due = tokio::time::Instant::now() + next;
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if needs_sync(&w.pod, rx.borrow().as_ref()) {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(due) => break,
            }
        }
    }
}

/// Whether a new version of the pod asks for a sync now: it is gone, being deleted, or its spec
/// changed (not just its status or resourceVersion).
fn needs_sync(current: &Pod, latest: Option<&Pod>) -> bool {
    latest
        .is_none_or(|p| p.metadata.deletion_timestamp != current.metadata.deletion_timestamp || p.spec != current.spec)
}

/// Remove everything a pod left on the node: shim, mounts, veth, address, cgroups, image lease,
/// directory. Safe to repeat.
pub async fn tear_down(agent: &Agent, dir: &PodDir) {
    let uid = dir.root().file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    agent.host_ports.close(&uid);
    if let Some(sandbox) = Sandbox::adopt(dir) {
        sandbox.shutdown().await;
    }
    container::unmount_all(dir);
    if let Ok(net) = crate::net::Net::connect()
        && let Err(e) = net.delete(&Agent::veth_name(&uid)).await
    {
        tracing::warn!(error = %e, pod = %uid, "removing the pod's veth");
    }
    if let Err(e) = agent.ipam.release(&uid) {
        tracing::warn!(error = %e, pod = %uid, "releasing the pod's address");
    }
    container::remove_cgroups(&uid);
    let _ = std::fs::remove_file(agent.lease_file(&uid));
    if let Err(e) = std::fs::remove_dir_all(dir.root())
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, pod = %uid, "removing the pod's directory");
    }
    let mut backoff = agent.backoff.lock().unwrap_or_else(|p| p.into_inner());
    for prefix in ["run", "pull"] {
        backoff.forget_prefix(&format!("{prefix}/{uid}/"));
    }
}

fn should_restart(policy: &str, exit_code: i32, init: bool) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        // An init container that succeeded is done, whatever the policy.
        _ => !(init && exit_code == 0),
    }
}

fn terminated_reason(e: &Exited) -> &'static str {
    if e.start_error.is_some() {
        "StartError"
    } else if e.oom_killed {
        "OOMKilled"
    } else if e.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

fn time(s: &str) -> Option<Time> {
    s.parse::<jiff::Timestamp>().ok().map(|t| Time(t.round(jiff::Unit::Second).unwrap_or(t)))
}

impl Worker {
    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    fn policy(&self) -> String {
        self.pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into())
    }

    fn init_containers(&self) -> Vec<Container> {
        self.pod.spec.as_ref().and_then(|s| s.init_containers.clone()).unwrap_or_default()
    }

    fn containers(&self) -> Vec<Container> {
        self.pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default()
    }

    /// The pod's ephemeral containers, as the containers they run.
    fn ephemeral_containers(&self) -> Vec<Container> {
        let list = self.pod.spec.as_ref().and_then(|s| s.ephemeral_containers.clone()).unwrap_or_default();
        list.iter().filter_map(|e| serde_json::to_value(e).and_then(serde_json::from_value).ok()).collect()
    }

    /// Every container of the pod: init, app and ephemeral ones.
    fn all_containers(&self) -> Vec<Container> {
        let mut all = self.init_containers();
        all.extend(self.containers());
        all.extend(self.ephemeral_containers());
        all
    }

    async fn event(&self, container: Option<&str>, kind: crate::events::Type, reason: &str, message: &str) {
        self.agent.recorder.pod(&self.pod, container, kind, reason, message).await;
    }

    /// One round; returns when the next round is due at the latest.
    async fn sync(&mut self) -> Duration {
        if self.stage == Stage::Sandbox {
            match self.ensure_sandbox().await {
                Ok(()) => self.stage = Stage::Containers,
                Err(e) => {
                    tracing::warn!(pod = %self.name(), error = %e, "creating the pod sandbox");
                    self.event(None, Warning, "FailedCreatePodSandBox", &format!("Failed to create pod sandbox: {e}"))
                        .await;
                    return Duration::from_secs(5);
                }
            }
        } else if !self.sandbox.as_ref().is_some_and(Sandbox::alive) {
            // The shim is gone (killed, or the machine rebooted): what ran is lost; start over.
            self.mark_lost_attempts();
            self.sandbox = None;
            self.stage = Stage::Sandbox;
            return Duration::ZERO;
        }
        let mut next = Duration::from_secs(10);
        for c in self.init_containers().iter() {
            match self.sync_container(c, Role::Init, &mut next).await {
                ContainerOutcome::Succeeded => continue,
                _ => return next,
            }
        }
        for c in self.containers() {
            self.sync_container(&c, Role::App, &mut next).await;
        }
        // Nothing new starts in a pod that has finished.
        let phase = self.pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
        if !matches!(phase, "Succeeded" | "Failed") {
            for c in self.ephemeral_containers() {
                self.sync_container(&c, Role::Ephemeral, &mut next).await;
            }
        }
        next
    }

    /// The container whose processes an ephemeral container joins (`targetContainerName`), and
    /// the pid of its running init: the ephemeral container shares its PID namespace.
    fn target_of(&self, c: &Container) -> Result<Option<i32>, PrepareError> {
        let spec = self.pod.spec.as_ref();
        let Some(target) = spec
            .and_then(|s| s.ephemeral_containers.as_ref())
            .and_then(|e| e.iter().find(|e| e.name == c.name))
            .and_then(|e| e.target_container_name.clone())
            .filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        let running = self.dir.attempts(&target).last().copied().and_then(|a| {
            let started = self.dir.started(&target, a)?;
            self.dir.exited(&target, a).is_none().then_some(started.pid)
        });
        running.map(Some).ok_or_else(|| PrepareError::Create(format!("the target container {target:?} is not running")))
    }

    async fn ensure_sandbox(&mut self) -> Result<(), String> {
        let meta = PodMeta { namespace: self.namespace().into(), name: self.name().into(), uid: self.uid.clone() };
        write_json(&self.dir.meta_file(), &meta).map_err(|e| e.to_string())?;
        if let Some(sandbox) = Sandbox::adopt(&self.dir) {
            self.ip = self.agent.ipam.lookup(&self.uid).map_err(|e| e.to_string())?;
            self.sandbox = Some(sandbox);
            if let Some(ip) = self.ip {
                return self.open_host_ports(ip);
            }
        }
        let sandbox = match self.sandbox.clone() {
            Some(s) => s,
            None => {
                let config = &self.agent.config;
                Sandbox::spawn(&config.shim_exe, &config.runtime_exe, &self.dir, self.name())
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        tracing::debug!(pod = %self.name(), "shim ready");
        self.sandbox = Some(sandbox.clone());
        let ip = self.agent.ipam.allocate(&self.uid).map_err(|e| e.to_string())?;
        let veth = Agent::veth_name(&self.uid);
        let net = crate::net::Net::connect().map_err(|e| e.to_string())?;
        net.delete(&veth).await.map_err(|e| e.to_string())?;
        let netns = std::fs::File::open(sandbox.namespace("net")).map_err(|e| format!("the pod's netns: {e}"))?;
        let subnet = self.agent.config.pod_subnet;
        use std::os::fd::AsFd;
        net.attach_pod(&self.agent.config.bridge, &veth, netns.as_fd(), ip, subnet.prefix, subnet.gateway())
            .await
            .map_err(|e| e.to_string())?;
        container::write_etc_files(&self.dir, self.name(), ip).map_err(|e| format!("writing /etc files: {e}"))?;
        tracing::debug!(pod = %self.name(), %ip, "pod network ready");
        self.ip = Some(ip);
        self.open_host_ports(ip)
    }

    fn open_host_ports(&self, ip: Ipv4Addr) -> Result<(), String> {
        let mappings = crate::hostport::mappings(&self.pod);
        self.agent.host_ports.open(&self.uid, &mappings, ip).map_err(|e| e.to_string())
    }

    /// Attempts that were running when the shim died have no exit record: give them one.
    fn mark_lost_attempts(&self) {
        for c in self.all_containers().iter() {
            if let Some(&a) = self.dir.attempts(&c.name).last()
                && self.dir.started(&c.name, a).is_some()
                && self.dir.exited(&c.name, a).is_none()
            {
                let exited = Exited {
                    exit_code: 255,
                    signal: None,
                    finished_at: crate::pod_dir::now_rfc3339(),
                    oom_killed: false,
                    start_error: None,
                };
                let _ = write_json(&self.dir.attempt(&c.name, a).join("exited.json"), &exited);
            }
        }
    }

    async fn sync_container(&mut self, c: &Container, role: Role, next: &mut Duration) -> ContainerOutcome {
        let attempts = self.dir.attempts(&c.name);
        let latest = attempts.last().copied();
        let next_attempt = match latest {
            None => 0,
            Some(a) => match (self.dir.started(&c.name, a), self.dir.exited(&c.name, a)) {
                (Some(_), None) => {
                    *next = (*next).min(POLL);
                    return ContainerOutcome::Running;
                }
                (_, Some(exited)) => {
                    let restart = match role {
                        // An ephemeral container (`kubectl debug`) runs once.
                        Role::Ephemeral => false,
                        _ => should_restart(&self.policy(), exited.exit_code, role == Role::Init),
                    };
                    // Marked on disk: an agent restart does not count (or announce) an exit twice.
                    let handled = self.dir.attempt(&c.name, a).join("handled");
                    if !handled.exists() {
                        self.on_exit(c, a, &exited, restart).await;
                        let _ = std::fs::write(&handled, b"");
                    }
                    if !restart {
                        return if exited.exit_code == 0 {
                            ContainerOutcome::Succeeded
                        } else {
                            ContainerOutcome::Failed
                        };
                    }
                    let key = format!("run/{}/{}", self.uid, c.name);
                    let remaining =
                        self.agent.backoff.lock().unwrap_or_else(|p| p.into_inner()).remaining(&key, Instant::now());
                    if let Some(wait) = remaining {
                        let delay = self.agent.backoff.lock().unwrap_or_else(|p| p.into_inner()).delay(&key);
                        let msg = format!(
                            "back-off {} restarting failed container={} pod={}_{}({})",
                            pull::go_duration(delay),
                            c.name,
                            self.name(),
                            self.namespace(),
                            self.uid
                        );
                        self.waiting.insert(c.name.clone(), ("CrashLoopBackOff".into(), msg));
                        *next = (*next).min(wait);
                        return ContainerOutcome::Waiting;
                    }
                    container::unmount_attempt(&self.dir, &c.name, a);
                    a + 1
                }
                // Prepared but never started (the agent stopped mid-start): try that attempt again.
                (None, None) => {
                    container::unmount_attempt(&self.dir, &c.name, a);
                    a
                }
            },
        };
        match self.start(c, next_attempt).await {
            Ok(()) => {
                *next = (*next).min(POLL);
                ContainerOutcome::Running
            }
            Err(wait) => {
                *next = (*next).min(wait);
                ContainerOutcome::Waiting
            }
        }
    }

    /// A container attempt ended: count it for the back-off, and tell the user.
    async fn on_exit(&mut self, c: &Container, attempt: u32, exited: &Exited, restart: bool) {
        let key = format!("run/{}/{}", self.uid, c.name);
        let ran_for = self.dir.started(&c.name, attempt).and_then(|s| {
            let started: jiff::Timestamp = s.started_at.parse().ok()?;
            let finished: jiff::Timestamp = exited.finished_at.parse().ok()?;
            Some(finished.duration_since(started).unsigned_abs())
        });
        if restart {
            let mut b = self.agent.backoff.lock().unwrap_or_else(|p| p.into_inner());
            if ran_for.is_some_and(|d| d >= backoff::RESET_AFTER) {
                b.reset(&key);
            }
            b.failed(&key, Instant::now());
        }
        if let Some(err) = &exited.start_error {
            self.event(Some(&c.name), Warning, "Failed", &format!("Error: {err}")).await;
        } else if restart {
            let msg = format!(
                "Back-off restarting failed container {} in pod {}_{}({})",
                c.name,
                self.name(),
                self.namespace(),
                self.uid
            );
            self.event(Some(&c.name), Warning, "BackOff", &msg).await;
        }
    }

    /// Pull if needed, prepare and start `attempt` of `c`. Err: wait this long before trying again.
    async fn start(&mut self, c: &Container, attempt: u32) -> Result<(), Duration> {
        if attempt == 0 && !self.waiting.contains_key(&c.name) {
            // A pull or a start can take a while: say so first (`ContainerCreating`).
            self.write_status().await;
        }
        let image = self.ensure_image(c).await?;
        tracing::debug!(pod = %self.name(), container = %c.name, "image ready");
        let layers = {
            let images = self.agent.images.clone();
            let img = image.clone();
            tokio::task::spawn_blocking(move || images.unpack(&img)).await
        };
        let layers = match layers {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                return Err(self.create_failed(c, PrepareError::Create(format!("unpacking the image: {e}"))).await);
            }
            Err(e) => return Err(self.create_failed(c, PrepareError::Create(e.to_string())).await),
        };
        self.write_lease();
        let Some(sandbox) = self.sandbox.clone() else { return Err(Duration::from_secs(1)) };
        let image_id = self.image_ids.get(&c.name).cloned().unwrap_or_default();
        let _ = crate::pod_dir::write_atomic(&self.dir.attempt(&c.name, attempt).join("image-id"), image_id.as_bytes());
        let image_config = image.config.config().clone().unwrap_or_default();
        let resolved = match self.resolve_env(c).await {
            Ok(r) => r,
            Err(e) => return Err(self.create_failed(c, e).await),
        };
        let target_pid = match self.target_of(c) {
            Ok(p) => p,
            Err(e) => return Err(self.create_failed(c, e).await),
        };
        let image_architecture = image.config.architecture().to_string();
        let prepared = container::prepare(&Attempt {
            dir: &self.dir,
            pod: &self.pod,
            image_architecture: &image_architecture,
            target_pid,
            container: &resolved,
            attempt,
            layers: &layers,
            image_config: &image_config,
            sandbox_pid: sandbox.pid(),
            seccomp: &self.agent.config.seccomp,
        });
        if let Err(e) = prepared {
            container::unmount_attempt(&self.dir, &c.name, attempt);
            let _ = std::fs::remove_dir_all(self.dir.attempt(&c.name, attempt));
            return Err(self.create_failed(c, e).await);
        }
        tracing::debug!(pod = %self.name(), container = %c.name, attempt, "container prepared");
        self.event(Some(&c.name), Normal, "Created", &format!("Created container: {}", c.name)).await;
        let start = Request::Start {
            container: c.name.clone(),
            attempt,
            log: self.agent.config.log_limits,
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
        };
        match sandbox.request(&start).await {
            Ok(()) => {
                tracing::debug!(pod = %self.name(), container = %c.name, attempt, "container started");
                self.waiting.remove(&c.name);
                self.event(Some(&c.name), Normal, "Started", &format!("Started container {}", c.name)).await;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(pod = %self.name(), container = %c.name, error = %e, "starting a container");
                // The shim recorded the failure as an exit: the next round handles it like a crash.
                Err(Duration::ZERO)
            }
        }
    }

    /// `c` with its `envFrom` and `valueFrom` resolved (Secrets read now, as the kubelet does
    /// at each container start): a missing Secret or key is a `CreateContainerConfigError`.
    async fn resolve_env(&mut self, c: &Container) -> Result<Container, PrepareError> {
        let api: Api<Secret> = Api::namespaced(self.agent.config.client.clone(), self.namespace());
        let mut secrets = HashMap::new();
        for name in env::secret_names(c) {
            match api.get_opt(&name).await {
                Ok(Some(s)) => {
                    secrets.insert(name, s);
                }
                Ok(None) => {}
                Err(e) => return Err(PrepareError::Create(format!("reading secret {name:?}: {e}"))),
            }
        }
        let machine = self.agent.machine;
        let sources = env::Sources {
            pod: &self.pod,
            pod_ip: self.ip.map(|ip| ip.to_string()),
            host_ip: machine.node_ip.to_string(),
            secrets: &secrets,
            allocatable_millicores: machine.cpus as i64 * 1000,
            allocatable_memory: (machine.memory_kib as i64).saturating_mul(1024),
        };
        let resolved = env::resolve(c, &sources).map_err(|e| PrepareError::Config(e.to_string()))?;
        for w in &resolved.warnings {
            self.event(None, Warning, "InvalidEnvironmentVariableNames", w).await;
        }
        let mut out = c.clone();
        out.env = Some(resolved.env);
        out.env_from = None;
        Ok(out)
    }

    async fn create_failed(&mut self, c: &Container, e: PrepareError) -> Duration {
        self.event(Some(&c.name), Warning, "Failed", &format!("Error: {e}")).await;
        self.waiting.insert(c.name.clone(), (e.reason().into(), e.to_string()));
        Duration::from_secs(10)
    }

    /// The image for `c` by its pull policy, pulling when the policy says so.
    async fn ensure_image(&mut self, c: &Container) -> Result<skiff_image::Image, Duration> {
        let image_name = c.image.clone().unwrap_or_default();
        let reference = match skiff_image::Reference::parse(&image_name) {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("Failed to apply default image tag {image_name:?}: {e}");
                self.event(Some(&c.name), Warning, "InspectFailed", &msg).await;
                self.waiting.insert(c.name.clone(), ("InvalidImageName".into(), msg));
                return Err(Duration::from_secs(30));
            }
        };
        let policy =
            c.image_pull_policy.clone().unwrap_or_else(|| skiff_core::kinds::default_pull_policy(&image_name).into());
        let local = self.agent.images.image(&reference).ok();
        let image = match pull::decide(&policy, local.is_some()) {
            PullDecision::UseLocal => {
                if !self.image_ids.contains_key(&c.name) {
                    self.event(Some(&c.name), Normal, "Pulled", &pull::already_present(&image_name)).await;
                }
                local.ok_or(Duration::from_secs(1))?
            }
            PullDecision::NeverPullMissing => {
                let msg = pull::never_pull(&image_name);
                self.event(Some(&c.name), Warning, "ErrImageNeverPull", &msg).await;
                self.waiting.insert(c.name.clone(), ("ErrImageNeverPull".into(), msg));
                return Err(Duration::from_secs(10));
            }
            PullDecision::Pull => self.pull(c, &image_name, &policy, &reference, local.is_some()).await?,
        };
        self.image_ids.insert(c.name.clone(), format!("{}@{}", reference.name(), image.manifest_digest));
        Ok(image)
    }

    async fn pull(
        &mut self,
        c: &Container,
        image_name: &str,
        policy: &str,
        reference: &skiff_image::Reference,
        present: bool,
    ) -> Result<skiff_image::Image, Duration> {
        let key = format!("pull/{}/{}", self.uid, c.name);
        let remaining = self.agent.backoff.lock().unwrap_or_else(|p| p.into_inner()).remaining(&key, Instant::now());
        if let Some(wait) = remaining {
            let last = self.waiting.get(&c.name).map(|(_, m)| m.clone()).unwrap_or_default();
            if self.waiting.get(&c.name).is_none_or(|(r, _)| r != "ImagePullBackOff") {
                self.event(Some(&c.name), Normal, "BackOff", &pull::back_off(image_name)).await;
            }
            let last = last
                .strip_prefix("Back-off pulling image")
                .map(|_| last.clone())
                .unwrap_or_else(|| format!("{}: ErrImagePull: {last}", pull::back_off(image_name)));
            self.waiting.insert(c.name.clone(), ("ImagePullBackOff".into(), last));
            return Err(wait);
        }
        self.event(Some(&c.name), Normal, "Pulling", &pull::pulling(image_name)).await;
        let transport = self.pull_transport().await;
        let started = Instant::now();
        let result = {
            let _lease = self.agent.images.writer_lease();
            skiff_image::registry::pull(&self.agent.images, &transport, reference, &skiff_image::registry::Quiet).await
        };
        match result {
            Ok(image) => {
                self.agent.backoff.lock().unwrap_or_else(|p| p.into_inner()).reset(&key);
                let msg = pull::pulled(image_name, started.elapsed(), Duration::ZERO, image.size());
                self.event(Some(&c.name), Normal, "Pulled", &msg).await;
                Ok(image)
            }
            Err(e) => {
                let wait = self.agent.backoff.lock().unwrap_or_else(|p| p.into_inner()).failed(&key, Instant::now());
                let policy = pull::Policy::of(&self.pod, &c.name, image_name, policy);
                let msg = pull::failed(image_name, policy, &e.to_string(), present);
                self.event(Some(&c.name), Warning, "Failed", &msg).await;
                self.event(Some(&c.name), Warning, "Failed", "Error: ErrImagePull").await;
                self.waiting.insert(c.name.clone(), ("ErrImagePull".into(), msg));
                Err(wait)
            }
        }
    }

    /// The node's registry transport with this pod's `imagePullSecrets` in front. A secret that
    /// cannot be read is reported and skipped, as the kubelet does: the pull may still work.
    async fn pull_transport(&mut self) -> skiff_image::registry::Transport {
        let names: Vec<String> = (self.pod.spec.as_ref())
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return self.agent.transport.clone();
        }
        let namespace = self.pod.metadata.namespace.clone().unwrap_or_default();
        let secrets: Api<Secret> = Api::namespaced(self.agent.config.client.clone(), &namespace);
        let mut entries = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            match secrets.get_opt(&name).await {
                Ok(Some(secret)) => {
                    let value = serde_json::to_value(&secret).unwrap_or_default();
                    entries.extend(skiff_core::kinds::docker_auths(&value));
                }
                Ok(None) => missing.push(name),
                Err(e) => {
                    tracing::warn!(error = %e, secret = %name, "reading an image pull secret");
                    missing.push(name);
                }
            }
        }
        if !missing.is_empty() {
            let msg = format!(
                "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                missing.join(", ")
            );
            self.event(None, Warning, "FailedToRetrieveImagePullSecret", &msg).await;
        }
        self.agent.transport.with_pull_secrets(entries)
    }

    /// The image-store lease: the images this pod uses are GC roots while it exists.
    fn write_lease(&self) {
        let digests: HashSet<String> =
            self.image_ids.values().filter_map(|id| id.rsplit_once('@').map(|(_, d)| d.to_string())).collect();
        let lease = serde_json::json!({ "manifests": digests.into_iter().collect::<Vec<_>>() });
        if let Err(e) = write_json(&self.agent.lease_file(&self.uid), &lease) {
            tracing::warn!(error = %e, "writing the image lease");
        }
    }

    /// Stop every container: the stop signal, up to `grace`, then kill.
    async fn kill(&mut self, grace: Duration) {
        let Some(sandbox) = Sandbox::adopt(&self.dir) else { return };
        let running: Vec<Container> = self
            .all_containers()
            .into_iter()
            .filter(|c| self.dir.attempts(&c.name).last().is_some_and(|a| self.dir.exited(&c.name, *a).is_none()))
            .collect();
        if !grace.is_zero() {
            for c in &running {
                self.event(Some(&c.name), Normal, "Killing", &format!("Stopping container {}", c.name)).await;
                let signal = self.stop_signal(c);
                let _ = sandbox.request(&Request::Signal { container: c.name.clone(), signal }).await;
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline
                && running
                    .iter()
                    .any(|c| self.dir.attempts(&c.name).last().is_some_and(|a| self.dir.exited(&c.name, *a).is_none()))
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        tracing::debug!(pod = %self.name(), "containers stopped");
        sandbox.shutdown().await;
    }

    /// The image's STOPSIGNAL, else SIGTERM.
    fn stop_signal(&self, c: &Container) -> i32 {
        let configured = c.image.as_deref().and_then(|i| skiff_image::Reference::parse(i).ok()).and_then(|r| {
            let img = self.agent.images.image(&r).ok()?;
            img.config.config().as_ref()?.stop_signal().clone()
        });
        configured
            .and_then(|s| {
                let s = s.trim().trim_start_matches("SIG").to_string();
                s.parse::<i32>()
                    .ok()
                    .or_else(|| format!("SIG{s}").parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32))
            })
            .unwrap_or(nix::sys::signal::Signal::SIGTERM as i32)
    }

    async fn remove_from_api(&self) {
        let api: Api<Pod> = Api::namespaced(self.agent.config.client.clone(), self.namespace());
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(self.uid.clone()), resource_version: None }),
            ..Default::default()
        };
        match api.delete(self.name(), &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(pod = %self.name(), error = %e, "removing the deleted pod"),
        }
    }

    fn container_status(&self, c: &Container, init: bool, init_done: bool) -> ContainerStatus {
        let attempts = self.dir.attempts(&c.name);
        let terminated = |a: u32| -> Option<ContainerState> {
            let e = self.dir.exited(&c.name, a)?;
            let started = self.dir.started(&c.name, a);
            Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: e.exit_code,
                    signal: e.signal,
                    reason: Some(terminated_reason(&e).into()),
                    message: e.start_error.clone().or_else(|| {
                        let msg = std::fs::read_to_string(self.dir.attempt(&c.name, a).join("termination-log")).ok()?;
                        (!msg.is_empty()).then_some(msg)
                    }),
                    started_at: started.and_then(|s| time(&s.started_at)),
                    finished_at: time(&e.finished_at),
                    container_id: Some(self.container_id(&c.name, a)),
                }),
                ..Default::default()
            })
        };
        let latest = attempts.last().copied();
        let running = latest.and_then(|a| {
            let s = self.dir.started(&c.name, a)?;
            self.dir.exited(&c.name, a).is_none().then(|| ContainerState {
                running: Some(ContainerStateRunning { started_at: time(&s.started_at) }),
                ..Default::default()
            })
        });
        let waiting = |reason: &str, message: Option<String>| ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message }),
            ..Default::default()
        };
        let latest_terminated = latest.and_then(terminated);
        let (state, last_state, restarts) = if let Some(r) = running {
            let prev = latest.and_then(|a| a.checked_sub(1)).and_then(terminated);
            (r, prev, latest.unwrap_or(0))
        } else if let Some((reason, msg)) = self.waiting.get(&c.name) {
            let n = latest.map_or(0, |a| a + u32::from(latest_terminated.is_some()));
            (waiting(reason, Some(msg.clone())), latest_terminated.clone(), n)
        } else if let Some(t) = &latest_terminated {
            // Ended for good, or about to restart: the exit is reported until the next attempt starts,
            // as the kubelet does.
            let prev = latest.and_then(|a| a.checked_sub(1)).and_then(terminated);
            (t.clone(), prev, latest.unwrap_or(0))
        } else {
            let reason = if !init && !init_done { "PodInitializing" } else { "ContainerCreating" };
            (waiting(reason, None), None, 0)
        };
        let is_running = state.running.is_some();
        ContainerStatus {
            name: c.name.clone(),
            // The runtime's (normalized) reference once a container exists; before, the spec's.
            image: latest
                .and_then(|_| skiff_image::Reference::parse(c.image.as_deref()?).ok())
                .map(|r| r.to_string())
                .or_else(|| c.image.clone())
                .unwrap_or_default(),
            image_id: latest
                .and_then(|a| std::fs::read_to_string(self.dir.attempt(&c.name, a).join("image-id")).ok())
                .unwrap_or_default(),
            container_id: latest
                .filter(|a| self.dir.started(&c.name, *a).is_some() || self.dir.exited(&c.name, *a).is_some())
                .map(|a| self.container_id(&c.name, a)),
            ready: is_running || (init && state.terminated.as_ref().is_some_and(|t| t.exit_code == 0)),
            started: Some(is_running),
            restart_count: restarts as i32,
            state: Some(state),
            last_state: Some(last_state.unwrap_or_default()),
            ..Default::default()
        }
    }

    fn container_id(&self, container: &str, attempt: u32) -> String {
        format!("skiff://{}-{}", self.uid, crate::shim::container_id(container, attempt))
    }

    /// Write `status` when anything in it changed.
    async fn write_status(&mut self) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let inits = self.init_containers();
        let mut init_statuses = Vec::new();
        let mut init = InitState::Done;
        for c in &inits {
            let st = self.container_status(c, true, false);
            let succeeded = st.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0);
            if init == InitState::Done && !succeeded {
                let failed_for_good =
                    st.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code != 0)
                        && self.policy() == "Never";
                init = if failed_for_good { InitState::Failed } else { InitState::Running };
            }
            init_statuses.push(st);
        }
        let statuses: Vec<ContainerStatus> =
            self.containers().iter().map(|c| self.container_status(c, false, init == InitState::Done)).collect();
        let ephemeral: Vec<ContainerStatus> =
            self.ephemeral_containers().iter().map(|c| self.container_status(c, false, true)).collect();
        let now = Time(jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()));
        let sandbox_ready = self.stage == Stage::Containers;
        let mut conditions = status::conditions(&spec, &statuses, sandbox_ready, init, &now);
        let old: Vec<PodCondition> = self.pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        for c in conditions.iter_mut() {
            if let Some(o) = old.iter().find(|o| o.type_ == c.type_ && o.status == c.status) {
                c.last_transition_time = o.last_transition_time.clone();
            }
        }
        conditions.extend(old.iter().filter(|o| o.type_ == "PodScheduled").cloned());
        let phase = status::phase(&spec, &statuses, init);
        if self.start_time.is_none() {
            self.start_time = Some(now.clone());
        }
        let host_ip = self.agent.machine.node_ip.to_string();
        let mut value = serde_json::json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": host_ip,
            "hostIPs": [{ "ip": host_ip }],
            "startTime": self.start_time,
            "containerStatuses": statuses,
            "qosClass": qos_class(&spec),
        });
        if !inits.is_empty() {
            value["initContainerStatuses"] = serde_json::to_value(&init_statuses).unwrap_or_default();
        }
        if !ephemeral.is_empty() {
            value["ephemeralContainerStatuses"] = serde_json::to_value(&ephemeral).unwrap_or_default();
        }
        if let Some(ip) = self.ip {
            value["podIP"] = ip.to_string().into();
            value["podIPs"] = serde_json::to_value([PodIP { ip: ip.to_string() }]).unwrap_or_default();
        }
        if self.last_status.as_ref() == Some(&value) {
            return;
        }
        tracing::debug!(pod = %self.name(), phase, status = %value, "writing pod status");
        let api: Api<Pod> = Api::namespaced(self.agent.config.client.clone(), self.namespace());
        // A merge patch replaces lists whole: the status is ours to write.
        match api
            .patch_status(self.name(), &PatchParams::default(), &Patch::Merge(serde_json::json!({ "status": value })))
            .await
        {
            Ok(pod) => {
                self.pod.status = pod.status;
                self.last_status = Some(value);
            }
            Err(e) => tracing::warn!(pod = %self.name(), error = %e, "writing pod status"),
        }
    }
}

/// Which list of the pod a container comes from: it decides how the container restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Init,
    App,
    Ephemeral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerOutcome {
    Running,
    Waiting,
    Succeeded,
    Failed,
}

/// Guaranteed when every container has equal cpu and memory requests and limits, BestEffort when
/// none sets any, Burstable otherwise.
fn qos_class(spec: &k8s_openapi::api::core::v1::PodSpec) -> &'static str {
    let all: Vec<&Container> = spec.containers.iter().chain(spec.init_containers.iter().flatten()).collect();
    let resources = |c: &Container| c.resources.clone().unwrap_or_default();
    if all.iter().all(|c| {
        let r = resources(c);
        r.requests.as_ref().is_none_or(|m| m.is_empty()) && r.limits.as_ref().is_none_or(|m| m.is_empty())
    }) {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        let r = resources(c);
        let limits = r.limits.unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        ["cpu", "memory"]
            .iter()
            .all(|k| limits.contains_key(*k) && requests.get(*k).is_none_or(|q| Some(q) == limits.get(*k)))
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_table() {
        assert!(should_restart("Always", 0, false));
        assert!(should_restart("Always", 1, false));
        assert!(!should_restart("Always", 0, true));
        assert!(should_restart("OnFailure", 2, false));
        assert!(!should_restart("OnFailure", 0, false));
        assert!(!should_restart("Never", 1, false));
    }

    #[test]
    fn terminated_reasons() {
        let e = |code, oom| Exited {
            exit_code: code,
            signal: None,
            finished_at: String::new(),
            oom_killed: oom,
            start_error: None,
        };
        assert_eq!(terminated_reason(&e(0, false)), "Completed");
        assert_eq!(terminated_reason(&e(1, false)), "Error");
        assert_eq!(terminated_reason(&e(137, true)), "OOMKilled");
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
}
