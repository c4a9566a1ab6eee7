//! `pods/proxy` and `services/proxy` (what `kubectl proxy` users reach at
//! `/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH`): the request is passed over HTTP/1.1
//! to the pod's port, or to a ready endpoint of the Service chosen at random, and the answer
//! streamed back. As upstream, the API server dials the pod's own address (not its loopback:
//! a port a pod keeps to itself is not exposed by `get pods/proxy`).

use crate::http::Failure;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderName, Method, header};
use hyper_util::rt::TokioIo;
use rand::seq::IndexedRandom;
use serde_json::Value;
use skiff_core::{ApiError, meta};

/// How long dialing the pod may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `[scheme:]name[:port]`, as upstream splits a proxy name.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyName<'a> {
    pub name: &'a str,
    /// A port number or name; empty when not given.
    pub port: &'a str,
}

impl<'a> ProxyName<'a> {
    pub fn parse(raw: &'a str) -> Result<ProxyName<'a>, ApiError> {
        let parts: Vec<&str> = raw.split(':').collect();
        let (scheme, name, port) = match parts.as_slice() {
            [name] => ("", *name, ""),
            [name, port] => ("", *name, *port),
            [scheme, name, port] => (*scheme, *name, *port),
            _ => return Err(ApiError::BadRequest(format!("invalid proxy request name {raw:?}"))),
        };
        if !matches!(scheme, "" | "http") {
            return Err(ApiError::BadRequest(format!("scheme {scheme:?} is not supported by this server's proxy")));
        }
        Ok(ProxyName { name, port })
    }
}

/// A request's way in: its method, headers, path below `proxy/`, query and body.
pub struct Forward {
    pub method: Method,
    pub headers: HeaderMap,
    pub path: String,
    pub query: Option<String>,
    pub body: Body,
}

/// Headers that belong to one hop (RFC 9110 7.6.1, those the Connection header names too), and
/// the caller's credentials and impersonation for this server, which the pod must not see.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let hop: [HeaderName; 7] = [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ];
    let mut out = headers.clone();
    let named: Vec<HeaderName> = (headers.get_all(header::CONNECTION).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for h in hop.iter().chain(&named).chain([&header::AUTHORIZATION, &header::HOST]) {
        out.remove(h);
    }
    let impersonation: Vec<HeaderName> =
        out.keys().filter(|k| k.as_str().starts_with("impersonate-")).cloned().collect();
    for h in impersonation {
        out.remove(h);
    }
    out
}

/// The pod's port a `pods/proxy` name means: a number, a container port's name, or (none given)
/// the first container port, else 80.
pub fn pod_port(pod: &Value, port: &str) -> Result<u16, ApiError> {
    let ports: Vec<&Value> = (pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten())
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .collect();
    if port.is_empty() {
        return Ok(ports
            .first()
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(80));
    }
    if let Ok(n) = port.parse::<u16>() {
        return Ok(n);
    }
    ports
        .iter()
        .find(|p| p["name"].as_str() == Some(port))
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("no such port {port:?} on pod {}", meta::name(pod))))
}

