//! OIDC discovery for the service-account issuer (`pkg/serviceaccount/openidmetadata.go` and
//! `pkg/routes/openidmetadata.go`): `/.well-known/openid-configuration` and `/openid/v1/jwks`,
//! rendered once, served with an hour of public caching. Who may read them is RBAC's
//! (`system:service-account-issuer-discovery`, bound to every service account by default).

use super::key::Jwk;
use crate::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

pub const CONFIG_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// The keyset's media type (RFC 7517 §8.5.1).
const JWKS_TYPE: &str = "application/jwk-set+json";
/// Upstream overrides its global `private, no-cache` for these two.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// The provider metadata kube-apiserver gives: the fields relying parties need, no more.
#[derive(Serialize)]
struct Metadata<'a> {
    issuer: &'a str,
    jwks_uri: String,
    response_types_supported: [&'a str; 1],
    subject_types_supported: [&'a str; 1],
    id_token_signing_alg_values_supported: [&'a str; 1],
}

#[derive(Serialize)]
struct KeySet<'a> {
    keys: [&'a Jwk; 1],
}

/// The two documents' bodies.
pub struct Documents {
    config: Vec<u8>,
    jwks: Vec<u8>,
}

impl Documents {
    /// The documents of `issuer` whose key is `jwk`; the JWKS URI is this server's own address
    /// (`external`), as upstream builds it when `--service-account-jwks-uri` is unset.
    pub fn new(issuer: &str, external: SocketAddr, jwk: Jwk) -> Documents {
        let metadata = Metadata {
            issuer,
            jwks_uri: format!("https://{external}{JWKS_PATH}"),
            response_types_supported: ["id_token"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["RS256"],
        };
        Documents {
            config: serde_json::to_vec(&metadata).unwrap_or_default(),
            jwks: serde_json::to_vec(&KeySet { keys: [&jwk] }).unwrap_or_default(),
        }
    }
}

fn respond(body: &[u8], content_type: &'static str) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, CACHE_CONTROL)], body.to_vec())
        .into_response()
}

/// GET `/.well-known/openid-configuration`.
pub async fn configuration(State(state): State<Arc<AppState>>) -> Response {
    respond(&state.service_accounts.documents.config, "application/json")
}

/// GET `/openid/v1/jwks`.
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    respond(&state.service_accounts.documents.jwks, JWKS_TYPE)
}

#[cfg(test)]
mod tests {
    use super::super::testing;

    #[test]
    fn documents_as_kube_apiserver_serves_them() {
        let issuer = testing::issuer();
        let config: serde_json::Value = serde_json::from_slice(&issuer.documents.config).expect("json");
        assert_eq!(
            config,
            serde_json::json!({
                "issuer": "https://kubernetes.default.svc.cluster.local",
                "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })
        );
        let jwks = String::from_utf8(issuer.documents.jwks.clone()).expect("utf8");
        let kid = &issuer.key.kid;
        assert!(
            jwks.starts_with(&format!(r#"{{"keys":[{{"use":"sig","kty":"RSA","kid":"{kid}","alg":"RS256","n":""#)),
            "{jwks}"
        );
        assert!(jwks.ends_with(r#","e":"AQAB"}]}"#), "{jwks}");
    }
}
