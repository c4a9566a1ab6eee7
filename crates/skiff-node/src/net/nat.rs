//! Outbound NAT for pods: an nftables table of our own (`ip skiff-<bridge>`) whose postrouting nat
//! chain masquerades what the node's pods send outside their subnet, as
//! `ip saddr SUBNET ip daddr != SUBNET masquerade` — plus IPv4 forwarding on.
//!
//! Spoken to the kernel over nfnetlink directly: no `nft` binary, no libnftnl (the Rust nftables
//! crates either shell out, bind the C library, lack NAT, or are GPL). The encoding is pure and
//! tested byte by byte; [`apply`] only sends a batch and reads the acknowledgements.

use super::ipam::Subnet;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 0x2;

const AF_UNSPEC: u8 = 0;
const NFPROTO_IPV4: u8 = 2;
const NF_INET_POST_ROUTING: u32 = 4;
/// `srcnat` priority.
const PRIORITY_SRCNAT: i32 = 100;
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
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_REG_1: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
/// Offsets of the source and destination addresses in the IPv4 header.
const IPV4_SADDR: u32 = 12;
const IPV4_DADDR: u32 = 16;

const CHAIN: &str = "postrouting";

#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("nftables over netlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("nftables refused the NAT rules: {0}")]
    Refused(std::io::Error),
    #[error("switching on IPv4 forwarding: {0}")]
    Forwarding(std::io::Error),
}

/// The table that holds the NAT rules for the pods on `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("skiff-{bridge}")
}

/// Netlink attributes, appended to a buffer (4-byte aligned, lengths in host order).
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn raw(mut self, kind: u16, payload: &[u8]) -> Self {
        let len = 4 + payload.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }
    fn str(self, kind: u16, s: &str) -> Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.raw(kind, &b)
    }
    /// nftables numbers travel in network byte order.
    fn u32(self, kind: u16, v: u32) -> Self {
        self.raw(kind, &v.to_be_bytes())
    }
    fn nest(self, kind: u16, inner: Attrs) -> Self {
        self.raw(kind, &inner.0)
    }
}

/// One nfnetlink message: header, `nfgenmsg`, attributes.
fn message(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: Attrs) -> Vec<u8> {
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

fn expr(name: &str, data: Attrs) -> Attrs {
    Attrs::default().nest(NFTA_LIST_ELEM, Attrs::default().str(NFTA_EXPR_NAME, name).nest(NFTA_EXPR_DATA, data))
}

/// `ip saddr|daddr & mask ==|!= network`.
fn match_prefix(offset: u32, subnet: Subnet, op: u32) -> Vec<Attrs> {
    let mask = u32::MAX.checked_shl(32 - u32::from(subnet.prefix)).unwrap_or(0).to_be_bytes();
    let data = |bytes: &[u8]| Attrs::default().raw(NFTA_DATA_VALUE, bytes);
    vec![
        expr(
            "payload",
            Attrs::default()
                .u32(NFTA_PAYLOAD_DREG, NFT_REG_1)
                .u32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER)
                .u32(NFTA_PAYLOAD_OFFSET, offset)
                .u32(NFTA_PAYLOAD_LEN, 4),
        ),
        expr(
            "bitwise",
            Attrs::default()
                .u32(NFTA_BITWISE_SREG, NFT_REG_1)
                .u32(NFTA_BITWISE_DREG, NFT_REG_1)
                .u32(NFTA_BITWISE_LEN, 4)
                .nest(NFTA_BITWISE_MASK, data(&mask))
                .nest(NFTA_BITWISE_XOR, data(&[0; 4])),
        ),
        expr(
            "cmp",
            Attrs::default()
                .u32(NFTA_CMP_SREG, NFT_REG_1)
                .u32(NFTA_CMP_OP, op)
                .nest(NFTA_CMP_DATA, data(&subnet.network.octets())),
        ),
    ]
}

/// A batch: begin, `messages` (sequence numbers from 1), end.
fn batch(messages: impl IntoIterator<Item = (u16, u16, Attrs)>) -> (Vec<u8>, u32) {
    let mut out = message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, Attrs::default());
    let mut seq = 0;
    for (kind, flags, attrs) in messages {
        seq += 1;
        out.extend(message(nft(kind), NLM_F_REQUEST | NLM_F_ACK | flags, seq, NFPROTO_IPV4, 0, attrs));
    }
    out.extend(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, Attrs::default()));
    (out, seq)
}

