//! What a Service is given on create: a cluster IP from the service range and node ports from
//! the node-port range, durable in the store and never handed out twice, even by several API
//! servers sharing one store. Each address or port in use is a key of its own
//! (`/registry/skiff/serviceips/10.43.0.15`, `/registry/skiff/nodeports/30080`) naming the
//! Service that holds it, created before the Service (a create fails if the key exists). A
//! claim whose Service is gone, or no longer uses it, is free again once it is older than
//! [`CLAIM_GRACE`] (a crash between the two writes leaves nothing taken for good); deletes
//! release their claims at once.

use ipnet::Ipv4Net;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_core::field::{BadValue, FieldError, Path};
use skiff_core::kinds::{self, SERVICES};
use skiff_core::{ApiError, meta};
use skiff_store::{Store, StoreError};
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

const IP_PREFIX: &str = "/registry/skiff/serviceips/";
const PORT_PREFIX: &str = "/registry/skiff/nodeports/";
/// How long a claim may wait for its Service to be stored before another may take it.
const CLAIM_GRACE: Duration = Duration::from_secs(60);
pub const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";
pub const DEFAULT_NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

/// Who holds an address or a port.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    namespace: String,
    name: String,
    uid: String,
    at: Timestamp,
}

/// The ranges services are given addresses and ports from.
#[derive(Debug, Clone)]
pub struct ServiceRanges {
    pub cidr: Ipv4Net,
    pub node_ports: RangeInclusive<u16>,
}

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges {
            cidr: DEFAULT_SERVICE_CIDR.parse().unwrap_or_else(|_| Ipv4Net::default()),
            node_ports: DEFAULT_NODE_PORTS,
        }
    }
}

/// A range flag that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("{0:?} is not an IPv4 CIDR such as 10.43.0.0/16")]
    Cidr(String),
    #[error("{0:?} is not a port range such as 30000-32767")]
    Ports(String),
}

/// `--service-cidr`: an IPv4 network of at least 8 addresses.
pub fn parse_cidr(s: &str) -> Result<Ipv4Net, RangeError> {
    s.parse::<Ipv4Net>()
        .ok()
        .filter(|n| n.prefix_len() <= 29)
        .map(|n| n.trunc())
        .ok_or_else(|| RangeError::Cidr(s.into()))
}

