//! The disruption controller: keeps each PodDisruptionBudget's status (how many of its pods are
//! healthy, how many must be, how many may be disrupted now) so the eviction subresource can
//! refuse what would break the budget. Expected pods are the pods the selector matches (upstream
//! asks their controllers' scale for percentages; the count of matching pods is the same once a
//! workload has settled). [`status`] is pure; [`run`] watches budgets and pods.

use crate::informers::Informers;
use crate::replicaset::ready_since;
use crate::work::{self, Key, Queue};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use skiff_core::selector::LabelSelector;
use std::sync::Arc;
use std::time::Duration;

const RESYNC: Duration = Duration::from_secs(30);

fn scaled(v: &IntOrString, total: i32) -> i32 {
    match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            i32::try_from((i64::from(total) * pct + 99) / 100).unwrap_or(0)
        }
    }
}

/// Pure: the budget's status given the pods of its namespace, at `now`.
pub fn status(pdb: &PodDisruptionBudget, pods: &[Arc<Pod>], now: Timestamp) -> PodDisruptionBudgetStatus {
    let spec = pdb.spec.clone().unwrap_or_default();
    let selector = LabelSelector::from_api(&serde_json::to_value(&spec.selector).unwrap_or_default());
    let matching: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| !selector.is_empty() && selector.matches(&p.metadata.labels.clone().unwrap_or_default()))
        .collect();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let expected = count(matching.len());
    let healthy =
        count(matching.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && ready_since(p).is_some()).count());
    let desired = match (&spec.min_available, &spec.max_unavailable) {
        (Some(min), _) => scaled(min, expected),
        (None, Some(max)) => (expected - scaled(max, expected)).max(0),
        (None, None) => expected,
    };
    let previous = pdb.status.clone().unwrap_or_default();
    // Pods evicted but not yet gone still count as disrupted.
    let disrupted = previous.disrupted_pods.clone().unwrap_or_default();
    let pending: i32 = count(
        disrupted
            .keys()
            .filter(|name| {
                matching.iter().any(|p| {
                    p.metadata.name.as_deref() == Some(name.as_str()) && p.metadata.deletion_timestamp.is_none()
                })
            })
            .count(),
    );
    let allowed = (healthy - desired - pending).max(0);
    let (status, reason, message) =
        if allowed > 0 { ("True", "SufficientPods", "") } else { ("False", "InsufficientPods", "") };
    let old = previous.conditions.iter().flatten().find(|c| c.type_ == "DisruptionAllowed");
    let since = old.filter(|c| c.status == status).map_or(Time(now), |c| c.last_transition_time.clone());
    PodDisruptionBudgetStatus {
        current_healthy: Some(healthy),
        desired_healthy: Some(desired),
        expected_pods: Some(expected),
        disruptions_allowed: Some(allowed),
        observed_generation: pdb.metadata.generation,
        disrupted_pods: Some(disrupted).filter(|d| !d.is_empty()),
        conditions: Some(vec![Condition {
            type_: "DisruptionAllowed".into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: since,
            observed_generation: pdb.metadata.generation,
        }]),
    }
}

/// Run the disruption controller until the process stops.
pub async fn run(informers: &Informers) {
    let client = informers.client_as(crate::identity::DISRUPTION);
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let budgets = informers.watch(move |b: &PodDisruptionBudget| q.add(Key::of(b))).await;
    let (q, all) = (queue.clone(), budgets.clone());
    let pods = informers
        .watch(move |p: &Pod| {
            // A pod changes the budgets of its namespace.
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            all.state()
                .iter()
                .filter(|b| b.metadata.namespace.as_deref() == Some(ns.as_str()))
                .for_each(|b| q.add(Key::of(b.as_ref())));
        })
        .await;
    work::resync(queue.clone(), budgets.clone(), RESYNC);
    work::drive(queue, "PodDisruptionBudget", |key| {
        let (client, budgets, pods) = (client.clone(), budgets.clone(), pods.clone());
        async move {
            let Some(pdb) = budgets.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
            let next = status(&pdb, &work::in_namespace(&pods, &key.namespace), Timestamp::now());
            if pdb.status.as_ref() != Some(&next) {
                let api = Api::<PodDisruptionBudget>::namespaced(client, &key.namespace);
                let patch = json!({"status": next});
                match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await {
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    other => drop(other?),
                }
            }
            Ok(None)
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                conditions: ready
                    .then(|| vec![PodCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
                ..Default::default()
            }),
        })
    }

    fn pdb(spec: serde_json::Value) -> PodDisruptionBudget {
        let mut spec = spec;
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
        serde_json::from_value(json!({"metadata": {"name": "web", "generation": 1}, "spec": spec})).expect("pdb")
    }

    #[test]
    fn disruptions_allowed_from_healthy_pods() {
        let pods = [pod("a", true), pod("b", true), pod("c", false)];
        let s = status(&pdb(json!({"minAvailable": 2})), &pods, Timestamp::now());
        assert_eq!(
            (s.expected_pods, s.current_healthy, s.desired_healthy, s.disruptions_allowed),
            (Some(3), Some(2), Some(2), Some(0))
        );
        let s = status(&pdb(json!({"maxUnavailable": 1})), &pods, Timestamp::now());
        assert_eq!((s.desired_healthy, s.disruptions_allowed), (Some(2), Some(0)));
        let s = status(&pdb(json!({"minAvailable": "50%"})), &pods, Timestamp::now());
        assert_eq!((s.desired_healthy, s.disruptions_allowed), (Some(2), Some(0)));
        let healthy = [pod("a", true), pod("b", true), pod("c", true)];
        let s = status(&pdb(json!({"maxUnavailable": 1})), &healthy, Timestamp::now());
        assert_eq!(s.disruptions_allowed, Some(1));
        assert_eq!(s.conditions.expect("conditions")[0].reason, "SufficientPods");
    }
}
