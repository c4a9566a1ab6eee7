//! nftables spoken over nfnetlink directly: no `nft` binary, no libnftnl (the Rust nftables
//! crates either shell out, bind the C library, lack NAT, or are GPL). A [`Batch`] is one
//! transaction (all or nothing) of tables, chains, rules, maps and map elements; the encoding is
//! pure and tested byte by byte; [`apply`] only sends a batch and reads the acknowledgements.
//! Layouts and numbers are in docs/notes/nftables-proxy.md (checked against `nft --debug`).

pub use crate::net::cidr::Family;
use crate::net::cidr::octets;
use std::net::IpAddr;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_DELSETELEM: u16 = 14;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 0x2;

const AF_UNSPEC: u8 = 0;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

impl Family {
    fn nfproto(self) -> u8 {
        match self {
            Family::V4 => NFPROTO_IPV4,
            Family::V6 => NFPROTO_IPV6,
        }
    }

    /// nft's datatype of an address.
    pub fn addr_type(self) -> u32 {
        match self {
            Family::V4 => TYPE_IPV4_ADDR,
            Family::V6 => TYPE_IPV6_ADDR,
        }
    }

    /// The 32-bit register slot just after an address loaded into `REG_1` (where the next
    /// field of a concatenated key goes).
    pub fn reg32_after_addr(self) -> u32 {
        REG32_00 + self.addr_len() as u32 / 4
    }
}

// Hooks and what chains are.
pub const HOOK_PREROUTING: u32 = 0;
pub const HOOK_INPUT: u32 = 1;
pub const HOOK_FORWARD: u32 = 2;
pub const HOOK_OUTPUT: u32 = 3;
pub const HOOK_POSTROUTING: u32 = 4;
const NF_ACCEPT: u32 = 1;

// Attribute numbers (linux/netfilter/nf_tables.h).
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DATA_TYPE: u16 = 6;
const NFTA_SET_DATA_LEN: u16 = 7;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_TIMEOUT: u16 = 11;
const NFTA_SET_USERDATA: u16 = 13;
/// nft's note on a set (libnftnl's udata TLVs): its keys are host-endian numbers, so `nft list`
/// prints them as numgen's values (type KEYBYTEORDER 0, length 4, BYTEORDER_HOST_ENDIAN 1).
fn userdata_host_endian_keys() -> Vec<u8> {
    [&[0u8, 4][..], &1u32.to_ne_bytes()].concat()
}
const NFTA_SET_DESC_SIZE: u16 = 1;
const NFT_SET_ANONYMOUS: u32 = 0x1;
const NFT_SET_CONSTANT: u32 = 0x2;
const NFT_SET_MAP: u32 = 0x8;
const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_EVAL: u32 = 0x20;
const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_LIST_SET_ID: u16 = 4;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// The most element bytes one message carries (its list attribute's length is 16 bits).
const MAX_ELEMENTS_BYTES: usize = 60_000;

/// Registers: the verdict, and the 16-byte general ones (`REG_1` is 32-bit slots 8..11).
pub const REG_VERDICT: u32 = 0;
pub const REG_1: u32 = 1;
pub const REG_2: u32 = 2;
/// The 32-bit slots: `REG32_00` is the first 4 bytes of `REG_1`.
pub const REG32_00: u32 = 8;
pub const REG32_01: u32 = 9;

/// nft's datatype ids, packed 6 bits per field for concatenations (stored for `nft list`).
pub const TYPE_INTEGER: u32 = 4;
pub const TYPE_IPV4_ADDR: u32 = 7;
pub const TYPE_IPV6_ADDR: u32 = 8;
pub const TYPE_INET_PROTO: u32 = 12;
pub const TYPE_INET_SERVICE: u32 = 13;

/// Netlink attributes, appended to a buffer (4-byte aligned, lengths in host order).
#[derive(Default, Clone)]
pub struct Attrs(Vec<u8>);

impl Attrs {
    pub fn raw(mut self, kind: u16, payload: &[u8]) -> Self {
        // Callers keep attributes under 64 KiB (element lists are split); a longer one would
        // be refused by the kernel as malformed, never silently cut.
        let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }
    pub fn str(self, kind: u16, s: &str) -> Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.raw(kind, &b)
    }
    /// nftables numbers travel in network byte order.
    pub fn u32(self, kind: u16, v: u32) -> Self {
        self.raw(kind, &v.to_be_bytes())
    }
    pub fn u64(self, kind: u16, v: u64) -> Self {
        self.raw(kind, &v.to_be_bytes())
    }
    pub fn nest(self, kind: u16, inner: Attrs) -> Self {
        self.raw(kind, &inner.0)
    }
    fn append(mut self, other: Attrs) -> Self {
        self.0.extend(other.0);
        self
    }
}

