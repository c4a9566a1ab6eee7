//! Carrying out one probe or lifecycle hook, with the kubelet's words for what failed: `httpGet`
//! and `tcpSocket` from the node into the pod's network (no process per probe: a connection from
//! the agent), `exec` through the runtime's `container-exec` helper, as `kubectl exec` runs;
//! a hook's `sleep` waits here.

use super::Outcome;
use crate::pod_dir::PodDir;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, ExecAction, HTTPGetAction, LifecycleHandler, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The kubelet's User-Agent on HTTP probes.
const USER_AGENT: &str = "kube-probe/1.32";
/// At most this much of an exec probe's output goes into its failure message.
const MAX_OUTPUT: u64 = 10 * 1024;

/// What a probe reaches: the pod's address and directory, the container.
pub struct Target<'a> {
    pub ip: Option<IpAddr>,
    pub container: &'a Container,
    pub dir: &'a PodDir,
}

/// Run `probe` against `target`, for at most `timeout`; `runtime_exe` runs exec probes.
pub async fn check(target: &Target<'_>, probe: &Probe, timeout: Duration, runtime_exe: &Path) -> Outcome {
    if let Some(h) = &probe.http_get {
        return http(target, h, timeout).await;
    }
    if let Some(t) = &probe.tcp_socket {
        return tcp(target, t, timeout).await;
    }
    if let Some(e) = &probe.exec {
        return exec(target, e, timeout, runtime_exe).await;
    }
    if probe.grpc.is_some() {
        return Outcome::Failure("gRPC probes are not supported by this node yet".into());
    }
    Outcome::Failure("probe has no handler".into())
}

/// Run a `postStart` or `preStop` hook against `target`, for at most `timeout`. A failure says
/// what the kubelet's `FailedPostStartHook`/`FailedPreStopHook` events say after `failed - `.
pub async fn hook(target: &Target<'_>, handler: &LifecycleHandler, timeout: Duration, runtime_exe: &Path) -> Outcome {
    // The hook's own deadline is the one below: the handlers' inner ones come later.
    let inner = timeout + Duration::from_secs(1);
    let run = async {
        if let Some(s) = &handler.sleep {
            tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
            return Outcome::Success;
        }
        if let Some(e) = &handler.exec {
            return match exec(target, e, inner, runtime_exe).await {
                Outcome::Failure(output) => {
                    let command = e.command.clone().unwrap_or_default().join(" ");
                    Outcome::Failure(format!("error: command '{command}' exited with a failure: {output}"))
                }
                ok => ok,
            };
        }
        if let Some(h) = &handler.http_get {
            return match http(target, h, inner).await {
                Outcome::Failure(why) => Outcome::Failure(format!("error: {why}")),
                ok => ok,
            };
        }
        // `tcpSocket` is accepted for compatibility and never run, as upstream.
        Outcome::Success
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| Outcome::Failure(format!("error: did not complete within {}s", timeout.as_secs())))
}

/// Why a probe has nowhere to go: its text is the probe's failure.
#[derive(Debug, thiserror::Error)]
enum AimError {
    #[error("couldn't find port: {name} in {container}")]
    NoSuchPort { name: String, container: String },
    #[error("invalid port number: {0}")]
    BadPort(i32),
    #[error("unsupported probe host {0:?}: an IP address is needed")]
    Host(String),
    #[error("the pod has no IP address yet")]
    NoAddress,
}

/// Why an HTTP probe got no answer.
#[derive(Debug, thiserror::Error)]
enum GetError {
    #[error("dial tcp {addr}: {}", go_error(.source))]
    Dial { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    Request(#[from] http::Error),
}

/// Where a probe connects: `port` (a number or the name of one of the container's ports) on
/// `host` if set, else on the pod's address.
fn aim(target: &Target<'_>, port: &IntOrString, host: Option<&str>) -> Result<SocketAddr, AimError> {
    let c = target.container;
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| AimError::NoSuchPort { name: name.clone(), container: c.name.clone() })?,
        },
    };
    let port = u16::try_from(number).ok().filter(|p| *p > 0).ok_or(AimError::BadPort(number))?;
    let ip = match host.filter(|h| !h.is_empty()) {
        Some(h) => h.parse::<IpAddr>().map_err(|_| AimError::Host(h.to_string()))?,
        None => target.ip.ok_or(AimError::NoAddress)?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// An I/O error as Go's net package prints it (`connect: connection refused`).
fn go_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("connect: {}", nix::errno::Errno::from_raw(code).desc().to_lowercase()),
        None => e.to_string(),
    }
}

