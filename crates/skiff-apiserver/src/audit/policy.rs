//! The audit policy file (`--audit-policy-file`): upstream's `audit.k8s.io/v1` Policy, decoded,
//! validated with upstream's rules and words, and turned into a [`Policy`] the checker reads.
//! Unknown fields are warned about and ignored, as upstream falls back to lenient decoding.

use serde::Deserialize;
use serde_json::Value;
use skiff_core::field::{BadValue, FieldError, Path as FieldPath, go_quote};
use std::path::{Path, PathBuf};

/// How much of a request an event records (ordered: each level records what the one before does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

const LEVELS: [&str; 4] = ["None", "Metadata", "Request", "RequestResponse"];

impl Level {
    fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "None" => Level::None,
            "Metadata" => Level::Metadata,
            "Request" => Level::Request,
            "RequestResponse" => Level::RequestResponse,
            _ => return None,
        })
    }
}

/// When in a request's life an event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

const STAGES: [Stage; 4] = [Stage::RequestReceived, Stage::ResponseStarted, Stage::ResponseComplete, Stage::Panic];

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of stages (those a rule omits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stages(u8);

impl Stages {
    pub fn contains(self, stage: Stage) -> bool {
        self.0 & stage.bit() != 0
    }

    pub fn union(self, other: Stages) -> Stages {
        Stages(self.0 | other.0)
    }
}

impl FromIterator<Stage> for Stages {
    fn from_iter<I: IntoIterator<Item = Stage>>(iter: I) -> Self {
        Stages(iter.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

/// `GroupResources`: resources of one API group (`""` the core group, `*` any), with
/// `pods/log`-style subresources and wildcards, optionally only some names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupResources {
    pub group: String,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
}

/// One rule: the first that matches a request decides its level.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub level: Level,
    pub users: Vec<String>,
    pub user_groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<GroupResources>,
    pub namespaces: Vec<String>,
    pub non_resource_urls: Vec<String>,
    /// The rule's own stages and the policy's together.
    pub omit_stages: Stages,
    pub omit_managed_fields: Option<bool>,
}

/// A loaded, valid policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub omit_stages: Stages,
    pub omit_managed_fields: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading the audit policy file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the audit policy file {}: failed decoding: {why}", path.display())]
    Decode { path: PathBuf, why: String },
    #[error("the audit policy file {}: unknown group version {api_version:?} kind {kind:?}: an audit.k8s.io/v1 Policy is expected", path.display())]
    Kind { path: PathBuf, api_version: String, kind: String },
    #[error("the audit policy file {}: {errors}", path.display())]
    Invalid { path: PathBuf, errors: String },
    #[error("the audit policy file {}: loaded illegal policy with 0 rules", path.display())]
    NoRules { path: PathBuf },
}

/// The file as written: strings where upstream validates values, so errors can name them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawPolicy {
    api_version: String,
    kind: String,
    rules: Vec<RawRule>,
    omit_stages: Vec<String>,
    omit_managed_fields: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawRule {
    level: String,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    omit_stages: Vec<String>,
    omit_managed_fields: Option<bool>,
}

/// Read, decode and validate the policy at `path`.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_path_buf(), source })?;
    parse(&text).map_err(|e| e.at(path))
}

/// What is wrong with a policy, before the file's path is known.
#[derive(Debug, PartialEq)]
enum Problem {
    Decode(String),
    Kind(String, String),
    Invalid(String),
    NoRules,
}

impl Problem {
    fn at(self, path: &Path) -> PolicyError {
        let path = path.to_path_buf();
        match self {
            Problem::Decode(why) => PolicyError::Decode { path, why },
            Problem::Kind(api_version, kind) => PolicyError::Kind { path, api_version, kind },
            Problem::Invalid(errors) => PolicyError::Invalid { path, errors },
            Problem::NoRules => PolicyError::NoRules { path },
        }
    }
}

fn parse(text: &str) -> Result<Policy, Problem> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| Problem::Decode(e.to_string()))?;
    let unknown = unknown_fields(&value);
    if !unknown.is_empty() {
        tracing::warn!(fields = %unknown.join(", "), "the audit policy has unknown fields: ignored");
    }
    let raw: RawPolicy = serde_json::from_value(value).map_err(|e| Problem::Decode(e.to_string()))?;
    if raw.api_version != "audit.k8s.io/v1" || raw.kind != "Policy" {
        return Err(Problem::Kind(raw.api_version, raw.kind));
    }
    let errors = validate(&raw);
    if !errors.is_empty() {
        return Err(Problem::Invalid(aggregate(&errors)));
    }
    if raw.rules.is_empty() {
        return Err(Problem::NoRules);
    }
    let stages = |names: &[String]| -> Stages { names.iter().filter_map(|n| stage(n)).collect() };
    let omit_stages = stages(&raw.omit_stages);
    let rules = raw
        .rules
        .into_iter()
        .map(|r| Rule {
            level: Level::parse(&r.level).unwrap_or(Level::None),
            omit_stages: stages(&r.omit_stages).union(omit_stages),
            users: r.users,
            user_groups: r.user_groups,
            verbs: r.verbs,
            resources: r.resources,
            namespaces: r.namespaces,
            non_resource_urls: r.non_resource_urls,
            omit_managed_fields: r.omit_managed_fields,
        })
        .collect();
    Ok(Policy { rules, omit_stages, omit_managed_fields: raw.omit_managed_fields })
}

