//! Registry failures by kind, worded as containerd and the kubelet word them (`docker.io/library/x:latest:
//! not found`, `pull access denied, ...`, `dial tcp: lookup HOST: no such host`), so that what a user
//! searches for finds the usual answers. oci-client's errors are mapped here, never shown raw.

use crate::registries::Endpoint;
use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use std::error::Error;
use std::io::ErrorKind;

/// What went wrong at one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No such tag or digest (manifest unknown, 404).
    #[error("{reference}: not found")]
    NotFound { reference: String },
    /// The registry does not know the repository at all.
    #[error("{reference}: not found: repository name not known to registry")]
    NameUnknown { reference: String },
    /// 401/403: a private repository, wrong credentials, or (Docker Hub) no such repository.
    #[error(
        "{} access denied, repository does not exist or may require authorization: {detail}; to give credentials for {host}, use {}registries.yaml (configs.\"{host}\".auth) or a Docker auth file",
        if *.push { "push" } else { "pull" },
        if *.push { "" } else { "an imagePullSecret of the pod, " }
    )]
    Unauthorized { push: bool, host: String, detail: String },
    /// The name does not resolve.
    #[error("dial tcp: lookup {host}: no such host")]
    NoSuchHost { host: String },
    /// Name resolution or routing fails for want of a network.
    #[error("no network: cannot reach {host} ({detail})")]
    NoNetwork { host: String, detail: String },
    /// The registry's address refused or dropped the connection.
    #[error("dial tcp {address}: {reason}")]
    Connect { address: String, reason: String },
    /// TLS could not be set up (certificate, or a server that speaks the other protocol).
    #[error("{detail}")]
    Tls { detail: String },
    #[error("{0}")]
    Other(String),
}

/// How far a pull got at an endpoint: containerd says which, and so do we.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Authenticating and reading the manifest.
    Resolve,
    /// Downloading and storing blobs.
    Copy,
}

/// One endpoint tried during a pull, and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub endpoint: Endpoint,
    pub stage: Stage,
    pub failure: Failure,
}

impl Attempt {
    /// `failed to resolve reference "R": ...` / `failed to copy: ...`.
    pub fn describe(&self, reference: &str) -> String {
        match self.stage {
            Stage::Resolve => format!("failed to resolve reference {reference:?}: {}", self.failure),
            Stage::Copy => format!("failed to copy: {}", self.failure),
        }
    }
}

/// The whole pull error: one line when one endpoint was tried, else one line per endpoint.
pub fn pull_message(reference: &str, attempts: &[Attempt]) -> String {
    let head = format!("failed to pull and unpack image {reference:?}");
    match attempts {
        [] => format!("{head}: no registry endpoint to pull from"),
        [one] if !one.endpoint.mirror => format!("{head}: {}", one.describe(reference)),
        [one] => format!("{head}: mirror {}: {}", one.endpoint.url(), one.describe(reference)),
        many => {
            let mut out = format!("{head}: tried {} endpoints:", many.len());
            for a in many {
                let role = if a.endpoint.mirror { " (mirror)" } else { "" };
                out.push_str(&format!("\n  {}{role}: {}", a.endpoint.url(), a.describe(reference)));
            }
            out
        }
    }
}

/// What an error is about: the image's reference, the endpoint, and whether it was a push.
pub(crate) struct Context<'a> {
    pub reference: &'a str,
    pub endpoint: &'a Endpoint,
    pub push: bool,
}

