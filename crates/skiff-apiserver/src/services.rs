//! What a Service is given on create: its IP families, a cluster IP from the service range of
//! each (one or two: `--service-cidr` may name an IPv4 and an IPv6 network, KEP-563's dual
//! stack) and node ports from the node-port range, durable in the store and never handed out
//! twice, even by several API servers sharing one store. Each address or port in use is a key of
//! its own (`/registry/skiff/serviceips/10.43.0.15`, `/registry/skiff/serviceips/fd00:43::15`
//! in canonical text, `/registry/skiff/nodeports/30080`) naming the Service that holds it,
//! created before the Service (a create fails if the key exists). A claim whose Service is gone,
//! or no longer uses it, is free again once it is older than [`CLAIM_GRACE`] (a crash between
//! the two writes leaves nothing taken for good); deletes release their claims at once.
//!
//! The rules are upstream's service storage (`pkg/registry/core/service/storage/alloc.go`):
//! [`Allocator::init_ip_families`] is `initIPFamilyFields` (defaulting `ipFamilyPolicy` and
//! `ipFamilies` against the cluster's families, run before validation as upstream does), and
//! the claims follow `allocClusterIPs` and `updateClusterIPs` (all addresses on create, the
//! secondary on an upgrade to dual stack, released after a downgrade).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_core::field::{BadValue, FieldError, Path};
use skiff_core::kinds::{self, SERVICES};
use skiff_core::{ApiError, meta};
use skiff_store::{Store, StoreError};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const IP_PREFIX: &str = "/registry/skiff/serviceips/";
const PORT_PREFIX: &str = "/registry/skiff/nodeports/";
/// How long a claim may wait for its Service to be stored before another may take it.
const CLAIM_GRACE: Duration = Duration::from_secs(60);
/// At most this many addresses are tried for a free one: a range larger than that (a big IPv6
/// one) is sparse in practice, and an endless scan must not hold a request.
const MAX_PROBES: u128 = 1 << 20;
/// Upstream's `maxCIDRBits`: an IPv6 service range has at most 20 host bits (a /108).
const MAX_V6_HOST_BITS: u8 = 20;
/// The smallest range: 8 addresses (a /29 or a /125).
const MIN_HOST_BITS: u8 = 3;
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

/// An IP family, as a Service's `ipFamilies` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    /// `IPv4` or `IPv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }

    /// An address's family; an IPv4-mapped IPv6 address is IPv4, as upstream's `netutils` has it.
    pub fn of(ip: IpAddr) -> IpFamily {
        if ip.to_canonical().is_ipv4() { IpFamily::V4 } else { IpFamily::V6 }
    }

    pub fn of_net(net: &IpNet) -> IpFamily {
        match net {
            IpNet::V4(_) => IpFamily::V4,
            IpNet::V6(_) => IpFamily::V6,
        }
    }

    /// The family an `ipFamilies` entry names.
    pub fn parse(s: &str) -> Option<IpFamily> {
        match s {
            "IPv4" => Some(IpFamily::V4),
            "IPv6" => Some(IpFamily::V6),
            _ => None,
        }
    }

    pub fn other(self) -> IpFamily {
        match self {
            IpFamily::V4 => IpFamily::V6,
            IpFamily::V6 => IpFamily::V4,
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The networks Services' cluster IPs come from (`--service-cidr`): one, or two of different
/// families for a dual-stack cluster. The first is the primary: its family is a Service's
/// unless it asks for another, and the `kubernetes` Service's address is its first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCidr {
    primary: IpNet,
    secondary: Option<IpNet>,
}

impl ServiceCidr {
    /// One or two networks (truncated to their network address), checked as [`parse_cidr`] does.
    pub fn new(primary: IpNet, secondary: Option<IpNet>) -> Result<ServiceCidr, RangeError> {
        let primary = check_net(primary.trunc(), "--service-cidr")?;
        let secondary = secondary.map(|n| check_net(n.trunc(), "--service-cidr[1]")).transpose()?;
        if secondary.is_some_and(|s| IpFamily::of_net(&s) == IpFamily::of_net(&primary)) {
            return Err(RangeError::SameFamily);
        }
        Ok(ServiceCidr { primary, secondary })
    }

    pub fn primary(&self) -> IpNet {
        self.primary
    }

    pub fn secondary(&self) -> Option<IpNet> {
        self.secondary
    }

    /// The networks, primary first.
    pub fn nets(&self) -> impl Iterator<Item = IpNet> + '_ {
        std::iter::once(self.primary).chain(self.secondary)
    }

    /// The network of a family, if the cluster has one.
    pub fn get(&self, family: IpFamily) -> Option<IpNet> {
        self.nets().find(|n| IpFamily::of_net(n) == family)
    }

    pub fn v4(&self) -> Option<Ipv4Net> {
        self.nets().find_map(|n| match n {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        })
    }

    pub fn v6(&self) -> Option<Ipv6Net> {
        self.nets().find_map(|n| match n {
            IpNet::V6(n) => Some(n),
            IpNet::V4(_) => None,
        })
    }

    pub fn primary_family(&self) -> IpFamily {
        IpFamily::of_net(&self.primary)
    }

    pub fn is_dual_stack(&self) -> bool {
        self.secondary.is_some()
    }

    /// Whether an address is in the network of its family.
    pub fn contains<A: Copy + Into<IpAddr>>(&self, ip: &A) -> bool {
        let ip = (*ip).into().to_canonical();
        self.get(IpFamily::of(ip)).is_some_and(|n| n.contains(&ip))
    }
}

