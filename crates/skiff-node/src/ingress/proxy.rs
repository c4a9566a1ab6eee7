//! The ingress's HTTP side: every request (HTTP/1.1 or HTTP/2, plain or TLS) is routed by the
//! current [`Routes`] and passed over HTTP/1.1 to a ready endpoint chosen at random, with the
//! `X-Forwarded-*` headers, on a connection kept open for the next request to that endpoint
//! ([`Upstreams`]); a WebSocket (any `Upgrade`) is passed through once the backend agrees. What
//! cannot be served gets a short page saying why: 404 (no rule), 502 (a missing Service or port,
//! or an endpoint that does not answer), 503 (no ready endpoint), 504 (an endpoint that does not
//! accept the connection in time).

use super::routes::{Backend, Routes};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rand::seq::IndexedRandom;
use std::net::SocketAddr;
use std::time::Duration;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// How long connecting to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection to an endpoint stays open unused (nginx's upstream keepalive_timeout
/// is 60 s; a backend that closes sooner is fine: a request never sent is retried).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per endpoint.
const IDLE_PER_ENDPOINT: usize = 64;

/// The connections to endpoints, kept open between requests as ingress controllers' upstream
/// keep-alive does: one per request would cost a TCP handshake (and the backend a new
/// connection, a fork for some servers) every time.
pub type Upstreams = Client<HttpConnector, Body>;

pub fn upstreams() -> Upstreams {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(IDLE_PER_ENDPOINT)
        .build(connector)
}

/// One request from `client` (over TLS when `https`).
pub async fn handle(
    mut req: Request<Incoming>,
    routes: std::sync::Arc<Routes>,
    upstreams: Upstreams,
    client: SocketAddr,
    https: bool,
) -> Result<Response<Body>, hyper::Error> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(String::from))
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    if !plain_path(&path) {
        return Ok(page(StatusCode::BAD_REQUEST, "400 Bad Request: the path has dot segments or encoded separators"));
    }
    let addresses = match routes.route(&host, &path) {
        None => return Ok(page(StatusCode::NOT_FOUND, "404 page not found")),
        Some(Backend::Missing(why)) => return Ok(page(StatusCode::BAD_GATEWAY, &format!("502 Bad Gateway: {why}"))),
        Some(Backend::Endpoints { service, addresses }) if addresses.is_empty() => {
            let why = format!("503 Service Unavailable: no ready endpoints for service \"{service}\"");
            return Ok(page(StatusCode::SERVICE_UNAVAILABLE, &why));
        }
        Some(Backend::Endpoints { addresses, .. }) => addresses,
    };
    let Some(&endpoint) = addresses.choose(&mut rand::rng()) else {
        return Ok(page(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable"));
    };
    let upgrade = wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let outgoing = backend_request(req, endpoint, &host, client, https, upgrade);
    let mut answer = match upstreams.request(outgoing).await {
        Ok(a) => a,
        Err(e) if timed_out(&e) => {
            return Ok(page(StatusCode::GATEWAY_TIMEOUT, &format!("504 Gateway Timeout: {endpoint}")));
        }
        Err(e) => return Ok(page(StatusCode::BAD_GATEWAY, &format!("502 Bad Gateway: {endpoint}: {}", causes(&e)))),
    };
    if answer.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let backend_upgrade = hyper::upgrade::on(&mut answer);
        tokio::spawn(async move {
            let (Ok(a), Ok(b)) = (client_upgrade.await, backend_upgrade.await) else { return };
            let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        });
        let (mut parts, _) = answer.into_parts();
        strip_hop_by_hop(&mut parts.headers, true);
        return Ok(Response::from_parts(parts, empty()));
    }
    let (mut parts, body) = answer.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    Ok(Response::from_parts(parts, body.boxed()))
}

/// A path the rules can be matched against as it is: no `.` or `..` segment and no encoded
/// `.`, `/` or `\` that a backend would decode into one (else `/public/../admin` would pass
/// as `/public`).
fn plain_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    !["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e)) && !path.split('/').any(|s| s == "." || s == "..")
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    let connection = headers.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok());
    headers.contains_key(header::UPGRADE)
        && connection.flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// An error and its causes, as one line (the client's own says only "client error (Connect)").
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    out
}

/// Whether connecting to the endpoint took too long.
fn timed_out(e: &dyn std::error::Error) -> bool {
    let mut next = e.source();
    while let Some(cause) = next {
        if cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
            return true;
        }
        next = cause.source();
    }
    false
}

/// The request as the endpoint gets it: for `endpoint` (the pool's key; the backend sees an
/// origin-form target), the client's headers without the hop ones, and where it came from.
fn backend_request(
    req: Request<Incoming>,
    endpoint: SocketAddr,
    host: &str,
    client: SocketAddr,
    https: bool,
    upgrade: bool,
) -> Request<Body> {
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    parts.uri = format!("http://{endpoint}{path_and_query}").parse().unwrap_or_default();
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    if let Ok(h) = HeaderValue::from_str(host) {
        parts.headers.insert(header::HOST, h);
    }
    let forwarded_for = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before}, {}", client.ip()),
        None => client.ip().to_string(),
    };
    set(&mut parts.headers, "x-forwarded-for", &forwarded_for);
    set(&mut parts.headers, "x-forwarded-host", host);
    set(&mut parts.headers, "x-forwarded-proto", if https { "https" } else { "http" });
    set(&mut parts.headers, "x-real-ip", &client.ip().to_string());
    Request::from_parts(parts, body.boxed())
}

/// Remove what belongs to one connection (RFC 9110 7.6.1); an upgrade keeps its two headers.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && *n == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [header::TE, header::TRAILER, header::TRANSFER_ENCODING, header::PROXY_AUTHORIZATION] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

fn empty() -> Body {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
}

/// A short plain-text answer from the ingress itself.
fn page(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_escape_their_rule_are_refused() {
        assert!(plain_path("/public/index.html"));
        assert!(plain_path("/a/.well-known/x"));
        for bad in ["/public/../admin", "/public/./x", "/public/%2e%2e/admin", "/a%2Fb", "/a%5c..%5cb"] {
            assert!(!plain_path(bad), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_stay() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);

        let mut ws = HeaderMap::new();
        ws.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        ws.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&ws));
        strip_hop_by_hop(&mut ws, true);
        assert_eq!(ws.get(header::UPGRADE).and_then(|v| v.to_str().ok()), Some("websocket"));
        assert_eq!(ws.get(header::CONNECTION).and_then(|v| v.to_str().ok()), Some("upgrade"));
    }
}