impl Context<'_> {
    fn unauthorized(&self, detail: String) -> Failure {
        Failure::Unauthorized { push: self.push, host: self.endpoint.host.clone(), detail }
    }

    /// An oci-client error as a failure kind.
    pub fn oci(&self, e: OciDistributionError) -> Failure {
        use OciDistributionError as E;
        match e {
            E::RequestError(r) => self.transport(&chain(&r)),
            E::IoError(io) => self.transport(&chain(&io)),
            E::UnauthorizedError { .. } => self.unauthorized("unauthorized (HTTP 401)".into()),
            E::AuthenticationFailure(body) => {
                self.unauthorized(format!("failed to fetch a token: {}", server_message(&body)))
            }
            E::ImageManifestNotFoundError(_) => Failure::NotFound { reference: self.reference.into() },
            E::RegistryError { envelope, url } => self.envelope(&envelope, &url),
            E::ServerError { code, url, message } => self.status(code, &url, &message),
            other => Failure::Other(other.to_string()),
        }
    }

    fn envelope(&self, envelope: &OciEnvelope, url: &str) -> Failure {
        let Some(first) = envelope.errors.first() else { return Failure::Other(format!("{url}: empty error")) };
        let code = code_words(&first.code);
        match first.code {
            OciErrorCode::ManifestUnknown | OciErrorCode::NotFound | OciErrorCode::BlobUnknown => {
                Failure::NotFound { reference: self.reference.into() }
            }
            OciErrorCode::NameUnknown => Failure::NameUnknown { reference: self.reference.into() },
            OciErrorCode::Unauthorized | OciErrorCode::Denied => {
                self.unauthorized(format!("server message: {code}: {}", first.message))
            }
            _ => Failure::Other(format!("{url}: {code}: {}", first.message)),
        }
    }

    fn status(&self, code: u16, url: &str, message: &str) -> Failure {
        let reason = http::StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
        match code {
            404 => Failure::NotFound { reference: self.reference.into() },
            401 => self.unauthorized("unauthorized (HTTP 401)".into()),
            403 => self.unauthorized("denied (HTTP 403)".into()),
            // Go's TLS servers answer a plain-HTTP request so.
            400 if message.contains("HTTP request to an HTTPS server") => Failure::Tls {
                detail: format!(
                    "{} speaks HTTPS, not plain HTTP: give its CA as configs.\"{}\".tls.ca_file in registries.yaml",
                    self.endpoint.host, self.endpoint.host
                ),
            },
            _ => {
                let message = message.trim();
                let sep = if message.is_empty() { "" } else { ": " };
                Failure::Other(format!("unexpected status from request to {url}: {code} {reason}{sep}{message}"))
            }
        }
    }

    /// A connection-level failure, from the error's chain of causes.
    pub fn transport(&self, causes: &[Cause]) -> Failure {
        let host = host_of(&self.endpoint.host);
        let address = with_port(&self.endpoint.host, self.endpoint.plain_http);
        if causes.iter().any(|c| c.text == "dns error") {
            let last = causes.last().map(|c| c.text.as_str()).unwrap_or_default();
            let why = last.strip_prefix("failed to lookup address information: ").unwrap_or(last);
            if ["Name or service not known", "No address associated with hostname", "nodename nor servname"]
                .iter()
                .any(|m| why.contains(m))
            {
                return Failure::NoSuchHost { host: host.into() };
            }
            return Failure::NoNetwork {
                host: host.into(),
                detail: format!("dial tcp: lookup {host}: {}", lower(why)),
            };
        }
        if let Some(tls) = causes.iter().find_map(|c| c.tls.as_ref()) {
            return Failure::Tls { detail: tls_words(tls) };
        }
        // rustls errors that reach us only as text (wrapped by the HTTP stack).
        if causes.iter().any(|c| c.text.contains("InvalidContentType")) {
            return Failure::Tls {
                detail: tls_words(&rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)),
            };
        }
        if let Some(c) = causes.iter().find(|c| c.text.starts_with("invalid peer certificate")) {
            let detail = if c.text.contains("UnknownIssuer") {
                tls_words(&rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
            } else {
                format!("tls: failed to verify certificate: {}", c.text)
            };
            return Failure::Tls { detail };
        }
        for c in causes {
            let reason = match c.io {
                Some(ErrorKind::ConnectionRefused) => "connect: connection refused",
                Some(ErrorKind::HostUnreachable) => "connect: no route to host",
                Some(ErrorKind::TimedOut) => "i/o timeout",
                Some(ErrorKind::NetworkUnreachable) => {
                    return Failure::NoNetwork {
                        host: host.into(),
                        detail: format!("dial tcp {address}: connect: network is unreachable"),
                    };
                }
                _ => continue,
            };
            return Failure::Connect { address, reason: reason.into() };
        }
        if causes.iter().any(|c| c.text == "operation timed out") {
            return Failure::Other(format!("{}: the registry stopped answering (timed out)", self.endpoint.url()));
        }
        // Nothing known: the causes as one sentence, without repeats.
        let mut words: Vec<&str> = Vec::new();
        for c in causes {
            if !words.iter().any(|w| w.contains(c.text.as_str())) {
                words.push(&c.text);
            }
        }
        Failure::Other(words.join(": "))
    }
}

/// One link of an error's chain: what classifying needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cause {
    pub text: String,
    pub io: Option<ErrorKind>,
    pub tls: Option<rustls::Error>,
}

/// The chain of causes of `e`. An `io::Error` wrapping another error hides that error from
/// `source()`, so it is looked into directly (rustls errors travel that way).
pub(crate) fn chain(e: &(dyn Error + 'static)) -> Vec<Cause> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let mut cause = Cause { text: err.to_string(), ..Default::default() };
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            cause.io = Some(io.kind());
            cause.tls = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).cloned();
        }
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            cause.tls = Some(tls.clone());
        }
        out.push(cause);
        next = err.source();
    }
    out
}

