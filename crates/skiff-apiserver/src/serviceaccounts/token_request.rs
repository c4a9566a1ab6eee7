//! TokenRequest, `POST .../serviceaccounts/NAME/token` (`pkg/registry/core/serviceaccount/
//! storage/token.go` of Kubernetes 1.32): an `authentication.k8s.io/v1` TokenRequest in, the
//! same with `status.token` out. Audiences default to the API server's, the lifetime to an hour
//! (at least ten minutes); a token may be bound to a Pod, a Secret or a Node that exists (with
//! the uid given, if one is), and a pod-bound token also names the pod's node.

use super::Issuer;
use super::claims::{self, Claims, Ref};
use crate::AppState;
use crate::http::{self, Failure};
use crate::registry::{ObjectRef, Registry, node_restriction_admission};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;
use skiff_core::ApiError;
use skiff_core::field::{FieldError, Path};
use skiff_core::kinds::{self, Kind};

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";

/// `SetDefaults_TokenRequestSpec`: an hour.
const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;

/// What a token is bound to, as the request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    None,
    Pod { name: String, uid: String },
    Secret { name: String, uid: String },
    Node { name: String, uid: String },
}

/// A TokenRequest's spec, defaulted and validated.
#[derive(Debug, Clone)]
pub struct Spec {
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    pub bound: Bound,
}

fn invalid(name: &str, errors: Vec<FieldError>) -> ApiError {
    ApiError::Invalid { group: GROUP.into(), kind: KIND.into(), name: name.into(), errors }
}

/// The spec of `request` (for account `name`): defaults, then `ValidateTokenRequest` and the
/// bound object's kind.
fn spec_of(request: &TokenRequest, api_audiences: &[String]) -> Result<Spec, ApiError> {
    let spec = request.spec.clone().unwrap_or_default();
    let audiences = spec.audiences.filter(|a| !a.is_empty()).unwrap_or_else(|| api_audiences.to_vec());
    let expiration_seconds = spec.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    let path = Path::new("spec").child("expirationSeconds");
    if expiration_seconds < 10 * 60 {
        let e = FieldError::invalid(&path, expiration_seconds, "may not specify a duration less than 10 minutes");
        return Err(invalid("", vec![e]));
    }
    if expiration_seconds > 1 << 32 {
        let e = FieldError::invalid(&path, expiration_seconds, "may not specify a duration larger than 2^32 seconds");
        return Err(invalid("", vec![e]));
    }
    let bound = match &spec.bound_object_ref {
        None => Bound::None,
        Some(r) => {
            let api_version = r.api_version.as_deref().unwrap_or("");
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let (name, uid) = (r.name.clone().unwrap_or_default(), r.uid.clone().unwrap_or_default());
            match (group, r.kind.as_deref().unwrap_or("")) {
                ("", "Pod") => Bound::Pod { name, uid },
                ("", "Secret") => Bound::Secret { name, uid },
                ("", "Node") => Bound::Node { name, uid },
                (group, kind) => {
                    // Go's `GroupVersionKind.String()`.
                    return Err(ApiError::BadRequest(format!(
                        "cannot bind token to object of type {group}/{version}, Kind={kind}"
                    )));
                }
            }
        }
    };
    Ok(Spec { audiences, expiration_seconds, bound })
}

