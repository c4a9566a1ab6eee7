//! Where a probe goes: the pod's address and a container's port (by number or name), and the
//! words Go's net package uses when it cannot get there. Shared by every kind of probe.

use crate::pod_dir::PodDir;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::{IpAddr, SocketAddr};

/// The kubelet's User-Agent on HTTP and gRPC probes.
pub const USER_AGENT: &str = "kube-probe/1.32";
/// What a probe reaches: the pod's address and directory, the container.
pub struct Target<'a> {
    pub ip: Option<IpAddr>,
    pub container: &'a Container,
    pub dir: &'a PodDir,
}

/// Why a probe has nowhere to go: its text is the probe's failure.
#[derive(Debug, thiserror::Error)]
pub enum AimError {
    #[error("couldn't find port: {name} in {container}")]
    NoSuchPort { name: String, container: String },
    #[error("invalid port number: {0}")]
    BadPort(i32),
    #[error("unsupported probe host {0:?}: an IP address is needed")]
    Host(String),
    #[error("the pod has no IP address yet")]
    NoAddress,
}

/// Where a probe connects: `port` (a number or the name of one of the container's ports) on
/// `host` if set, else on the pod's address.
pub fn aim(target: &Target<'_>, port: &IntOrString, host: Option<&str>) -> Result<SocketAddr, AimError> {
    let c = target.container;
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| AimError::NoSuchPort { name: name.clone(), container: c.name.clone() })?,
        },
    };
    let port = u16::try_from(number).ok().filter(|p| *p > 0).ok_or(AimError::BadPort(number))?;
    let ip = match host.filter(|h| !h.is_empty()) {
        Some(h) => h.parse::<IpAddr>().map_err(|_| AimError::Host(h.to_string()))?,
        None => target.ip.ok_or(AimError::NoAddress)?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// An I/O error as Go's net package prints it (`connect: connection refused`).
pub fn go_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("connect: {}", nix::errno::Errno::from_raw(code).desc().to_lowercase()),
        None => e.to_string(),
    }
}

#[cfg(test)]
pub mod testing {
    use super::*;
    use k8s_openapi::api::core::v1::Probe;
    use std::net::Ipv4Addr;

    /// A target on loopback (the probes' unit tests serve there).
    pub fn target<'a>(c: &'a Container, dir: &'a PodDir) -> Target<'a> {
        Target { ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), container: c, dir }
    }

    pub fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).expect("probe")
    }
}