fn tls_words(e: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E, InvalidMessage};
    match e {
        // A plain-HTTP server answered the TLS hello.
        E::InvalidMessage(InvalidMessage::InvalidContentType) => {
            "http: server gave HTTP response to HTTPS client".into()
        }
        E::InvalidCertificate(C::UnknownIssuer) => {
            "tls: failed to verify certificate: x509: certificate signed by unknown authority".into()
        }
        E::InvalidCertificate(C::Expired | C::NotValidYet) => {
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid".into()
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "tls: failed to verify certificate: x509: certificate is not valid for this host".into()
        }
        other => format!("tls: {other}"),
    }
}

/// A token service's answer: its `details`/`message` when it is JSON, else the trimmed text.
fn server_message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let from_json =
        ["details", "message", "error"].iter().find_map(|k| v[k].as_str().map(String::from)).or_else(|| {
            v["errors"][0]["message"].as_str().map(|m| {
                let code = v["errors"][0]["code"].as_str().unwrap_or_default().to_lowercase();
                format!("{code}: {m}")
            })
        });
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    if text.is_empty() { "no reason given".into() } else { text.chars().take(300).collect() }
}

/// `MANIFEST_UNKNOWN` → `manifest unknown`, as distribution prints error codes.
fn code_words(code: &OciErrorCode) -> String {
    match code {
        OciErrorCode::Other(s) => s.to_lowercase().replace('_', " "),
        known => serde_json::to_value(known)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.to_lowercase().replace('_', " ")))
            .unwrap_or_default(),
    }
}

