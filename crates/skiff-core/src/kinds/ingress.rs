//! Ingresses and IngressClasses (`networking.k8s.io/v1`): HTTP routes from hosts and paths to
//! Services, and the classes naming the controller that carries them out. Defaulting,
//! validation (`ValidateIngressCreate`/`Update`, `ValidateIngressClass`) and Table columns as
//! upstream's. An Ingress's status is written by the controller serving it, through `status`.

use super::template::default_field;
use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::{meta, names};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassParametersReference,
    IngressClassSpec, IngressLoadBalancerStatus, IngressRule, IngressSpec, IngressTLS,
};
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The annotation that named an Ingress's class before `spec.ingressClassName`.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const MAX_CONTROLLER_LEN: usize = 250;
/// Sorted, as upstream's `sets.String.List()` lists them.
const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const SCOPES: &[&str] = &["Cluster", "Namespace"];
/// How many hosts the HOSTS cell lists before `+ N more...`.
const SHOWN_HOSTS: usize = 3;

pub struct Ingresses;
pub struct IngressClasses;

static INGRESS_INFO: ResourceInfo = ResourceInfo {
    group: "networking.k8s.io",
    version: "v1",
    plural: "ingresses",
    singular: "ingress",
    kind: "Ingress",
    namespaced: true,
    short_names: &["ing"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[("status", "Ingress", &["get", "patch", "update"])],
};

static CLASS_INFO: ResourceInfo = ResourceInfo {
    group: "networking.k8s.io",
    version: "v1",
    plural: "ingressclasses",
    singular: "ingressclass",
    kind: "IngressClass",
    namespaced: false,
    short_names: &[],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

static INGRESS_COLUMNS: [Column; 6] = [
    NAME_COLUMN,
    Column::new("Class", 0, "The name of the IngressClass resource that should be used for additional configuration"),
    Column::new("Hosts", 0, "Hosts that incoming requests are matched against before the ingress rule"),
    Column::new("Address", 0, "Address is a list containing ingress points for the load-balancer"),
    Column::new("Ports", 0, "Ports of TLS configurations that open"),
    AGE_COLUMN,
];

static CLASS_COLUMNS: [Column; 4] = [
    NAME_COLUMN,
    Column::new("Controller", 0, "Controller that is responsible for handling this class"),
    Column::new("Parameters", 0, "A reference to a resource with additional parameters"),
    AGE_COLUMN,
];

/// What an update may keep that a create may not (`IngressValidationOptions`): invalid values
/// an object already stored holds.
#[derive(Debug, Default, Clone, Copy)]
struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
}

/// Whether `s` is an IP address as `netutils.ParseIPSloppy` reads one: IPv4 parts may have
/// leading zeros.
fn is_ip_sloppy(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|n| n <= 255))
}

/// A host of a rule or a TLS entry: a wildcard (`*.foo.com`) or a plain DNS subdomain.
fn host_errors(path: &Path, host: &str) -> ErrorList {
    let msgs =
        if host.contains('*') { names::wildcard_dns1123_subdomain(host) } else { names::dns1123_subdomain(host) };
    names::invalid_all(path, host, msgs)
}

