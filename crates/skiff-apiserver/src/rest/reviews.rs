//! Answers to the review kinds (`skiff_core::kinds::review`): created, decided on the spot by the
//! same authorizer and authenticators every request goes through, returned with their status,
//! never stored. So `kubectl auth can-i [--list] [--as]` and `kubectl auth whoami` work.

use super::Call;
use crate::http::{self, Failure};
use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::authorization::v1::{NonResourceRule, ResourceRule};
use serde_json::{Value, json};
use skiff_core::ApiError;
use skiff_core::auth::{Attributes, RequestInfo, UserInfo};
use skiff_core::field::{FieldError, Path};
use skiff_core::kinds::review::Question;

/// Answer the review `obj` (decoded, of `call.kind`) asked in `namespace`.
pub(super) async fn answer(
    call: &Call<'_>,
    question: Question,
    namespace: &str,
    mut obj: Value,
) -> Result<Response, Failure> {
    let info = call.kind.info();
    let name = skiff_core::meta::name(&obj).to_string();
    if question == Question::LocalSubjectAccess {
        let asked = obj.pointer("/spec/resourceAttributes/namespace").and_then(Value::as_str).unwrap_or_default();
        if !asked.is_empty() && asked != namespace {
            let path = Path::new("spec").child("resourceAttributes").child("namespace");
            return Err(info
                .invalid(&name, vec![FieldError::invalid(&path, asked, "must match metadata.namespace")])
                .into());
        }
        if let Some(attrs) = obj.pointer_mut("/spec/resourceAttributes").and_then(Value::as_object_mut) {
            attrs.insert("namespace".into(), json!(namespace));
        }
    }
    let errs = call.kind.validate(&obj);
    if !errs.is_empty() {
        return Err(info.invalid(&name, errs).into());
    }
    let requester = call.opts.user.clone().ok_or(ApiError::Unauthorized)?;
    let status = match question {
        Question::SelfSubjectAccess => access(call, &requester, &obj),
        Question::SubjectAccess | Question::LocalSubjectAccess => access(call, &subject(&obj), &obj),
        Question::SelfSubjectRules => rules(call, &requester, &obj),
        Question::SelfSubject => json!({"userInfo": user_info(&requester)}),
        Question::Token => token(call, &obj).await,
    };
    obj["status"] = status;
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        md.insert("creationTimestamp".into(), Value::Null);
    }
    Ok(http::json(StatusCode::CREATED, &obj, &[]))
}

/// The user a SubjectAccessReview asks about.
fn subject(obj: &Value) -> UserInfo {
    let spec = obj.get("spec").cloned().unwrap_or_default();
    let text = |f: &str| spec.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
    UserInfo {
        name: text("user"),
        uid: text("uid"),
        groups: serde_json::from_value(spec.get("groups").cloned().unwrap_or_default()).unwrap_or_default(),
        extra: serde_json::from_value(spec.get("extra").cloned().unwrap_or_default()).unwrap_or_default(),
    }
}

/// `{username, uid, groups, extra}` as the APIs spell a user.
fn user_info(user: &UserInfo) -> Value {
    let mut v = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        v["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        v["extra"] = json!(user.extra);
    }
    v
}

/// Whether `user` may do what the review's attributes say: `{allowed, reason}`.
fn access(call: &Call<'_>, user: &UserInfo, obj: &Value) -> Value {
    let request = match (obj.pointer("/spec/resourceAttributes"), obj.pointer("/spec/nonResourceAttributes")) {
        (Some(r), _) if !r.is_null() => {
            let text = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
            RequestInfo {
                is_resource_request: true,
                verb: text("verb"),
                api_group: text("group"),
                api_version: text("version"),
                resource: text("resource"),
                subresource: text("subresource"),
                namespace: text("namespace"),
                name: text("name"),
                field_selector: field_selector(r.get("fieldSelector")),
                ..Default::default()
            }
        }
        (_, Some(n)) => {
            let text = |f: &str| n.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
            RequestInfo { is_resource_request: false, verb: text("verb"), path: text("path"), ..Default::default() }
        }
        _ => RequestInfo::default(),
    };
    let verdict = call.state.authorization.authorize(&Attributes { user: user.clone(), request });
    let mut status = json!({"allowed": verdict.allowed()});
    if !verdict.reason.is_empty() {
        status["reason"] = json!(verdict.reason);
    }
    status
}

/// A review's `fieldSelector` as the selector string a request would carry: `rawSelector`, or
/// its requirements of one value each (`In` is `=`, `NotIn` is `!=`); what cannot be read is no
/// selector, which grants nothing a selector would.
fn field_selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector.filter(|s| !s.is_null()) else { return String::new() };
    if let Some(raw) = selector.get("rawSelector").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        return raw.to_string();
    }
    let requirements = selector.get("requirements").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let mut terms = Vec::new();
    for r in requirements {
        let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
        let values = r.get("values").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let op = match r.get("operator").and_then(Value::as_str) {
            Some("In") => "=",
            Some("NotIn") => "!=",
            _ => return String::new(),
        };
        match values {
            [one] => terms.push(format!("{key}{op}{}", one.as_str().unwrap_or_default())),
            _ => return String::new(),
        }
    }
    terms.join(",")
}

/// What `user` may do in the review's namespace: upstream's `SelfSubjectRulesReview` status.
fn rules(call: &Call<'_>, user: &UserInfo, obj: &Value) -> Value {
    let namespace = obj.pointer("/spec/namespace").and_then(Value::as_str).unwrap_or_default();
    let review = call.state.authorization.rules_for(user, namespace);
    let resource_rules: Vec<ResourceRule> = review
        .resource_rules
        .into_iter()
        .map(|r| ResourceRule {
            verbs: r.verbs,
            api_groups: r.api_groups,
            resources: r.resources,
            resource_names: r.resource_names,
        })
        .collect();
    let non_resource_rules: Vec<NonResourceRule> = review
        .non_resource_rules
        .into_iter()
        .map(|r| NonResourceRule { verbs: r.verbs, non_resource_urls: r.non_resource_urls })
        .collect();
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": review.incomplete,
    });
    if let Some(e) = review.evaluation_error {
        status["evaluationError"] = json!(e);
    }
    status
}

/// Whether the review's token authenticates, for the audiences it names (the API server's
/// when none), and as whom; a refused service-account token says why, in upstream's words.
async fn token(call: &Call<'_>, obj: &Value) -> Value {
    let token = obj.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
    let audiences: Option<Vec<String>> = obj
        .pointer("/spec/audiences")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .filter(|a: &Vec<String>| !a.is_empty());
    if let Some(admin) = crate::authn::admin_token(call.state, token) {
        return json!({"authenticated": true, "user": user_info(&admin), "audiences": audiences.unwrap_or_default()});
    }
    match crate::serviceaccounts::authenticate(call.state, token, audiences.as_deref()).await {
        Ok(Some(a)) => json!({"authenticated": true, "user": user_info(&a.user), "audiences": a.audiences}),
        Ok(None) => json!({"authenticated": false, "error": "invalid bearer token"}),
        Err(e) => json!({"authenticated": false, "error": e.to_string()}),
    }
}
