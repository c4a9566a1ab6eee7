//! What Pod Security admission decides of a write, as upstream's `admission` package does with
//! no exemptions configured: a pod's create (or an update that changes its images or adds
//! containers) is checked against its namespace's enforce, audit and warn levels; a workload's
//! pod template against audit and warn only (its pods meet enforce when they are created); a
//! namespace's labels must be valid, and an enforce level tightened on a namespace is checked
//! against the pods already there, as warnings.

use super::checks::{Evaluation, PodView, evaluate};
use super::level::{Level, LevelVersion};
use super::policy::Policy;
use crate::field::{ErrorList, FieldError, go_quote};
use k8s_openapi::api::core::v1::PodSpec;
use serde_json::Value;
use std::collections::BTreeMap;

/// The policy enforced on the pod (audit annotation keys are the labels' prefix and a name).
pub const ENFORCE_POLICY_ANNOTATION: &str = "pod-security.kubernetes.io/enforce-policy";
/// What the audit level finds wrong.
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";
/// Why the policy could not be read or the object decoded.
pub const ERROR_ANNOTATION: &str = "pod-security.kubernetes.io/error";

/// Upstream checks at most this many pods when a namespace's enforce level tightens.
pub const MAX_PODS_TO_CHECK: usize = 3000;

/// Admission's answer for one write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Why enforce refuses the pod (`violates PodSecurity "restricted:latest": ...`); the API
    /// server's Forbidden puts `pods "NAME" is forbidden: ` before it.
    pub denied: Option<String>,
    /// `Warning` headers for the client.
    pub warnings: Vec<String>,
    /// Annotations for the request's audit event.
    pub audit: BTreeMap<String, String>,
}

