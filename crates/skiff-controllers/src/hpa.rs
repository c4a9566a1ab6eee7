//! The horizontal pod autoscaler: every 15 s (upstream's sync period), each
//! HorizontalPodAutoscaler's target is read through its `scale` subresource, its pods' CPU use
//! from `metrics.k8s.io` against their requests, and the replicas set to
//! `ceil(current * utilization / target)` (within a 10% tolerance, between minReplicas and
//! maxReplicas; a scale-down waits out a 5-minute stabilization window, as upstream's default
//! behavior). [`desired`] is pure; [`run`] does the IO.

use crate::informers::Informers;
use crate::work::{self, Key};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use skiff_client::events::{Recorder, Type};
use skiff_core::quantity::millicores;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SYNC: Duration = Duration::from_secs(15);
const TOLERANCE: f64 = 0.1;
const DOWNSCALE_WINDOW: Duration = Duration::from_secs(300);

/// The replica count CPU use asks for: `current` pods at `utilization`% of their requests,
/// `target`% wanted; unchanged within the tolerance.
pub fn desired(current: i32, utilization: i64, target: i64) -> i32 {
    let ratio = utilization as f64 / target.max(1) as f64;
    if (ratio - 1.0).abs() <= TOLERANCE {
        return current;
    }
    (ratio * f64::from(current.max(1))).ceil() as i32
}

/// The resource of a scale target kind, in `apps/v1`.
fn resource_of(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" => Some("deployments"),
        "ReplicaSet" => Some("replicasets"),
        _ => None,
    }
}

/// Why a round could not decide: the condition's reason and message.
struct Failed(&'static str, String);

/// Recommendations of the last five minutes, per autoscaler, for the scale-down window.
type History = Arc<Mutex<HashMap<Key, Vec<(Instant, i32)>>>>;

/// Run until the process ends.
pub async fn run(informers: &Informers) {
    let client = informers.client_as(crate::identity::HPA);
    let recorder = Recorder::new(client.clone(), "horizontal-pod-autoscaler", "");
    let queue = work::Queue::new();
    let q = queue.clone();
    let hpas = informers.watch(move |h: &HorizontalPodAutoscaler| q.add(Key::of(h))).await;
    let history: History = Arc::default();
    work::drive(queue, "HorizontalPodAutoscaler", |key| {
        let (client, hpas, recorder, history) = (client.clone(), hpas.clone(), recorder.clone(), history.clone());
        async move {
            let Some(hpa) = hpas.get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
                history.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                return Ok(None);
            };
            reconcile(&client, &recorder, &history, &key, &hpa).await?;
            Ok(Some(SYNC))
        }
    })
    .await;
}

async fn reconcile(
    client: &kube::Client,
    recorder: &Recorder,
    history: &History,
    key: &Key,
    hpa: &HorizontalPodAutoscaler,
) -> Result<(), kube::Error> {
    let spec = hpa.spec.clone();
    let target = &spec.scale_target_ref;
    let api_hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &key.namespace);
    let reference = ObjectReference {
        api_version: Some("autoscaling/v2".into()),
        kind: Some("HorizontalPodAutoscaler".into()),
        name: Some(key.name.clone()),
        namespace: Some(key.namespace.clone()),
        uid: hpa.metadata.uid.clone(),
        ..Default::default()
    };
    let Some(resource) = resource_of(&target.kind) else {
        let why = format!(
            "the HPA controller was unable to get the target's current scale: no scale for kind {:?}",
            target.kind
        );
        return status(&api_hpa, hpa, 0, 0, None, Some(Failed("FailedGetScale", why)), false).await;
    };
    let path = format!("/apis/apps/v1/namespaces/{}/{resource}/{}/scale", key.namespace, target.name);
    let scale: Scale =
        match client.request(http::Request::get(&path).body(Vec::new()).map_err(kube::Error::HttpError)?).await {
            Ok(s) => s,
            Err(e) => {
                let why = format!("the HPA controller was unable to get the target's current scale: {e}");
                return status(&api_hpa, hpa, 0, 0, None, Some(Failed("FailedGetScale", why)), false).await;
            }
        };
    let current = scale.status.as_ref().map_or(0, |s| s.replicas);
    let selector = scale.status.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let target_pct = spec
        .metrics
        .iter()
        .flatten()
        .find_map(|m| m.resource.as_ref().filter(|r| r.name == "cpu")?.target.average_utilization)
        .unwrap_or(80);
    let utilization = match cpu_utilization(client, &key.namespace, &selector).await {
        Ok(u) => u,
        Err(Failed(reason, why)) => {
            recorder.object(reference, Type::Warning, reason, &why).await;
            return status(&api_hpa, hpa, current, current, None, Some(Failed(reason, why)), false).await;
        }
    };
    let min = spec.min_replicas.unwrap_or(1);
    let wanted = desired(current, utilization, i64::from(target_pct));
    // Scale down only to the highest recommendation of the window (no flapping).
    let recommended = {
        let mut h = history.lock().unwrap_or_else(|p| p.into_inner());
        let list = h.entry(key.clone()).or_default();
        let now = Instant::now();
        list.retain(|(at, _)| now.duration_since(*at) < DOWNSCALE_WINDOW);
        list.push((now, wanted));
        if wanted < current { list.iter().map(|(_, r)| *r).max().unwrap_or(wanted).min(current) } else { wanted }
    };
    let next = recommended.clamp(min, spec.max_replicas.max(min));
    let limited = recommended > spec.max_replicas;
    if current > 0 && next != current {
        let request = http::Request::patch(&path)
            .header("content-type", "application/merge-patch+json")
            .body(serde_json::to_vec(&json!({"spec": {"replicas": next}})).unwrap_or_default())
            .map_err(kube::Error::HttpError)?;
        client.request::<Value>(request).await?;
        let direction = if next > current { "above" } else { "below" };
        let message =
            format!("New size: {next}; reason: cpu resource utilization (percentage of request) {direction} target");
        recorder.object(reference, Type::Normal, "SuccessfulRescale", &message).await;
    }
    status(&api_hpa, hpa, current, next, Some(utilization), None, limited).await
}