/// As the flag is written: `10.43.0.0/16` or `10.43.0.0/16,fd00:43::/112`.
impl fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.primary)?;
        if let Some(s) = self.secondary {
            write!(f, ",{s}")?;
        }
        Ok(())
    }
}

impl FromStr for ServiceCidr {
    type Err = RangeError;
    fn from_str(s: &str) -> Result<ServiceCidr, RangeError> {
        parse_cidr(s)
    }
}

/// The ranges services are given addresses and ports from.
#[derive(Debug, Clone)]
pub struct ServiceRanges {
    pub cidr: ServiceCidr,
    pub node_ports: RangeInclusive<u16>,
}

impl Default for ServiceRanges {
    fn default() -> Self {
        let cidr = ServiceCidr {
            primary: IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, 43, 0, 0), 16).unwrap_or_default()),
            secondary: None,
        };
        ServiceRanges { cidr, node_ports: DEFAULT_NODE_PORTS }
    }
}

/// A range flag that does not parse, in upstream's words where kube-apiserver has them.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("--service-cidr must contain at least one valid cidr")]
    Empty,
    #[error("--service-cidr must not contain more than two entries")]
    TooMany,
    #[error("--service-cidr[{index}] {value:?} is not a CIDR such as 10.43.0.0/16 or fd00:43::/112")]
    Cidr { index: usize, value: String },
    #[error("--service-cidr[0] and --service-cidr[1] must be of different IP family")]
    SameFamily,
    #[error("specified {flag} is too large; for {bits}-bit addresses, the mask must be >= {min}")]
    TooLarge { flag: &'static str, bits: u8, min: u8 },
    #[error("specified {flag} is too small; for {bits}-bit addresses, the mask must be <= {max} (8 addresses)")]
    TooSmall { flag: &'static str, bits: u8, max: u8 },
    #[error("{0:?} is not a port range such as 30000-32767")]
    Ports(String),
}

/// A range's size: at least 8 addresses; an IPv6 one at most upstream's 20 host bits (IPv4
/// ranges are not limited, as before dual stack).
fn check_net(net: IpNet, flag: &'static str) -> Result<IpNet, RangeError> {
    let bits = net.max_prefix_len();
    let host_bits = bits - net.prefix_len();
    if host_bits < MIN_HOST_BITS {
        return Err(RangeError::TooSmall { flag, bits, max: bits - MIN_HOST_BITS });
    }
    if matches!(net, IpNet::V6(_)) && host_bits > MAX_V6_HOST_BITS {
        return Err(RangeError::TooLarge { flag, bits, min: bits - MAX_V6_HOST_BITS });
    }
    Ok(net)
}

/// `--service-cidr`: one network, or two of different families separated by a comma (as
/// kube-apiserver's `--service-cluster-ip-range` and k3s's `--service-cidr`), primary first.
pub fn parse_cidr(s: &str) -> Result<ServiceCidr, RangeError> {
    let entries: Vec<&str> = s.split(',').map(str::trim).collect();
    if entries.len() > 2 {
        return Err(RangeError::TooMany);
    }
    if entries.iter().all(|e| e.is_empty()) {
        return Err(RangeError::Empty);
    }
    let mut nets = entries
        .iter()
        .enumerate()
        .map(|(index, e)| e.parse::<IpNet>().map_err(|_| RangeError::Cidr { index, value: (*e).to_string() }));
    let primary = nets.next().ok_or(RangeError::Empty)??;
    let secondary = nets.next().transpose()?;
    ServiceCidr::new(primary, secondary)
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
    /// The `kubernetes` Service's address: the primary range's first.
    pub fn first(&self) -> IpAddr {
        nth_address(self.cidr.primary, 1)
    }
}

/// The address `offset` past a network's own.
fn nth_address(net: IpNet, offset: u128) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let base = u128::from(u32::from(n.network()));
            IpAddr::V4(Ipv4Addr::from(u32::try_from(base.wrapping_add(offset)).unwrap_or(u32::MAX)))
        }
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()).wrapping_add(offset))),
    }
}

