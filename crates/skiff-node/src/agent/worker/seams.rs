//! The pod worker's edge: everything a worker does to the machine or the API server goes through
//! one of seven traits, each with one job: [`Sandboxes`] (the pod's shim), [`PodNetwork`] (its
//! address, veth and host ports), [`RootFilesystems`] (a container attempt's overlay and bundle),
//! [`MemoryVolumes`] (the tmpfs under Secret and projected volumes), [`Prober`] (one probe of a
//! container), [`Images`] (the local store and pulls) and [`PodApi`] (events, Secrets and
//! ConfigMaps and their watches, service-account tokens, status, deletion).
//!
//! Why: the worker's decisions are pure (`plan`), but carrying them out needs root, netlink, a
//! registry and an API server. Behind these seams (youki's `Syscall` trait) the loop itself is
//! unit-tested with the recording fakes of `fakes`, which log each call and return scripted
//! results; the real implementations here only forward to the code that did the work before
//! (`agent::sandbox`, `net`, `agent::container`, `skiff_image`, kube), which the root tests
//! exercise for real. The pod directory is not behind a seam: it is the worker's contract with the
//! shim, and a test gives the worker a temporary one (the fake shim writes the records the real
//! one writes).

use crate::agent::container::{self, Attempt, PrepareError};
use crate::agent::probe::target::Target;
use crate::agent::probe::{Outcome, Tracker};
use crate::agent::sandbox::Exits;
use crate::agent::sandbox::{Sandbox, SandboxError};
use crate::agent::state::Agent;
use crate::agent::watched::Watched;
use crate::pod_dir::PodDir;
use crate::shim::Request;
use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{
    ConfigMap, LifecycleHandler, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use skiff_client::events::Type;
use skiff_image::registry::{RegistryError, Transport};
use skiff_image::{Image, Reference, StoreError};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The pod's shim: the sandbox that holds its namespaces and runs its containers.
#[async_trait]
pub trait Sandboxes: Send + Sync {
    /// The pod's shim if it runs (started by us or by an agent before a restart).
    fn adopt(&self, dir: &PodDir) -> Option<Sandbox>;
    /// Start a shim for the pod and wait until it is ready.
    async fn spawn(&self, dir: &PodDir, hostname: &str) -> Result<Sandbox, SandboxError>;
    /// Whether the shim still runs.
    fn alive(&self, sandbox: &Sandbox) -> bool;
    /// The shim's exits as it records them (one item each); the stream ends when the shim does.
    async fn watch(&self, sandbox: &Sandbox) -> Result<Exits, SandboxError>;
    /// Ask the shim to start a container attempt or to signal a container.
    async fn request(&self, sandbox: &Sandbox, request: &Request) -> Result<(), SandboxError>;
    /// Have the shim kill what still runs and exit; wait (bounded) until it has.
    async fn shutdown(&self, sandbox: &Sandbox);
    /// Remove the pod's cgroups, once its shim is gone.
    fn remove_cgroups(&self, uid: &str);
}

/// Why the pod's network could not be set up: its text goes into `FailedCreatePodSandBox`.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Address(#[from] crate::net::ipam::IpamError),
    #[error(transparent)]
    Link(#[from] crate::net::NetError),
    #[error("the pod's netns: {0}")]
    Netns(#[source] std::io::Error),
    #[error(transparent)]
    HostPorts(#[from] crate::net::hostport::HostPortError),
}

/// The pod's network: its address, the veth into its sandbox and its host ports.
#[async_trait]
pub trait PodNetwork: Send + Sync {
    /// The address the pod already holds (its sandbox was re-adopted).
    fn address(&self, uid: &str) -> Result<Option<Ipv4Addr>, NetworkError>;
    /// Give the pod an address and a veth from the node's bridge into `sandbox`'s netns.
    async fn connect(&self, uid: &str, sandbox: &Sandbox) -> Result<Ipv4Addr, NetworkError>;
    /// Forward the pod's `hostPort`s to `ip`.
    fn open_host_ports(&self, uid: &str, pod: &Pod, ip: Ipv4Addr) -> Result<(), NetworkError>;
    fn close_host_ports(&self, uid: &str);
    /// Remove the pod's veth and release its address; failures are logged (tear-down goes on).
    async fn disconnect(&self, uid: &str);
}

/// The root filesystems of a pod's container attempts.
pub trait RootFilesystems: Send + Sync {
    /// Mount the attempt's overlay root filesystem and write its OCI bundle.
    fn prepare(&self, attempt: &Attempt) -> Result<(), PrepareError>;
    /// Unmount one attempt's root filesystem and drop its writable layer.
    fn unmount_attempt(&self, dir: &PodDir, container: &str, attempt: u32);
    /// Unmount every container root filesystem of the pod.
    fn unmount_all(&self, dir: &PodDir);
}

/// The tmpfs mounts under the pod's memory-backed volumes.
pub trait MemoryVolumes: Send + Sync {
    /// Mount a tmpfs of at most `size` bytes at `dir` (made if missing), unless one is there.
    fn mount(&self, dir: &Path, size: Option<u64>) -> std::io::Result<()>;
    /// Unmount every volume of the pod (tear-down; failures are logged).
    fn unmount_all(&self, dir: &PodDir);
}

/// Probes carried out: HTTP and TCP into the pod's network, exec in the container.
#[async_trait]
pub trait Prober: Send + Sync {
    /// Run `tracker`'s probe once against `target`, within its timeout.
    async fn check(&self, target: &Target<'_>, tracker: &Tracker) -> Outcome;
    /// Run a lifecycle hook (`postStart`, `preStop`) against `target`, within `timeout`.
    async fn hook(&self, target: &Target<'_>, handler: &LifecycleHandler, timeout: Duration) -> Outcome;
}

/// Why an image's layers could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("unpacking the image: {0}")]
    Store(#[source] StoreError),
    #[error("{0}")]
    Task(#[source] tokio::task::JoinError),
}

/// The node's image store and the registries it pulls from.
#[async_trait]
pub trait Images: Send + Sync {
    /// The image `reference` names, if the local store has it.
    fn local(&self, reference: &Reference) -> Option<Image>;
    /// Pull `reference` into the store with `transport`'s credentials.
    async fn pull(&self, transport: &Transport, reference: &Reference) -> Result<Image, RegistryError>;
    /// The image's layers unpacked, bottom first.
    async fn unpack(&self, image: &Image) -> Result<Vec<PathBuf>, UnpackError>;
    /// Keep the images of `digests` from garbage collection under lease `name`.
    fn set_lease(&self, name: &str, digests: &[String]) -> Result<(), StoreError>;
    fn remove_lease(&self, name: &str) -> Result<(), StoreError>;
}

/// What the worker reads from and writes to the API server.
#[async_trait]
pub trait PodApi: Send + Sync {
    /// Record an event about the pod (or one of its containers).
    async fn event(&self, pod: &Pod, container: Option<&str>, kind: Type, reason: &str, message: &str);
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, kube::Error>;
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, kube::Error>;
    async fn claim(&self, namespace: &str, name: &str) -> Result<Option<PersistentVolumeClaim>, kube::Error>;
    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>, kube::Error>;
    /// A token of service account `namespace/account` (TokenRequest), as `request` asks.
    async fn token(&self, namespace: &str, account: &str, request: &TokenRequest) -> Result<TokenRequest, kube::Error>;
    /// Pod `uid`'s volumes read exactly `objects` now: notify `wake` when one of them changes.
    fn track(&self, uid: &str, objects: &BTreeSet<Watched>, wake: &Arc<Notify>);
    /// Merge-patch the pod's status (lists replaced whole); the pod as the server now has it.
    async fn patch_status(&self, namespace: &str, name: &str, status: &serde_json::Value) -> Result<Pod, kube::Error>;
    /// Delete the pod object at once, if it is still the one with `uid`.
    async fn delete(&self, namespace: &str, name: &str, uid: &str) -> Result<(), kube::Error>;
}

/// One implementation of each seam: what a worker acts through.
#[derive(Clone)]
pub struct Seams {
    pub sandboxes: Arc<dyn Sandboxes>,
    pub network: Arc<dyn PodNetwork>,
    pub rootfs: Arc<dyn RootFilesystems>,
    pub memory: Arc<dyn MemoryVolumes>,
    pub prober: Arc<dyn Prober>,
    pub images: Arc<dyn Images>,
    pub api: Arc<dyn PodApi>,
}

impl Seams {
    /// The real machine and API server, through `agent`'s configuration and shared state.
    pub fn real(agent: &Arc<Agent>) -> Seams {
        Seams {
            sandboxes: Arc::new(ShimSandboxes(agent.clone())),
            network: Arc::new(BridgeNetwork(agent.clone())),
            rootfs: Arc::new(OverlayRootFilesystems),
            memory: Arc::new(Tmpfs),
            prober: Arc::new(NodeProber(agent.clone())),
            images: Arc::new(StoreImages(agent.clone())),
            api: Arc::new(KubeApi(agent.clone())),
        }
    }
}

/// Shims started as `shim_exe shim`, talked to over their sockets.
struct ShimSandboxes(Arc<Agent>);

#[async_trait]
impl Sandboxes for ShimSandboxes {
    fn adopt(&self, dir: &PodDir) -> Option<Sandbox> {
        Sandbox::adopt(dir)
    }

    async fn spawn(&self, dir: &PodDir, hostname: &str) -> Result<Sandbox, SandboxError> {
        let config = &self.0.config;
        Sandbox::spawn(&config.shim_exe, &config.runtime_exe, dir, hostname).await
    }

    fn alive(&self, sandbox: &Sandbox) -> bool {
        sandbox.alive()
    }

    async fn watch(&self, sandbox: &Sandbox) -> Result<Exits, SandboxError> {
        sandbox.watch().await
    }

    async fn request(&self, sandbox: &Sandbox, request: &Request) -> Result<(), SandboxError> {
        sandbox.request(request).await
    }

    async fn shutdown(&self, sandbox: &Sandbox) {
        sandbox.shutdown().await
    }

    fn remove_cgroups(&self, uid: &str) {
        crate::shim::cgroup::remove_cgroups(uid)
    }
}

/// Addresses from the node's IPAM, veths on its bridge over rtnetlink, userspace host ports.
struct BridgeNetwork(Arc<Agent>);

#[async_trait]
impl PodNetwork for BridgeNetwork {
    fn address(&self, uid: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
        Ok(self.0.ipam.lookup(uid)?)
    }

    async fn connect(&self, uid: &str, sandbox: &Sandbox) -> Result<Ipv4Addr, NetworkError> {
        let ip = self.0.ipam.allocate(uid)?;
        let veth = Agent::veth_name(uid);
        let net = crate::net::Net::connect()?;
        net.delete(&veth).await?;
        let netns = std::fs::File::open(sandbox.namespace("net")).map_err(NetworkError::Netns)?;
        use std::os::fd::AsFd;
        net.attach_pod(&self.0.config.bridge, &veth, netns.as_fd(), &self.0.pod_addresses(ip)).await?;
        Ok(ip)
    }

    fn open_host_ports(&self, uid: &str, pod: &Pod, ip: Ipv4Addr) -> Result<(), NetworkError> {
        let mappings = crate::net::hostport::mappings(pod);
        Ok(self.0.host_ports.open(uid, &mappings, ip)?)
    }

    fn close_host_ports(&self, uid: &str) {
        self.0.host_ports.close(uid)
    }

    async fn disconnect(&self, uid: &str) {
        if let Ok(net) = crate::net::Net::connect()
            && let Err(e) = net.delete(&Agent::veth_name(uid)).await
        {
            tracing::warn!(error = %e, pod = %uid, "removing the pod's veth");
        }
        if let Err(e) = self.0.ipam.release(uid) {
            tracing::warn!(error = %e, pod = %uid, "releasing the pod's address");
        }
    }
}

/// Overlay mounts over the image's snapshots (`agent::container`).
struct OverlayRootFilesystems;

impl RootFilesystems for OverlayRootFilesystems {
    fn prepare(&self, attempt: &Attempt) -> Result<(), PrepareError> {
        container::prepare(attempt)
    }

    fn unmount_attempt(&self, dir: &PodDir, container: &str, attempt: u32) {
        container::unmount_attempt(dir, container, attempt)
    }

    fn unmount_all(&self, dir: &PodDir) {
        container::unmount_all(dir)
    }
}

/// Probes from this node, exec probes through this binary's `container-exec`.
struct NodeProber(Arc<Agent>);

#[async_trait]
impl Prober for NodeProber {
    async fn check(&self, target: &Target<'_>, tracker: &Tracker) -> Outcome {
        crate::agent::probe::check::check(target, &tracker.probe, tracker.timeout, &self.0.config.runtime_exe).await
    }

    async fn hook(&self, target: &Target<'_>, handler: &LifecycleHandler, timeout: Duration) -> Outcome {
        crate::agent::probe::check::hook(target, handler, timeout, &self.0.config.runtime_exe).await
    }
}

/// tmpfs mounts under the pod directory.
struct Tmpfs;

impl MemoryVolumes for Tmpfs {
    fn mount(&self, dir: &Path, size: Option<u64>) -> std::io::Result<()> {
        crate::agent::volumes::mount_tmpfs(dir, size)
    }

    fn unmount_all(&self, dir: &PodDir) {
        crate::agent::volumes::unmount_all(dir)
    }
}

/// The node's image store and registry transport.
struct StoreImages(Arc<Agent>);

#[async_trait]
impl Images for StoreImages {
    fn local(&self, reference: &Reference) -> Option<Image> {
        self.0.images.image(reference).ok()
    }

    async fn pull(&self, transport: &Transport, reference: &Reference) -> Result<Image, RegistryError> {
        let _lease = self.0.images.writer_lease();
        skiff_image::registry::pull(&self.0.images, transport, reference, &skiff_image::registry::Quiet).await
    }

    async fn unpack(&self, image: &Image) -> Result<Vec<PathBuf>, UnpackError> {
        let images = self.0.images.clone();
        let image = image.clone();
        match tokio::task::spawn_blocking(move || images.unpack(&image)).await {
            Ok(layers) => layers.map_err(UnpackError::Store),
            Err(e) => Err(UnpackError::Task(e)),
        }
    }

    fn set_lease(&self, name: &str, digests: &[String]) -> Result<(), StoreError> {
        self.0.images.set_lease(name, digests)
    }

    fn remove_lease(&self, name: &str) -> Result<(), StoreError> {
        self.0.images.remove_lease(name)
    }
}

/// The API server through the agent's client and event recorder.
struct KubeApi(Arc<Agent>);

#[async_trait]
impl PodApi for KubeApi {
    async fn event(&self, pod: &Pod, container: Option<&str>, kind: Type, reason: &str, message: &str) {
        self.0.recorder.pod(pod, container, kind, reason, message).await
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, kube::Error> {
        Api::<Secret>::namespaced(self.0.config.client.clone(), namespace).get_opt(name).await
    }

    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, kube::Error> {
        Api::<ConfigMap>::namespaced(self.0.config.client.clone(), namespace).get_opt(name).await
    }

    async fn claim(&self, namespace: &str, name: &str) -> Result<Option<PersistentVolumeClaim>, kube::Error> {
        Api::<PersistentVolumeClaim>::namespaced(self.0.config.client.clone(), namespace).get_opt(name).await
    }

    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>, kube::Error> {
        Api::<PersistentVolume>::all(self.0.config.client.clone()).get_opt(name).await
    }

    async fn token(&self, namespace: &str, account: &str, request: &TokenRequest) -> Result<TokenRequest, kube::Error> {
        let api = Api::<ServiceAccount>::namespaced(self.0.config.client.clone(), namespace);
        api.create_token_request(account, &PostParams::default(), request).await
    }

    fn track(&self, uid: &str, objects: &BTreeSet<Watched>, wake: &Arc<Notify>) {
        self.0.watches.set(uid, objects, wake)
    }

    async fn patch_status(&self, namespace: &str, name: &str, status: &serde_json::Value) -> Result<Pod, kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.0.config.client.clone(), namespace);
        let patch = Patch::Merge(serde_json::json!({ "status": status }));
        api.patch_status(name, &PatchParams::default(), &patch).await
    }

    async fn delete(&self, namespace: &str, name: &str, uid: &str) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.0.config.client.clone(), namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..Default::default()
        };
        api.delete(name, &params).await.map(|_| ())
    }
}