/// `ValidateIngressSpec`.
fn validate_spec(spec: &IngressSpec, path: &Path, opts: Options) -> ErrorList {
    let mut errs = Vec::new();
    let rules = spec.rules.as_deref().unwrap_or_default();
    if rules.is_empty() && spec.default_backend.is_none() {
        let value = match spec.rules {
            Some(_) => "[]networking.IngressRule{}",
            None => "[]networking.IngressRule(nil)",
        };
        errs.push(FieldError::invalid_go(
            path,
            BadValue::Go(value.into()),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = &spec.default_backend {
        errs.extend(validate_backend(b, &path.child("defaultBackend")));
    }
    errs.extend(validate_rules(rules, &path.child("rules"), opts));
    errs.extend(validate_tls(spec.tls.as_deref().unwrap_or_default(), &path.child("tls"), opts));
    if let Some(class) = &spec.ingress_class_name {
        errs.extend(names::invalid_all(&path.child("ingressClassName"), class, names::dns1123_subdomain(class)));
    }
    errs
}

fn validate_rules(rules: &[IngressRule], path: &Path, opts: Options) -> ErrorList {
    let mut errs = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let rp = path.index(i);
        let host = rule.host.as_deref().unwrap_or_default();
        if !host.is_empty() {
            if is_ip_sloppy(host) {
                errs.push(FieldError::invalid(&rp.child("host"), host, "must be a DNS name, not an IP address"));
            }
            errs.extend(host_errors(&rp.child("host"), host));
        }
        let wildcard = host.contains('*');
        if !wildcard || !opts.allow_invalid_wildcard_host_rule {
            errs.extend(validate_rule_value(rule.http.as_ref(), &rp));
        }
    }
    errs
}

/// `validateIngressRuleValue`: the rule's HTTP paths.
fn validate_rule_value(http: Option<&HTTPIngressRuleValue>, path: &Path) -> ErrorList {
    let Some(http) = http else { return Vec::new() };
    let paths = path.child("http").child("paths");
    let mut errs = Vec::new();
    if http.paths.is_empty() {
        errs.push(FieldError::required(&paths, ""));
    }
    for (i, p) in http.paths.iter().enumerate() {
        errs.extend(validate_http_path(p, &paths.index(i)));
    }
    errs
}

/// `validateHTTPIngressPath`. An absent `pathType` decodes as `""` here, so both get the
/// Required error upstream gives the absent one.
fn validate_http_path(p: &HTTPIngressPath, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let value = p.path.as_deref().unwrap_or_default();
    let pp = path.child("path");
    match p.path_type.as_str() {
        "" => return vec![FieldError::required(&path.child("pathType"), "pathType must be specified")],
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(&pp, value, "must be an absolute path"));
            }
            for seq in INVALID_PATH_SEQUENCES.iter().filter(|s| value.contains(*s)) {
                errs.push(FieldError::invalid(&pp, value, format!("must not contain '{seq}'")));
            }
            for suffix in INVALID_PATH_SUFFIXES.iter().filter(|s| value.ends_with(*s)) {
                errs.push(FieldError::invalid(&pp, value, format!("cannot end with '{suffix}'")));
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(&pp, value, "must be an absolute path"));
            }
        }
        other => errs.push(FieldError::not_supported(&path.child("pathType"), other, PATH_TYPES)),
    }
    errs.extend(validate_backend(&p.backend, &path.child("backend")));
    errs
}

/// `validateIngressBackend`: a Service and one of its ports, or another resource.
fn validate_backend(b: &IngressBackend, path: &Path) -> ErrorList {
    let svc = match (&b.resource, &b.service) {
        (Some(_), Some(_)) => {
            return vec![FieldError::invalid(path, "", "cannot set both resource and service backends")];
        }
        (Some(r), None) => return validate_typed_reference(r, &path.child("resource")),
        (None, None) => return vec![FieldError::invalid(path, "", "resource or service backend is required")],
        (None, Some(svc)) => svc,
    };
    let mut errs = Vec::new();
    let sp = path.child("service");
    if svc.name.is_empty() {
        errs.push(FieldError::required(&sp.child("name"), ""));
    } else {
        errs.extend(names::invalid_all(&sp.child("name"), &svc.name, names::dns1035_label(&svc.name)));
    }
    let port = svc.port.clone().unwrap_or_default();
    let name = port.name.as_deref().unwrap_or_default();
    let number = port.number.unwrap_or(0);
    match (!name.is_empty(), number != 0) {
        (true, true) => errs.push(FieldError::invalid(path, "", "cannot set both port name & port number")),
        (true, false) => {
            errs.extend(names::invalid_all(&sp.child("port").child("name"), name, names::iana_svc_name(name)))
        }
        (false, true) if !(1..=65535).contains(&number) => errs.push(FieldError::invalid(
            &sp.child("port").child("number"),
            number,
            "must be between 1 and 65535, inclusive",
        )),
        (false, true) => {}
        (false, false) => errs.push(FieldError::required(path, "port name or number is required")),
    }
    errs
}

/// The group, kind and name of a reference (`validateIngressTypedLocalObjectReference`).
fn validate_reference(api_group: Option<&str>, kind: &str, name: &str, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if let Some(g) = api_group {
        errs.extend(names::invalid_all(&path.child("apiGroup"), g, names::dns1123_subdomain(g)));
    }
    for (field, value) in [("kind", kind), ("name", name)] {
        if value.is_empty() {
            errs.push(FieldError::required(&path.child(field), ""));
        } else {
            errs.extend(names::invalid_all(&path.child(field), value, names::path_segment_name(value)));
        }
    }
    errs
}

fn validate_typed_reference(r: &TypedLocalObjectReference, path: &Path) -> ErrorList {
    validate_reference(r.api_group.as_deref(), &r.kind, &r.name, path)
}

