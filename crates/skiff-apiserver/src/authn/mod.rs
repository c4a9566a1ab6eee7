//! Authentication: who a request comes from. A client certificate signed by the cluster CA
//! ([`cert`]: its common name is the user, its organizations the groups) or the admin bearer
//! token; no credentials at all is `system:anonymous` on the public paths and 401 elsewhere.
//! Then [`impersonate`] may act as someone else. The user rides on the request as [`User`].

pub mod cert;
pub mod impersonate;

use crate::AppState;
use crate::http::Failure;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use skiff_core::ApiError;
use skiff_core::auth::UserInfo;
use skiff_core::auth::user::{ALL_AUTHENTICATED, SYSTEM_PRIVILEGED_GROUP};
use std::sync::Arc;

/// Who the request comes from (after impersonation: who it acts as).
#[derive(Debug, Clone)]
pub struct User(pub Arc<UserInfo>);

/// Set by the listener on each request: the user and groups of the client certificate the
/// connection presented (signed by our CA: TLS verified it), if any.
#[derive(Debug, Clone)]
pub struct ClientCert(pub Option<Arc<(String, Vec<String>)>>);

/// The user the admin bearer token (`DATA_DIR/pki/token`) stands for: the admin certificate's.
pub const ADMIN: &str = "skiff-admin";

/// Paths anyone may read, as upstream's `system:public-info-viewer` allows (anonymous callers
/// get no further).
fn is_public(path: &str) -> bool {
    matches!(path, "/version" | "/healthz" | "/livez" | "/readyz")
}

pub async fn authenticate(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let identity = match req.extensions().get::<ClientCert>().and_then(|c| c.0.clone()) {
        Some(cert) => Some(cert_user(&cert)),
        None => match bearer(&req) {
            Some(token) => authenticate_token(&state, &token).await,
            None => None,
        },
    };
    let user = match identity {
        Some(user) => user,
        None if is_public(req.uri().path()) => UserInfo::anonymous(),
        None => return Failure(ApiError::Unauthorized).into_response(),
    };
    req.extensions_mut().insert(User(Arc::new(user)));
    next.run(req).await
}

/// The user a client certificate names: its CN, in its O's and `system:authenticated`.
fn cert_user(identity: &(String, Vec<String>)) -> UserInfo {
    let (name, groups) = identity;
    let mut groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    groups.push(ALL_AUTHENTICATED);
    UserInfo::new(name.clone(), &groups)
}

/// The token of an `Authorization: Bearer TOKEN` header; the scheme's case does not matter
/// (RFC 7235, as upstream reads it: the Python client sends `bearer`).
fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// The user a bearer token stands for, if it is valid: the admin token, or a service-account
/// token of this server (checked against its account and what it is bound to).
pub async fn authenticate_token(state: &AppState, token: &str) -> Option<UserInfo> {
    if let Some(admin) = admin_token(state, token) {
        return Some(admin);
    }
    match crate::serviceaccounts::authenticate(state, token, None).await {
        Ok(found) => found.map(|a| a.user),
        Err(e) => {
            tracing::debug!(error = %e, "a service-account token refused");
            None
        }
    }
}

/// The admin's user, if `token` is the admin token.
pub fn admin_token(state: &AppState, token: &str) -> Option<UserInfo> {
    constant_time_eq(token.as_bytes(), state.token.as_bytes())
        .then(|| UserInfo::new(ADMIN, &[SYSTEM_PRIVILEGED_GROUP, ALL_AUTHENTICATED]))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