/// The object a token is bound to, by kind: the claim it makes.
async fn bound_ref(
    registry: &Registry,
    kind: &'static dyn Kind,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<(Value, Ref), ApiError> {
    let obj = registry.get(ObjectRef { kind, namespace, name }).await?;
    let have = skiff_core::meta::uid(&obj).to_string();
    if !uid.is_empty() && uid != have {
        return Err(ApiError::conflict(
            kind.info().kind,
            name,
            format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok((obj, Ref { name: name.to_string(), uid: have }))
}

impl Issuer {
    /// A token for account `namespace/name` as `spec` asks, and when it is said to expire
    /// (`status.expirationTimestamp`: the requested lifetime, even when the token itself was
    /// given a year).
    pub async fn issue(
        &self,
        registry: &Registry,
        namespace: &str,
        name: &str,
        spec: Spec,
    ) -> Result<(String, Timestamp), ApiError> {
        let account = registry.get(ObjectRef { kind: kinds::SERVICE_ACCOUNTS, namespace, name }).await?;
        let mut bound = claims::Bound::default();
        match &spec.bound {
            Bound::None => {}
            Bound::Pod { name: pod, uid } => {
                let (obj, r) = bound_ref(registry, kinds::PODS, namespace, pod, uid).await?;
                let account_of = obj.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("");
                if account_of != name {
                    return Err(ApiError::BadRequest(format!(
                        "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
                    )));
                }
                // The pod's node, by name alone if the Node is not there.
                let node = obj.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
                if !node.is_empty() {
                    let uid = match registry.get(ObjectRef { kind: kinds::NODES, namespace: "", name: node }).await {
                        Ok(n) => skiff_core::meta::uid(&n).to_string(),
                        Err(ApiError::NotFound { .. }) => String::new(),
                        Err(e) => return Err(e),
                    };
                    bound.node = Some(Ref { name: node.to_string(), uid });
                }
                bound.pod = Some(r);
            }
            Bound::Secret { name: secret, uid } => {
                let secrets = kinds::by_resource("", "v1", "secrets").ok_or(ApiError::NoResource)?;
                bound.secret = Some(bound_ref(registry, secrets, namespace, secret, uid).await?.1);
            }
            Bound::Node { name: node, uid } => {
                bound.node = Some(bound_ref(registry, kinds::NODES, "", node, uid).await?.1);
            }
        }
        let audiences = if spec.audiences.is_empty() { self.audiences.clone() } else { spec.audiences };
        // A kubelet's token of the usual lifetime lives a year but warns after its hour.
        let extend =
            bound.pod.is_some() && spec.expiration_seconds == claims::WARN_ONLY_SECONDS && self.all_ours(&audiences);
        let (lifetime, warn_after) = match extend {
            true => (claims::EXTENDED_SECONDS, Some(spec.expiration_seconds)),
            false => (spec.expiration_seconds, None),
        };
        let now = Timestamp::now();
        let request = claims::Request {
            issuer: &self.issuer,
            namespace,
            account: Ref { name: name.to_string(), uid: skiff_core::meta::uid(&account).to_string() },
            audiences,
            bound,
            expiration_seconds: lifetime,
            warn_after_seconds: warn_after,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = self
            .key
            .sign(&Claims::new(request, now.as_second()))
            .map_err(|e| ApiError::Internal(format!("failed to generate token: {e}")))?;
        let expires = now.checked_add(jiff::SignedDuration::from_secs(spec.expiration_seconds)).unwrap_or(now);
        Ok((token, expires))
    }
}

/// The TokenRequest in a request body (JSON, YAML or protobuf).
fn decode(raw: Value) -> Result<TokenRequest, ApiError> {
    let cannot =
        |why: String| ApiError::BadRequest(format!("{KIND} in version \"v1\" cannot be handled as a {KIND}: {why}"));
    match raw.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != KIND => {
            return Err(ApiError::BadRequest(format!(
                "the object provided is unrecognized (must be of type {KIND}): kind {k:?}"
            )));
        }
        _ => {}
    }
    serde_json::from_value(raw).map_err(|e| cannot(e.to_string()))
}

/// POST `serviceaccounts/NAME/token` by `user`.
pub(crate) async fn serve(
    state: &AppState,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: Body,
    user: Option<&skiff_core::auth::UserInfo>,
) -> Result<Response, Failure> {
    let bytes = http::read_body(body).await?;
    let raw = http::object_body(&bytes, http::content_type(headers))?;
    let bound = raw.pointer("/spec/boundObjectRef").cloned();
    let mut request = decode(raw)?;
    // Admission sees the request as decoded, before the checks of its storage.
    node_restriction_admission::admit_token_request(&state.registry, namespace, name, bound.as_ref(), user).await?;
    let metadata = Path::new("metadata");
    let md = &request.metadata;
    if let Some(n) = md.name.as_deref().filter(|n| !n.is_empty() && *n != name) {
        let e = FieldError::invalid(&metadata.child("name"), n, "must match the service account name if specified");
        return Err(invalid(name, vec![e]).into());
    }
    if let Some(ns) = md.namespace.as_deref().filter(|ns| !ns.is_empty() && *ns != namespace) {
        let detail = "must match the service account namespace if specified";
        return Err(invalid(name, vec![FieldError::invalid(&metadata.child("namespace"), ns, detail)]).into());
    }
    let spec = spec_of(&request, &state.service_accounts.audiences)?;
    let (token, expires) = state.service_accounts.issue(&state.registry, namespace, name, spec.clone()).await?;
    let md = &mut request.metadata;
    md.name = Some(name.to_string());
    md.namespace = Some(namespace.to_string());
    md.creation_timestamp = Some(Time(Timestamp::now()));
    let out_spec = request.spec.get_or_insert_with(Default::default);
    out_spec.audiences = Some(spec.audiences);
    out_spec.expiration_seconds = Some(spec.expiration_seconds);
    request.status = Some(TokenRequestStatus { token: Some(token), expiration_timestamp: Some(Time(expires)) });
    let mut out = serde_json::to_value(&request).map_err(|e| ApiError::Internal(e.to_string()))?;
    out["apiVersion"] = format!("{GROUP}/v1").into();
    out["kind"] = KIND.into();
    Ok(http::json(StatusCode::CREATED, &out, &[]))
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;
    use crate::registry::WriteOptions;
    use serde_json::json;
    use std::sync::Arc;

    fn request(spec: Value) -> TokenRequest {
        decode(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}))
            .expect("decodes")
    }

    fn api() -> Vec<String> {
        vec![super::super::DEFAULT_ISSUER.to_string()]
    }

    #[test]
    fn defaults_and_validation_as_upstream() {
        // What kubectl 1.27 and 1.29 send for a bare `kubectl create token`.
        let bare = request(json!({"audiences": null, "expirationSeconds": null, "boundObjectRef": null}));
        let spec = spec_of(&bare, &api()).expect("valid");
        assert_eq!((spec.audiences, spec.expiration_seconds, spec.bound), (api(), 3600, Bound::None));
        let short = spec_of(&request(json!({"expirationSeconds": 60})), &api()).expect_err("too short");
        assert_eq!(
            short.to_string(),
            "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        );
        let long = spec_of(&request(json!({"expirationSeconds": (1i64 << 32) + 1})), &api()).expect_err("too long");
        assert!(long.to_string().ends_with("may not specify a duration larger than 2^32 seconds"), "{long}");
        let pod = request(
            json!({"audiences": ["vault"], "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "u"}}),
        );
        let spec = spec_of(&pod, &api()).expect("valid");
        assert_eq!(
            (spec.audiences, spec.bound),
            (vec!["vault".to_string()], Bound::Pod { name: "web".into(), uid: "u".into() })
        );
        let cm = request(json!({"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "c"}}));
        assert_eq!(
            spec_of(&cm, &api()).expect_err("kind").to_string(),
            "cannot bind token to object of type /v1, Kind=ConfigMap"
        );
        let deploy = request(json!({"boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1", "name": "d"}}));
        assert_eq!(
            spec_of(&deploy, &api()).expect_err("kind").to_string(),
            "cannot bind token to object of type apps/v1, Kind=Deployment"
        );
    }

    async fn setup() -> (Registry, Issuer) {
        let registry = Registry::new(Arc::new(skiff_store::MemoryStore::new()));
        let opts = WriteOptions::default();
        registry.create(kinds::NAMESPACES, "", json!({"metadata": {"name": "shop"}}), &opts).await.expect("ns");
        let sa = json!({"metadata": {"name": "app"}});
        registry.create(kinds::SERVICE_ACCOUNTS, "shop", sa, &opts).await.expect("sa");
        (registry, testing::issuer())
    }

    fn claims_of(token: &str) -> Value {
        let payload = token.split('.').nth(1).expect("payload");
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("b64");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn bound_tokens_name_what_they_are_bound_to() {
        let (registry, issuer) = setup().await;
        let opts = WriteOptions::default();
        let pod = json!({"metadata": {"name": "web"}, "spec": {"serviceAccountName": "app", "nodeName": "n1",
            "automountServiceAccountToken": false, "containers": [{"name": "c", "image": "busybox"}]}});
        let pod = registry.create(kinds::PODS, "shop", pod, &opts).await.expect("pod");
        let pod_uid = skiff_core::meta::uid(&pod).to_string();
        // The kubelet's request: its hour becomes a year that warns after the hour.
        let bound = Bound::Pod { name: "web".into(), uid: pod_uid.clone() };
        let spec = Spec { audiences: api(), expiration_seconds: claims::WARN_ONLY_SECONDS, bound };
        let before = Timestamp::now().as_second();
        let (token, expires) = issuer.issue(&registry, "shop", "app", spec).await.expect("token");
        let c = claims_of(&token);
        assert_eq!(c["kubernetes.io"]["pod"], json!({"name": "web", "uid": pod_uid}));
        assert_eq!(c["kubernetes.io"]["node"], json!({"name": "n1"}), "the node named though not registered");
        assert_eq!(c["kubernetes.io"]["namespace"], "shop");
        assert_eq!(c["sub"], "system:serviceaccount:shop:app");
        let exp = c["exp"].as_i64().expect("exp");
        assert!(exp - before >= claims::EXTENDED_SECONDS, "{c}");
        assert_eq!(c["kubernetes.io"]["warnafter"].as_i64().map(|w| w - c["iat"].as_i64().unwrap_or(0)), Some(3607));
        assert!((expires.as_second() - before - 3607).abs() <= 1, "the status says the hour asked");
        // Another audience: not extended.
        let bound = Bound::Pod { name: "web".into(), uid: String::new() };
        let spec = Spec { audiences: vec!["vault".into()], expiration_seconds: claims::WARN_ONLY_SECONDS, bound };
        let (token, _) = issuer.issue(&registry, "shop", "app", spec).await.expect("token");
        let c = claims_of(&token);
        assert_eq!(c["exp"].as_i64().map(|e| e - c["iat"].as_i64().unwrap_or(0)), Some(3607));
        assert!(c["kubernetes.io"].get("warnafter").is_none());
        // A stale uid, a missing pod, another account's pod.
        let stale = Bound::Pod { name: "web".into(), uid: "old".into() };
        let spec = Spec { audiences: api(), expiration_seconds: 600, bound: stale };
        let err = issuer.issue(&registry, "shop", "app", spec).await.expect_err("stale uid");
        assert_eq!(
            err.to_string(),
            "Operation cannot be fulfilled on Pod \"web\": the UID in the bound object reference (old) does not match the UID in record. The object might have been deleted and then recreated"
        );
        let missing = Bound::Pod { name: "db".into(), uid: String::new() };
        let spec = Spec { audiences: api(), expiration_seconds: 600, bound: missing };
        assert_eq!(
            issuer.issue(&registry, "shop", "app", spec).await.expect_err("no pod").to_string(),
            "pods \"db\" not found"
        );
        registry
            .create(kinds::SERVICE_ACCOUNTS, "shop", json!({"metadata": {"name": "other"}}), &opts)
            .await
            .expect("sa");
        let spec = Spec {
            audiences: api(),
            expiration_seconds: 600,
            bound: Bound::Pod { name: "web".into(), uid: String::new() },
        };
        let err = issuer.issue(&registry, "shop", "other", spec).await.expect_err("other account");
        assert_eq!(
            err.to_string(),
            "cannot bind token for serviceaccount \"other\" to pod running with different serviceaccount name."
        );
        let spec = Spec { audiences: api(), expiration_seconds: 600, bound: Bound::None };
        let err = issuer.issue(&registry, "shop", "nobody", spec).await.expect_err("no account");
        assert_eq!(err.to_string(), "serviceaccounts \"nobody\" not found");
    }
}
