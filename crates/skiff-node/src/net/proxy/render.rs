//! The proxy's nftables ruleset for a set of Service ports, shaped as kube-proxy's nftables mode
//! (docs/notes/nftables-proxy.md): base chains jump to `services`, which looks the destination
//! up in verdict maps keyed by `address . protocol . port` (and `protocol . node port` for local
//! addresses); each Service port's chain picks an endpoint at random (`numgen`) and each
//! endpoint's chain DNATs to it, marking hairpin traffic for masquerade. Ports with no endpoint
//! are rejected at once (connection refused) from the filter hooks. Pure: a [`Batch`].

use super::model::{Port, Target};
use crate::net::cidr::{Cidr, Family, octets};
use crate::net::nft::{
    Batch, Expr, HOOK_FORWARD, HOOK_INPUT, HOOK_OUTPUT, HOOK_POSTROUTING, HOOK_PREROUTING, Hook, REG_1, REG32_01,
    TYPE_INET_PROTO, TYPE_INET_SERVICE, Verdict, expr,
};
use std::net::IpAddr;

const SERVICE_IPS: &str = "service-ips";
const SERVICE_NODEPORTS: &str = "service-nodeports";
const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
const MASQUERADING: &str = "masquerading";
const REJECT: &str = "reject-chain";
const MAPS: [&str; 4] = [SERVICE_IPS, NO_ENDPOINT_SERVICES, SERVICE_NODEPORTS, NO_ENDPOINT_NODEPORTS];
/// The mark bit of connections to masquerade (kube-proxy's).
const MASQUERADE_BIT: u32 = 0x4000;

/// `address . protocol . port` (the type, the key's length), and `protocol . port`: each
/// field padded to 4 bytes.
fn ip_proto_port_key(family: Family) -> (u32, u32) {
    ((family.addr_type() << 12) | (TYPE_INET_PROTO << 6) | TYPE_INET_SERVICE, family.addr_len() as u32 + 8)
}
const PROTO_PORT: u32 = (TYPE_INET_PROTO << 6) | TYPE_INET_SERVICE;

fn ip_proto_port(ip: IpAddr, proto: u8, port: u16) -> Vec<u8> {
    let mut k = octets(ip);
    k.extend_from_slice(&[proto, 0, 0, 0]);
    k.extend_from_slice(&port.to_be_bytes());
    k.extend_from_slice(&[0, 0]);
    k
}

fn proto_port(proto: u8, port: u16) -> Vec<u8> {
    let mut k = vec![proto, 0, 0, 0];
    k.extend_from_slice(&port.to_be_bytes());
    k.extend_from_slice(&[0, 0]);
    k
}

fn service_chain(p: &Port) -> String {
    format!("service-{}", p.id)
}

fn external_chain(p: &Port) -> String {
    format!("external-{}", p.id)
}

fn firewall_chain(p: &Port) -> String {
    format!("firewall-{}", p.id)
}

fn endpoint_chain(p: &Port, t: &Target) -> String {
    format!("endpoint-{}__{}/{}", p.id, t.ip, t.port)
}

/// The clients an endpoint served lately (session affinity).
fn affinity_set(p: &Port, t: &Target) -> String {
    format!("affinity-{}__{}/{}", p.id, t.ip, t.port)
}

/// `ip daddr . meta l4proto . th dport vmap @map` (`ip6 daddr` in an `ip6` table)
fn by_address(family: Family, map: &str) -> Vec<Expr> {
    let after = family.reg32_after_addr();
    vec![
        expr::daddr(family, REG_1),
        expr::l4proto(after),
        expr::th_dport(after + 1),
        expr::lookup_vmap(map, None, REG_1),
    ]
}

