//! The resource endpoints under `/api/v1`: one handler per verb and subresource, on a parsed
//! [`Route`].

use crate::AppState;
use crate::http::{self, Failure, Output};
use crate::list;
use crate::query::Query;
use crate::registry::{DeleteOptions, Deleted, ObjectRef, WriteOptions, decode_body};
use crate::route::{Route, Subresource};
use crate::watch::{self, WatchRequest};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use skiff_core::kinds::{self, Kind};
use skiff_core::patch::PatchType;
use skiff_core::{ApiError, meta, status, table, time};
use std::sync::Arc;
use std::time::Duration;

fn field_manager(q: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = &q.field_manager {
        return m.clone();
    }
    // Upstream's default: the user agent up to the first '/'.
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
    ua.split('/').next().unwrap_or("unknown").chars().take(128).collect()
}

/// Strip kind/apiVersion from list items, as upstream lists carry them only at the top.
fn list_object(kind: &dyn Kind, items: Vec<Value>, meta: Map<String, Value>) -> Value {
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    json!({"kind": format!("{}List", kind.info().kind), "apiVersion": "v1", "metadata": meta, "items": items})
}

fn render(kind: &dyn Kind, output: Output, q: &Query, obj: Value) -> Value {
    match output {
        Output::Object => obj,
        Output::Metadata(api_version) => http::partial_metadata(&obj, api_version),
        Output::Table(api_version) => {
            let mut lm = Map::new();
            lm.insert("resourceVersion".into(), json!(meta::resource_version(&obj)));
            let mut t = table::table(kind, &[obj], lm, q.include_object, true, Timestamp::now());
            t["apiVersion"] = json!(api_version);
            t
        }
    }
}

/// The single entry point for `/api/v1/...`.
pub async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match dispatch(&state, req).await {
        Ok(r) => r,
        Err(Failure(e)) => {
            if e.code() >= 500 {
                tracing::warn!(error = %e, "request failed");
            }
            axum::response::IntoResponse::into_response(Failure(e))
        }
    }
}

