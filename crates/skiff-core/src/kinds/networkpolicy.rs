//! NetworkPolicies (`networking.k8s.io/v1`): which traffic the pods a policy selects may receive
//! and send. Defaulting (`SetDefaults_NetworkPolicy`, `SetDefaults_NetworkPolicyPort`),
//! validation (`ValidateNetworkPolicy`, `ValidateNetworkPolicyUpdate`) and Table columns
//! (`printNetworkPolicy`) as Kubernetes 1.32's. There is no status: 1.32 serves none.

use super::template::default_field;
use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::field::{BadValue, ErrorList, FieldError, Path, go_quote};
use crate::selector::{self, LabelSelector};
use crate::{meta, names};
use jiff::Timestamp;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiLabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

/// In upstream's order (not sorted).
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];
const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";
const INVALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

pub struct NetworkPolicies;

static INFO: ResourceInfo = ResourceInfo {
    group: "networking.k8s.io",
    version: "v1",
    plural: "networkpolicies",
    singular: "networkpolicy",
    kind: "NetworkPolicy",
    namespaced: true,
    short_names: &["netpol"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

/// The POD-SELECTOR column's description is `extensions/v1beta1`'s doc of `podSelector`, as
/// upstream's printer takes it.
static COLUMNS: [Column; 3] = [
    NAME_COLUMN,
    Column::new(
        "Pod-Selector",
        0,
        "Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods.  In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.",
    ),
    AGE_COLUMN,
];

/// `NetworkPolicyValidationOptions`: what an update may keep that a create may not.
#[derive(Debug, Default, Clone, Copy)]
struct Options {
    /// `AllowInvalidLabelValueInSelector`: the stored policy's podSelector is itself invalid.
    allow_invalid_label_values: bool,
}

fn selector_errors(sel: &ApiLabelSelector, path: &Path, opts: Options) -> ErrorList {
    let value = serde_json::to_value(sel).unwrap_or_default();
    selector::validate_api_with(&value, path, opts.allow_invalid_label_values)
}

/// `ValidateNetworkPolicyPort`. When `endPort` is below `port`, upstream reports the value of
/// `port` at `endPort`; so does this.
fn validate_port(port: &NetworkPolicyPort, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if let Some(protocol) = port.protocol.as_deref()
        && !PROTOCOLS.contains(&protocol)
    {
        errs.push(FieldError::not_supported(&path.child("protocol"), protocol, PROTOCOLS));
    }
    let (pp, ep) = (path.child("port"), path.child("endPort"));
    match &port.port {
        Some(IntOrString::Int(n)) => {
            if !(1..=65535).contains(n) {
                errs.push(FieldError::invalid(&pp, *n, PORT_RANGE));
            }
            if let Some(end) = port.end_port {
                if end < *n {
                    errs.push(FieldError::invalid(&ep, *n, "must be greater than or equal to `port`"));
                }
                if !(1..=65535).contains(&end) {
                    errs.push(FieldError::invalid(&ep, end, PORT_RANGE));
                }
            }
        }
        Some(IntOrString::String(name)) => {
            if let Some(end) = port.end_port {
                errs.push(FieldError::invalid(&ep, end, "may not be specified when `port` is non-numeric"));
            }
            errs.extend(names::invalid_all(&pp, name, names::iana_svc_name(name)));
        }
        None => {
            if let Some(end) = port.end_port {
                errs.push(FieldError::invalid(&ep, end, "may not be specified when `port` is not specified"));
            }
        }
    }
    errs
}

/// `ValidateNetworkPolicyPeer`: pods, namespaces (either or both), or an IP block alone.
fn validate_peer(peer: &NetworkPolicyPeer, path: &Path, opts: Options) -> ErrorList {
    let mut errs = Vec::new();
    let mut peers = 0;
    if let Some(sel) = &peer.pod_selector {
        peers += 1;
        errs.extend(selector_errors(sel, &path.child("podSelector"), opts));
    }
    if let Some(sel) = &peer.namespace_selector {
        peers += 1;
        errs.extend(selector_errors(sel, &path.child("namespaceSelector"), opts));
    }
    if let Some(block) = &peer.ip_block {
        peers += 1;
        errs.extend(validate_ip_block(block, &path.child("ipBlock")));
    }
    if peers == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if peers > 1 && peer.ip_block.is_some() {
        errs.push(FieldError::forbidden(path, "may not specify both ipBlock and another peer"));
    }
    errs
}

/// `ValidateIPBlock` (1.32's `validation.IsValidCIDR`, before strict CIDR parsing): `cidr` a
/// CIDR, each of `except` a CIDR strictly within it.
fn validate_ip_block(block: &IPBlock, path: &Path) -> ErrorList {
    let cp = path.child("cidr");
    if block.cidr.is_empty() {
        return vec![FieldError::required(&cp, "")];
    }
    let Some(cidr) = Cidr::parse_sloppy(&block.cidr) else {
        return vec![FieldError::invalid(&cp, block.cidr.as_str(), INVALID_CIDR)];
    };
    let mut errs = Vec::new();
    for (i, except) in block.except.iter().flatten().enumerate() {
        let ep = path.child("except").index(i);
        match Cidr::parse_sloppy(except) {
            None => errs.push(FieldError::invalid(&ep, except.as_str(), INVALID_CIDR)),
            Some(e) if !cidr.contains(&e.ip) || cidr.ones >= e.ones => {
                errs.push(FieldError::invalid(&ep, except.as_str(), "must be a strict subset of `cidr`"))
            }
            Some(_) => {}
        }
    }
    errs
}

/// `ValidateNetworkPolicySpec`.
fn validate_spec(spec: &NetworkPolicySpec, path: &Path, opts: Options) -> ErrorList {
    let mut errs = selector_errors(&spec.pod_selector.clone().unwrap_or_default(), &path.child("podSelector"), opts);
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let rp = path.child("ingress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_port(port, &rp.child("ports").index(j)));
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &rp.child("from").index(j), opts));
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let rp = path.child("egress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_port(port, &rp.child("ports").index(j)));
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &rp.child("to").index(j), opts));
        }
    }
    let types = spec.policy_types.as_deref().unwrap_or_default();
    let tp = path.child("policyTypes");
    if types.len() > POLICY_TYPES.len() {
        let listed: Vec<String> = types.iter().map(|t| go_quote(t)).collect();
        let value = BadValue::Go(format!("[]networking.PolicyType{{{}}}", listed.join(", ")));
        errs.push(FieldError::invalid_go(&tp, value, "may not specify more than two policyTypes"));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if !POLICY_TYPES.contains(&t.as_str()) {
            errs.push(FieldError::not_supported(&tp.index(i), t.as_str(), POLICY_TYPES));
        }
    }
    errs
}

