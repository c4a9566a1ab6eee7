//! Image pull policy, as the kubelet applies it, and the event and waiting messages it writes;
//! plus one thing Kubernetes does not do: when a pull fails and the image exists locally, say so
//! and say what to change.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::time::Duration;

/// What the policy says to do for one container start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullDecision {
    /// Pull from the registry (Always, or IfNotPresent with no local image).
    Pull,
    /// Use the local image.
    UseLocal,
    /// `Never` and the image is not present: `ErrImageNeverPull`.
    NeverPullMissing,
}

/// Kubernetes' policy: `Always` pulls (the registry decides whether anything is new), `IfNotPresent`
/// pulls only a missing image, `Never` never pulls.
pub fn decide(policy: &str, present: bool) -> PullDecision {
    match (policy, present) {
        ("Never", true) | ("IfNotPresent", true) => PullDecision::UseLocal,
        ("Never", false) => PullDecision::NeverPullMissing,
        _ => PullDecision::Pull,
    }
}

pub fn pulling(image: &str) -> String {
    format!("Pulling image {image:?}")
}

/// The kubelet's Pulled event.
pub fn pulled(image: &str, took: Duration, waited: Duration, size: u64) -> String {
    format!(
        "Successfully pulled image {image:?} in {} ({} including waiting). Image size: {size} bytes.",
        go_duration(took),
        go_duration(took + waited)
    )
}

pub fn already_present(image: &str) -> String {
    format!("Container image {image:?} already present on machine")
}

pub fn never_pull(image: &str) -> String {
    format!("Container image {image:?} is not present with pull policy of Never")
}

pub fn back_off(image: &str) -> String {
    format!("Back-off pulling image {image:?}")
}

/// How a container's imagePullPolicy came to be, as far as the node can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The user wrote it.
    Explicit,
    /// The API server filled it in (from the image's tag).
    Defaulted,
    /// Either: the pod's metadata does not say.
    Unknown,
}

/// A container's pull policy and its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy<'a> {
    pub value: &'a str,
    pub origin: Origin,
}

/// A bare policy string: origin unknown.
impl<'a> From<&'a str> for Policy<'a> {
    fn from(value: &'a str) -> Self {
        Policy { value, origin: Origin::Unknown }
    }
}

impl<'a> Policy<'a> {
    /// The effective `policy` of `container` in `pod`, with where it came from. Defaulting
    /// erases the difference in the spec, so this reads what else the pod keeps:
    /// - a policy other than the image's default was written by the user;
    /// - `kubectl apply` keeps the manifest in the last-applied-configuration annotation;
    /// - server-side apply owns exactly the fields the user sent (an `Apply` entry in managedFields);
    ///   a field no manager owns was filled in by defaulting. `Update` entries (kubectl create,
    ///   controllers) own defaulted fields too, so they cannot tell.
    pub fn of(pod: &Pod, container: &str, image: &str, policy: &'a str) -> Self {
        let origin = if policy != skiff_core::kinds::default_pull_policy(image) {
            Origin::Explicit
        } else {
            last_applied(pod, container).or_else(|| managed(pod, container)).unwrap_or(Origin::Unknown)
        };
        Policy { value: policy, origin }
    }
}

/// From `kubectl.kubernetes.io/last-applied-configuration`.
fn last_applied(pod: &Pod, container: &str) -> Option<Origin> {
    let text = pod.metadata.annotations.as_ref()?.get("kubectl.kubernetes.io/last-applied-configuration")?;
    let applied: Value = serde_json::from_str(text).ok()?;
    let c = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| applied["spec"][list].as_array())
        .flatten()
        .find(|c| c["name"] == container)?;
    Some(if c.get("imagePullPolicy").is_some() { Origin::Explicit } else { Origin::Defaulted })
}

