//! `hostPort`: a port on the node that forwards to a pod's `containerPort`. A userspace proxy in
//! the agent (TCP and UDP), as rootless podman does: nothing is left in the host's firewall to
//! leak, and a port another program holds is reported instead of silently shadowed. The pod sees
//! connections come from the node's bridge address.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};

/// A UDP client silent for this long loses its relay socket.
const UDP_IDLE: Duration = Duration::from_secs(60);

pub use skiff_core::host_ports::{Mapping, Protocol, mappings};

#[derive(Debug, thiserror::Error)]
#[error("{mapping}: {source}")]
pub struct HostPortError {
    mapping: Mapping,
    source: std::io::Error,
}

/// The proxies of every pod on this node, by pod uid.
#[derive(Default)]
pub struct HostPorts {
    open: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
}

impl HostPorts {
    /// Start forwarding `mappings` to `pod_ip` (once per pod; again after an agent restart).
    /// Every port is bound before any is served, so a pod gets all its ports or none.
    pub fn open(&self, uid: &str, mappings: &[Mapping], pod_ip: Ipv4Addr) -> Result<(), HostPortError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if mappings.is_empty() || open.contains_key(uid) {
            return Ok(());
        }
        let mut bound = Vec::new();
        for m in mappings {
            let addr = SocketAddr::new(m.host_ip, m.host_port);
            let err = |source| HostPortError { mapping: m.clone(), source };
            let socket = match m.protocol {
                Protocol::Tcp => Bound::Tcp(bind_tcp(addr).map_err(err)?),
                Protocol::Udp => Bound::Udp(bind_udp(addr).map_err(err)?),
            };
            bound.push((socket, SocketAddr::new(pod_ip.into(), m.pod_port)));
        }
        let tasks = bound
            .into_iter()
            .map(|(socket, target)| match socket {
                Bound::Tcp(l) => tokio::spawn(serve_tcp(l, target)),
                Bound::Udp(s) => tokio::spawn(serve_udp(Arc::new(s), target)),
            })
            .collect();
        open.insert(uid.to_string(), tasks);
        Ok(())
    }

    /// Stop forwarding for a pod, closing its open connections too.
    pub fn close(&self, uid: &str) {
        let tasks = self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
        for t in tasks.into_iter().flatten() {
            t.abort();
        }
    }
}

enum Bound {
    Tcp(tokio::net::TcpListener),
    Udp(tokio::net::UdpSocket),
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket)
}

async fn serve_tcp(listener: tokio::net::TcpListener, target: SocketAddr) {
    // Connections live in this set: aborting the accept task drops (and aborts) them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut client, _)) => {
                    conns.spawn(async move {
                        let _ = client.set_nodelay(true);
                        match tokio::net::TcpStream::connect(target).await {
                            Ok(mut pod) => {
                                let _ = pod.set_nodelay(true);
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut pod).await;
                            }
                            Err(e) => tracing::debug!(error = %e, %target, "hostPort: the pod refused"),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "hostPort: accepting");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_udp(socket: Arc<tokio::net::UdpSocket>, target: SocketAddr) {
    // One connected socket towards the pod per client, so replies find their way back.
    let mut relays: HashMap<SocketAddr, Arc<tokio::net::UdpSocket>> = HashMap::new();
    let mut tasks: JoinSet<SocketAddr> = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, client)) = received else { continue };
                let relay = match relays.get(&client) {
                    Some(r) => r.clone(),
                    None => {
                        let Ok(r) = relay_to(target).await else { continue };
                        relays.insert(client, r.clone());
                        tasks.spawn(udp_replies(socket.clone(), r.clone(), client));
                        r
                    }
                };
                let _ = relay.send(&buf[..n]).await;
            }
            Some(Ok(client)) = tasks.join_next(), if !tasks.is_empty() => { relays.remove(&client); }
        }
    }
}

async fn relay_to(target: SocketAddr) -> std::io::Result<Arc<tokio::net::UdpSocket>> {
    let r = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    r.connect(target).await?;
    Ok(Arc::new(r))
}

/// Copy the pod's answers back to `client` until it has been idle for a while.
async fn udp_replies(
    socket: Arc<tokio::net::UdpSocket>,
    relay: Arc<tokio::net::UdpSocket>,
    client: SocketAddr,
) -> SocketAddr {
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, relay.recv(&mut buf)).await {
        let _ = socket.send_to(&buf[..n], client).await;
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn forwards_tcp_and_udp_and_closes() {
        // A "pod": echo servers on loopback.
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let pod_port = echo.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let udp_echo = tokio::net::UdpSocket::bind(("127.0.0.1", pod_port)).await.expect("bind udp");
        tokio::spawn(async move {
            let mut buf = [0u8; 100];
            while let Ok((n, from)) = udp_echo.recv_from(&mut buf).await {
                let _ = udp_echo.send_to(&buf[..n], from).await;
            }
        });
        let host_port = std::net::TcpListener::bind("127.0.0.1:0").expect("probe").local_addr().expect("a").port();
        let loopback: IpAddr = Ipv4Addr::LOCALHOST.into();
        let ms = [
            Mapping { protocol: Protocol::Tcp, host_ip: loopback, host_port, pod_port },
            Mapping { protocol: Protocol::Udp, host_ip: loopback, host_port, pod_port },
        ];
        let ports = HostPorts::default();
        ports.open("uid", &ms, Ipv4Addr::LOCALHOST).expect("open");
        // A second pod cannot take the same port: all or nothing, with the port in the message.
        let err = ports.open("other", &ms, Ipv4Addr::LOCALHOST).expect_err("taken");
        assert!(err.to_string().starts_with(&format!("hostPort {host_port}/TCP on 127.0.0.1: ")), "{err}");

        let mut c = tokio::net::TcpStream::connect((loopback, host_port)).await.expect("connect");
        c.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        c.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");

        let u = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("udp");
        u.send_to(b"dgram", (loopback, host_port)).await.expect("send");
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), u.recv(&mut buf)).await.expect("reply").expect("recv");
        assert_eq!(&buf[..n], b"dgram");

        ports.close("uid");
        // The open connection is closed and the port is free again.
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut got)).await.expect("closed");
        assert!(matches!(n, Ok(0) | Err(_)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        ports.open("other", &ms, Ipv4Addr::LOCALHOST).expect("free again");
        ports.close("other");
    }
}
