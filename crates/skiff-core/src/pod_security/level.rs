//! Pod Security levels and policy versions as the namespace labels spell them (`restricted`,
//! `v1.25`, `latest`), with upstream's words for values that are neither.

use std::fmt;

/// A Pod Security Standard, least strict first (the derived order is strictness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

/// A level label that names no level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of privileged, baseline, restricted")]
pub struct LevelError;

impl Level {
    pub fn parse(s: &str) -> Result<Level, LevelError> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(LevelError),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy version a namespace pins: `v1.N`, or `latest` (newer than any `v1.N`: the derived
/// order puts it last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// `v1.N`.
    Minor(u64),
    Latest,
}

/// A version label that is neither `latest` nor `v1.N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be \"latest\" or \"v1.x\"")]
pub struct VersionError;

impl Version {
    /// `latest`, or `v1.` and a minor without leading zeros that fits Go's `int` (upstream's
    /// `^v1\.([0-9]|[1-9][0-9]*)$` and `strconv.Atoi`).
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let minor = s.strip_prefix("v1.").ok_or(VersionError)?;
        let digits = !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit());
        if !digits || (minor.len() > 1 && minor.starts_with('0')) {
            return Err(VersionError);
        }
        let n: i64 = minor.parse().map_err(|_| VersionError)?;
        Ok(Version::Minor(n.unsigned_abs()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Minor(n) => write!(f, "v1.{n}"),
            Version::Latest => f.write_str("latest"),
        }
    }
}

/// A level at a version, written `restricted:latest` in upstream's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl LevelVersion {
    pub const PRIVILEGED: LevelVersion = LevelVersion { level: Level::Privileged, version: Version::Latest };

    pub fn new(level: Level, version: Version) -> Self {
        LevelVersion { level, version }
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order_by_strictness() {
        assert_eq!(Level::parse("baseline"), Ok(Level::Baseline));
        assert_eq!(
            Level::parse("Restricted").map_err(|e| e.to_string()),
            Err("must be one of privileged, baseline, restricted".into())
        );
        assert!(Level::Privileged < Level::Baseline && Level::Baseline < Level::Restricted);
    }

    #[test]
    fn versions_parse_as_upstream() {
        for (label, want) in [
            ("latest", Some(Version::Latest)),
            ("v1.0", Some(Version::Minor(0))),
            ("v1.25", Some(Version::Minor(25))),
            ("v1.999", Some(Version::Minor(999))),
            ("v1.01", None),
            ("v1.", None),
            ("v2.1", None),
            ("1.25", None),
            ("v1.-1", None),
            ("v1.99999999999999999999", None),
            ("Latest", None),
        ] {
            assert_eq!(Version::parse(label).ok(), want, "{label}");
        }
        assert_eq!(Version::parse("x").map_err(|e| e.to_string()), Err(r#"must be "latest" or "v1.x""#.into()));
        assert!(Version::Minor(1000) < Version::Latest);
    }

    #[test]
    fn level_versions_print_as_upstream() {
        assert_eq!(LevelVersion::new(Level::Restricted, Version::Latest).to_string(), "restricted:latest");
        assert_eq!(LevelVersion::new(Level::Baseline, Version::Minor(25)).to_string(), "baseline:v1.25");
    }
}
