//! An IP network (`10.0.0.0/8`, `2001:db8::/32`) as NetworkPolicy blocks, load-balancer source
//! ranges and the nftables matches on them use it (any prefix, unlike a node's pod subnet), and
//! the address family each belongs to.

use std::net::IpAddr;

/// IPv4 or IPv6: which nftables table (`ip` or `ip6`) a rule on an address belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    /// Bytes in an address.
    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// Kubernetes' name (`ipFamilies`, an EndpointSlice's `addressType`).
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// An address's bytes in network order (4 or 16).
pub fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// `ADDRESS/PREFIX`, the host bits cleared; None for anything else.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = s.split_once('/')?;
        let ip: IpAddr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok().filter(|p| usize::from(*p) <= Family::of(ip).addr_len() * 8)?;
        let bits = match ip {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & (mask(prefix) >> 96) as u32).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask(prefix)).into()),
        };
        Some(Cidr { network: bits, prefix })
    }

    pub fn family(&self) -> Family {
        Family::of(self.network)
    }

    /// The netmask's bytes in network order (as long as an address of the family).
    pub fn mask(&self) -> Vec<u8> {
        let bytes = mask(self.prefix).to_be_bytes();
        bytes[..self.family().addr_len()].to_vec()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let masked = octets(ip).iter().zip(self.mask()).map(|(a, m)| a & m).collect::<Vec<u8>>();
        Family::of(ip) == self.family() && masked == octets(self.network)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `prefix` leading one bits of 128 (an IPv4 mask is the top 32 of them).
fn mask(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn parses_and_contains() {
        let c = Cidr::parse("192.0.2.77/24").expect("cidr");
        assert_eq!((c.network, c.prefix), (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)), 24));
        assert_eq!(c.mask(), [255, 255, 255, 0]);
        assert!(c.contains(Ipv4Addr::new(192, 0, 2, 200).into()) && !c.contains(Ipv4Addr::new(192, 0, 3, 1).into()));
        assert_eq!(Cidr::parse("0.0.0.0/0").map(|c| c.mask()), Some(vec![0; 4]));
        assert!(Cidr::parse("10.0.0.0/33").is_none() && Cidr::parse("10.0.0.0").is_none());
        let v6 = Cidr::parse("2001:db8::77/32").expect("v6");
        assert_eq!(v6.to_string(), "2001:db8::/32");
        assert_eq!(v6.family(), Family::V6);
        assert_eq!(v6.mask()[..5], [255, 255, 255, 255, 0]);
        assert!(v6.contains("2001:db8:1::5".parse::<Ipv6Addr>().expect("ip").into()));
        assert!(!v6.contains("2001:db9::5".parse::<Ipv6Addr>().expect("ip").into()));
        assert!(!v6.contains(Ipv4Addr::new(32, 1, 13, 184).into()), "another family");
        assert!(Cidr::parse("::/129").is_none() && Cidr::parse("::/0").is_some());
    }
}
