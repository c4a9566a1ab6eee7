//! A pod's `/etc/resolv.conf`, as the kubelet writes it for the pod's `dnsPolicy` and
//! `dnsConfig`: the cluster's DNS first with the namespace's search path and `ndots:5`
//! (`ClusterFirst`), the node's own resolvers (`Default`, and `ClusterFirst` on the host's
//! network), or only what `dnsConfig` says (`None`); `dnsConfig` is merged into the others.

use k8s_openapi::api::core::v1::Pod;
use std::net::Ipv4Addr;

/// The kubelet keeps at most this many nameservers (the C library reads no more).
const MAX_NAMESERVERS: usize = 3;
/// And at most this many search domains.
const MAX_SEARCHES: usize = 32;

/// Where the cluster's DNS is.
#[derive(Debug, Clone)]
pub struct ClusterDnsConfig {
    pub ip: Ipv4Addr,
    /// `cluster.local`
    pub domain: String,
}

/// What a resolv.conf says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Conf {
    nameservers: Vec<String>,
    searches: Vec<String>,
    /// `name` or `name:value`, in order.
    options: Vec<String>,
}

fn parse(text: &str) -> Conf {
    let mut conf = Conf::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => conf.nameservers.extend(words.next().map(String::from)),
            // The last search (or domain) line wins, as in the C library.
            Some("search" | "domain") => conf.searches = words.map(String::from).collect(),
            Some("options") => conf.options.extend(words.map(String::from)),
            _ => {}
        }
    }
    conf
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// Options by name: a later one replaces an earlier one of the same name.
fn merge_options(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        let name = item.split(':').next().unwrap_or_default().to_string();
        list.retain(|o| o.split(':').next() != Some(name.as_str()));
        list.push(item);
    }
}

/// The resolv.conf of `pod`, given the node's (`host`) and the cluster DNS (None: the node
/// runs none, so `ClusterFirst` falls back to the node's resolvers, as the kubelet does).
pub fn resolv_conf(pod: &Pod, host: &str, cluster: Option<&ClusterDnsConfig>) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let host_network = spec.host_network == Some(true);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut conf = match (policy, cluster) {
        ("None", _) => Conf::default(),
        (_, Some(c)) if cluster_first => {
            let domain = c.domain.trim_end_matches('.');
            let mut searches = vec![format!("{namespace}.svc.{domain}"), format!("svc.{domain}"), domain.to_string()];
            push_unique(&mut searches, parse(host).searches);
            Conf { nameservers: vec![c.ip.to_string()], searches, options: vec!["ndots:5".into()] }
        }
        _ => parse(host),
    };
    if let Some(extra) = spec.dns_config {
        push_unique(&mut conf.nameservers, extra.nameservers.unwrap_or_default());
        push_unique(&mut conf.searches, extra.searches.unwrap_or_default());
        let options = extra.options.unwrap_or_default().into_iter().filter_map(|o| {
            let name = o.name.filter(|n| !n.is_empty())?;
            Some(match o.value {
                Some(v) => format!("{name}:{v}"),
                None => name,
            })
        });
        merge_options(&mut conf.options, options);
    }
    conf.nameservers.truncate(MAX_NAMESERVERS);
    conf.searches.truncate(MAX_SEARCHES);
    let mut out = String::new();
    if !conf.searches.is_empty() {
        out.push_str(&format!("search {}\n", conf.searches.join(" ")));
    }
    for ns in &conf.nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !conf.options.is_empty() {
        out.push_str(&format!("options {}\n", conf.options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOST: &str =
        "# the node's\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\noptions edns0\n";

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": spec})).expect("pod")
    }

    fn cluster() -> ClusterDnsConfig {
        ClusterDnsConfig { ip: Ipv4Addr::new(10, 43, 0, 10), domain: "cluster.local".into() }
    }

    #[test]
    fn cluster_first_as_the_kubelet_writes_it() {
        assert_eq!(
            resolv_conf(&pod(json!({})), HOST, Some(&cluster())),
            "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"
        );
        // No cluster DNS on this node: the node's own.
        assert_eq!(
            resolv_conf(&pod(json!({})), HOST, None),
            "search corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0\n"
        );
    }

    #[test]
    fn host_network_default_none_and_dns_config() {
        let host_net = pod(json!({"hostNetwork": true}));
        assert!(resolv_conf(&host_net, HOST, Some(&cluster())).contains("nameserver 192.0.2.53\n"));
        let with_host_net = pod(json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}));
        assert!(resolv_conf(&with_host_net, HOST, Some(&cluster())).contains("nameserver 10.43.0.10\n"));
        let default = pod(json!({"dnsPolicy": "Default"}));
        assert!(resolv_conf(&default, HOST, Some(&cluster())).starts_with("search corp.example\n"));
        let none = pod(json!({"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.2.3.4"], "searches": ["ns1.svc.cluster-domain.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
        assert_eq!(
            resolv_conf(&none, HOST, Some(&cluster())),
            "search ns1.svc.cluster-domain.example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
        );
        // Merged into ClusterFirst: an option of the same name replaces the kubelet's.
        let merged = pod(json!({"dnsConfig": {"nameservers": ["10.43.0.10", "1.1.1.1", "2.2.2.2", "3.3.3.3"],
            "options": [{"name": "ndots", "value": "1"}]}}));
        assert_eq!(
            resolv_conf(&merged, HOST, Some(&cluster())),
            "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.43.0.10\nnameserver 1.1.1.1\nnameserver 2.2.2.2\noptions ndots:1\n"
        );
    }
}
