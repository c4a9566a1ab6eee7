//! A service-account token's claims as kube-apiserver writes them (`pkg/serviceaccount/claims.go`:
//! the registered claims, and `kubernetes.io` naming the account and what the token is bound to)
//! and the checks that need nothing but the claims and the clock: issuer, audiences, expiry with
//! go-jose's leeway. Pure.

use serde::{Deserialize, Serialize};

/// go-jose's `jwt.DefaultLeeway`: how far expiry and not-before may be off.
pub const LEEWAY_SECONDS: i64 = 60;

/// What kube-apiserver gives pod-bound tokens of its kubelet's usual lifetime (3607 s: the
/// projected volume's default), in `warnafter`, while the token itself lasts a year
/// (`--service-account-extend-token-expiration`, on by default): old clients that never
/// reread the file keep working, and the audit log tells who relies on it.
pub const WARN_ONLY_SECONDS: i64 = 60 * 60 + 7;
pub const EXTENDED_SECONDS: i64 = 24 * 365 * 60 * 60;

/// An object a claim names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The private `kubernetes.io` claim (fields in JSON key order, as go-jose writes them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubernetes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default)]
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// The whole payload, keys in the order go-jose writes them (sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, deserialize_with = "audiences")]
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io", default)]
    pub kubernetes: Kubernetes,
    #[serde(default)]
    pub nbf: i64,
    #[serde(default)]
    pub sub: String,
}

/// `aud` is a string or a list of them (RFC 7519 allows both).
fn audiences<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(a) => a,
    })
}

/// What a token is bound to, besides its account.
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    /// The pod's node (for a pod-bound token), or the node itself.
    pub node: Option<Ref>,
}

/// What a new token says.
pub struct Request<'a> {
    pub issuer: &'a str,
    pub namespace: &'a str,
    pub account: Ref,
    pub audiences: Vec<String>,
    pub bound: Bound,
    /// Its lifetime, and when it starts to warn (a pod-bound token of extended life).
    pub expiration_seconds: i64,
    pub warn_after_seconds: Option<i64>,
    pub jti: String,
}

impl Claims {
    /// `Claims(...)`: a token issued at `now` (Unix seconds).
    pub fn new(r: Request<'_>, now: i64) -> Claims {
        Claims {
            aud: r.audiences,
            exp: now + r.expiration_seconds,
            iat: now,
            iss: r.issuer.to_string(),
            jti: r.jti,
            kubernetes: Kubernetes {
                namespace: r.namespace.to_string(),
                node: r.bound.node,
                pod: r.bound.pod,
                secret: r.bound.secret,
                serviceaccount: r.account.clone(),
                warnafter: r.warn_after_seconds.map(|w| now + w),
            },
            nbf: now,
            sub: skiff_core::auth::user::service_account_username(r.namespace, &r.account.name),
        }
    }
}

/// Why a token's claims do not hold; the words are kube-apiserver's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("token issuer {0:?} is invalid")]
    Issuer(String),
    #[error("token audiences {} is invalid for the target audiences {}", go_list(.token), go_list(.wanted))]
    Audiences { token: Vec<String>, wanted: Vec<String> },
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("service account token is issued in the future")]
    IssuedInTheFuture,
}

/// Go's `%q` of a `[]string`, as `authenticator.Audiences` prints.
fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// The issuer, audience and time checks of the JWT authenticator and go-jose's `Validate`:
/// the audiences the token is good for here (its own that the server `wants`; a token with
/// none is good for all of `implicit`, as upstream treats legacy tokens).
pub fn check(
    claims: &Claims,
    issuer: &str,
    wants: &[String],
    implicit: &[String],
    now: i64,
) -> Result<Vec<String>, ClaimsError> {
    if claims.iss != issuer {
        return Err(ClaimsError::Issuer(claims.iss.clone()));
    }
    let token: &[String] = if claims.aud.is_empty() { implicit } else { &claims.aud };
    let good: Vec<String> = token.iter().filter(|a| wants.contains(a)).cloned().collect();
    if good.is_empty() && !implicit.is_empty() {
        return Err(ClaimsError::Audiences { token: token.to_vec(), wanted: wants.to_vec() });
    }
    if now - LEEWAY_SECONDS > claims.exp {
        return Err(ClaimsError::Expired);
    }
    if now + LEEWAY_SECONDS < claims.nbf {
        return Err(ClaimsError::NotYetValid);
    }
    if now + LEEWAY_SECONDS < claims.iat {
        return Err(ClaimsError::IssuedInTheFuture);
    }
    Ok(good)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

    fn pod_token() -> Claims {
        let bound = Bound {
            pod: Some(Ref { name: "web".into(), uid: "p-1".into() }),
            node: Some(Ref { name: "n1".into(), uid: "n-1".into() }),
            secret: None,
        };
        Claims::new(
            Request {
                issuer: ISSUER,
                namespace: "shop",
                account: Ref { name: "default".into(), uid: "sa-1".into() },
                audiences: vec![ISSUER.into()],
                bound,
                expiration_seconds: EXTENDED_SECONDS,
                warn_after_seconds: Some(WARN_ONLY_SECONDS),
                jti: "j-1".into(),
            },
            1_000_000,
        )
    }

    #[test]
    fn written_as_kube_apiserver_writes_them() {
        let json = serde_json::to_string(&pod_token()).expect("json");
        assert_eq!(
            json,
            r#"{"aud":["https://kubernetes.default.svc.cluster.local"],"exp":32536000,"iat":1000000,"iss":"https://kubernetes.default.svc.cluster.local","jti":"j-1","kubernetes.io":{"namespace":"shop","node":{"name":"n1","uid":"n-1"},"pod":{"name":"web","uid":"p-1"},"serviceaccount":{"name":"default","uid":"sa-1"},"warnafter":1003607},"nbf":1000000,"sub":"system:serviceaccount:shop:default"}"#
        );
        let back: Claims = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, pod_token());
        let one: Claims = serde_json::from_str(r#"{"aud":"x","exp":1}"#).expect("a single audience");
        assert_eq!(one.aud, ["x"]);
    }

    #[test]
    fn issuer_audiences_and_times_with_leeway() {
        let c = pod_token();
        let api = vec![ISSUER.to_string()];
        assert_eq!(check(&c, ISSUER, &api, &api, c.iat), Ok(api.clone()));
        assert_eq!(check(&c, "https://other", &api, &api, c.iat), Err(ClaimsError::Issuer(ISSUER.into())));
        let vault = vec!["vault".to_string()];
        let err = check(&c, ISSUER, &vault, &api, c.iat).expect_err("wrong audience");
        assert_eq!(
            err.to_string(),
            r#"token audiences ["https://kubernetes.default.svc.cluster.local"] is invalid for the target audiences ["vault"]"#
        );
        // A minute of leeway either side.
        assert!(check(&c, ISSUER, &api, &api, c.exp + 60).is_ok());
        assert_eq!(check(&c, ISSUER, &api, &api, c.exp + 61), Err(ClaimsError::Expired));
        let future = Claims { nbf: c.iat + 61, ..c.clone() };
        assert_eq!(check(&future, ISSUER, &api, &api, c.iat), Err(ClaimsError::NotYetValid));
        let early = Claims { iat: c.iat + 61, ..c.clone() };
        assert_eq!(check(&early, ISSUER, &api, &api, c.iat), Err(ClaimsError::IssuedInTheFuture));
        // No audience at all: good for the server's own.
        let legacy = Claims { aud: vec![], ..c };
        assert_eq!(check(&legacy, ISSUER, &api, &api, legacy.iat), Ok(api));
    }
}
