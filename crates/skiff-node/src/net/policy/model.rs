//! What NetworkPolicies allow, per pod of this node: pure. A pod that a policy of its namespace
//! selects for a direction (`policyTypes`; Ingress always, Egress when the policy has egress
//! rules or says so) is isolated in that direction, and then only what some selecting policy's
//! rule allows gets through: a rule allows its peers (pods by pod and namespace selectors,
//! address blocks with exceptions; none listed: anyone) on its ports (numbers, ranges with
//! `endPort`, or named container ports of the destination; none listed: every port). A
//! dual-stack pod has a policy per address, each enforced in its family's table.

pub use crate::net::cidr::Cidr;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_core::selector::LabelSelector;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Who may talk (as the source of ingress, or the destination of egress).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    Pod(IpAddr),
    Block { cidr: Cidr, except: Vec<Cidr> },
}

/// A port, or a range of them, of one protocol (6 TCP, 17 UDP, 132 SCTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ports {
    pub protocol: u8,
    /// Inclusive; None: every port of the protocol.
    pub range: Option<(u16, u16)>,
}

/// One allowing rule: anyone (None) or these peers, on every port (None) or these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub peers: Option<Vec<Peer>>,
    pub ports: Option<Vec<Ports>>,
}

/// A local pod's isolation: None in a direction that is not isolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPolicy {
    pub ip: IpAddr,
    pub ingress: Option<Vec<Allow>>,
    pub egress: Option<Vec<Allow>>,
}

fn selector(s: &ApiSelector) -> LabelSelector {
    LabelSelector::from_api(&serde_json::to_value(s).unwrap_or_default())
}

fn labels(m: &Option<BTreeMap<String, String>>) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    m.as_ref().unwrap_or(&EMPTY)
}

/// A pod's own addresses (`podIPs`, else `podIP`): none for a pod that has finished (its
/// addresses may be another pod's now) or that uses the node's network (they are the node's).
fn pod_ips(p: &Pod) -> Vec<IpAddr> {
    let Some(status) = p.status.as_ref() else { return vec![] };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"))
        || p.spec.as_ref().and_then(|s| s.host_network) == Some(true)
    {
        return vec![];
    }
    let listed: Vec<IpAddr> = status.pod_ips.iter().flatten().filter_map(|p| p.ip.parse().ok()).collect();
    if listed.is_empty() { status.pod_ip.iter().filter_map(|ip| ip.parse().ok()).collect() } else { listed }
}

fn protocol(p: Option<&str>) -> u8 {
    match p.unwrap_or("TCP") {
        "UDP" => 17,
        "SCTP" => 132,
        _ => 6,
    }
}

/// The policies of every pod in `local` (this node's), given all pods and namespaces.
pub fn pod_policies(
    policies: &[&NetworkPolicy],
    pods: &[&Pod],
    namespaces: &[&Namespace],
    local: &[&Pod],
) -> Vec<PodPolicy> {
    let ns_labels: BTreeMap<&str, &BTreeMap<String, String>> =
        namespaces.iter().filter_map(|n| Some((n.metadata.name.as_deref()?, labels(&n.metadata.labels)))).collect();
    let mut out = Vec::new();
    for pod in local {
        let ips = pod_ips(pod);
        if ips.is_empty() {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let mut ingress: Option<Vec<Allow>> = None;
        let mut egress: Option<Vec<Allow>> = None;
        for policy in policies.iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns)) {
            let Some(spec) = &policy.spec else { continue };
            let selects = spec.pod_selector.as_ref().is_none_or(|s| selector(s).matches(labels(&pod.metadata.labels)));
            if !selects {
                continue;
            }
            let types = spec.policy_types.clone().unwrap_or_else(|| {
                let mut t = vec!["Ingress".to_string()];
                if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                    t.push("Egress".into());
                }
                t
            });
            if types.iter().any(|t| t == "Ingress") {
                let allows = ingress.get_or_insert_with(Vec::new);
                for rule in spec.ingress.iter().flatten() {
                    allows.push(Allow {
                        peers: peers(rule.from.as_deref(), ns, pods, &ns_labels),
                        // Named ports are the destination's: this pod's.
                        ports: ports(rule.ports.as_deref(), &[pod]),
                    });
                }
            }
            if types.iter().any(|t| t == "Egress") {
                let allows = egress.get_or_insert_with(Vec::new);
                for rule in spec.egress.iter().flatten() {
                    let peers = peers(rule.to.as_deref(), ns, pods, &ns_labels);
                    let list = rule.ports.as_deref().unwrap_or_default();
                    let (named, numbered): (Vec<NetworkPolicyPort>, Vec<NetworkPolicyPort>) =
                        list.iter().cloned().partition(|p| matches!(p.port, Some(IntOrString::String(_))));
                    if named.is_empty() {
                        allows.push(Allow { peers, ports: ports(Some(list), &[]) });
                        continue;
                    }
                    if !numbered.is_empty() {
                        allows.push(Allow { peers: peers.clone(), ports: ports(Some(&numbered), &[]) });
                    }
                    // A named port is each destination pod's own number: one allow per pod
                    // the peers cover (an address block covers the pods inside it).
                    for dest in pods.iter().copied() {
                        for dest_ip in pod_ips(dest) {
                            if peers.as_ref().is_some_and(|list| !list.iter().any(|p| covers(p, dest_ip))) {
                                continue;
                            }
                            let resolved = ports(Some(&named), &[dest]).unwrap_or_default();
                            if !resolved.is_empty() {
                                allows.push(Allow { peers: Some(vec![Peer::Pod(dest_ip)]), ports: Some(resolved) });
                            }
                        }
                    }
                }
            }
        }
        if ingress.is_some() || egress.is_some() {
            for ip in ips {
                out.push(PodPolicy { ip, ingress: ingress.clone(), egress: egress.clone() });
            }
        }
    }
    out.sort_by_key(|p| p.ip);
    // One rule set per address, even if two pods claim it for a moment.
    out.dedup_by_key(|p| p.ip);
    out
}