/// A pod that does not decode as one (stored objects always do).
#[derive(Debug, thiserror::Error)]
#[error("failed to decode pod: {0}")]
pub struct DecodeError(#[source] serde_json::Error);

/// A pod about to be created (`old` None) or to replace `old`, in a namespace labelled `labels`.
pub fn pod(labels: &BTreeMap<String, String>, pod: &Value, old: Option<&Value>) -> Result<Decision, DecodeError> {
    let (policy, errs) = Policy::from_labels(labels);
    if errs.is_empty() && policy.fully_privileged() {
        let audit = BTreeMap::from([(ENFORCE_POLICY_ANNOTATION.to_string(), LevelVersion::PRIVILEGED.to_string())]);
        return Ok(Decision { audit, ..Decision::default() });
    }
    if old.is_some_and(|old| !significant_update(pod, old)) {
        return Ok(Decision::default());
    }
    let (annotations, spec) = decode(pod)?;
    let view = PodView { annotations: &annotations, spec: &spec };
    Ok(decide(&policy, &errs, &view, true))
}

/// The pod template (`template`: its `metadata` and `spec`) of a workload written in a namespace
/// labelled `labels`: audit and warn only.
pub fn pod_template(labels: &BTreeMap<String, String>, template: Option<&Value>) -> Decision {
    let (policy, errs) = Policy::from_labels(labels);
    if errs.is_empty() && policy.warn.level == Level::Privileged && policy.audit.level == Level::Privileged {
        return Decision::default();
    }
    let Some(template) = template.filter(|t| !t.is_null()) else { return Decision::default() };
    match decode(template) {
        Ok((annotations, spec)) => decide(&policy, &errs, &PodView { annotations: &annotations, spec: &spec }, false),
        Err(e) => {
            let why = format!("failed to extract pod template: {e}");
            Decision { audit: BTreeMap::from([(ERROR_ANNOTATION.to_string(), why)]), ..Decision::default() }
        }
    }
}

/// Where a workload kind keeps its pod template, for the kinds upstream checks.
pub fn template_pointer(group: &str, kind: &str) -> Option<&'static str> {
    match (group, kind) {
        ("", "PodTemplate") => Some("/template"),
        ("", "ReplicationController")
        | ("apps", "ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => Some("/spec/template"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Upstream's `EvaluatePod`: enforce (when asked), then audit and warn, each level evaluated once.
fn decide(policy: &Policy, errs: &ErrorList, pod: &PodView<'_>, enforce: bool) -> Decision {
    let mut d = Decision::default();
    if !errs.is_empty() {
        d.audit.insert(ERROR_ANNOTATION.into(), format!("Failed to parse policy: {}", aggregate(errs)));
    }
    let mut seen: Vec<(LevelVersion, Evaluation)> = Vec::new();
    let mut evaluated = |lv: LevelVersion| -> Evaluation {
        if let Some((_, e)) = seen.iter().find(|(at, _)| *at == lv) {
            return e.clone();
        }
        let e = evaluate(lv, pod);
        seen.push((lv, e.clone()));
        e
    };
    let message = |lv: LevelVersion, e: &Evaluation| {
        format!("PodSecurity {}: {}", go_quote(&lv.to_string()), e.forbidden_detail())
    };
    if enforce {
        d.audit.insert(ENFORCE_POLICY_ANNOTATION.into(), policy.enforce.to_string());
        let e = evaluated(policy.enforce);
        if !e.allowed() {
            d.denied = Some(format!("violates {}", message(policy.enforce, &e)));
        }
    }
    let e = evaluated(policy.audit);
    if !e.allowed() {
        d.audit.insert(AUDIT_VIOLATIONS_ANNOTATION.into(), format!("would violate {}", message(policy.audit, &e)));
    }
    // No warnings on a request refused anyway.
    if d.denied.is_none() {
        let e = evaluated(policy.warn);
        if !e.allowed() {
            d.warnings.push(format!("would violate {}", message(policy.warn, &e)));
        }
    }
    d
}

/// Whether an update changes what the checks could judge differently: upstream re-checks a pod
/// only when its containers' images change or containers are added (the rest of a pod's spec
/// that the checks read cannot change after creation).
pub fn significant_update(new: &Value, old: &Value) -> bool {
    fn list<'a>(pod: &'a Value, field: &str) -> &'a [Value] {
        pod.get("spec").and_then(|s| s.get(field)).and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }
    fn image(c: &Value) -> &str {
        c.get("image").and_then(Value::as_str).unwrap_or_default()
    }
    for field in ["containers", "initContainers"] {
        let (n, o) = (list(new, field), list(old, field));
        if n.len() != o.len() || n.iter().zip(o).any(|(a, b)| image(a) != image(b)) {
            return true;
        }
    }
    let old_ephemeral = list(old, "ephemeralContainers");
    list(new, "ephemeralContainers").iter().any(|c| {
        match old_ephemeral.iter().find(|o| o.get("name") == c.get("name")) {
            None => true,
            Some(o) => image(c) != image(o),
        }
    })
}

/// What a namespace write asks of admission beyond valid labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceCheck {
    Done,
    /// The enforce level tightened: warn about the namespace's pods that it would refuse.
    CheckPods(LevelVersion),
}

/// A namespace created (`old` None) or updated with `labels`: invalid Pod Security labels refuse
/// it (on update, only when they changed), and a stricter enforce level asks for its pods to be
/// checked.
pub fn namespace(
    labels: &BTreeMap<String, String>,
    old: Option<&BTreeMap<String, String>>,
) -> Result<NamespaceCheck, ErrorList> {
    let (new_policy, new_errs) = Policy::from_labels(labels);
    let Some(old) = old else {
        return if new_errs.is_empty() { Ok(NamespaceCheck::Done) } else { Err(new_errs) };
    };
    let (old_policy, old_errs) = Policy::from_labels(old);
    if !new_errs.is_empty() && (old_errs.is_empty() || new_errs != old_errs) {
        return Err(new_errs);
    }
    let (new, old) = (new_policy.enforce, old_policy.enforce);
    let relaxed_or_same = new.version == old.version && new.level <= old.level;
    if new == old || new.level == Level::Privileged || relaxed_or_same {
        return Ok(NamespaceCheck::Done);
    }
    Ok(NamespaceCheck::CheckPods(new))
}

