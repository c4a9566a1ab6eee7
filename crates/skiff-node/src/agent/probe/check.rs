//! Carrying out one probe or lifecycle hook, with the kubelet's words for what failed: `httpGet`
//! ([`super::http`]), `grpc` ([`super::grpc`]) and `tcpSocket` from the node into the pod's
//! network (no process per probe: a connection from the agent), `exec` through the runtime's
//! `container-exec` helper, as `kubectl exec` runs; a hook's `sleep` waits here.

use super::target::{Target, aim, go_error};
use super::{Outcome, grpc, http};
use k8s_openapi::api::core::v1::{ExecAction, LifecycleHandler, Probe, TCPSocketAction};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// At most this much of an exec probe's output goes into its failure message.
const MAX_OUTPUT: u64 = 10 * 1024;

/// Run `probe` against `target`, for at most `timeout`; `runtime_exe` runs exec probes.
pub async fn check(target: &Target<'_>, probe: &Probe, timeout: Duration, runtime_exe: &Path) -> Outcome {
    if let Some(h) = &probe.http_get {
        return http::get(target, h, timeout).await;
    }
    if let Some(t) = &probe.tcp_socket {
        return tcp(target, t, timeout).await;
    }
    if let Some(e) = &probe.exec {
        return exec(target, e, timeout, runtime_exe).await;
    }
    if let Some(g) = &probe.grpc {
        return grpc::check(target, g, timeout).await;
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
            return match http::get(target, h, inner).await {
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
    use super::super::target::testing::{probe, target};
    use super::*;
    use crate::pod_dir::PodDir;
    use k8s_openapi::api::core::v1::Container;

    #[tokio::test]
    async fn tcp_probes_say_what_go_says_when_nothing_listens() {
        let dir = PodDir::at("/nonexistent".into());
        let c = Container { name: "app".into(), ..Default::default() };
        // A port that was just free: nothing listens on it.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let p = probe(serde_json::json!({"tcpSocket": {"port": closed}}));
        let out = check(&target(&c, &dir), &p, Duration::from_secs(2), Path::new("/nonexistent")).await;
        assert_eq!(out, Outcome::Failure(format!("dial tcp 127.0.0.1:{closed}: connect: connection refused")));
        // A listener that never accepts still completes the handshake (its backlog does).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let open = listener.local_addr().expect("addr").port();
        let p = probe(serde_json::json!({"tcpSocket": {"port": open}}));
        assert_eq!(
            check(&target(&c, &dir), &p, Duration::from_secs(2), Path::new("/nonexistent")).await,
            Outcome::Success
        );
    }
}