/// Replace the table with one that masquerades `subnet`'s outbound traffic (atomically: the
/// table is created if missing, deleted with whatever it held, and made anew in one batch).
pub fn enable_batch(table: &str, subnet: Subnet) -> (Vec<u8>, u32) {
    let table_attrs = || Attrs::default().str(NFTA_TABLE_NAME, table);
    let hook =
        Attrs::default().u32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING).u32(NFTA_HOOK_PRIORITY, PRIORITY_SRCNAT as u32);
    let chain = Attrs::default()
        .str(NFTA_CHAIN_TABLE, table)
        .str(NFTA_CHAIN_NAME, CHAIN)
        .nest(NFTA_CHAIN_HOOK, hook)
        .u32(NFTA_CHAIN_POLICY, NF_ACCEPT)
        .str(NFTA_CHAIN_TYPE, "nat");
    let mut exprs = match_prefix(IPV4_SADDR, subnet, NFT_CMP_EQ);
    exprs.extend(match_prefix(IPV4_DADDR, subnet, NFT_CMP_NEQ));
    exprs.push(expr("masq", Attrs::default()));
    let list = exprs.into_iter().fold(Attrs::default(), |mut acc, e| {
        acc.0.extend(e.0);
        acc
    });
    let rule =
        Attrs::default().str(NFTA_RULE_TABLE, table).str(NFTA_RULE_CHAIN, CHAIN).nest(NFTA_RULE_EXPRESSIONS, list);
    batch([
        (NFT_MSG_NEWTABLE, NLM_F_CREATE, table_attrs()),
        (NFT_MSG_DELTABLE, 0, table_attrs()),
        (NFT_MSG_NEWTABLE, NLM_F_CREATE, table_attrs()),
        (NFT_MSG_NEWCHAIN, NLM_F_CREATE, chain),
        (NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, rule),
    ])
}

/// Remove the table if it exists (created first so that deleting never fails).
pub fn disable_batch(table: &str) -> (Vec<u8>, u32) {
    let table_attrs = || Attrs::default().str(NFTA_TABLE_NAME, table);
    batch([(NFT_MSG_NEWTABLE, NLM_F_CREATE, table_attrs()), (NFT_MSG_DELTABLE, 0, table_attrs())])
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

/// Send a batch and wait for every message's acknowledgement.
pub fn apply((batch, messages): (Vec<u8>, u32)) -> Result<(), NatError> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.send_to(&batch, &SocketAddr::new(0, 0), 0)?;
    let mut acked = 0;
    while acked < messages {
        let (buf, _) = socket.recv_from_full()?;
        for (_, errno) in acks(&buf) {
            if errno != 0 {
                return Err(NatError::Refused(std::io::Error::from_raw_os_error(-errno)));
            }
            acked += 1;
        }
    }
    Ok(())
}

/// Masquerade the pods' outbound traffic and let the kernel forward it.
pub fn enable(bridge: &str, subnet: Subnet) -> Result<(), NatError> {
    apply(enable_batch(&table_name(bridge), subnet))?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(NatError::Forwarding)
}

/// No NAT for this bridge's pods (whatever an earlier run set up is removed).
pub fn disable(bridge: &str) -> Result<(), NatError> {
    apply(disable_batch(&table_name(bridge)))
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

    #[test]
    fn enable_batch_has_begin_five_messages_and_end() {
        let subnet = Subnet::parse("10.42.0.0/24").expect("subnet");
        let (buf, messages) = enable_batch("skiff-skiff0", subnet);
        assert_eq!(messages, 5);
        let mut pos = 0;
        let mut kinds = Vec::new();
        while pos < buf.len() {
            let len = u32::from_ne_bytes(buf[pos..pos + 4].try_into().expect("len")) as usize;
            kinds.push(u16::from_ne_bytes([buf[pos + 4], buf[pos + 5]]));
            pos += len;
        }
        assert_eq!(pos, buf.len(), "messages tile the batch");
        assert_eq!(kinds, [0x10, 0xa00, 0xa02, 0xa00, 0xa03, 0xa06, 0x11]);
        // The subnet's mask and network are in the rule, in network order.
        let find = |needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
        assert!(find(&[255, 255, 255, 0]) && find(&[10, 42, 0, 0]));
        assert!(find(b"masq\0") && find(b"nat\0") && find(b"postrouting\0"));
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
