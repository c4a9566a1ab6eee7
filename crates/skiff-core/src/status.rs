//! API errors and their `Status` objects, worded as apimachinery's `api/errors` package words them.

use crate::field::{ErrorList, FieldError};
use serde_json::{Value, json};

/// A failed API request. Every variant maps to one `Status` (code, reason, message, details).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{} \"{name}\" not found", qualified(resource, group))]
    NotFound { group: String, resource: String, name: String },
    #[error("{} \"{name}\" already exists", qualified(resource, group))]
    AlreadyExists { group: String, resource: String, name: String },
    #[error("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(resource, group))]
    Conflict { group: String, resource: String, name: String, why: String },
    #[error("{}", invalid_message(&qualified(kind, group), name, errors))]
    Invalid { group: String, kind: String, name: String, errors: ErrorList },
    #[error("{0}")]
    BadRequest(String),
    /// A 422 that is not about fields (a failed JSON patch `test`, for example).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Forbidden(String),
    /// A Forbidden about one resource (an authorizer's denial), with the resource in its details.
    #[error("{message}")]
    ForbiddenResource { group: String, resource: String, name: String, message: String },
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    MethodNotSupported(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the server could not find the requested resource")]
    NoResource,
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    RequestEntityTooLarge(String),
    #[error("{message}")]
    ApplyConflict { message: String, causes: Vec<Value> },
    #[error("{0}")]
    Timeout(String),
    /// An eviction a PodDisruptionBudget does not allow now (`budget`: why, as the cause says it).
    #[error("Cannot evict pod as it would violate the pod's disruption budget.")]
    DisruptionBudget { budget: String },
    /// No seat for the request within the wait (max-in-flight / priority and fairness).
    #[error("Too many requests, please try again later.")]
    TooManyRequests,
    /// A read or watch at a revision the store has not reached within the wait.
    #[error("Timeout: Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion { requested: u64, current: u64 },
    /// A continue token older than the compacted revision; `continue_token` resumes the list
    /// at the latest revision instead (inconsistently).
    #[error("{CONTINUE_EXPIRED}")]
    ContinueExpired { continue_token: String },
    /// A backend (a proxied pod or Service) that cannot be reached.
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

/// Upstream's words for a continue token older than the compacted revision.
pub const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter, or use the continue token in this response to retrieve the \
remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were \
created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// The optimistic-concurrency failure's words.
pub const STALE: &str = "the object has been modified; please apply your changes to the latest version and try again";

/// A resource or kind with its group, as upstream's errors name it: `leases.coordination.k8s.io`.
pub(crate) fn qualified(name: &str, group: &str) -> String {
    if group.is_empty() { name.to_string() } else { format!("{name}.{group}") }
}

/// `field.ErrorList.ToAggregate` words the message: each distinct error once, in order (the
/// causes keep every error).
fn invalid_message(kind: &str, name: &str, errors: &ErrorList) -> String {
    let mut distinct: Vec<String> = Vec::with_capacity(errors.len());
    for msg in errors.iter().map(FieldError::to_string) {
        if !distinct.contains(&msg) {
            distinct.push(msg);
        }
    }
    let agg = match distinct.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    format!("{kind} \"{name}\" is invalid: {agg}")
}

impl ApiError {
    pub fn not_found(resource: &str, name: &str) -> Self {
        ApiError::NotFound { group: String::new(), resource: resource.into(), name: name.into() }
    }
    pub fn already_exists(resource: &str, name: &str) -> Self {
        ApiError::AlreadyExists { group: String::new(), resource: resource.into(), name: name.into() }
    }
    pub fn conflict(resource: &str, name: &str, why: impl Into<String>) -> Self {
        ApiError::Conflict { group: String::new(), resource: resource.into(), name: name.into(), why: why.into() }
    }
    /// The usual optimistic-concurrency failure.
    pub fn stale(resource: &str, name: &str) -> Self {
        Self::conflict(resource, name, STALE)
    }
    pub fn invalid(kind: &str, name: &str, errors: ErrorList) -> Self {
        ApiError::Invalid { group: String::new(), kind: kind.into(), name: name.into(), errors }
    }

    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::NoResource => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(_) | ApiError::ForbiddenResource { .. } => 403,
            ApiError::Unauthorized => 401,
            ApiError::MethodNotSupported(_) => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Expired(_) => 410,
            ApiError::RequestEntityTooLarge(_) => 413,
            ApiError::Timeout(_) | ApiError::TooLargeResourceVersion { .. } => 504,
            ApiError::TooManyRequests | ApiError::DisruptionBudget { .. } => 429,
            ApiError::ContinueExpired { .. } => 410,
            ApiError::Internal(_) => 500,
            ApiError::ServiceUnavailable(_) => 503,
        }
    }

    /// The `reason` field kubectl prints in `Error from server (<reason>)`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoResource => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden(_) | ApiError::ForbiddenResource { .. } => "Forbidden",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::MethodNotSupported(_) => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Expired(_) | ApiError::ContinueExpired { .. } => "Expired",
            ApiError::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            ApiError::Timeout(_) | ApiError::TooLargeResourceVersion { .. } => "Timeout",
            ApiError::TooManyRequests | ApiError::DisruptionBudget { .. } => "TooManyRequests",
            ApiError::Internal(_) => "InternalError",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            ApiError::NotFound { group, resource, name }
            | ApiError::AlreadyExists { group, resource, name }
            | ApiError::Conflict { group, resource, name, .. } => {
                let mut d = json!({"name": name, "kind": resource});
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::Invalid { group, kind, name, errors } => {
                let causes: Vec<Value> = errors
                    .iter()
                    .map(|e| json!({"reason": e.kind.cause_reason(), "message": e.body(), "field": e.field.as_str()}))
                    .collect();
                let mut d = json!({"name": name, "kind": kind, "causes": causes});
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            // Every field is left out when empty (a path has none: `{}`).
            ApiError::ForbiddenResource { group, resource, name, .. } => {
                let mut d = json!({});
                for (key, value) in [("name", name), ("group", group), ("kind", resource)] {
                    if !value.is_empty() {
                        d[key] = json!(value);
                    }
                }
                Some(d)
            }
            ApiError::ApplyConflict { causes, .. } => Some(json!({"causes": causes})),
            ApiError::Internal(msg) => Some(json!({"causes": [{"message": msg}]})),
            ApiError::TooManyRequests => Some(json!({"retryAfterSeconds": 1})),
            ApiError::DisruptionBudget { budget } => {
                Some(json!({"causes": [{"reason": "DisruptionBudget", "message": budget}]}))
            }
            ApiError::TooLargeResourceVersion { .. } => Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            })),
            // Upstream's 404 for a path it does not serve has empty details (not none): clients
            // such as `kubectl debug` tell it from a missing object by the empty name.
            ApiError::NoResource => Some(json!({})),
            _ => None,
        }
    }

    /// The `Status` object sent as the response body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
        });
        if let Some(d) = self.details() {
            s["details"] = d;
        }
        if let ApiError::ContinueExpired { continue_token } = self {
            s["metadata"] = json!({"continue": continue_token});
        }
        s["code"] = json!(self.code());
        s
    }
}

