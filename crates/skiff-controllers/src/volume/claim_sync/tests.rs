use super::super::edits::{claim_bound_to, claim_with_status, volume_bound_to, volume_with_phase};
use super::super::fixtures::{claim, class, node, pod, volume};
use super::super::{BOUND, NO_PROVISIONER, annotation};
use super::*;
use serde_json::json;
use std::collections::HashMap;

struct World {
    volumes: Vec<Arc<PersistentVolume>>,
    classes: Vec<Arc<StorageClass>>,
    nodes: Vec<Arc<Node>>,
    claims: Vec<Arc<PersistentVolumeClaim>>,
    pods: Vec<Arc<Pod>>,
}

impl World {
    fn new(volumes: Vec<PersistentVolume>, classes: Vec<StorageClass>) -> World {
        World {
            volumes: volumes.into_iter().map(Arc::new).collect(),
            classes: classes.into_iter().map(Arc::new).collect(),
            nodes: vec![Arc::new(node("n1")), Arc::new(node("n2"))],
            claims: vec![],
            pods: vec![],
        }
    }

    fn sync(&self, c: &PersistentVolumeClaim) -> ClaimPlan {
        let view = View {
            volumes: &self.volumes,
            classes: &self.classes,
            nodes: &self.nodes,
            claims: &self.claims,
            pods: &self.pods,
        };
        sync_claim(c, &view)
    }
}

fn bind_to(plan: &ClaimPlan) -> Option<&str> {
    match &plan.action {
        ClaimAction::Bind(v) => Some(name(&v.metadata)),
        _ => None,
    }
}

fn reasons(plan: &ClaimPlan) -> Vec<(&str, &str)> {
    plan.events.iter().map(|n| (n.reason, n.message.as_str())).collect()
}

fn pending() -> ClaimAction {
    ClaimAction::Phase { phase: PENDING, on_change: None }
}

#[test]
fn a_pending_claim_binds_the_best_available_volume() {
    let w = World::new(
        vec![
            volume("big", json!({"capacity": {"storage": "100Gi"}})),
            volume("fits", json!({"capacity": {"storage": "2Gi"}})),
            volume("fast", json!({"storageClassName": "fast"})),
        ],
        vec![],
    );
    assert_eq!(bind_to(&w.sync(&claim("c", json!({"storageClassName": ""})))), Some("fits"));
    assert_eq!(bind_to(&w.sync(&claim("c", json!({"storageClassName": "fast"})))), Some("fast"));
}

#[test]
fn a_claim_naming_its_volume() {
    let w = World::new(
        vec![
            volume("free", json!({})),
            volume("small", json!({"capacity": {"storage": "1Mi"}})),
            volume("taken", json!({"claimRef": {"namespace": "ns", "name": "other", "uid": "uid-other"}})),
        ],
        vec![],
    );
    assert_eq!(bind_to(&w.sync(&claim("c", json!({"volumeName": "free"})))), Some("free"));
    let p = w.sync(&claim("c", json!({"volumeName": "small"})));
    assert_eq!(p.action, pending());
    assert_eq!(
        reasons(&p),
        [("VolumeMismatch", "Cannot bind to requested volume \"small\": requested PV is too small")]
    );
    let p = w.sync(&claim("c", json!({"volumeName": "taken"})));
    assert_eq!(p.action, pending());
    assert_eq!(reasons(&p), [("FailedBinding", "volume \"taken\" already bound to a different claim.")]);
    let p = w.sync(&claim("c", json!({"volumeName": "nowhere"})));
    assert_eq!((p.action, p.events), (pending(), vec![]));
}

#[test]
fn a_volume_reserved_for_the_claim_is_bound_to_it() {
    // The provisioner's volume names the claim (with its uid); a user's by name only.
    let made =
        volume("pvc-1", json!({"claimRef": {"namespace": "ns", "name": "c", "uid": "uid-c"}, "storageClassName": "x"}));
    let mut reserved = volume("r", json!({"claimRef": {"namespace": "ns", "name": "d"}}));
    reserved.status = None;
    let w = World::new(vec![made, reserved, volume("free", json!({}))], vec![class("x", "example.com/p", None)]);
    assert_eq!(bind_to(&w.sync(&claim("c", json!({"storageClassName": "x"})))), Some("pvc-1"));
    assert_eq!(bind_to(&w.sync(&claim("d", json!({})))), Some("r"));
}