/// `validateIngressTLS`: the hosts, and the Secret's name unless an update keeps a bad one.
fn validate_tls(tls: &[IngressTLS], path: &Path, opts: Options) -> ErrorList {
    let mut errs = Vec::new();
    for (t, entry) in tls.iter().enumerate() {
        for (i, host) in entry.hosts.iter().flatten().enumerate() {
            errs.extend(host_errors(&path.index(t).child("hosts").index(i), host));
        }
        if !opts.allow_invalid_secret_name {
            errs.extend(secret_name_errors(entry).into_iter().map(|m| {
                FieldError::invalid(
                    &path.index(t).child("secretName"),
                    entry.secret_name.as_deref().unwrap_or_default(),
                    m,
                )
            }));
        }
    }
    errs
}

/// `validateTLSSecretName`: none when unset.
fn secret_name_errors(tls: &IngressTLS) -> Vec<String> {
    match tls.secret_name.as_deref() {
        None | Some("") => Vec::new(),
        Some(name) => names::dns1123_subdomain(name),
    }
}

/// `ValidateIngressLoadBalancerStatus` (Kubernetes 1.32's, before strict IP parsing).
fn validate_load_balancer(status: &IngressLoadBalancerStatus, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    for (i, ingress) in status.ingress.iter().flatten().enumerate() {
        let ip_path = path.child("ingress").index(i);
        let ip = ingress.ip.as_deref().unwrap_or_default();
        if !ip.is_empty() && !is_ip_sloppy(ip) {
            errs.push(FieldError::invalid(&ip_path.child("ip"), ip, "must be a valid IP address"));
        }
        let hostname = ingress.hostname.as_deref().unwrap_or_default();
        if !hostname.is_empty() {
            let hp = ip_path.child("hostname");
            errs.extend(names::invalid_all(&hp, hostname, names::dns1123_subdomain(hostname)));
            if is_ip_sloppy(hostname) {
                errs.push(FieldError::invalid(&hp, hostname, "must be a DNS name, not an IP address"));
            }
        }
    }
    errs
}

/// Upstream's `formatHosts`: the first three hosts, `+ N more...` counting the rules left, `*`
/// when no rule names a host.
fn format_hosts(rules: &[IngressRule]) -> String {
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == SHOWN_HOSTS {
            more = true;
        }
        if let Some(host) = rule.host.as_deref().filter(|h| !more && !h.is_empty()) {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let shown = list.join(",");
    if more { format!("{shown} + {} more...", rules.len().saturating_sub(SHOWN_HOSTS)) } else { shown }
}

/// Upstream's `ingressLoadBalancerStatusStringer` as the server prints it (wide: not clipped):
/// each entry's IP, else its hostname, sorted and without repeats.
fn format_addresses(status: Option<&IngressLoadBalancerStatus>) -> String {
    let mut all = BTreeSet::new();
    for ingress in status.and_then(|s| s.ingress.as_ref()).into_iter().flatten() {
        let shown = [ingress.ip.as_deref(), ingress.hostname.as_deref()].into_iter().flatten().find(|a| !a.is_empty());
        all.extend(shown);
    }
    all.into_iter().collect::<Vec<_>>().join(",")
}

fn load_balancer(ing: &Ingress) -> Option<&IngressLoadBalancerStatus> {
    ing.status.as_ref().and_then(|s| s.load_balancer.as_ref())
}

impl Kind for Ingresses {
    fn info(&self) -> &'static ResourceInfo {
        &INGRESS_INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Ingress>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Ingress>(raw)
    }
    /// A new Ingress has no load balancer yet (upstream resets the status; it is written
    /// as `{"loadBalancer": {}}`).
    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({"loadBalancer": {}});
    }
    /// `ValidateIngressCreate`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let ing: Ingress = typed(obj);
        let spec = ing.spec.unwrap_or_default();
        errs.extend(validate_spec(&spec, &Path::new("spec"), Options::default()));
        if let (Some(annotation), Some(class)) =
            (meta::str_map(obj, "annotations").get(CLASS_ANNOTATION), spec.ingress_class_name.as_deref())
            && annotation != class
        {
            errs.push(FieldError::invalid(
                &Path::new("annotations").child(CLASS_ANNOTATION),
                annotation.as_str(),
                "must match `ingressClassName` when both are specified",
            ));
        }
        errs
    }
    /// `ValidateIngressUpdate`, keeping what the stored object already got away with; a changed
    /// status is checked as `ValidateIngressStatusUpdate` checks it.
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = meta::validate(new, true, false);
        let (old_ing, new_ing): (Ingress, Ingress) = (typed(old), typed(new));
        let old_spec = old_ing.spec.unwrap_or_default();
        let opts = Options {
            allow_invalid_secret_name: old_spec.tls.iter().flatten().any(|t| !secret_name_errors(t).is_empty()),
            allow_invalid_wildcard_host_rule: old_spec.rules.iter().flatten().any(|r| {
                r.host.as_deref().is_some_and(|h| h.contains('*'))
                    && !validate_rule_value(r.http.as_ref(), &Path::default()).is_empty()
            }),
        };
        errs.extend(validate_spec(&new_ing.spec.clone().unwrap_or_default(), &Path::new("spec"), opts));
        if old.get("status") != new.get("status")
            && let Some(lb) = load_balancer(&new_ing)
        {
            errs.extend(validate_load_balancer(lb, &Path::new("status").child("loadBalancer")));
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &INGRESS_COLUMNS
    }
    /// Upstream's `printIngress`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let ing: Ingress = typed(obj);
        let spec = ing.spec.clone().unwrap_or_default();
        let class = spec.ingress_class_name.clone().unwrap_or_else(|| "<none>".into());
        let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) { "80, 443" } else { "80" };
        vec![
            json!(meta::name(obj)),
            json!(class),
            json!(format_hosts(spec.rules.as_deref().unwrap_or_default())),
            json!(format_addresses(load_balancer(&ing))),
            json!(ports),
            json!(meta::age(obj, now)),
        ]
    }
}

