//! A pod's own names, as the kubelet gives them: its host name (`spec.hostname`, else the pod's
//! name cut to 63 characters), its domain under a headless Service (`spec.subdomain`), and the
//! `/etc/hosts` that names it and carries `spec.hostAliases`.

use k8s_openapi::api::core::v1::Pod;
use std::net::IpAddr;

/// The longest host name the kernel takes (and DNS labels allow).
const MAX_HOSTNAME: usize = 63;

/// What a pod is called inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNames {
    /// The UTS host name (`hostname` prints it; `HOSTNAME` in the environment).
    pub hostname: String,
    /// `SUBDOMAIN.NS.svc.DOMAIN` when the pod has a subdomain.
    pub domain: Option<String>,
}

impl PodNames {
    pub fn of(pod: &Pod, cluster_domain: &str) -> PodNames {
        let spec = pod.spec.as_ref();
        let name = match spec.and_then(|s| s.hostname.as_deref()).filter(|h| !h.is_empty()) {
            Some(h) => h.to_string(),
            None => truncate(pod.metadata.name.as_deref().unwrap_or_default()),
        };
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let domain = spec
            .and_then(|s| s.subdomain.as_deref())
            .filter(|s| !s.is_empty())
            .map(|sub| format!("{sub}.{namespace}.svc.{}", cluster_domain.trim_end_matches('.')));
        // setHostnameAsFQDN: the kernel's host name is the whole name (validation keeps it short).
        let fqdn = spec.and_then(|s| s.set_hostname_as_fqdn) == Some(true);
        let hostname = match (&domain, fqdn) {
            (Some(d), true) => format!("{name}.{d}"),
            _ => name,
        };
        PodNames { hostname, domain }
    }

    /// The short name (without the domain, also when the host name is the FQDN).
    fn short(&self) -> &str {
        match &self.domain {
            Some(d) => self.hostname.strip_suffix(&format!(".{d}")).unwrap_or(&self.hostname),
            None => &self.hostname,
        }
    }
}

/// A pod name cut to a host name, as the kubelet's truncateHostname: no trailing `-` or `.`.
fn truncate(name: &str) -> String {
    if name.len() <= MAX_HOSTNAME {
        return name.to_string();
    }
    let mut end = MAX_HOSTNAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].trim_end_matches(['-', '.']).to_string()
}

/// The pod's `/etc/hosts`, byte for byte as the kubelet's managed hosts file (a line per pod
/// address).
pub fn hosts_file(pod: &Pod, names: &PodNames, ips: &[IpAddr]) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let short = names.short();
    for ip in ips {
        match &names.domain {
            Some(d) => out.push_str(&format!("{ip}\t{short}.{d}\t{short}\n")),
            None => out.push_str(&format!("{ip}\t{short}\n")),
        }
    }
    let aliases = pod.spec.as_ref().and_then(|s| s.host_aliases.as_ref()).filter(|a| !a.is_empty());
    if let Some(aliases) = aliases {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let hostnames = a.hostnames.clone().unwrap_or_default();
            out.push_str(&format!("{}\t{}\n", a.ip, hostnames.join("\t")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "shop"}, "spec": spec})).expect("pod")
    }

    const HEAD: &str = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";
    const IP: &[IpAddr] = &[IpAddr::V4(std::net::Ipv4Addr::new(10, 42, 0, 5))];

    #[test]
    fn a_plain_pod_is_its_name() {
        let p = pod("web", json!({}));
        let names = PodNames::of(&p, "cluster.local");
        assert_eq!(names, PodNames { hostname: "web".into(), domain: None });
        assert_eq!(hosts_file(&p, &names, IP), format!("{HEAD}10.42.0.5\tweb\n"));
        // Too long for a host name: cut, without a dangling dash.
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(PodNames::of(&pod(&long, json!({})), "cluster.local").hostname, "a".repeat(62));
    }

    #[test]
    fn hostname_subdomain_fqdn_and_aliases() {
        let p = pod(
            "db-0",
            json!({"hostname": "db-0", "subdomain": "db", "hostAliases": [
                {"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
                {"ip": "10.1.2.3", "hostnames": ["foo.remote"]}]}),
        );
        let names = PodNames::of(&p, "cluster.local.");
        assert_eq!(names.hostname, "db-0");
        assert_eq!(names.domain.as_deref(), Some("db.shop.svc.cluster.local"));
        assert_eq!(
            hosts_file(&p, &names, IP),
            format!(
                "{HEAD}10.42.0.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n\n# Entries added by HostAliases.\n\
                 127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\n"
            )
        );
        let fqdn = pod("x", json!({"hostname": "h", "subdomain": "s", "setHostnameAsFQDN": true}));
        let names = PodNames::of(&fqdn, "cluster.local");
        assert_eq!(names.hostname, "h.s.shop.svc.cluster.local");
        assert_eq!(hosts_file(&fqdn, &names, IP), format!("{HEAD}10.42.0.5\th.s.shop.svc.cluster.local\th\n"));
        let dual = [IP[0], "fd00:42::5".parse().expect("ip")];
        assert_eq!(
            hosts_file(&fqdn, &names, &dual),
            format!("{HEAD}10.42.0.5\th.s.shop.svc.cluster.local\th\nfd00:42::5\th.s.shop.svc.cluster.local\th\n")
        );
    }
}
