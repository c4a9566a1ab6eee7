//! An IPv4 network (`10.0.0.0/8`) as NetworkPolicy blocks, load-balancer source ranges and the
//! nftables matches on them use it (any prefix, unlike a node's pod subnet).

use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// `ADDRESS/PREFIX`, the host bits cleared; None for anything else (IPv6 included).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = s.split_once('/')?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        Some(Cidr { network: Ipv4Addr::from(u32::from(ip) & mask(prefix)), prefix })
    }

    /// The netmask, as a number.
    pub fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_contains() {
        let c = Cidr::parse("192.0.2.77/24").expect("cidr");
        assert_eq!((c.network, c.prefix), (Ipv4Addr::new(192, 0, 2, 0), 24));
        assert!(c.contains(Ipv4Addr::new(192, 0, 2, 200)) && !c.contains(Ipv4Addr::new(192, 0, 3, 1)));
        assert_eq!(Cidr::parse("0.0.0.0/0").map(|c| c.mask()), Some(0));
        assert!(Cidr::parse("2001:db8::/32").is_none() && Cidr::parse("10.0.0.0/33").is_none());
    }
}
