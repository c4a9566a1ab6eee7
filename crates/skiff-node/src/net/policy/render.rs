//! The NetworkPolicy ruleset: a table of its own per family (`ip skiff-np-<bridge>`, and `ip6`
//! on a dual-stack node, each holding its family's addresses) whose forward chain
//! lets established traffic through, then sends new connections to an isolated pod through its
//! ingress chain and those from an isolated pod through its egress chain; a chain returns for
//! what a rule allows and drops the rest. Traffic between a pod and its own node is never
//! filtered (the kubelet's probes come from there), as Kubernetes requires. Pure: a [`Batch`].

use super::model::{Allow, Peer, PodPolicy, Ports};
use crate::net::cidr::{Family, octets};
use crate::net::nft::{Batch, Expr, HOOK_FORWARD, Hook, REG_1, Verdict, expr};
use std::net::IpAddr;

#[derive(Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    /// The peer's address: the source of ingress, the destination of egress.
    fn peer(self, family: Family) -> Expr {
        match self {
            Direction::Ingress => expr::saddr(family, REG_1),
            Direction::Egress => expr::daddr(family, REG_1),
        }
    }
    /// The pod's own address.
    fn pod(self, family: Family) -> Expr {
        match self {
            Direction::Ingress => expr::daddr(family, REG_1),
            Direction::Egress => expr::saddr(family, REG_1),
        }
    }
    fn chain(self, ip: IpAddr) -> String {
        match self {
            Direction::Ingress => format!("ingress-{ip}"),
            Direction::Egress => format!("egress-{ip}"),
        }
    }
}

fn port_match(p: Ports) -> Vec<Expr> {
    let mut e = vec![expr::l4proto(REG_1), expr::cmp(REG_1, expr::CMP_EQ, &[p.protocol])];
    if let Some((start, end)) = p.range {
        e.push(expr::th_dport(REG_1));
        if start == end {
            e.push(expr::cmp(REG_1, expr::CMP_EQ, &start.to_be_bytes()));
        } else {
            e.push(expr::cmp(REG_1, expr::CMP_GTE, &start.to_be_bytes()));
            e.push(expr::cmp(REG_1, expr::CMP_LTE, &end.to_be_bytes()));
        }
    }
    e
}

/// The rules of one allow: every (peer match, port match) pair returns. Each rule gets its own
/// anonymous set of pod addresses (the kernel binds such a set to one rule). Peers of the other
/// family are the other table's.
fn allow_rules(b: &mut Batch, chain: &str, dir: Direction, allow: &Allow) {
    let family = b.family();
    let mut peer_matches: Vec<Option<&Peer>> = Vec::new();
    let pods: Vec<IpAddr> = (allow.peers.iter().flatten())
        .filter_map(|p| if let Peer::Pod(ip) = p { Some(*ip) } else { None })
        .filter(|ip| Family::of(*ip) == family)
        .collect();
    match &allow.peers {
        None => peer_matches.push(None),
        Some(peers) => peer_matches.extend(
            peers.iter().filter(|p| matches!(p, Peer::Block { cidr, .. } if cidr.family() == family)).map(Some),
        ),
    }
    let port_matches: Vec<Vec<Expr>> = match &allow.ports {
        None => vec![vec![]],
        Some(ports) => ports.iter().map(|p| port_match(*p)).collect(),
    };
    for ports in &port_matches {
        let mut rules: Vec<Vec<Expr>> = Vec::new();
        if !pods.is_empty() {
            rules.push(vec![dir.peer(family), b.address_set(&pods, REG_1)]);
        }
        for peer in &peer_matches {
            rules.push(match peer {
                Some(Peer::Block { cidr, except }) => {
                    let mut m: Vec<Expr> = expr::in_network(dir.peer(family), *cidr, expr::CMP_EQ).into();
                    for e in except.iter().filter(|e| e.family() == family) {
                        m.extend(expr::in_network(dir.peer(family), *e, expr::CMP_NEQ));
                    }
                    m
                }
                _ => vec![],
            });
        }
        for mut rule in rules {
            rule.extend(ports.iter().cloned());
            rule.push(expr::verdict(&Verdict::Return));
            b.add_rule(chain, rule);
        }
    }
}

