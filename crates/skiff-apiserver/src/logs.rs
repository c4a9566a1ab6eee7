//! `GET pods/NAME/log`: the container is picked and checked here (with the kubelet's wording for
//! containers that have no log yet), and the bytes come from the node that runs the pod.

use crate::AppState;
use crate::http::Failure;
use crate::query::{bool_param, int_param};
use crate::registry::ObjectRef;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use skiff_core::ApiError;
use skiff_core::kinds::Kind;
use skiff_nodeapi::LogRequest;

/// The query of a log request.
#[derive(Debug, Default, PartialEq)]
pub struct LogQuery {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub since_seconds: Option<u64>,
    pub since_time: Option<jiff::Timestamp>,
    pub limit_bytes: Option<usize>,
}

fn invalid(field: &str, value: &str, why: &str) -> ApiError {
    ApiError::Unprocessable(format!("PodLogOptions \"\" is invalid: {field}: Invalid value: {value}: {why}"))
}

impl LogQuery {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = LogQuery::default();
        // A count that must be positive (or, with `zero_ok`, non-negative).
        let count = |k: &str, v: &str, zero_ok: bool| -> Result<u64, ApiError> {
            let n: i64 = int_param(k, v)?;
            let why = if zero_ok { "must be greater than or equal to 0" } else { "must be greater than 0" };
            u64::try_from(n).ok().filter(|n| zero_ok || *n > 0).ok_or_else(|| invalid(k, v, why))
        };
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let v = v.as_ref();
            match k.as_ref() {
                "container" => q.container = Some(v.to_string()).filter(|s| !s.is_empty()),
                "follow" => q.follow = bool_param("follow", v)?,
                "previous" => q.previous = bool_param("previous", v)?,
                "timestamps" => q.timestamps = bool_param("timestamps", v)?,
                "tailLines" => q.tail_lines = Some(count("tailLines", v, true)? as usize),
                "sinceSeconds" => q.since_seconds = Some(count("sinceSeconds", v, false)?),
                "sinceTime" => {
                    q.since_time = Some(
                        v.parse().map_err(|_| ApiError::BadRequest(format!("invalid value for sinceTime: {v:?}")))?,
                    )
                }
                "limitBytes" => q.limit_bytes = Some(count("limitBytes", v, false)? as usize),
                _ => {}
            }
        }
        if q.since_seconds.is_some() && q.since_time.is_some() {
            return Err(ApiError::Unprocessable(
                "PodLogOptions \"\" is invalid: sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
            ));
        }
        Ok(q)
    }
}

/// Which container and which of its runs the request means, in the kubelet's terms.
pub fn resolve(pod: &Pod, q: &LogQuery) -> Result<(String, String), ApiError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let inits: Vec<String> = spec.init_containers.iter().flatten().map(|c| c.name.clone()).collect();
    let mains: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    let ephemeral: Vec<String> = spec.ephemeral_containers.iter().flatten().map(|c| c.name.clone()).collect();
    let container = match &q.container {
        Some(c) => c.clone(),
        None if mains.len() == 1 && inits.is_empty() && ephemeral.is_empty() => mains[0].clone(),
        None => {
            let mut msg =
                format!("a container name must be specified for pod {name}, choose one of: [{}]", mains.join(" "));
            if !inits.is_empty() {
                msg.push_str(&format!(" or one of the init containers: [{}]", inits.join(" ")));
            }
            if !ephemeral.is_empty() {
                msg.push_str(&format!(" or one of the ephemeral containers: [{}]", ephemeral.join(" ")));
            }
            return Err(ApiError::BadRequest(msg));
        }
    };
    if ![&mains, &inits, &ephemeral].iter().any(|names| names.contains(&container)) {
        return Err(ApiError::BadRequest(format!("container {container} is not valid for pod {name}")));
    }
    let status = pod.status.clone().unwrap_or_default();
    let statuses: Vec<ContainerStatus> = status
        .container_statuses
        .into_iter()
        .flatten()
        .chain(status.init_container_statuses.into_iter().flatten())
        .chain(status.ephemeral_container_statuses.into_iter().flatten())
        .collect();
    let Some(cs) = statuses.into_iter().find(|s| s.name == container) else {
        return Err(ApiError::BadRequest(format!(
            "container {container:?} in pod {name:?} is waiting to start: ContainerCreating"
        )));
    };
    let last = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref()).and_then(|t| t.container_id.clone());
    if q.previous {
        return match last {
            Some(id) => Ok((container, id)),
            None => Err(ApiError::BadRequest(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            ))),
        };
    }
    let state = cs.state.clone().unwrap_or_default();
    if let Some(w) = &state.waiting {
        if let Some(id) = last {
            return Ok((container, id));
        }
        let reason = w.reason.clone().unwrap_or_else(|| "ContainerCreating".into());
        let why = match reason.as_str() {
            "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName" => {
                "trying and failing to pull image".to_string()
            }
            _ => reason,
        };
        return Err(ApiError::BadRequest(format!(
            "container {container:?} in pod {name:?} is waiting to start: {why}"
        )));
    }
    match cs.container_id {
        Some(id) => Ok((container, id)),
        None => Err(ApiError::BadRequest(format!("container {container:?} in pod {name:?} is not available"))),
    }
}