/// `fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @map`
/// (`ip6 daddr != ::1`)
fn by_node_port(family: Family, map: &str) -> Vec<Expr> {
    let mut rule = vec![expr::fib_daddr_type(REG_1), expr::cmp(REG_1, expr::CMP_EQ, &2u32.to_ne_bytes())];
    rule.extend(expr::daddr_not_loopback(family));
    rule.extend([expr::l4proto(REG_1), expr::th_dport(REG32_01), expr::lookup_vmap(map, None, REG_1)]);
    rule
}

/// The table, its fixed chains and maps, empty of Services.
fn skeleton(b: &mut Batch) {
    let family = b.family();
    b.replace_table();
    let hook = |hook, priority, kind| Some(Hook { hook, priority, kind });
    for (chain, h, target) in [
        ("nat-prerouting", hook(HOOK_PREROUTING, -100, "nat"), "services"),
        ("nat-output", hook(HOOK_OUTPUT, -100, "nat"), "services"),
        ("nat-postrouting", hook(HOOK_POSTROUTING, 100, "nat"), MASQUERADING),
        // Before DNAT on output, after it elsewhere: a cluster IP still there has no endpoint.
        ("filter-input", hook(HOOK_INPUT, -110, "filter"), "endpoints-check"),
        ("filter-forward", hook(HOOK_FORWARD, -110, "filter"), "endpoints-check"),
        ("filter-output", hook(HOOK_OUTPUT, -110, "filter"), "endpoints-check"),
    ] {
        b.add_chain(chain, h);
        let mut rule = Vec::new();
        if chain.starts_with("filter-") {
            // ct state new
            rule.push(expr::ct_state(REG_1));
            rule.push(expr::bitwise(REG_1, &8u32.to_ne_bytes(), &[0; 4]));
            rule.push(expr::cmp(REG_1, expr::CMP_NEQ, &[0; 4]));
        }
        rule.push(expr::verdict(&Verdict::Jump(target.into())));
        // The jump targets come first in the batch below; rules go after every chain exists.
        b.add_chain(target, None);
        b.add_rule(chain, rule);
    }
    b.add_chain(MARK_FOR_MASQUERADE, None);
    b.add_rule(
        MARK_FOR_MASQUERADE,
        [
            expr::mark_load(REG_1),
            expr::bitwise(REG_1, &(!MASQUERADE_BIT).to_ne_bytes(), &MASQUERADE_BIT.to_ne_bytes()),
            expr::mark_set(REG_1),
        ],
    );
    b.add_rule(
        MASQUERADING,
        [
            expr::mark_load(REG_1),
            expr::bitwise(REG_1, &MASQUERADE_BIT.to_ne_bytes(), &[0; 4]),
            expr::cmp(REG_1, expr::CMP_EQ, &[0; 4]),
            expr::verdict(&Verdict::Return),
        ],
    );
    b.add_rule(
        MASQUERADING,
        [
            expr::mark_load(REG_1),
            expr::bitwise(REG_1, &u32::MAX.to_ne_bytes(), &MASQUERADE_BIT.to_ne_bytes()),
            expr::mark_set(REG_1),
            expr::masquerade(true),
        ],
    );
    b.add_chain(REJECT, None);
    b.add_rule(REJECT, [expr::l4proto(REG_1), expr::cmp(REG_1, expr::CMP_EQ, &[6]), expr::reject_tcp_reset()]);
    b.add_rule(REJECT, [expr::reject(family)]);
    let (key_type, key_len) = ip_proto_port_key(family);
    b.add_vmap(SERVICE_IPS, key_type, key_len);
    b.add_vmap(NO_ENDPOINT_SERVICES, key_type, key_len);
    b.add_vmap(SERVICE_NODEPORTS, PROTO_PORT, 8);
    b.add_vmap(NO_ENDPOINT_NODEPORTS, PROTO_PORT, 8);
    b.add_rule("services", by_address(family, SERVICE_IPS));
    b.add_rule("services", by_node_port(family, SERVICE_NODEPORTS));
    b.add_rule("endpoints-check", by_address(family, NO_ENDPOINT_SERVICES));
    b.add_rule("endpoints-check", by_node_port(family, NO_ENDPOINT_NODEPORTS));
}