/// What a rule or a map element decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
}

impl Verdict {
    fn attrs(&self) -> Attrs {
        let (code, chain): (i32, Option<&str>) = match self {
            Verdict::Drop => (0, None),
            Verdict::Accept => (1, None),
            Verdict::Jump(c) => (-3, Some(c)),
            Verdict::Goto(c) => (-4, Some(c)),
            Verdict::Return => (-5, None),
        };
        let mut v = Attrs::default().u32(NFTA_VERDICT_CODE, code as u32);
        if let Some(c) = chain {
            v = v.str(NFTA_VERDICT_CHAIN, c);
        }
        Attrs::default().nest(NFTA_DATA_VERDICT, v)
    }
}

/// One expression of a rule.
#[derive(Clone)]
pub struct Expr(Attrs);

/// Expressions, by the names the kernel knows them by.
pub mod expr {
    use super::*;

    const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
    const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
    const NFT_META_MARK: u32 = 3;
    const NFT_META_L4PROTO: u32 = 16;
    pub const CMP_EQ: u32 = 0;
    pub const CMP_NEQ: u32 = 1;
    pub const CMP_LTE: u32 = 3;
    pub const CMP_GTE: u32 = 5;

    pub(super) fn make(name: &str, data: Attrs) -> Expr {
        Expr(
            Attrs::default()
                .nest(NFTA_LIST_ELEM, Attrs::default().str(NFTA_EXPR_NAME, name).nest(NFTA_EXPR_DATA, data)),
        )
    }
    fn value(bytes: &[u8]) -> Attrs {
        Attrs::default().raw(NFTA_DATA_VALUE, bytes)
    }