fn stage(name: &str) -> Option<Stage> {
    STAGES.into_iter().find(|s| s.as_str() == name)
}

/// The field paths of `value` that the Policy type does not have (upstream's strict decoding).
fn unknown_fields(value: &Value) -> Vec<String> {
    const POLICY: &[&str] = &["apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"];
    const RULE: &[&str] = &[
        "level",
        "users",
        "userGroups",
        "verbs",
        "resources",
        "namespaces",
        "nonResourceURLs",
        "omitStages",
        "omitManagedFields",
    ];
    const GROUP_RESOURCES: &[&str] = &["group", "resources", "resourceNames"];
    let extra = |v: &Value, known: &[&str], at: &str, out: &mut Vec<String>| {
        for key in v.as_object().into_iter().flat_map(|o| o.keys()) {
            if !known.contains(&key.as_str()) {
                out.push(if at.is_empty() { key.clone() } else { format!("{at}.{key}") });
            }
        }
    };
    let mut out = Vec::new();
    extra(value, POLICY, "", &mut out);
    for (i, rule) in value.get("rules").and_then(Value::as_array).into_iter().flatten().enumerate() {
        extra(rule, RULE, &format!("rules[{i}]"), &mut out);
        for (j, gr) in rule.get("resources").and_then(Value::as_array).into_iter().flatten().enumerate() {
            extra(gr, GROUP_RESOURCES, &format!("rules[{i}].resources[{j}]"), &mut out);
        }
    }
    out
}

