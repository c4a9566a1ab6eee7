//! Recording fakes of the worker's seams, for unit tests without root, network or API server.
//!
//! One [`Fake`] implements every seam: each call is logged in one list (so a test asserts the
//! order across seams) and answered from a [`Script`]. The fake shim writes to the pod directory
//! what the real shim writes (`started.json` when it starts an attempt, `exited.json` when a
//! signal or its shutdown ends one), so the worker observes what it would on a real node.

use super::seams::{
    Images, MemoryVolumes, NetworkError, PodApi, PodNetwork, Prober, RootFilesystems, Sandboxes, Seams, UnpackError,
};
use crate::agent::container::{Attempt, PrepareError};
use crate::agent::probe::target::Target;
use crate::agent::probe::{Kind, Outcome, Tracker};
use crate::agent::sandbox::Exits;
use crate::agent::sandbox::{Sandbox, SandboxError};
use crate::agent::watched::Watched;
use crate::pod_dir::{Exited, PodDir, Started};
use crate::shim::Request;
use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, LifecycleHandler, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use skiff_client::events::Type;
use skiff_image::registry::{RegistryError, Transport};
use skiff_image::{Digest, Image, Reference, StoreError};
use std::collections::BTreeSet;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The address the fake network gives every pod.
pub const POD_IP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 7);

/// How the fakes answer.
#[derive(Default)]
pub struct Script {
    /// The pod's shim runs: `adopt` finds it and `alive` is true. `spawn` sets it, `shutdown`
    /// clears it; a test clears it to lose the sandbox.
    pub shim_running: bool,
    /// The address the pod already holds (`PodNetwork::address`, for a re-adopted sandbox).
    pub address: Option<Ipv4Addr>,
    /// References (normalized) the local image store has; a successful pull adds one.
    pub local_images: HashSet<String>,
    /// Pulls fail with this message.
    pub pull_error: Option<String>,
    /// A signalled container exits (128 + signal); otherwise it ignores the signal.
    pub obey_signals: bool,
    /// The Secrets and ConfigMaps the API server has, by name.
    pub secrets: HashMap<String, Secret>,
    pub config_maps: HashMap<String, ConfigMap>,
    /// Whether TokenRequests fail (with this message); each answered one is `token-N`, an hour.
    pub token_error: Option<String>,
    pub tokens_issued: u32,
    /// What each probe finds, by container and kind (unset: success).
    pub probes: HashMap<(String, Kind), Outcome>,
    /// What each exec hook gives, by its command line (unset: success).
    pub hooks: HashMap<String, Outcome>,
}

/// Every seam at once, recording.
pub struct Fake {
    dir: PodDir,
    script: Mutex<Script>,
    calls: Mutex<Vec<String>>,
    events: Mutex<Vec<(String, String)>>,
    statuses: Mutex<Vec<serde_json::Value>>,
    /// The worker's exit watches: each exit is sent to them; losing the shim ends them.
    watchers: Mutex<Vec<tokio::sync::mpsc::UnboundedSender<()>>>,
    /// What the worker gave `track`, to wake it as a changed object would.
    wake: Mutex<Option<Arc<Notify>>>,
}

impl Fake {
    /// Fakes for the pod whose directory is `dir`.
    pub fn new(dir: PodDir, script: Script) -> Arc<Fake> {
        Arc::new(Fake {
            dir,
            script: Mutex::new(script),
            calls: Mutex::default(),
            events: Mutex::default(),
            statuses: Mutex::default(),
            watchers: Mutex::default(),
            wake: Mutex::default(),
        })
    }

    pub fn seams(self: &Arc<Self>) -> Seams {
        Seams {
            sandboxes: self.clone(),
            network: self.clone(),
            rootfs: self.clone(),
            memory: self.clone(),
            prober: self.clone(),
            images: self.clone(),
            api: self.clone(),
        }
    }

    pub fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The calls so far, and forget them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The events recorded so far, as (reason, message).
    pub fn events(&self) -> Vec<(String, String)> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every status written, oldest first.
    pub fn statuses(&self) -> Vec<serde_json::Value> {
        self.statuses.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The latest status written.
    pub fn status(&self) -> serde_json::Value {
        self.statuses().pop().unwrap_or_default()
    }

    fn call(&self, call: String) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
    }

    /// The latest attempt of `container`, if it runs.
    fn running_attempt(&self, container: &str) -> Option<u32> {
        let a = *self.dir.attempts(container).last()?;
        (self.dir.started(container, a).is_some() && self.dir.exited(container, a).is_none()).then_some(a)
    }

