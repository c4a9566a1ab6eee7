//! `ValidateService` and `ValidateServiceUpdate`, with upstream's field paths and words.

use crate::field::{BadValue, ErrorList, FieldError, Path, go_quote};
use crate::names;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::HashSet;
use std::net::IpAddr;

pub const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const FAMILIES: &[&str] = &["IPv4", "IPv6"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
/// The kubelet's port: never exposed by a LoadBalancer (upstream's guard for over-open clouds).
const KUBELET_PORT: i32 = 10250;

/// `clusterIP: None`.
pub fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ip.as_deref() == Some("None")
}

fn type_of(spec: &ServiceSpec) -> &str {
    spec.type_.as_deref().unwrap_or("")
}

/// The service's own checks (metadata is checked by the caller).
pub fn validate(svc: &Service) -> ErrorList {
    let spec = svc.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    let mut errs = Vec::new();
    let ports = spec.ports.clone().unwrap_or_default();
    let kind = type_of(&spec);
    if ports.is_empty() && !is_headless(&spec) && kind != "ExternalName" {
        errs.push(FieldError::required(&path.child("ports"), ""));
    }
    match kind {
        "LoadBalancer" => {
            for (i, p) in ports.iter().enumerate() {
                if p.port == KUBELET_PORT {
                    let detail = format!("may not expose port {KUBELET_PORT} externally since it is used by kubelet");
                    errs.push(FieldError::invalid(&path.child("ports").index(i), p.port, detail));
                }
            }
            if is_headless(&spec) {
                let detail = "may not be set to 'None' for LoadBalancer services";
                errs.push(FieldError::invalid(&path.child("clusterIP"), "None", detail));
            }
        }
        "NodePort" if is_headless(&spec) => {
            let detail = "may not be set to 'None' for NodePort services";
            errs.push(FieldError::invalid(&path.child("clusterIP"), "None", detail));
        }
        "ExternalName" => {
            if spec.cluster_ips.as_ref().is_some_and(|c| !c.is_empty()) {
                errs.push(FieldError::forbidden(&path.child("clusterIPs"), "may not be set for ExternalName services"));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(&path.child("ipFamilies"), "may not be set for ExternalName services"));
            }
            if spec.ip_family_policy.is_some() {
                let detail = "may not be set for ExternalName services";
                errs.push(FieldError::forbidden(&path.child("ipFamilyPolicy"), detail));
            }
            // A trailing dot marks the name fully qualified.
            let name = spec.external_name.as_deref().unwrap_or("");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(&path.child("externalName"), ""));
            } else {
                errs.extend(names::invalid_all(&path.child("externalName"), cname, names::dns1123_subdomain(cname)));
            }
        }
        _ => {}
    }
    let mut port_names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_port(p, ports.len() > 1, &mut port_names, &path.child("ports").index(i)));
    }
    if let Some(selector) = &spec.selector {
        errs.extend(names::validate_labels(Some(selector), &path.child("selector")));
    }
    match spec.session_affinity.as_deref() {
        None | Some("") => errs.push(FieldError::required(&path.child("sessionAffinity"), "")),
        Some(a) if !AFFINITIES.contains(&a) => {
            errs.push(FieldError::not_supported(&path.child("sessionAffinity"), a, AFFINITIES))
        }
        Some("None") if spec.session_affinity_config.is_some() => errs.push(FieldError::forbidden(
            &path.child("sessionAffinityConfig"),
            "must not be set when session affinity is None",
        )),
        Some(_) => {
            let timeout = (spec.session_affinity_config.as_ref())
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            if let Some(t) = timeout.filter(|t| !(1..=86400).contains(t)) {
                let p = path.child("sessionAffinityConfig").child("clientIP").child("timeoutSeconds");
                errs.push(FieldError::invalid(&p, t, "must be greater than 0 and less than 86400"));
            }
        }
    }
    errs.extend(validate_cluster_ips(&spec, &path));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        if ip.parse::<IpAddr>().is_err() {
            let detail = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
            errs.push(FieldError::invalid(&path.child("externalIPs").index(i), ip.as_str(), detail));
        }
    }
    match kind {
        "" => errs.push(FieldError::required(&path.child("type"), "")),
        k if !TYPES.contains(&k) => errs.push(FieldError::not_supported(&path.child("type"), k, TYPES)),
        "ClusterIP" => {
            for (i, p) in ports.iter().enumerate() {
                if p.node_port.is_some_and(|n| n != 0) {
                    let detail = "may not be used when `type` is 'ClusterIP'";
                    errs.push(FieldError::forbidden(&path.child("ports").index(i).child("nodePort"), detail));
                }
            }
        }
        _ => {}
    }
    // The same node port (or port) twice for one protocol.
    let mut node_ports = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        if let Some(n) = p.node_port.filter(|n| *n != 0)
            && !node_ports.insert((p.protocol.clone(), n))
        {
            errs.push(FieldError::duplicate(&path.child("ports").index(i).child("nodePort"), n));
        }
    }
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !seen.insert((p.protocol.clone(), p.port)) {
            errs.push(FieldError::duplicate_go(&path.child("ports").index(i), BadValue::Go(go_port_key(p))));
        }
    }
    errs.extend(validate_traffic_policies(&spec, &path));
    errs
}