/// `validateIngressClassParametersReference`.
fn validate_parameters(p: &IngressClassParametersReference, path: &Path) -> ErrorList {
    let mut errs = validate_reference(p.api_group.as_deref(), &p.kind, &p.name, path);
    let ns = path.child("namespace");
    match p.scope.as_deref() {
        None => errs.push(FieldError::required(&path.child("scope"), "")),
        Some(scope) if !SCOPES.contains(&scope) => {
            errs.push(FieldError::not_supported(&path.child("scope"), scope, SCOPES))
        }
        Some("Namespace") => match p.namespace.as_deref() {
            None => errs.push(FieldError::required(&ns, "`parameters.scope` is set to 'Namespace'")),
            Some(n) => errs.extend(names::invalid_all(&ns, n, names::dns1123_label(n))),
        },
        Some(_) if p.namespace.is_some() => {
            errs.push(FieldError::forbidden(&ns, "`parameters.scope` is set to 'Cluster'"))
        }
        Some(_) => {}
    }
    errs
}

/// `validateIngressClassSpec`.
fn validate_class_spec(spec: &IngressClassSpec, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let cp = path.child("controller");
    match spec.controller.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required(&cp, "")),
        controller => {
            if controller.len() > MAX_CONTROLLER_LEN {
                errs.push(FieldError::too_long(&cp, MAX_CONTROLLER_LEN));
            }
            errs.extend(names::domain_prefixed_path(&cp, controller));
        }
    }
    if let Some(p) = &spec.parameters {
        errs.extend(validate_parameters(p, &path.child("parameters")));
    }
    errs
}