    /// What the shim records when an attempt ends.
    pub fn exit(&self, container: &str, attempt: u32, exit_code: i32, signal: Option<i32>) {
        let exited = Exited {
            exit_code,
            signal,
            finished_at: crate::pod_dir::now_rfc3339(),
            oom_killed: false,
            start_error: None,
        };
        if let Err(e) = self.dir.write_exited(container, attempt, &exited) {
            panic!("writing a fake exit: {e}");
        }
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).retain(|w| w.send(()).is_ok());
    }

    /// An object the worker tracks changed: wake it, as its watch would.
    pub fn object_changed(&self) {
        if let Some(w) = &*self.wake.lock().unwrap_or_else(|p| p.into_inner()) {
            w.notify_one();
        }
    }

    /// The shim dies: `alive` says so and its exit watches end.
    pub fn lose_sandbox(&self) {
        self.script().shim_running = false;
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// An image with no layers, `reference`'s.
pub fn image(reference: &str) -> Image {
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": [] }, "config": {},
    });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::of(config.to_string().as_bytes()).to_string(),
            "size": config.to_string().len(),
        },
        "layers": [],
    });
    Image {
        reference: Reference::parse(reference).ok(),
        manifest_digest: Digest::of(manifest.to_string().as_bytes()),
        manifest: serde_json::from_value(manifest).unwrap_or_else(|e| panic!("a fake manifest: {e}")),
        config_digest: Digest::of(config.to_string().as_bytes()),
        config: serde_json::from_value(config).unwrap_or_else(|e| panic!("a fake config: {e}")),
    }
}

#[async_trait]
impl Sandboxes for Fake {
    fn adopt(&self, dir: &PodDir) -> Option<Sandbox> {
        self.call("sandbox.adopt".into());
        self.script().shim_running.then(|| Sandbox::fake(dir, 4000))
    }

    async fn spawn(&self, dir: &PodDir, _hostname: &str) -> Result<Sandbox, SandboxError> {
        self.call("sandbox.spawn".into());
        self.script().shim_running = true;
        Ok(Sandbox::fake(dir, 4000))
    }

    fn alive(&self, _sandbox: &Sandbox) -> bool {
        self.script().shim_running
    }

    async fn watch(&self, _sandbox: &Sandbox) -> Result<Exits, SandboxError> {
        self.call("sandbox.watch".into());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|()| ((), rx)) })))
    }

    async fn request(&self, _sandbox: &Sandbox, request: &Request) -> Result<(), SandboxError> {
        match request {
            Request::Start { container, attempt, .. } => {
                self.call(format!("sandbox.start {container}/{attempt}"));
                let started = Started { pid: 5000 + *attempt as i32, started_at: crate::pod_dir::now_rfc3339() };
                self.dir.write_started(container, *attempt, &started).map_err(SandboxError::Io)
            }
            Request::Signal { container, signal } => {
                self.call(format!("sandbox.signal {container} {signal}"));
                if self.script().obey_signals
                    && let Some(a) = self.running_attempt(container)
                {
                    self.exit(container, a, 128 + signal, Some(*signal));
                }
                Ok(())
            }
            other => {
                self.call(format!("sandbox.request {other:?}"));
                Ok(())
            }
        }
    }

    async fn shutdown(&self, _sandbox: &Sandbox) {
        self.call("sandbox.shutdown".into());
        self.lose_sandbox();
        let containers: Vec<String> = std::fs::read_dir(self.dir.root().join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        for c in containers {
            if let Some(a) = self.running_attempt(&c) {
                self.exit(&c, a, 137, Some(9));
            }
        }
    }

    fn remove_cgroups(&self, _uid: &str) {
        self.call("sandbox.remove_cgroups".into());
    }
}

#[async_trait]
impl PodNetwork for Fake {
    fn address(&self, _uid: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
        self.call("net.address".into());
        Ok(self.script().address)
    }

    async fn connect(&self, _uid: &str, _sandbox: &Sandbox) -> Result<Ipv4Addr, NetworkError> {
        self.call("net.connect".into());
        Ok(POD_IP)
    }

    fn open_host_ports(&self, _uid: &str, _pod: &Pod, ip: Ipv4Addr) -> Result<(), NetworkError> {
        self.call(format!("net.open_host_ports {ip}"));
        Ok(())
    }

    fn close_host_ports(&self, _uid: &str) {
        self.call("net.close_host_ports".into());
    }

    async fn disconnect(&self, _uid: &str) {
        self.call("net.disconnect".into());
    }
}

impl RootFilesystems for Fake {
    fn prepare(&self, attempt: &Attempt) -> Result<(), PrepareError> {
        self.call(format!("rootfs.prepare {}/{}", attempt.container.name, attempt.attempt));
        Ok(())
    }

    fn unmount_attempt(&self, _dir: &PodDir, container: &str, attempt: u32) {
        self.call(format!("rootfs.unmount {container}/{attempt}"));
    }

    fn unmount_all(&self, _dir: &PodDir) {
        self.call("rootfs.unmount_all".into());
    }
}

#[async_trait]
impl Prober for Fake {
    async fn check(&self, target: &Target<'_>, tracker: &Tracker) -> Outcome {
        let name = target.container.name.clone();
        self.call(format!("probe {name} {}", tracker.kind.as_str()));
        self.script().probes.get(&(name, tracker.kind)).cloned().unwrap_or(Outcome::Success)
    }