/// Addresses of a range a Service may have: not the network's own, nor IPv4's broadcast (as
/// upstream's allocator). Counted from offset 1.
fn usable(net: IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    let size = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
    let reserved = if matches!(net, IpNet::V4(_)) { 2 } else { 1 };
    size.saturating_sub(reserved).max(1)
}

/// Whether a Service may be given `ip` from `net`.
fn in_range(net: IpNet, ip: IpAddr) -> bool {
    let offset = match (net, ip) {
        (IpNet::V4(n), IpAddr::V4(a)) if n.contains(&a) => u128::from(u32::from(a) - u32::from(n.network())),
        (IpNet::V6(n), IpAddr::V6(a)) if n.contains(&a) => u128::from(a) - u128::from(n.network()),
        _ => return false,
    };
    (1..=usable(net)).contains(&offset)
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

fn internal(e: impl fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// A `[]string` as Go's `%#v` prints it (upstream reports `clusterIPs` so).
fn go_strings(v: &[String]) -> BadValue {
    let quoted: Vec<String> = v.iter().map(|s| skiff_core::field::go_quote(s)).collect();
    BadValue::Go(format!("[]string{{{}}}", quoted.join(", ")))
}

fn policy_path() -> Path {
    Path::new("spec").child("ipFamilyPolicy")
}

fn is_external_name(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() == Some("ExternalName")
}

/// `clusterIP: None`, the singular field upstream's family defaulting looks at.
fn headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ip.as_deref() == Some("None")
}

/// `clusterIPs` starting with `None`: nothing to allocate.
fn headless_ips(spec: &ServiceSpec) -> bool {
    spec.cluster_ips.as_ref().and_then(|ips| ips.first()).is_some_and(|ip| ip == "None")
}

fn selectorless(spec: &ServiceSpec) -> bool {
    spec.selector.as_ref().is_none_or(|s| s.is_empty())
}

fn families(spec: &ServiceSpec) -> Vec<IpFamily> {
    spec.ip_families.iter().flatten().filter_map(|f| IpFamily::parse(f)).collect()
}

fn set_families(spec: &mut ServiceSpec, families: &[IpFamily]) {
    spec.ip_families = Some(families.iter().map(|f| f.as_str().to_string()).collect());
}

/// Two lists alike, an absent one as good as an empty one (Go's nil and empty slices).
fn same(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

/// Fewer entries than before, when the update names any (upstream's `reducedClusterIPs`).
fn reduced(new: &Option<Vec<String>>, old: &Option<Vec<String>>) -> bool {
    let (new, old) = (new.as_deref().unwrap_or_default(), old.as_deref().unwrap_or_default());
    !new.is_empty() && new.len() < old.len()
}

/// Upstream's `isMatchingPreferDualStackClusterIPFields`: a PreferDualStack service whose
/// addresses and families the update leaves as they are is not upgraded or downgraded by a
/// change of the cluster's stacks.
fn unchanged_prefer_dual_stack(old: &ServiceSpec, new: &ServiceSpec) -> bool {
    let prefer = |s: &ServiceSpec| s.ip_family_policy.as_deref().is_none_or(|p| p == "PreferDualStack");
    new.ip_family_policy.is_some()
        && old.type_ == new.type_
        && matches!(new.type_.as_deref(), Some("ClusterIP" | "NodePort" | "LoadBalancer"))
        && prefer(new)
        && prefer(old)
        && same(&old.cluster_ips, &new.cluster_ips)
        && same(&old.ip_families, &new.ip_families)
}

/// The errors of `ValidateServiceClusterIPsRelatedFields` (skiff-core checks it as part of the
/// service's validation, so they are that validation's errors at the fields it covers).
fn cluster_ip_field_errors(svc: &Value) -> Vec<FieldError> {
    let related = |f: &str| {
        f == "spec.clusterIPs"
            || f.starts_with("spec.clusterIPs[")
            || f.starts_with("spec.ipFamilies[")
            || f == "spec.ipFamilyPolicy"
    };
    SERVICES.validate(svc).into_iter().filter(|e| related(e.field.as_str())).collect()
}

impl Allocator {
    pub fn new(store: Arc<dyn Store>, ranges: ServiceRanges) -> Allocator {
        Allocator { store, ranges }
    }

    pub fn ranges(&self) -> &ServiceRanges {
        &self.ranges
    }

    /// Upstream's `defaultOnReadService`: the family fields of a Service stored without them
    /// (by an older skiff), as upstream reads them, so an update compares like with like.
    fn default_on_read(&self, mut spec: ServiceSpec) -> ServiceSpec {
        if let Some(ip) = spec.cluster_ip.clone().filter(|ip| !ip.is_empty())
            && spec.cluster_ips.as_ref().is_none_or(Vec::is_empty)
        {
            spec.cluster_ips = Some(vec![ip]);
        }
        if is_external_name(&spec) || spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
            return spec;
        }
        let primary = self.ranges.cidr.primary_family();
        let (policy, fams) = if headless(&spec) && selectorless(&spec) {
            ("RequireDualStack", vec![primary, primary.other()])
        } else if headless(&spec) {
            ("SingleStack", vec![primary])
        } else {
            let fams: Vec<IpFamily> = (spec.cluster_ips.iter().flatten())
                .filter_map(|ip| ip.parse::<IpAddr>().ok())
                .map(IpFamily::of)
                .collect();
            (if fams.len() > 1 { "RequireDualStack" } else { "SingleStack" }, fams)
        };
        spec.ip_family_policy = Some(policy.into());
        set_families(&mut spec, &fams);
        spec
    }

    /// Upstream's `initIPFamilyFields`: default `ipFamilyPolicy` and `ipFamilies` by the
    /// cluster's families and what the Service asks for, and refuse families the cluster does
    /// not have. Pure, and run before validation, as upstream does (a dry run shows the result).
    /// `old` is the stored Service on an update.
    pub fn init_ip_families(&self, svc: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        let mut typed: Service = serde_json::from_value(svc.clone()).map_err(internal)?;
        let old = (old.map(|o| serde_json::from_value::<Service>(o.clone())).transpose().map_err(internal)?)
            .map(|o| self.default_on_read(o.spec.unwrap_or_default()));
        let spec = typed.spec.get_or_insert_with(Default::default);
        if is_external_name(spec) || old.as_ref().is_some_and(|o| unchanged_prefer_dual_stack(o, spec)) {
            return Ok(());
        }
        // No policy: an update keeps the stored one; a headless service without a selector
        // (its endpoints are anyone's) asks for both families; anything else gets one.
        if spec.ip_family_policy.is_none() {
            spec.ip_family_policy = match old.as_ref().and_then(|o| o.ip_family_policy.clone()) {
                Some(p) => Some(p),
                None if headless(spec) && selectorless(spec) => Some("RequireDualStack".into()),
                None => Some("SingleStack".into()),
            };
        }
        let with_policy = serde_json::to_value(&typed).map_err(internal)?;
        let errs = cluster_ip_field_errors(&with_policy);
        if !errs.is_empty() {
            return Err(invalid(svc, errs));
        }
        let spec = typed.spec.get_or_insert_with(Default::default);
        let single = spec.ip_family_policy.as_deref() == Some("SingleStack");
        let policy = Value::from(spec.ip_family_policy.clone());
        let mut errs = Vec::new();
        if let Some(old) = &old {
            if single {
                // SingleStack with the addresses and families as they were: a downgrade; the
                // primary stays (it may not change), the secondary is released after the write.
                if same(&old.cluster_ips, &spec.cluster_ips) {
                    spec.cluster_ips.iter_mut().for_each(|ips| ips.truncate(1));
                }
                if same(&old.ip_families, &spec.ip_families) {
                    spec.ip_families.iter_mut().for_each(|f| f.truncate(1));
                }
            } else {
                if reduced(&spec.cluster_ips, &old.cluster_ips) {
                    let detail = "must be 'SingleStack' to release the secondary cluster IP";
                    errs.push(FieldError::invalid(&policy_path(), policy.clone(), detail));
                }
                if reduced(&spec.ip_families, &old.ip_families) {
                    let detail = "must be 'SingleStack' to release the secondary IP family";
                    errs.push(FieldError::invalid(&policy_path(), policy.clone(), detail));
                }
            }
        }
        let ips = spec.cluster_ips.clone().unwrap_or_default();
        if single {
            if ips.len() == 2 {
                let detail = "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified";
                errs.push(FieldError::invalid(&policy_path(), policy.clone(), detail));
            }
            if spec.ip_families.as_ref().is_some_and(|f| f.len() == 2) {
                let detail = "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified";
                errs.push(FieldError::invalid(&policy_path(), policy.clone(), detail));
            }
        }
        // Families follow the addresses asked for, where the service names none for them.
        let mut fams = families(spec);
        for (i, ip) in ips.iter().enumerate() {
            let Ok(ip) = ip.parse::<IpAddr>() else { break }; // `None`
            let family = IpFamily::of(ip);
            if i < fams.len() {
                continue;
            }
            if self.ranges.cidr.get(family).is_some() {
                fams.push(family);
            } else {
                let path = Path::new("spec").child("clusterIPs").index(i);
                errs.push(FieldError::invalid_go(
                    &path,
                    go_strings(&ips),
                    format!("{family} is not configured on this cluster"),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(invalid(svc, errs));
        }
        let dual_cluster = self.ranges.cidr.is_dual_stack();
        let primary = self.ranges.cidr.primary_family();
        if headless(spec) && selectorless(spec) {
            // Its endpoints may be of any family: whatever it asks for goes, even on a
            // single-stack cluster, and it has both unless it is SingleStack.
            if fams.is_empty() {
                fams.push(primary);
            }
            if fams.len() < 2 && !single {
                fams.push(fams[0].other());
            }
            set_families(spec, &fams);
            *svc = serde_json::to_value(&typed).map_err(internal)?;
            return Ok(());
        }
        if spec.ip_family_policy.as_deref() == Some("RequireDualStack") && !dual_cluster {
            let detail = "this cluster is not configured for dual-stack services";
            errs.push(FieldError::invalid(&policy_path(), policy.clone(), detail));
        }
        for (i, f) in fams.iter().enumerate() {
            if self.ranges.cidr.get(*f).is_none() {
                let path = Path::new("spec").child("ipFamilies").index(i);
                errs.push(FieldError::invalid(&path, f.as_str(), "not configured on this cluster"));
            }
        }
        if !errs.is_empty() {
            return Err(invalid(svc, errs));
        }
        if fams.is_empty() {
            fams.push(primary);
        }
        if !single && fams.len() == 1 && dual_cluster {
            fams.push(fams[0].other());
        }
        set_families(spec, &fams);
        *svc = serde_json::to_value(&typed).map_err(internal)?;
        Ok(())
    }

    /// Give a new Service (already through [`Allocator::init_ip_families`] and valid) what it
    /// needs: its cluster IPs (the requested ones, or free ones) and node ports.
    pub async fn on_create(&self, svc: &mut Value) -> Result<Claims, ApiError> {
        self.claim_for(svc, None).await
    }

    /// An update of `old` to `new` (after `prepare_update` carried what `old` held and
    /// [`Allocator::init_ip_families`] ran): claim what is new (a node port added, a type that
    /// now needs addresses, the secondary address of an upgrade to dual stack); the claims `old`
    /// no longer needs are released by [`Allocator::after_update`].
    pub async fn on_update(&self, old: &Value, new: &mut Value) -> Result<Claims, ApiError> {
        self.claim_for(new, Some(old)).await
    }

    /// [`Allocator::fill`], then validation of what it filled in (upstream validates after it
    /// allocates), giving back what it claimed if either fails.
    async fn claim_for(&self, svc: &mut Value, old: Option<&Value>) -> Result<Claims, ApiError> {
        let mut claims = Claims::default();
        let filled = self.fill(svc, old, &mut claims).await.and_then(|()| {
            let errs = match old {
                Some(old) => SERVICES.validate_update(old, svc),
                None => SERVICES.validate(svc),
            };
            if errs.is_empty() { Ok(()) } else { Err(invalid(svc, errs)) }
        });
        match filled {
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
        let mut typed: Service = serde_json::from_value(svc.clone()).map_err(internal)?;
        let old_spec = (old.and_then(|o| serde_json::from_value::<Service>(o.clone()).ok()))
            .map(|s| self.default_on_read(s.spec.unwrap_or_default()));
        let spec = typed.spec.get_or_insert_with(Default::default);
        if !is_external_name(spec) {
            self.cluster_ips(svc, spec, old_spec.as_ref(), &owner, claims).await?;
        }
        if kinds::wants_node_ports(spec) {
            self.node_ports(svc, spec, &owner, claims).await?;
        }
        *svc = serde_json::to_value(&typed).map_err(internal)?;
        Ok(())
    }

    /// Upstream's `allocClusterIPs` (a new service, or one that was ExternalName: an address
    /// for each of its families) and `updateClusterIPs` (an upgrade to dual stack: the
    /// secondary's). A downgrade or a move to ExternalName releases after the write.
    async fn cluster_ips(
        &self,
        svc: &Value,
        spec: &mut ServiceSpec,
        old: Option<&ServiceSpec>,
        owner: &Claim,
        claims: &mut Claims,
    ) -> Result<(), ApiError> {
        if headless_ips(spec) {
            return Ok(());
        }
        let fams = families(spec);
        let wanted: Vec<usize> = match old {
            None => (0..fams.len()).collect(),
            Some(o) if is_external_name(o) => (0..fams.len()).collect(),
            Some(o) if headless_ips(o) => Vec::new(),
            Some(o) if families(o).len() == 1 && fams.len() == 2 => vec![1],
            Some(_) => Vec::new(),
        };
        if wanted.is_empty() {
            return Ok(());
        }
        if fams.is_empty() {
            return Err(ApiError::Internal("service IP families were not initialized".into()));
        }
        // An empty entry marks an address to allocate; errors report the list so, as upstream.
        let mut ips = spec.cluster_ips.clone().unwrap_or_default();
        ips.resize(ips.len().max(fams.len()), String::new());
        let reported = ips.clone();
        for i in wanted {
            let ip = self.allocate(svc, fams[i], &ips[i], &reported, owner, claims).await?;
            ips[i] = ip;
        }
        spec.cluster_ip = ips.first().cloned();
        spec.cluster_ips = Some(ips);
        Ok(())
    }

    /// One address of `family`: `requested` if free and in range, else (when empty) a free one.
    async fn allocate(
        &self,
        svc: &Value,
        family: IpFamily,
        requested: &str,
        reported: &[String],
        owner: &Claim,
        claims: &mut Claims,
    ) -> Result<String, ApiError> {
        let Some(net) = self.ranges.cidr.get(family) else {
            return Err(ApiError::Internal(format!("{family} is not configured on this cluster")));
        };
        if requested.is_empty() {
            let ip = self.free_ip(net, owner).await?;
            claims.0.push(ip_key(ip));
            return Ok(ip.to_string());
        }
        let bad = |why: String| {
            let path = Path::new("spec").child("clusterIPs");
            let detail = format!("failed to allocate IP {requested}: {why}");
            invalid(svc, vec![FieldError::invalid_go(&path, go_strings(reported), detail)])
        };
        let ip = requested
            .parse::<IpAddr>()
            .map(|ip| ip.to_canonical())
            .map_err(|_| ApiError::Internal(format!("failed to parse service IP {requested:?}")))?;
        if !in_range(net, ip) {
            return Err(bad(format!(
                "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {net}"
            )));
        }
        if !self.claim(&ip_key(ip), owner, |s| holds_ip(s, ip)).await? {
            return Err(bad("provided IP is already allocated".into()));
        }
        claims.0.push(ip_key(ip));
        Ok(requested.to_string())
    }

    /// A free address of `net`, from a random place in the range's upper part (the lower part
    /// is left to addresses asked for by name, as upstream's allocator does), then onwards.
    async fn free_ip(&self, net: IpNet, owner: &Claim) -> Result<IpAddr, ApiError> {
        let usable = usable(net);
        let size = usable.saturating_add(if matches!(net, IpNet::V4(_)) { 2 } else { 1 });
        let band = (size / 16).clamp(16, 256).min(usable / 2);
        let start = band + rand::random_range(0..usable.saturating_sub(band).max(1));
        for i in 0..usable.min(MAX_PROBES) {
            // (start + i) mod usable, without overflowing for the largest ranges.
            let at = if start >= usable - i { start - (usable - i) } else { start + i };
            let ip = nth_address(net, 1 + at);
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

/// An address's claim key, in its canonical text (one key per address, however it is written).
fn ip_key(ip: IpAddr) -> String {
    format!("{IP_PREFIX}{}", ip.to_canonical())
}

fn port_key(port: u16) -> String {
    format!("{PORT_PREFIX}{port}")
}

fn holds_ip(spec: &ServiceSpec, ip: IpAddr) -> bool {
    spec.cluster_ips.iter().flatten().any(|c| c.parse::<IpAddr>().ok().map(|c| c.to_canonical()) == Some(ip))
}

fn holds_port(spec: &ServiceSpec, port: u16) -> bool {
    spec.ports.iter().flatten().any(|p| p.node_port == Some(i32::from(port)))
}

/// The claim keys a stored Service holds.
fn held_keys(svc: &Value) -> Vec<String> {
    let Ok(svc) = serde_json::from_value::<Service>(svc.clone()) else { return Vec::new() };
    let spec = svc.spec.unwrap_or_default();
    let ips = spec.cluster_ips.iter().flatten().filter_map(|ip| ip.parse::<IpAddr>().ok()).map(ip_key);
    let ports =
        (spec.ports.iter().flatten()).filter_map(|p| p.node_port.and_then(|n| u16::try_from(n).ok())).map(port_key);
    ips.chain(ports).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        parse_cidr(s).map(|c| c.to_string()).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn flags_parse() {
        assert_eq!(parse_cidr("10.43.0.0/16").expect("cidr").to_string(), "10.43.0.0/16");
        assert_eq!(parse_cidr("10.43.1.5/16").expect("truncated").to_string(), "10.43.0.0/16");
        assert!(parse_cidr("10.43.0.0/30").is_err());
        assert_eq!(parse_node_ports("30000-32767").expect("range"), 30000..=32767);
        assert!(parse_node_ports("32767-30000").is_err());
        assert_eq!(ServiceRanges::default().first().to_string(), "10.43.0.1");
        assert_eq!(ServiceRanges::default().cidr, parse_cidr(DEFAULT_SERVICE_CIDR).expect("default"));
    }

    #[test]
    fn dual_stack_flags_parse_as_kube_apiserver_checks_them() {
        let dual = parse_cidr("10.43.0.0/16, fd00:43::/112").expect("dual");
        assert_eq!(dual.to_string(), "10.43.0.0/16,fd00:43::/112");
        assert_eq!((dual.primary_family(), dual.is_dual_stack()), (IpFamily::V4, true));
        assert_eq!(dual.v4().map(|n| n.to_string()).as_deref(), Some("10.43.0.0/16"));
        assert_eq!(dual.v6().map(|n| n.to_string()).as_deref(), Some("fd00:43::/112"));
        assert!(dual.contains(&Ipv4Addr::new(10, 43, 0, 10)));
        assert!(dual.contains(&"fd00:43::10".parse::<Ipv6Addr>().expect("ip")));
        assert!(!dual.contains(&Ipv4Addr::new(10, 44, 0, 10)));
        let v6_first = parse_cidr("fd00:43::5/108,10.43.0.0/16").expect("v6 primary");
        assert_eq!(v6_first.to_string(), "fd00:43::/108,10.43.0.0/16");
        let ranges = ServiceRanges { cidr: v6_first, node_ports: DEFAULT_NODE_PORTS };
        assert_eq!(ranges.first().to_string(), "fd00:43::1");
        assert_eq!(
            err("fd00::/64"),
            "specified --service-cidr is too large; for 128-bit addresses, the mask must be >= 108"
        );
        assert_eq!(
            err("10.43.0.0/16,fd00::/100"),
            "specified --service-cidr[1] is too large; for 128-bit addresses, the mask must be >= 108"
        );
        assert_eq!(
            err("fd00::/126"),
            "specified --service-cidr is too small; for 128-bit addresses, the mask must be <= 125 (8 addresses)"
        );
        assert_eq!(
            err("10.43.0.0/16,10.44.0.0/16"),
            "--service-cidr[0] and --service-cidr[1] must be of different IP family"
        );
        assert_eq!(err("10.43.0.0/16,fd00::/112,fd01::/112"), "--service-cidr must not contain more than two entries");
        assert_eq!(
            err("10.43.0.0/16,nope"),
            "--service-cidr[1] \"nope\" is not a CIDR such as 10.43.0.0/16 or fd00:43::/112"
        );
        assert_eq!(err(""), "--service-cidr must contain at least one valid cidr");
        // A big IPv4 range stays allowed, as it was.
        assert_eq!(err("10.0.0.0/8"), "10.0.0.0/8");
    }

    #[test]
    fn addresses_in_range_and_their_keys() {
        let v6: IpNet = "fd00:43::/125".parse().expect("net");
        let at = |s: &str| in_range(v6, s.parse().expect("ip"));
        assert!(!at("fd00:43::") && at("fd00:43::1") && at("fd00:43::7") && !at("fd00:43::8"));
        let v4: IpNet = "10.43.0.0/29".parse().expect("net");
        let at = |s: &str| in_range(v4, s.parse().expect("ip"));
        assert!(!at("10.43.0.0") && at("10.43.0.1") && at("10.43.0.6") && !at("10.43.0.7"));
        assert_eq!((usable(v6), usable(v4)), (7, 6));
        let ip: IpAddr = "fd00:0043:0:0::0a".parse().expect("ip");
        assert_eq!(ip_key(ip), "/registry/skiff/serviceips/fd00:43::a");
        assert_eq!(IpFamily::of("::ffff:10.43.0.1".parse().expect("mapped")), IpFamily::V4);
    }
}