impl Kind for IngressClasses {
    fn info(&self) -> &'static ResourceInfo {
        &CLASS_INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<IngressClass>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<IngressClass>(raw)
    }
    /// `SetDefaults_IngressClass`: parameters are cluster-scoped unless said otherwise.
    fn default(&self, obj: &mut Value) {
        if let Some(params) = obj.pointer_mut("/spec/parameters").filter(|p| p.is_object()) {
            default_field(params, "scope", json!("Cluster"));
        }
    }
    /// `ValidateIngressClass`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, false, false);
        let class: IngressClass = typed(obj);
        errs.extend(validate_class_spec(&class.spec.unwrap_or_default(), &Path::new("spec")));
        errs
    }
    /// `ValidateIngressClassUpdate`: the controller is fixed.
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let controller = |obj: &Value| {
            let class: IngressClass = typed(obj);
            class.spec.and_then(|s| s.controller).unwrap_or_default()
        };
        let mut errs = Vec::new();
        let new_controller = controller(new);
        if controller(old) != new_controller {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("controller"),
                new_controller,
                "field is immutable",
            ));
        }
        errs.extend(self.validate(new));
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &CLASS_COLUMNS
    }
    /// Upstream's `printIngressClass`: parameters as `Kind.group/name`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let spec = typed::<IngressClass>(obj).spec.unwrap_or_default();
        let parameters = match &spec.parameters {
            None => "<none>".to_string(),
            Some(p) => match p.api_group.as_deref() {
                Some(group) => format!("{}.{group}/{}", p.kind, p.name),
                None => format!("{}/{}", p.kind, p.name),
            },
        };
        vec![
            json!(meta::name(obj)),
            json!(spec.controller.unwrap_or_default()),
            json!(parameters),
            json!(meta::age(obj, now)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const WILDCARD: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

    fn strings(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn ingress(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn backend() -> Value {
        json!({"service": {"name": "web", "port": {"number": 80}}})
    }

    /// One rule for `host` with one path.
    fn rule(host: &str, path: Value) -> Value {
        json!({"rules": [{"host": host, "http": {"paths": [path]}}]})
    }

    fn path(path_type: &str, path: &str) -> Value {
        json!({"path": path, "pathType": path_type, "backend": backend()})
    }

    #[test]
    fn ingress_validation_as_upstream() {
        let cases: Vec<(&str, Value, Vec<String>)> = vec![
            ("a host and a prefix", rule("foo.com", path("Prefix", "/")), vec![]),
            ("a wildcard host, any path", rule("*.foo.com", path("ImplementationSpecific", "")), vec![]),
            ("a default backend alone", json!({"defaultBackend": backend()}), vec![]),
            (
                "nothing to route",
                json!({}),
                vec!["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified".into()],
            ),
            (
                "empty rules",
                json!({"rules": []}),
                vec!["spec: Invalid value: []networking.IngressRule{}: either `defaultBackend` or `rules` must be specified".into()],
            ),
            (
                "an IP address as host",
                rule("1.2.3.4", path("Exact", "/")),
                vec!["spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address".into()],
            ),
            (
                "an IPv4 address with leading zeros is one too",
                rule("010.0.0.1", path("Exact", "/")),
                vec!["spec.rules[0].host: Invalid value: \"010.0.0.1\": must be a DNS name, not an IP address".into()],
            ),
            (
                "an upper-case host",
                rule("Foo.com", path("Exact", "/")),
                vec![format!("spec.rules[0].host: Invalid value: \"Foo.com\": {SUBDOMAIN}")],
            ),
            (
                "two wildcard labels",
                rule("*.*.foo.com", path("Exact", "/")),
                vec![format!("spec.rules[0].host: Invalid value: \"*.*.foo.com\": {WILDCARD}")],
            ),
            (
                "a wildcard inside",
                rule("foo.*.com", path("Exact", "/")),
                vec![format!("spec.rules[0].host: Invalid value: \"foo.*.com\": {WILDCARD}")],
            ),
            (
                "no pathType (the backend is not looked at)",
                rule("foo.com", json!({"path": "/", "backend": {}})),
                vec!["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified".into()],
            ),
            (
                "an unknown pathType",
                rule("foo.com", path("Regex", "/.*")),
                vec!["spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"".into()],
            ),
            (
                "a relative exact path",
                rule("foo.com", path("Exact", "foo")),
                vec!["spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path".into()],
            ),
            (
                "an empty prefix",
                rule("foo.com", path("Prefix", "")),
                vec!["spec.rules[0].http.paths[0].path: Invalid value: \"\": must be an absolute path".into()],
            ),
            (
                "every bad sequence and suffix",
                rule("foo.com", path("Prefix", "/a//b/./c/../%2fd%2F/..")),
                ["must not contain '//'", "must not contain '/./'", "must not contain '/../'", "must not contain '%2f'",
                    "must not contain '%2F'", "cannot end with '/..'"]
                    .iter()
                    .map(|m| format!("spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/./c/../%2fd%2F/..\": {m}"))
                    .collect(),
            ),
            (
                "a trailing dot segment",
                rule("foo.com", path("Exact", "/a/.")),
                vec!["spec.rules[0].http.paths[0].path: Invalid value: \"/a/.\": cannot end with '/.'".into()],
            ),
            (
                "implementation-specific paths may hold anything absolute",
                rule("foo.com", path("ImplementationSpecific", "/a//b/..")),
                vec![],
            ),
            (
                "a relative implementation-specific path",
                rule("foo.com", path("ImplementationSpecific", "foo")),
                vec!["spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path".into()],
            ),
            (
                "an http rule without paths",
                json!({"rules": [{"host": "foo.com", "http": {}}]}),
                vec!["spec.rules[0].http.paths: Required value".into()],
            ),
            ("a rule without http", json!({"rules": [{"host": "foo.com"}]}), vec![]),
            (
                "both backends",
                json!({"defaultBackend": {"resource": {"kind": "Bucket", "name": "b"}, "service": {"name": "web", "port": {"number": 80}}}}),
                vec!["spec.defaultBackend: Invalid value: \"\": cannot set both resource and service backends".into()],
            ),
            (
                "no backend",
                json!({"defaultBackend": {}}),
                vec!["spec.defaultBackend: Invalid value: \"\": resource or service backend is required".into()],
            ),
            (
                "a service without name or port",
                json!({"defaultBackend": {"service": {"name": ""}}}),
                vec![
                    "spec.defaultBackend.service.name: Required value".into(),
                    "spec.defaultBackend: Required value: port name or number is required".into(),
                ],
            ),
            (
                "a bad service name and both port fields",
                json!({"defaultBackend": {"service": {"name": "Web", "port": {"name": "http", "number": 80}}}}),
                vec![
                    format!("spec.defaultBackend.service.name: Invalid value: \"Web\": {DNS1035}"),
                    "spec.defaultBackend: Invalid value: \"\": cannot set both port name & port number".into(),
                ],
            ),
            (
                "a port number out of range",
                json!({"defaultBackend": {"service": {"name": "web", "port": {"number": 70000}}}}),
                vec!["spec.defaultBackend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive".into()],
            ),
            (
                "a bad port name",
                json!({"defaultBackend": {"service": {"name": "web", "port": {"name": "HTTP"}}}}),
                vec![
                    "spec.defaultBackend.service.port.name: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
                    "spec.defaultBackend.service.port.name: Invalid value: \"HTTP\": must contain at least one letter (a-z)".into(),
                ],
            ),
            (
                "a resource backend's group, kind and name",
                json!({"defaultBackend": {"resource": {"apiGroup": "Example", "kind": "", "name": "a/b%"}}}),
                vec![
                    format!("spec.defaultBackend.resource.apiGroup: Invalid value: \"Example\": {SUBDOMAIN}"),
                    "spec.defaultBackend.resource.kind: Required value".into(),
                    "spec.defaultBackend.resource.name: Invalid value: \"a/b%\": may not contain '/'".into(),
                    "spec.defaultBackend.resource.name: Invalid value: \"a/b%\": may not contain '%'".into(),
                ],
            ),
            (
                "a resource backend named ..",
                json!({"defaultBackend": {"resource": {"kind": "Bucket", "name": ".."}}}),
                vec!["spec.defaultBackend.resource.name: Invalid value: \"..\": may not be '..'".into()],
            ),
            (
                "TLS hosts and the secret's name",
                json!({"defaultBackend": backend(), "tls": [{"hosts": ["*.foo.com", "Bad", "*.*"], "secretName": "Bad_Secret"}, {"hosts": ["foo.com"]}]}),
                vec![
                    format!("spec.tls[0].hosts[1]: Invalid value: \"Bad\": {SUBDOMAIN}"),
                    format!("spec.tls[0].hosts[2]: Invalid value: \"*.*\": {WILDCARD}"),
                    format!("spec.tls[0].secretName: Invalid value: \"Bad_Secret\": {SUBDOMAIN}"),
                ],
            ),
            (
                "the class name",
                json!({"defaultBackend": backend(), "ingressClassName": "Nginx"}),
                vec![format!("spec.ingressClassName: Invalid value: \"Nginx\": {SUBDOMAIN}")],
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(strings(Ingresses.validate(&ingress(spec))), want, "{name}");
        }
    }

    #[test]
    fn ingress_create_checks_the_class_annotation() {
        let mut obj = ingress(json!({"defaultBackend": backend(), "ingressClassName": "nginx"}));
        obj["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "traefik"});
        assert_eq!(
            strings(Ingresses.validate(&obj)),
            [
                "annotations.kubernetes.io/ingress.class: Invalid value: \"traefik\": must match `ingressClassName` when both are specified"
            ]
        );
        // Updates leave the annotation alone, as upstream's `ValidateIngressUpdate` does.
        assert!(Ingresses.validate_update(&obj, &obj).is_empty());
        obj["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "nginx"});
        assert!(Ingresses.validate(&obj).is_empty());
    }

    #[test]
    fn ingress_updates_keep_what_the_stored_object_got_away_with() {
        // A bad TLS secret name, and a wildcard rule with a bad value, stay allowed once stored.
        let old = ingress(json!({"rules": [{"host": "*.foo.com", "http": {"paths": []}}],
            "tls": [{"hosts": ["foo.com"], "secretName": "Bad_Secret"}]}));
        assert_eq!(
            strings(Ingresses.validate(&old)),
            [
                "spec.rules[0].http.paths: Required value".to_string(),
                format!("spec.tls[0].secretName: Invalid value: \"Bad_Secret\": {SUBDOMAIN}"),
            ]
        );
        assert!(Ingresses.validate_update(&old, &old).is_empty());
        // From a valid object, the same update is refused.
        let valid = ingress(rule("foo.com", path("Prefix", "/")));
        assert_eq!(strings(Ingresses.validate_update(&valid, &old)).len(), 2);
    }

    #[test]
    fn ingress_status_is_reset_on_create_kept_on_update_and_checked_when_written() {
        let mut obj = ingress(json!({"defaultBackend": backend()}));
        obj["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
        Ingresses.prepare_create(&mut obj);
        assert_eq!(obj["status"], json!({"loadBalancer": {}}));

        let mut old = obj.clone();
        old["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
        Ingresses.prepare_update(&old, &mut obj);
        assert_eq!(obj["status"], old["status"]);

        let mut new = old.clone();
        new["status"] = json!({"loadBalancer": {"ingress": [{"ip": "not-an-ip"}, {"hostname": "1.2.3.4"},
            {"ip": "010.0.0.1"}, {"hostname": "LB.example.com"}]}});
        assert_eq!(
            strings(Ingresses.validate_update(&old, &new)),
            [
                "status.loadBalancer.ingress[0].ip: Invalid value: \"not-an-ip\": must be a valid IP address".to_string(),
                "status.loadBalancer.ingress[1].hostname: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address"
                    .to_string(),
                format!("status.loadBalancer.ingress[3].hostname: Invalid value: \"LB.example.com\": {SUBDOMAIN}"),
            ]
        );
    }

    #[test]
    fn ingress_columns_as_upstream_prints_them() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().expect("time");
        let row = |spec: Value, status: Value| {
            let obj = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": spec, "status": status});
            Ingresses.cells(&obj, now)
        };
        let hosts = |hosts: &[Option<&str>]| {
            let rules: Vec<Value> = hosts.iter().map(|h| json!({"host": h})).collect();
            row(json!({"rules": rules}), json!({}))[2].clone()
        };
        let cases: Vec<(&[Option<&str>], &str)> = vec![
            (&[], "*"),
            (&[None], "*"),
            (&[Some("a.com"), None, Some("b.com")], "a.com,b.com"),
            (&[Some("a.com"), Some("b.com"), Some("c.com")], "a.com,b.com,c.com"),
            // Three hosts, then the rules left are counted, hosts or not.
            (&[Some("a.com"), None, Some("b.com"), Some("c.com"), Some("d.com")], "a.com,b.com,c.com + 2 more..."),
            (&[Some("a.com"), Some("b.com"), Some("c.com"), None], "a.com,b.com,c.com + 1 more..."),
        ];
        for (rules, want) in cases {
            assert_eq!(hosts(rules), json!(want), "{rules:?}");
        }
        assert_eq!(
            row(json!({"defaultBackend": backend()}), json!({"loadBalancer": {}})),
            [json!("web"), json!("<none>"), json!("*"), json!(""), json!("80"), json!("60s")]
        );
        let lb = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}, {"hostname": "lb.example.com"},
            {"ip": "10.0.0.2", "hostname": "ignored.example.com"}, {"ip": "10.0.0.1"}, {}]}});
        let spec =
            json!({"ingressClassName": "nginx", "rules": [{"host": "foo.com"}], "tls": [{"hosts": ["foo.com"]}]});
        assert_eq!(
            row(spec, lb)[1..5],
            [json!("nginx"), json!("foo.com"), json!("10.0.0.1,10.0.0.2,lb.example.com"), json!("80, 443")]
        );
        assert_eq!(row(json!({"tls": []}), json!({}))[4], json!("80"));
    }

    fn class(spec: Value) -> Value {
        json!({"metadata": {"name": "nginx"}, "spec": spec})
    }

    #[test]
    fn ingress_class_validation_as_upstream() {
        let long = format!("acme.io/{}", "a".repeat(250));
        let cases: Vec<(&str, Value, Vec<String>)> = vec![
            ("a controller", json!({"controller": "k8s.io/ingress-nginx"}), vec![]),
            ("no controller", json!({}), vec!["spec.controller: Required value".into()]),
            (
                "a controller without a domain",
                json!({"controller": "nginx"}),
                vec!["spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")".into()],
            ),
            (
                "a controller with an empty path",
                json!({"controller": "acme.io/"}),
                vec!["spec.controller: Invalid value: \"acme.io/\": must be a domain-prefixed path (such as \"acme.io/foo\")".into()],
            ),
            (
                "a bad domain and path",
                json!({"controller": "Acme.io/x y"}),
                vec![
                    format!("spec.controller: Invalid value: \"Acme.io\": {SUBDOMAIN}"),
                    "spec.controller: Invalid value: \"x y\": Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')".into(),
                ],
            ),
            ("a long controller", json!({"controller": long}), vec!["spec.controller: Too long: may not be more than 250 bytes".into()]),
            (
                "parameters without kind, name or scope",
                json!({"controller": "acme.io/lb", "parameters": {"kind": "", "name": ""}}),
                vec![
                    "spec.parameters.kind: Required value".into(),
                    "spec.parameters.name: Required value".into(),
                    "spec.parameters.scope: Required value".into(),
                ],
            ),
            (
                "an unknown scope",
                json!({"controller": "acme.io/lb", "parameters": {"apiGroup": "k8s.example.com", "kind": "P", "name": "p", "scope": "Global"}}),
                vec!["spec.parameters.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespace\"".into()],
            ),
            (
                "namespace scope without a namespace",
                json!({"controller": "acme.io/lb", "parameters": {"kind": "P", "name": "p", "scope": "Namespace"}}),
                vec!["spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'".into()],
            ),
            (
                "namespace scope with a bad namespace",
                json!({"controller": "acme.io/lb", "parameters": {"kind": "P", "name": "p", "scope": "Namespace", "namespace": "Bad"}}),
                vec![format!("spec.parameters.namespace: Invalid value: \"Bad\": {LABEL}")],
            ),
            (
                "namespace scope",
                json!({"controller": "acme.io/lb", "parameters": {"kind": "P", "name": "p", "scope": "Namespace", "namespace": "lb"}}),
                vec![],
            ),
            (
                "cluster scope with a namespace",
                json!({"controller": "acme.io/lb", "parameters": {"kind": "P", "name": "p", "scope": "Cluster", "namespace": "lb"}}),
                vec!["spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'".into()],
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(strings(IngressClasses.validate(&class(spec))), want, "{name}");
        }
        let namespaced =
            json!({"metadata": {"name": "nginx", "namespace": "default"}, "spec": {"controller": "acme.io/lb"}});
        assert_eq!(
            strings(IngressClasses.validate(&namespaced)),
            ["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn ingress_class_defaults_and_updates() {
        let mut obj = class(json!({"controller": "acme.io/lb", "parameters": {"kind": "P", "name": "p"}}));
        IngressClasses.default(&mut obj);
        assert_eq!(obj.pointer("/spec/parameters/scope"), Some(&json!("Cluster")));
        assert!(IngressClasses.validate(&obj).is_empty());
        let mut bare = class(json!({"controller": "acme.io/lb"}));
        IngressClasses.default(&mut bare);
        assert_eq!(bare, class(json!({"controller": "acme.io/lb"})));

        let moved = class(json!({"controller": "Other.io/lb"}));
        assert_eq!(
            strings(IngressClasses.validate_update(&obj, &moved)),
            [
                "spec.controller: Invalid value: \"Other.io/lb\": field is immutable".to_string(),
                format!("spec.controller: Invalid value: \"Other.io\": {SUBDOMAIN}"),
            ]
        );
        assert!(IngressClasses.validate_update(&obj, &obj).is_empty());
    }

    #[test]
    fn ingress_class_columns_as_upstream_prints_them() {
        let now: Timestamp = "2026-01-01T00:00:09Z".parse().expect("time");
        let row = |spec: Value| {
            let mut obj = class(spec);
            obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
            IngressClasses.cells(&obj, now)
        };
        assert_eq!(
            row(json!({"controller": "k8s.io/ingress-nginx"})),
            [json!("nginx"), json!("k8s.io/ingress-nginx"), json!("<none>"), json!("9s")]
        );
        let grouped = json!({"controller": "acme.io/lb",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb", "scope": "Cluster"}});
        assert_eq!(row(grouped)[2], json!("IngressParameters.k8s.example.com/external-lb"));
        let core = json!({"controller": "acme.io/lb", "parameters": {"kind": "ConfigMap", "name": "lb", "scope": "Namespace", "namespace": "lb"}});
        assert_eq!(row(core)[2], json!("ConfigMap/lb"));
    }

    #[test]
    fn discovery_facts() {
        let (ing, class) = (Ingresses.info(), IngressClasses.info());
        assert_eq!(
            (ing.api_version(), ing.qualified_resource()),
            ("networking.k8s.io/v1".into(), "ingresses.networking.k8s.io".into())
        );
        assert_eq!((ing.namespaced, ing.short_names), (true, &["ing"][..]));
        assert_eq!((class.namespaced, class.plural), (false, "ingressclasses"));
    }
}
