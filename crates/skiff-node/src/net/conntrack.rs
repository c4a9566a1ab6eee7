//! Forgetting connection-tracking entries the service proxy made stale. A UDP "connection" to a
//! Service keeps its translation in conntrack as long as packets flow (the kernel's UDP stream
//! timeout is two minutes), so a client that keeps sending to a Service whose endpoint left
//! would keep sending to the gone pod. As kube-proxy does, the entries translated to an endpoint
//! that left a UDP (or SCTP) Service port are deleted: dumped over ctnetlink
//! (netlink-packet-netfilter), matched, and deleted by their original tuple.

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_NETFILTER};
use std::net::{IpAddr, SocketAddr};

/// Translations to forget: traffic of `protocol` to `service` (an address and port the proxy
/// translates) that went to `endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stale {
    pub protocol: u8,
    pub service: SocketAddr,
    pub endpoint: SocketAddr,
}

/// One tracked connection, as far as matching goes.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    original: Vec<Tuple>,
    protocol: u8,
    original_dst: Option<SocketAddr>,
    reply_src: Option<SocketAddr>,
}

fn protocol_number(p: &Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
        _ => 0,
    }
}

/// (protocol, source, destination) of a tuple.
fn endpoints(tuple: &[Tuple]) -> (u8, Option<SocketAddr>, Option<SocketAddr>) {
    let (mut proto, mut src_ip, mut dst_ip, mut src_port, mut dst_port) = (0, None, None, None, None);
    for t in tuple {
        match t {
            Tuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => src_ip = Some(*a),
                        IPTuple::DestinationAddress(a) => dst_ip = Some(*a),
                        _ => {}
                    }
                }
            }
            Tuple::Proto(ps) => {
                for p in ps {
                    match p {
                        ProtoTuple::Protocol(p) => proto = protocol_number(p),
                        ProtoTuple::SourcePort(port) => src_port = Some(*port),
                        ProtoTuple::DestinationPort(port) => dst_port = Some(*port),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let join = |ip: Option<IpAddr>, port: Option<u16>| Some(SocketAddr::new(ip?, port?));
    (proto, join(src_ip, src_port), join(dst_ip, dst_port))
}

fn entry(attrs: &[ConntrackAttribute]) -> Option<Entry> {
    let original =
        attrs.iter().find_map(|a| if let ConntrackAttribute::CtaTupleOrig(t) = a { Some(t) } else { None })?;
    let reply = attrs.iter().find_map(|a| if let ConntrackAttribute::CtaTupleReply(t) = a { Some(t) } else { None })?;
    let (protocol, _, original_dst) = endpoints(original);
    let (_, reply_src, _) = endpoints(reply);
    Some(Entry { original: original.clone(), protocol, original_dst, reply_src })
}

fn matches(e: &Entry, stale: &[Stale]) -> bool {
    stale
        .iter()
        .any(|s| e.protocol == s.protocol && e.original_dst == Some(s.service) && e.reply_src == Some(s.endpoint))
}

fn request(family: NetfilterProtoFamily, message: ConntrackMessage, flags: u16) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut packet = NetlinkMessage::new(
        header,
        NetlinkPayload::from(NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), message)),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// Every entry of `family` now tracked.
fn dump(socket: &mut Socket, family: NetfilterProtoFamily) -> std::io::Result<Vec<Entry>> {
    socket.send(&request(family, ConntrackMessage::Get(vec![]), NLM_F_REQUEST | NLM_F_DUMP), 0)?;
    let mut out = Vec::new();
    loop {
        let (buf, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < buf.len() {
            let Ok(msg) = <NetlinkMessage<NetfilterMessage>>::deserialize(&buf[offset..]) else { return Ok(out) };
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => return Err(e.to_io()),
                NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner: NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)),
                    ..
                }) => out.extend(entry(&attrs)),
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len.next_multiple_of(4);
        }
    }
}

