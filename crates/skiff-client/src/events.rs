//! Events about a pod (or any object a controller acts on), as the kubelet records them (reason, message, type, source `kubelet`),
//! counted and aggregated as client-go's recorder does (`correlator`): a repeat updates one
//! object, so `kubectl describe` shows `(x4 over 80s)` instead of a wall of equal lines.

mod correlator;

use correlator::{Correlator, Outcome};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Normal,
    Warning,
}

/// Events waiting to be written, at most: beyond this they are dropped (and logged), as the
/// kubelet's broadcaster drops them rather than stall a pod.
const QUEUE: usize = 1024;

/// Records events in the background, in order: a pod's start never waits for its events.
#[derive(Clone)]
pub struct Recorder {
    queue: tokio::sync::mpsc::Sender<Event>,
    component: &'static str,
    host: String,
}

impl Recorder {
    /// A recorder writing through `client` from a task of its own (needs a tokio runtime).
    pub fn new(client: kube::Client, component: &'static str, host: &str) -> Self {
        let (queue, mut pending) = tokio::sync::mpsc::channel::<Event>(QUEUE);
        tokio::spawn(async move {
            let mut correlator = Correlator::default();
            while let Some(event) = pending.recv().await {
                let reason = event.reason.clone();
                let outcome = correlator.correlate(event, jiff::Timestamp::now());
                if let Err(e) = write(&client, outcome).await {
                    tracing::debug!(error = %e, ?reason, "recording an event");
                }
            }
        });
        Recorder { queue, component, host: host.to_string() }
    }

    /// Record an event about `pod` (and, with `container`, about that container's field path).
    /// Best-effort, as upstream: queued for the background writer, never fatal.
    pub async fn pod(&self, pod: &Pod, container: Option<&str>, kind: Type, reason: &str, message: &str) {
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let field_path = container.map(|c| {
            let spec = pod.spec.as_ref();
            let init = spec.and_then(|s| s.init_containers.as_ref()).is_some_and(|v| v.iter().any(|x| x.name == c));
            let ephemeral =
                spec.and_then(|s| s.ephemeral_containers.as_ref()).is_some_and(|v| v.iter().any(|x| x.name == c));
            let list = match (init, ephemeral) {
                (true, _) => "initContainers",
                (_, true) => "ephemeralContainers",
                _ => "containers",
            };
            format!("spec.{list}{{{c}}}")
        });
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: Some(ns),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path,
        };
        self.object(reference, kind, reason, message).await;
    }

    /// Record an event about the object `reference` names (a controller's `SuccessfulCreate`
    /// about its ReplicaSet, say). Best-effort, as [`Recorder::pod`].
    pub async fn object(&self, reference: ObjectReference, kind: Type, reason: &str, message: &str) {
        let ns = reference.namespace.clone().unwrap_or_else(|| "default".into());
        let name = reference.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(ns),
                ..Default::default()
            },
            involved_object: reference,
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(if kind == Type::Normal { "Normal" } else { "Warning" }.into()),
            source: Some(EventSource { component: Some(self.component.into()), host: Some(self.host.clone()) }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(self.component.into()),
            reporting_instance: Some(self.host.clone()),
            ..Default::default()
        };
        if self.queue.try_send(event).is_err() {
            tracing::warn!(reason, "dropping an event: too many are waiting to be written");
        }
    }
}

/// Create or patch as the correlator decided. A repeat whose object is gone (expired, deleted)
/// is created again, as upstream does.
async fn write(client: &kube::Client, outcome: Outcome) -> Result<(), kube::Error> {
    let (event, patch) = match outcome {
        Outcome::Skip => return Ok(()),
        Outcome::Create(event) => (event, None),
        Outcome::Update { event, patch } => (event, Some(patch)),
    };
    let api = Api::<Event>::namespaced(client.clone(), event.metadata.namespace.as_deref().unwrap_or_default());
    if let (Some(patch), Some(name)) = (patch, event.metadata.name.as_deref()) {
        match api.patch(name, &PatchParams::default(), &Patch::Strategic(patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => return other.map(drop),
        }
    }
    api.create(&PostParams::default(), &event).await.map(drop)
}
