//! The subresources that are not a part of the object: `pods/binding`, `namespaces/finalize`,
//! `scale` (of the kinds with replicas), `pods/eviction`, and the streaming ones that reach the pod's node
//! (`pods/exec`, `pods/attach`, `pods/portforward`; `pods/log` is `crate::logs`).

use super::Call;
use crate::http::{self, Failure};
use crate::registry::{DeleteOptions, ObjectRef, node_restriction_admission};
use axum::body::Body;
use axum::http::{Extensions, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};
use skiff_core::field::{FieldError, Path};
use skiff_core::kinds::{self, Part};
use skiff_core::patch::{self, PatchType};
use skiff_core::selector::LabelSelector;
use skiff_core::{ApiError, meta, scale, status, time};

/// POST pods/NAME/binding: assign the pod to a node (the scheduler's write).
pub(super) async fn bind(call: &Call<'_>, name: &str, body: Body) -> Result<Response, Failure> {
    let raw = http::object_body(&http::read_body(body).await?, http::content_type(call.headers))?;
    let node = raw.pointer("/target/name").and_then(Value::as_str).unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            name,
            vec![FieldError::required(&Path::new("target").child("name"), "")],
        )
        .into());
    }
    let r = call.at(name);
    let current = call.state.registry.get(r).await?;
    if meta::is_deleting(&current) {
        return Err(ApiError::conflict("pods", name, "pod is being deleted, cannot be assigned to a host").into());
    }
    let assigned = current.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if !assigned.is_empty() {
        return Err(ApiError::conflict(
            "pods/binding",
            name,
            format!("pod {name} is already assigned to node {assigned:?}"),
        )
        .into());
    }
    let mut next = current.clone();
    next["spec"]["nodeName"] = json!(node);
    let conds = next["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
    conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": time::rfc3339(Timestamp::now())}));
    next["status"]["conditions"] = json!(conds);
    if !call.opts.dry_run {
        call.state.registry.write_raw(r, &current, next).await?;
    }
    Ok(http::json(StatusCode::CREATED, &status::success_status(None), &[]))
}

/// GET .../scale.
pub(super) async fn get_scale(call: &Call<'_>, name: &str) -> Result<Response, Failure> {
    let obj = call.state.registry.get(call.at(name)).await?;
    Ok(http::json(StatusCode::OK, &call.kind.scale(&obj)?, &[]))
}

/// Set the replicas of `current` (the object as read: its resourceVersion makes the write
/// conditional) and answer with the new Scale.
async fn write_replicas(call: &Call<'_>, name: &str, mut current: Value, replicas: i64) -> Result<Response, ApiError> {
    call.kind.set_replicas(&mut current, replicas)?;
    let updated = call.state.registry.update(call.at(name), current, Part::Main, &call.opts).await?;
    Ok(http::json(StatusCode::OK, &call.kind.scale(&updated)?, &[]))
}

/// PUT .../scale: a whole Scale (a resourceVersion in it must be the object's).
pub(super) async fn update_scale(call: &Call<'_>, name: &str, body: Body) -> Result<Response, Failure> {
    let raw = http::object_body(&http::read_body(body).await?, http::content_type(call.headers))?;
    let current = call.state.registry.get(call.at(name)).await?;
    let replicas = scale::requested(&raw, &current, |n| call.kind.info().stale(n))?;
    Ok(write_replicas(call, name, current, replicas).await?)
}

/// Attempts at a scale patch before giving up on concurrent writers.
const SCALE_PATCH_RETRIES: usize = 8;

