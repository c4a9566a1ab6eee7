//! The replication controller: keeps ReplicationControllers' pods as the ReplicaSet controller
//! keeps a ReplicaSet's, by the same code ([`crate::replicaset`]). As upstream's
//! `pkg/controller/replication`, each ReplicationController is read as the ReplicaSet it stands
//! for ([`to_replica_set`]: its selector map becomes `matchLabels`); the pods it makes and adopts
//! are owned by the ReplicationController, events are about it, and the status (the same
//! fields) is written back to it, as `kube-system/replication-controller`.

use crate::identity::Identity;
use crate::informers::Informers;
use crate::replicaset::Replicated;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{ReplicationController, ReplicationControllerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::borrow::Cow;

impl Replicated for ReplicationController {
    const KIND_NAME: &'static str = "ReplicationController";
    const IDENTITY: Identity = crate::identity::REPLICATION_CONTROLLER;
    const COMPONENT: &'static str = "replication-controller";
    fn as_replica_set(&self) -> Cow<'_, ReplicaSet> {
        Cow::Owned(to_replica_set(self))
    }
}

/// The ReplicaSet `rc` stands for (upstream's `convertRCtoRS`): the same metadata, replicas,
/// minReadySeconds, template and status, the selector map as `matchLabels`.
pub fn to_replica_set(rc: &ReplicationController) -> ReplicaSet {
    let spec = rc.spec.clone().unwrap_or_default();
    ReplicaSet {
        metadata: rc.metadata.clone(),
        spec: ReplicaSetSpec {
            replicas: spec.replicas,
            min_ready_seconds: spec.min_ready_seconds,
            selector: LabelSelector { match_labels: spec.selector, match_expressions: None },
            template: spec.template,
        },
        status: rc.status.as_ref().map(status),
    }
}

fn status(s: &ReplicationControllerStatus) -> ReplicaSetStatus {
    let conditions = s.conditions.as_ref().map(|list| {
        list.iter()
            .map(|c| ReplicaSetCondition {
                type_: Some(c.type_.clone()),
                status: Some(c.status.clone()),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
            .collect()
    });
    ReplicaSetStatus {
        replicas: s.replicas,
        fully_labeled_replicas: s.fully_labeled_replicas,
        ready_replicas: s.ready_replicas,
        available_replicas: s.available_replicas,
        observed_generation: s.observed_generation,
        conditions,
        ..Default::default()
    }
}

/// Run the replication controller until the process stops.
pub async fn run(informers: &Informers) {
    crate::replicaset::run_for::<ReplicationController>(informers).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::controller_reference;
    use crate::replicaset::{REPLICA_FAILURE, plan, with_failure};
    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use serde_json::json;
    use std::sync::Arc;

    fn rc(replicas: i32) -> ReplicationController {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default", "uid": "rc-1", "generation": 3},
            "spec": {"replicas": replicas, "selector": {"app": "web"},
                "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            "status": {"replicas": 0, "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                "message": "quota"}]}}))
        .expect("rc")
    }

    fn pod(name: &str, labels: serde_json::Value, owner: Option<OwnerReference>) -> Arc<Pod> {
        let labels: std::collections::BTreeMap<String, String> = serde_json::from_value(labels).expect("labels");
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(labels),
                owner_references: owner.map(|o| vec![o]),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[test]
    fn reads_as_the_replica_set_it_stands_for() {
        let rs = to_replica_set(&rc(2));
        assert_eq!(rs.metadata.uid.as_deref(), Some("rc-1"));
        assert_eq!(serde_json::to_value(&rs.spec.selector).expect("json"), json!({"matchLabels": {"app": "web"}}));
        assert_eq!(rs.spec.replicas, Some(2));
        let status = rs.status.expect("status");
        let conditions = status.conditions.expect("conditions");
        assert_eq!(conditions[0].type_.as_deref(), Some(REPLICA_FAILURE));
        assert_eq!(conditions[0].message.as_deref(), Some("quota"));
    }

    #[test]
    fn keeps_pods_by_the_selector_map() {
        let owner = controller_reference(&rc(2));
        assert_eq!((owner.api_version.as_str(), owner.kind.as_str()), ("v1", "ReplicationController"));
        assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));
        let pods = vec![
            pod("ours", json!({"app": "web", "tier": "front"}), Some(owner.clone())),
            pod("orphan", json!({"app": "web"}), None),
            pod("other", json!({"app": "db"}), None),
        ];
        let rs = to_replica_set(&rc(3));
        let p = plan(&rs, &pods, Timestamp::now());
        assert_eq!(p.adopt, ["orphan"]);
        assert_eq!(p.create, 1);
        assert_eq!(
            (p.status.replicas, p.status.fully_labeled_replicas, p.status.observed_generation),
            (2, Some(1), Some(3))
        );
        // the round went through: the failure condition goes
        let status = with_failure(p.status.clone(), &p, None, Timestamp::now());
        assert_eq!(status.conditions, None);
        // what is written back reads as the RC's status
        let written: ReplicationControllerStatus =
            serde_json::from_value(serde_json::to_value(&status).expect("json")).expect("an RC status");
        assert_eq!((written.replicas, written.fully_labeled_replicas), (2, Some(1)));
    }
}