    fn payload(base: u32, offset: u32, len: u32, dreg: u32) -> Expr {
        make("payload", Attrs::default().u32(1, dreg).u32(2, base).u32(3, offset).u32(4, len))
    }
    /// The source address (`ip saddr`, `ip6 saddr`) into `dreg`.
    pub fn saddr(family: Family, dreg: u32) -> Expr {
        match family {
            Family::V4 => payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, dreg),
            Family::V6 => payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 16, dreg),
        }
    }
    /// The destination address (`ip daddr`, `ip6 daddr`) into `dreg`.
    pub fn daddr(family: Family, dreg: u32) -> Expr {
        match family {
            Family::V4 => payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, dreg),
            Family::V6 => payload(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, dreg),
        }
    }
    /// The destination is not the loopback network (`ip daddr != 127.0.0.0/8`,
    /// `ip6 daddr != ::1`), using `REG_1`.
    pub fn daddr_not_loopback(family: Family) -> [Expr; 2] {
        match family {
            Family::V4 => [payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 1, REG_1), cmp(REG_1, CMP_NEQ, &[127])],
            Family::V6 => [daddr(family, REG_1), cmp(REG_1, CMP_NEQ, &std::net::Ipv6Addr::LOCALHOST.octets())],
        }
    }
    /// `LOAD & mask ==|!= network` (`op`): whether the address `load` puts in `REG_1` is in
    /// `cidr`.
    pub fn in_network(load: Expr, cidr: crate::net::cidr::Cidr, op: u32) -> [Expr; 3] {
        let mask = cidr.mask();
        [load, bitwise(REG_1, &mask, &vec![0; mask.len()]), cmp(REG_1, op, &octets(cidr.network))]
    }
    /// The transport destination port (`th dport`) into `dreg`.
    pub fn th_dport(dreg: u32) -> Expr {
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, dreg)
    }
    /// `meta l4proto` (one byte) into `dreg`.
    pub fn l4proto(dreg: u32) -> Expr {
        make("meta", Attrs::default().u32(1, dreg).u32(2, NFT_META_L4PROTO))
    }
    pub fn mark_load(dreg: u32) -> Expr {
        make("meta", Attrs::default().u32(1, dreg).u32(2, NFT_META_MARK))
    }
    pub fn mark_set(sreg: u32) -> Expr {
        make("meta", Attrs::default().u32(2, NFT_META_MARK).u32(3, sreg))
    }
    pub fn cmp(sreg: u32, op: u32, data: &[u8]) -> Expr {
        make("cmp", Attrs::default().u32(1, sreg).u32(2, op).nest(3, value(data)))
    }
    /// `reg = (reg & mask) ^ xor` over as many bytes as `mask` has (as many as `xor`).
    pub fn bitwise(reg: u32, mask: &[u8], xor: &[u8]) -> Expr {
        let len = mask.len() as u32;
        make("bitwise", Attrs::default().u32(1, reg).u32(2, reg).u32(3, len).nest(4, value(mask)).nest(5, value(xor)))
    }
    /// `ct state` into `dreg` (a host-endian bit set: new is 8).
    pub fn ct_state(dreg: u32) -> Expr {
        make("ct", Attrs::default().u32(1, dreg).u32(2, 0))
    }
    /// `fib saddr type` into `dreg` (host-endian: local is 2).
    pub fn fib_saddr_type(dreg: u32) -> Expr {
        make("fib", Attrs::default().u32(1, dreg).u32(2, 3).u32(3, 1))
    }
    /// `fib daddr type` into `dreg` (host-endian: local is 2).
    pub fn fib_daddr_type(dreg: u32) -> Expr {
        make("fib", Attrs::default().u32(1, dreg).u32(2, 3).u32(3, 2))
    }
    /// Look `sreg` up in a set; with a verdict map, its verdict is the rule's.
    pub fn lookup_vmap(set: &str, set_id: Option<u32>, sreg: u32) -> Expr {
        let mut a = Attrs::default().str(1, set).u32(2, sreg).u32(3, REG_VERDICT);
        if let Some(id) = set_id {
            a = a.u32(4, id);
        }
        make("lookup", a)
    }
    /// Whether `sreg` is in the set (a plain match: the rule stops here if not).
    pub fn lookup_set(set: &str, sreg: u32) -> Expr {
        make("lookup", Attrs::default().str(1, set).u32(2, sreg))
    }
    /// `update @set { key }`: add `sreg` to a dynamic set, or refresh its timeout.
    pub fn dynset_update(set: &str, sreg: u32, timeout: std::time::Duration) -> Expr {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        // SET_NAME, OP update, SREG_KEY, TIMEOUT (ms).
        make("dynset", Attrs::default().str(1, set).u32(3, 1).u32(4, sreg).u64(6, ms))
    }
    /// A random number in `0..modulus` into `dreg` (host-endian).
    pub fn numgen_random(dreg: u32, modulus: u32) -> Expr {
        make("numgen", Attrs::default().u32(1, dreg).u32(2, modulus).u32(3, 1).u32(4, 0))
    }
    pub fn verdict(v: &Verdict) -> Expr {
        make("immediate", Attrs::default().u32(1, REG_VERDICT).nest(2, v.attrs()))
    }
    pub fn immediate(dreg: u32, data: &[u8]) -> Expr {
        make("immediate", Attrs::default().u32(1, dreg).nest(2, value(data)))
    }
    /// `dnat to ip:port` (`[ip6]:port`) from the address in `REG_1` and the port in `REG_2`.
    pub fn dnat(ip: IpAddr, port: u16) -> Vec<Expr> {
        let family = u32::from(Family::of(ip).nfproto());
        vec![
            immediate(REG_1, &octets(ip)),
            immediate(REG_2, &port.to_be_bytes()),
            // TYPE dnat, FAMILY, REG_ADDR_MIN, REG_PROTO_MIN, FLAGS proto-specified.
            make("nat", Attrs::default().u32(1, 1).u32(2, family).u32(3, REG_1).u32(5, REG_2).u32(7, 2)),
        ]
    }
    /// `masquerade`, with `fully-random` ports.
    pub fn masquerade(fully_random: bool) -> Expr {
        let mut a = Attrs::default();
        if fully_random {
            a = a.u32(1, 0x10);
        }
        make("masq", a)
    }
    /// `reject` with an ICMP (ICMPv6) port unreachable.
    pub fn reject(family: Family) -> Expr {
        let code = match family {
            Family::V4 => 3,
            Family::V6 => 4,
        };
        make("reject", Attrs::default().u32(1, 0).raw(2, &[code]))
    }
    /// `reject with tcp reset`: a TCP client is refused at once (an ICMP error for a local
    /// client's first SYN is lost, and it is refused only at the retransmission, 1 s later).
    pub fn reject_tcp_reset() -> Expr {
        make("reject", Attrs::default().u32(1, 1))
    }
}

