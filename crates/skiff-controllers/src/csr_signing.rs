//! The CSR signing controller (kube-controller-manager's `csrsigning`): an approved request for
//! one of the cluster's signers (`kubernetes.io/kube-apiserver-client`,
//! `kubernetes.io/kube-apiserver-client-kubelet`, `kubernetes.io/kubelet-serving`) gets its
//! certificate in `status.certificate`, signed by the cluster CA for the duration it asks
//! (at most `--cluster-signing-duration`); one the signer refuses (a kubelet request naming
//! other groups, usages it does not issue) gets a `Failed` condition with upstream's reason
//! and message. Denied, failed and issued requests are left alone. What to do is [`decide`]'s
//! (pure); the CA's signature is the [`Authority`]'s, which the binary gives (the CA's crypto
//! lives in the API server crate, which controllers do not link).

use crate::informers::Informers;
use crate::work::{self, Key, Queue};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::Value;
use skiff_core::kinds::certificates::{self, request, signers};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(300);
/// Certificates start this long before they are signed (clocks differ); upstream's 5 minutes.
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Below this lifetime the end is not backdated too (5 minutes is 1% of 8 hours).
const SHORT: Duration = Duration::from_secs(8 * 3600);
/// The shortest certificate issued, whatever is asked (twice the backdate).
const MIN_DURATION: Duration = Duration::from_secs(10 * 60);
/// `--cluster-signing-duration`'s default: a year.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// A signature that failed is tried again this much later (the CA or the request is at fault,
/// not a race).
const RETRY_SIGNING: Duration = Duration::from_secs(60);

/// Why the CA did not sign.
pub type SignError = Box<dyn std::error::Error + Send + Sync>;

/// The cluster CA, as the signing controller uses it.
pub trait Authority: Send + Sync {
    /// A certificate (PEM) for the PEM request `request` with `usages` (the API's names),
    /// valid from `not_before` until `not_after` or the CA's own end, whichever is first.
    fn sign(
        &self,
        request: &[u8],
        usages: &[String],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<String, SignError>;
}

/// What the signing controller signs with.
#[derive(Clone)]
pub struct Signing {
    pub authority: Arc<dyn Authority>,
    /// The longest certificate issued (`--cluster-signing-duration`).
    pub max_duration: Duration,
}

impl Signing {
    pub fn new(authority: Arc<dyn Authority>) -> Signing {
        Signing { authority, max_duration: DEFAULT_MAX_DURATION }
    }
}

/// What to do about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not approved, denied, failed, issued, someone else's signer, or unreadable.
    Nothing,
    /// The signer refuses it: a `Failed` condition with this message.
    Refuse(String),
    Sign {
        usages: Vec<String>,
        not_before: SystemTime,
        not_after: SystemTime,
    },
}

/// The lifetime a request gets (`signer.duration`): what it asks, between ten minutes and `max`.
pub fn lifetime(expiration_seconds: Option<i32>, max: Duration) -> Duration {
    let Some(seconds) = expiration_seconds else { return max };
    let asked = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    if asked > max { max } else { asked.max(MIN_DURATION) }
}

/// Upstream's `PermissiveSigningPolicy` times: backdated start; the end backdated too unless
/// the certificate is short-lived.
pub fn validity(now: SystemTime, lifetime: Duration) -> (SystemTime, SystemTime) {
    let not_before = now - BACKDATE;
    let not_after = if lifetime < SHORT { now + lifetime } else { now + lifetime - BACKDATE };
    (not_before, not_after)
}