/// Upstream's `ValidatePolicy`: levels, stages, non-resource URLs and API groups.
fn validate(policy: &RawPolicy) -> Vec<FieldError> {
    let mut errs = omit_stages(&policy.omit_stages, &FieldPath::new("omitStages"));
    for (i, rule) in policy.rules.iter().enumerate() {
        let at = FieldPath::new("rules").index(i);
        let level = at.child("level");
        match rule.level.as_str() {
            "" => errs.push(FieldError::required(&level, "")),
            l if Level::parse(l).is_none() => errs.push(FieldError::not_supported(&level, l, &LEVELS)),
            _ => {}
        }
        errs.extend(non_resource_urls(&rule.non_resource_urls, &at.child("nonResourceURLs")));
        errs.extend(resources(&rule.resources, &at.child("resources")));
        errs.extend(omit_stages(&rule.omit_stages, &at.child("omitStages")));
        if !rule.non_resource_urls.is_empty() && (!rule.resources.is_empty() || !rule.namespaces.is_empty()) {
            errs.push(FieldError::invalid_go(
                &at.child("nonResourceURLs"),
                go_strings(&rule.non_resource_urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
    }
    errs
}

fn omit_stages(stages: &[String], at: &FieldPath) -> Vec<FieldError> {
    let allowed: Vec<&str> = STAGES.iter().map(|s| s.as_str()).collect();
    let detail = format!("allowed stages are {}", allowed.join(","));
    stages
        .iter()
        .enumerate()
        .filter(|(_, s)| stage(s).is_none())
        .map(|(i, s)| FieldError::invalid(&at.index(i), s.as_str(), detail.clone()))
        .collect()
}

fn non_resource_urls(urls: &[String], at: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, url) in urls.iter().enumerate().filter(|(_, u)| *u != "*") {
        if !url.starts_with('/') {
            errs.push(FieldError::invalid(
                &at.index(i),
                url.as_str(),
                "non-resource URL rules must begin with a '/' character",
            ));
        }
        if url.len() > 1 && url[..url.len() - 1].contains('*') {
            errs.push(FieldError::invalid(
                &at.index(i),
                url.as_str(),
                "non-resource URL wildcards '*' must be the final character of the rule",
            ));
        }
    }
    errs
}

/// Upstream names these errors `resources.group`, without the index.
fn resources(groups: &[GroupResources], at: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for gr in groups {
        if !gr.group.is_empty() && gr.group != "*" {
            let problems = skiff_core::names::dns1123_subdomain(&gr.group);
            if !problems.is_empty() {
                errs.push(FieldError::invalid(&at.child("group"), gr.group.as_str(), problems.join(",")));
            }
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errs.push(FieldError::invalid_go(
                &at.child("resourceNames"),
                go_strings(&gr.resource_names),
                "using resourceNames requires at least one resource",
            ));
        }
    }
    errs
}

/// A `[]string` as Go's `%#v` prints it.
fn go_strings(items: &[String]) -> BadValue {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    BadValue::Go(format!("[]string{{{}}}", quoted.join(", ")))
}

/// `ErrorList.ToAggregate().Error()`: one message as it is, several bracketed.
fn aggregate(errs: &[FieldError]) -> String {
    let mut messages: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !messages.contains(&m) {
            messages.push(m);
        }
    }
    match messages.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
      - group: ""
        resources: ["endpoints", "services"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "configmaps"]
    omitStages: [ResponseStarted]
  - level: Request
    nonResourceURLs: ["/api*", "/version"]
  - level: RequestResponse
    omitManagedFields: false
"#;

    #[test]
    fn a_policy_loads_with_stages_merged() {
        let p = parse(GOOD).expect("valid");
        assert_eq!(p.rules.len(), 4);
        assert_eq!(p.rules[0].level, Level::None);
        assert_eq!(p.rules[0].resources[0].resources, ["endpoints", "services"]);
        assert!(p.rules[1].omit_stages.contains(Stage::RequestReceived));
        assert!(p.rules[1].omit_stages.contains(Stage::ResponseStarted));
        assert!(!p.rules[1].omit_stages.contains(Stage::Panic));
        assert_eq!(p.rules[2].non_resource_urls, ["/api*", "/version"]);
        assert_eq!(p.rules[3].omit_managed_fields, Some(false));
    }

    fn invalid(text: &str) -> String {
        match parse(text) {
            Err(Problem::Invalid(msg)) => msg,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn bad_levels_stages_and_urls_are_named_as_upstream() {
        let head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";
        assert_eq!(
            invalid(&format!("{head}rules:\n- level: Loud\n")),
            r#"rules[0].level: Unsupported value: "Loud": supported values: "None", "Metadata", "Request", "RequestResponse""#
        );
        assert_eq!(invalid(&format!("{head}rules:\n- users: [bob]\n")), "rules[0].level: Required value");
        assert_eq!(
            invalid(&format!("{head}omitStages: [Done]\nrules:\n- level: None\n")),
            r#"omitStages[0]: Invalid value: "Done": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"#
        );
        assert_eq!(
            invalid(&format!("{head}rules:\n- level: None\n  nonResourceURLs: [healthz, '/a*b']\n")),
            "[rules[0].nonResourceURLs[0]: Invalid value: \"healthz\": non-resource URL rules must begin with a '/' character, \
             rules[0].nonResourceURLs[1]: Invalid value: \"/a*b\": non-resource URL wildcards '*' must be the final character of the rule]"
        );
        assert_eq!(
            invalid(&format!("{head}rules:\n- level: None\n  namespaces: [a]\n  nonResourceURLs: ['/x']\n")),
            r#"rules[0].nonResourceURLs: Invalid value: []string{"/x"}: rules cannot apply to both regular resources and non-resource URLs"#
        );
        assert_eq!(
            invalid(&format!("{head}rules:\n- level: None\n  resources: [{{group: ''}}, {{resourceNames: [x]}}]\n")),
            r#"rules[0].resources.resourceNames: Invalid value: []string{"x"}: using resourceNames requires at least one resource"#
        );
        let group =
            invalid(&format!("{head}rules:\n- level: None\n  resources: [{{group: rbac.authorization.k8s.io/v1}}]\n"));
        assert!(group.starts_with(r#"rules[0].resources.group: Invalid value: "rbac.authorization.k8s.io/v1": a lowercase RFC 1123 subdomain"#), "{group}");
    }

    #[test]
    fn wrong_kinds_no_rules_and_bad_types_are_refused() {
        assert_eq!(
            parse("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]\n"),
            Err(Problem::Kind("audit.k8s.io/v1beta1".into(), "Policy".into()))
        );
        assert_eq!(parse("apiVersion: audit.k8s.io/v1\nkind: Policy\n"), Err(Problem::NoRules));
        assert!(matches!(
            parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, users: bob}]\n"),
            Err(Problem::Decode(_))
        ));
        assert!(matches!(parse("rules: [\n"), Err(Problem::Decode(_))));
    }

    #[test]
    fn unknown_fields_are_found_but_tolerated() {
        let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nextra: 1\nrules:\n- level: None\n  levle: x\n  resources: [{group: '', resorces: [pods]}]\n";
        let value: Value = serde_saphyr::from_str(text).expect("yaml");
        assert_eq!(unknown_fields(&value), ["extra", "rules[0].levle", "rules[0].resources[0].resorces"]);
        assert!(parse(text).is_ok());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Everything}]\n")
            .expect("write");
        let msg = load(&path).expect_err("invalid").to_string();
        assert!(
            msg.starts_with(&format!("the audit policy file {}: rules[0].level: Unsupported value", path.display())),
            "{msg}"
        );
        let missing = load(&dir.path().join("nope.yaml")).expect_err("missing").to_string();
        assert!(missing.contains("nope.yaml"), "{missing}");
    }
}