fn lower(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// `host` without its port (`[::1]:5000` → `::1`).
fn host_of(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `host:port`, with the scheme's port when none is given (what Go prints after `dial tcp`).
fn with_port(host: &str, plain_http: bool) -> String {
    let has_port = if host.starts_with('[') { host.contains("]:") } else { host.contains(':') };
    if has_port { host.to_string() } else { format!("{host}:{}", if plain_http { 80 } else { 443 }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "docker.io/library/spring-server:latest";

    fn ep(host: &str, plain_http: bool, mirror: bool) -> Endpoint {
        Endpoint { plain_http, host: host.into(), mirror }
    }

    fn ctx(endpoint: &Endpoint) -> Context<'_> {
        Context { reference: R, endpoint, push: false }
    }

    fn cause(text: &str, io: Option<ErrorKind>) -> Cause {
        Cause { text: text.into(), io, tls: None }
    }

    #[test]
    fn registry_answers_map_to_kinds() {
        let hub = ep("registry-1.docker.io", false, false);
        let c = ctx(&hub);
        let env = |code: &str, msg: &str| OciDistributionError::RegistryError {
            envelope: serde_json::from_value(serde_json::json!({"errors": [{"code": code, "message": msg}]}))
                .expect("envelope"),
            url: "https://registry-1.docker.io/v2/library/spring-server/manifests/latest".into(),
        };
        assert_eq!(c.oci(env("MANIFEST_UNKNOWN", "manifest unknown")), Failure::NotFound { reference: R.into() });
        assert_eq!(
            c.oci(env("NAME_UNKNOWN", "repository name not known")),
            Failure::NameUnknown { reference: R.into() }
        );
        let denied = c.oci(env("DENIED", "requested access to the resource is denied"));
        assert!(matches!(denied, Failure::Unauthorized { .. }));
        assert!(
            denied.to_string().starts_with(
                "pull access denied, repository does not exist or may require authorization: server message: denied: requested access"
            ),
            "{denied}"
        );
        let e = c.oci(OciDistributionError::UnauthorizedError { url: "u".into() }).to_string();
        assert!(
            e.contains("unauthorized (HTTP 401); to give credentials for registry-1.docker.io, use an imagePullSecret"),
            "{e}"
        );
        let e = c.oci(env("TOOMANYREQUESTS", "You have reached your pull rate limit."));
        assert_eq!(e, Failure::Other("https://registry-1.docker.io/v2/library/spring-server/manifests/latest: toomanyrequests: You have reached your pull rate limit.".into()));
        let e =
            c.oci(OciDistributionError::ServerError { code: 500, url: "http://h/v2/".into(), message: "oops".into() });
        assert_eq!(e.to_string(), "unexpected status from request to http://h/v2/: 500 Internal Server Error: oops");
        let e = c.oci(OciDistributionError::ServerError { code: 404, url: "u".into(), message: String::new() });
        assert_eq!(e, Failure::NotFound { reference: R.into() });
        let e = c
            .oci(OciDistributionError::AuthenticationFailure(r#"{"details":"incorrect username or password"}"#.into()));
        assert!(e.to_string().contains("failed to fetch a token: incorrect username or password"), "{e}");
        let push = Context { push: true, ..ctx(&hub) };
        assert!(
            push.oci(OciDistributionError::UnauthorizedError { url: "u".into() })
                .to_string()
                .starts_with("push access denied")
        );
    }

    #[test]
    fn network_failures_read_like_go() {
        let hub = ep("registry-1.docker.io", false, false);
        let c = ctx(&hub);
        let dns = |why: &str| {
            vec![
                cause("error sending request for url (https://registry-1.docker.io/v2/)", None),
                cause("client error (Connect)", None),
                cause("dns error", None),
                cause(&format!("failed to lookup address information: {why}"), Some(ErrorKind::Other)),
            ]
        };
        assert_eq!(
            c.transport(&dns("Name or service not known")).to_string(),
            "dial tcp: lookup registry-1.docker.io: no such host"
        );
        assert_eq!(
            c.transport(&dns("Temporary failure in name resolution")).to_string(),
            "no network: cannot reach registry-1.docker.io (dial tcp: lookup registry-1.docker.io: temporary failure in name resolution)"
        );
        let local = ep("127.0.0.1:5000", true, true);
        let refused = [
            cause("tcp connect error", None),
            cause("Connection refused (os error 111)", Some(ErrorKind::ConnectionRefused)),
        ];
        assert_eq!(ctx(&local).transport(&refused).to_string(), "dial tcp 127.0.0.1:5000: connect: connection refused");
        let unreachable = [
            cause("tcp connect error", None),
            cause("Network is unreachable (os error 101)", Some(ErrorKind::NetworkUnreachable)),
        ];
        assert_eq!(
            c.transport(&unreachable).to_string(),
            "no network: cannot reach registry-1.docker.io (dial tcp registry-1.docker.io:443: connect: network is unreachable)"
        );
        let tls = [Cause {
            text: "x".into(),
            io: Some(ErrorKind::InvalidData),
            tls: Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)),
        }];
        assert_eq!(c.transport(&tls).to_string(), "http: server gave HTTP response to HTTPS client");
        let as_text = [
            cause("client error (Connect)", None),
            cause("received corrupt message of type InvalidContentType", Some(ErrorKind::InvalidData)),
        ];
        assert_eq!(c.transport(&as_text).to_string(), "http: server gave HTTP response to HTTPS client");
        let unknown_ca = [cause("invalid peer certificate: UnknownIssuer", Some(ErrorKind::InvalidData))];
        assert_eq!(
            c.transport(&unknown_ca).to_string(),
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        );
        let unknown = [cause("error sending request", None), cause("connection closed before message completed", None)];
        assert_eq!(
            c.transport(&unknown).to_string(),
            "error sending request: connection closed before message completed"
        );
        assert_eq!(with_port("[::1]", false), "[::1]:443");
        assert_eq!(host_of("[::1]:5000"), "::1");
    }

    #[test]
    fn one_line_for_one_endpoint_one_line_each_for_several() {
        let hub = ep("registry-1.docker.io", false, false);
        let not_found = Failure::NotFound { reference: R.into() };
        let one = [Attempt { endpoint: hub.clone(), stage: Stage::Resolve, failure: not_found.clone() }];
        assert_eq!(
            pull_message(R, &one),
            "failed to pull and unpack image \"docker.io/library/spring-server:latest\": failed to resolve reference \"docker.io/library/spring-server:latest\": docker.io/library/spring-server:latest: not found"
        );
        let mirror = ep("127.0.0.1:5000", true, true);
        let two = [
            Attempt { endpoint: mirror.clone(), stage: Stage::Resolve, failure: not_found },
            Attempt {
                endpoint: hub,
                stage: Stage::Resolve,
                failure: Failure::NoSuchHost { host: "registry-1.docker.io".into() },
            },
        ];
        let m = pull_message(R, &two);
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines.len(), 3, "{m}");
        assert!(lines[0].ends_with("tried 2 endpoints:"), "{m}");
        assert!(lines[1].starts_with("  http://127.0.0.1:5000 (mirror): failed to resolve reference"), "{m}");
        assert!(lines[2].ends_with("https://registry-1.docker.io: failed to resolve reference \"docker.io/library/spring-server:latest\": dial tcp: lookup registry-1.docker.io: no such host"), "{m}");
        let copy =
            [Attempt { endpoint: mirror, stage: Stage::Copy, failure: Failure::Other("blob x: short read".into()) }];
        assert!(pull_message(R, &copy).ends_with(": mirror http://127.0.0.1:5000: failed to copy: blob x: short read"));
    }
}