/// A `Status` reporting success (used by deletes of collections and exec streams).
pub fn success_status(details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Path;

    #[test]
    fn not_found_status_matches_upstream() {
        let s = ApiError::not_found("pods", "nope").to_status();
        assert_eq!(s["message"], "pods \"nope\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"], json!({"name": "nope", "kind": "pods"}));
        assert_eq!(ApiError::NoResource.to_status()["details"], json!({}));
    }

    #[test]
    fn invalid_aggregates_messages() {
        let p = Path::new("spec").child("containers");
        let e = ApiError::invalid(
            "Pod",
            "web",
            vec![FieldError::required(&p, ""), FieldError::required(&p.index(0).child("image"), "")],
        );
        assert_eq!(
            e.to_string(),
            "Pod \"web\" is invalid: [spec.containers: Required value, spec.containers[0].image: Required value]"
        );
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][1]["field"], "spec.containers[0].image");
        assert_eq!(s["details"]["causes"][1]["reason"], "FieldValueRequired");
    }

    #[test]
    fn invalid_message_words_each_error_once_and_causes_keep_all() {
        let p = Path::new("spec").child("ingress").index(0).child("from").index(0);
        let peer = FieldError::required(&p, "must specify a peer");
        let e = ApiError::invalid("NetworkPolicy", "np", vec![peer.clone(), peer]);
        assert_eq!(
            e.to_string(),
            "NetworkPolicy \"np\" is invalid: spec.ingress[0].from[0]: Required value: must specify a peer"
        );
        assert_eq!(e.to_status()["details"]["causes"].as_array().map(Vec::len), Some(2));
    }
}