/// A base chain's place in the packet path.
#[derive(Debug, Clone, Copy)]
pub struct Hook {
    pub hook: u32,
    pub priority: i32,
    /// "nat" or "filter".
    pub kind: &'static str,
}

/// One nftables transaction on one table.
pub struct Batch {
    family: Family,
    table: String,
    messages: Vec<(u16, u16, Attrs)>,
    next_set_id: u32,
}

impl Batch {
    /// A transaction on the `ip` (V4) or `ip6` (V6) table `table`.
    pub fn new(family: Family, table: &str) -> Batch {
        Batch { family, table: table.to_string(), messages: Vec::new(), next_set_id: 1 }
    }

    pub fn family(&self) -> Family {
        self.family
    }

    fn push(&mut self, kind: u16, flags: u16, attrs: Attrs) {
        self.messages.push((kind, flags, attrs));
    }

    /// The table, made anew: created if missing, then deleted with whatever it held, then
    /// created empty (all in this transaction, so nothing is ever half there).
    pub fn replace_table(&mut self) {
        let t = || Attrs::default().str(NFTA_TABLE_NAME, &self.table);
        let (a, b, c) = (t(), t(), t());
        self.push(NFT_MSG_NEWTABLE, NLM_F_CREATE, a);
        self.push(NFT_MSG_DELTABLE, 0, b);
        self.push(NFT_MSG_NEWTABLE, NLM_F_CREATE, c);
    }

    /// Remove the table if it exists.
    pub fn delete_table(&mut self) {
        let t = || Attrs::default().str(NFTA_TABLE_NAME, &self.table);
        let (a, b) = (t(), t());
        self.push(NFT_MSG_NEWTABLE, NLM_F_CREATE, a);
        self.push(NFT_MSG_DELTABLE, 0, b);
    }

    pub fn add_chain(&mut self, name: &str, hook: Option<Hook>) {
        let mut a = Attrs::default().str(NFTA_CHAIN_TABLE, &self.table).str(NFTA_CHAIN_NAME, name);
        if let Some(h) = hook {
            let hk = Attrs::default().u32(NFTA_HOOK_HOOKNUM, h.hook).u32(NFTA_HOOK_PRIORITY, h.priority as u32);
            a = a.nest(NFTA_CHAIN_HOOK, hk).u32(NFTA_CHAIN_POLICY, NF_ACCEPT).str(NFTA_CHAIN_TYPE, h.kind);
        }
        self.push(NFT_MSG_NEWCHAIN, NLM_F_CREATE, a);
    }

    /// Remove every rule of `chain` (the chain stays).
    pub fn flush_chain(&mut self, chain: &str) {
        let a = Attrs::default().str(NFTA_RULE_TABLE, &self.table).str(NFTA_RULE_CHAIN, chain);
        self.push(NFT_MSG_DELRULE, 0, a);
    }

    /// Remove `chain`, which nothing may refer to any more.
    pub fn delete_chain(&mut self, chain: &str) {
        let a = Attrs::default().str(NFTA_CHAIN_TABLE, &self.table).str(NFTA_CHAIN_NAME, chain);
        self.push(NFT_MSG_DELCHAIN, 0, a);
    }

    /// Remove the named set (or map) `set`, which no rule may use any more.
    pub fn delete_set(&mut self, set: &str) {
        let a = Attrs::default().str(NFTA_SET_TABLE, &self.table).str(NFTA_SET_NAME, set);
        self.push(NFT_MSG_DELSET, 0, a);
    }

    /// Remove the elements of `set` with these keys.
    pub fn delete_elements(&mut self, set: &str, keys: &[Vec<u8>]) {
        let elements: Vec<Attrs> = keys
            .iter()
            .map(|k| Attrs::default().nest(NFTA_SET_ELEM_KEY, Attrs::default().raw(NFTA_DATA_VALUE, k)))
            .collect();
        let mut list = Attrs::default();
        let send = |b: &mut Batch, list: Attrs| {
            let a = Attrs::default()
                .str(NFTA_SET_ELEM_LIST_TABLE, &b.table)
                .str(NFTA_SET_ELEM_LIST_SET, set)
                .nest(NFTA_SET_ELEM_LIST_ELEMENTS, list);
            b.push(NFT_MSG_DELSETELEM, 0, a);
        };
        for elem in elements {
            if list.0.len() + elem.0.len() + 8 > MAX_ELEMENTS_BYTES {
                send(self, std::mem::take(&mut list));
            }
            list = list.nest(NFTA_LIST_ELEM, elem);
        }
        if !list.0.is_empty() {
            send(self, list);
        }
    }

