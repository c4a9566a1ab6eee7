//! Pod IP allocation from the node's subnet, in the style of CNI's host-local plugin: one file per
//! leased address (`DIR/<ip>` holding the owner), created with O_EXCL, so an address is never
//! handed out twice, also across restarts and concurrent callers. On a dual-stack node a pod's
//! IPv6 address mirrors its IPv4 lease ([`Subnet6::mirror`]), so one lease names both.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR like 10.42.0.0/24")]
    Subnet(String),
    #[error("invalid subnet {0:?}: expected an IPv6 CIDR like fd00:42::/56")]
    Subnet6(String),
    #[error("no free addresses left in {0}")]
    Exhausted(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// An IPv4 subnet: network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Self, IpamError> {
        let bad = || IpamError::Subnet(s.into());
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet { network: Ipv4Addr::from(u32::from(ip) & mask), prefix })
    }

    /// The gateway (the node's bridge): the first address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Addresses pods may get: after the gateway, before the broadcast address.
    fn pod_range(&self) -> std::ops::RangeInclusive<u32> {
        let base = u32::from(self.network);
        let size = 1u32 << (32 - self.prefix);
        (base + 2)..=(base + size - 2)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.network)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A node's IPv6 pod subnet (dual stack): network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet6 {
    pub network: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    pub fn parse(s: &str) -> Result<Self, IpamError> {
        let bad = || IpamError::Subnet6(s.into());
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=120).contains(&prefix) {
            return Err(bad());
        }
        let mask = u128::MAX << (128 - u32::from(prefix));
        Ok(Subnet6 { network: Ipv6Addr::from(u128::from(ip) & mask), prefix })
    }

    /// The gateway (on the node's bridge): the first address, as in IPv4.
    pub fn gateway(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network) + 1)
    }

    /// Whether every address of `v4` has a mirror here.
    pub fn holds(&self, v4: &Subnet) -> bool {
        128 - u32::from(self.prefix) >= 32 - u32::from(v4.prefix)
    }

    /// The IPv6 address of the pod leased `ip` in `v4`: the same offset into this subnet.
    pub fn mirror(&self, v4: &Subnet, ip: Ipv4Addr) -> Ipv6Addr {
        let offset = u32::from(ip).wrapping_sub(u32::from(v4.network));
        Ipv6Addr::from(u128::from(self.network) + u128::from(offset))
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

pub struct Ipam {
    dir: PathBuf,
    subnet: Subnet,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IpamError + '_ {
    move |source| IpamError::Io { path: path.to_path_buf(), source }
}

impl Ipam {
    pub fn open(dir: &Path, subnet: Subnet) -> Result<Self, IpamError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        Ok(Ipam { dir: dir.to_path_buf(), subnet })
    }

    /// The address leased to `owner`, if any (so a restarted agent finds its pods' addresses).
    pub fn lookup(&self, owner: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))?.flatten() {
            if fs::read_to_string(entry.path()).is_ok_and(|o| o.trim() == owner) {
                return Ok(entry.file_name().to_str().and_then(|n| n.parse().ok()));
            }
        }
        Ok(None)
    }

    /// Lease an address to `owner` (the same one again if it already has one).
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        if let Some(ip) = self.lookup(owner)? {
            return Ok(ip);
        }
        for n in self.subnet.pod_range() {
            let ip = Ipv4Addr::from(n);
            let path = self.dir.join(ip.to_string());
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(owner.as_bytes()).and_then(|_| f.sync_all()).map_err(io_err(&path))?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Err(IpamError::Exhausted(self.subnet.to_string()))
    }

    /// Give back `owner`'s address; releasing twice is fine.
    pub fn release(&self, owner: &str) -> Result<(), IpamError> {
        if let Some(ip) = self.lookup(owner)? {
            let path = self.dir.join(ip.to_string());
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.42.0.7/24").expect("subnet");
        assert_eq!(s.to_string(), "10.42.0.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 42, 0, 1));
        assert!(s.contains(Ipv4Addr::new(10, 42, 0, 200)) && !s.contains(Ipv4Addr::new(10, 42, 1, 1)));
        assert!(Subnet::parse("10.42.0.0").is_err());
        assert!(Subnet::parse("10.42.0.0/31").is_err());
    }

    #[test]
    fn ipv6_addresses_mirror_the_ipv4_leases() {
        let v4 = Subnet::parse("10.42.0.0/24").expect("subnet");
        let v6 = Subnet6::parse("fd00:42::7/64").expect("subnet6");
        assert_eq!(v6.to_string(), "fd00:42::/64");
        assert_eq!(v6.gateway().to_string(), "fd00:42::1");
        assert_eq!(v6.mirror(&v4, v4.gateway()), v6.gateway(), "the gateways pair up");
        assert_eq!(v6.mirror(&v4, Ipv4Addr::new(10, 42, 0, 200)).to_string(), "fd00:42::c8");
        let small = Subnet6::parse("fd00::/120").expect("small");
        assert!(v6.holds(&v4) && small.holds(&v4));
        assert!(!small.holds(&Subnet::parse("10.42.0.0/22").expect("bigger")));
        assert!(Subnet6::parse("10.42.0.0/16").is_err() && Subnet6::parse("fd00::/121").is_err());
    }

    #[test]
    fn leases_are_unique_stable_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let subnet = Subnet::parse("10.42.0.0/29").expect("subnet"); // .2 to .6: five pods
        let ipam = Ipam::open(dir.path(), subnet).expect("open");
        let a = ipam.allocate("pod-a").expect("a");
        let b = ipam.allocate("pod-b").expect("b");
        assert_ne!(a, b);
        assert_eq!(a, Ipv4Addr::new(10, 42, 0, 2));
        assert_eq!(ipam.allocate("pod-a").expect("again"), a, "same owner, same address");
        let reopened = Ipam::open(dir.path(), subnet).expect("reopen");
        assert_eq!(reopened.lookup("pod-b").expect("lookup"), Some(b));
        for o in ["c", "d", "e"] {
            reopened.allocate(o).expect("fill");
        }
        assert!(matches!(reopened.allocate("f"), Err(IpamError::Exhausted(_))));
        reopened.release("pod-a").expect("release");
        reopened.release("pod-a").expect("release twice");
        assert_eq!(reopened.allocate("f").expect("reuse"), a);
    }

    #[test]
    fn concurrent_allocations_never_collide() {
        let dir = tempfile::tempdir().expect("tempdir");
        let subnet = Subnet::parse("10.42.0.0/24").expect("subnet");
        let path = dir.path().to_path_buf();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let ipam = Ipam::open(&path, subnet).expect("open");
                    (0..20).map(|i| ipam.allocate(&format!("t{t}-{i}")).expect("alloc")).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<Ipv4Addr> = handles.into_iter().flat_map(|h| h.join().expect("join")).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "no address handed out twice");
    }
}
