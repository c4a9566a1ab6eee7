//! The service-account token authenticator (`pkg/serviceaccount/jwt.go` and `claims.go`): a
//! bearer JWT of this issuer, signed by its key, for one of the audiences asked, within its
//! lifetime (a minute of leeway), whose ServiceAccount still exists with the uid it names, and
//! whose bound pod, Secret or node does too. Every check reads the store, so a token dies with
//! what it is bound to at once (upstream's informers lag a little; its 10 s token cache more).

use super::Issuer;
use super::claims::{self, Claims, ClaimsError, LEEWAY_SECONDS};
use crate::AppState;
use crate::registry::{ObjectRef, Registry};
use base64::Engine;
use serde_json::Value;
use skiff_core::ApiError;
use skiff_core::auth::UserInfo;
use skiff_core::kinds;

/// The `extra` keys a service-account user carries (`authentication/serviceaccount/util.go`).
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// A token that authenticated: who it is, and the audiences it was good for here (what a
/// TokenReview reports).
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    pub user: UserInfo,
    pub audiences: Vec<String>,
}

/// Why a token of this issuer is refused; the words are kube-apiserver's (a TokenReview's
/// `status.error`; a request just gets 401).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid signature, no keys found")]
    UnknownKey,
    #[error("go-jose/go-jose: error in cryptographic primitive")]
    Signature,
    #[error("{0}")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The account is gone (`serviceaccounts "NAME" not found`), or could not be read.
    #[error(transparent)]
    Account(ApiError),
    #[error("service account UID ({have}) does not match claim ({claim})")]
    AccountUid { have: String, claim: String },
    #[error("service account {0} has been deleted")]
    AccountDeleted(String),
    /// The pod, Secret or node it is bound to is gone or going.
    #[error("service account token has been invalidated")]
    Invalidated,
    #[error("{kind} UID ({have}) does not match service account {kind} ref claim ({claim})")]
    BoundUid { kind: &'static str, have: String, claim: String },
}

/// The user `token` authenticates as, if it is a service-account token of this server:
/// `Ok(None)` when it is not one (not a JWT, or another issuer's: other authenticators may know
/// it), an error when it is one but not valid. `audiences`: what the token must be good for
/// (a TokenReview's `spec.audiences`); `None` is the API server's own.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    audiences: Option<&[String]>,
) -> Result<Option<Authenticated>, TokenError> {
    let now = jiff::Timestamp::now().as_second();
    state.service_accounts.authenticate(&state.registry, token, audiences, now).await
}

/// Tokens whose signature this server checked, by their SHA-256, with their claims: the
/// signature (RS256, most of a request's CPU) is checked once per token, while everything that
/// can change (expiry, audiences, the account and bound objects) is still checked on every
/// request, so a token is refused the moment it would be without this. The signing key never
/// changes while the server runs. Bounded: emptied when full.
#[derive(Default)]
pub struct Verified(std::sync::Mutex<std::collections::HashMap<[u8; 32], Claims>>);

/// Tokens remembered at most.
const VERIFIED_TOKENS: usize = 4096;

impl Verified {
    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn get(&self, token: &str) -> Option<Claims> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&Self::key(token)).cloned()
    }

    fn insert(&self, token: &str, claims: &Claims) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= VERIFIED_TOKENS {
            map.clear();
        }
        map.insert(Self::key(token), claims.clone());
    }
}

/// The `iss` of a compact JWT, unverified: whether it is ours to judge (upstream's
/// `hasCorrectIssuer`).
fn unverified_issuer(token: &str) -> Option<String> {
    if token.trim_start().starts_with('{') {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(String::from)
}

/// When `obj` is being deleted, in Unix seconds.
fn deleted_at(obj: &Value) -> Option<i64> {
    let ts = obj.pointer("/metadata/deletionTimestamp")?.as_str()?;
    ts.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

fn uid(obj: &Value) -> &str {
    skiff_core::meta::uid(obj)
}

impl Issuer {
    /// [`authenticate`] at `now` (Unix seconds), reading objects from `registry`.
    pub async fn authenticate(
        &self,
        registry: &Registry,
        token: &str,
        audiences: Option<&[String]>,
        now: i64,
    ) -> Result<Option<Authenticated>, TokenError> {
        if unverified_issuer(token).as_deref() != Some(self.issuer.as_str()) {
            return Ok(None);
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else { return Ok(None) };
        if header.kid.as_ref().is_some_and(|kid| *kid != self.key.kid) {
            return Err(TokenError::UnknownKey);
        }
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims: Claims = self.key.verify(token).map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature
                    | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::Signature,
                    _ => TokenError::Malformed(e),
                })?;
                self.verified.insert(token, &claims);
                claims
            }
        };
        let wanted = audiences.unwrap_or(&self.audiences);
        let good = claims::check(&claims, &self.issuer, wanted, &self.audiences, now)?;
        let user = validate(registry, &claims, now).await?;
        Ok(Some(Authenticated { user, audiences: good }))
    }
}

