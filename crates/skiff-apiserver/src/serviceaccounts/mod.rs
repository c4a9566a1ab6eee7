//! Service-account tokens, as kube-apiserver issues and checks them: bound, expiring,
//! audience-scoped JWTs signed RS256 by a key the server keeps ([`key`]), with upstream's claims
//! ([`claims`]); the TokenRequest subresource that issues them ([`token_request`]); the
//! authenticator that accepts them while their account (and the pod or Secret they are bound
//! to) still exists ([`authenticate`]); and the OIDC discovery documents that let others verify
//! them ([`discovery`]).
//!
//! Why RS256: it is kube-apiserver's default (kubeadm makes an RSA `sa.key`) and the one
//! algorithm OpenID Connect requires every relying party to verify, so cloud identity
//! federation, Vault and the like accept these tokens as they accept a real cluster's.

pub mod authenticate;
pub mod claims;
pub mod discovery;
pub mod key;
pub mod token_request;

pub use authenticate::{Authenticated, TokenError, authenticate};
pub use key::KeyError;

use std::net::SocketAddr;
use std::path::Path;

/// kubeadm's `--service-account-issuer` (and so `--api-audiences`, which defaults to it).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// What issues and checks this server's service-account tokens.
pub struct Issuer {
    key: key::SigningKey,
    /// The `iss` of every token, and where OIDC discovery says it is.
    pub issuer: String,
    /// The API server's own audiences: a token must be for one of them to authenticate here;
    /// a TokenRequest naming none gets them.
    pub audiences: Vec<String>,
    /// The discovery documents, rendered once (as upstream).
    documents: discovery::Documents,
    /// Tokens whose signature held, and their claims (`authenticate::Verified`).
    verified: authenticate::Verified,
}

impl Issuer {
    /// The issuer with the key in `pki_dir` (made on first use); `external` is where clients
    /// reach this server (the JWKS URI points there).
    pub fn load_or_create(pki_dir: &Path, external: SocketAddr) -> Result<Issuer, KeyError> {
        let key = key::SigningKey::load_or_create(pki_dir)?;
        Ok(Self::with_key(key, DEFAULT_ISSUER, external))
    }

    fn with_key(key: key::SigningKey, issuer: &str, external: SocketAddr) -> Issuer {
        let documents = discovery::Documents::new(issuer, external, key.jwk());
        Issuer {
            key,
            issuer: issuer.to_string(),
            audiences: vec![issuer.to_string()],
            documents,
            verified: Default::default(),
        }
    }

    /// Whether all of `audiences` are the API server's own (what extends a kubelet's token).
    fn all_ours(&self, audiences: &[String]) -> bool {
        audiences.iter().all(|a| self.audiences.contains(a))
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fixed key for tests (generating one per test would cost seconds).
    use super::*;

    const TEST_KEY: &str = include_str!("testdata/sa.key");

    pub fn issuer() -> Issuer {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sa.key"), TEST_KEY).expect("write key");
        let key = key::SigningKey::load_or_create(dir.path()).expect("test key");
        Issuer::with_key(key, DEFAULT_ISSUER, "10.0.0.1:6443".parse().expect("address"))
    }
}