/// The endpoint a `services/proxy` name means: a ready address (with its pod) and port from the
/// Service's Endpoints, for the Service port named or numbered (or its only one).
pub fn service_endpoint(svc: &Value, endpoints: &Value, port: &str) -> Result<(String, u16), ApiError> {
    let name = meta::name(svc);
    let ports = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let chosen = if port.is_empty() {
        match ports.as_slice() {
            [one] => one,
            _ => return Err(ApiError::ServiceUnavailable(format!("no endpoints available for service {name:?}"))),
        }
    } else {
        ports
            .iter()
            .find(|p| {
                p["name"].as_str() == Some(port) || p["port"].as_u64().map(|n| n.to_string()).as_deref() == Some(port)
            })
            .ok_or_else(|| ApiError::ServiceUnavailable(format!("no endpoints available for service {name:?}")))?
    };
    let port_name = chosen["name"].as_str().unwrap_or_default();
    let mut candidates = Vec::new();
    for subset in endpoints.pointer("/subsets").and_then(Value::as_array).into_iter().flatten() {
        let Some(number) = (subset["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
            .and_then(|p| p["port"].as_u64())
            .and_then(|n| u16::try_from(n).ok())
        else {
            continue;
        };
        for address in subset["addresses"].as_array().into_iter().flatten() {
            if address.pointer("/targetRef/kind").and_then(Value::as_str) == Some("Pod")
                && let Some(pod) = address.pointer("/targetRef/name").and_then(Value::as_str)
            {
                candidates.push((pod.to_string(), number));
            }
        }
    }
    candidates
        .choose(&mut rand::rng())
        .cloned()
        .ok_or_else(|| ApiError::ServiceUnavailable(format!("no endpoints available for service {name:?}")))
}

/// Pass `request` to port `port` of `pod` and stream back what it answers.
pub async fn to_pod(pod: &Value, port: u16, request: Forward) -> Result<Response, Failure> {
    let unavailable =
        |e: &dyn std::fmt::Display| ApiError::ServiceUnavailable(format!("error trying to reach service: {e}"));
    let ip: std::net::IpAddr = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| ApiError::ServiceUnavailable(format!("pod {:?} has no IP address yet", meta::name(pod))))?;
    let addr = std::net::SocketAddr::new(ip, port);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| unavailable(&format!("dial tcp {addr}: i/o timeout")))?
        .map_err(|e| unavailable(&format!("dial tcp {addr}: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| unavailable(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "a proxied connection");
        }
    });
    let path_and_query = match &request.query {
        Some(q) => format!("{}?{q}", request.path),
        None => request.path.clone(),
    };
    let mut builder = http::Request::builder().method(request.method).uri(path_and_query);
    if let Some(h) = builder.headers_mut() {
        *h = end_to_end(&request.headers);
        h.insert(
            header::HOST,
            http::HeaderValue::from_str(&format!("{}:{port}", meta::name(pod)))
                .unwrap_or(http::HeaderValue::from_static("localhost")),
        );
    }
    let outgoing = builder.body(request.body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let answer = sender.send_request(outgoing).await.map_err(|e| unavailable(&e))?;
    let (mut parts, body) = answer.into_parts();
    parts.headers = end_to_end(&parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_split_as_upstream() {
        assert_eq!(ProxyName::parse("web").expect("ok"), ProxyName { name: "web", port: "" });
        assert_eq!(ProxyName::parse("web:http").expect("ok"), ProxyName { name: "web", port: "http" });
        assert_eq!(ProxyName::parse("http:web:80").expect("ok"), ProxyName { name: "web", port: "80" });
        assert!(ProxyName::parse("https:web:443").is_err());
        assert!(ProxyName::parse("a:b:c:d").is_err());
    }

    #[test]
    fn ports_of_pods_and_services() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
            "ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(pod_port(&pod, "").expect("first"), 8080);
        assert_eq!(pod_port(&pod, "http").expect("named"), 8080);
        assert_eq!(pod_port(&pod, "9000").expect("number"), 9000);
        assert!(pod_port(&pod, "grpc").is_err());

        let svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [
            {"name": "http", "port": 80}, {"name": "admin", "port": 9000}]}});
        let endpoints = json!({"subsets": [{"addresses": [{"ip": "10.42.0.5", "targetRef": {"kind": "Pod", "name": "web-1"}}],
            "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}]}]});
        assert_eq!(service_endpoint(&svc, &endpoints, "http").expect("by name"), ("web-1".into(), 8080));
        assert_eq!(service_endpoint(&svc, &endpoints, "9000").expect("by number"), ("web-1".into(), 9090));
        let e = service_endpoint(&svc, &endpoints, "").expect_err("two ports, none named");
        assert_eq!(e.to_string(), "no endpoints available for service \"web\"");
        assert!(service_endpoint(&svc, &json!({}), "http").is_err());
    }
}