/// From managedFields: owned by an Apply → explicit; owned by nobody → defaulted.
fn managed(pod: &Pod, container: &str) -> Option<Origin> {
    let entries = pod.metadata.managed_fields.as_ref().filter(|m| !m.is_empty())?;
    let owners: Vec<&str> = entries
        .iter()
        .filter(|e| {
            e.fields_v1.as_ref().is_some_and(|f| {
                ["f:containers", "f:initContainers", "f:ephemeralContainers"]
                    .iter()
                    .any(|list| owns_policy(&f.0["f:spec"][list], container))
            })
        })
        .map(|e| e.operation.as_deref().unwrap_or_default())
        .collect();
    if owners.contains(&"Apply") {
        Some(Origin::Explicit)
    } else if owners.is_empty() {
        Some(Origin::Defaulted)
    } else {
        None
    }
}

/// Whether a fieldsV1 list holds `k:{"name":"<container>"}` with `f:imagePullPolicy`.
fn owns_policy(list: &Value, container: &str) -> bool {
    list.as_object().into_iter().flatten().any(|(key, fields)| {
        key.strip_prefix("k:")
            .and_then(|k| serde_json::from_str::<Value>(k).ok())
            .is_some_and(|k| k["name"] == container && fields.get("f:imagePullPolicy").is_some())
    })
}

/// The Failed event / ErrImagePull message: the kubelet's `Failed to pull image "X": <error>`,
/// where `error` is the registry client's containerd-style error. When the image exists locally
/// but the policy made the node pull, the message says so and names the fix (the tutorial's
/// `spring-server` case). A bare `&str` policy works too (origin unknown).
pub fn failed<'a>(image: &str, policy: impl Into<Policy<'a>>, error: &str, present_locally: bool) -> String {
    let policy = policy.into();
    let mut msg = format!("Failed to pull image {image:?}: {error}");
    if !present_locally || policy.value != "Always" {
        return msg;
    }
    let latest = skiff_core::kinds::default_pull_policy(image) == "Always";
    let origin = if latest { policy.origin } else { Origin::Explicit };
    let (why, retag) = match origin {
        Origin::Explicit => ("imagePullPolicy is set to Always", ""),
        Origin::Defaulted => (
            "imagePullPolicy is Always (the default for an image with no tag or the :latest tag)",
            ", or give the image a tag other than latest",
        ),
        Origin::Unknown => (
            "imagePullPolicy is Always (set on the container, or the default for an image with no tag or the :latest tag)",
            ", or, if imagePullPolicy is not set, give the image a tag other than latest",
        ),
    };
    // After a multi-line error (one line per registry endpoint) the note gets a line of its own.
    msg.push_str(if error.contains('\n') { "\nNote: " } else { ". Note: " });
    msg.push_str(&format!(
        "{image:?} exists in this node's local image store (built or loaded with skiff), but {why}, so the node must pull it from a registry. To run the local image, set imagePullPolicy: IfNotPresent (or Never) on the container{retag}"
    ));
    msg
}

/// Go's `time.Duration.String()` for the durations events print (`1.234s`, `512ms`, `2m3.5s`).
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return trim(format!("{:.3}", ns as f64 / 1e3)) + "µs";
    }
    if ns < 1_000_000_000 {
        return trim(format!("{:.6}", ns as f64 / 1e6)) + "ms";
    }
    let total = d.as_secs_f64();
    let (h, rem) = ((total / 3600.0).floor(), total % 3600.0);
    let (m, s) = ((rem / 60.0).floor(), rem % 60.0);
    let mut out = String::new();
    if h > 0.0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0.0 || m > 0.0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&(trim(format!("{s:.9}")) + "s"));
    out
}