/// The whole ruleset of `family`'s table for `pods` (those with an address of that family),
/// replacing the table's, in one transaction.
pub fn ruleset(family: Family, table: &str, pods: &[PodPolicy]) -> Batch {
    let mut b = Batch::new(family, table);
    b.replace_table();
    b.add_chain("forward", Some(Hook { hook: HOOK_FORWARD, priority: 0, kind: "filter" }));
    // ct state established,related accept
    b.add_rule(
        "forward",
        [
            expr::ct_state(REG_1),
            expr::bitwise(REG_1, &(2u32 | 4).to_ne_bytes(), &[0; 4]),
            expr::cmp(REG_1, expr::CMP_NEQ, &[0; 4]),
            expr::verdict(&Verdict::Accept),
        ],
    );
    for p in pods.iter().filter(|p| Family::of(p.ip) == family) {
        for (dir, allows) in [(Direction::Ingress, &p.ingress), (Direction::Egress, &p.egress)] {
            let Some(allows) = allows else { continue };
            let chain = dir.chain(p.ip);
            b.add_chain(&chain, None);
            for allow in allows {
                allow_rules(&mut b, &chain, dir, allow);
            }
            b.add_rule(&chain, [expr::verdict(&Verdict::Drop)]);
            b.add_rule(
                "forward",
                [
                    dir.pod(family),
                    expr::cmp(REG_1, expr::CMP_EQ, &octets(p.ip)),
                    expr::verdict(&Verdict::Jump(chain.clone())),
                ],
            );
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::from([a, b, c, d])
    }
    use crate::net::cidr::Cidr;

    /// The kernel takes the ruleset and `nft` reads back what we meant (in a network namespace
    /// of the test's own; needs root, as CI runs).
    #[test]
    fn the_kernel_takes_the_policies() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let web = PodPolicy {
            ip: v4(10, 42, 0, 5),
            ingress: Some(vec![Allow {
                peers: Some(vec![
                    Peer::Pod(v4(10, 42, 0, 6)),
                    Peer::Pod(v4(10, 42, 0, 7)),
                    Peer::Block {
                        cidr: Cidr { network: v4(192, 0, 2, 0), prefix: 24 },
                        except: vec![Cidr { network: v4(192, 0, 2, 128), prefix: 25 }],
                    },
                ]),
                ports: Some(vec![
                    Ports { protocol: 6, range: Some((8080, 8080)) },
                    Ports { protocol: 17, range: Some((9000, 9010)) },
                ]),
            }]),
            egress: Some(vec![]),
        };
        let listed = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            crate::net::nft::apply(&ruleset(Family::V4, "skiff-np-test", &[web])).expect("apply");
            let out = std::process::Command::new("nft").args(["list", "table", "ip", "skiff-np-test"]).output();
            let listed = out
                .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
                .unwrap_or_default();
            crate::net::nft::remove_table(Family::V4, "skiff-np-test").expect("removal");
            listed
        })
        .join()
        .expect("thread");
        for line in [
            "ct state established,related accept",
            "ip daddr 10.42.0.5 jump ingress-10.42.0.5",
            "ip saddr 10.42.0.5 jump egress-10.42.0.5",
            "ip saddr { 10.42.0.6, 10.42.0.7 } tcp dport 8080 return",
            "ip saddr { 10.42.0.6, 10.42.0.7 } udp dport 9000-9010 return",
            "ip saddr 192.0.2.0/24 ip saddr != 192.0.2.128/25 tcp dport 8080 return",
            "chain egress-10.42.0.5 {\n\t\tdrop\n\t}",
        ] {
            assert!(listed.contains(line), "{line:?} missing from:\n{listed}");
        }
    }

    /// The IPv6 table of a dual-stack pod: only IPv6 peers and blocks (needs root).
    #[test]
    fn the_kernel_takes_ipv6_policies() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let allow = Allow {
            peers: Some(vec![
                Peer::Pod(ip("10.42.0.6")),
                Peer::Pod(ip("fd00:42::6")),
                Peer::Block { cidr: Cidr::parse("2001:db8::/32").expect("cidr"), except: vec![] },
                Peer::Block { cidr: Cidr::parse("192.0.2.0/24").expect("cidr"), except: vec![] },
            ]),
            ports: Some(vec![Ports { protocol: 6, range: Some((8080, 8080)) }]),
        };
        let pods = [
            PodPolicy { ip: ip("10.42.0.5"), ingress: Some(vec![allow.clone()]), egress: None },
            PodPolicy { ip: ip("fd00:42::5"), ingress: Some(vec![allow]), egress: None },
        ];
        let listed = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            crate::net::nft::apply(&ruleset(Family::V6, "skiff-np-test6", &pods)).expect("apply");
            let out = std::process::Command::new("nft").args(["list", "table", "ip6", "skiff-np-test6"]).output();
            out.map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
                .unwrap_or_default()
        })
        .join()
        .expect("thread");
        for line in [
            "ip6 daddr fd00:42::5 jump ingress-fd00:42::5",
            "ip6 saddr { fd00:42::6 } tcp dport 8080 return",
            "ip6 saddr 2001:db8::/32 tcp dport 8080 return",
        ] {
            assert!(listed.contains(line), "{line:?} missing from:\n{listed}");
        }
        assert!(!listed.contains("10.42.0") && !listed.contains("192.0.2"), "{listed}");
    }
}
