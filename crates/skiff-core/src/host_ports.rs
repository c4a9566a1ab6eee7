//! A pod's host ports (`hostPort` in its containers' `ports`): which it asks for, and when two
//! collide. The scheduler fits pods by them; the node agent forwards them.

use k8s_openapi::api::core::v1::Pod;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// One host port of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub protocol: Protocol,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub pod_port: u16,
}

impl std::fmt::Display for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = if self.protocol == Protocol::Tcp { "TCP" } else { "UDP" };
        write!(f, "hostPort {}/{proto} on {}", self.host_port, self.host_ip)
    }
}

/// The host ports `pod` asks for (SCTP is not forwarded: a user-space proxy cannot carry it).
pub fn mappings(pod: &Pod) -> Vec<Mapping> {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let ports = containers.iter().flat_map(|c| c.ports.iter().flatten());
    let mut out: Vec<Mapping> = ports
        .filter_map(|p| {
            let host_port = u16::try_from(p.host_port.filter(|h| *h > 0)?).ok()?;
            let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                _ => return None,
            };
            let host_ip = p.host_ip.as_deref().and_then(|ip| ip.parse().ok()).unwrap_or(Ipv4Addr::UNSPECIFIED.into());
            Some(Mapping { protocol, host_ip, host_port, pod_port: u16::try_from(p.container_port).ok()? })
        })
        .collect();
    out.dedup();
    out
}

/// Whether two host ports would collide (same protocol and port, and an overlapping address).
pub fn conflicts(a: &Mapping, b: &Mapping) -> bool {
    a.protocol == b.protocol
        && a.host_port == b.host_port
        && (a.host_ip == b.host_ip || a.host_ip.is_unspecified() || b.host_ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ports: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"spec": {"containers": [{"name": "c", "ports": ports}]}}))
            .expect("pod")
    }

    #[test]
    fn mappings_from_container_ports() {
        let p = pod(serde_json::json!([
            {"containerPort": 80},
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"},
            {"containerPort": 9, "hostPort": 9, "protocol": "SCTP"}
        ]));
        let m = mappings(&p);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0],
            Mapping { protocol: Protocol::Tcp, host_ip: "0.0.0.0".parse().expect("ip"), host_port: 8080, pod_port: 80 }
        );
        assert_eq!(m[1].host_ip, "127.0.0.1".parse::<IpAddr>().expect("ip"));
        assert_eq!(m[1].to_string(), "hostPort 5353/UDP on 127.0.0.1");
        let any = Mapping { host_ip: Ipv4Addr::UNSPECIFIED.into(), ..m[1].clone() };
        assert!(conflicts(&m[1], &any));
        assert!(!conflicts(&m[0], &m[1]));
    }
}