async fn tcp(target: &Target<'_>, action: &TCPSocketAction, timeout: Duration) -> Outcome {
    let addr = match aim(target, &action.port, action.host.as_deref()) {
        Ok(a) => a,
        Err(e) => return Outcome::Failure(e.to_string()),
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: {}", go_error(&e))),
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

async fn http(target: &Target<'_>, action: &HTTPGetAction, timeout: Duration) -> Outcome {
    let addr = match aim(target, &action.port, action.host.as_deref()) {
        Ok(a) => a,
        Err(e) => return Outcome::Failure(e.to_string()),
    };
    if action.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")) {
        return Outcome::Failure("HTTPS probes are not supported by this node yet".into());
    }
    let path = match action.path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None => "/".to_string(),
    };
    let url = format!("http://{addr}{path}");
    let get = async {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|source| GetError::Dial { addr, source })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut request = http::Request::get(&path)
            .header(http::header::HOST, addr.to_string())
            .header(http::header::USER_AGENT, USER_AGENT)
            .header(http::header::ACCEPT, "*/*");
        for h in action.http_headers.iter().flatten() {
            request = request.header(h.name.as_str(), h.value.as_str());
        }
        let request = request.body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        Ok::<_, GetError>(response.status())
    };
    match tokio::time::timeout(timeout, get).await {
        // The kubelet's rule: 200 <= status < 400 (a redirect counts as a success).
        Ok(Ok(status)) if (200..400).contains(&status.as_u16()) => Outcome::Success,
        Ok(Ok(status)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {}", status.as_u16())),
        Ok(Err(e)) => Outcome::Failure(format!("Get {url:?}: {e}")),
        Err(_) => Outcome::Failure(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

async fn exec(target: &Target<'_>, action: &ExecAction, timeout: Duration, runtime_exe: &Path) -> Outcome {
    let command = action.command.clone().unwrap_or_default();
    let spawned = crate::exec::spawn(runtime_exe, target.dir, &target.container.name, &command, false, false).await;
    let mut process = match spawned {
        Ok(p) => p,
        Err(e) => return Outcome::Failure(e.to_string()),
    };
    let run = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = (&mut process.stdout).take(MAX_OUTPUT);
        let mut stderr = (&mut process.stderr).take(MAX_OUTPUT);
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        out.extend(err);
        (process.exit.await, out)
    };
    // Dropping the exit future on a timeout ends the command (its helper's lifeline closes).
    match tokio::time::timeout(timeout, run).await {
        Ok((0, _)) => Outcome::Success,
        Ok((_, output)) => Outcome::Failure(String::from_utf8_lossy(&output).trim_end().to_string()),
        Err(_) => Outcome::Failure(format!("command {:?} timed out", command.join(" "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;
    use std::net::Ipv4Addr;

    fn target<'a>(c: &'a Container, dir: &'a PodDir) -> Target<'a> {
        Target { ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), container: c, dir }
    }

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).expect("probe")
    }

    /// An HTTP server on loopback answering each request with `status`, and the requests seen.
    async fn server(status: u16) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await.unwrap_or(0);
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                let _ = tokio::io::AsyncWriteExt::write_all(&mut s, reply.as_bytes()).await;
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn http_probes_follow_the_kubelets_status_rule_and_send_its_headers() {
        let dir = PodDir::at("/nonexistent".into());
        let (ok, mut seen) = server(200).await;
        let c = Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort {
                name: Some("web".into()),
                container_port: ok as i32,
                ..Default::default()
            }]),
            ..Default::default()
        };
        let p = probe(
            serde_json::json!({"httpGet": {"path": "healthz", "port": "web", "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}}),
        );
        assert_eq!(
            check(&target(&c, &dir), &p, Duration::from_secs(2), Path::new("/nonexistent")).await,
            Outcome::Success
        );
        let request = seen.recv().await.expect("a request");
        assert!(request.starts_with("GET /healthz HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("user-agent: kube-probe/1.32"), "{request}");
        assert!(request.contains("x-probe: yes"), "{request}");

        let (failing, _seen) = server(500).await;
        let p = probe(serde_json::json!({"httpGet": {"path": "/", "port": failing}}));
        let out = check(&target(&c, &dir), &p, Duration::from_secs(2), Path::new("/nonexistent")).await;
        assert_eq!(out, Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
        let p = probe(serde_json::json!({"httpGet": {"port": "nope"}}));
        let out = check(&target(&c, &dir), &p, Duration::from_secs(2), Path::new("/nonexistent")).await;
        assert_eq!(out, Outcome::Failure("couldn't find port: nope in app".into()));
    }

    #[tokio::test]
    async fn tcp_probes_say_what_go_says_when_nothing_listens() {
        let dir = PodDir::at("/nonexistent".into());
        let c = Container { name: "app".into(), ..Default::default() };
        // A port that was just free: nothing listens on it.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let p = probe(serde_json::json!({"tcpSocket": {"port": closed}}));
        let out = check(&target(&c, &dir), &p, Duration::from_secs(2), Path::new("/nonexistent")).await;
        assert_eq!(out, Outcome::Failure(format!("dial tcp 127.0.0.1:{closed}: connect: connection refused")));
        let (open, _seen) = server(200).await;
        let p = probe(serde_json::json!({"tcpSocket": {"port": open}}));
        assert_eq!(
            check(&target(&c, &dir), &p, Duration::from_secs(2), Path::new("/nonexistent")).await,
            Outcome::Success
        );
    }
}