#[test]
fn no_volume_hands_the_claim_to_its_provisioner() {
    let w = World::new(vec![], vec![class("ext", "example.com/nfs", Some("Immediate"))]);
    let p = w.sync(&claim("c", json!({"storageClassName": "ext"})));
    assert_eq!(p.action, ClaimAction::Provision { provisioner: "example.com/nfs".into(), node: None });
}

#[test]
fn local_volumes_of_immediate_classes_are_placed_by_the_binder() {
    let mut w = World::new(vec![], vec![class("local", LOCAL_PATH, None)]);
    let p = w.sync(&claim("c", json!({"storageClassName": "local"})));
    assert_eq!(p.action, ClaimAction::Provision { provisioner: LOCAL_PATH.into(), node: Some("n1".into()) });
    // Already placed: not moved.
    let mut placed = claim("c", json!({"storageClassName": "local"}));
    placed.metadata.annotations = Some([(SELECTED_NODE.to_string(), "n2".to_string())].into());
    assert_eq!(w.sync(&placed).action, ClaimAction::Provision { provisioner: LOCAL_PATH.into(), node: None });
    // Placed on a node that is gone: placed again.
    w.nodes.remove(1);
    assert_eq!(
        w.sync(&placed).action,
        ClaimAction::Provision { provisioner: LOCAL_PATH.into(), node: Some("n1".into()) }
    );
    w.nodes.clear();
    let p = w.sync(&claim("c", json!({"storageClassName": "local"})));
    assert_eq!(p.action, ClaimAction::None);
    assert_eq!(
        reasons(&p),
        [("ProvisioningFailed", "no Ready, schedulable node to put a skiff.dev/local-path volume on")]
    );
}

#[test]
fn wait_for_first_consumer_until_the_scheduler_picks_a_node() {
    let mut w = World::new(
        vec![volume("static", json!({"storageClassName": "wait"}))],
        vec![class("wait", LOCAL_PATH, Some("WaitForFirstConsumer"))],
    );
    let c = claim("c", json!({"storageClassName": "wait"}));
    let p = w.sync(&c);
    assert_eq!(p.action, pending());
    assert_eq!(reasons(&p), [("WaitForFirstConsumer", "waiting for first consumer to be created before binding")]);
    w.pods = vec![
        Arc::new(pod("web", &["c"], "", "Pending")),
        Arc::new(pod("done", &["c"], "", "Succeeded")),
        Arc::new(pod("running", &["c"], "n1", "Running")),
    ];
    assert_eq!(reasons(&w.sync(&c)), [("WaitForPodScheduled", "waiting for pod web to be scheduled")]);
    w.pods.push(Arc::new(pod("api", &["c"], "", "Pending")));
    assert_eq!(reasons(&w.sync(&c)), [("WaitForPodScheduled", "waiting for pods web,api to be scheduled")]);
    let mut chosen = c.clone();
    chosen.metadata.annotations = Some([(SELECTED_NODE.to_string(), "n2".to_string())].into());
    assert_eq!(w.sync(&chosen).action, ClaimAction::Provision { provisioner: LOCAL_PATH.into(), node: None });
}

#[test]
fn classes_that_cannot_provision() {
    let w = World::new(vec![], vec![class("manual", NO_PROVISIONER, None)]);
    let p = w.sync(&claim("c", json!({"storageClassName": "missing"})));
    assert_eq!(p.action, ClaimAction::None);
    assert_eq!(reasons(&p), [("ProvisioningFailed", "storageclass.storage.k8s.io \"missing\" not found")]);
    let p = w.sync(&claim("c", json!({"storageClassName": "manual"})));
    assert_eq!(reasons(&p), [("ProvisioningFailed", "no volume plugin matched name: kubernetes.io/no-provisioner")]);
    let p = w.sync(&claim("c", json!({"storageClassName": ""})));
    assert_eq!(p.action, pending());
    let why = "no persistent volumes available for this claim and no storage class is set";
    assert_eq!(reasons(&p), [("FailedBinding", why)]);
}

#[test]
fn a_claim_without_a_class_gets_the_default() {
    let mut default = class("standard", LOCAL_PATH, None);
    default.metadata.annotations =
        Some([("storageclass.kubernetes.io/is-default-class".to_string(), "true".to_string())].into());
    let w = World::new(vec![], vec![default]);
    assert_eq!(w.sync(&claim("c", json!({}))).action, ClaimAction::AssignClass("standard".into()));
    // "" is a choice, not a missing class.
    assert_eq!(w.sync(&claim("c", json!({"storageClassName": ""}))).action, pending());
}

fn bound_claim(volume_name: &str) -> PersistentVolumeClaim {
    let mut c = claim("c", json!({"volumeName": volume_name}));
    c.metadata.annotations = Some([(BIND_COMPLETED.to_string(), "yes".to_string())].into());
    c
}

