//! Image pull policy, as the kubelet applies it, and the event and waiting messages it writes;
//! plus one thing Kubernetes does not do: when a pull fails and the image exists locally, say so
//! and say what to change.

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

/// The Failed event / ErrImagePull message. When the image exists locally but the policy made the
/// node pull, the message says so and names the fix (the tutorial's `spring-server` case).
pub fn failed(image: &str, policy: &str, error: &str, present_locally: bool) -> String {
    let mut msg = format!("Failed to pull image {image:?}: {error}");
    if present_locally && policy == "Always" {
        let tagless = !image.rsplit('/').next().unwrap_or(image).contains(':') || image.ends_with(":latest");
        let why = if tagless {
            "imagePullPolicy is Always (the default for an image with no tag or the :latest tag)"
        } else {
            "imagePullPolicy is Always"
        };
        msg.push_str(&format!(
            ". Note: {image:?} exists in this node's local image store (built or loaded with skiff), but {why}, so the node must pull it from a registry. To run the local image, set imagePullPolicy: IfNotPresent (or Never) on the container, or give the image a tag other than latest"
        ));
    }
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
        assert!(m.contains("imagePullPolicy is Always (the default for an image with no tag or the :latest tag)"));
        assert!(m.contains("set imagePullPolicy: IfNotPresent (or Never)"));
        assert_eq!(failed("nginx", "Always", "x", false), "Failed to pull image \"nginx\": x");
    }
}