/// PATCH .../scale (what `kubectl scale` sends): the patch applies to the current Scale; a
/// concurrent write is retried unless the patch named a resourceVersion.
pub(super) async fn patch_scale(call: &Call<'_>, name: &str, body: Body) -> Result<Response, Failure> {
    let ct = http::content_type(call.headers).to_string();
    let patch_type = PatchType::from_content_type(&ct)
        .ok_or_else(|| ApiError::UnsupportedMediaType(format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct})")))?;
    let raw = http::parse_body(&http::read_body(body).await?, &ct, patch_type == PatchType::Apply)?;
    // A Scale has no lists: an applied or strategic patch merges as a merge patch does.
    let patch_type = if patch_type == PatchType::Json { PatchType::Json } else { PatchType::Merge };
    let mut last = None;
    for _ in 0..SCALE_PATCH_RETRIES {
        let current = call.state.registry.get(call.at(name)).await?;
        let patched = patch::apply("Scale", patch_type, &call.kind.scale(&current)?, &raw)?;
        let replicas = scale::requested(&patched, &current, |n| call.kind.info().stale(n))?;
        match write_replicas(call, name, current, replicas).await {
            Err(e @ ApiError::Conflict { .. }) if meta::resource_version(&raw).is_empty() => last = Some(e),
            result => return Ok(result?),
        }
    }
    Err(last.unwrap_or_else(|| call.kind.info().stale(name)).into())
}

/// POST pods/NAME/eviction: delete the pod unless the PodDisruptionBudget covering it allows no
/// disruption now (429, as upstream); an allowed eviction is counted in the budget's status first.
pub(super) async fn evict(call: &Call<'_>, name: &str, body: Body) -> Result<Response, Failure> {
    let raw = http::object_body(&http::read_body(body).await?, http::content_type(call.headers))?;
    let reg = &call.state.registry;
    let ns = call.at(name).namespace;
    node_restriction_admission::admit_eviction(reg, ns, name, call.opts.user.as_deref()).await?;
    let pod = reg.get(call.at(name)).await?;
    let ns = meta::namespace(&pod).to_string();
    let options: DeleteOptions = serde_json::from_value(raw.get("deleteOptions").cloned().unwrap_or(json!({})))
        .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?;
    let dry = call.query.dry_run || options.dry_run.as_ref().is_some_and(|d| d.iter().any(|x| x == "All"));
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    // A finished pod disrupts nothing.
    if !matches!(phase, "Succeeded" | "Failed") {
        let budgets = kinds::by_resource("policy", "v1", "poddisruptionbudgets").ok_or(ApiError::NoResource)?;
        let (all, _) = reg.list(budgets, Some(&ns), &Default::default(), &Default::default()).await?;
        let labels = meta::labels(&pod);
        let covering: Vec<&Value> = all
            .iter()
            .filter(|b| {
                let sel = b.pointer("/spec/selector").map(LabelSelector::from_api).unwrap_or_default();
                !sel.is_empty() && sel.matches(&labels)
            })
            .collect();
        match covering.as_slice() {
            [] => {}
            [budget] => {
                let allowed = budget.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
                let observed = budget.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
                let generation = budget.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
                if observed < generation || allowed <= 0 {
                    let need = budget.pointer("/status/desiredHealthy").and_then(Value::as_i64).unwrap_or(0);
                    let has = budget.pointer("/status/currentHealthy").and_then(Value::as_i64).unwrap_or(0);
                    return Err(ApiError::DisruptionBudget {
                        budget: format!(
                            "The disruption budget {} needs {need} healthy pods and has {has} currently",
                            meta::name(budget)
                        ),
                    }
                    .into());
                }
                if !dry {
                    let mut next = (*budget).clone();
                    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
                    next["status"]["disruptedPods"][name] = json!(time::rfc3339(Timestamp::now()));
                    let r = ObjectRef { kind: budgets, namespace: &ns, name: meta::name(budget) };
                    reg.write_raw(r, budget, next).await?;
                }
            }
            _ => {
                return Err(ApiError::Internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                        .into(),
                )
                .into());
            }
        }
    }
    reg.delete(call.at(name), &options, dry).await?;
    let mut done = status::success_status(None);
    done["code"] = json!(201);
    Ok(http::json(StatusCode::CREATED, &done, &[]))
}

/// PUT namespaces/NAME/finalize: replace the namespace's finalizers.
pub(super) async fn finalize(call: &Call<'_>, name: &str, body: Body) -> Result<Response, Failure> {
    let raw = http::object_body(&http::read_body(body).await?, http::content_type(call.headers))?;
    let r = call.at(name);
    let current = call.state.registry.get(r).await?;
    let mut next = current.clone();
    next["spec"]["finalizers"] = raw.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
    let stored = call.state.registry.write_raw(r, &current, next).await?;
    Ok(http::json(StatusCode::OK, &stored, &[]))
}