    async fn hook(&self, target: &Target<'_>, handler: &LifecycleHandler, _timeout: Duration) -> Outcome {
        let command = handler.exec.as_ref().and_then(|e| e.command.clone()).unwrap_or_default().join(" ");
        self.call(format!("hook {} {command}", target.container.name));
        self.script().hooks.get(&command).cloned().unwrap_or(Outcome::Success)
    }
}

impl MemoryVolumes for Fake {
    fn mount(&self, dir: &Path, _size: Option<u64>) -> std::io::Result<()> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.call(format!("memory.mount {name}"));
        std::fs::create_dir_all(dir)
    }

    fn unmount_all(&self, _dir: &PodDir) {
        self.call("memory.unmount_all".into());
    }
}

#[async_trait]
impl Images for Fake {
    fn local(&self, reference: &Reference) -> Option<Image> {
        self.call(format!("images.local {reference}"));
        let name = reference.to_string();
        self.script().local_images.contains(&name).then(|| image(&name))
    }

    async fn pull(&self, _transport: &Transport, reference: &Reference) -> Result<Image, RegistryError> {
        self.call(format!("images.pull {reference}"));
        let mut script = self.script();
        if let Some(message) = &script.pull_error {
            return Err(RegistryError::Store(StoreError::NotFound(message.clone())));
        }
        script.local_images.insert(reference.to_string());
        Ok(image(&reference.to_string()))
    }

    async fn unpack(&self, _image: &Image) -> Result<Vec<PathBuf>, UnpackError> {
        self.call("images.unpack".into());
        Ok(Vec::new())
    }

    fn set_lease(&self, name: &str, digests: &[String]) -> Result<(), StoreError> {
        self.call(format!("images.set_lease {name} {}", digests.len()));
        Ok(())
    }

    fn remove_lease(&self, name: &str) -> Result<(), StoreError> {
        self.call(format!("images.remove_lease {name}"));
        Ok(())
    }
}

#[async_trait]
impl PodApi for Fake {
    async fn event(&self, _pod: &Pod, _container: Option<&str>, _kind: Type, reason: &str, message: &str) {
        self.call(format!("event {reason}"));
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push((reason.into(), message.into()));
    }

    async fn claim(&self, _namespace: &str, name: &str) -> Result<Option<PersistentVolumeClaim>, kube::Error> {
        self.call(format!("api.claim {name}"));
        Ok(None)
    }

    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>, kube::Error> {
        self.call(format!("api.persistent_volume {name}"));
        Ok(None)
    }

    async fn secret(&self, _namespace: &str, name: &str) -> Result<Option<Secret>, kube::Error> {
        self.call(format!("api.secret {name}"));
        Ok(self.script().secrets.get(name).cloned())
    }

    async fn config_map(&self, _namespace: &str, name: &str) -> Result<Option<ConfigMap>, kube::Error> {
        self.call(format!("api.config_map {name}"));
        Ok(self.script().config_maps.get(name).cloned())
    }

    async fn token(
        &self,
        _namespace: &str,
        account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, kube::Error> {
        let spec = request.spec.clone().unwrap_or_default();
        let audience = spec.audiences.unwrap_or_default().join(",");
        self.call(format!("api.token {account} [{audience}] {}", spec.expiration_seconds.unwrap_or(0)));
        let mut script = self.script();
        if let Some(message) = &script.token_error {
            return Err(kube::Error::Api(Box::new(kube::core::Status::failure(message, "NotFound").with_code(404))));
        }
        script.tokens_issued += 1;
        let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(spec.expiration_seconds.unwrap_or(3600));
        let status = k8s_openapi::api::authentication::v1::TokenRequestStatus {
            token: Some(format!("token-{}", script.tokens_issued)),
            expiration_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(expires)),
        };
        Ok(TokenRequest { status: Some(status), ..request.clone() })
    }

    fn track(&self, _uid: &str, objects: &BTreeSet<Watched>, wake: &Arc<Notify>) {
        let names: Vec<String> = objects
            .iter()
            .map(|o| match o {
                Watched::Secret { name, .. } => format!("secret/{name}"),
                Watched::ConfigMap { name, .. } => format!("configmap/{name}"),
            })
            .collect();
        self.call(format!("api.track [{}]", names.join(" ")));
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = Some(wake.clone());
    }

    async fn patch_status(&self, _namespace: &str, name: &str, status: &serde_json::Value) -> Result<Pod, kube::Error> {
        self.call(format!("api.patch_status {name}"));
        self.statuses.lock().unwrap_or_else(|p| p.into_inner()).push(status.clone());
        // What the API server returns: the pod with this status.
        let status = serde_json::from_value(status.clone()).unwrap_or_else(|e| panic!("a status the API refuses: {e}"));
        Ok(Pod { status: Some(status), ..Default::default() })
    }

    async fn delete(&self, _namespace: &str, name: &str, _uid: &str) -> Result<(), kube::Error> {
        self.call(format!("api.delete {name}"));
        Ok(())
    }
}