/// Upstream's `validator.Validate`: what the token names must still exist, with the uids it
/// names, and not have been deleted longer ago than the leeway.
async fn validate(registry: &Registry, claims: &Claims, now: i64) -> Result<UserInfo, TokenError> {
    let k = &claims.kubernetes;
    let namespace = k.namespace.as_str();
    let gone_before = now - LEEWAY_SECONDS;
    let account_ref = ObjectRef { kind: kinds::SERVICE_ACCOUNTS, namespace, name: &k.serviceaccount.name };
    let account = registry.get(account_ref).await.map_err(TokenError::Account)?;
    if uid(&account) != k.serviceaccount.uid {
        return Err(TokenError::AccountUid { have: uid(&account).into(), claim: k.serviceaccount.uid.clone() });
    }
    if deleted_at(&account).is_some_and(|t| t < gone_before) {
        return Err(TokenError::AccountDeleted(format!("{namespace}/{}", k.serviceaccount.name)));
    }
    // A bound object: gone (or unreadable), another one of that name, or deleted a while ago.
    let check_bound = |kind: &'static str, obj: Result<Value, ApiError>, claim: &str| match obj {
        Err(_) => Err(TokenError::Invalidated),
        Ok(o) if uid(&o) != claim => Err(TokenError::BoundUid { kind, have: uid(&o).into(), claim: claim.into() }),
        Ok(o) if deleted_at(&o).is_some_and(|t| t < gone_before) => Err(TokenError::Invalidated),
        Ok(_) => Ok(()),
    };
    if let Some(secret) = &k.secret {
        let secrets = kinds::by_resource("", "v1", "secrets").ok_or(TokenError::Invalidated)?;
        let obj = registry.get(ObjectRef { kind: secrets, namespace, name: &secret.name }).await;
        check_bound("secret", obj, &secret.uid)?;
    }
    let mut user = UserInfo::service_account(namespace, &k.serviceaccount.name, &k.serviceaccount.uid);
    let mut extra = |key: &str, value: &str| {
        user.extra.insert(key.to_string(), vec![value.to_string()]);
    };
    if let Some(pod) = &k.pod {
        let obj = registry.get(ObjectRef { kind: kinds::PODS, namespace, name: &pod.name }).await;
        check_bound("pod", obj, &pod.uid)?;
        extra(POD_NAME_KEY, &pod.name);
        extra(POD_UID_KEY, &pod.uid);
    }
    if let Some(node) = &k.node {
        // A pod-bound token names its pod's node for information; a node-bound one dies with it.
        if k.pod.is_none() {
            let obj = registry.get(ObjectRef { kind: kinds::NODES, namespace: "", name: &node.name }).await;
            check_bound("node", obj, &node.uid)?;
        }
        extra(NODE_NAME_KEY, &node.name);
        if !node.uid.is_empty() {
            extra(NODE_UID_KEY, &node.uid);
        }
    }
    if !claims.jti.is_empty() {
        extra(CREDENTIAL_ID_KEY, &format!("JTI={}", claims.jti));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::super::token_request::{self, Bound};
    use super::*;
    use crate::registry::WriteOptions;
    use serde_json::json;
    use std::sync::Arc;

    async fn create(registry: &Registry, kind: &'static dyn kinds::Kind, obj: Value) -> Value {
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        registry.create(kind, &ns, obj, &WriteOptions::default()).await.expect("create")
    }

    async fn setup() -> (Registry, Issuer) {
        let registry = Registry::new(Arc::new(skiff_store::MemoryStore::new()));
        create(&registry, kinds::NAMESPACES, json!({"metadata": {"name": "shop"}})).await;
        create(&registry, kinds::SERVICE_ACCOUNTS, json!({"metadata": {"name": "app", "namespace": "shop"}})).await;
        (registry, testing::issuer())
    }

    fn now() -> i64 {
        jiff::Timestamp::now().as_second()
    }

    #[tokio::test]
    async fn a_token_authenticates_as_its_account_while_it_lives() {
        let (registry, issuer) = setup().await;
        let req = token_request::Spec { audiences: vec![], expiration_seconds: 600, bound: Bound::None };
        let (token, _) = issuer.issue(&registry, "shop", "app", req).await.expect("token");
        let auth = issuer.authenticate(&registry, &token, None, now()).await.expect("valid").expect("ours");
        assert_eq!(auth.user.name, "system:serviceaccount:shop:app");
        assert_eq!(auth.user.groups, ["system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"]);
        assert_eq!(auth.audiences, [super::super::DEFAULT_ISSUER]);
        let jti = &auth.user.extra[CREDENTIAL_ID_KEY][0];
        assert!(jti.starts_with("JTI=") && jti.len() == 40, "{jti}");
        // Its signature is checked once; everything below still refuses it at once.
        assert!(issuer.verified.get(&token).is_some());
        // Expired, after the leeway.
        let later = now() + 600 + 61;
        let err = issuer.authenticate(&registry, &token, None, later).await.expect_err("expired");
        assert_eq!(err.to_string(), "service account token has expired");
        // Another audience than the one asked.
        let vault = ["vault".to_string()];
        let err = issuer.authenticate(&registry, &token, Some(&vault), now()).await.expect_err("audience");
        assert!(err.to_string().starts_with("token audiences"), "{err}");
        // Not ours: no opinion.
        assert!(issuer.authenticate(&registry, "some-static-token", None, now()).await.expect("not ours").is_none());
        // The account deleted (and one of the same name made again): the token is dead.
        let sa = ObjectRef { kind: kinds::SERVICE_ACCOUNTS, namespace: "shop", name: "app" };
        assert!(registry.delete(sa, &Default::default(), false).await.is_ok(), "deleted");
        let err = issuer.authenticate(&registry, &token, None, now()).await.expect_err("gone");
        assert_eq!(err.to_string(), "serviceaccounts \"app\" not found");
        create(&registry, kinds::SERVICE_ACCOUNTS, json!({"metadata": {"name": "app", "namespace": "shop"}})).await;
        let err = issuer.authenticate(&registry, &token, None, now()).await.expect_err("another uid");
        assert!(err.to_string().starts_with("service account UID ("), "{err}");
    }

    #[tokio::test]
    async fn a_pod_bound_token_dies_with_its_pod() {
        let (registry, issuer) = setup().await;
        let pod = create(
            &registry,
            kinds::PODS,
            json!({"metadata": {"name": "web", "namespace": "shop"},
                "spec": {"serviceAccountName": "app", "automountServiceAccountToken": false, "containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
        let bound = Bound::Pod { name: "web".into(), uid: String::new() };
        let req = token_request::Spec { audiences: vec![], expiration_seconds: 3600, bound };
        let (token, _) = issuer.issue(&registry, "shop", "app", req).await.expect("token");
        let auth = issuer.authenticate(&registry, &token, None, now()).await.expect("valid").expect("ours");
        assert_eq!(auth.user.extra[POD_NAME_KEY], ["web"]);
        assert_eq!(auth.user.extra[POD_UID_KEY], [uid(&pod)]);
        let r = ObjectRef { kind: kinds::PODS, namespace: "shop", name: "web" };
        assert!(registry.delete(r, &Default::default(), false).await.is_ok(), "deleted");
        let err = issuer.authenticate(&registry, &token, None, now()).await.expect_err("pod gone");
        assert_eq!(err.to_string(), "service account token has been invalidated");
    }

    #[tokio::test]
    async fn another_key_or_a_forged_token_is_refused() {
        let (registry, issuer) = setup().await;
        let req = token_request::Spec { audiences: vec![], expiration_seconds: 600, bound: Bound::None };
        let (token, _) = issuer.issue(&registry, "shop", "app", req).await.expect("token");
        // The payload changed under the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).expect("b64")).expect("json");
        claims["sub"] = json!("system:serviceaccount:kube-system:admin");
        let forged = format!("{}.{}.{}", parts[0], engine.encode(claims.to_string()), parts[2]);
        let err = issuer.authenticate(&registry, &forged, None, now()).await.expect_err("forged");
        assert!(matches!(err, TokenError::Signature), "{err}");
        assert!(issuer.verified.get(&forged).is_none(), "a bad signature is never remembered");
        // Signed by another key, naming it.
        let dir = tempfile::tempdir().expect("tempdir");
        let other = super::super::key::SigningKey::load_or_create(dir.path()).expect("another key");
        let theirs = other.sign(&claims).expect("sign");
        let err = issuer.authenticate(&registry, &theirs, None, now()).await.expect_err("other key");
        assert!(matches!(err, TokenError::UnknownKey), "{err}");
        // `alg: none`: no user (go-jose cannot parse it either, so no authenticator claims it).
        let none = format!("{}.{}.", engine.encode(r#"{"alg":"none"}"#), parts[1]);
        assert!(!matches!(issuer.authenticate(&registry, &none, None, now()).await, Ok(Some(_))));
    }
}
