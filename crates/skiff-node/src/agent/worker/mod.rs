//! One pod's worker: the kubelet's syncPod for a single pod.
//!
//! Each round observes the pod directory once (a [`PodSnapshot`]: the shim writes what runs), asks
//! [`plan`] what to do and carries out its [`Action`]s: the sandbox (start or re-adopt the shim,
//! address, network, /etc files), then the containers (pull, prepare, start, record exits for the
//! back-off). Deletion stops the containers (signal, grace period, kill), tears the pod down and
//! removes the API object. A restarted agent carries on from the files. Status is derived and
//! written only when it changes. Everything the loop does to the machine or the API server goes
//! through [`seams`], so `tests` drive it with recording fakes.

#[cfg(test)]
mod fakes;
mod plan;
mod report;
mod seams;

use crate::agent::backoff;
use crate::agent::container::{self, Attempt, PrepareError};
use crate::agent::env;
use crate::agent::probe::{self, ContainerProbes};
use crate::agent::pull::{self, PullDecision};
use crate::agent::sandbox::Exits;
use crate::agent::sandbox::Sandbox;
use crate::agent::state::Agent;
use crate::agent::volumes;
use crate::agent::watched::Watched;
use crate::pod_dir::{AttemptRecord, Exited, PodDir, PodMeta};
use crate::shim::Request;
use crate::status::{self, InitState, Waiting, WaitingReason};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition, PodIP};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use plan::{Action, ContainerStep, Containers, PodSnapshot, RestartBackOff, RestartPolicy, Role, SandboxState};
use seams::Seams;
use skiff_client::events::Type::{Normal, Warning};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// Why a pod's sandbox could not be set up: the text of its `FailedCreatePodSandBox` event.
#[derive(Debug, thiserror::Error)]
enum SandboxSetUpError {
    #[error(transparent)]
    Meta(std::io::Error),
    #[error(transparent)]
    Shim(#[from] crate::agent::sandbox::SandboxError),
    #[error(transparent)]
    Network(#[from] seams::NetworkError),
    #[error("writing /etc files: {0}")]
    EtcFiles(#[source] std::io::Error),
}

/// How often running containers are checked for exits (the shim records them on disk) when
/// the shim cannot tell us of them (one started by an older agent, without `Watch`).
const POLL: Duration = Duration::from_millis(250);

/// How often a pod whose shim tells us of its exits is looked at anyway (the kubelet's
/// `--sync-frequency`).
const RESYNC: Duration = Duration::from_secs(60);

struct Worker {
    /// The configuration, the machine's facts and the back-off clock the workers share.
    agent: Arc<Agent>,
    /// What the worker acts through.
    os: Seams,
    /// The latest version from the API (shared with the agent's channel until this worker
    /// takes a status it wrote).
    pod: Arc<Pod>,
    uid: String,
    dir: PodDir,
    /// The shim, once started or adopted (kept across a failed network set-up, to reuse).
    sandbox: Option<Sandbox>,
    /// The shim's exit notifications (its end: the shim is gone), while it sends them.
    exits: Option<Exits>,
    /// The sandbox's network and files are set up: containers may start.
    ready: bool,
    ip: Option<Ipv4Addr>,
    /// Why a container is not running, while it waits (ErrImagePull, CrashLoopBackOff, ...).
    waiting: HashMap<String, Waiting>,
    /// The image each container runs (`repo@digest`), once resolved.
    image_ids: HashMap<String, String>,
    /// The status last written, serialized (compact: it is kept for every pod).
    last_status: Option<Vec<u8>>,
    start_time: Option<Time>,
    /// Woken when an object the pod's volumes read changes (see `PodApi::track`).
    wake: Arc<Notify>,
    /// What `track` was last given.
    tracked: BTreeSet<Watched>,
    /// The probes of each container's current attempt.
    probes: HashMap<String, ContainerProbes>,
    /// Every volume has been written once: containers may start. A later failure to update one
    /// keeps its old files (as the kubelet does) rather than stop the pod.
    volumes_ready: bool,
    /// When the volumes were last written (or tried); an object they read changed since.
    volumes_synced: Option<Instant>,
    volumes_changed: bool,
    /// Failures in a row to set the volumes up, for the back-off.
    mount_failures: u32,
    /// The service-account tokens the pod's projections hold, by audience and lifetime.
    tokens: HashMap<volumes::tokens::Key, volumes::tokens::Issued>,
}

/// A volume that could not be set up: the kubelet's `FailedMount` text.
#[derive(Debug, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume {volume:?} : {message}")]
struct MountError {
    volume: String,
    message: String,
}

/// The grace a container gets for its stop signal after a preStop hook that took (nearly) all of
/// the grace period, as the kubelet gives.
const MIN_GRACE_AFTER_PRE_STOP: Duration = Duration::from_secs(2);

/// How long a postStart hook may take (the kubelet sets none; this keeps a hung one from holding
/// the pod's worker for ever).
const POST_START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a failed pull shows as ErrImagePull before the next round turns it into
/// ImagePullBackOff for the rest of the back-off. The kubelet's next sync after an error comes
/// 10-15 s later; 8 s keeps ErrImagePull on screen as long as users see it there while the first
/// (10 s) back-off still ends in a glimpse of ImagePullBackOff.
const PULL_ERROR_SHOWN: Duration = Duration::from_secs(8);

/// How soon a pod whose volumes could not be set up the `failures`th time running tries again:
/// the kubelet's volume back-off (0.5 s, doubling, at most 2 min 2 s), so a claim that is bound
/// a moment after its pod is scheduled costs a moment; sooner if what they read changes (its
/// watch wakes the worker).
fn mount_retry(failures: u32) -> Duration {
    let doubled = 500_u64 << failures.saturating_sub(1).min(8);
    Duration::from_millis(doubled.min(122_000))
}
/// How long a container start waits for the node to have listed the Services (its service
/// link variables) after the agent started.
const SERVICES_LISTED: Duration = Duration::from_secs(10);

/// Drive one pod until it is deleted. The channel carries the latest Pod (None: gone from the API).
pub async fn run(agent: Arc<Agent>, rx: watch::Receiver<Option<Arc<Pod>>>) {
    let os = Seams::real(&agent);
    run_with(agent, os, rx).await
}

/// [`run`], acting through `os`.
async fn run_with(agent: Arc<Agent>, os: Seams, mut rx: watch::Receiver<Option<Arc<Pod>>>) {
    let first = rx.borrow_and_update().clone();
    let Some(pod) = first else { return };
    tracing::debug!(pod = ?pod.metadata.name, "pod worker started");
    let mut w = Worker::new(agent, os, pod);
    loop {
        let latest = rx.borrow_and_update().clone();
        match latest {
            Some(pod) => w.pod = pod,
            None => {
                // Gone from the API (force deletion): stop everything now.
                Box::pin(w.kill(Duration::ZERO)).await;
                w.untrack();
                Box::pin(tear_down_with(&w.agent, &w.os, &w.dir)).await;
                return;
            }
        }
        if w.pod.metadata.deletion_timestamp.is_some() {
            Box::pin(w.delete()).await;
            return;
        }
        // A deletion interrupts whatever the round waits for (a pull that hangs, a slow start):
        // the next round stops the pod, and tear-down cleans what the round left half done.
        let deleted = rx.wait_for(|p| p.as_ref().is_none_or(|p| p.metadata.deletion_timestamp.is_some()));
        // The rounds' futures are boxed: this task lives as long as the pod, and unboxed it would
        // hold room for the deepest of them (~25 KB) all that time.
        let next = tokio::select! {
            next = Box::pin(w.sync()) => next,
            changed = deleted => if changed.is_err() { return } else { continue },
        };
        Box::pin(w.write_status()).await;
        // Sleep until the next sync is due, a container exits (or the shim goes), or the pod's
        // spec or deletion changes. Our own status writes come back through the watch too: they
        // must not cut a back-off short (the kubelet shows ErrImagePull until its next sync,
        // then ImagePullBackOff).
        let due = tokio::time::Instant::now() + next;
        let wake = w.wake.clone();
        loop {
            tokio::select! {
                _ = wake.notified() => {
                    w.objects_changed();
                    // Volumes already set up are rewritten where they are, and the containers'
                    // next round stays when it was due: every pod reads kube-root-ca.crt, whose
                    // watch speaks up once listed, and a round now would cut an ErrImagePull short.
                    if !w.volumes_ready || w.finished() {
                        break;
                    }
                    Box::pin(w.refresh_volumes()).await;
                }
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if needs_sync(&w.pod, rx.borrow().as_deref()) {
                        break;
                    }
                }
                exit = next_exit(&mut w.exits) => {
                    if exit.is_none() {
                        w.exits = None;
                    }
                    break;
                }
                _ = tokio::time::sleep_until(due) => break,
            }
        }
    }
}

/// How soon after its start a container's first probe runs, if it has any.
fn first_probe_in(c: &Container) -> Option<Duration> {
    let delay =
        |p: &k8s_openapi::api::core::v1::Probe| Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64);
    match &c.startup_probe {
        Some(p) => Some(delay(p)),
        None => [&c.liveness_probe, &c.readiness_probe].into_iter().flatten().map(delay).min(),
    }
}

/// The shim's next exit notification; never, without a watch.
async fn next_exit(exits: &mut Option<Exits>) -> Option<()> {
    match exits {
        Some(exits) => exits.next().await,
        None => std::future::pending().await,
    }
}

/// Whether a new version of the pod asks for a sync now: it is gone, being deleted, or its spec
/// changed (not just its status or resourceVersion).
fn needs_sync(current: &Pod, latest: Option<&Pod>) -> bool {
    latest
        .is_none_or(|p| p.metadata.deletion_timestamp != current.metadata.deletion_timestamp || p.spec != current.spec)
}

/// The image-store lease that keeps a pod's images.
fn lease_name(uid: &str) -> String {
    format!("pod-{uid}")
}

/// Remove everything a pod left on the node: shim, mounts, veth, address, cgroups, image lease,
/// directory. Safe to repeat.
pub async fn tear_down(agent: &Arc<Agent>, dir: &PodDir) {
    tear_down_with(agent, &Seams::real(agent), dir).await
}

/// [`tear_down`], acting through `os`.
async fn tear_down_with(agent: &Agent, os: &Seams, dir: &PodDir) {
    let uid = dir.root().file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    os.network.close_host_ports(&uid);
    if let Some(sandbox) = os.sandboxes.adopt(dir) {
        os.sandboxes.shutdown(&sandbox).await;
    }
    os.rootfs.unmount_all(dir);
    os.memory.unmount_all(dir);
    os.network.disconnect(&uid).await;
    os.sandboxes.remove_cgroups(&uid);
    if let Err(e) = os.images.remove_lease(&lease_name(&uid)) {
        tracing::warn!(error = %e, pod = %uid, "ending the pod's image lease");
    }
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

impl Worker {
    fn new(agent: Arc<Agent>, os: Seams, pod: Arc<Pod>) -> Worker {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let dir = PodDir::new(&agent.pods_root(), &uid);
        let start_time = pod.status.as_ref().and_then(|s| s.start_time.clone());
        Worker {
            agent,
            os,
            pod,
            uid,
            dir,
            sandbox: None,
            exits: None,
            ready: false,
            ip: None,
            waiting: HashMap::new(),
            image_ids: HashMap::new(),
            last_status: None,
            start_time,
            wake: Arc::new(Notify::new()),
            tracked: BTreeSet::new(),
            volumes_ready: false,
            volumes_synced: None,
            volumes_changed: false,
            mount_failures: 0,
            tokens: HashMap::new(),
            probes: HashMap::new(),
        }
    }

    /// The pod is being deleted: stop its containers within the grace period, show them
    /// stopped, tear the pod down and remove the API object.
    async fn delete(&mut self) {
        let grace = self.pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0) as u64;
        tracing::debug!(pod = %self.name(), grace, "stopping the pod");
        self.kill(Duration::from_secs(grace)).await;
        tracing::debug!(pod = %self.name(), "pod stopped");
        // Show the stopped containers (`0/1 Terminating`) while the sandbox goes, as upstream.
        self.waiting.clear();
        self.write_status().await;
        self.untrack();
        tear_down_with(&self.agent, &self.os, &self.dir).await;
        tracing::debug!(pod = %self.name(), "pod torn down");
        self.remove_from_api().await;
        tracing::debug!(pod = %self.name(), "pod removed from the API");
    }

    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    fn policy(&self) -> RestartPolicy {
        RestartPolicy::of(self.pod.spec.as_ref())
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

    async fn event(&self, container: Option<&str>, kind: skiff_client::events::Type, reason: &str, message: &str) {
        self.os.api.event(&self.pod, container, kind, reason, message).await;
    }

    /// What the pod directory records this round.
    fn observe(&self) -> PodSnapshot {
        let sandbox = match &self.sandbox {
            Some(s) if self.ready => {
                if self.os.sandboxes.alive(s) {
                    SandboxState::Alive
                } else {
                    SandboxState::Lost
                }
            }
            _ => SandboxState::Missing,
        };
        let attempts: std::collections::BTreeMap<String, Vec<AttemptRecord>> =
            self.all_containers().iter().map(|c| (c.name.clone(), self.dir.latest_attempts(&c.name))).collect();
        // A probe's verdict holds for the attempt it probed only.
        let unhealthy = self
            .probes
            .iter()
            .filter(|(name, p)| attempts.get(*name).and_then(|a| a.last()).is_some_and(|a| a.number == p.attempt))
            .filter_map(|(name, p)| Some((name.clone(), p.unhealthy()?)))
            .collect();
        PodSnapshot { sandbox, attempts, unhealthy }
    }

    /// The restart back-off of container `name`, while one is running.
    fn backoff_of(&self, name: &str) -> Option<RestartBackOff> {
        let key = format!("run/{}/{name}", self.uid);
        let b = self.agent.backoff.lock().unwrap_or_else(|p| p.into_inner());
        b.remaining(&key, Instant::now()).map(|remaining| RestartBackOff { remaining, delay: b.delay(&key) })
    }

    /// One round; returns when the next round is due at the latest. A round plans again after
    /// an action that changes what the plan reads (a sandbox made, an exit recorded), at most
    /// once per container and twice for the sandbox.
    async fn sync(&mut self) -> Duration {
        if !self.finished() && self.volumes_due() && !self.refresh_volumes().await && !self.volumes_ready {
            return mount_retry(self.mount_failures);
        }
        let mut next = RESYNC;
        for _ in 0..self.all_containers().len() + 2 {
            let snapshot = self.observe();
            let actions = plan::plan(
                &snapshot,
                &Containers::of(self.pod.spec.as_ref()),
                self.policy(),
                self.finished(),
                |name| self.backoff_of(name),
            );
            let mut again = false;
            for action in actions {
                match action {
                    Action::CreateSandbox => match self.ensure_sandbox().await {
                        Ok(()) => {
                            self.ready = true;
                            again = true;
                        }
                        Err(e) => {
                            tracing::warn!(pod = %self.name(), error = %e, "creating the pod sandbox");
                            let msg = format!("Failed to create pod sandbox: {e}");
                            self.event(None, Warning, "FailedCreatePodSandBox", &msg).await;
                            return Duration::from_secs(5);
                        }
                    },
                    Action::RecoverLostSandbox => {
                        self.mark_lost_attempts(&snapshot);
                        self.sandbox = None;
                        self.exits = None;
                        self.ready = false;
                        return Duration::ZERO;
                    }
                    Action::Container { name, role, step } => {
                        let Some(c) = self.container(&name, role) else { continue };
                        again |= matches!(step, ContainerStep::RecordExit { .. });
                        let wait = self.act(&c, snapshot.attempts(&name), step).await;
                        next = next.min(wait);
                    }
                }
            }
            if !again {
                break;
            }
        }
        next
    }

    /// The spec of container `name` of `role`.
    fn container(&self, name: &str, role: Role) -> Option<Container> {
        let list = match role {
            Role::Init => self.init_containers(),
            Role::App => self.containers(),
            Role::Ephemeral => self.ephemeral_containers(),
        };
        list.into_iter().find(|c| c.name == name)
    }

    /// Carry out one container's step; returns when to look again at the latest.
    async fn act(&mut self, c: &Container, attempts: &[AttemptRecord], step: ContainerStep) -> Duration {
        let idle = RESYNC;
        match step {
            ContainerStep::Running => self.probe(c, attempts).await.min(self.recheck_running()),
            ContainerStep::Unhealthy(kind) => {
                let msg =
                    format!("Container {} failed {} probe, will be restarted", c.name, kind.as_str().to_lowercase());
                self.event(Some(&c.name), Normal, "Killing", &msg).await;
                let grace = self.restart_grace(c, kind);
                self.stop_container(c, grace).await;
                self.probes.remove(&c.name);
                Duration::ZERO
            }
            ContainerStep::Finished { .. } => idle,
            ContainerStep::RecordExit { attempt, restart } => {
                if let Some(record) = attempts.iter().find(|a| a.number == attempt) {
                    self.on_exit(c, record, restart).await;
                }
                if let Err(e) = self.dir.mark_handled(&c.name, attempt) {
                    tracing::warn!(pod = %self.name(), container = %c.name, error = %e, "marking an exit handled");
                }
                // The round plans again at once and decides the restart then.
                idle
            }
            ContainerStep::BackOff(b) => {
                let message = format!(
                    "back-off {} restarting failed container={} pod={}_{}({})",
                    pull::go_duration(b.delay),
                    c.name,
                    self.name(),
                    self.namespace(),
                    self.uid
                );
                self.waiting.insert(c.name.clone(), Waiting { reason: WaitingReason::CrashLoopBackOff, message });
                b.remaining
            }
            ContainerStep::Start { attempt, unmount } => {
                if let Some(old) = unmount {
                    self.os.rootfs.unmount_attempt(&self.dir, &c.name, old);
                }
                match self.start(c, attempt).await {
                    // Its first probe is due after `initialDelaySeconds`.
                    Ok(()) => first_probe_in(c).map_or(self.recheck_running(), |d| d.min(self.recheck_running())),
                    Err(wait) => wait,
                }
            }
        }
    }

    /// The pod has run to completion (its phase says so): nothing more starts.
    fn finished(&self) -> bool {
        let phase = self.pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
        matches!(phase, "Succeeded" | "Failed")
    }

    /// Whether this round writes the volumes: until they are ready, when an object they read
    /// changed or a token is due for refresh, and once a resync period (a change whose watch
    /// event was missed). Not on every round: a probe every second must not re-read every
    /// Secret every second.
    fn volumes_due(&self) -> bool {
        let now = jiff::Timestamp::now().as_second();
        !self.volumes_ready
            || self.volumes_changed
            || self.volumes_synced.is_none_or(|t| t.elapsed() >= RESYNC)
            || self.tokens.values().any(|t| t.due(now, 0))
    }

    /// The tokens the pod's projections need: each kept until due, then asked for again (bound
    /// to the pod); a failed refresh keeps one that has not expired. With the first failure
    /// that left a projection without a token.
    async fn sync_tokens(&mut self) -> (HashMap<volumes::tokens::Key, String>, Option<String>) {
        let wanted = volumes::tokens::wanted(&self.pod);
        self.tokens.retain(|k, _| wanted.contains(k));
        let account = self.pod.spec.as_ref().and_then(|s| s.service_account_name.clone());
        let account = account.filter(|a| !a.is_empty()).unwrap_or_else(|| "default".into());
        let now = jiff::Timestamp::now().as_second();
        let (mut tokens, mut failure) = (HashMap::new(), None);
        for key in wanted {
            let jitter = rand::random_range(0..volumes::tokens::MAX_JITTER_SECONDS);
            if let Some(t) = self.tokens.get(&key).filter(|t| !t.due(now, jitter)) {
                tokens.insert(key, t.token.clone());
                continue;
            }
            let request = volumes::tokens::request(&self.pod, &key);
            let answer = match self.os.api.token(self.namespace(), &account, &request).await {
                Ok(answer) => {
                    volumes::tokens::Issued::of(&answer, key.1).ok_or_else(|| "no token in the answer".into())
                }
                Err(kube::Error::Api(s)) => Err(s.message.clone()),
                Err(e) => Err(e.to_string()),
            };
            match answer {
                Ok(issued) => {
                    tokens.insert(key.clone(), issued.token.clone());
                    self.tokens.insert(key, issued);
                }
                Err(e) => {
                    tracing::debug!(pod = %self.name(), error = %e, "requesting a service-account token");
                    match self.tokens.get(&key).filter(|t| !t.expired(now)) {
                        Some(old) => {
                            tokens.insert(key, old.token.clone());
                        }
                        None => {
                            failure.get_or_insert(e);
                        }
                    }
                }
            }
        }
        (tokens, failure)
    }

    /// An object the pod's volumes read changed (its watch woke the worker).
    fn objects_changed(&mut self) {
        self.volumes_changed = true;
    }

    /// [`Worker::sync_volumes`], a failure reported as the kubelet's `FailedMount`; whether it
    /// went well.
    async fn refresh_volumes(&mut self) -> bool {
        match self.sync_volumes().await {
            Ok(()) => {
                self.mount_failures = 0;
                true
            }
            Err(e) => {
                self.mount_failures = self.mount_failures.saturating_add(1);
                tracing::debug!(pod = %self.name(), error = %e, "setting up a volume");
                self.event(None, Warning, "FailedMount", &e.to_string()).await;
                false
            }
        }
    }

    /// Write the pod's ConfigMap, Secret, downward API and projected volumes (and mount the
    /// tmpfs under memory-backed ones), after telling `track` what they read, so that a change
    /// from now on wakes the worker. Files are rewritten only when they changed.
    async fn sync_volumes(&mut self) -> Result<(), MountError> {
        self.volumes_synced = Some(Instant::now());
        self.volumes_changed = false;
        let referenced = volumes::referenced(&self.pod);
        let ns = self.namespace().to_string();
        let objects: BTreeSet<Watched> = (referenced.secrets.iter().cloned())
            .map(|name| Watched::Secret { namespace: ns.clone(), name })
            .chain(
                referenced.config_maps.iter().cloned().map(|name| Watched::ConfigMap { namespace: ns.clone(), name }),
            )
            .collect();
        if objects != self.tracked {
            self.os.api.track(&self.uid, &objects, &self.wake);
            self.tracked = objects;
        }
        let volumes: Vec<_> = self.pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).cloned().collect();
        self.link_claims(&volumes).await?;
        if volumes.iter().all(|v| !volumes::is_written(v) && volumes::in_memory(v).is_none()) {
            self.volumes_ready = true;
            return Ok(());
        }
        let mut fetched = self.fetch(referenced).await;
        let (tokens, token_failure) = self.sync_tokens().await;
        if let Ok(objects) = fetched.as_mut() {
            objects.tokens = tokens;
        }
        for v in &volumes {
            let failed = |message: String| MountError { volume: v.name.clone(), message };
            let dir = volumes::dir(&self.dir, &v.name);
            if let Some(size) = volumes::in_memory(v) {
                self.os.memory.mount(&dir, size).map_err(|e| failed(format!("mounting a tmpfs: {e}")))?;
            }
            if volumes::is_written(v) {
                let objects = fetched.as_ref().map_err(|e| failed(e.to_string()))?;
                let payload =
                    volumes::payload::payload(v, &self.sources(objects)).map_err(|e| match (e, &token_failure) {
                        // The kubelet's words for a token it could not get.
                        (volumes::payload::PayloadError::NoToken(_), Some(why)) => {
                            failed(format!("failed to fetch token: {why}"))
                        }
                        (e, _) => failed(e.to_string()),
                    })?;
                if volumes::atomic::write(&dir, &payload).map_err(|e| failed(e.to_string()))? {
                    tracing::debug!(pod = %self.name(), volume = %v.name, "volume written");
                }
            }
        }
        self.volumes_ready = true;
        Ok(())
    }

    /// Link each `persistentVolumeClaim` volume to its bound volume's directory on this node.
    async fn link_claims(&self, volumes: &[k8s_openapi::api::core::v1::Volume]) -> Result<(), MountError> {
        let ns = self.namespace();
        for (volume, claim_name) in volumes::claims::named(volumes) {
            let failed = |message: String| MountError { volume: volume.to_string(), message };
            let claim = self.os.api.claim(ns, claim_name).await.map_err(|e| failed(e.to_string()))?;
            let bound = claim.as_ref().and_then(|c| c.spec.as_ref()?.volume_name.clone()).filter(|n| !n.is_empty());
            let pv = match bound {
                Some(name) => self.os.api.persistent_volume(&name).await.map_err(|e| failed(e.to_string()))?,
                None => None,
            };
            let path = volumes::claims::host_path(ns, claim_name, claim.as_ref(), pv.as_ref())
                .map_err(|e| failed(e.to_string()))?;
            volumes::claims::link(&volumes::dir(&self.dir, volume), &path)
                .map_err(|e| failed(format!("linking {}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Stop tracking what the pod's volumes read (the pod is going).
    fn untrack(&mut self) {
        if !self.tracked.is_empty() {
            self.tracked.clear();
            self.os.api.track(&self.uid, &self.tracked, &self.wake);
        }
    }

    /// The Secrets and ConfigMaps named, as the API server has them now (a missing one is absent).
    async fn fetch(&self, referenced: env::Referenced) -> Result<env::Objects, PrepareError> {
        let mut objects = env::Objects::default();
        for name in referenced.secrets {
            match self.os.api.secret(self.namespace(), &name).await {
                Ok(Some(s)) => {
                    objects.secrets.insert(name, s);
                }
                Ok(None) => {}
                Err(e) => return Err(PrepareError::Create(format!("reading secret {name:?}: {e}"))),
            }
        }
        for name in referenced.config_maps {
            match self.os.api.config_map(self.namespace(), &name).await {
                Ok(Some(m)) => {
                    objects.config_maps.insert(name, m);
                }
                Ok(None) => {}
                Err(e) => return Err(PrepareError::Create(format!("reading configmap {name:?}: {e}"))),
            }
        }
        Ok(objects)
    }

    /// What an environment or a downward API volume may read besides the pod: its address, the
    /// node's, the node's size and the objects fetched.
    fn sources<'a>(&'a self, objects: &'a env::Objects) -> env::Sources<'a> {
        let machine = self.agent.machine;
        env::Sources {
            pod: &self.pod,
            pod_ips: self
                .ip
                .map(|ip| self.agent.pod_ips(ip))
                .unwrap_or_default()
                .iter()
                .map(|ip| ip.to_string())
                .collect(),
            host_ip: machine.node_ip.to_string(),
            objects,
            allocatable_millicores: machine.cpus as i64 * 1000,
            allocatable_memory: (machine.memory_kib as i64).saturating_mul(1024),
        }
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

    async fn ensure_sandbox(&mut self) -> Result<(), SandboxSetUpError> {
        let meta = PodMeta { namespace: self.namespace().into(), name: self.name().into(), uid: self.uid.clone() };
        self.dir.write_meta(&meta).map_err(SandboxSetUpError::Meta)?;
        if let Some(sandbox) = self.os.sandboxes.adopt(&self.dir) {
            self.watch_exits(&sandbox).await;
            self.ip = self.os.network.address(&self.uid)?;
            self.sandbox = Some(sandbox);
            if let Some(ip) = self.ip {
                // A restart between the network and the files (kill -9) left them unwritten,
                // and every container start would fail to bind them.
                if !container::etc_files_written(&self.dir) {
                    container::write_etc_files(&self.dir, &self.pod, &self.agent.pod_ips(ip), &self.agent.config.dns)
                        .map_err(SandboxSetUpError::EtcFiles)?;
                }
                return self.open_host_ports(ip);
            }
        }
        let sandbox = match self.sandbox.clone() {
            Some(s) => s,
            None => {
                let s = self.os.sandboxes.spawn(&self.dir, self.name()).await?;
                self.watch_exits(&s).await;
                s
            }
        };
        tracing::debug!(pod = %self.name(), "shim ready");
        self.sandbox = Some(sandbox.clone());
        let ip = self.os.network.connect(&self.uid, &sandbox).await?;
        container::write_etc_files(&self.dir, &self.pod, &self.agent.pod_ips(ip), &self.agent.config.dns)
            .map_err(SandboxSetUpError::EtcFiles)?;
        tracing::debug!(pod = %self.name(), %ip, "pod network ready");
        self.ip = Some(ip);
        self.open_host_ports(ip)
    }

    /// Run the probes of `c`'s running attempt that are due; returns when the next one is.
    /// Each failure is an `Unhealthy` event, as the kubelet's.
    async fn probe(&mut self, c: &Container, attempts: &[AttemptRecord]) -> Duration {
        let Some(latest) = attempts.last() else { return RESYNC };
        if c.startup_probe.is_none() && c.liveness_probe.is_none() && c.readiness_probe.is_none() {
            return RESYNC;
        }
        if self.probes.get(&c.name).is_none_or(|p| p.attempt != latest.number) {
            // Delays count from when the attempt started, also after an agent restart.
            let ran_for = latest
                .started
                .as_ref()
                .and_then(|s| s.started_at.parse::<jiff::Timestamp>().ok())
                .and_then(|t| jiff::Timestamp::now().duration_since(t).try_into().ok())
                .unwrap_or(Duration::ZERO);
            let started = Instant::now().checked_sub(ran_for).unwrap_or_else(Instant::now);
            self.probes.insert(c.name.clone(), ContainerProbes::of(c, latest.number, started));
        }
        let Some(probes) = self.probes.get(&c.name) else { return RESYNC };
        let due: Vec<(usize, probe::Tracker)> =
            probes.due(Instant::now()).into_iter().map(|i| (i, probes.trackers[i].clone())).collect();
        let target = probe::target::Target { ip: self.ip.map(IpAddr::V4), container: c, dir: &self.dir };
        let outcomes = futures::future::join_all(due.iter().map(|(_, t)| self.os.prober.check(&target, t))).await;
        for ((i, tracker), outcome) in due.iter().zip(outcomes) {
            if let probe::Outcome::Failure(why) = &outcome {
                let msg = format!("{} probe failed: {why}", tracker.kind.as_str());
                self.event(Some(&c.name), Warning, "Unhealthy", &msg).await;
            }
            if let Some(p) = self.probes.get_mut(&c.name) {
                p.trackers[*i].record(&outcome, Instant::now());
            }
        }
        let next = self.probes.get(&c.name).and_then(ContainerProbes::next_due);
        next.map_or(RESYNC, |at| at.saturating_duration_since(Instant::now()))
    }

    /// How long a container failing `kind` has to stop: the probe's own
    /// `terminationGracePeriodSeconds`, else the pod's.
    fn restart_grace(&self, c: &Container, kind: probe::Kind) -> Duration {
        let probe = match kind {
            probe::Kind::Startup => c.startup_probe.as_ref(),
            probe::Kind::Liveness => c.liveness_probe.as_ref(),
            probe::Kind::Readiness => c.readiness_probe.as_ref(),
        };
        let pod = self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds);
        let seconds = probe.and_then(|p| p.termination_grace_period_seconds).or(pod).unwrap_or(30);
        Duration::from_secs(seconds.max(0) as u64)
    }

    /// Stop `c`'s running attempt: its preStop hook, its stop signal, then SIGKILL once `grace`
    /// has passed.
    async fn stop_container(&mut self, c: &Container, grace: Duration) {
        let Some(sandbox) = self.sandbox.clone() else { return };
        self.stop_gracefully(&sandbox, std::slice::from_ref(c), grace).await;
        if self.is_running(&c.name) {
            let kill = Request::Signal { container: c.name.clone(), signal: nix::sys::signal::Signal::SIGKILL as i32 };
            let _ = self.os.sandboxes.request(&sandbox, &kill).await;
        }
    }

    /// Stop `containers`: their preStop hooks first, all at once, within `grace`; then their stop
    /// signals, with what the hooks left of the grace period (at least 2 s, as the kubelet
    /// gives). Returns once they have all exited or the grace period has passed.
    async fn stop_gracefully(&self, sandbox: &Sandbox, containers: &[Container], grace: Duration) {
        let began = Instant::now();
        futures::future::join_all(containers.iter().map(|c| self.pre_stop(c, grace))).await;
        let grace = grace.saturating_sub(began.elapsed()).max(MIN_GRACE_AFTER_PRE_STOP.min(grace));
        for c in containers {
            let signal = self.stop_signal(c);
            let _ = self.os.sandboxes.request(sandbox, &Request::Signal { container: c.name.clone(), signal }).await;
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && containers.iter().any(|c| self.is_running(&c.name)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether container `name`'s latest attempt has not exited (or not started yet).
    fn is_running(&self, name: &str) -> bool {
        self.dir.attempts(name).last().is_some_and(|a| self.dir.exited(name, *a).is_none())
    }

    /// `attempts` with, under `terminationMessagePolicy: FallbackToLogsOnError`, the tail of its
    /// log as the message of a failed attempt that wrote none.
    fn with_fallback_messages(&self, c: &Container, attempts: &[AttemptRecord]) -> Vec<AttemptRecord> {
        let mut attempts = attempts.to_vec();
        if c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") {
            for a in attempts.iter_mut() {
                if a.termination_message.is_none() && a.exited.as_ref().is_some_and(|e| e.exit_code != 0) {
                    a.termination_message = crate::logs::reader::fallback_message(&self.dir.log(&c.name, a.number));
                }
            }
        }
        attempts
    }

    /// Run `c`'s preStop hook, if it has one, within `grace`; a failure or a hook that outlives
    /// the grace period is a `FailedPreStopHook` event, and stopping goes on.
    async fn pre_stop(&self, c: &Container, grace: Duration) {
        let Some(handler) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else { return };
        let target = probe::target::Target { ip: self.ip.map(IpAddr::V4), container: c, dir: &self.dir };
        if let probe::Outcome::Failure(why) = self.os.prober.hook(&target, handler, grace).await {
            let msg = self.hook_failure(c, handler, &why);
            self.event(Some(&c.name), Warning, "FailedPreStopHook", &msg).await;
        }
    }

    /// Run `c`'s postStart hook, if it has one, right after it started; on failure the
    /// container is stopped (`FailedPostStartHook`) and restarts as its policy says.
    async fn post_start(&mut self, c: &Container) {
        let Some(handler) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else { return };
        let target = probe::target::Target { ip: self.ip.map(IpAddr::V4), container: c, dir: &self.dir };
        let outcome = self.os.prober.hook(&target, handler, POST_START_TIMEOUT).await;
        if let probe::Outcome::Failure(why) = outcome {
            let msg = self.hook_failure(c, handler, &why);
            self.event(Some(&c.name), Warning, "FailedPostStartHook", &msg).await;
            self.event(Some(&c.name), Normal, "Killing", "FailedPostStartHook").await;
            let grace = self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
            self.stop_container(c, Duration::from_secs(grace.max(0) as u64)).await;
        }
    }

    /// The kubelet's text for a failed hook: `Exec lifecycle hook ([sh -c exit 1]) for Container
    /// "app" in Pod "web_default(UID)" failed - error: ...`.
    fn hook_failure(&self, c: &Container, handler: &k8s_openapi::api::core::v1::LifecycleHandler, why: &str) -> String {
        let what = match (&handler.exec, &handler.http_get) {
            (Some(e), _) => format!("Exec lifecycle hook ([{}])", e.command.clone().unwrap_or_default().join(" ")),
            (None, Some(h)) => format!("HTTP lifecycle hook ({})", h.path.clone().unwrap_or_default()),
            (None, None) => "Sleep lifecycle hook".to_string(),
        };
        format!(
            "{what} for Container {:?} in Pod \"{}_{}({})\" failed - {why}, message: \"\"",
            c.name,
            self.name(),
            self.namespace(),
            self.uid
        )
    }

    /// When to look at a running container again: the shim tells us of its exit, or we poll.
    fn recheck_running(&self) -> Duration {
        if self.exits.is_some() { RESYNC } else { POLL }
    }

    /// Have the shim tell us of exits; without it (an older shim) running containers are polled.
    async fn watch_exits(&mut self, sandbox: &Sandbox) {
        self.exits = match self.os.sandboxes.watch(sandbox).await {
            Ok(exits) => Some(exits),
            Err(e) => {
                tracing::debug!(pod = %self.name(), error = %e, "the shim does not report exits: polling");
                None
            }
        };
    }

    fn open_host_ports(&self, ip: Ipv4Addr) -> Result<(), SandboxSetUpError> {
        Ok(self.os.network.open_host_ports(&self.uid, &self.pod, ip)?)
    }

    /// Attempts that were running when the shim died have no exit record: give them one.
    fn mark_lost_attempts(&self, snapshot: &PodSnapshot) {
        for (name, attempts) in &snapshot.attempts {
            if let Some(a) = attempts.last()
                && a.started.is_some()
                && a.exited.is_none()
            {
                let exited = Exited {
                    exit_code: 255,
                    signal: None,
                    finished_at: crate::pod_dir::now_rfc3339(),
                    oom_killed: false,
                    start_error: None,
                };
                if let Err(e) = self.dir.write_exited(name, a.number, &exited) {
                    tracing::warn!(pod = %self.name(), container = %name, error = %e, "recording a lost attempt");
                }
            }
        }
    }

    /// A container attempt ended: count it for the back-off, and tell the user.
    async fn on_exit(&mut self, c: &Container, record: &AttemptRecord, restart: bool) {
        let Some(exited) = &record.exited else { return };
        let key = format!("run/{}/{}", self.uid, c.name);
        let ran_for = record.started.as_ref().and_then(|s| {
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
        let layers = match self.os.images.unpack(&image).await {
            Ok(l) => l,
            Err(e) => return Err(self.create_failed(c, PrepareError::Create(e.to_string())).await),
        };
        self.write_lease();
        let Some(sandbox) = self.sandbox.clone() else { return Err(Duration::from_secs(1)) };
        let image_id = self.image_ids.get(&c.name).cloned().unwrap_or_default();
        if let Err(e) = self.dir.write_image_id(&c.name, attempt, &image_id) {
            tracing::warn!(pod = %self.name(), container = %c.name, error = %e, "recording the image");
        }
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
        let prepared = self.os.rootfs.prepare(&Attempt {
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
            cluster_domain: &self.agent.config.dns.domain,
        });
        if let Err(e) = prepared {
            self.os.rootfs.unmount_attempt(&self.dir, &c.name, attempt);
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
        match self.os.sandboxes.request(&sandbox, &start).await {
            Ok(()) => {
                tracing::debug!(pod = %self.name(), container = %c.name, attempt, "container started");
                self.waiting.remove(&c.name);
                self.event(Some(&c.name), Normal, "Started", &format!("Started container {}", c.name)).await;
                self.post_start(c).await;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(pod = %self.name(), container = %c.name, error = %e, "starting a container");
                // The shim recorded the failure as an exit: the next round handles it like a crash.
                Err(Duration::ZERO)
            }
        }
    }

    /// `c` with its `envFrom` and `valueFrom` resolved (Secrets and ConfigMaps read now, as the
    /// kubelet does at each container start): a missing one or key is a
    /// `CreateContainerConfigError`.
    async fn resolve_env(&mut self, c: &Container) -> Result<Container, PrepareError> {
        let objects = self.fetch(env::referenced(c)).await?;
        let resolved = env::resolve(c, &self.sources(&objects)).map_err(|e| PrepareError::Config(e.to_string()))?;
        let services = self.agent.services.listed(SERVICES_LISTED).await;
        let links = env::service_links(&self.pod, &services).map_err(|e| PrepareError::Config(e.to_string()))?;
        for w in &resolved.warnings {
            self.event(None, Warning, "InvalidEnvironmentVariableNames", w).await;
        }
        let mut out = c.clone();
        out.env = Some(links.into_iter().chain(resolved.env).collect());
        out.env_from = None;
        Ok(out)
    }

    async fn create_failed(&mut self, c: &Container, e: PrepareError) -> Duration {
        self.event(Some(&c.name), Warning, "Failed", &format!("Error: {e}")).await;
        self.waiting.insert(c.name.clone(), Waiting { reason: e.reason(), message: e.to_string() });
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
                self.waiting.insert(c.name.clone(), Waiting { reason: WaitingReason::InvalidImageName, message: msg });
                return Err(Duration::from_secs(30));
            }
        };
        let policy =
            c.image_pull_policy.clone().unwrap_or_else(|| skiff_core::kinds::default_pull_policy(&image_name).into());
        let local = self.os.images.local(&reference);
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
                self.waiting.insert(c.name.clone(), Waiting { reason: WaitingReason::ErrImageNeverPull, message: msg });
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
            let last = self.waiting.get(&c.name).map(|w| w.message.clone()).unwrap_or_default();
            if self.waiting.get(&c.name).is_none_or(|w| w.reason != WaitingReason::ImagePullBackOff) {
                self.event(Some(&c.name), Normal, "BackOff", &pull::back_off(image_name)).await;
            }
            let last = last
                .strip_prefix("Back-off pulling image")
                .map(|_| last.clone())
                .unwrap_or_else(|| format!("{}: ErrImagePull: {last}", pull::back_off(image_name)));
            self.waiting.insert(c.name.clone(), Waiting { reason: WaitingReason::ImagePullBackOff, message: last });
            return Err(wait);
        }
        self.event(Some(&c.name), Normal, "Pulling", &pull::pulling(image_name)).await;
        let transport = self.pull_transport().await;
        let started = Instant::now();
        match self.os.images.pull(&transport, reference).await {
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
                self.waiting.insert(c.name.clone(), Waiting { reason: WaitingReason::ErrImagePull, message: msg });
                // The next round, within the back-off, shows ImagePullBackOff until it has passed.
                Err(PULL_ERROR_SHOWN.min(wait))
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
        let mut entries = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            match self.os.api.secret(&namespace, &name).await {
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
        let digests: Vec<String> = digests.into_iter().collect();
        if let Err(e) = self.os.images.set_lease(&lease_name(&self.uid), &digests) {
            tracing::warn!(error = %e, "writing the image lease");
        }
    }

    /// Stop every container: the stop signal, up to `grace`, then kill.
    async fn kill(&mut self, grace: Duration) {
        let Some(sandbox) = self.os.sandboxes.adopt(&self.dir) else { return };
        let running: Vec<Container> = self.all_containers().into_iter().filter(|c| self.is_running(&c.name)).collect();
        if !grace.is_zero() {
            for c in &running {
                self.event(Some(&c.name), Normal, "Killing", &format!("Stopping container {}", c.name)).await;
            }
            self.stop_gracefully(&sandbox, &running, grace).await;
        }
        tracing::debug!(pod = %self.name(), "containers stopped");
        self.os.sandboxes.shutdown(&sandbox).await;
    }

    /// The image's STOPSIGNAL, else SIGTERM.
    fn stop_signal(&self, c: &Container) -> i32 {
        let configured = c.image.as_deref().and_then(|i| skiff_image::Reference::parse(i).ok()).and_then(|r| {
            let img = self.os.images.local(&r)?;
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
        match self.os.api.delete(self.namespace(), self.name(), &self.uid).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(pod = %self.name(), error = %e, "removing the deleted pod"),
        }
    }

    /// Write `status` when anything in it changed.
    async fn write_status(&mut self) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let snapshot = self.observe();
        let status_of = |c: &Container, init: bool, init_done: bool| {
            let waiting = self.waiting.get(&c.name);
            let attempts = &self.with_fallback_messages(c, snapshot.attempts(&c.name));
            let mut status = report::container_status(c, &self.uid, attempts, waiting, init, init_done);
            // Probes decide `started` and `ready` of the attempt they probe.
            if let Some(p) = self.probes.get(&c.name).filter(|p| attempts.last().is_some_and(|a| a.number == p.attempt))
            {
                p.adjust(&mut status);
            } else if !init && (c.startup_probe.is_some() || c.readiness_probe.is_some()) {
                // Not probed yet: not ready (nor started, with a startup probe), as upstream.
                status.ready = false;
                if c.startup_probe.is_some() {
                    status.started = Some(false);
                }
            }
            status
        };
        let inits = self.init_containers();
        let mut init_statuses = Vec::new();
        let mut init = InitState::Done;
        for c in &inits {
            let st = status_of(c, true, false);
            let succeeded = st.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0);
            if init == InitState::Done && !succeeded {
                let failed_for_good =
                    st.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code != 0)
                        && self.policy() == RestartPolicy::Never;
                init = if failed_for_good { InitState::Failed } else { InitState::Running };
            }
            init_statuses.push(st);
        }
        let statuses: Vec<ContainerStatus> =
            self.containers().iter().map(|c| status_of(c, false, init == InitState::Done)).collect();
        let ephemeral: Vec<ContainerStatus> =
            self.ephemeral_containers().iter().map(|c| status_of(c, false, true)).collect();
        let now = Time(jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()));
        let sandbox_ready = self.ready;
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
            let ips: Vec<PodIP> = self.agent.pod_ips(ip).iter().map(|ip| PodIP { ip: ip.to_string() }).collect();
            value["podIPs"] = serde_json::to_value(ips).unwrap_or_default();
        }
        let serialized = serde_json::to_vec(&value).unwrap_or_default();
        if self.last_status.as_ref() == Some(&serialized) {
            return;
        }
        tracing::debug!(pod = %self.name(), phase, status = %value, "writing pod status");
        // A merge patch replaces lists whole: the status is ours to write.
        match self.os.api.patch_status(self.namespace(), self.name(), &value).await {
            Ok(pod) => {
                Arc::make_mut(&mut self.pod).status = pod.status;
                self.last_status = Some(serialized);
            }
            Err(e) => tracing::warn!(pod = %self.name(), error = %e, "writing pod status"),
        }
    }
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
mod tests;
