//! Query parameters of API requests, parsed and checked once.

use skiff_core::ApiError;
use skiff_core::field::{FieldError, Path};
use skiff_core::selector::{FieldSelector, LabelSelector};
use skiff_core::table::IncludeObject;

/// How unknown or duplicate fields in a request body are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

#[derive(Debug, Default)]
pub struct Query {
    pub watch: bool,
    pub resource_version: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub allow_bookmarks: bool,
    /// `resourceVersionMatch`: `NotOlderThan` or `Exact`.
    pub resource_version_match: Option<String>,
    /// `sendInitialEvents` (watch-list): the current state, then a bookmark marking its end.
    pub send_initial_events: Option<bool>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    pub force: bool,
    pub include_object: IncludeObject,
    pub grace_period: Option<i64>,
    pub propagation_policy: Option<String>,
}

pub(crate) fn bool_param(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "True" => Ok(true),
        "false" | "0" | "False" | "" => Ok(false),
        _ => Err(ApiError::BadRequest(format!("invalid boolean value for {name}: {v:?}"))),
    }
}

pub(crate) fn int_param<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ApiError> {
    v.parse().map_err(|_| ApiError::BadRequest(format!("invalid value for {name}: {v:?}: must be an integer")))
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let v = v.as_ref();
            match k.as_ref() {
                "watch" => q.watch = bool_param("watch", v)?,
                "resourceVersion" => q.resource_version = Some(v.to_string()).filter(|s| !s.is_empty()),
                // 0 is "the server's default", as upstream.
                "timeoutSeconds" => q.timeout_seconds = Some(int_param("timeoutSeconds", v)?).filter(|t| *t > 0),
                "resourceVersionMatch" => q.resource_version_match = Some(v.to_string()).filter(|s| !s.is_empty()),
                "sendInitialEvents" => q.send_initial_events = Some(bool_param("sendInitialEvents", v)?),
                "allowWatchBookmarks" => q.allow_bookmarks = bool_param("allowWatchBookmarks", v)?,
                "labelSelector" => {
                    q.labels = LabelSelector::parse(v).map_err(|e| ApiError::BadRequest(e.to_string()))?
                }
                "fieldSelector" => {
                    q.fields = FieldSelector::parse(v).map_err(|e| ApiError::BadRequest(e.to_string()))?
                }
                "limit" => q.limit = Some(int_param::<i64>("limit", v)?).filter(|n| *n > 0).map(|n| n as usize),
                "continue" => q.continue_token = Some(v.to_string()).filter(|s| !s.is_empty()),
                "dryRun" => match v {
                    "All" => q.dry_run = true,
                    "" => {}
                    other => {
                        return Err(ApiError::BadRequest(format!(
                            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                        )));
                    }
                },
                "fieldManager" => {
                    if v.len() > 128 {
                        return Err(ApiError::BadRequest(
                            "fieldManager: Too long: may not be more than 128 bytes".into(),
                        ));
                    }
                    q.field_manager = Some(v.to_string()).filter(|s| !s.is_empty())
                }
                "fieldValidation" => {
                    q.field_validation = match v {
                        "Strict" => FieldValidation::Strict,
                        "Warn" | "" => FieldValidation::Warn,
                        "Ignore" => FieldValidation::Ignore,
                        other => {
                            return Err(ApiError::BadRequest(format!(
                                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                            )));
                        }
                    }
                }
                "force" => q.force = bool_param("force", v)?,
                "includeObject" => {
                    q.include_object = IncludeObject::parse(Some(v))
                        .ok_or_else(|| ApiError::BadRequest(format!("includeObject: Unsupported value: {v:?}")))?
                }
                "gracePeriodSeconds" => q.grace_period = Some(int_param("gracePeriodSeconds", v)?),
                "propagationPolicy" => q.propagation_policy = Some(v.to_string()),
                // Accepted and ignored, as upstream ignores what it does not need.
                _ => {}
            }
        }
        q.check_watch_list()?;
        Ok(q)
    }

    /// `ValidateListOptions`' rules for `resourceVersionMatch`, `continue` and, on watches,
    /// `sendInitialEvents`: a 422 listing every broken rule.
    fn check_watch_list(&self) -> Result<(), ApiError> {
        let path = |name: &str| Path::new(name);
        let mut errors = Vec::new();
        let m = self.resource_version_match.as_deref();
        if let Some(m) = m.filter(|m| !matches!(*m, "NotOlderThan" | "Exact")) {
            let supported = ["Exact", "NotOlderThan", ""];
            errors.push(FieldError::not_supported(&path("resourceVersionMatch"), m, &supported));
        }
        if self.watch {
            let not_older = m == Some("NotOlderThan");
            match self.send_initial_events {
                Some(true) if !not_older => errors.push(FieldError::forbidden(
                    &path("resourceVersionMatch"),
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )),
                Some(true) if !self.allow_bookmarks => errors.push(FieldError::forbidden(
                    &path("allowWatchBookmarks"),
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                )),
                None if m.is_some() => errors.push(FieldError::forbidden(
                    &path("resourceVersionMatch"),
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )),
                _ => {}
            }
        } else {
            if self.send_initial_events.is_some() {
                errors.push(FieldError::forbidden(
                    &path("sendInitialEvents"),
                    "sendInitialEvents is allowed for watch only",
                ));
            }
            match (m, self.resource_version.as_deref()) {
                (Some(_), None) => errors.push(FieldError::forbidden(
                    &path("resourceVersionMatch"),
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                )),
                (Some("Exact"), Some("0")) => errors.push(FieldError::forbidden(
                    &path("resourceVersionMatch"),
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                )),
                _ => {}
            }
            if m.is_some() && self.continue_token.is_some() {
                errors.push(FieldError::forbidden(
                    &path("resourceVersionMatch"),
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ApiError::invalid("ListOptions.meta.k8s.io", "", errors)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_list_options_follow_upstream_rules() {
        let ok = Query::parse(Some(
            "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ))
        .expect("valid");
        assert_eq!(ok.send_initial_events, Some(true));
        for (query, why) in [
            ("sendInitialEvents=true", "allowed for watch only"),
            ("watch=true&sendInitialEvents=true&allowWatchBookmarks=true", "resourceVersionMatch to NotOlderThan"),
            ("watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "allowWatchBookmarks to true"),
            ("watch=true&resourceVersionMatch=NotOlderThan", "unless sendInitialEvents is provided"),
            ("resourceVersionMatch=Newest&resourceVersion=1", "supported values: \"Exact\", \"NotOlderThan\", \"\""),
            ("resourceVersionMatch=Exact", "forbidden unless resourceVersion is provided"),
            ("resourceVersionMatch=Exact&resourceVersion=0", "\"exact\" is forbidden for resourceVersion \"0\""),
            ("resourceVersionMatch=NotOlderThan&resourceVersion=5&continue=x", "forbidden when continue is provided"),
        ] {
            match Query::parse(Some(query)) {
                Err(e @ ApiError::Invalid { .. }) => {
                    let m = e.to_string();
                    assert!(m.starts_with("ListOptions.meta.k8s.io \"\" is invalid: "), "{m}");
                    assert!(m.contains(why), "{query}: {m}");
                }
                other => panic!("{query}: {other:?}"),
            }
        }
        assert!(Query::parse(Some("resourceVersionMatch=NotOlderThan&resourceVersion=0")).is_ok());
        assert_eq!(Query::parse(Some("watch=true&timeoutSeconds=0")).expect("q").timeout_seconds, None);
    }

    #[test]
    fn parses_kubectl_queries() {
        let q = Query::parse(Some(
            "allowWatchBookmarks=true&fieldSelector=metadata.name%3Dweb&resourceVersion=12&timeoutSeconds=318&watch=true",
        ))
        .expect("parse");
        assert!(q.watch && q.allow_bookmarks);
        assert_eq!(q.resource_version.as_deref(), Some("12"));
        assert_eq!(q.timeout_seconds, Some(318));
        assert_eq!(q.fields.required("metadata.name"), Some("web"));
        let q = Query::parse(Some("fieldManager=kubectl-client-side-apply&fieldValidation=Strict")).expect("parse");
        assert_eq!(q.field_validation, FieldValidation::Strict);
        assert!(Query::parse(Some("fieldValidation=Bogus")).is_err());
        assert!(Query::parse(Some("watch=maybe")).is_err());
        assert!(Query::parse(Some("labelSelector=a%20in%20b")).is_err());
    }
}