/// A `(protocol, port)` key as Go's `%#v` prints the `core.ServicePort` upstream compares.
fn go_port_key(p: &ServicePort) -> String {
    let proto = go_quote(p.protocol.as_deref().unwrap_or(""));
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{proto}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        p.port
    )
}

fn validate_port(p: &ServicePort, name_required: bool, names_seen: &mut HashSet<String>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    match p.name.as_deref().filter(|n| !n.is_empty()) {
        None if name_required => errs.push(FieldError::required(&path.child("name"), "")),
        None => {}
        Some(n) => {
            errs.extend(names::invalid_all(&path.child("name"), n, names::dns1123_label(n)));
            if !names_seen.insert(n.to_string()) {
                errs.push(FieldError::duplicate(&path.child("name"), n));
            }
        }
    }
    if !(1..=65535).contains(&p.port) {
        errs.push(FieldError::invalid(&path.child("port"), p.port, "must be between 1 and 65535, inclusive"));
    }
    match p.protocol.as_deref() {
        None | Some("") => errs.push(FieldError::required(&path.child("protocol"), "")),
        Some(proto) if !PROTOCOLS.contains(&proto) => {
            errs.push(FieldError::not_supported(&path.child("protocol"), proto, PROTOCOLS))
        }
        _ => {}
    }
    match &p.target_port {
        Some(IntOrString::Int(n)) if !(1..=65535).contains(n) => {
            errs.push(FieldError::invalid(&path.child("targetPort"), *n, "must be between 1 and 65535, inclusive"))
        }
        Some(IntOrString::String(s)) => {
            errs.extend(names::invalid_all(&path.child("targetPort"), s, names::iana_svc_name(s)))
        }
        _ => {}
    }
    if let Some(ap) = p.app_protocol.as_deref() {
        errs.extend(names::invalid_all(&path.child("appProtocol"), ap, names::qualified_name(ap)));
    }
    errs
}

/// Upstream's `isHeadlessService`: `clusterIPs` is exactly `["None"]`.
fn headless_ips(spec: &ServiceSpec) -> bool {
    spec.cluster_ips.as_deref().is_some_and(|ips| ips.len() == 1 && ips[0] == "None")
}