async fn dispatch(state: &AppState, req: Request) -> Result<Response, Failure> {
    http::refuse_oversized(&req)?;
    let (mut parts, body) = req.into_parts();
    let target = Route::parse(parts.uri.path())?;
    let q = Query::parse(parts.uri.query())?;
    let output = http::negotiate(&parts.headers)?;
    let reg = &state.registry;
    let kind = target.kind;
    let ns = target.namespace.clone();
    let opts = WriteOptions {
        dry_run: q.dry_run,
        field_manager: field_manager(&q, &parts.headers),
        field_validation: q.field_validation,
        force: q.force,
    };
    let name = target.name.clone();
    let sub = target.sub;
    let method = parts.method.clone();
    let headers = parts.headers;

    let ns_str = ns.clone().unwrap_or_default();
    if kind.info().namespaced && name.is_some() && ns.is_none() {
        return Err(ApiError::NoResource.into());
    }
    if sub.is_none()
        && let Some(verb) = verb_of(&method, name.is_some(), q.watch)
        && !kind.info().verbs.contains(&verb)
    {
        return Err(ApiError::MethodNotSupported(format!(
            "{verb} is not supported on resources of kind {:?}",
            kind.info().plural
        ))
        .into());
    }

    // The part of the object a GET, PUT or PATCH of this path covers (None: another subresource).
    let part = match sub {
        None => Some(kinds::Part::Main),
        Some(s) => s.part(),
    };
    match (&method, name.as_deref(), sub) {
        (&Method::GET, None, None) if q.watch => {
            let w = WatchRequest {
                kind,
                namespace: ns.clone(),
                resource_version: q.resource_version.clone(),
                labels: q.labels.clone(),
                fields: q.fields.clone(),
                timeout: q.timeout_seconds.map(Duration::from_secs),
                bookmarks: q.allow_bookmarks,
                send_initial_events: q.send_initial_events,
                output,
                include: q.include_object,
                bookmark_interval: state.bookmark_interval,
            };
            Ok(watch::serve(reg, w, state.shutdown.clone()).await?)
        }
        (&Method::GET, None, None) => Ok(list::serve(&state.registry, kind, ns.as_deref(), &q, output).await?),
        (&Method::POST, None, None) => {
            let Some(ns) = ns.as_deref().or((!kind.info().namespaced).then_some("")) else {
                return Err(ApiError::NoResource.into());
            };
            let bytes = http::read_body(body).await?;
            let raw = http::object_body(&bytes, http::content_type(&headers))?;
            let duplicates = http::duplicate_fields(&bytes, http::content_type(&headers));
            let (obj, warnings) = decode_body(kind, &raw, &duplicates, q.field_validation)?;
            let created = reg.create(kind, ns, obj, &opts).await?;
            Ok(http::json(StatusCode::CREATED, &render(kind, output, &q, created), &warnings))
        }
        (&Method::DELETE, None, None) => delete_collection(state, kind, ns.as_deref(), &q, body).await,
        (&Method::GET, Some(n), _) if part.is_some() => {
            let obj = reg.get(ObjectRef { kind, namespace: &ns_str, name: n }).await?;
            Ok(http::json(StatusCode::OK, &render(kind, output, &q, obj), &[]))
        }
        (&Method::PUT, Some(n), _) if part.is_some() => {
            let part = part.ok_or(ApiError::NoResource)?;
            let bytes = http::read_body(body).await?;
            let raw = http::object_body(&bytes, http::content_type(&headers))?;
            let duplicates = http::duplicate_fields(&bytes, http::content_type(&headers));
            let (obj, warnings) = decode_body(kind, &raw, &duplicates, q.field_validation)?;
            let updated = reg.update(ObjectRef { kind, namespace: &ns_str, name: n }, obj, part, &opts).await?;
            Ok(http::json(StatusCode::OK, &render(kind, output, &q, updated), &warnings))
        }
        (&Method::PATCH, Some(n), _) if part.is_some() => {
            let part = part.ok_or(ApiError::NoResource)?;
            let ct = http::content_type(&headers).to_string();
            let patch_type = PatchType::from_content_type(&ct).ok_or_else(|| {
                ApiError::UnsupportedMediaType(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct})"
                ))
            })?;
            if patch_type == PatchType::Apply && q.field_manager.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::BadRequest(
                    "PATCH, application/apply-patch+yaml requests must have a fieldManager".into(),
                )
                .into());
            }
            let raw = http::parse_body(&http::read_body(body).await?, &ct, patch_type == PatchType::Apply)?;
            if patch_type != PatchType::Apply && q.force {
                return Err(ApiError::BadRequest(
                    "force: Invalid value: true: may not be specified for non-apply patch".into(),
                )
                .into());
            }
            let written =
                reg.patch(ObjectRef { kind, namespace: &ns_str, name: n }, patch_type, &raw, part, &opts).await?;
            let code = if written.created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(http::json(code, &render(kind, output, &q, written.object), &written.warnings))
        }
        (&Method::DELETE, Some(n), None) => {
            let dopts = delete_options(body, &q).await?;
            let dry = q.dry_run || dopts.dry_run.as_ref().is_some_and(|d| d.iter().any(|x| x == "All"));
            let result = reg.delete(ObjectRef { kind, namespace: &ns_str, name: n }, &dopts, dry).await?;
            let obj = match result {
                Deleted::Gone(o) => o,
                Deleted::Pending(o) => {
                    if kind.finalized_by_controller() && !dry {
                        crate::namespaces::finalize_later(state, n.to_string());
                    }
                    o
                }
            };
            Ok(http::json(StatusCode::OK, &render(kind, output, &q, obj), &[]))
        }
        (&Method::POST, Some(n), Some(Subresource::Binding)) => {
            let raw = http::object_body(&http::read_body(body).await?, http::content_type(&headers))?;
            bind(state, ObjectRef { kind, namespace: &ns_str, name: n }, &raw, &opts).await
        }
        (&Method::PUT, Some(n), Some(Subresource::Finalize)) => {
            let raw = http::object_body(&http::read_body(body).await?, http::content_type(&headers))?;
            let current = reg.get(ObjectRef { kind, namespace: &ns_str, name: n }).await?;
            let mut next = current.clone();
            next["spec"]["finalizers"] = raw.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            let stored = reg.write_raw(ObjectRef { kind, namespace: &ns_str, name: n }, &current, next).await?;
            Ok(http::json(StatusCode::OK, &stored, &[]))
        }
        (&Method::GET, Some(n), Some(Subresource::Log)) => {
            crate::logs::serve(state, kind, &ns_str, n, parts.uri.query()).await
        }
        (&Method::GET | &Method::POST, Some(n), Some(Subresource::Exec { attach })) => {
            let query = crate::exec::ExecQuery::parse(parts.uri.query(), attach)?;
            let obj = reg.get(ObjectRef { kind, namespace: &ns_str, name: n }).await?;
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
                    return Err(ApiError::BadRequest(format!("container {c} is not valid for pod {n}")).into());
                }
                (None, [one]) => one.to_string(),
                (None, many) => {
                    return Err(ApiError::BadRequest(format!(
                        "a container name must be specified for pod {n}, choose one of: [{}]",
                        many.join(" ")
                    ))
                    .into());
                }
            };
            let (node, nodes) = crate::nodes::for_pod(state, &obj).await?;
            let request = skiff_nodeapi::ExecRequest {
                node,
                pod_uid: meta::uid(&obj).to_string(),
                container,
                command: query.command.clone(),
                stdin: query.stdin,
                tty: query.tty,
            };
            crate::exec::serve(&headers, &mut parts.extensions, nodes, request, query).await
        }
        (&Method::GET | &Method::POST, Some(n), Some(Subresource::PortForward)) => {
            let obj = reg.get(ObjectRef { kind, namespace: &ns_str, name: n }).await?;
            let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
            if phase != "Running" {
                return Err(ApiError::BadRequest(format!(
                    "unable to upgrade connection: pod {n} is not running (phase {phase:?})"
                ))
                .into());
            }
            let (node, nodes) = crate::nodes::for_pod(state, &obj).await?;
            let target = crate::portforward::Target { node, pod: n.to_string(), uid: meta::uid(&obj).to_string() };
            crate::portforward::serve(&headers, parts.uri.query(), &mut parts.extensions, nodes, target).await
        }
        (_, Some(n), Some(s)) => {
            // A declared subresource, with a method (or, `Unserved`, any method) it does not
            // serve: 405, once the object is known to exist (404 first, as upstream).
            reg.get(ObjectRef { kind, namespace: &ns_str, name: n }).await?;
            Err(ApiError::MethodNotSupported(format!(
                "the server does not allow this method on the requested resource ({})",
                s.name()
            ))
            .into())
        }
        _ => {
            Err(ApiError::MethodNotSupported("the server does not allow this method on the requested resource".into())
                .into())
        }
    }
}