/// `pods/exec` and `pods/attach`: choose the container as upstream does, then stream a session
/// with the pod's node.
pub(super) async fn exec(
    call: &Call<'_>,
    name: &str,
    attach: bool,
    extensions: &mut Extensions,
) -> Result<Response, Failure> {
    let query = crate::exec::ExecQuery::parse(call.raw_query, attach)?;
    let obj = call.state.registry.get(call.at(name)).await?;
    let names_in = |list: &str| -> Vec<&str> {
        obj.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default()
    };
    let names = names_in("containers");
    // Any container of the pod may be named, its init and ephemeral ones too.
    let all: Vec<&str> = [names_in("initContainers"), names.clone(), names_in("ephemeralContainers")].concat();
    let container = match (&query.container, names.as_slice()) {
        (Some(c), _) if all.contains(&c.as_str()) => c.clone(),
        (Some(c), _) => {
            return Err(ApiError::BadRequest(format!("container {c} is not valid for pod {name}")).into());
        }
        (None, [one]) => one.to_string(),
        (None, many) => {
            return Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                many.join(" ")
            ))
            .into());
        }
    };
    let (node, nodes) = crate::nodes::for_pod(call.state, &obj).await?;
    let request = skiff_nodeapi::ExecRequest {
        node,
        pod_uid: meta::uid(&obj).to_string(),
        container,
        command: query.command.clone(),
        stdin: query.stdin,
        tty: query.tty,
    };
    crate::exec::serve(call.headers, extensions, nodes, request, query).await
}

/// `pods/portforward`: only to a running pod.
pub(super) async fn port_forward(
    call: &Call<'_>,
    name: &str,
    extensions: &mut Extensions,
) -> Result<Response, Failure> {
    let obj = call.state.registry.get(call.at(name)).await?;
    let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if phase != "Running" {
        return Err(ApiError::BadRequest(format!(
            "unable to upgrade connection: pod {name} is not running (phase {phase:?})"
        ))
        .into());
    }
    let (node, nodes) = crate::nodes::for_pod(call.state, &obj).await?;
    let target = crate::portforward::Target { node, pod: name.to_string(), uid: meta::uid(&obj).to_string() };
    crate::portforward::serve(call.headers, call.raw_query, extensions, nodes, target).await
}

/// `pods/proxy` and `services/proxy`: the pod named, or a ready endpoint of the Service.
pub(super) async fn proxy(call: &Call<'_>, name: &str, forward: crate::proxy::Forward) -> Result<Response, Failure> {
    let target = crate::proxy::ProxyName::parse(name)?;
    let ns = call.namespace.as_deref().unwrap_or_default();
    let plural = call.kind.info().plural;
    if !matches!(plural, "pods" | "services") {
        // `nodes/proxy` is declared (discovery lists it) but not served.
        call.state.registry.get(call.at(target.name)).await?;
        return Err(ApiError::MethodNotSupported(format!(
            "the server does not allow this method on the requested resource ({plural}/proxy)"
        ))
        .into());
    }
    let (pod, port) = if plural == "services" {
        let svc = call.state.registry.get(call.at(target.name)).await?;
        let endpoints =
            match call.state.registry.get(ObjectRef { kind: kinds::ENDPOINTS, namespace: ns, name: target.name }).await
            {
                Ok(e) => e,
                Err(ApiError::NotFound { .. }) => Value::Null,
                Err(e) => return Err(e.into()),
            };
        let (pod, port) = crate::proxy::service_endpoint(&svc, &endpoints, target.port)?;
        (call.state.registry.get(ObjectRef { kind: kinds::PODS, namespace: ns, name: &pod }).await?, port)
    } else {
        let pod = call.state.registry.get(call.at(target.name)).await?;
        let port = crate::proxy::pod_port(&pod, target.port)?;
        (pod, port)
    };
    crate::proxy::to_pod(&pod, port, forward).await
}