/// `ValidateServiceClusterIPsRelatedFields`: `clusterIP` and `clusterIPs` in sync, the addresses
/// well formed and one per family, `ipFamilies` and `ipFamilyPolicy` supported, and each address
/// of the family `ipFamilies` names for it. Whether the families are configured on the cluster
/// is the API server's to check: it knows the service ranges.
fn validate_cluster_ips(spec: &ServiceSpec, path: &Path) -> ErrorList {
    if type_of(spec) == "ExternalName" {
        // Checked above: none of them may be set.
        return Vec::new();
    }
    let mut errs = Vec::new();
    let ips_path = path.child("clusterIPs");
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    match spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty()) {
        Some(_) if ips.is_empty() => errs.push(FieldError::required(&ips_path, "")),
        Some(ip) if ips[0] != ip => {
            errs.push(FieldError::invalid_go(&ips_path, go_strings(&ips), "first value must match `clusterIP`"))
        }
        Some(_) => {}
        None if !ips.is_empty() => errs.push(FieldError::invalid_go(
            &ips_path,
            go_strings(&ips),
            "must be empty when `clusterIP` is not specified",
        )),
        None => {}
    }
    let mut seen = HashSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        let p = path.child("ipFamilies").index(i);
        if !FAMILIES.contains(&f.as_str()) {
            errs.push(FieldError::not_supported(&p, f.as_str(), FAMILIES));
        }
        // No duplicates also means at most one of each family, in any order.
        if !seen.insert(f.as_str()) {
            errs.push(FieldError::duplicate(&p, f.as_str()));
        }
    }
    if let Some(policy) = spec.ip_family_policy.as_deref()
        && !FAMILY_POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(&path.child("ipFamilyPolicy"), policy, FAMILY_POLICIES));
    }
    let mut bad_ips = false;
    for (i, v) in ips.iter().enumerate() {
        if i == 0 && v == "None" {
            if ips.len() > 1 {
                bad_ips = true;
                let detail = "'None' must be the first and only value";
                errs.push(FieldError::invalid_go(&ips_path, go_strings(&ips), detail));
            }
            continue;
        }
        if v.parse::<IpAddr>().is_err() {
            bad_ips = true;
            let detail = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
            errs.push(FieldError::invalid(&ips_path.index(i), v.as_str(), detail));
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid_go(&ips_path, go_strings(&ips), "may only hold up to 2 values"));
    }
    // Bad addresses would make the family checks below say misleading things.
    if bad_ips {
        return errs;
    }
    let families: Vec<bool> = ips.iter().filter_map(|ip| ip.parse::<IpAddr>().ok()).map(is_v6).collect();
    // Upstream's `IsDualStackIPStrings`: some of each family (more than two is reported above).
    if ips.len() > 1 && !(families.contains(&true) && families.contains(&false)) {
        let detail = "may specify no more than one IP for each IP family";
        errs.push(FieldError::invalid_go(&ips_path, go_strings(&ips), detail));
    }
    if !headless_ips(spec) {
        for (i, (ip, family)) in ips.iter().zip(spec.ip_families.iter().flatten()).enumerate() {
            let v6 = families.get(i).copied().unwrap_or(false);
            let expected = match family.as_str() {
                "IPv4" if v6 => "IPv4",
                "IPv6" if !v6 => "IPv6",
                _ => continue,
            };
            let detail = format!("expected an {expected} value as indicated by `ipFamilies[{i}]`");
            errs.push(FieldError::invalid(&ips_path.index(i), ip.as_str(), detail));
        }
    }
    errs
}

/// Whether an address is IPv6 as upstream's `netutils.IsIPv6String` decides: an IPv4-mapped
/// IPv6 address counts as IPv4.
fn is_v6(ip: IpAddr) -> bool {
    ip.to_canonical().is_ipv6()
}

fn validate_traffic_policies(spec: &ServiceSpec, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let external = matches!(type_of(spec), "NodePort" | "LoadBalancer")
        || (type_of(spec) == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()));
    match spec.external_traffic_policy.as_deref() {
        Some(p) if !external && !p.is_empty() => {
            let detail = "may only be set for externally-accessible services";
            errs.push(FieldError::invalid(&path.child("externalTrafficPolicy"), p, detail));
        }
        None | Some("") if !external => {}
        None | Some("") => errs.push(FieldError::required(&path.child("externalTrafficPolicy"), "")),
        Some(p) if !TRAFFIC_POLICIES.contains(&p) => {
            errs.push(FieldError::not_supported(&path.child("externalTrafficPolicy"), p, TRAFFIC_POLICIES))
        }
        Some(_) => {}
    }
    if let Some(p) = spec.internal_traffic_policy.as_deref()
        && !TRAFFIC_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(&path.child("internalTrafficPolicy"), p, TRAFFIC_POLICIES));
    }
    errs
}

/// A `[]string` as Go's `%#v` prints it.
fn go_strings(v: &[String]) -> BadValue {
    let quoted: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    BadValue::Go(format!("[]string{{{}}}", quoted.join(", ")))
}

/// A `[]core.IPFamily` as Go's `%#v` prints it.
fn go_families(v: &[String]) -> BadValue {
    let quoted: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    BadValue::Go(format!("[]core.IPFamily{{{}}}", quoted.join(", ")))
}

/// `ipFamilyPolicy` as an error reports it: the value, or `null` when unset.
fn policy_value(spec: &ServiceSpec) -> serde_json::Value {
    spec.ip_family_policy.clone().map_or(serde_json::Value::Null, serde_json::Value::String)
}