    pub fn add_rule(&mut self, chain: &str, exprs: impl IntoIterator<Item = Expr>) {
        let list = exprs.into_iter().fold(Attrs::default(), |acc, e| acc.append(e.0));
        let a = Attrs::default()
            .str(NFTA_RULE_TABLE, &self.table)
            .str(NFTA_RULE_CHAIN, chain)
            .nest(NFTA_RULE_EXPRESSIONS, list);
        self.push(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, a);
    }

    /// A named verdict map whose keys are `key_len` bytes of the concatenated `key_type`.
    pub fn add_vmap(&mut self, name: &str, key_type: u32, key_len: u32) {
        let id = self.set_id();
        let a = Attrs::default()
            .str(NFTA_SET_TABLE, &self.table)
            .str(NFTA_SET_NAME, name)
            .u32(NFTA_SET_FLAGS, NFT_SET_MAP)
            .u32(NFTA_SET_KEY_TYPE, key_type)
            .u32(NFTA_SET_KEY_LEN, key_len)
            .u32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT)
            .u32(NFTA_SET_DATA_LEN, 0)
            .u32(NFTA_SET_ID, id);
        self.push(NFT_MSG_NEWSET, NLM_F_CREATE, a);
    }

    /// A set of addresses of the table's family that rules add to (`update`), each forgotten
    /// `timeout` after it was last added.
    pub fn add_address_timeout_set(&mut self, name: &str, timeout: std::time::Duration) {
        let id = self.set_id();
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let a = Attrs::default()
            .str(NFTA_SET_TABLE, &self.table)
            .str(NFTA_SET_NAME, name)
            .u32(NFTA_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL)
            .u32(NFTA_SET_KEY_TYPE, self.family.addr_type())
            .u32(NFTA_SET_KEY_LEN, self.family.addr_len() as u32)
            .u32(NFTA_SET_ID, id)
            .u64(NFTA_SET_TIMEOUT, ms);
        self.push(NFT_MSG_NEWSET, NLM_F_CREATE, a);
    }

    /// Elements of the map `set` (`set_id` for an anonymous one made in this batch), in as many
    /// messages as their size needs (an attribute holds at most 64 KiB).
    pub fn add_elements(&mut self, set: &str, set_id: Option<u32>, elements: &[(Vec<u8>, Verdict)]) {
        let encoded: Vec<Attrs> = elements
            .iter()
            .map(|(key, verdict)| {
                Attrs::default()
                    .nest(NFTA_SET_ELEM_KEY, Attrs::default().raw(NFTA_DATA_VALUE, key))
                    .nest(NFTA_SET_ELEM_DATA, verdict.attrs())
            })
            .collect();
        self.add_encoded_elements(set, set_id, encoded);
    }

    fn add_encoded_elements(&mut self, set: &str, set_id: Option<u32>, elements: Vec<Attrs>) {
        let mut list = Attrs::default();
        for elem in elements {
            if list.0.len() + elem.0.len() + 8 > MAX_ELEMENTS_BYTES {
                self.push_elements(set, set_id, std::mem::take(&mut list));
            }
            list = list.nest(NFTA_LIST_ELEM, elem);
        }
        if !list.0.is_empty() {
            self.push_elements(set, set_id, list);
        }
    }

    fn push_elements(&mut self, set: &str, set_id: Option<u32>, list: Attrs) {
        let mut a = Attrs::default().str(NFTA_SET_ELEM_LIST_TABLE, &self.table).str(NFTA_SET_ELEM_LIST_SET, set);
        if let Some(id) = set_id {
            a = a.u32(NFTA_SET_ELEM_LIST_SET_ID, id);
        }
        self.push(NFT_MSG_NEWSETELEM, NLM_F_CREATE, a.nest(NFTA_SET_ELEM_LIST_ELEMENTS, list));
    }

    /// An anonymous constant set of addresses (of the table's family) made here; the
    /// expression that matches `sreg` against it.
    pub fn address_set(&mut self, addresses: &[IpAddr], sreg: u32) -> Expr {
        let id = self.set_id();
        let a = Attrs::default()
            .str(NFTA_SET_TABLE, &self.table)
            .str(NFTA_SET_NAME, "__set%d")
            .u32(NFTA_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT)
            .u32(NFTA_SET_KEY_TYPE, self.family.addr_type())
            .u32(NFTA_SET_KEY_LEN, self.family.addr_len() as u32)
            .nest(NFTA_SET_DESC, Attrs::default().u32(NFTA_SET_DESC_SIZE, addresses.len() as u32))
            .u32(NFTA_SET_ID, id);
        self.push(NFT_MSG_NEWSET, NLM_F_CREATE, a);
        let elements = addresses
            .iter()
            .map(|ip| Attrs::default().nest(NFTA_SET_ELEM_KEY, Attrs::default().raw(NFTA_DATA_VALUE, &octets(*ip))))
            .collect();
        self.add_encoded_elements("__set%d", Some(id), elements);
        expr::make("lookup", Attrs::default().str(1, "__set%d").u32(2, sreg).u32(4, id))
    }

    /// `numgen random mod N vmap { 0 : v0, 1 : v1, ... }`: an anonymous map made here, and the
    /// two expressions of the rule that uses it.
    pub fn random_choice(&mut self, verdicts: &[Verdict]) -> Vec<Expr> {
        let id = self.set_id();
        let n = verdicts.len() as u32;
        let a = Attrs::default()
            .str(NFTA_SET_TABLE, &self.table)
            .str(NFTA_SET_NAME, "__map%d")
            .u32(NFTA_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP)
            .u32(NFTA_SET_KEY_TYPE, TYPE_INTEGER)
            .u32(NFTA_SET_KEY_LEN, 4)
            .u32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT)
            .u32(NFTA_SET_DATA_LEN, 0)
            .nest(NFTA_SET_DESC, Attrs::default().u32(NFTA_SET_DESC_SIZE, n))
            .u32(NFTA_SET_ID, id)
            .raw(NFTA_SET_USERDATA, &userdata_host_endian_keys());
        self.push(NFT_MSG_NEWSET, NLM_F_CREATE, a);
        // numgen writes a host-endian number: so are the keys.
        let elements: Vec<(Vec<u8>, Verdict)> =
            verdicts.iter().enumerate().map(|(i, v)| ((i as u32).to_ne_bytes().to_vec(), v.clone())).collect();
        self.add_elements("__map%d", Some(id), &elements);
        vec![expr::numgen_random(REG_1, n), expr::lookup_vmap("__map%d", Some(id), REG_1)]
    }

    fn set_id(&mut self) -> u32 {
        let id = self.next_set_id;
        self.next_set_id += 1;
        id
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The bytes to send (begin, the messages with sequence numbers from 1, end) and the
    /// sequence number of the last message, the one acknowledged.
    pub fn encode(&self) -> (Vec<u8>, u32) {
        let mut out =
            message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, &Attrs::default());
        // Only the last message asks for an acknowledgement: failures are answered anyway,
        // and thousands of acknowledgements would overflow the socket's receive buffer.
        let mut seq = 0;
        let last = self.messages.len() as u32;
        for (kind, flags, attrs) in &self.messages {
            seq += 1;
            let ack = if seq == last { NLM_F_ACK } else { 0 };
            out.extend(message(nft(*kind), NLM_F_REQUEST | ack | flags, seq, self.family.nfproto(), 0, attrs));
        }
        out.extend(message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq + 1,
            AF_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            &Attrs::default(),
        ));
        (out, seq)
    }
}

