//! Pod networking over netlink (rtnetlink), no `ip` commands: a bridge on the node holding the
//! subnet's gateway (one per address family on a dual-stack node), and per pod a veth pair whose
//! inner end becomes `eth0` in the pod's network namespace, with the pod's addresses and default
//! routes via the gateways (this module); pod addresses from the node's subnets ([`ipam`]), the
//! node's outbound NAT ([`nat`]), the service proxy ([`proxy`]), both nftables spoken over
//! netlink ([`nft`]), the service proxy's balancing at `connect()` (`proxy::socket_lb`, eBPF
//! through [`bpf`]), and pods' host ports ([`hostport`]).

pub mod bpf;
pub mod cidr;
pub mod conntrack;
pub(crate) mod hostport;
pub mod ipam;
pub(crate) mod nat;
pub mod nft;
pub mod policy;
pub mod proxy;

use cidr::Family;
use futures::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder, new_connection};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("no network interface {0}")]
    NoLink(String),
    #[error("entering the pod's network namespace: {0}")]
    Namespace(String),
    #[error("switching on hairpin mode on {0}: {1}")]
    Hairpin(String, std::io::Error),
}

fn nl(e: impl std::fmt::Display) -> NetError {
    NetError::Netlink(e.to_string())
}

/// A netlink connection in the current thread's network namespace.
pub struct Net {
    handle: Handle,
}

impl Net {
    /// Must be called inside a tokio runtime (the connection task is spawned on it).
    pub fn connect() -> Result<Self, NetError> {
        let (conn, handle, _) = new_connection().map_err(nl)?;
        tokio::spawn(conn);
        Ok(Net { handle })
    }

    pub async fn index(&self, name: &str) -> Result<Option<u32>, NetError> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        match links.try_next().await {
            Ok(Some(l)) => Ok(Some(l.header.index)),
            Ok(None) => Ok(None),
            // The kernel answers ENODEV for a name that does not exist.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => Ok(None),
            Err(e) => Err(nl(e)),
        }
    }

    async fn require(&self, name: &str) -> Result<u32, NetError> {
        self.index(name).await?.ok_or_else(|| NetError::NoLink(name.into()))
    }

    async fn set_up(&self, index: u32) -> Result<(), NetError> {
        self.handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(nl)
    }

    /// The node bridge with each `gateway/prefix` on it, up (created if missing).
    pub async fn ensure_bridge(&self, name: &str, gateways: &[(IpAddr, u8)]) -> Result<u32, NetError> {
        let index = match self.index(name).await? {
            Some(i) => i,
            None => {
                self.handle.link().add(LinkBridge::new(name).build()).execute().await.map_err(nl)?;
                self.require(name).await?
            }
        };
        for (gateway, prefix) in gateways {
            self.ensure_address(index, *gateway, *prefix).await?;
        }
        self.set_up(index).await?;
        Ok(index)
    }

    /// `ip/prefix` on the link `index` (added if it has no such address).
    pub async fn ensure_address(&self, index: u32, ip: IpAddr, prefix: u8) -> Result<(), NetError> {
        use rtnetlink::packet_route::address::AddressAttribute;
        let mut addrs = self.handle.address().get().set_link_index_filter(index).execute();
        let mut has = false;
        while let Some(a) = addrs.try_next().await.map_err(nl)? {
            has |= a.attributes.iter().any(|attr| matches!(attr, AddressAttribute::Address(v) if *v == ip));
        }
        if !has {
            add_address(&self.handle, index, ip, prefix).await?;
        }
        Ok(())
    }

    /// A veth pair: `host_if` on the bridge, up, and its peer made directly inside `netns` as
    /// eth0, then configured there. One request creates all of it: moving an existing device
    /// to another namespace waits for the kernel's RCU grace periods (15-20 ms here).
    pub async fn attach_pod(
        &self,
        bridge: &str,
        host_if: &str,
        netns: BorrowedFd<'_>,
        addresses: &[PodAddress],
    ) -> Result<(), NetError> {
        use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkInfo};
        let bridge_index = self.require(bridge).await?;
        let mut msg = LinkVeth::new(host_if, POD_IF).controller(bridge_index).up().build();
        for attr in &mut msg.attributes {
            let LinkAttribute::LinkInfo(infos) = attr else { continue };
            for info in infos {
                if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) = info {
                    peer.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
                }
            }
        }
        self.handle.link().add(msg).execute().await.map_err(nl)?;
        // Hairpin: a pod reaching itself through its Service comes back in on its own port,
        // which the bridge refuses to send a frame out of unless told to (as the kubelet's
        // hairpin-veth mode).
        let hairpin = format!("/sys/class/net/{host_if}/brport/hairpin_mode");
        std::fs::write(&hairpin, "1").map_err(|e| NetError::Hairpin(host_if.to_string(), e))?;
        configure_inside(netns, POD_IF, addresses.to_vec())
    }

    /// Remove a link (a veth's host end takes its peer with it). Missing is fine.
    pub async fn delete(&self, name: &str) -> Result<(), NetError> {
        if let Some(i) = self.index(name).await? {
            self.handle.link().del(i).execute().await.map_err(nl)?;
        }
        Ok(())
    }
}