/// The pods' CPU use as a percentage of their requests, from `metrics.k8s.io`.
async fn cpu_utilization(client: &kube::Client, namespace: &str, selector: &str) -> Result<i64, Failed> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| Failed("FailedGetResourceMetric", format!("unable to list the pods: {e}")))?;
    let query: String = url_encode(selector);
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods?labelSelector={query}");
    let request =
        http::Request::get(&path).body(Vec::new()).map_err(|e| Failed("FailedGetResourceMetric", e.to_string()))?;
    let metrics: Value = client.request(request).await.map_err(|e| {
        Failed(
            "FailedGetResourceMetric",
            format!("failed to get cpu utilization: unable to get metrics for resource cpu: {e}"),
        )
    })?;
    let usage: HashMap<&str, i64> = metrics["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let cpu = m["containers"].as_array()?.iter().filter_map(|c| millicores(c["usage"]["cpu"].as_str()?)).sum();
            Some((m["metadata"]["name"].as_str()?, cpu))
        })
        .collect();
    let (mut used, mut requested) = (0i64, 0i64);
    for pod in pods.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let Some(cpu) = usage.get(name) else { continue };
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let request = c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("cpu"));
            match request.and_then(|q| millicores(&q.0)) {
                Some(m) => requested += m,
                None => {
                    return Err(Failed(
                        "FailedGetResourceMetric",
                        format!(
                            "failed to get cpu utilization: missing request for cpu in container {} of Pod {name}",
                            c.name
                        ),
                    ));
                }
            }
        }
        used += cpu;
    }
    if requested == 0 {
        let why = "failed to get cpu utilization: did not receive metrics for targeted pods (pods might be unready)";
        return Err(Failed("FailedGetResourceMetric", why.into()));
    }
    Ok(used * 100 / requested)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Write the autoscaler's status: replicas, the CPU measured and the conditions, keeping the
/// transition time of a condition that did not change; nothing when nothing changed (the write
/// would come back through the watch and queue the autoscaler again).
async fn status(
    api: &Api<HorizontalPodAutoscaler>,
    hpa: &HorizontalPodAutoscaler,
    current: i32,
    desired: i32,
    utilization: Option<i64>,
    failed: Option<Failed>,
    limited: bool,
) -> Result<(), kube::Error> {
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()).to_string();
    let condition = |type_: &str, ok: bool, reason: &str, message: &str| json!({"type": type_, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message, "lastTransitionTime": now});
    let active = match &failed {
        Some(Failed(reason, why)) => condition("ScalingActive", false, reason, why),
        None => condition(
            "ScalingActive",
            true,
            "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
        ),
    };
    let limit = if limited {
        condition(
            "ScalingLimited",
            true,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    } else {
        condition("ScalingLimited", false, "DesiredWithinRange", "the desired count is within the acceptable range")
    };
    let mut status = json!({"currentReplicas": current, "desiredReplicas": desired, "conditions": [
        condition("AbleToScale", true, "ReadyForNewScale", "recommended size matches current size"), active, limit]});
    if let Some(u) = utilization {
        status["currentMetrics"] =
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}]);
    }
    if desired != current && failed.is_none() {
        status["lastScaleTime"] = json!(now);
    }
    let old = serde_json::to_value(&hpa.status).unwrap_or_default();
    let old_conditions = old["conditions"].as_array().cloned().unwrap_or_default();
    for c in status["conditions"].as_array_mut().into_iter().flatten() {
        if let Some(o) = old_conditions.iter().find(|o| o["type"] == c["type"] && o["status"] == c["status"]) {
            c["lastTransitionTime"] = o["lastTransitionTime"].clone();
        }
    }
    // What the merge patch would make of the old status.
    let mut merged = if old.is_object() { old.clone() } else { json!({}) };
    for (k, v) in status.as_object().into_iter().flatten() {
        merged[k] = v.clone();
    }
    if merged == old {
        return Ok(());
    }
    let name = hpa.metadata.name.as_deref().unwrap_or_default();
    match api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_follow_utilization_outside_the_tolerance() {
        assert_eq!(desired(1, 200, 50), 4);
        assert_eq!(desired(2, 54, 50), 2, "within 10%");
        assert_eq!(desired(4, 10, 50), 1);
        assert_eq!(desired(3, 100, 50), 6);
    }
}
