//! Service-account tokens for projected volumes, as the kubelet's token manager keeps them:
//! one per audience and lifetime a pod's projections ask, bound to the pod, asked of the API
//! server's TokenRequest and asked again once past 80% of its life or a day old (a few
//! seconds of jitter, so a node's pods do not all ask at once). A refresh that fails keeps the
//! old token while it lasts. Pure: the worker does the asking, `payload` writes the file.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccountTokenProjection};
use std::collections::BTreeSet;

/// What a token is asked with: its audience (empty: the API server's) and lifetime.
pub type Key = (String, i64);

/// The kubelet's refresh bound: no token is kept longer than a day.
const MAX_AGE_SECONDS: i64 = 24 * 60 * 60;
/// At most this much earlier than due, at random.
pub const MAX_JITTER_SECONDS: i64 = 10;

/// The key of a projection (its lifetime defaulted as the API server defaults it).
pub fn key_of(p: &ServiceAccountTokenProjection) -> Key {
    (p.audience.clone().unwrap_or_default(), p.expiration_seconds.unwrap_or(60 * 60))
}

/// Every token the pod's projected volumes ask for.
pub fn wanted(pod: &Pod) -> BTreeSet<Key> {
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    let sources = volumes.flat_map(|v| v.projected.iter().flat_map(|p| p.sources.iter().flatten()));
    sources.filter_map(|s| s.service_account_token.as_ref()).map(key_of).collect()
}

/// The TokenRequest for `key`, bound to `pod`.
pub fn request(pod: &Pod, key: &Key) -> TokenRequest {
    let (audience, expiration_seconds) = key;
    TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: (!audience.is_empty()).then(|| vec![audience.clone()]),
            expiration_seconds: Some(*expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A token the API server gave, and when it said it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    /// `status.expirationTimestamp` and the lifetime asked, in Unix seconds.
    pub expires: i64,
    pub lifetime: i64,
}

impl Issued {
    /// The token of a TokenRequest's answer, if it has one.
    pub fn of(answer: &TokenRequest, lifetime: i64) -> Option<Issued> {
        let status = answer.status.as_ref()?;
        let token = status.token.clone().filter(|t| !t.is_empty())?;
        let expires = status.expiration_timestamp.as_ref()?.0.as_second();
        Some(Issued { token, expires, lifetime })
    }

    /// `requiresRefresh`: within 20% of its life of expiring, or a day old (`jitter` seconds
    /// early, `0..MAX_JITTER_SECONDS`).
    pub fn due(&self, now: i64, jitter: i64) -> bool {
        let issued = self.expires - self.lifetime;
        now > issued + MAX_AGE_SECONDS - jitter || now > self.expires - self.lifetime * 20 / 100 - jitter
    }

    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}, "spec": spec}))
            .expect("pod")
    }

    #[test]
    fn each_projection_asks_once_bound_to_the_pod() {
        let p = pod(json!({"containers": [], "volumes": [
            {"name": "a", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}},
            {"name": "b", "projected": {"sources": [{"serviceAccountToken": {"path": "t", "audience": "vault"}},
                {"serviceAccountToken": {"path": "again", "expirationSeconds": 3607}}]}}]}));
        let keys = wanted(&p);
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), [(String::new(), 3607), ("vault".into(), 3600)]);
        let r = serde_json::to_value(request(&p, &("vault".into(), 3600))).expect("json");
        assert_eq!(
            r["spec"],
            json!({"audiences": ["vault"], "expirationSeconds": 3600,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "u-1"}})
        );
        let r = serde_json::to_value(request(&p, &(String::new(), 3607))).expect("json");
        assert!(r["spec"].get("audiences").is_none(), "the API server's own: {r}");
    }

    #[test]
    fn refreshed_at_four_fifths_of_its_life_or_after_a_day() {
        let hour = Issued { token: "t".into(), expires: 10_000 + 3607, lifetime: 3607 };
        assert!(!hour.due(10_000, 0));
        assert!(!hour.due(10_000 + 2886, 0));
        assert!(hour.due(10_000 + 2887, 0), "past 80%");
        assert!(hour.due(10_000 + 2880, 10), "jitter brings it forward");
        let year = Issued { token: "t".into(), expires: 10_000 + 365 * 86_400, lifetime: 365 * 86_400 };
        assert!(!year.due(10_000 + 86_400, 0));
        assert!(year.due(10_000 + 86_401, 0), "a day old");
        assert!(hour.expired(10_000 + 3607) && !hour.expired(10_000 + 3606));
    }
}
