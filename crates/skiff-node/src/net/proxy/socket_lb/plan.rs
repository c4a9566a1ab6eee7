//! What the socket-level load balancer's maps hold, and the map writes that bring them from one
//! set of Service ports to the next, ordered so that a `connect()` racing them always finds a
//! consistent entry (backends are written before the count that makes them reachable, and
//! unreachable before they are removed). Pure.

use crate::net::proxy::model::{Port, Protocol};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// A Service address the program rewrites: cluster IP, port, IP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Frontend {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub protocol: u8,
}

/// Where a rewritten connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// A port as the program reads `user_port`: the network-order 16 bits, zero-extended.
fn wire_port(port: u16) -> u32 {
    u32::from(u16::from_ne_bytes(port.to_be_bytes()))
}

impl Frontend {
    /// The services map's key: `user_ip4`, then `user_port | protocol << 16` (how the program
    /// builds it from the socket address).
    pub fn key(&self) -> [u8; 8] {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&self.ip.octets());
        k[4..].copy_from_slice(&(wire_port(self.port) | u32::from(self.protocol) << 16).to_ne_bytes());
        k
    }
}

impl Backend {
    /// The backends map's value: the address and port the program writes into the socket
    /// address.
    pub fn value(&self) -> [u8; 8] {
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&self.ip.octets());
        v[4..].copy_from_slice(&wire_port(self.port).to_ne_bytes());
        v
    }
}

/// The services map's value: the slot of the Service port's backends, and how many it has.
pub fn service_value(slot: u32, count: u32) -> [u8; 8] {
    let mut v = [0u8; 8];
    v[..4].copy_from_slice(&slot.to_ne_bytes());
    v[4..].copy_from_slice(&count.to_ne_bytes());
    v
}

/// The backends map's key: a slot and an index below its count.
pub fn backend_key(slot: u32, index: u32) -> [u8; 8] {
    service_value(slot, index)
}

/// The Service ports balanced at `connect()`, and their endpoints. Left to the nftables rules
/// (which see every packet) are: protocols other than TCP (an unconnected UDP socket has no
/// connect to rewrite), IPv6, `sessionAffinity: ClientIP` (the affinity lives in the rules'
/// sets), `internalTrafficPolicy: Local` (the choice is the node's own, and several test nodes
/// can share one machine's cgroups), and ports without endpoints (refused by the rules).
pub fn desired(ports: &[Port]) -> BTreeMap<Frontend, Vec<Backend>> {
    let mut out = BTreeMap::new();
    for p in ports {
        let Some(IpAddr::V4(ip)) = p.cluster_ip else { continue };
        if p.protocol != Protocol::Tcp || p.affinity.is_some() || p.internal_local {
            continue;
        }
        let mut backends: Vec<Backend> = p
            .internal
            .iter()
            .filter_map(|t| match t.ip {
                IpAddr::V4(ip) => Some(Backend { ip, port: t.port }),
                IpAddr::V6(_) => None,
            })
            .collect();
        backends.sort();
        backends.dedup();
        if !backends.is_empty() {
            out.insert(Frontend { ip, port: p.port, protocol: p.protocol.number() }, backends);
        }
    }
    out
}

/// One map write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    PutService { frontend: Frontend, slot: u32, count: u32 },
    DeleteService(Frontend),
    PutBackend { slot: u32, index: u32, backend: Backend },
    DeleteBackend { slot: u32, index: u32 },
}

/// What the maps hold: per frontend, its slot and backends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    services: BTreeMap<Frontend, (u32, Vec<Backend>)>,
}

impl State {
    /// The writes from this state to `desired`, and the state they leave.
    pub fn plan(&self, desired: &BTreeMap<Frontend, Vec<Backend>>) -> (Vec<Op>, State) {
        let mut ops = Vec::new();
        let mut next = State::default();
        // Gone first: their slots go to new frontends, whose writes come after the deletes.
        let mut freed: Vec<u32> = Vec::new();
        for (frontend, (slot, backends)) in &self.services {
            if desired.contains_key(frontend) {
                continue;
            }
            ops.push(Op::DeleteService(*frontend));
            ops.extend((0..backends.len() as u32).map(|index| Op::DeleteBackend { slot: *slot, index }));
            freed.push(*slot);
        }
        let taken: std::collections::BTreeSet<u32> = self.services.values().map(|(slot, _)| *slot).collect();
        let mut fresh = (0u32..).filter(|s| !taken.contains(s));
        freed.reverse();
        for (frontend, backends) in desired {
            let count = backends.len() as u32;
            match self.services.get(frontend) {
                Some((slot, before)) if before == backends => {
                    next.services.insert(*frontend, (*slot, before.clone()));
                }
                Some((slot, before)) => {
                    let slot = *slot;
                    for (index, b) in backends.iter().enumerate() {
                        if before.get(index) != Some(b) {
                            ops.push(Op::PutBackend { slot, index: index as u32, backend: *b });
                        }
                    }
                    if before.len() != backends.len() {
                        ops.push(Op::PutService { frontend: *frontend, slot, count });
                    }
                    ops.extend((count..before.len() as u32).map(|index| Op::DeleteBackend { slot, index }));
                    next.services.insert(*frontend, (slot, backends.clone()));
                }
                None => {
                    let slot = freed.pop().or_else(|| fresh.next()).unwrap_or(u32::MAX);
                    for (index, b) in backends.iter().enumerate() {
                        ops.push(Op::PutBackend { slot, index: index as u32, backend: *b });
                    }
                    ops.push(Op::PutService { frontend: *frontend, slot, count });
                    next.services.insert(*frontend, (slot, backends.clone()));
                }
            }
        }
        (ops, next)
    }