/// A chain that sends to one of `targets` at random.
fn balance(b: &mut Batch, chain: &str, p: &Port, targets: &[Target], masquerade_first: bool) {
    let family = b.family();
    b.add_chain(chain, None);
    if masquerade_first {
        b.add_rule(chain, [expr::verdict(&Verdict::Jump(MARK_FOR_MASQUERADE.into()))]);
    }
    if p.affinity.is_some() {
        // A client an endpoint served lately goes back to it.
        for t in targets {
            b.add_rule(
                chain,
                [
                    expr::saddr(family, REG_1),
                    expr::lookup_set(&affinity_set(p, t), REG_1),
                    expr::verdict(&Verdict::Goto(endpoint_chain(p, t))),
                ],
            );
        }
    }
    let choices: Vec<Verdict> = targets.iter().map(|t| Verdict::Goto(endpoint_chain(p, t))).collect();
    let exprs = b.random_choice(&choices);
    b.add_rule(chain, exprs);
}

/// What one Service port puts in the table besides its rules: its map elements (map, key,
/// verdict), its chains and its affinity sets.
#[derive(Default)]
struct Footprint {
    elements: Vec<(&'static str, Vec<u8>, Verdict)>,
    chains: Vec<String>,
    sets: Vec<String>,
}

/// Write `p`'s chains, rules and affinity sets into `b`; what it needs in the maps comes back.
fn port(b: &mut Batch, p: &Port, in_cluster: &[Cidr]) -> Footprint {
    let family = b.family();
    let mut fp = Footprint::default();
    let chain_of = |b: &mut Batch, fp: &mut Footprint, name: String| {
        b.add_chain(&name, None);
        fp.chains.push(name);
    };
    let proto = p.protocol.number();
    let mut endpoints: Vec<&Target> = p.internal.iter().chain(&p.external).collect();
    endpoints.sort();
    endpoints.dedup();
    for t in endpoints {
        let chain = endpoint_chain(p, t);
        chain_of(b, &mut fp, chain.clone());
        // Hairpin: a pod reaching itself through its Service must see the reply come back
        // through the node, so its source is rewritten.
        b.add_rule(
            &chain,
            [
                expr::saddr(family, REG_1),
                expr::cmp(REG_1, expr::CMP_EQ, &octets(t.ip)),
                expr::verdict(&Verdict::Jump(MARK_FOR_MASQUERADE.into())),
            ],
        );
        if let Some(timeout) = p.affinity {
            let set = affinity_set(p, t);
            b.add_address_timeout_set(&set, timeout);
            b.add_rule(&chain, [expr::saddr(family, REG_1), expr::dynset_update(&set, REG_1, timeout)]);
            fp.sets.push(set);
        }
        let mut dnat = vec![expr::l4proto(REG_1), expr::cmp(REG_1, expr::CMP_EQ, &[proto])];
        dnat.extend(expr::dnat(t.ip, t.port));
        b.add_rule(&chain, dnat);
    }
    if let Some(ip) = p.cluster_ip {
        let key = ip_proto_port(ip, proto, p.port);
        if p.internal.is_empty() {
            let verdict = if p.has_endpoints { Verdict::Drop } else { Verdict::Goto(REJECT.into()) };
            fp.elements.push((NO_ENDPOINT_SERVICES, key, verdict));
        } else {
            fp.chains.push(service_chain(p));
            balance(b, &service_chain(p), p, &p.internal, false);
            fp.elements.push((SERVICE_IPS, key, Verdict::Goto(service_chain(p))));
        }
    }
    if p.node_port.is_none() && p.external_ips.is_empty() {
        return fp;
    }
    // With a Local policy, clients inside the cluster (this node, its pods) still reach
    // every endpoint, as kube-proxy short-circuits them to the Service's own chain.
    let short_circuit = p.external_local && !p.internal.is_empty();
    let chained = short_circuit || !p.external.is_empty();
    let external = if !chained {
        // No endpoint here drops (another node may have one); none anywhere is refused.
        if p.has_endpoints { Verdict::Drop } else { Verdict::Goto(REJECT.into()) }
    } else {
        let chain = external_chain(p);
        chain_of(b, &mut fp, chain.clone());
        if short_circuit {
            let to_service = Verdict::Goto(service_chain(p));
            let local = [expr::fib_saddr_type(REG_1), expr::cmp(REG_1, expr::CMP_EQ, &2u32.to_ne_bytes())];
            b.add_rule(&chain, local.into_iter().chain([expr::verdict(&to_service)]));
            for cidr in in_cluster.iter().filter(|c| c.family() == family) {
                b.add_rule(&chain, from_network(*cidr, &to_service));
            }
        }
        if p.external.is_empty() {
            b.add_rule(&chain, [expr::verdict(&Verdict::Drop)]);
        } else {
            balance(b, &chain, p, &p.external, !p.external_local);
        }
        Verdict::Goto(chain)
    };
    let (ips_map, node_port_map) =
        if chained { (SERVICE_IPS, SERVICE_NODEPORTS) } else { (NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS) };
    // Load-balancer addresses with source ranges go through a firewall first, which lets in
    // only those sources (kube-proxy's firewall chain).
    let firewalled = !p.source_ranges.is_empty() && chained;
    if firewalled {
        let chain = firewall_chain(p);
        chain_of(b, &mut fp, chain.clone());
        for cidr in p.source_ranges.iter().filter(|c| c.family() == family) {
            b.add_rule(&chain, from_network(*cidr, &external));
        }
        b.add_rule(&chain, [expr::verdict(&Verdict::Drop)]);
    }
    for ip in &p.external_ips {
        let verdict = if firewalled && p.load_balancer_ips.contains(ip) {
            Verdict::Goto(firewall_chain(p))
        } else {
            external.clone()
        };
        fp.elements.push((ips_map, ip_proto_port(*ip, proto, p.port), verdict));
    }
    if let Some(n) = p.node_port {
        fp.elements.push((node_port_map, proto_port(proto, n), external));
    }
    fp
}

/// `ip saddr` (`ip6 saddr`) in `cidr`, then `verdict`.
fn from_network(cidr: Cidr, verdict: &Verdict) -> Vec<Expr> {
    let mut rule: Vec<Expr> = expr::in_network(expr::saddr(cidr.family(), REG_1), cidr, expr::CMP_EQ).into();
    rule.push(expr::verdict(verdict));
    rule
}

/// What `p` needs in the maps and which chains and sets it has, without writing anything.
fn footprint(family: Family, p: &Port, in_cluster: &[Cidr]) -> Footprint {
    port(&mut Batch::new(family, "-"), p, in_cluster)
}

type MapElements = std::collections::HashMap<(&'static str, Vec<u8>), Verdict>;

/// The maps' contents for `footprints` (the first port claiming a key keeps it).
fn map_elements<'a>(footprints: impl IntoIterator<Item = &'a Footprint>) -> MapElements {
    let mut out = MapElements::new();
    for fp in footprints {
        for (map, key, verdict) in &fp.elements {
            out.entry((*map, key.clone())).or_insert_with(|| verdict.clone());
        }
    }
    out
}

/// Add the `elements` that `keep` says, map by map.
fn add_map_elements(b: &mut Batch, elements: &MapElements, keep: impl Fn(&'static str, &[u8], &Verdict) -> bool) {
    for map in MAPS {
        let mut list: Vec<(Vec<u8>, Verdict)> = (elements.iter())
            .filter(|((m, k), v)| *m == map && keep(m, k, v))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        b.add_elements(map, None, &list);
    }
}

/// The whole ruleset for `ports`, replacing whatever the table held, in one transaction
/// (established connections keep their translation: it lives in conntrack, not in the rules).
/// `in_cluster` are the pods' networks (their traffic to a Local-policy address is internal).
/// `family` is the table's (`ip` or `ip6`), and that of every address in `ports`.
pub fn ruleset(family: Family, table: &str, ports: &[Port], in_cluster: &[Cidr]) -> Batch {
    let mut b = Batch::new(family, table);
    skeleton(&mut b);
    let footprints: Vec<Footprint> = ports.iter().map(|p| port(&mut b, p, in_cluster)).collect();
    add_map_elements(&mut b, &map_elements(&footprints), |_, _, _| true);
    b
}

/// The change from the table `before` made to the one `after` needs, in one transaction: only
/// the Service ports that changed are rewritten (their chains flushed and written again, those
/// they no longer need deleted) and the maps' elements are changed by difference, so affinity
/// sets and everything else stay as they are.
pub fn update(family: Family, table: &str, before: &[Port], after: &[Port], in_cluster: &[Cidr]) -> Batch {
    use std::collections::HashMap;
    let mut b = Batch::new(family, table);
    let old: HashMap<&str, &Port> = before.iter().map(|p| (p.id.as_str(), p)).collect();
    let new: HashMap<&str, &Port> = after.iter().map(|p| (p.id.as_str(), p)).collect();
    let old_fps: Vec<Footprint> = before.iter().map(|p| footprint(family, p, in_cluster)).collect();
    let new_fps: Vec<Footprint> = after.iter().map(|p| footprint(family, p, in_cluster)).collect();
    let changed = |id: &str| old.get(id) != new.get(id);
    // 1. Nothing of a changed or gone port refers to anything any more.
    let changed_before: Vec<&Footprint> =
        before.iter().zip(&old_fps).filter(|(p, _)| changed(&p.id)).map(|(_, fp)| fp).collect();
    for chain in changed_before.iter().flat_map(|fp| &fp.chains) {
        b.flush_chain(chain);
    }
    // 2. Map elements that go or change.
    let (old_elements, new_elements) = (map_elements(&old_fps), map_elements(&new_fps));
    for map in MAPS {
        let mut gone: Vec<Vec<u8>> = (old_elements.iter())
            .filter(|((m, k), v)| *m == map && new_elements.get(&(*m, k.clone())) != Some(*v))
            .map(|((_, k), _)| k.clone())
            .collect();
        gone.sort();
        b.delete_elements(map, &gone);
    }
    // 3. Chains and sets no port needs any more.
    let still_chains: std::collections::HashSet<&String> = new_fps.iter().flat_map(|f| &f.chains).collect();
    let still_sets: std::collections::HashSet<&String> = new_fps.iter().flat_map(|f| &f.sets).collect();
    for fp in changed_before {
        for chain in fp.chains.iter().filter(|c| !still_chains.contains(c)) {
            b.delete_chain(chain);
        }
        for set in fp.sets.iter().filter(|s| !still_sets.contains(s)) {
            b.delete_set(set);
        }
    }
    // 4. The changed and new ports, written again.
    for p in after.iter().filter(|p| changed(&p.id)) {
        port(&mut b, p, in_cluster);
    }
    // 5. Map elements that are new or changed.
    add_map_elements(&mut b, &new_elements, |m, k, v| old_elements.get(&(m, k.to_vec())) != Some(v));
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::proxy::model::Protocol;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::from([a, b, c, d])
    }

    fn v4n(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(n))
    }

