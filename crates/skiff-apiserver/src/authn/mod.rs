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
    let user = match identify(&state, &req) {
        Some(user) => user,
        None if is_public(req.uri().path()) => UserInfo::anonymous(),
        None => return Failure(ApiError::Unauthorized).into_response(),
    };
    req.extensions_mut().insert(User(Arc::new(user)));
    next.run(req).await
}

/// The user of the request's credentials, if it has valid ones.
fn identify(state: &AppState, req: &Request) -> Option<UserInfo> {
    if let Some(identity) = req.extensions().get::<ClientCert>().and_then(|c| c.0.clone()) {
        let (name, groups) = identity.as_ref();
        let mut groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        groups.push(ALL_AUTHENTICATED);
        return Some(UserInfo::new(name.clone(), &groups));
    }
    let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?.strip_prefix("Bearer ")?;
    authenticate_token(state, bearer.trim())
}

/// The user a bearer token stands for, if it is valid (what requests and TokenReviews ask).
pub fn authenticate_token(state: &AppState, token: &str) -> Option<UserInfo> {
    constant_time_eq(token.as_bytes(), state.token.as_bytes())
        .then(|| UserInfo::new(ADMIN, &[SYSTEM_PRIVILEGED_GROUP, ALL_AUTHENTICATED]))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
