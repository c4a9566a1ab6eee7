//! `grpc` probes: the standard health check (`grpc.health.v1.Health/Check`) from the node into
//! the pod's network, in plain text, with the kubelet's words for each way it fails.

use super::Outcome;
use super::target::{Target, USER_AGENT, aim};
use k8s_openapi::api::core::v1::GRPCAction;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// How long a refused connection waits before it is tried again (the kubelet's dial blocks,
/// retrying, until the probe's timeout).
const REDIAL: Duration = Duration::from_millis(100);

/// Ask the pod's health service about `action.service` within `timeout`: success only for
/// `SERVING`.
pub async fn check(target: &Target<'_>, action: &GRPCAction, timeout: Duration) -> Outcome {
    let addr = match aim(target, &IntOrString::Int(action.port), None) {
        Ok(a) => a,
        Err(e) => return Outcome::Failure(e.to_string()),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let within = format!("{}s", timeout.as_secs());
    let endpoint = match Endpoint::from_shared(format!("http://{addr}")).and_then(|e| e.user_agent(USER_AGENT)) {
        Ok(e) => e,
        Err(e) => return Outcome::Failure(format!("error: failed to connect service at \"{addr}\": {e}")),
    };
    let Some(channel) = connect(&endpoint, deadline).await else {
        return Outcome::Failure(format!(
            "timeout: failed to connect service \"{addr}\" within {within}: context deadline exceeded"
        ));
    };
    let request = HealthCheckRequest { service: action.service.clone().unwrap_or_default() };
    let answer = tokio::time::timeout_at(deadline, HealthClient::new(channel).check(request)).await;
    match answer {
        Err(_) => Outcome::Failure(format!("timeout: health rpc did not complete within {within}")),
        Ok(Err(status)) => match status.code() {
            Code::Unimplemented => Outcome::Failure(format!(
                "this server doesn't implement the grpc health protocol (grpc.health.v1.Health): {}",
                go_status(&status)
            )),
            Code::DeadlineExceeded => Outcome::Failure(format!("timeout: health rpc did not complete within {within}")),
            _ => Outcome::Failure(format!("error: health rpc probe failed: {}", go_status(&status))),
        },
        Ok(Ok(response)) => match response.into_inner().status() {
            ServingStatus::Serving => Outcome::Success,
            other => Outcome::Failure(format!("service unhealthy (responded with {:?})", other.as_str_name())),
        },
    }
}

/// A connection, retried until `deadline` (None: there was none by then).
async fn connect(endpoint: &Endpoint, deadline: tokio::time::Instant) -> Option<Channel> {
    loop {
        match tokio::time::timeout_at(deadline, endpoint.connect()).await {
            Ok(Ok(channel)) => return Some(channel),
            Ok(Err(_)) if tokio::time::Instant::now() + REDIAL < deadline => tokio::time::sleep(REDIAL).await,
            _ => return None,
        }
    }
}

/// A gRPC status as grpc-go prints it.
fn go_status(status: &tonic::Status) -> String {
    let code = match status.code() {
        Code::Ok => "OK".to_string(),
        Code::Cancelled => "Canceled".to_string(),
        other => format!("{other:?}"),
    };
    format!("rpc error: code = {code} desc = {}", status.message())
}

#[cfg(test)]
mod tests {
    use super::super::target::testing::target;
    use super::*;
    use crate::pod_dir::PodDir;
    use k8s_openapi::api::core::v1::Container;
    use tonic_health::pb::health_server::HealthServer;

    /// A gRPC server on loopback: with the health service (its "" and "db" services reporting
    /// `db_status`) or without it.
    async fn server(db_status: Option<tonic_health::ServingStatus>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let router = match db_status {
            Some(status) => {
                let (reporter, service) = tonic_health::server::health_reporter();
                reporter.set_service_status("db", status).await;
                tonic::transport::Server::builder().add_service(service)
            }
            None => tonic::transport::Server::builder()
                .add_optional_service(None::<HealthServer<tonic_health::server::HealthService>>),
        };
        tokio::spawn(router.serve_with_incoming(incoming));
        port
    }

    async fn outcome(port: u16, service: Option<&str>) -> Outcome {
        let dir = PodDir::at("/nonexistent".into());
        let c = Container { name: "app".into(), ..Default::default() };
        let action = GRPCAction { port: i32::from(port), service: service.map(String::from), ..Default::default() };
        check(&target(&c, &dir), &action, Duration::from_secs(1)).await
    }

    #[tokio::test]
    async fn grpc_probes_speak_the_health_protocol_with_the_kubelets_words() {
        let serving = server(Some(tonic_health::ServingStatus::Serving)).await;
        assert_eq!(outcome(serving, None).await, Outcome::Success);
        assert_eq!(outcome(serving, Some("db")).await, Outcome::Success);
        let out = outcome(serving, Some("cache")).await;
        assert_eq!(
            out,
            Outcome::Failure(
                "error: health rpc probe failed: rpc error: code = NotFound desc = service not registered".into()
            )
        );

        let down = server(Some(tonic_health::ServingStatus::NotServing)).await;
        let out = outcome(down, Some("db")).await;
        assert_eq!(out, Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into()));

        let bare = server(None).await;
        let Outcome::Failure(why) = outcome(bare, None).await else { panic!("no health service passed") };
        assert!(
            why.starts_with("this server doesn't implement the grpc health protocol (grpc.health.v1.Health): rpc error: code = Unimplemented"),
            "{why}"
        );

        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let out = outcome(closed, None).await;
        assert_eq!(
            out,
            Outcome::Failure(format!(
                "timeout: failed to connect service \"127.0.0.1:{closed}\" within 1s: context deadline exceeded"
            ))
        );
    }
}
