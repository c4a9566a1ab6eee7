//! A namespace's Pod Security policy: the enforce, audit and warn level and version its
//! `pod-security.kubernetes.io/` labels set, upstream's defaults (`privileged:latest`, no
//! admission configuration) for the rest, and the field errors of labels that say nothing valid.

use super::level::{Level, LevelVersion, Version};
use crate::field::{ErrorList, FieldError, Path};
use std::collections::BTreeMap;

/// The labels' prefix; audit annotations share it.
pub const PREFIX: &str = "pod-security.kubernetes.io/";
pub const ENFORCE_LEVEL: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
pub const AUDIT_LEVEL: &str = "pod-security.kubernetes.io/audit";
pub const AUDIT_VERSION: &str = "pod-security.kubernetes.io/audit-version";
pub const WARN_LEVEL: &str = "pod-security.kubernetes.io/warn";
pub const WARN_VERSION: &str = "pod-security.kubernetes.io/warn-version";

/// What each mode checks pods against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { enforce: LevelVersion::PRIVILEGED, audit: LevelVersion::PRIVILEGED, warn: LevelVersion::PRIVILEGED }
    }
}

impl Policy {
    /// The policy `labels` set over the defaults, and an error per label that names no level
    /// or version (upstream's `PolicyToEvaluate`). A policy comes back even then: an invalid
    /// enforce level enforces `restricted` (fail closed), invalid audit and warn levels are
    /// `privileged` (fail open), an invalid version is `latest`.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> (Policy, ErrorList) {
        let mut p = Policy::default();
        let mut errs = Vec::new();
        let path = Path::new("metadata").child("labels");
        let mut invalid = |label: &str, value: &str, why: String| {
            errs.push(FieldError::invalid(&path.key(label), value, why));
        };
        let mut has_enforce_level = false;
        if let Some(v) = labels.get(ENFORCE_LEVEL) {
            p.enforce.level = match Level::parse(v) {
                Ok(level) => {
                    has_enforce_level = true;
                    level
                }
                Err(e) => {
                    invalid(ENFORCE_LEVEL, v, e.to_string());
                    Level::Restricted
                }
            };
        }
        if let Some(v) = labels.get(ENFORCE_VERSION) {
            p.enforce.version = version_or_latest(v, |e| invalid(ENFORCE_VERSION, v, e));
        }
        if let Some(v) = labels.get(AUDIT_LEVEL) {
            p.audit.level = Level::parse(v).unwrap_or_else(|e| {
                invalid(AUDIT_LEVEL, v, e.to_string());
                Level::Privileged
            });
        }
        if let Some(v) = labels.get(AUDIT_VERSION) {
            p.audit.version = version_or_latest(v, |e| invalid(AUDIT_VERSION, v, e));
        }
        let has_warn_level = labels.contains_key(WARN_LEVEL);
        if let Some(v) = labels.get(WARN_LEVEL) {
            p.warn.level = Level::parse(v).unwrap_or_else(|e| {
                invalid(WARN_LEVEL, v, e.to_string());
                Level::Privileged
            });
        }
        let has_warn_version = labels.contains_key(WARN_VERSION);
        if let Some(v) = labels.get(WARN_VERSION) {
            p.warn.version = version_or_latest(v, |e| invalid(WARN_VERSION, v, e));
        }
        // An enforce level stricter than warn's (and warn unset) warns at it too, so that clients
        // hear about workloads whose pods the namespace will refuse.
        if !has_warn_level && has_enforce_level && p.enforce.level > p.warn.level {
            p.warn.level = p.enforce.level;
            if !has_warn_version {
                p.warn.version = p.enforce.version;
            }
        }
        (p, errs)
    }

    /// Whether no mode checks anything.
    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn].iter().all(|lv| lv.level == Level::Privileged)
    }
}

fn version_or_latest(value: &str, mut on_error: impl FnMut(String)) -> Version {
    Version::parse(value).unwrap_or_else(|e| {
        on_error(e.to_string());
        Version::Latest
    })
}

/// Whether `labels` holds any Pod Security label (without one the policy is the default).
pub fn has_labels(labels: &BTreeMap<String, String>) -> bool {
    labels.keys().any(|k| k.starts_with(PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn lv(level: Level, version: Version) -> LevelVersion {
        LevelVersion::new(level, version)
    }

    #[test]
    fn no_labels_is_privileged_everywhere() {
        let (p, errs) = Policy::from_labels(&labels(&[("team", "a")]));
        assert!(errs.is_empty());
        assert!(p.fully_privileged());
        assert_eq!(p, Policy::default());
    }

    #[test]
    fn each_mode_reads_its_labels() {
        let (p, errs) = Policy::from_labels(&labels(&[
            (ENFORCE_LEVEL, "baseline"),
            (ENFORCE_VERSION, "v1.25"),
            (AUDIT_LEVEL, "restricted"),
            (WARN_LEVEL, "restricted"),
            (WARN_VERSION, "v1.30"),
        ]));
        assert!(errs.is_empty());
        assert_eq!(p.enforce, lv(Level::Baseline, Version::Minor(25)));
        assert_eq!(p.audit, lv(Level::Restricted, Version::Latest));
        assert_eq!(p.warn, lv(Level::Restricted, Version::Minor(30)));
    }

    #[test]
    fn warn_follows_a_stricter_enforce_unless_set() {
        let (p, _) = Policy::from_labels(&labels(&[(ENFORCE_LEVEL, "restricted"), (ENFORCE_VERSION, "v1.28")]));
        assert_eq!(p.warn, lv(Level::Restricted, Version::Minor(28)));
        let (p, _) = Policy::from_labels(&labels(&[(ENFORCE_LEVEL, "restricted"), (WARN_VERSION, "v1.27")]));
        assert_eq!(p.warn, lv(Level::Restricted, Version::Minor(27)));
        let (p, _) = Policy::from_labels(&labels(&[(ENFORCE_LEVEL, "restricted"), (WARN_LEVEL, "baseline")]));
        assert_eq!(p.warn, lv(Level::Baseline, Version::Latest));
        // An invalid enforce level does not carry over to warn.
        let (p, _) = Policy::from_labels(&labels(&[(ENFORCE_LEVEL, "bogus")]));
        assert_eq!(p.warn, LevelVersion::PRIVILEGED);
    }

    #[test]
    fn invalid_labels_fail_closed_for_enforce_and_open_for_the_rest() {
        let (p, errs) = Policy::from_labels(&labels(&[
            (ENFORCE_LEVEL, "bogus"),
            (ENFORCE_VERSION, "v2"),
            (AUDIT_LEVEL, "high"),
            (WARN_LEVEL, "loud"),
        ]));
        assert_eq!(p.enforce, lv(Level::Restricted, Version::Latest));
        assert_eq!(p.audit.level, Level::Privileged);
        assert_eq!(p.warn.level, Level::Privileged);
        let messages: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "bogus": must be one of privileged, baseline, restricted"#,
                r#"metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "v2": must be "latest" or "v1.x""#,
                r#"metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "high": must be one of privileged, baseline, restricted"#,
                r#"metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "loud": must be one of privileged, baseline, restricted"#,
            ]
        );
    }
}