fn trim(s: String) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        assert_eq!(decide("Always", true), PullDecision::Pull);
        assert_eq!(decide("Always", false), PullDecision::Pull);
        assert_eq!(decide("IfNotPresent", true), PullDecision::UseLocal);
        assert_eq!(decide("IfNotPresent", false), PullDecision::Pull);
        assert_eq!(decide("Never", true), PullDecision::UseLocal);
        assert_eq!(decide("Never", false), PullDecision::NeverPullMissing);
    }

    #[test]
    fn kubelet_wording() {
        assert_eq!(pulling("nginx"), "Pulling image \"nginx\"");
        assert_eq!(
            pulled("nginx", Duration::from_millis(1234), Duration::from_millis(1), 187_000_000),
            "Successfully pulled image \"nginx\" in 1.234s (1.235s including waiting). Image size: 187000000 bytes."
        );
        assert_eq!(never_pull("app:1"), "Container image \"app:1\" is not present with pull policy of Never");
        assert_eq!(go_duration(Duration::from_millis(512)), "512ms");
        assert_eq!(go_duration(Duration::from_secs(123)), "2m3s");
    }

    #[test]
    fn failed_pull_of_a_local_image_explains_the_fix() {
        let m = failed("spring-server", "Always", "pull access denied", true);
        assert!(
            m.starts_with("Failed to pull image \"spring-server\": pull access denied. Note: \"spring-server\" exists")
        );
        assert!(m.contains("(set on the container, or the default for an image with no tag or the :latest tag)"));
        assert!(m.contains("set imagePullPolicy: IfNotPresent (or Never) on the container, or, if imagePullPolicy"));
        assert_eq!(failed("nginx", "Always", "x", false), "Failed to pull image \"nginx\": x");

        let defaulted = Policy { value: "Always", origin: Origin::Defaulted };
        let m = failed("spring-server", defaulted, "e", true);
        assert!(m.contains("imagePullPolicy is Always (the default for an image with no tag or the :latest tag)"));
        assert!(m.ends_with("on the container, or give the image a tag other than latest"), "{m}");
        let explicit = Policy { value: "Always", origin: Origin::Explicit };
        let m = failed("spring-server:latest", explicit, "e", true);
        assert!(m.contains("but imagePullPolicy is set to Always, so") && !m.contains("default"), "{m}");
        assert!(m.ends_with("(or Never) on the container"), "{m}");
        // With a tag other than latest, Always can only have been set by the user.
        let m = failed("app:1", "Always", "e", true);
        assert!(m.contains("set to Always") && !m.contains("tag other than latest"), "{m}");
        let m = failed("app", "Always", "tried 2 endpoints:\n  a\n  b", true);
        assert!(m.contains("\n  b\nNote: \"app\" exists"), "{m}");
    }

    fn pod(yaml_like: serde_json::Value) -> Pod {
        serde_json::from_value(yaml_like).expect("pod")
    }

    #[test]
    fn where_the_policy_came_from() {
        let spec = serde_json::json!({"containers": [{"name": "app", "image": "app", "imagePullPolicy": "Always"}]});
        let origin = |p: &Pod| Policy::of(p, "app", "app", "Always").origin;
        // kubectl apply (client side): the manifest is in the annotation.
        let annotated = |manifest: serde_json::Value| {
            pod(serde_json::json!({"metadata": {"name": "p", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": manifest.to_string()}}, "spec": spec}))
        };
        let with =
            serde_json::json!({"spec": {"containers": [{"name": "app", "image": "app", "imagePullPolicy": "Always"}]}});
        let without = serde_json::json!({"spec": {"containers": [{"name": "app", "image": "app"}]}});
        assert_eq!(origin(&annotated(with)), Origin::Explicit);
        assert_eq!(origin(&annotated(without)), Origin::Defaulted);
        // Server-side apply: the Apply entry owns what the user sent.
        let owned = |op: &str, fields: serde_json::Value| {
            pod(serde_json::json!({"metadata": {"name": "p", "managedFields": [
                {"manager": "kubectl", "operation": op, "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:containers": fields}}},
                {"manager": "skiff", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "subresource": "status", "fieldsV1": {"f:status": {}}}
            ]}, "spec": spec}))
        };
        let policy = serde_json::json!({"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}}});
        let no_policy = serde_json::json!({"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}});
        assert_eq!(origin(&owned("Apply", policy.clone())), Origin::Explicit);
        assert_eq!(origin(&owned("Apply", no_policy)), Origin::Defaulted);
        // kubectl create / run: Update entries own defaulted fields as well.
        assert_eq!(origin(&owned("Update", policy)), Origin::Unknown);
        assert_eq!(origin(&pod(serde_json::json!({"metadata": {"name": "p"}, "spec": spec}))), Origin::Unknown);
        // Always on a tagged image is never a default.
        assert_eq!(Policy::of(&Pod::default(), "app", "app:1", "Always").origin, Origin::Explicit);
    }
}