#[test]
fn a_bound_claim_whose_volume_is_gone_is_lost() {
    let w = World::new(
        vec![
            volume("mine", json!({"claimRef": {"namespace": "ns", "name": "c", "uid": "uid-c"}})),
            volume("stolen", json!({"claimRef": {"namespace": "ns", "name": "x", "uid": "uid-x"}})),
        ],
        vec![],
    );
    let lost = |reason: &'static str, message: &str| ClaimAction::Phase {
        phase: LOST,
        on_change: Some(Note::warning(reason, message)),
    };
    assert_eq!(
        w.sync(&bound_claim("gone")).action,
        lost("ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
    );
    assert_eq!(
        w.sync(&bound_claim("")).action,
        lost("ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
    );
    assert_eq!(
        w.sync(&bound_claim("stolen")).action,
        lost("ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")
    );
    assert_eq!(bind_to(&w.sync(&bound_claim("mine"))), Some("mine"));
}

/// The API server's rule for an update: it names the version stored, or it conflicts.
#[derive(Default)]
struct Server {
    volumes: HashMap<String, PersistentVolume>,
    claims: HashMap<String, PersistentVolumeClaim>,
    revision: u64,
}

impl Server {
    fn put<K: kube::Resource + Clone>(map: &mut HashMap<String, K>, revision: &mut u64, obj: K) -> Result<K, ()> {
        let key = obj.meta().name.clone().unwrap_or_default();
        let stored = map.get(&key).ok_or(())?;
        if stored.meta().resource_version != obj.meta().resource_version {
            return Err(()); // 409 Conflict
        }
        *revision += 1;
        let mut written = obj;
        written.meta_mut().resource_version = Some(revision.to_string());
        map.insert(key, written.clone());
        Ok(written)
    }

    /// The binder's `bind`, write by write, each on what the previous one returned.
    fn bind(&mut self, volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<(), ()> {
        let mut volume = volume.clone();
        if let Some(next) = volume_bound_to(&volume, claim) {
            volume = Self::put(&mut self.volumes, &mut self.revision, next)?;
        }
        if let Some(next) = volume_with_phase(&volume, BOUND, "") {
            volume = Self::put(&mut self.volumes, &mut self.revision, next)?;
        }
        let mut claim = claim.clone();
        if let Some(next) = claim_bound_to(&claim, name(&volume.metadata)) {
            claim = Self::put(&mut self.claims, &mut self.revision, next)?;
        }
        if let Some(next) = claim_with_status(&claim, BOUND, Some(&volume)) {
            Self::put(&mut self.claims, &mut self.revision, next)?;
        }
        Ok(())
    }

    fn world(&self) -> World {
        World::new(self.volumes.values().cloned().collect(), vec![])
    }
}

#[test]
fn two_claims_racing_for_one_volume_end_with_one_bound() {
    let mut server = Server { revision: 10, ..Default::default() };
    server.volumes.insert("only".into(), volume("only", json!({})));
    for c in ["a", "b"] {
        server.claims.insert(c.into(), claim(c, json!({"storageClassName": ""})));
    }
    // Both decide from the same snapshot: each wants the only volume.
    let world = server.world();
    let (a, b) = (server.claims["a"].clone(), server.claims["b"].clone());
    let (plan_a, plan_b) = (world.sync(&a), world.sync(&b));
    let (ClaimAction::Bind(va), ClaimAction::Bind(vb)) = (&plan_a.action, &plan_b.action) else {
        panic!("both should try to bind: {plan_a:?} {plan_b:?}");
    };
    assert_eq!(server.bind(va, &a), Ok(()));
    // b's volume update names the version both read: refused, nothing of b's written.
    assert_eq!(server.bind(vb, &b), Err(()));
    // b's retry sees the volume taken and waits.
    let retry = server.world().sync(&server.claims["b"]);
    assert_eq!(retry.action, pending());
    let only = &server.volumes["only"];
    let r = only.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).expect("claimRef");
    assert_eq!((r.name.as_deref(), super::super::volume_phase(only)), (Some("a"), BOUND));
    assert_eq!(claim_volume(&server.claims["a"]), "only");
    assert_eq!(annotation(&server.claims["a"].metadata, BIND_COMPLETED), Some("yes"));
    assert_eq!(super::super::claim_phase(&server.claims["a"]), BOUND);
    assert_eq!((claim_volume(&server.claims["b"]), super::super::claim_phase(&server.claims["b"])), ("", PENDING));
}
