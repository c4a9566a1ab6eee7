//! What every namespace gets for its pods' API access: the `default` ServiceAccount (upstream's
//! serviceaccounts-controller) and the `kube-root-ca.crt` ConfigMap holding the cluster CA
//! (root-ca-cert-publisher), made when a namespace appears and again when either is deleted;
//! the ConfigMap put back when someone changes it. The ConfigMap comes first: a pod admitted
//! because its account exists finds the CA its token volume reads.

use crate::informers::Informers;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_ACCOUNT: &str = "default";
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
const CA_KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(300);

/// What a namespace needs done.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Create the ConfigMap, or replace what it holds.
    pub config_map: Option<ConfigMapWrite>,
    pub create_account: bool,
}

#[derive(Debug, PartialEq)]
pub enum ConfigMapWrite {
    Create(ConfigMap),
    Update(ConfigMap),
}

/// The ConfigMap as the publisher writes it.
fn wanted_config_map(root_ca: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(ROOT_CA_CONFIG_MAP.into()),
            annotations: Some(BTreeMap::from([(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(CA_KEY.into(), root_ca.into())])),
        ..Default::default()
    }
}

/// What `namespace` needs, given its `default` account (present or not) and its CA ConfigMap:
/// nothing for a namespace that is not active (upstream skips terminating ones).
pub fn plan(namespace: &Namespace, has_account: bool, config_map: Option<&ConfigMap>, root_ca: &str) -> Plan {
    let active = namespace.metadata.deletion_timestamp.is_none()
        && namespace.status.as_ref().and_then(|s| s.phase.as_deref()).is_none_or(|p| p == "Active");
    if !active {
        return Plan::default();
    }
    let wanted = wanted_config_map(root_ca);
    let config_map = match config_map {
        None => Some(ConfigMapWrite::Create(wanted)),
        Some(cm) => {
            let described = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
                .is_some_and(|d| !d.is_empty());
            // Upstream compares the data only: binaryData someone added stays.
            if cm.data == wanted.data && described {
                None
            } else {
                let mut next = cm.clone();
                next.data = wanted.data;
                next.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
                Some(ConfigMapWrite::Update(next))
            }
        }
    };
    Plan { config_map, create_account: !has_account }
}

/// Whether a write failed only because the namespace is gone, or going (`terminating`: it is
/// then Forbidden; any other Forbidden is a real refusal, retried and logged), or someone else
/// made the object first.
fn settled(e: &kube::Error, terminating: bool) -> bool {
    matches!(e, kube::Error::Api(s) if matches!(s.code, 404 | 409) || (s.code == 403 && terminating))
}

async fn reconcile(
    clients: &Clients,
    caches: &Caches,
    root_ca: &str,
    key: &Key,
) -> Result<Option<Duration>, kube::Error> {
    let ns = &key.name;
    let Some(namespace) = caches.namespaces.get(&ObjectRef::new(ns)) else { return Ok(None) };
    let has_account = caches.accounts.get(&ObjectRef::new(DEFAULT_ACCOUNT).within(ns)).is_some();
    let config_map = caches.config_maps.get(&ObjectRef::new(ROOT_CA_CONFIG_MAP).within(ns));
    let plan = plan(&namespace, has_account, config_map.as_deref(), root_ca);
    let terminating = namespace.metadata.deletion_timestamp.is_some();
    let config_maps: Api<ConfigMap> = Api::namespaced(clients.root_ca.clone(), ns);
    let written = match plan.config_map {
        None => Ok(()),
        Some(ConfigMapWrite::Create(cm)) => config_maps.create(&PostParams::default(), &cm).await.map(|_| ()),
        Some(ConfigMapWrite::Update(cm)) => {
            config_maps.replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &cm).await.map(|_| ())
        }
    };
    match written {
        Err(e) if !settled(&e, terminating) => return Err(e),
        _ => {}
    }
    if plan.create_account {
        let account = ServiceAccount {
            metadata: ObjectMeta { name: Some(DEFAULT_ACCOUNT.into()), ..Default::default() },
            ..Default::default()
        };
        let accounts: Api<ServiceAccount> = Api::namespaced(clients.accounts.clone(), ns);
        match accounts.create(&PostParams::default(), &account).await {
            Err(e) if !settled(&e, terminating) => return Err(e),
            _ => {}
        }
    }
    Ok(None)
}