/// `ValidateServiceUpdate`'s own rules: a service may gain a secondary cluster IP and family
/// (upgrade) or drop it with `ipFamilyPolicy: SingleStack` (downgrade), but never change the
/// primary one, unless it moves to, from or stays ExternalName, or stays headless.
pub fn validate_update(old: &Service, new: &Service) -> ErrorList {
    let (o, n) = (old.spec.clone().unwrap_or_default(), new.spec.clone().unwrap_or_default());
    let mut errs = validate_upgrade_downgrade_cluster_ips(&o, &n);
    errs.extend(validate_upgrade_downgrade_families(&o, &n));
    errs
}

/// `validateUpgradeDowngradeClusterIPs`.
fn validate_upgrade_downgrade_cluster_ips(old: &ServiceSpec, new: &ServiceSpec) -> ErrorList {
    if type_of(old) == "ExternalName" || type_of(new) == "ExternalName" || (headless_ips(old) && headless_ips(new)) {
        return Vec::new();
    }
    let (old_ips, new_ips) = (old.cluster_ips.clone().unwrap_or_default(), new.cluster_ips.clone().unwrap_or_default());
    let ips_path = Path::new("spec").child("clusterIPs");
    let value = || match &new.cluster_ips {
        Some(ips) => go_strings(ips),
        None => BadValue::Go("[]string(nil)".into()),
    };
    let mut errs = Vec::new();
    let primary_changed = !old_ips.is_empty() && !new_ips.is_empty() && old_ips[0] != new_ips[0];
    match old_ips.len().cmp(&new_ips.len()) {
        std::cmp::Ordering::Equal => {
            for (i, ip) in old_ips.iter().enumerate() {
                if new_ips[i] != *ip {
                    errs.push(FieldError::invalid_go(&ips_path.index(i), value(), "may not change once set"));
                }
            }
        }
        // Downgrade: the secondary released, only with SingleStack.
        std::cmp::Ordering::Greater => {
            if new_ips.is_empty() {
                errs.push(FieldError::invalid_go(&ips_path.index(0), value(), "primary clusterIP can not be unset"));
            }
            if primary_changed {
                errs.push(FieldError::invalid_go(&ips_path.index(0), value(), "may not change once set"));
            }
            if new_ips.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
                let detail = "must be set to 'SingleStack' when releasing the secondary clusterIP";
                errs.push(FieldError::invalid(&Path::new("spec").child("ipFamilyPolicy"), policy_value(new), detail));
            }
        }
        // Upgrade: whether the policy allows it is the create-time rules' to say.
        std::cmp::Ordering::Less => {
            if primary_changed {
                errs.push(FieldError::invalid_go(&ips_path.index(0), value(), "may not change once set"));
            }
        }
    }
    errs
}

/// `validateUpgradeDowngradeIPFamilies`, with upstream's values (the cluster IPs, in places).
fn validate_upgrade_downgrade_families(old: &ServiceSpec, new: &ServiceSpec) -> ErrorList {
    if type_of(old) == "ExternalName" || type_of(new) == "ExternalName" {
        return Vec::new();
    }
    // Headless services may change families, and so may a service becoming or ceasing to be one.
    if headless_ips(old) || headless_ips(new) {
        return Vec::new();
    }
    let (old_f, new_f) = (old.ip_families.clone().unwrap_or_default(), new.ip_families.clone().unwrap_or_default());
    let new_ips = new.cluster_ips.clone().unwrap_or_default();
    let path = Path::new("spec").child("ipFamilies").index(0);
    let primary_changed = !old_f.is_empty() && !new_f.is_empty() && old_f[0] != new_f[0];
    let mut errs = Vec::new();
    match old_f.len().cmp(&new_f.len()) {
        std::cmp::Ordering::Equal => {
            for (i, f) in old_f.iter().enumerate() {
                if new_f[i] != *f {
                    errs.push(FieldError::invalid_go(&path, go_families(&new_f), "may not change once set"));
                }
            }
        }
        std::cmp::Ordering::Greater => {
            if new_ips.is_empty() {
                errs.push(FieldError::invalid_go(&path, go_families(&new_f), "primary ipFamily can not be unset"));
            }
            if primary_changed {
                errs.push(FieldError::invalid_go(&path, go_strings(&new_ips), "may not change once set"));
            }
            if new_f.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
                let detail = "must be set to 'SingleStack' when releasing the secondary ipFamily";
                errs.push(FieldError::invalid(&Path::new("spec").child("ipFamilyPolicy"), policy_value(new), detail));
            }
        }
        std::cmp::Ordering::Less => {
            if primary_changed {
                errs.push(FieldError::invalid_go(&path, go_strings(&new_ips), "may not change once set"));
            }
        }
    }
    errs
}
