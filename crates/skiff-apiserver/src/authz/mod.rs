//! Authorization: every request is decided before it is served, by upstream's chain
//! ([`chain`]: `system:masters`, then the `--authorization-mode` list: the Node authorizer over
//! [`node_graph`], RBAC over [`rbac_cache`]) on the request's attributes (upstream's request
//! info: verb, group, resource, subresource, namespace, name, a collection's field selector, or
//! a non-resource path). A denial is upstream's Forbidden, in its words.

pub mod chain;
pub mod node_graph;
pub mod rbac_cache;

use crate::AppState;
use crate::authn::User;
use crate::http::Failure;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use skiff_core::ApiError;
use skiff_core::auth::{Attributes, request_info};
use std::sync::Arc;

/// The attributes of `req` for `user` (upstream's 500 for a path it cannot read).
pub fn attributes(req: &Request, user: &skiff_core::auth::UserInfo) -> Result<Attributes, ApiError> {
    let raw = req.uri().query().unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let info =
        request_info(req.method().as_str(), req.uri().path(), &pairs).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(info.with_user(user.clone()))
}

pub async fn authorize(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(User(user)) = req.extensions().get::<User>().cloned() else {
        return Failure(ApiError::Unauthorized).into_response();
    };
    if state.authorization.allows_everything() {
        return next.run(req).await;
    }
    let attrs = match attributes(&req, &user) {
        Ok(a) => a,
        Err(e) => return Failure(e).into_response(),
    };
    let verdict = state.authorization.authorize(&attrs);
    crate::audit::record_decision(&req, &verdict);
    if verdict.allowed() {
        next.run(req).await
    } else {
        tracing::debug!(user = %user.name, verb = %attrs.request.verb, path = %attrs.request.path, "forbidden");
        Failure(skiff_core::auth::forbidden::forbidden(&attrs, &verdict.reason)).into_response()
    }
}