fn spec_of(obj: &Value) -> NetworkPolicySpec {
    typed::<NetworkPolicy>(obj).spec.unwrap_or_default()
}

/// `metav1.FormatLabelSelector`: the selector as kubectl prints it, `<none>` when it selects
/// everything, `<error>` when it cannot be read as a selector.
fn format_selector(sel: &Value) -> String {
    if !selector::validate_api_with(sel, &Path::default(), false).is_empty() {
        return "<error>".into();
    }
    let shown = LabelSelector::from_api(sel).to_string();
    if shown.is_empty() { "<none>".into() } else { shown }
}

impl Kind for NetworkPolicies {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<NetworkPolicy>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<NetworkPolicy>(raw)
    }
    /// `SetDefaults_NetworkPolicy`: no policyTypes (or none listed) means `["Ingress"]`, plus
    /// `"Egress"` when there are egress rules; `SetDefaults_NetworkPolicyPort`: ports are TCP.
    /// The spec and its podSelector are always there, as upstream always writes them.
    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        let spec = o.entry("spec").or_insert_with(|| json!({}));
        if spec.is_null() {
            *spec = json!({});
        }
        if !spec.is_object() {
            return;
        }
        default_field(spec, "podSelector", json!({}));
        for rules in ["ingress", "egress"] {
            let rules = spec.get_mut(rules).and_then(Value::as_array_mut).into_iter().flatten();
            let ports = rules.filter_map(|r| r.get_mut("ports").and_then(Value::as_array_mut)).flatten();
            for port in ports.filter(|p| p.is_object()) {
                default_field(port, "protocol", json!("TCP"));
            }
        }
        if spec.get("policyTypes").and_then(Value::as_array).is_none_or(Vec::is_empty) {
            let egress = spec.get("egress").and_then(Value::as_array).is_some_and(|e| !e.is_empty());
            spec["policyTypes"] = if egress { json!(["Ingress", "Egress"]) } else { json!(["Ingress"]) };
        }
    }
    /// `ValidateNetworkPolicy` with `ValidationOptionsForNetworking(new, nil)`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        errs.extend(validate_spec(&spec_of(obj), &Path::new("spec"), Options::default()));
        errs
    }
    /// Upstream's strategy: `ValidateNetworkPolicy` then `ValidateNetworkPolicyUpdate`, which
    /// validates the spec again, so each spec error is listed twice (the Status message names it
    /// once). Invalid selector values are kept when the stored podSelector has them.
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let old_selector = spec_of(old).pod_selector.unwrap_or_default();
        let opts = Options {
            allow_invalid_label_values: !selector_errors(&old_selector, &Path::default(), Options::default())
                .is_empty(),
        };
        let spec_errs = validate_spec(&spec_of(new), &Path::new("spec"), opts);
        let mut errs = meta::validate(new, true, false);
        errs.extend(spec_errs.iter().cloned());
        errs.extend(spec_errs);
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    /// Upstream's `printNetworkPolicy`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let selector = obj.pointer("/spec/podSelector").cloned().unwrap_or_else(|| json!({}));
        vec![json!(meta::name(obj)), json!(format_selector(&selector)), json!(meta::age(obj, now))]
    }
}