/// The warnings for `pods` of `namespace` under a new enforce level: one line per distinct
/// set of reasons, naming the first pod (by name) and how many others share it. A controller's
/// first pod is checked before other pods of the same controller, within the first
/// [`MAX_PODS_TO_CHECK`].
pub fn existing_pods(namespace: &str, enforce: LevelVersion, pods: &[Value]) -> Vec<String> {
    let prioritized = prioritize(pods);
    let total = prioritized.len();
    let checked = &prioritized[..total.min(MAX_PODS_TO_CHECK)];
    // Each distinct reason list: the lexically first pod with it, and how many pods.
    let mut found: Vec<(String, String, usize)> = Vec::new();
    for pod in checked {
        let Ok((annotations, spec)) = decode(pod) else { continue };
        let e = evaluate(enforce, &PodView { annotations: &annotations, spec: &spec });
        if e.allowed() {
            continue;
        }
        let (reasons, name) = (e.forbidden_reason(), crate::meta::name(pod));
        match found.iter_mut().find(|(r, _, _)| *r == reasons) {
            Some((_, first, count)) => {
                if name < first.as_str() {
                    *first = name.to_string();
                }
                *count += 1;
            }
            None => found.push((reasons, name.to_string(), 1)),
        }
    }
    let mut warnings = Vec::new();
    if checked.len() < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {} of {total} existing pods",
            checked.len()
        ));
    }
    if !found.is_empty() {
        warnings.push(format!(
            "existing pods in namespace {} violate the new PodSecurity enforce level {}",
            go_quote(namespace),
            go_quote(&enforce.to_string())
        ));
    }
    let mut lines: Vec<String> = (found.into_iter())
        .map(|(reasons, first, count)| match count {
            1 => format!("{first}: {reasons}"),
            2 => format!("{first} (and 1 other pod): {reasons}"),
            n => format!("{first} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    lines.sort();
    warnings.extend(lines);
    warnings
}

/// Pods without a controller and each controller's first pod, then the controllers' other pods.
fn prioritize(pods: &[Value]) -> Vec<&Value> {
    let mut first = Vec::with_capacity(pods.len());
    let mut rest = Vec::new();
    let mut controllers: Vec<&str> = Vec::new();
    for pod in pods {
        let controller = (pod.pointer("/metadata/ownerReferences").and_then(Value::as_array).into_iter().flatten())
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            .and_then(|r| r.get("uid").and_then(Value::as_str));
        match controller {
            Some(uid) if controllers.contains(&uid) => rest.push(pod),
            Some(uid) => {
                controllers.push(uid);
                first.push(pod);
            }
            None => first.push(pod),
        }
    }
    first.extend(rest);
    first
}

/// A pod's (or template's) annotations and typed spec.
fn decode(obj: &Value) -> Result<(BTreeMap<String, String>, PodSpec), DecodeError> {
    let annotations = (obj.pointer("/metadata/annotations").and_then(Value::as_object).into_iter().flatten())
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let spec = obj.get("spec").cloned().unwrap_or_else(|| serde_json::json!({}));
    let spec = serde_json::from_value(spec).map_err(DecodeError)?;
    Ok((annotations, spec))
}

/// `field.ErrorList.ToAggregate().Error()`: the distinct messages, bracketed when several.
fn aggregate(errs: &[FieldError]) -> String {
    let mut distinct: Vec<String> = Vec::new();
    for e in errs.iter().map(ToString::to_string) {
        if !distinct.contains(&e) {
            distinct.push(e);
        }
    }
    match distinct.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_security::level::Version;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (format!("pod-security.kubernetes.io/{k}"), v.to_string())).collect()
    }

    fn web(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": spec})
    }

    fn plain() -> Value {
        web(json!({"containers": [{"name": "web", "image": "nginx"}]}))
    }

    fn host_network() -> Value {
        web(json!({"hostNetwork": true, "containers": [{"name": "web", "image": "nginx"}]}))
    }

    const RESTRICTED_PLAIN: &str = concat!(
        r#"allowPrivilegeEscalation != false (container "web" must set securityContext.allowPrivilegeEscalation=false), "#,
        r#"unrestricted capabilities (container "web" must set securityContext.capabilities.drop=["ALL"]), "#,
        r#"runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true), "#,
        r#"seccompProfile (pod or container "web" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );

    #[test]
    fn unlabelled_namespaces_admit_everything() {
        let d = pod(&BTreeMap::new(), &host_network(), None).expect("decodes");
        assert_eq!(d.denied, None);
        assert!(d.warnings.is_empty());
        assert_eq!(d.audit.get(ENFORCE_POLICY_ANNOTATION).map(String::as_str), Some("privileged:latest"));
    }

    #[test]
    fn enforce_refuses_with_upstreams_message_and_no_warning() {
        let d = pod(&labels(&[("enforce", "restricted")]), &plain(), None).expect("decodes");
        assert_eq!(d.denied, Some(format!(r#"violates PodSecurity "restricted:latest": {RESTRICTED_PLAIN}"#)));
        assert!(d.warnings.is_empty());
        assert_eq!(d.audit.get(ENFORCE_POLICY_ANNOTATION).map(String::as_str), Some("restricted:latest"));
    }

    #[test]
    fn warn_and_audit_admit_with_their_words() {
        let d = pod(&labels(&[("warn", "baseline"), ("audit", "restricted")]), &host_network(), None).expect("decodes");
        assert_eq!(d.denied, None);
        assert_eq!(d.warnings, [r#"would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#]);
        let audit = d.audit.get(AUDIT_VIOLATIONS_ANNOTATION).expect("audit violations");
        assert!(
            audit.starts_with(r#"would violate PodSecurity "restricted:latest": host namespaces (hostNetwork=true), "#),
            "{audit}"
        );
        assert_eq!(d.audit.get(ENFORCE_POLICY_ANNOTATION).map(String::as_str), Some("privileged:latest"));
    }

    #[test]
    fn a_stricter_enforce_warns_workloads_at_its_level() {
        let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        let d = pod_template(&labels(&[("enforce", "restricted"), ("enforce-version", "v1.30")]), Some(&template));
        assert_eq!(d.denied, None);
        assert_eq!(d.warnings, [format!(r#"would violate PodSecurity "restricted:v1.30": {RESTRICTED_PLAIN}"#)]);
        assert_eq!(
            pod_template(&labels(&[("enforce", "restricted"), ("warn", "privileged")]), Some(&template)),
            Decision::default()
        );
        assert_eq!(pod_template(&labels(&[("warn", "restricted")]), None), Decision::default());
    }

    #[test]
    fn invalid_labels_enforce_restricted_and_say_why_in_the_audit() {
        let d = pod(&labels(&[("enforce", "bogus")]), &plain(), None).expect("decodes");
        assert_eq!(d.denied, Some(format!(r#"violates PodSecurity "restricted:latest": {RESTRICTED_PLAIN}"#)));
        assert_eq!(
            d.audit.get(ERROR_ANNOTATION).map(String::as_str),
            Some(
                r#"Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "bogus": must be one of privileged, baseline, restricted"#
            )
        );
        let two = pod(&labels(&[("enforce", "bogus"), ("warn-version", "v2")]), &plain(), None).expect("decodes");
        let error = two.audit.get(ERROR_ANNOTATION).expect("error");
        assert!(error.starts_with("Failed to parse policy: [metadata.labels[") && error.ends_with(']'), "{error}");
    }

    #[test]
    fn updates_are_checked_only_when_images_or_containers_change() {
        let enforce = labels(&[("enforce", "baseline")]);
        let old = host_network();
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"tier": "front"});
        assert_eq!(pod(&enforce, &relabelled, Some(&old)).expect("decodes"), Decision::default());
        let mut new_image = old.clone();
        new_image["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(pod(&enforce, &new_image, Some(&old)).expect("decodes").denied.is_some());
        let mut debugged = old.clone();
        debugged["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
        assert!(significant_update(&debugged, &old));
        assert!(!significant_update(&debugged, &debugged));
        let mut more = old.clone();
        more["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
        assert!(significant_update(&more, &old));
    }

    #[test]
    fn namespace_labels_must_be_valid_when_set_or_changed() {
        let errs = namespace(&labels(&[("enforce", "strict")]), None).expect_err("invalid");
        assert_eq!(
            errs[0].to_string(),
            r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
        );
        assert_eq!(namespace(&labels(&[("enforce", "restricted")]), None), Ok(NamespaceCheck::Done));
        // An invalid label the namespace already had does not block other updates.
        let invalid = labels(&[("audit", "loud")]);
        assert_eq!(namespace(&invalid, Some(&invalid)), Ok(NamespaceCheck::Done));
        assert!(namespace(&labels(&[("audit", "louder")]), Some(&invalid)).is_err());
    }

    #[test]
    fn a_tightened_enforce_level_checks_the_pods() {
        let none = BTreeMap::new();
        let restricted = labels(&[("enforce", "restricted")]);
        let baseline = labels(&[("enforce", "baseline")]);
        let lv = |level, version| LevelVersion::new(level, version);
        assert_eq!(
            namespace(&restricted, Some(&none)),
            Ok(NamespaceCheck::CheckPods(lv(Level::Restricted, Version::Latest)))
        );
        assert_eq!(
            namespace(&restricted, Some(&baseline)),
            Ok(NamespaceCheck::CheckPods(lv(Level::Restricted, Version::Latest)))
        );
        assert_eq!(namespace(&baseline, Some(&restricted)), Ok(NamespaceCheck::Done));
        assert_eq!(namespace(&restricted, Some(&restricted)), Ok(NamespaceCheck::Done));
        assert_eq!(namespace(&labels(&[("enforce", "privileged")]), Some(&restricted)), Ok(NamespaceCheck::Done));
        // A different version is checked even at a laxer level.
        let pinned = labels(&[("enforce", "baseline"), ("enforce-version", "v1.29")]);
        assert_eq!(
            namespace(&pinned, Some(&restricted)),
            Ok(NamespaceCheck::CheckPods(lv(Level::Baseline, Version::Minor(29))))
        );
    }

    fn named(name: &str, controller: Option<&str>, spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": name}, "spec": spec});
        if let Some(uid) = controller {
            p["metadata"]["ownerReferences"] =
                json!([{"uid": uid, "controller": true, "kind": "ReplicaSet", "name": "rs"}]);
        }
        p
    }

    #[test]
    fn existing_pods_are_summed_up_by_reasons() {
        let privileged = json!({"containers": [{"name": "c", "securityContext": {"privileged": true}}]});
        let host = json!({"hostPID": true, "containers": [{"name": "c"}]});
        let fine = json!({"containers": [{"name": "c"}]});
        let pods = [
            named("zeta", None, privileged.clone()),
            named("alpha", Some("u1"), privileged.clone()),
            named("beta", Some("u1"), privileged),
            named("gamma", None, host),
            named("ok", None, fine),
        ];
        let warnings = existing_pods("shop", LevelVersion::new(Level::Baseline, Version::Latest), &pods);
        assert_eq!(
            warnings,
            [
                r#"existing pods in namespace "shop" violate the new PodSecurity enforce level "baseline:latest""#,
                "alpha (and 2 other pods): privileged",
                "gamma: host namespaces",
            ]
        );
        let one_other = existing_pods("shop", LevelVersion::new(Level::Baseline, Version::Latest), &pods[..2]);
        assert_eq!(one_other[1], "alpha (and 1 other pod): privileged");
        assert!(existing_pods("shop", LevelVersion::new(Level::Baseline, Version::Latest), &pods[4..]).is_empty());
    }

    #[test]
    fn controllers_first_pods_are_checked_first() {
        let spec = json!({"containers": [{"name": "c"}]});
        let pods = [named("a", Some("u1"), spec.clone()), named("b", Some("u1"), spec.clone()), named("c", None, spec)];
        let order: Vec<&str> = prioritize(&pods).into_iter().map(crate::meta::name).collect();
        assert_eq!(order, ["a", "c", "b"]);
    }

    #[test]
    fn workload_kinds_name_their_templates() {
        assert_eq!(template_pointer("apps", "Deployment"), Some("/spec/template"));
        assert_eq!(template_pointer("batch", "CronJob"), Some("/spec/jobTemplate/spec/template"));
        assert_eq!(template_pointer("", "PodTemplate"), Some("/template"));
        assert_eq!(template_pointer("", "Pod"), None);
        assert_eq!(template_pointer("apps", "ControllerRevision"), None);
    }
}