    #[test]
    fn keys_pad_every_field_to_four_bytes() {
        assert_eq!(ip_proto_port(v4(10, 43, 0, 10), 6, 80), [0x0a, 0x2b, 0, 0x0a, 6, 0, 0, 0, 0, 0x50, 0, 0]);
        assert_eq!(proto_port(17, 30080), [17, 0, 0, 0, 0x75, 0x80, 0, 0]);
        assert_eq!(ip_proto_port_key(Family::V4), (0x730d, 12));
        assert_eq!(ip_proto_port_key(Family::V6), (0x830d, 24));
        assert_eq!(PROTO_PORT, 0x30d);
    }

    fn target(last: u8) -> Target {
        Target { ip: v4(10, 42, 0, last), port: 8080, local: true }
    }

    /// `default/web` port 80 (node port 30080) with endpoints .5 and .6.
    fn web() -> Port {
        Port {
            id: "default/web/tcp/http".into(),
            protocol: Protocol::Tcp,
            cluster_ip: Some(v4(10, 43, 0, 20)),
            port: 80,
            node_port: Some(30080),
            external_ips: vec![],
            internal: vec![target(5), target(6)],
            external: vec![target(5), target(6)],
            internal_local: false,
            external_local: false,
            affinity: None,
            source_ranges: vec![],
            load_balancer_ips: vec![],
            has_endpoints: true,
        }
    }