/// One nfnetlink message: header, `nfgenmsg`, attributes.
fn message(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &Attrs) -> Vec<u8> {
    let len = 16 + 4 + attrs.0.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, 0]);
    m.extend_from_slice(&res_id.to_be_bytes());
    m.extend_from_slice(&attrs.0);
    m
}

fn nft(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nftables over netlink: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel refused message `seq` of the batch (so none of it was committed).
    #[error("nftables refused message {seq} of the batch: {error}")]
    Refused { seq: u32, error: std::io::Error },
}

/// The error codes in a buffer of netlink replies: `(sequence, errno)`, 0 for an acknowledgement.
fn acks(buf: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 16 <= buf.len() {
        let word = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default());
        let len = word(pos) as usize;
        let kind = u16::from_ne_bytes([buf[pos + 4], buf[pos + 5]]);
        if len < 16 || pos + len > buf.len() {
            break;
        }
        if kind == NLMSG_ERROR && len >= 20 {
            out.push((word(pos + 8), word(pos + 16) as i32));
        }
        pos += len.next_multiple_of(4);
    }
    out
}

/// Remove `table` of `family` if it exists (what a component that is switched off leaves
/// behind).
pub fn remove_table(family: Family, table: &str) -> Result<(), NftError> {
    let mut b = Batch::new(family, table);
    b.delete_table();
    apply(&b)
}