    /// Every frontend this state has in the maps (what a rewrite after a failure removes).
    pub fn frontends(&self) -> impl Iterator<Item = &Frontend> {
        self.services.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::proxy::model::Target;

    fn fe(last: u8) -> Frontend {
        Frontend { ip: Ipv4Addr::new(10, 43, 0, last), port: 80, protocol: 6 }
    }

    fn be(last: u8) -> Backend {
        Backend { ip: Ipv4Addr::new(10, 42, 0, last), port: 8080 }
    }

    fn want(entries: &[(Frontend, &[Backend])]) -> BTreeMap<Frontend, Vec<Backend>> {
        entries.iter().map(|(f, b)| (*f, b.to_vec())).collect()
    }

    /// The two maps as the kernel holds them: services, backends.
    type Maps = (BTreeMap<Frontend, (u32, u32)>, BTreeMap<(u32, u32), Backend>);

    /// Apply ops to a model of the two maps, checking after each one that every frontend a
    /// connect could find has all its backends.
    fn run(ops: &[Op], maps: &mut Maps) {
        for op in ops {
            match op {
                Op::PutService { frontend, slot, count } => {
                    maps.0.insert(*frontend, (*slot, *count));
                }
                Op::DeleteService(f) => {
                    maps.0.remove(f);
                }
                Op::PutBackend { slot, index, backend } => {
                    maps.1.insert((*slot, *index), *backend);
                }
                Op::DeleteBackend { slot, index } => {
                    maps.1.remove(&(*slot, *index));
                }
            }
            for (slot, count) in maps.0.values() {
                for i in 0..*count {
                    assert!(maps.1.contains_key(&(*slot, i)), "{op:?} left slot {slot} index {i} unreachable");
                }
            }
        }
    }

    fn read(maps: &Maps) -> BTreeMap<Frontend, Vec<Backend>> {
        maps.0.iter().map(|(f, (slot, count))| (*f, (0..*count).map(|i| maps.1[&(*slot, i)]).collect())).collect()
    }

    #[test]
    fn keys_and_values_are_laid_out_as_the_program_reads_them() {
        // 10.43.0.1:80/TCP: user_ip4's bytes, then port 80 in network order and the protocol.
        assert_eq!(fe(1).key(), [10, 43, 0, 1, 0, 80, 6, 0]);
        assert_eq!(be(5).value(), [10, 42, 0, 5, 0x1f, 0x90, 0, 0]);
        assert_eq!(service_value(2, 3), [2, 0, 0, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn changes_keep_every_reachable_entry_whole_and_end_as_desired() {
        let mut maps = Default::default();
        let steps = [
            want(&[(fe(1), &[be(1), be(2), be(3)]), (fe(2), &[be(4)])]),
            want(&[(fe(1), &[be(1), be(3)]), (fe(2), &[be(4), be(5), be(6)])]),
            want(&[(fe(2), &[be(5)]), (fe(3), &[be(7), be(8)])]),
            want(&[(fe(3), &[be(7), be(8)]), (fe(4), &[be(9)]), (fe(5), &[be(1)])]),
            want(&[]),
        ];
        let mut state = State::default();
        for step in &steps {
            let (ops, next) = state.plan(step);
            run(&ops, &mut maps);
            assert_eq!(&read(&maps), step);
            assert!(maps.1.len() == step.values().map(Vec::len).sum::<usize>(), "no backend left behind");
            state = next;
        }
    }

    #[test]
    fn nothing_changed_writes_nothing_and_slots_are_reused() {
        let first = want(&[(fe(1), &[be(1)]), (fe(2), &[be(2)])]);
        let (_, state) = State::default().plan(&first);
        assert!(state.plan(&first).0.is_empty());
        let (ops, _) = state.plan(&want(&[(fe(2), &[be(2)]), (fe(3), &[be(3)])]));
        let slot_of = |f: Frontend| {
            ops.iter().find_map(|o| match o {
                Op::PutService { frontend, slot, .. } if *frontend == f => Some(*slot),
                _ => None,
            })
        };
        assert_eq!(slot_of(fe(3)), Some(0), "fe(1)'s slot 0 went to fe(3)");
    }

    fn port(protocol: Protocol, ip: &str, affinity: bool, local: bool) -> Port {
        Port {
            id: "ns/web/tcp/".into(),
            protocol,
            cluster_ip: Some(ip.parse().expect("an address")),
            port: 80,
            node_port: None,
            external_ips: vec![],
            source_ranges: vec![],
            load_balancer_ips: vec![],
            internal: vec![Target { ip: "10.42.0.9".parse().expect("an address"), port: 8080, local: true }],
            internal_local: local,
            external: vec![],
            external_local: false,
            has_endpoints: true,
            affinity: affinity.then(|| std::time::Duration::from_secs(10)),
        }
    }

    #[test]
    fn only_plain_tcp_ipv4_cluster_ips_are_balanced_at_connect() {
        let ports = [
            port(Protocol::Tcp, "10.43.0.1", false, false),
            port(Protocol::Udp, "10.43.0.2", false, false),
            port(Protocol::Tcp, "10.43.0.3", true, false),
            port(Protocol::Tcp, "10.43.0.4", false, true),
            port(Protocol::Tcp, "fd00:43::5", false, false),
        ];
        let d = desired(&ports);
        assert_eq!(d.keys().copied().collect::<Vec<_>>(), vec![fe(1)]);
        assert_eq!(d[&fe(1)], vec![be(9)]);
        let mut none = port(Protocol::Tcp, "10.43.0.1", false, false);
        none.internal.clear();
        assert!(desired(&[none]).is_empty(), "no endpoints: the rules refuse");
    }
}