/// Delete the tracked connections `stale` describes; returns how many went.
pub fn forget(stale: &[Stale]) -> std::io::Result<usize> {
    if stale.is_empty() {
        return Ok(0);
    }
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    let mut doomed = Vec::new();
    for family in [NetfilterProtoFamily::IPv4, NetfilterProtoFamily::IPv6] {
        let wanted = |s: &&Stale| s.service.is_ipv4() == matches!(family, NetfilterProtoFamily::IPv4);
        let of_family: Vec<Stale> = stale.iter().filter(wanted).copied().collect();
        if !of_family.is_empty() {
            let entries = dump(&mut socket, family)?.into_iter().filter(|e| matches(e, &of_family));
            doomed.extend(entries.map(|e| (family, e)));
        }
    }
    let mut deleted = 0;
    for (family, e) in &doomed {
        let message = ConntrackMessage::Delete(vec![ConntrackAttribute::CtaTupleOrig(e.original.clone())]);
        socket.send(&request(*family, message, NLM_F_REQUEST | NLM_F_ACK), 0)?;
        let (buf, _) = socket.recv_from_full()?;
        // An entry that expired meanwhile (ENOENT) is as good as deleted.
        if let Ok(msg) = <NetlinkMessage<NetfilterMessage>>::deserialize(&buf)
            && let NetlinkPayload::Error(err) = msg.payload
            && err.code.is_some_and(|c| c.get() != -libc_enoent())
        {
            return Err(err.to_io());
        }
        deleted += 1;
    }
    Ok(deleted)
}

fn libc_enoent() -> i32 {
    nix::errno::Errno::ENOENT as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn tuple(src: SocketAddr, dst: SocketAddr) -> Vec<Tuple> {
        vec![
            Tuple::Ip(vec![IPTuple::SourceAddress(src.ip()), IPTuple::DestinationAddress(dst.ip())]),
            Tuple::Proto(vec![
                ProtoTuple::Protocol(Protocol::Udp),
                ProtoTuple::SourcePort(src.port()),
                ProtoTuple::DestinationPort(dst.port()),
            ]),
        ]
    }

    #[test]
    fn entries_translated_to_a_gone_endpoint_match() {
        let at = |ip: Ipv4Addr, port| SocketAddr::V4(SocketAddrV4::new(ip, port));
        let client = at(Ipv4Addr::new(10, 42, 0, 9), 40000);
        let service = at(Ipv4Addr::new(10, 43, 0, 20), 53);
        let gone = at(Ipv4Addr::new(10, 42, 0, 5), 5353);
        let kept = at(Ipv4Addr::new(10, 42, 0, 6), 5353);
        let attrs = |endpoint: SocketAddr| {
            vec![
                ConntrackAttribute::CtaTupleOrig(tuple(client, service)),
                ConntrackAttribute::CtaTupleReply(tuple(endpoint, client)),
            ]
        };
        let stale = [Stale { protocol: 17, service, endpoint: gone }];
        assert!(matches(&entry(&attrs(gone)).expect("entry"), &stale));
        assert!(!matches(&entry(&attrs(kept)).expect("entry"), &stale));
        // The request the kernel gets is a well-formed netfilter message.
        let bytes = request(NetfilterProtoFamily::IPv6, ConntrackMessage::Get(vec![]), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32::from_ne_bytes(bytes[..4].try_into().expect("len")) as usize, bytes.len());
    }

    /// The kernel answers the dump (in a network namespace of the test's own, whose table is
    /// empty), and nothing is deleted that does not match. Needs root, as CI runs.
    #[test]
    fn the_kernel_dumps_and_nothing_unmatched_goes() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let none = Stale {
            protocol: 17,
            service: "10.43.0.53:53".parse().expect("addr"),
            endpoint: "10.42.0.5:5353".parse().expect("addr"),
        };
        let none6 = Stale {
            protocol: 17,
            service: "[fd00:43::53]:53".parse().expect("addr"),
            endpoint: "[fd00:42::5]:5353".parse().expect("addr"),
        };
        let deleted = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            forget(&[none, none6])
        })
        .join()
        .expect("thread");
        assert_eq!(deleted.expect("dump"), 0);
    }
}