/// One of a pod's addresses on its bridge's subnet, and the gateway its default route of that
/// family goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodAddress {
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
}

/// Add `ip/prefix` to link `index`. An IPv6 address is usable at once: duplicate address
/// detection would hold it back for a second or more, and the node's IPAM already makes it
/// unique on the bridge.
async fn add_address(handle: &Handle, index: u32, ip: IpAddr, prefix: u8) -> Result<(), NetError> {
    use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
    let mut request = handle.address().add(index, ip, prefix);
    if ip.is_ipv6() {
        request.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    request.execute().await.map_err(nl)
}

/// Make traffic between pods of one bridge pass through netfilter's IP hooks (br_netfilter's
/// switch, as kube-proxy and NetworkPolicy implementations need: a reply from a Service's
/// endpoint on the same bridge is translated back there, and policies see pod-to-pod traffic),
/// for each of `families`.
pub fn bridge_netfilter(families: &[Family]) -> std::io::Result<()> {
    for family in families {
        let path = match family {
            Family::V4 => "/proc/sys/net/bridge/bridge-nf-call-iptables",
            Family::V6 => "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
        };
        std::fs::write(path, "1").map_err(|e| {
            let hint = "the br_netfilter kernel module is not loaded (modprobe br_netfilter)";
            std::io::Error::new(e.kind(), format!("writing {path}: {e}: {hint}"))
        })?;
    }
    Ok(())
}

/// Let the kernel forward (route) packets of `family`: pods' traffic to the outside and Service
/// traffic translated back onto the bridge. On IPv6 this also makes the host ignore router
/// advertisements on interfaces with `accept_ra=1`, as every Kubernetes node's IPv6 forwarding
/// does.
pub fn forwarding(family: Family) -> std::io::Result<()> {
    let path = match family {
        Family::V4 => "/proc/sys/net/ipv4/ip_forward",
        Family::V6 => "/proc/sys/net/ipv6/conf/all/forwarding",
    };
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1")
        .map_err(|e| std::io::Error::new(e.kind(), format!("switching on forwarding ({path}): {e}")))
}

/// A TCP connection to `localhost:port` inside the network namespace at `netns` (a pod's: so a
/// port bound only to the pod's 127.0.0.1 is reachable, as with kubectl port-forward upstream).
/// The socket belongs to that namespace for its whole life, whichever thread then uses it.
pub fn connect_in_netns(netns: &std::path::Path, port: u16) -> std::io::Result<std::net::TcpStream> {
    let ns = std::fs::File::open(netns)?;
    std::thread::spawn(move || {
        // setns changes only this thread, which ends here.
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(10))
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

/// The pod's end of its veth, inside the pod.
const POD_IF: &str = "eth0";

/// Inside the pod's namespace (from a thread that enters it): give eth0 the addresses, bring it
/// and lo up, route each family via its gateway.
fn configure_inside(netns: BorrowedFd<'_>, peer: &str, addresses: Vec<PodAddress>) -> Result<(), NetError> {
    let fd = netns.try_clone_to_owned().map_err(|e| NetError::Namespace(e.to_string()))?;
    let peer = peer.to_string();
    std::thread::spawn(move || -> Result<(), NetError> {
        // setns affects only this thread, which ends here.
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetError::Namespace(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NetError::Namespace(e.to_string()))?;
        rt.block_on(async {
            let net = Net::connect()?;
            let idx = net.require(&peer).await?;
            for a in &addresses {
                add_address(&net.handle, idx, a.ip, a.prefix).await?;
            }
            net.set_up(idx).await?;
            if let Some(lo) = net.index("lo").await? {
                net.set_up(lo).await?;
            }
            for a in &addresses {
                let route = match a.gateway {
                    IpAddr::V4(gw) => {
                        RouteMessageBuilder::<std::net::Ipv4Addr>::new().gateway(gw).output_interface(idx).build()
                    }
                    IpAddr::V6(gw) => {
                        RouteMessageBuilder::<std::net::Ipv6Addr>::new().gateway(gw).output_interface(idx).build()
                    }
                };
                net.handle.route().add(route).execute().await.map_err(nl)?;
            }
            Ok(())
        })
    })
    .join()
    .map_err(|_| NetError::Namespace("the namespace thread panicked".into()))?
}