/// A CIDR as Go's `net.IPNet` holds it: the masked address (4 bytes for IPv4, 16 for IPv6)
/// and its mask, of `ones` leading one bits.
#[derive(Debug, Clone, PartialEq)]
struct Cidr {
    ip: Vec<u8>,
    mask: Vec<u8>,
    ones: usize,
}

/// Go's `dtoi`/`xtoi` give up at this value.
const BIG: u32 = 0xFF_FFFF;

/// The leading digits of `s` in `radix` (Go's `dtoi`, `xtoi`): their value and how many there
/// are; `None` when there are none or the value reaches [`BIG`].
fn leading_number(s: &[u8], radix: u32) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut used = 0;
    for &b in s {
        let Some(d) = char::from(b).to_digit(radix) else { break };
        n = n * radix + d;
        if n >= BIG {
            return None;
        }
        used += 1;
    }
    (used > 0).then_some((n, used))
}

/// Go's `parseIPv4` as `netutils.ParseIPSloppy` keeps it: leading zeros allowed (and read as
/// decimal).
fn parse_ipv4_sloppy(mut s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    for (i, octet) in out.iter_mut().enumerate() {
        if i > 0 {
            s = s.strip_prefix(b".")?;
        }
        let (n, used) = leading_number(s, 10)?;
        *octet = u8::try_from(n).ok()?;
        s = &s[used..];
    }
    s.is_empty().then_some(out)
}