/// Upstream's two controllers' accounts: the ServiceAccounts controller's and the root CA
/// publisher's.
struct Clients {
    accounts: kube::Client,
    root_ca: kube::Client,
}

struct Caches {
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
    config_maps: Store<ConfigMap>,
}

/// Run the controller; `root_ca` is the cluster CA's PEM.
pub async fn run(informers: &Informers, root_ca: Arc<str>) {
    let queue: Arc<Queue<Key>> = Queue::new();
    let of_namespace = |ns: &str| Key { namespace: String::new(), name: ns.to_string() };
    let q = queue.clone();
    let namespaces =
        informers.watch(move |n: &Namespace| q.add(of_namespace(n.metadata.name.as_deref().unwrap_or("")))).await;
    // A change to (or the deletion of) what this controller keeps looks at its namespace again.
    let q = queue.clone();
    let accounts = informers
        .watch(move |a: &ServiceAccount| {
            if a.metadata.name.as_deref() == Some(DEFAULT_ACCOUNT) {
                q.add(of_namespace(a.metadata.namespace.as_deref().unwrap_or("")));
            }
        })
        .await;
    let q = queue.clone();
    let config_maps = informers
        .watch(move |c: &ConfigMap| {
            if c.metadata.name.as_deref() == Some(ROOT_CA_CONFIG_MAP) {
                q.add(of_namespace(c.metadata.namespace.as_deref().unwrap_or("")));
            }
        })
        .await;
    work::resync(queue.clone(), namespaces.clone(), RESYNC);
    let caches = Caches { namespaces, accounts, config_maps };
    let clients = Clients {
        accounts: informers.client_as(crate::identity::SERVICE_ACCOUNTS),
        root_ca: informers.client_as(crate::identity::ROOT_CA_PUBLISHER),
    };
    work::drive(queue, "service accounts", |key| {
        let (clients, caches, root_ca) = (&clients, &caches, &root_ca);
        async move { reconcile(clients, caches, root_ca, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn namespace(phase: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta { name: Some("shop".into()), ..Default::default() },
            status: Some(NamespaceStatus { phase: Some(phase.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_namespace_gets_its_ca_then_its_account() {
        let p = plan(&namespace("Active"), false, None, CA);
        assert!(p.create_account);
        let Some(ConfigMapWrite::Create(cm)) = p.config_map else { panic!("create: {p:?}") };
        assert_eq!(cm.metadata.name.as_deref(), Some("kube-root-ca.crt"));
        assert_eq!(cm.data.as_ref().and_then(|d| d.get("ca.crt")).map(String::as_str), Some(CA));
        assert!(
            cm.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a["kubernetes.io/description"].starts_with("Contains a CA bundle"))
        );
        // Both there as wanted: nothing to do.
        assert_eq!(plan(&namespace("Active"), true, Some(&cm), CA), Plan::default());
        // Terminating: nothing is made.
        assert_eq!(plan(&namespace("Terminating"), false, None, CA), Plan::default());
    }

    #[test]
    fn a_changed_config_map_is_put_back_keeping_the_rest() {
        let mut changed = wanted_config_map(CA);
        changed.data = Some(BTreeMap::from([("ca.crt".into(), "forged".into()), ("extra".into(), "x".into())]));
        changed.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        let p = plan(&namespace("Active"), true, Some(&changed), CA);
        let Some(ConfigMapWrite::Update(cm)) = p.config_map else { panic!("update: {p:?}") };
        assert_eq!(cm.data, wanted_config_map(CA).data);
        assert_eq!(cm.metadata.labels, changed.metadata.labels);
        assert!(!p.create_account);
        // The description annotation removed: put back.
        let mut bare = wanted_config_map(CA);
        bare.metadata.annotations = None;
        assert!(matches!(
            plan(&namespace("Active"), true, Some(&bare), CA).config_map,
            Some(ConfigMapWrite::Update(_))
        ));
    }
}