pub async fn serve(
    state: &AppState,
    kind: &'static dyn Kind,
    namespace: &str,
    name: &str,
    raw_query: Option<&str>,
) -> Result<Response, Failure> {
    let q = LogQuery::parse(raw_query)?;
    let obj = state.registry.get(ObjectRef { kind, namespace, name }).await?;
    let pod: Pod = serde_json::from_value(obj.clone()).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (container, container_id) = resolve(&pod, &q)?;
    let (node, link) = crate::nodes::for_pod(state, &obj).await?;
    let since = q.since_time.or_else(|| {
        q.since_seconds.and_then(|s| jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_secs(s as i64)).ok())
    });
    let request = LogRequest {
        node,
        pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
        container,
        container_id,
        follow: q.follow,
        tail_lines: q.tail_lines,
        since,
        timestamps: q.timestamps,
        limit_bytes: q.limit_bytes,
    };
    let stream = link.logs(request).await.map_err(ApiError::from)?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "web" },
            "spec": { "containers": [{ "name": "nginx" }] },
            "status": status,
        }))
        .expect("pod")
    }

    #[test]
    fn parses_and_checks_the_query() {
        let q = LogQuery::parse(Some("container=a&follow=true&tailLines=5&limitBytes=10&timestamps=1")).expect("parse");
        assert_eq!(q.container.as_deref(), Some("a"));
        assert!(q.follow && q.timestamps);
        assert_eq!((q.tail_lines, q.limit_bytes), (Some(5), Some(10)));
        assert_eq!(LogQuery::parse(Some("tailLines=-1")).expect_err("negative").code(), 422);
        assert_eq!(
            LogQuery::parse(Some("sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z")).expect_err("both").code(),
            422
        );
    }

    #[test]
    fn kubelet_wording_for_containers_without_logs() {
        let waiting = pod(serde_json::json!({ "containerStatuses": [{
            "name": "nginx", "image": "nginx", "imageID": "", "ready": false, "restartCount": 0,
            "state": { "waiting": { "reason": "ContainerCreating" } },
        }]}));
        let e = resolve(&waiting, &LogQuery::default()).expect_err("waiting");
        assert_eq!(e.to_string(), r#"container "nginx" in pod "web" is waiting to start: ContainerCreating"#);
        let e = resolve(&waiting, &LogQuery { previous: true, ..Default::default() }).expect_err("previous");
        assert_eq!(e.to_string(), r#"previous terminated container "nginx" in pod "web" not found"#);

        let crashed = pod(serde_json::json!({ "containerStatuses": [{
            "name": "nginx", "image": "nginx", "imageID": "", "ready": false, "restartCount": 1,
            "state": { "waiting": { "reason": "CrashLoopBackOff" } },
            "lastState": { "terminated": { "exitCode": 1, "containerID": "skiff://u-nginx-0" } },
        }]}));
        assert_eq!(
            resolve(&crashed, &LogQuery::default()).expect("last run"),
            ("nginx".into(), "skiff://u-nginx-0".into())
        );
        let e =
            resolve(&crashed, &LogQuery { container: Some("x".into()), ..Default::default() }).expect_err("bad name");
        assert_eq!(e.to_string(), "container x is not valid for pod web");
    }
}