/// How long the kernel may take to answer a batch.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Send `batch` as one transaction and wait until the kernel has committed it (the last
/// message acknowledged) or refused it (the first error).
pub fn apply(batch: &Batch) -> Result<(), NftError> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
    use nix::sys::socket::{setsockopt, sockopt};
    let (bytes, last) = batch.encode();
    if last == 0 {
        return Ok(());
    }
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    // A batch is one datagram: the send buffer must hold all of it (past the default limit,
    // which root may exceed, as nft does).
    setsockopt(&socket, sockopt::SndBufForce, &(bytes.len() * 2).max(1 << 20)).map_err(std::io::Error::from)?;
    setsockopt(&socket, sockopt::RcvBufForce, &(1 << 20)).map_err(std::io::Error::from)?;
    let timeout = nix::sys::time::TimeVal::new(ANSWER_TIMEOUT.as_secs() as nix::sys::time::time_t, 0);
    setsockopt(&socket, sockopt::ReceiveTimeout, &timeout).map_err(std::io::Error::from)?;
    socket.send_to(&bytes, &SocketAddr::new(0, 0), 0)?;
    loop {
        let (buf, _) = socket.recv_from_full()?;
        for (seq, errno) in acks(&buf) {
            if errno != 0 {
                return Err(NftError::Refused { seq, error: std::io::Error::from_raw_os_error(-errno) });
            }
            if seq == last {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_numbers_big_endian() {
        let a = Attrs::default().str(1, "ab").u32(2, 0x0102_0304);
        // len 7 ("ab\0" + 4), padded to 8; then len 8 with the value in network order.
        assert_eq!(a.0, [7, 0, 1, 0, b'a', b'b', 0, 0, 8, 0, 2, 0, 1, 2, 3, 4]);
    }

    fn kinds(buf: &[u8]) -> Vec<u16> {
        let mut pos = 0;
        let mut kinds = Vec::new();
        while pos < buf.len() {
            let len = u32::from_ne_bytes(buf[pos..pos + 4].try_into().expect("len")) as usize;
            kinds.push(u16::from_ne_bytes([buf[pos + 4], buf[pos + 5]]));
            pos += len;
        }
        assert_eq!(pos, buf.len(), "messages tile the batch");
        kinds
    }

    #[test]
    fn a_random_choice_is_an_anonymous_map_its_elements_and_a_lookup() {
        let mut b = Batch::new(Family::V4, "t");
        let exprs = b.random_choice(&[Verdict::Goto("a".into()), Verdict::Goto("b".into())]);
        b.add_rule("svc", exprs);
        let (buf, last) = b.encode();
        assert_eq!(last, 3);
        assert_eq!(kinds(&buf), [0x10, 0xa09, 0xa0c, 0xa06, 0x11]);
        let find = |needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
        assert!(find(b"__map%d\0") && find(b"numgen\0") && find(b"lookup\0"));
        // Keys 0 and 1 in host order, as numgen writes them.
        assert!(find(&1u32.to_ne_bytes()));
    }

    #[test]
    fn reads_acknowledgements_and_errors() {
        let reply = |seq: u32, errno: i32| {
            let mut m = 36u32.to_ne_bytes().to_vec();
            m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&seq.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(&errno.to_ne_bytes());
            m.extend_from_slice(&[0; 16]);
            m
        };
        let buf = [reply(1, 0), reply(2, -1)].concat();
        assert_eq!(acks(&buf), vec![(1, 0), (2, -1)]);
        assert!(acks(&buf[..10]).is_empty(), "a truncated buffer yields nothing");
    }
}