/// `signer.handle`: whether `csr` is to be signed, refused, or left as it is.
pub fn decide(csr: &Value, max: Duration, now: SystemTime) -> Decision {
    let issued = csr.pointer("/status/certificate").and_then(Value::as_str).is_some_and(|c| !c.is_empty());
    if issued || !certificates::is_approved(csr) || certificates::has_failed(csr) {
        return Decision::Nothing;
    }
    let signer = certificates::signer_name(csr);
    let req = match request::parse(&certificates::request_pem(csr)) {
        Ok(r) => r,
        Err(e) => {
            // Validation let it in, so this cannot be; nothing to sign either way.
            tracing::warn!(name = skiff_core::meta::name(csr), error = %e, "an approved request that does not parse");
            return Decision::Nothing;
        }
    };
    let usages: Vec<String> = csr
        .pointer("/spec/usages")
        .and_then(Value::as_array)
        .map(|u| u.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default();
    match signers::check(signer, &req, &usages) {
        None => Decision::Nothing,
        Some(Err(refusal)) => Decision::Refuse(refusal.to_string()),
        Some(Ok(())) => {
            let seconds = csr.pointer("/spec/expirationSeconds").and_then(Value::as_i64);
            let lifetime = lifetime(seconds.and_then(|s| i32::try_from(s).ok()), max);
            let (not_before, not_after) = validity(now, lifetime);
            Decision::Sign { usages, not_before, not_after }
        }
    }
}

struct Ctx {
    client: kube::Client,
    requests: Store<CertificateSigningRequest>,
    signing: Signing,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(cached) = ctx.requests.get(&ObjectRef::new(&key.name)) else { return Ok(None) };
    let mut csr = cached.as_ref().clone();
    let as_json = serde_json::to_value(&csr).map_err(kube::Error::SerdeError)?;
    let status = csr.status.get_or_insert_with(Default::default);
    match decide(&as_json, ctx.signing.max_duration, SystemTime::now()) {
        Decision::Nothing => return Ok(None),
        Decision::Refuse(message) => {
            status.conditions.get_or_insert_with(Vec::new).push(CertificateSigningRequestCondition {
                type_: certificates::FAILED.into(),
                status: "True".into(),
                reason: Some("SignerValidationFailure".into()),
                message: Some(message),
                last_update_time: Some(Time(jiff::Timestamp::now())),
                last_transition_time: None,
            });
        }
        Decision::Sign { usages, not_before, not_after } => {
            let request = certificates::request_pem(&as_json);
            match ctx.signing.authority.sign(&request, &usages, not_before, not_after) {
                Ok(pem) => status.certificate = Some(ByteString(pem.into_bytes())),
                Err(e) => {
                    tracing::warn!(name = key.name, error = %e, "signing a certificate");
                    return Ok(Some(RETRY_SIGNING));
                }
            }
        }
    }
    // The cached version is the precondition: a request changed meanwhile is looked at again.
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    api.replace_status(&key.name, &PostParams::default(), &csr).await?;
    Ok(None)
}

pub async fn run(informers: &Informers, signing: Signing) {
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let requests = informers.watch(move |r: &CertificateSigningRequest| q.add(Key::of(r))).await;
    work::resync(queue.clone(), requests.clone(), RESYNC);
    let ctx = Ctx { client: informers.client_as(crate::identity::CSR_SIGNING), requests, signing };
    work::drive(queue, "CSR signing", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;

    const DAY: Duration = Duration::from_secs(86400);

    fn request(cn: &str, orgs: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        for o in orgs {
            params.distinguished_name.push(rcgen::DnType::OrganizationName, *o);
        }
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let pem = params.serialize_request(&key).expect("csr").pem().expect("pem");
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    fn csr(signer: &str, cn: &str, orgs: &[&str], usages: &[&str], conditions: &[&str]) -> Value {
        let conditions: Vec<Value> = conditions.iter().map(|t| json!({"type": t, "status": "True"})).collect();
        json!({"metadata": {"name": "r"}, "spec": {"request": request(cn, orgs), "signerName": signer, "usages": usages},
            "status": {"conditions": conditions}})
    }

    #[test]
    fn lifetimes_as_asked_within_bounds() {
        assert_eq!(lifetime(None, DEFAULT_MAX_DURATION), DEFAULT_MAX_DURATION);
        assert_eq!(lifetime(Some(3600), DEFAULT_MAX_DURATION), Duration::from_secs(3600));
        assert_eq!(lifetime(Some(60), DEFAULT_MAX_DURATION), MIN_DURATION);
        assert_eq!(lifetime(Some(i32::MAX), DEFAULT_MAX_DURATION), DEFAULT_MAX_DURATION);
        assert_eq!(lifetime(Some(-5), DAY), MIN_DURATION);
        assert_eq!(lifetime(Some(7200), Duration::from_secs(3600)), Duration::from_secs(3600));
        let now = SystemTime::UNIX_EPOCH + DAY * 1000;
        assert_eq!(validity(now, Duration::from_secs(3600)), (now - BACKDATE, now + Duration::from_secs(3600)));
        assert_eq!(validity(now, DAY), (now - BACKDATE, now + DAY - BACKDATE));
    }

    #[test]
    fn approved_client_requests_are_signed() {
        let now = SystemTime::now();
        let bob =
            csr(signers::KUBE_APISERVER_CLIENT, "bob", &["dev"], &["client auth", "digital signature"], &["Approved"]);
        assert_eq!(
            decide(&bob, DEFAULT_MAX_DURATION, now),
            Decision::Sign {
                usages: vec!["client auth".into(), "digital signature".into()],
                not_before: now - BACKDATE,
                not_after: now + DEFAULT_MAX_DURATION - BACKDATE
            }
        );
        let mut short = bob.clone();
        short["spec"]["expirationSeconds"] = json!(600);
        assert!(
            matches!(decide(&short, DEFAULT_MAX_DURATION, now), Decision::Sign { not_after, .. } if not_after == now + MIN_DURATION)
        );
    }

    #[test]
    fn pending_denied_failed_issued_and_foreign_requests_are_left_alone() {
        let now = SystemTime::now();
        let client =
            |conditions: &[&str]| csr(signers::KUBE_APISERVER_CLIENT, "bob", &[], &["client auth"], conditions);
        for left in [client(&[]), client(&["Denied"]), client(&["Approved", "Denied"]), client(&["Approved", "Failed"])]
        {
            assert_eq!(decide(&left, DEFAULT_MAX_DURATION, now), Decision::Nothing, "{left}");
        }
        let mut issued = client(&["Approved"]);
        issued["status"]["certificate"] = json!("eA==");
        assert_eq!(decide(&issued, DEFAULT_MAX_DURATION, now), Decision::Nothing);
        let foreign = csr("example.com/mine", "bob", &[], &["client auth"], &["Approved"]);
        assert_eq!(decide(&foreign, DEFAULT_MAX_DURATION, now), Decision::Nothing);
    }

    #[test]
    fn signers_refuse_what_they_do_not_issue() {
        let now = SystemTime::now();
        let usages = ["digital signature", "key encipherment", "client auth"];
        let kubelet = signers::KUBE_APISERVER_CLIENT_KUBELET;
        let forged = csr(kubelet, "system:node:n1", &["system:nodes", "system:masters"], &usages, &["Approved"]);
        assert_eq!(
            decide(&forged, DEFAULT_MAX_DURATION, now),
            Decision::Refuse("subject organization is not system:nodes".into())
        );
        let node = csr(kubelet, "system:node:n1", &["system:nodes"], &usages, &["Approved"]);
        assert!(matches!(decide(&node, DEFAULT_MAX_DURATION, now), Decision::Sign { .. }));
        let serving = csr(signers::KUBE_APISERVER_CLIENT, "bob", &[], &["server auth"], &["Approved"]);
        assert_eq!(
            decide(&serving, DEFAULT_MAX_DURATION, now),
            Decision::Refuse("invalid usage for client certificate: server auth".into())
        );
        // The client signer takes any subject (system:masters is refused at creation).
        let masters = csr(signers::KUBE_APISERVER_CLIENT, "root", &["system:masters"], &["client auth"], &["Approved"]);
        assert!(matches!(decide(&masters, DEFAULT_MAX_DURATION, now), Decision::Sign { .. }));
    }
}
