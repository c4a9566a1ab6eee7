//! What an authorizer answers (`authorizer.Decision` and its reason).

/// One authorizer's answer (`authorizer.Decision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// Neither allowed nor denied: the next authorizer decides, and after the last, forbidden.
    NoOpinion,
}

/// A decision and its reason: audit logs carry it, and a non-empty reason of a refusal follows
/// the Forbidden message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub reason: String,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }
}
