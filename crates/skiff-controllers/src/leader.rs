//! Leader election through a Lease (`coordination.k8s.io/v1`), as client-go's `leaderelection`
//! does it: one candidate holds the lease and renews it; the others take it over once it has not
//! been renewed for its duration. So several `skiff server`s can share one store with exactly one
//! controller manager acting.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::future::Future;
use std::time::Duration;

/// Who competes for which lease, and how fast.
#[derive(Debug, Clone)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a lease holds without renewal (client-go's default: 15 s).
    pub lease_duration: Duration,
    /// How often the holder renews and a candidate retries (client-go's default: 2 s).
    pub retry_period: Duration,
}

impl Election {
    /// The controller manager's lease in `kube-system`, client-go's default timings.
    pub fn controller_manager(identity: &str) -> Election {
        Election {
            namespace: "kube-system".into(),
            name: "skiff-controller-manager".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lost the lease {name} (not renewed for {seconds} s)")]
    Lost { name: String, seconds: u64 },
}

/// What a candidate does with the lease as it reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Free, expired or never held: take it.
    Take,
    /// Ours: renew it.
    Renew,
    /// Someone else's and fresh: wait.
    Wait,
}

/// Pure: the decision for `me` given the lease's spec at `now`.
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else { return Decision::Take };
    match spec.holder_identity.as_deref() {
        None | Some("") => Decision::Take,
        Some(holder) if holder == me => Decision::Renew,
        Some(_) => {
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            let renewed = spec.renew_time.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH);
            if renewed.as_second() + duration < now.as_second() { Decision::Take } else { Decision::Wait }
        }
    }
}

/// Write the lease as held by us (create it, or replace the version we read).
async fn hold(api: &Api<Lease>, e: &Election, current: Option<Lease>, now: Timestamp) -> Result<(), kube::Error> {
    let taking = current.as_ref().and_then(|l| l.spec.as_ref()).and_then(|s| s.holder_identity.as_deref())
        != Some(e.identity.as_str());
    let previous = current.as_ref().and_then(|l| l.spec.clone()).unwrap_or_default();
    let spec = LeaseSpec {
        holder_identity: Some(e.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(e.lease_duration.as_secs()).unwrap_or(15)),
        acquire_time: if taking { Some(MicroTime(now)) } else { previous.acquire_time.clone() },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(previous.lease_transitions.unwrap_or(0) + i32::from(taking && current.is_some())),
        ..Default::default()
    };
    match current {
        None => {
            let lease =
                Lease { metadata: ObjectMeta { name: Some(e.name.clone()), ..Default::default() }, spec: Some(spec) };
            api.create(&PostParams::default(), &lease).await.map(drop)
        }
        Some(mut lease) => {
            lease.spec = Some(spec);
            api.replace(&e.name, &PostParams::default(), &lease).await.map(drop)
        }
    }
}

/// One attempt to take or renew the lease; true when we hold it afterwards.
async fn try_hold(api: &Api<Lease>, e: &Election) -> bool {
    let current = match api.get_opt(&e.name).await {
        Ok(l) => l,
        Err(err) => {
            tracing::debug!(error = %err, lease = e.name, "reading the lease");
            return false;
        }
    };
    let now = Timestamp::now();
    match decide(current.as_ref().and_then(|l| l.spec.as_ref()), &e.identity, now) {
        Decision::Wait => false,
        Decision::Take | Decision::Renew => match hold(api, e, current, now).await {
            Ok(()) => true,
            // Someone else wrote first: they hold it (or will), we wait.
            Err(err) => {
                tracing::debug!(error = %err, lease = e.name, "writing the lease");
                false
            }
        },
    }
}

/// Wait until we hold the lease, then run `work` while renewing it. Returns when `work` ends,
/// or with [`LeaderError::Lost`] when the lease could not be renewed in time (`work` is dropped
/// then: a process that lost its lease stops acting at once, as kube-controller-manager exits).
pub async fn lead<F: Future<Output = ()>>(client: kube::Client, e: Election, work: F) -> Result<(), LeaderError> {
    let api = Api::<Lease>::namespaced(client, &e.namespace);
    while !try_hold(&api, &e).await {
        tokio::time::sleep(e.retry_period).await;
    }
    tracing::info!(lease = e.name, identity = e.identity, "became the leader");
    let mut work = std::pin::pin!(work);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = &mut work => return Ok(()),
            () = tokio::time::sleep(e.retry_period) => {
                if try_hold(&api, &e).await {
                    last_renewal = tokio::time::Instant::now();
                } else if last_renewal.elapsed() >= e.lease_duration.mul_f32(2.0 / 3.0) {
                    // client-go's renew deadline (10 s of 15): give up before another may take it.
                    return Err(LeaderError::Lost { name: e.name.clone(), seconds: last_renewal.elapsed().as_secs() });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: &str, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed.parse().expect("time"))),
            lease_duration_seconds: Some(duration),
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        let now: Timestamp = "2026-01-01T00:00:20Z".parse().expect("time");
        assert_eq!(decide(None, "a", now), Decision::Take);
        assert_eq!(decide(Some(&LeaseSpec::default()), "a", now), Decision::Take);
        assert_eq!(decide(Some(&spec("a", "2026-01-01T00:00:00Z", 15)), "a", now), Decision::Renew);
        assert_eq!(decide(Some(&spec("b", "2026-01-01T00:00:10Z", 15)), "a", now), Decision::Wait);
        assert_eq!(decide(Some(&spec("b", "2026-01-01T00:00:04Z", 15)), "a", now), Decision::Take, "expired");
    }
}
