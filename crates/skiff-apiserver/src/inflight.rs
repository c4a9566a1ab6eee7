//! Bounds on requests in flight, as kube-apiserver's max-in-flight filter and API Priority and
//! Fairness bound them: mutating and read-only requests draw seats from separate pools, a list
//! takes more seats the more it may return (up to ten, as APF's width estimate), long-running
//! requests (watch, exec, attach, port-forward, log streams) take none. A request that finds
//! no seat within a short wait gets upstream's 429 with `Retry-After`. A seat is held until the
//! response body has been sent, so a slow reader of a large list keeps its cost counted.

use crate::http::{self, Failure};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use skiff_core::ApiError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a request may wait for seats before the 429.
const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// A list of unknown size takes this many seats, one of `limit` items one seat per hundred.
const MAX_LIST_SEATS: u32 = 10;

/// The seat pools (`--max-requests-inflight`, `--max-mutating-requests-inflight`).
pub struct Inflight {
    read_only: Arc<Semaphore>,
    mutating: Arc<Semaphore>,
    read_only_seats: u32,
}

impl Inflight {
    pub fn new(read_only: usize, mutating: usize) -> Self {
        let read_only = read_only.clamp(1, Semaphore::MAX_PERMITS);
        Inflight {
            read_only: Arc::new(Semaphore::new(read_only)),
            mutating: Arc::new(Semaphore::new(mutating.clamp(1, Semaphore::MAX_PERMITS))),
            read_only_seats: u32::try_from(read_only).unwrap_or(u32::MAX),
        }
    }
}

/// What a request costs.
#[derive(Debug, PartialEq, Eq)]
pub enum Cost {
    /// Health checks and long-running requests.
    Exempt,
    ReadOnly(u32),
    Mutating,
}

/// The cost of a request from its method, path and query.
pub fn cost(method: &Method, path: &str, query: Option<&str>) -> Cost {
    if matches!(path, "/healthz" | "/livez" | "/readyz" | "/version") {
        return Cost::Exempt;
    }
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or("").as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let watch = matches!(param("watch"), Some("true" | "1" | "True"));
    let follow = matches!(param("follow"), Some("true" | "1" | "True"));
    let last = path.rsplit('/').next().unwrap_or("");
    let streaming = matches!(last, "exec" | "attach" | "portforward" | "proxy") || (last == "log" && follow);
    if watch || streaming || path.starts_with("/api/v1/watch/") {
        return Cost::Exempt;
    }
    if *method != Method::GET && *method != Method::HEAD {
        return Cost::Mutating;
    }
    // A collection (`.../pods`, `/api/v1/pods`): what it may return sets its width.
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_list = match segments.as_slice() {
        ["api", "v1", _] => true,
        ["api", "v1", "namespaces", _, _] => true,
        ["apis", _, _, rest @ ..] => rest.len() == 1 || (rest.len() == 3 && rest[0] == "namespaces"),
        _ => false,
    };
    if !is_list {
        return Cost::ReadOnly(1);
    }
    let seats = match param("limit").and_then(|l| l.parse::<u64>().ok()).filter(|l| *l > 0) {
        Some(limit) => u32::try_from(limit.div_ceil(100)).unwrap_or(MAX_LIST_SEATS).clamp(1, MAX_LIST_SEATS),
        None => MAX_LIST_SEATS,
    };
    Cost::ReadOnly(seats)
}

fn too_many() -> Response {
    let mut resp = Failure(ApiError::TooManyRequests).into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The middleware: take the request's seats, or answer 429.
pub async fn limit(State(inflight): State<Arc<Inflight>>, req: Request, next: Next) -> Response {
    let (pool, seats) = match cost(req.method(), req.uri().path(), req.uri().query()) {
        Cost::Exempt => return next.run(req).await,
        Cost::Mutating => (&inflight.mutating, 1),
        Cost::ReadOnly(seats) => (&inflight.read_only, seats.min(inflight.read_only_seats)),
    };
    let permit = match tokio::time::timeout(QUEUE_WAIT, pool.clone().acquire_many_owned(seats)).await {
        Ok(Ok(p)) => p,
        _ => return too_many(),
    };
    let resp = next.run(req).await;
    resp.map(|body| http::hold_until_sent(body, permit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cost_what_upstream_estimates() {
        let get = Method::GET;
        assert_eq!(cost(&get, "/healthz", None), Cost::Exempt);
        assert_eq!(cost(&get, "/api/v1/namespaces/default/pods", Some("watch=true")), Cost::Exempt);
        assert_eq!(cost(&Method::POST, "/api/v1/namespaces/default/pods/web/exec", Some("command=ls")), Cost::Exempt);
        assert_eq!(cost(&get, "/api/v1/namespaces/default/pods/web/log", Some("follow=true")), Cost::Exempt);
        assert_eq!(cost(&get, "/api/v1/namespaces/default/pods/web/log", None), Cost::ReadOnly(1));
        assert_eq!(cost(&get, "/api/v1/namespaces/default/pods/web", None), Cost::ReadOnly(1));
        assert_eq!(cost(&get, "/api/v1/pods", None), Cost::ReadOnly(10));
        assert_eq!(cost(&get, "/api/v1/namespaces/default/pods", Some("limit=500")), Cost::ReadOnly(5));
        assert_eq!(cost(&get, "/api/v1/namespaces/default/pods", Some("limit=1")), Cost::ReadOnly(1));
        assert_eq!(cost(&get, "/apis/coordination.k8s.io/v1/namespaces/x/leases", None), Cost::ReadOnly(10));
        assert_eq!(cost(&Method::DELETE, "/api/v1/namespaces/default/pods", None), Cost::Mutating);
        assert_eq!(cost(&Method::PATCH, "/api/v1/namespaces/default/pods/web", None), Cost::Mutating);
    }

    #[tokio::test]
    async fn a_request_without_seats_gets_429_after_the_wait() {
        let inflight = Inflight::new(10, 1);
        let held = inflight.read_only.clone().acquire_many_owned(10).await.expect("all seats");
        let started = tokio::time::Instant::now();
        let got = tokio::time::timeout(QUEUE_WAIT, inflight.read_only.clone().acquire_many_owned(1)).await;
        assert!(got.is_err() && started.elapsed() >= QUEUE_WAIT);
        drop(held);
        let resp = too_many();
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("1"));
    }
}
