//! The audit log, as kube-apiserver writes it: an `audit.k8s.io/v1` [`policy`] decides, from
//! the authenticated user and the request's attributes, how much of each request is recorded
//! ([`checker`]); [`filter`] follows the request through the router and makes upstream's
//! [`event`]s at each stage, which a bounded queue hands to a writer thread ([`sink`]) that
//! appends JSON lines to a size-rotated file ([`rotate`]) or standard output.
//!
//! Without a policy file nothing is audited (upstream), but every response still carries its
//! `Audit-Id`.

pub mod body;
pub mod checker;
pub mod event;
pub mod filter;
pub mod policy;
pub mod rotate;
pub mod sink;

pub use filter::{Session, acting, annotate, authenticated, init, record_decision};

use policy::{Policy, PolicyError};
use sink::{Output, Sink};
use std::path::PathBuf;
use std::time::Duration;

/// `--audit-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub policy_file: Option<PathBuf>,
    /// `-` is standard output.
    pub log_path: Option<PathBuf>,
    /// Megabytes before the file is rotated (0: never).
    pub max_size_mb: u64,
    /// Rotated files kept (0: all).
    pub max_backups: usize,
    /// Days rotated files are kept (0: no limit).
    pub max_age_days: u64,
}

/// kube-apiserver's defaults.
impl Default for Options {
    fn default() -> Self {
        Options { policy_file: None, log_path: None, max_size_mb: 100, max_backups: 100, max_age_days: 366 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("opening the audit log {}: {source}", path.display())]
    Log { path: PathBuf, source: std::io::Error },
}

/// The audit of this server: its policy and where events go, if auditing is on.
pub struct Auditor {
    active: Option<(Policy, Sink)>,
    /// Every request allowed (`--authorization-mode AlwaysAllow`): the decision to record.
    always_allow: bool,
}

impl Auditor {
    /// The policy is read (and refused if malformed) whenever one is given; events are
    /// written when there is also a log.
    pub fn new(options: &Options, always_allow: bool) -> Result<Auditor, AuditError> {
        let policy = options.policy_file.as_deref().map(policy::load).transpose()?;
        let active = match (policy, &options.log_path) {
            (Some(policy), Some(path)) => Some((
                policy,
                Sink::start(output(options, path)?).map_err(|source| AuditError::Log { path: path.clone(), source })?,
            )),
            (Some(_), None) => {
                tracing::warn!("an audit policy without --audit-log-path: no events are recorded");
                None
            }
            (None, Some(_)) => {
                tracing::info!("no audit policy file provided: no events will be recorded for the log");
                None
            }
            (None, None) => None,
        };
        if let Some(path) = active.as_ref().and(options.log_path.as_ref()) {
            tracing::info!(path = %path.display(), "audit log");
        }
        Ok(Auditor { active, always_allow })
    }

    /// No audit at all (tests, and servers without a policy).
    pub fn disabled() -> Auditor {
        Auditor { active: None, always_allow: false }
    }

    fn active(&self) -> Option<&(Policy, Sink)> {
        self.active.as_ref()
    }

    /// Events sent to the log so far, and events dropped (the queue was full).
    pub fn counts(&self) -> (u64, u64) {
        self.active.as_ref().map(|(_, sink)| (sink.sent(), sink.dropped())).unwrap_or_default()
    }
}

fn output(options: &Options, path: &std::path::Path) -> Result<Output, AuditError> {
    if path.as_os_str() == "-" {
        return Ok(Output::Stdout);
    }
    let limits = rotate::Rotation {
        max_size: options.max_size_mb.saturating_mul(1024 * 1024),
        max_backups: options.max_backups,
        max_age: Duration::from_secs(options.max_age_days.saturating_mul(24 * 3600)),
    };
    rotate::RotatingFile::open(path, limits)
        .map(Output::File)
        .map_err(|source| AuditError::Log { path: path.to_path_buf(), source })
}