/// Go's `parseIPv6` (no zone), with a sloppy IPv4 tail.
fn parse_ipv6_sloppy(mut s: &[u8]) -> Option<[u8; 16]> {
    let mut ip = [0u8; 16];
    let mut ellipsis: Option<usize> = None;
    if s.starts_with(b"::") {
        ellipsis = Some(0);
        s = &s[2..];
        if s.is_empty() {
            return Some(ip);
        }
    }
    let mut i = 0;
    while i < 16 {
        let (n, used) = leading_number(s, 16)?;
        if n > 0xFFFF {
            return None;
        }
        if s.get(used) == Some(&b'.') {
            if (ellipsis.is_none() && i != 12) || i + 4 > 16 {
                return None;
            }
            ip[i..i + 4].copy_from_slice(&parse_ipv4_sloppy(s)?);
            s = &[];
            i += 4;
            break;
        }
        ip[i..i + 2].copy_from_slice(&u16::try_from(n).ok()?.to_be_bytes());
        i += 2;
        s = &s[used..];
        if s.is_empty() {
            break;
        }
        if s[0] != b':' || s.len() == 1 {
            return None;
        }
        s = &s[1..];
        if s[0] == b':' {
            if ellipsis.is_some() {
                return None;
            }
            ellipsis = Some(i);
            s = &s[1..];
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return None;
    }
    match ellipsis {
        Some(e) if i < 16 => {
            let gap = 16 - i;
            ip.copy_within(e..i, e + gap);
            ip[e..e + gap].fill(0);
        }
        Some(_) => return None,
        None if i < 16 => return None,
        None => {}
    }
    Some(ip)
}

/// Go's `IP.To4`: the IPv4 address `ip` holds, plain or IPv4-mapped.
fn to4(ip: &[u8]) -> Option<&[u8]> {
    match ip.len() {
        4 => Some(ip),
        16 if ip[..10].iter().all(|b| *b == 0) && ip[10] == 0xff && ip[11] == 0xff => Some(&ip[12..]),
        _ => None,
    }
}

impl Cidr {
    /// `netutils.ParseCIDRSloppy`.
    fn parse_sloppy(s: &str) -> Option<Cidr> {
        let (addr, prefix) = s.split_once('/')?;
        let ip: Vec<u8> = match parse_ipv4_sloppy(addr.as_bytes()) {
            Some(v4) => v4.to_vec(),
            None => parse_ipv6_sloppy(addr.as_bytes())?.to_vec(),
        };
        let (ones, used) = leading_number(prefix.as_bytes(), 10)?;
        let ones = usize::try_from(ones).ok()?;
        if used != prefix.len() || ones > 8 * ip.len() {
            return None;
        }
        let mask: Vec<u8> = (0..ip.len())
            .map(|i| {
                let bits = ones.saturating_sub(8 * i).min(8);
                (0xFF_u16 << (8 - bits)) as u8
            })
            .collect();
        let ip = ip.iter().zip(&mask).map(|(a, m)| a & m).collect();
        Some(Cidr { ip, mask, ones })
    }

    /// Go's `IPNet.Contains`, IPv4-mapped addresses read as IPv4.
    fn contains(&self, ip: &[u8]) -> bool {
        let (net, mask) = match to4(&self.ip) {
            Some(v4) => (v4, if self.mask.len() == 16 { &self.mask[12..] } else { &self.mask[..] }),
            None => (&self.ip[..], &self.mask[..]),
        };
        let ip = to4(ip).unwrap_or(ip);
        ip.len() == net.len() && net.iter().zip(mask).zip(ip).all(|((n, m), a)| n & m == a & m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    const QUALIFIED: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    fn strings(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn policy(spec: Value) -> Value {
        json!({"metadata": {"name": "np", "namespace": "default"}, "spec": spec})
    }

    /// A policy with one ingress rule from `peer`.
    fn from(peer: Value) -> Value {
        policy(json!({"ingress": [{"from": [peer]}]}))
    }

    /// A policy with one ingress rule on `port`.
    fn on(port: Value) -> Value {
        policy(json!({"ingress": [{"ports": [port]}]}))
    }

    fn block(cidr: &str, except: &[&str]) -> Value {
        from(json!({"ipBlock": {"cidr": cidr, "except": except}}))
    }

    #[test]
    fn validation_as_upstream() {
        let cases: Vec<(&str, Value, Vec<String>)> = vec![
            ("an empty policy", policy(json!({})), vec![]),
            ("no spec at all", json!({"metadata": {"name": "np", "namespace": "default"}}), vec![]),
            (
                "every kind of rule",
                policy(json!({"podSelector": {"matchLabels": {"app": "db"}},
                    "ingress": [{"from": [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"team": "a"}}},
                        {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                         "namespaceSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                        "ports": [{"port": 5432}, {"protocol": "UDP", "port": 53, "endPort": 60}, {"protocol": "SCTP", "port": "db"}, {}]}],
                    "egress": [{"to": [{"ipBlock": {"cidr": "fd00::/8"}}]}, {}],
                    "policyTypes": ["Ingress", "Egress"]})),
                vec![],
            ),
            (
                "a bad name and no namespace",
                json!({"metadata": {"name": "Np"}, "spec": {}}),
                vec![
                    format!("metadata.name: Invalid value: \"Np\": {SUBDOMAIN}"),
                    "metadata.namespace: Required value".into(),
                ],
            ),
            (
                "a bad podSelector",
                policy(json!({"podSelector": {"matchLabels": {"app": "-web"},
                    "matchExpressions": [{"key": "tier", "operator": "In"}, {"key": "x", "operator": "Exists", "values": ["y"]},
                        {"key": "bad key", "operator": "Has", "values": ["ok", "-no"]}]}})),
                vec![
                    format!("spec.podSelector.matchLabels: Invalid value: \"-web\": {LABEL_VALUE}"),
                    "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
                    "spec.podSelector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'".into(),
                    "spec.podSelector.matchExpressions[2].operator: Invalid value: \"Has\": not a valid selector operator".into(),
                    format!("spec.podSelector.matchExpressions[2].key: Invalid value: \"bad key\": {QUALIFIED}"),
                    format!("spec.podSelector.matchExpressions[2].values[1]: Invalid value: \"-no\": {LABEL_VALUE}"),
                ],
            ),
            (
                "an empty peer",
                from(json!({})),
                vec!["spec.ingress[0].from[0]: Required value: must specify a peer".into()],
            ),
            (
                "an empty egress peer",
                policy(json!({"egress": [{"to": [{"podSelector": {}}, {}]}]})),
                vec!["spec.egress[0].to[1]: Required value: must specify a peer".into()],
            ),
            (
                "an ipBlock with a selector",
                from(json!({"ipBlock": {"cidr": "10.0.0.0/8"}, "namespaceSelector": {}})),
                vec!["spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer".into()],
            ),
            (
                "bad peer selectors",
                policy(json!({"egress": [{"to": [{"podSelector": {"matchLabels": {"a/b/c": "x"}},
                    "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a b"]}]}}]}]})),
                vec![
                    "spec.egress[0].to[0].podSelector.matchLabels: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into(),
                    format!("spec.egress[0].to[0].namespaceSelector.matchExpressions[0].values[0]: Invalid value: \"a b\": {LABEL_VALUE}"),
                ],
            ),
            (
                "an ipBlock without cidr",
                from(json!({"ipBlock": {"except": ["bad"]}})),
                vec!["spec.ingress[0].from[0].ipBlock.cidr: Required value".into()],
            ),
            (
                "a bad cidr (its excepts are not looked at)",
                block("10.0.0.0/33", &["bad"]),
                vec![format!("spec.ingress[0].from[0].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": {INVALID_CIDR}")],
            ),
            (
                "excepts bad, equal, wider, outside and of the other family",
                block("10.0.0.0/16", &["10.0.1.0/24", "nope", "10.0.0.0/16", "10.0.0.0/8", "192.168.0.0/24", "fd00::/64", ""]),
                vec![
                    format!("spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: \"nope\": {INVALID_CIDR}"),
                    "spec.ingress[0].from[0].ipBlock.except[2]: Invalid value: \"10.0.0.0/16\": must be a strict subset of `cidr`".into(),
                    "spec.ingress[0].from[0].ipBlock.except[3]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`".into(),
                    "spec.ingress[0].from[0].ipBlock.except[4]: Invalid value: \"192.168.0.0/24\": must be a strict subset of `cidr`".into(),
                    "spec.ingress[0].from[0].ipBlock.except[5]: Invalid value: \"fd00::/64\": must be a strict subset of `cidr`".into(),
                    format!("spec.ingress[0].from[0].ipBlock.except[6]: Invalid value: \"\": {INVALID_CIDR}"),
                ],
            ),
            (
                "sloppy CIDRs, as 1.32 still takes them",
                block("010.000.0.1/08", &["10.1.0.0/016"]),
                vec![],
            ),
            ("an IPv6 block", block("2001:db8::/32", &["2001:db8:1::/48", "2001:db8::1.2.3.4/128"]), vec![]),
            (
                "an unknown protocol",
                on(json!({"protocol": "HTTP", "port": 80})),
                vec!["spec.ingress[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"TCP\", \"UDP\", \"SCTP\"".into()],
            ),
            (
                "port numbers out of range",
                policy(json!({"egress": [{"ports": [{"port": 0}, {"port": 65536, "endPort": 70000}]}]})),
                vec![
                    "spec.egress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive".into(),
                    "spec.egress[0].ports[1].port: Invalid value: 65536: must be between 1 and 65535, inclusive".into(),
                    "spec.egress[0].ports[1].endPort: Invalid value: 70000: must be between 1 and 65535, inclusive".into(),
                ],
            ),
            (
                "an endPort below the port (upstream shows the port's value)",
                on(json!({"port": 8080, "endPort": 80})),
                vec!["spec.ingress[0].ports[0].endPort: Invalid value: 8080: must be greater than or equal to `port`".into()],
            ),
            (
                "a zero endPort",
                on(json!({"port": 80, "endPort": 0})),
                vec![
                    "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`".into(),
                    "spec.ingress[0].ports[0].endPort: Invalid value: 0: must be between 1 and 65535, inclusive".into(),
                ],
            ),
            (
                "an endPort with a named port",
                on(json!({"port": "Web--", "endPort": 90})),
                vec![
                    "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric".into(),
                    "spec.ingress[0].ports[0].port: Invalid value: \"Web--\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
                    "spec.ingress[0].ports[0].port: Invalid value: \"Web--\": must not contain consecutive hyphens".into(),
                    "spec.ingress[0].ports[0].port: Invalid value: \"Web--\": must not begin or end with a hyphen".into(),
                ],
            ),
            (
                "a port number as a string",
                on(json!({"port": "80"})),
                vec!["spec.ingress[0].ports[0].port: Invalid value: \"80\": must contain at least one letter (a-z)".into()],
            ),
            (
                "an endPort without a port",
                on(json!({"endPort": 90})),
                vec!["spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified".into()],
            ),
            (
                "unknown policy types",
                policy(json!({"policyTypes": ["ingress", "Egress"]})),
                vec!["spec.policyTypes[0]: Unsupported value: \"ingress\": supported values: \"Ingress\", \"Egress\"".into()],
            ),
            (
                "three policy types (each is not looked at)",
                policy(json!({"policyTypes": ["Ingress", "Egress", "Other"]})),
                vec!["spec.policyTypes: Invalid value: []networking.PolicyType{\"Ingress\", \"Egress\", \"Other\"}: may not specify more than two policyTypes".into()],
            ),
            (
                "rules before policy types",
                policy(json!({"ingress": [{"from": [{}]}], "policyTypes": ["Ingress", "Ingress", "Egress"]})),
                vec![
                    "spec.ingress[0].from[0]: Required value: must specify a peer".into(),
                    "spec.policyTypes: Invalid value: []networking.PolicyType{\"Ingress\", \"Ingress\", \"Egress\"}: may not specify more than two policyTypes".into(),
                ],
            ),
        ];
        for (name, obj, want) in cases {
            let obj = NetworkPolicies.normalize(&obj).expect(name);
            assert_eq!(strings(NetworkPolicies.validate(&obj)), want, "{name}");
        }
    }

    #[test]
    fn updates_list_spec_errors_twice_and_keep_invalid_selector_values() {
        let old = from(json!({"podSelector": {}}));
        let new = from(json!({}));
        let peer = "spec.ingress[0].from[0]: Required value: must specify a peer";
        assert_eq!(strings(NetworkPolicies.validate_update(&old, &new)), [peer, peer]);
        assert!(NetworkPolicies.validate_update(&old, &old).is_empty());

        // Selector values an invalid stored podSelector holds stay allowed, in peers too.
        let values = |v: &str| json!({"matchExpressions": [{"key": "app", "operator": "In", "values": [v]}]});
        let stored = policy(json!({"podSelector": values("-old")}));
        let changed =
            policy(json!({"podSelector": values("-new"), "egress": [{"to": [{"namespaceSelector": values("a b")}]}]}));
        assert_eq!(strings(NetworkPolicies.validate(&stored)).len(), 1);
        assert!(NetworkPolicies.validate_update(&stored, &changed).is_empty());
        let valid = policy(json!({"podSelector": values("ok")}));
        assert_eq!(
            strings(NetworkPolicies.validate_update(&valid, &changed)),
            [
                format!("spec.podSelector.matchExpressions[0].values[0]: Invalid value: \"-new\": {LABEL_VALUE}"),
                format!(
                    "spec.egress[0].to[0].namespaceSelector.matchExpressions[0].values[0]: Invalid value: \"a b\": {LABEL_VALUE}"
                ),
                format!("spec.podSelector.matchExpressions[0].values[0]: Invalid value: \"-new\": {LABEL_VALUE}"),
                format!(
                    "spec.egress[0].to[0].namespaceSelector.matchExpressions[0].values[0]: Invalid value: \"a b\": {LABEL_VALUE}"
                ),
            ]
        );
    }

    #[test]
    fn defaults_as_upstream() {
        let defaulted = |obj: Value| {
            let mut obj = NetworkPolicies.normalize(&obj).expect("decodes");
            NetworkPolicies.default(&mut obj);
            obj["spec"].clone()
        };
        let cases: Vec<(&str, Value, Value)> = vec![
            ("no spec", json!({"metadata": {"name": "np"}}), json!({"podSelector": {}, "policyTypes": ["Ingress"]})),
            (
                "ingress only, ports without protocol",
                policy(json!({"ingress": [{"ports": [{"port": 80}, {"protocol": "UDP", "port": 53}, {}]}, {}]})),
                json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}, {"protocol": "UDP", "port": 53},
                    {"protocol": "TCP"}]}, {}], "policyTypes": ["Ingress"]}),
            ),
            (
                "egress rules add Egress",
                policy(
                    json!({"podSelector": {"matchLabels": {"app": "web"}}, "egress": [{"ports": [{"port": "dns"}]}]}),
                ),
                json!({"podSelector": {"matchLabels": {"app": "web"}}, "egress": [{"ports": [{"port": "dns", "protocol": "TCP"}]}],
                    "policyTypes": ["Ingress", "Egress"]}),
            ),
            (
                "empty egress does not",
                policy(json!({"egress": [], "policyTypes": []})),
                json!({"podSelector": {}, "egress": [], "policyTypes": ["Ingress"]}),
            ),
            (
                "listed policy types stay",
                policy(json!({"egress": [{}], "policyTypes": ["Egress"]})),
                json!({"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]}),
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(defaulted(obj), want, "{name}");
        }
    }

    #[test]
    fn columns_as_upstream_prints_them() {
        let now: Timestamp = "2026-01-01T00:02:00Z".parse().expect("time");
        let row = |spec: Value| {
            let mut obj = policy(spec);
            obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
            NetworkPolicies.cells(&obj, now)
        };
        assert_eq!(row(json!({"podSelector": {}})), [json!("np"), json!("<none>"), json!("2m")]);
        assert_eq!(row(json!({}))[1], json!("<none>"));
        let sel = json!({"podSelector": {"matchLabels": {"tier": "db", "app": "pg"},
            "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["qa", "dev"]}, {"key": "canary", "operator": "DoesNotExist"}]}});
        assert_eq!(row(sel)[1], json!("app=pg,!canary,env notin (dev,qa),tier=db"));
        let bad = json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}});
        assert_eq!(row(bad)[1], json!("<error>"));
        let names: Vec<&str> = NetworkPolicies.columns().iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Pod-Selector", "Age"]);
    }

    #[test]
    fn sloppy_cidrs_as_go_parses_them() {
        let parsed = |s: &str| Cidr::parse_sloppy(s).map(|c| (c.ip, c.ones));
        assert_eq!(parsed("10.1.2.3/8"), Some((vec![10, 0, 0, 0], 8)));
        assert_eq!(parsed("010.001.0.0/016"), Some((vec![10, 1, 0, 0], 16)));
        assert_eq!(parsed("0.0.0.0/0"), Some((vec![0, 0, 0, 0], 0)));
        assert_eq!(parsed("::/0").map(|(ip, ones)| (ip.len(), ones)), Some((16, 0)));
        let mapped = parsed("::ffff:1.2.3.4/128").expect("mapped");
        assert_eq!(mapped.0[10..], [0xff, 0xff, 1, 2, 3, 4]);
        assert_eq!(parsed("fd00:1::/32").map(|(ip, _)| ip[..4].to_vec()), Some(vec![0xfd, 0, 0, 1]));
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.256/8",
            "10.0.0.0/8/8",
            "10.0.0.0/+8",
            "fd00::/129",
            "fd00:::/64",
            "1::2::3/64",
            "fe80::1%eth0/64",
            "1:2:3:4:5:6:7:8:9/64",
            "1:2:3:4:5:6:7::8/64",
            "::1.2.3/96",
            "1.2.3.4::/64",
            "12345::/16",
        ] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
        assert!(parsed("1:2:3:4:5:6:1.2.3.4/128").is_some());
        assert!(parsed("00001::/16").is_some(), "Go reads any number of hex digits up to 0xFFFF");
        // Go's `Contains` reads IPv4-mapped addresses as IPv4.
        let v4 = Cidr::parse_sloppy("10.0.0.0/8").expect("v4");
        let except = Cidr::parse_sloppy("::ffff:10.1.0.0/120").expect("mapped");
        assert!(v4.contains(&except.ip));
        assert!(!v4.contains(&Cidr::parse_sloppy("fd00::/8").expect("v6").ip));
    }

    #[test]
    fn discovery_facts() {
        let i = NetworkPolicies.info();
        assert_eq!(
            (i.api_version(), i.qualified_resource(), i.qualified_kind()),
            (
                "networking.k8s.io/v1".into(),
                "networkpolicies.networking.k8s.io".into(),
                "NetworkPolicy.networking.k8s.io".into()
            )
        );
        assert_eq!((i.namespaced, i.short_names, i.subresources.len()), (true, &["netpol"][..], 0));
    }
}