/// The API verb of a request on a resource (not a subresource).
fn verb_of(method: &Method, named: bool, watch: bool) -> Option<&'static str> {
    Some(match (method, named) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return None,
    })
}

/// DeleteOptions from the body (optional), overridden by query parameters.
async fn delete_options(body: Body, q: &Query) -> Result<DeleteOptions, ApiError> {
    let bytes = http::read_body(body).await?;
    let mut dopts: DeleteOptions = if bytes.is_empty() {
        DeleteOptions::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?
    };
    if q.grace_period.is_some() {
        dopts.grace_period_seconds = q.grace_period;
    }
    if q.propagation_policy.is_some() {
        dopts.propagation_policy = q.propagation_policy.clone();
    }
    Ok(dopts)
}

async fn delete_collection(
    state: &AppState,
    kind: &'static dyn Kind,
    ns: Option<&str>,
    q: &Query,
    body: Body,
) -> Result<Response, Failure> {
    let dopts = delete_options(body, q).await?;
    let (items, rev) = state.registry.list(kind, ns, &q.labels, &q.fields).await?;
    let mut deleted = Vec::new();
    for obj in items {
        let r = ObjectRef { kind, namespace: meta::namespace(&obj), name: meta::name(&obj) };
        match state.registry.delete(r, &dopts, q.dry_run).await {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => deleted.push(o),
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut lm = Map::new();
    lm.insert("resourceVersion".into(), json!(rev.to_string()));
    Ok(http::json(StatusCode::OK, &list_object(kind, deleted, lm), &[]))
}

/// POST pods/NAME/binding: assign the pod to a node (the scheduler's write).
async fn bind(state: &AppState, r: ObjectRef<'_>, raw: &Value, opts: &WriteOptions) -> Result<Response, Failure> {
    let node = raw.pointer("/target/name").and_then(Value::as_str).unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            r.name,
            vec![skiff_core::field::FieldError::required(&skiff_core::field::Path::new("target").child("name"), "")],
        )
        .into());
    }
    let current = state.registry.get(r).await?;
    if meta::is_deleting(&current) {
        return Err(ApiError::conflict("pods", r.name, "pod is being deleted, cannot be assigned to a host").into());
    }
    let assigned = current.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if !assigned.is_empty() {
        return Err(ApiError::conflict(
            "pods/binding",
            r.name,
            format!("pod {} is already assigned to node {assigned:?}", r.name),
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
    if !opts.dry_run {
        state.registry.write_raw(r, &current, next).await?;
    }
    Ok(http::json(StatusCode::CREATED, &status::success_status(None), &[]))
}