/// Whether `peer` includes the pod at `ip`.
fn covers(peer: &Peer, ip: IpAddr) -> bool {
    match peer {
        Peer::Pod(p) => *p == ip,
        Peer::Block { cidr, except } => cidr.contains(ip) && !except.iter().any(|e| e.contains(ip)),
    }
}

/// A rule's peers: None (anyone) when it lists none.
fn peers(
    list: Option<&[NetworkPolicyPeer]>,
    ns: &str,
    pods: &[&Pod],
    ns_labels: &BTreeMap<&str, &BTreeMap<String, String>>,
) -> Option<Vec<Peer>> {
    let list = list.filter(|l| !l.is_empty())?;
    let mut out = Vec::new();
    for peer in list {
        if let Some(block) = &peer.ip_block {
            if let Some(cidr) = Cidr::parse(&block.cidr) {
                let except = block.except.iter().flatten().filter_map(|e| Cidr::parse(e)).collect();
                out.push(Peer::Block { cidr, except });
            }
            continue;
        }
        let pod_sel = peer.pod_selector.as_ref().map(selector);
        let ns_sel = peer.namespace_selector.as_ref().map(selector);
        for p in pods {
            let ips = pod_ips(p);
            let p_ns = p.metadata.namespace.as_deref().unwrap_or_default();
            let ns_ok = match &ns_sel {
                // Without a namespace selector, the policy's own namespace.
                None => p_ns == ns,
                Some(sel) => ns_labels.get(p_ns).is_some_and(|l| sel.matches(l)),
            };
            let pod_ok = pod_sel.as_ref().is_none_or(|sel| sel.matches(labels(&p.metadata.labels)));
            if ns_ok && pod_ok {
                out.extend(ips.into_iter().map(Peer::Pod));
            }
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// A rule's ports: None (every port) when it lists none; a named port resolves against the
/// containers of `destinations` (a name none of them has allows nothing).
fn ports(list: Option<&[NetworkPolicyPort]>, destinations: &[&Pod]) -> Option<Vec<Ports>> {
    let list = list.filter(|l| !l.is_empty())?;
    let mut out = Vec::new();
    for p in list {
        let proto = protocol(p.protocol.as_deref());
        match &p.port {
            None => out.push(Ports { protocol: proto, range: None }),
            Some(IntOrString::Int(n)) => {
                let Ok(start) = u16::try_from(*n) else { continue };
                let end = p.end_port.and_then(|e| u16::try_from(e).ok()).unwrap_or(start).max(start);
                out.push(Ports { protocol: proto, range: Some((start, end)) });
            }
            Some(IntOrString::String(name)) => {
                let named = destinations
                    .iter()
                    .flat_map(|d| d.spec.iter().flat_map(|s| s.containers.iter()))
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter(|cp| cp.name.as_deref() == Some(name.as_str()) && protocol(cp.protocol.as_deref()) == proto)
                    .filter_map(|cp| u16::try_from(cp.container_port).ok());
                out.extend(named.map(|n| Ports { protocol: proto, range: Some((n, n)) }));
            }
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::from([a, b, c, d])
    }
    use serde_json::json;

    fn pod(name: &str, ns: &str, ip: &str, labels: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": ip}}))
        .expect("pod")
    }

    fn policy(ns: &str, spec: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": ns}, "spec": spec})).expect("policy")
    }

    fn namespace(name: &str, labels: serde_json::Value) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("ns")
    }

    #[test]
    fn default_deny_allow_rules_and_named_ports() {
        let web = pod("web", "shop", "10.42.0.5", json!({"app": "web"}));
        let client = pod("client", "shop", "10.42.0.6", json!({"role": "client"}));
        let other = pod("other", "ops", "10.42.0.7", json!({"role": "client"}));
        let pods = [&web, &client, &other];
        let namespaces = [&namespace("shop", json!({"team": "a"})), &namespace("ops", json!({"team": "ops"}))];
        let deny = policy("shop", json!({"podSelector": {}}));
        let allow = policy(
            "shop",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{
            "from": [{"podSelector": {"matchLabels": {"role": "client"}}},
                     {"namespaceSelector": {"matchLabels": {"team": "ops"}}},
                     {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
            "ports": [{"port": "http"}, {"port": 9000, "endPort": 9010, "protocol": "UDP"}]}]}),
        );

        // Default deny: every pod of the namespace isolated for ingress, nothing allowed.
        let denied = pod_policies(&[&deny], &pods, &namespaces, &[&web, &client, &other]);
        assert_eq!(denied.len(), 2, "the other namespace's pod is not selected");
        assert_eq!(denied[0], PodPolicy { ip: v4(10, 42, 0, 5), ingress: Some(vec![]), egress: None });

        let allowed = pod_policies(&[&deny, &allow], &pods, &namespaces, &[&web]);
        let rule = &allowed[0].ingress.as_ref().expect("isolated")[0];
        assert_eq!(
            rule.peers.as_deref().expect("peers"),
            [
                Peer::Pod(v4(10, 42, 0, 6)),
                Peer::Pod(v4(10, 42, 0, 7)),
                Peer::Block {
                    cidr: Cidr { network: v4(192, 0, 2, 0), prefix: 24 },
                    except: vec![Cidr { network: v4(192, 0, 2, 128), prefix: 25 }],
                },
            ]
        );
        assert_eq!(
            rule.ports.as_deref().expect("ports"),
            [Ports { protocol: 6, range: Some((8080, 8080)) }, Ports { protocol: 17, range: Some((9000, 9010)) }]
        );
    }

    #[test]
    fn egress_named_ports_are_each_destinations_own() {
        let client = pod("client", "shop", "10.42.0.6", json!({"role": "client"}));
        let mut other: Pod = pod("db", "shop", "10.42.0.8", json!({"app": "db"}));
        other.spec.as_mut().expect("spec").containers[0].ports.as_mut().expect("ports")[0].container_port = 9090;
        let web = pod("web", "shop", "10.42.0.5", json!({"app": "web"}));
        let out = policy(
            "shop",
            json!({"podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": "http"}, {"port": 53, "protocol": "UDP"}]}]}),
        );
        let p = &pod_policies(&[&out], &[&client, &other, &web], &[], &[&client])[0];
        let allows = p.egress.as_ref().expect("isolated");
        let port = |n: u16| Some(vec![Ports { protocol: 6, range: Some((n, n)) }]);
        assert!(
            allows.contains(&Allow { peers: None, ports: Some(vec![Ports { protocol: 17, range: Some((53, 53)) }]) })
        );
        assert!(allows.contains(&Allow { peers: Some(vec![Peer::Pod(v4(10, 42, 0, 8))]), ports: port(9090) }));
        assert!(allows.contains(&Allow { peers: Some(vec![Peer::Pod(v4(10, 42, 0, 5))]), ports: port(8080) }));
        assert!(!allows.iter().any(|a| a.peers.is_none() && a.ports == port(9090)), "not 9090 to everyone");
    }

    #[test]
    fn egress_is_isolated_when_asked() {
        let web = pod("web", "shop", "10.42.0.5", json!({"app": "web"}));
        let dns_only = policy(
            "shop",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
        );
        let p = &pod_policies(&[&dns_only], &[&web], &[], &[&web])[0];
        assert_eq!(p.ingress, None);
        assert_eq!(
            p.egress,
            Some(vec![Allow { peers: None, ports: Some(vec![Ports { protocol: 17, range: Some((53, 53)) }]) }])
        );
    }

    #[test]
    fn a_dual_stack_pod_has_a_policy_per_address_and_peers_in_both_families() {
        let dual = |name: &str, v4: &str, v6: &str, labels: serde_json::Value| {
            let mut p = pod(name, "shop", v4, labels);
            let status = p.status.get_or_insert_with(Default::default);
            status.pod_ips = Some(vec![
                k8s_openapi::api::core::v1::PodIP { ip: v4.into() },
                k8s_openapi::api::core::v1::PodIP { ip: v6.into() },
            ]);
            p
        };
        let web = dual("web", "10.42.0.5", "fd00:42::5", json!({"app": "web"}));
        let client = dual("client", "10.42.0.6", "fd00:42::6", json!({"role": "client"}));
        let allow = policy(
            "shop",
            json!({"podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}),
        );
        let namespaces = [&namespace("shop", json!({}))];
        let got = pod_policies(&[&allow], &[&web, &client], &namespaces, &[&web]);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(got.iter().map(|p| p.ip).collect::<Vec<_>>(), [ip("10.42.0.5"), ip("fd00:42::5")]);
        let peers = got[1].ingress.as_ref().and_then(|a| a[0].peers.clone()).unwrap_or_default();
        assert_eq!(peers, [Peer::Pod(ip("10.42.0.6")), Peer::Pod(ip("fd00:42::6"))]);
    }
}