    #[test]
    fn a_service_with_two_endpoints_and_one_without() {
        let web = web();
        let empty = Port {
            id: "default/none/tcp/".into(),
            cluster_ip: Some(v4(10, 43, 0, 21)),
            node_port: None,
            internal: vec![],
            external: vec![],
            has_endpoints: false,
            ..web.clone()
        };
        let (buf, _) = ruleset(Family::V4, "skiff-svc-test", &[web, empty], &[]).encode();
        let find = |needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
        for chain in [
            "service-default/web/tcp/http",
            "external-default/web/tcp/http",
            "endpoint-default/web/tcp/http__10.42.0.5/8080",
            "endpoint-default/web/tcp/http__10.42.0.6/8080",
        ] {
            assert!(find(format!("{chain}\0").as_bytes()), "{chain}");
        }
        assert!(!find(b"service-default/none/tcp/\0"), "no chain for a Service without endpoints");
        assert!(find(&ip_proto_port(v4(10, 43, 0, 21), 6, 80)), "its address is rejected");
        assert!(find(&proto_port(6, 30080)));
    }

    /// The kernel takes the whole ruleset, and `nft` reads back what we meant (in a network
    /// namespace of the test's own; needs root, as CI runs).
    #[test]
    fn the_kernel_takes_the_ruleset() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let web = Port {
            external_ips: vec![v4(192, 0, 2, 10)],
            load_balancer_ips: vec![v4(192, 0, 2, 10)],
            source_ranges: vec![Cidr { network: v4(198, 51, 100, 0), prefix: 24 }],
            external: vec![target(5)],
            internal_local: false,
            external_local: true,
            affinity: Some(std::time::Duration::from_secs(600)),
            ..web()
        };
        let none = Port {
            id: "default/none/udp/".into(),
            protocol: Protocol::Udp,
            node_port: None,
            internal: vec![],
            external: vec![],
            has_endpoints: false,
            cluster_ip: Some(v4(10, 43, 0, 21)),
            ..web.clone()
        };
        let listed = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            crate::net::nft::apply(&ruleset(
                Family::V4,
                "skiff-svc-test",
                &[web.clone(), none.clone()],
                &[Cidr { network: v4(10, 42, 0, 0), prefix: 24 }],
            ))
            .expect("first");
            // Applied again over itself (a restart): replaced, not doubled.
            crate::net::nft::apply(&ruleset(
                Family::V4,
                "skiff-svc-test",
                &[web, none],
                &[Cidr { network: v4(10, 42, 0, 0), prefix: 24 }],
            ))
            .expect("again");
            let out = std::process::Command::new("nft").args(["list", "table", "ip", "skiff-svc-test"]).output();
            let listed = out
                .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
                .unwrap_or_default();
            crate::net::nft::remove_table(Family::V4, "skiff-svc-test").expect("removal");
            listed
        })
        .join()
        .expect("thread");
        for line in [
            "10.43.0.20 . tcp . 80 : goto service-default/web/tcp/http",
            "192.0.2.10 . tcp . 80 : goto firewall-default/web/tcp/http",
            "ip saddr 198.51.100.0/24 goto external-default/web/tcp/http",
            "tcp . 30080 : goto external-default/web/tcp/http",
            "10.43.0.21 . udp . 80 : goto reject-chain",
            "numgen random mod 2 vmap { 0 : goto endpoint-default/web/tcp/http__10.42.0.5/8080, 1 : goto endpoint-default/web/tcp/http__10.42.0.6/8080 }",
            "ip saddr 10.42.0.5 jump mark-for-masquerade",
            "meta l4proto tcp dnat to 10.42.0.5:8080",
            "ct state new jump endpoints-check",
            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
            "masquerade fully-random",
            "reject with tcp reset",
            "fib saddr type local goto service-default/web/tcp/http",
            "ip saddr 10.42.0.0/24 goto service-default/web/tcp/http",
            "ip saddr @affinity-default/web/tcp/http__10.42.0.6/8080 goto endpoint-default/web/tcp/http__10.42.0.6/8080",
            "update @affinity-default/web/tcp/http__10.42.0.5/8080 { ip saddr timeout 10m }",
        ] {
            assert!(listed.contains(line), "{line:?} missing from:\n{listed}");
        }
        assert_eq!(listed.matches("chain services {").count(), 1, "{listed}");
    }

    /// 1,000 Services of 10 endpoints each: one transaction past the socket's default buffer
    /// and the 64 KiB of one attribute, taken whole (needs root, as CI runs).
    #[test]
    fn the_kernel_takes_a_thousand_services() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let ports: Vec<Port> = (0..1000u32)
            .map(|i| {
                let endpoints: Vec<Target> =
                    (0..10u32).map(|e| Target { ip: v4n(0x0a2a_0000 + i * 10 + e), port: 8080, local: true }).collect();
                Port {
                    id: format!("default/svc-{i}/tcp/http"),
                    cluster_ip: Some(v4n(0x0a2b_0000 + i)),
                    node_port: Some(30000 + i as u16),
                    internal: endpoints.clone(),
                    external: endpoints,
                    ..web()
                }
            })
            .collect();
        let (bytes, _) = ruleset(Family::V4, "skiff-svc-big", &ports, &[]).encode();
        assert!(bytes.len() > 1 << 20, "a big batch: {} bytes", bytes.len());
        let listed = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            crate::net::nft::apply(&ruleset(Family::V4, "skiff-svc-big", &ports, &[])).expect("apply");
            let out =
                std::process::Command::new("nft").args(["list", "map", "ip", "skiff-svc-big", "service-ips"]).output();
            out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
        })
        .join()
        .expect("thread");
        assert_eq!(listed.matches(": goto service-default/svc-").count(), 1000);
    }

    /// An update leaves the table as a fresh ruleset of the new state would be: endpoints
    /// gone and come, a Service gone, one new, one changed to a load balancer (needs root).
    #[test]
    fn an_update_equals_a_fresh_ruleset() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let named = |id: &str, ip: u8, targets: Vec<Target>| Port {
            id: id.into(),
            cluster_ip: Some(v4(10, 43, 0, ip)),
            node_port: None,
            internal: targets.clone(),
            external: targets,
            affinity: Some(std::time::Duration::from_secs(60)),
            ..web()
        };
        let before = vec![
            named("default/a/tcp/", 1, vec![target(5), target(6)]),
            named("default/b/tcp/", 2, vec![target(7)]),
            named("default/c/tcp/", 3, vec![target(8)]),
        ];
        let after = vec![
            named("default/a/tcp/", 1, vec![target(6), target(9)]),
            Port {
                node_port: Some(30090),
                load_balancer_ips: vec![v4(192, 0, 2, 1)],
                external_ips: vec![v4(192, 0, 2, 1)],
                ..named("default/c/tcp/", 3, vec![target(8)])
            },
            named("default/d/tcp/", 4, vec![]),
        ];
        let cluster = [Cidr { network: v4(10, 42, 0, 0), prefix: 24 }];
        let sorted = |listing: String, table: &str| {
            let mut lines: Vec<String> = listing.replace(table, "T").lines().map(|l| l.trim().to_string()).collect();
            lines.sort();
            lines
        };
        let (updated, fresh) = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            crate::net::nft::apply(&ruleset(Family::V4, "t-upd", &before, &cluster)).expect("first");
            crate::net::nft::apply(&update(Family::V4, "t-upd", &before, &after, &cluster)).expect("update");
            crate::net::nft::apply(&ruleset(Family::V4, "t-new", &after, &cluster)).expect("fresh");
            let list = |t: &str| {
                let out = std::process::Command::new("nft").args(["list", "table", "ip", t]).output().expect("nft");
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            (sorted(list("t-upd"), "t-upd"), sorted(list("t-new"), "t-new"))
        })
        .join()
        .expect("thread");
        assert_eq!(updated, fresh);
        assert!(fresh.iter().any(|l| l.contains("endpoint-default/a/tcp/__10.42.0.9/8080")));
    }

    /// The same shape in an `ip6` table: a dual-stack Service's IPv6 side (needs root).
    #[test]
    fn the_kernel_takes_an_ipv6_ruleset() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let target6 = |last: &str| Target { ip: ip(&format!("fd00:42::{last}")), port: 8080, local: true };
        let web = Port {
            cluster_ip: Some(ip("fd00:43::20")),
            internal: vec![target6("5"), target6("6")],
            external: vec![target6("5")],
            external_ips: vec![ip("2001:db8::10")],
            load_balancer_ips: vec![ip("2001:db8::10")],
            source_ranges: vec![Cidr::parse("2001:db8:1::/48").expect("cidr")],
            internal_local: false,
            external_local: true,
            affinity: Some(std::time::Duration::from_secs(600)),
            ..web()
        };
        let none = Port {
            id: "default/none/udp/".into(),
            protocol: Protocol::Udp,
            cluster_ip: Some(ip("fd00:43::21")),
            node_port: None,
            internal: vec![],
            external: vec![],
            external_ips: vec![],
            load_balancer_ips: vec![],
            has_endpoints: false,
            ..web.clone()
        };
        let cluster = [Cidr::parse("fd00:42::/64").expect("cidr")];
        let listed = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            let before = [web.clone()];
            let after = [web, none];
            crate::net::nft::apply(&ruleset(Family::V6, "skiff-svc-test6", &before, &cluster)).expect("apply");
            crate::net::nft::apply(&update(Family::V6, "skiff-svc-test6", &before, &after, &cluster)).expect("update");
            let out = std::process::Command::new("nft").args(["list", "table", "ip6", "skiff-svc-test6"]).output();
            out.map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
                .unwrap_or_default()
        })
        .join()
        .expect("thread");
        for line in [
            "fd00:43::20 . tcp . 80 : goto service-default/web/tcp/http",
            "2001:db8::10 . tcp . 80 : goto firewall-default/web/tcp/http",
            "ip6 saddr 2001:db8:1::/48 goto external-default/web/tcp/http",
            "fd00:43::21 . udp . 80 : goto reject-chain",
            "ip6 saddr fd00:42::5 jump mark-for-masquerade",
            "meta l4proto tcp dnat to [fd00:42::5]:8080",
            "fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @service-nodeports",
            "ip6 daddr . meta l4proto . th dport vmap @service-ips",
            "ip6 saddr fd00:42::/64 goto service-default/web/tcp/http",
            "update @affinity-default/web/tcp/http__fd00:42::5/8080 { ip6 saddr timeout 10m }",
        ] {
            assert!(listed.contains(line), "{line:?} missing from:\n{listed}");
        }
    }
}