/// `--service-node-port-range`: `FIRST-LAST`.
pub fn parse_node_ports(s: &str) -> Result<RangeInclusive<u16>, RangeError> {
    let bad = || RangeError::Ports(s.into());
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

impl ServiceRanges {
    /// The `kubernetes` Service's address: the range's first.
    pub fn first(&self) -> Ipv4Addr {
        self.cidr.hosts().next().unwrap_or(self.cidr.network())
    }
}

/// What a write claimed: released again if the write fails.
#[derive(Debug, Default)]
pub struct Claims(Vec<String>);

pub struct Allocator {
    store: Arc<dyn Store>,
    ranges: ServiceRanges,
}

/// A value of the allocator's own kind of error: upstream's 422s and the full range's 500.
fn invalid(svc: &Value, errors: Vec<FieldError>) -> ApiError {
    SERVICES.info().invalid(meta::name(svc), errors)
}

impl Allocator {
    pub fn new(store: Arc<dyn Store>, ranges: ServiceRanges) -> Allocator {
        Allocator { store, ranges }
    }

    pub fn ranges(&self) -> &ServiceRanges {
        &self.ranges
    }

    /// Give a new Service (already defaulted and valid) what it needs: its cluster IP (the
    /// requested one, or a free one), IP family fields, node ports.
    pub async fn on_create(&self, svc: &mut Value) -> Result<Claims, ApiError> {
        self.claim_for(svc, None).await
    }

    /// An update of `old` to `new` (after `prepare_update` carried what `old` held): claim what
    /// is new (a node port added, a type that now needs an address); the claims `old` no longer
    /// needs are released by [`Allocator::after_update`].
    pub async fn on_update(&self, old: &Value, new: &mut Value) -> Result<Claims, ApiError> {
        self.claim_for(new, Some(old)).await
    }

    /// [`Allocator::fill`], giving back what it claimed if it fails part way.
    async fn claim_for(&self, svc: &mut Value, old: Option<&Value>) -> Result<Claims, ApiError> {
        let mut claims = Claims::default();
        match self.fill(svc, old, &mut claims).await {
            Ok(()) => Ok(claims),
            Err(e) => {
                self.release(claims).await;
                Err(e)
            }
        }
    }

    /// After an update was stored: release what `old` held and `new` does not.
    pub async fn after_update(&self, old: &Value, new: &Value) {
        let keep = held_keys(new);
        let dropped: Vec<String> = held_keys(old).into_iter().filter(|k| !keep.contains(k)).collect();
        self.release(Claims(dropped)).await;
    }

    /// After a Service was deleted: its claims are free.
    pub async fn after_delete(&self, svc: &Value) {
        self.release(Claims(held_keys(svc))).await;
    }

    /// Give back claims (a failed write's): best effort, a claim left behind expires.
    pub async fn release(&self, claims: Claims) {
        for key in claims.0 {
            if let Err(e) = self.store.delete(&key, None).await
                && !matches!(e, StoreError::NotFound(_))
            {
                tracing::debug!(error = %e, key, "releasing a service claim");
            }
        }
    }

    async fn fill(&self, svc: &mut Value, old: Option<&Value>, claims: &mut Claims) -> Result<(), ApiError> {
        let owner = Claim {
            namespace: meta::namespace(svc).into(),
            name: meta::name(svc).into(),
            uid: meta::uid(svc).into(),
            at: Timestamp::now(),
        };
        let mut typed: Service = serde_json::from_value(svc.clone()).map_err(|e| ApiError::Internal(e.to_string()))?;
        let old_spec = old.and_then(|o| serde_json::from_value::<Service>(o.clone()).ok()).and_then(|s| s.spec);
        let spec = typed.spec.get_or_insert_with(Default::default);
        if spec.type_.as_deref() != Some("ExternalName") {
            self.cluster_ip(svc, spec, old_spec.as_ref(), &owner, claims).await?;
            spec.ip_families.get_or_insert_with(|| vec!["IPv4".into()]);
            spec.ip_family_policy.get_or_insert_with(|| "SingleStack".into());
        }
        if kinds::wants_node_ports(spec) {
            self.node_ports(svc, spec, &owner, claims).await?;
        }
        *svc = serde_json::to_value(&typed).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(())
    }

    async fn cluster_ip(
        &self,
        svc: &Value,
        spec: &mut ServiceSpec,
        old: Option<&ServiceSpec>,
        owner: &Claim,
        claims: &mut Claims,
    ) -> Result<(), ApiError> {
        if kinds::is_headless(spec) {
            spec.cluster_ips = Some(vec!["None".into()]);
            return Ok(());
        }
        let held = old.and_then(|o| o.cluster_ip.clone()).filter(|ip| !ip.is_empty() && ip != "None");
        match spec.cluster_ip.clone().filter(|ip| !ip.is_empty()) {
            // Already this service's: nothing to claim.
            Some(ip) if held.as_deref() == Some(ip.as_str()) => return Ok(()),
            Some(requested) => {
                let bad = |why: String| {
                    let path = Path::new("spec").child("clusterIPs");
                    let value = BadValue::Go(format!("[]string{{{}}}", skiff_core::field::go_quote(&requested)));
                    invalid(
                        svc,
                        vec![FieldError::invalid_go(&path, value, format!("failed to allocate IP {requested}: {why}"))],
                    )
                };
                let ip: Ipv4Addr = requested.parse().map_err(|_| bad("not an IPv4 address".into()))?;
                if !self.ranges.cidr.contains(&ip)
                    || ip == self.ranges.cidr.network()
                    || ip == self.ranges.cidr.broadcast()
                {
                    return Err(bad(format!(
                        "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                        self.ranges.cidr
                    )));
                }
                if !self.claim(&ip_key(ip), owner, |s| holds_ip(s, ip)).await? {
                    return Err(bad("provided IP is already allocated".into()));
                }
                claims.0.push(ip_key(ip));
            }
            None => {
                let ip = self.free_ip(owner).await?;
                claims.0.push(ip_key(ip));
                spec.cluster_ip = Some(ip.to_string());
            }
        }
        spec.cluster_ips = spec.cluster_ip.clone().map(|ip| vec![ip]);
        Ok(())
    }

    /// A free address, from a random place in the range's upper part (the lower part is left
    /// to addresses asked for by name, as upstream's allocator does), then anywhere.
    async fn free_ip(&self, owner: &Claim) -> Result<Ipv4Addr, ApiError> {
        let base = u32::from(self.ranges.cidr.network());
        let size = 1u64 << (32 - u32::from(self.ranges.cidr.prefix_len()));
        // Usable offsets: 1 ..= size - 2 (not the network or broadcast address).
        let usable = size.saturating_sub(2).max(1);
        let band = (size / 16).clamp(16, 256).min(usable / 2);
        let start = band + rand::random_range(0..usable.saturating_sub(band).max(1));
        for i in 0..usable {
            let offset = 1 + (start + i) % usable;
            let ip = Ipv4Addr::from(base.wrapping_add(offset as u32));
            if self.claim(&ip_key(ip), owner, |s| holds_ip(s, ip)).await? {
                return Ok(ip);
            }
        }
        Err(ApiError::Internal("failed to allocate a serviceIP: range is full".into()))
    }

    async fn node_ports(
        &self,
        svc: &Value,
        spec: &mut ServiceSpec,
        owner: &Claim,
        claims: &mut Claims,
    ) -> Result<(), ApiError> {
        let range = self.ranges.node_ports.clone();
        let mut errors = Vec::new();
        // Ports this service already has: a claim of its own is no free port for another of them.
        let mut used: std::collections::HashSet<u16> =
            spec.ports.iter().flatten().filter_map(|p| p.node_port.and_then(|n| u16::try_from(n).ok())).collect();
        for (i, p) in spec.ports.iter_mut().flatten().enumerate() {
            let path = Path::new("spec").child("ports").index(i).child("nodePort");
            match p.node_port.filter(|n| *n != 0) {
                Some(n) => {
                    let port = u16::try_from(n).ok().filter(|p| range.contains(p));
                    let Some(port) = port else {
                        let detail = format!(
                            "provided port is not in the valid range. The range of valid ports is {}-{}",
                            range.start(),
                            range.end()
                        );
                        errors.push(FieldError::invalid(&path, n, detail));
                        continue;
                    };
                    if self.claim(&port_key(port), owner, |s| holds_port(s, port)).await? {
                        claims.0.push(port_key(port));
                    } else {
                        errors.push(FieldError::invalid(&path, n, "provided port is already allocated"));
                    }
                }
                None => {
                    let port = self.free_port(owner, &used).await?;
                    used.insert(port);
                    claims.0.push(port_key(port));
                    p.node_port = Some(i32::from(port));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(invalid(svc, errors)) }
    }

    async fn free_port(&self, owner: &Claim, used: &std::collections::HashSet<u16>) -> Result<u16, ApiError> {
        let (first, count) = (*self.ranges.node_ports.start(), self.ranges.node_ports.len() as u32);
        let start = rand::random_range(0..count.max(1));
        for i in 0..count {
            let port = first + ((start + i) % count) as u16;
            if !used.contains(&port) && self.claim(&port_key(port), owner, |s| holds_port(s, port)).await? {
                return Ok(port);
            }
        }
        Err(ApiError::Internal("failed to allocate a nodePort: range is full".into()))
    }

    /// Take `key` for `owner`: free, already `owner`'s, or a stale claim (its Service gone or
    /// no longer `uses` it, and older than the grace).
    async fn claim(&self, key: &str, owner: &Claim, uses: impl Fn(&ServiceSpec) -> bool) -> Result<bool, ApiError> {
        let value = serde_json::to_vec(owner).map_err(|e| ApiError::Internal(e.to_string()))?;
        for _ in 0..3 {
            match self.store.create(key, value.clone()).await {
                Ok(_) => return Ok(true),
                Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(ApiError::Internal(e.to_string())),
            }
            let Some(kv) = self.store.get(key).await.map_err(|e| ApiError::Internal(e.to_string()))? else {
                continue;
            };
            let Ok(held) = serde_json::from_slice::<Claim>(&kv.value) else {
                tracing::warn!(key, "unreadable service claim: treating it as taken");
                return Ok(false);
            };
            if held.uid == owner.uid && held.namespace == owner.namespace && held.name == owner.name {
                return Ok(true);
            }
            let young = Timestamp::now().duration_since(held.at).unsigned_abs() < CLAIM_GRACE;
            if young || self.still_holds(&held, &uses).await? {
                return Ok(false);
            }
            match self.store.update(key, value.clone(), kv.mod_revision).await {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => continue,
                Err(e) => return Err(ApiError::Internal(e.to_string())),
            }
        }
        Ok(false)
    }

    /// Whether the Service a claim names still exists (the same one) and uses what it claims.
    async fn still_holds(&self, held: &Claim, uses: &impl Fn(&ServiceSpec) -> bool) -> Result<bool, ApiError> {
        let key = format!("/registry/services/{}/{}", held.namespace, held.name);
        let Some(kv) = self.store.get(&key).await.map_err(|e| ApiError::Internal(e.to_string()))? else {
            return Ok(false);
        };
        let Ok(svc) = serde_json::from_slice::<Service>(&kv.value) else { return Ok(true) };
        Ok(svc.metadata.uid.as_deref() == Some(held.uid.as_str()) && svc.spec.as_ref().is_some_and(uses))
    }
}

fn ip_key(ip: Ipv4Addr) -> String {
    format!("{IP_PREFIX}{ip}")
}

fn port_key(port: u16) -> String {
    format!("{PORT_PREFIX}{port}")
}

fn holds_ip(spec: &ServiceSpec, ip: Ipv4Addr) -> bool {
    spec.cluster_ips.iter().flatten().any(|c| c.parse::<Ipv4Addr>().ok() == Some(ip))
}

fn holds_port(spec: &ServiceSpec, port: u16) -> bool {
    spec.ports.iter().flatten().any(|p| p.node_port == Some(i32::from(port)))
}

/// The claim keys a stored Service holds.
fn held_keys(svc: &Value) -> Vec<String> {
    let Ok(svc) = serde_json::from_value::<Service>(svc.clone()) else { return Vec::new() };
    let spec = svc.spec.unwrap_or_default();
    let ips = spec.cluster_ips.iter().flatten().filter_map(|ip| ip.parse::<Ipv4Addr>().ok()).map(ip_key);
    let ports =
        (spec.ports.iter().flatten()).filter_map(|p| p.node_port.and_then(|n| u16::try_from(n).ok())).map(port_key);
    ips.chain(ports).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        assert_eq!(parse_cidr("10.43.0.0/16").expect("cidr").to_string(), "10.43.0.0/16");
        assert_eq!(parse_cidr("10.43.1.5/16").expect("truncated").to_string(), "10.43.0.0/16");
        assert!(parse_cidr("10.43.0.0/30").is_err());
        assert_eq!(parse_node_ports("30000-32767").expect("range"), 30000..=32767);
        assert!(parse_node_ports("32767-30000").is_err());
        assert_eq!(ServiceRanges::default().first().to_string(), "10.43.0.1");
    }
}
