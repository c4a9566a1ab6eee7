//! The verbs on a resource and its parts: list, watch, create, get, update, patch, delete and
//! delete a collection, each through the registry.

use super::Call;
use crate::http::{self, Failure, Output};
use crate::list;
use crate::query::Query;
use crate::registry::{DeleteOptions, Deleted, ObjectRef, decode_body, node_restriction_admission};
use crate::watch::{self, WatchRequest};
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use skiff_core::kinds::{Kind, Part};
use skiff_core::patch::PatchType;
use skiff_core::{ApiError, meta, table};
use std::time::Duration;

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
    json!({"kind": format!("{}List", kind.info().kind), "apiVersion": kind.info().api_version(), "metadata": meta, "items": items})
}

/// One object in the output the client asked for.
fn render(call: &Call<'_>, obj: Value) -> Value {
    match call.output {
        Output::Object => obj,
        Output::Metadata(api_version) => http::partial_metadata(&obj, api_version),
        Output::Table(api_version) => {
            let mut lm = Map::new();
            lm.insert("resourceVersion".into(), json!(meta::resource_version(&obj)));
            let mut t = table::table(call.kind, &[obj], lm, call.query.include_object, true, Timestamp::now());
            t["apiVersion"] = json!(api_version);
            t
        }
    }
}

/// A body decoded as the kind (JSON, YAML or protobuf), with its warnings.
async fn object_body(call: &Call<'_>, body: Body) -> Result<(Value, Vec<String>), ApiError> {
    let bytes = http::read_body(body).await?;
    let content_type = http::content_type(call.headers);
    let raw = http::object_body(&bytes, content_type)?;
    let duplicates = http::duplicate_fields(&bytes, content_type);
    decode_body(call.kind, &raw, &duplicates, call.query.field_validation)
}

pub(super) async fn watch(call: &Call<'_>) -> Result<Response, Failure> {
    let q = &call.query;
    let w = WatchRequest {
        kind: call.kind,
        namespace: call.namespace.clone(),
        resource_version: q.resource_version.clone(),
        labels: q.labels.clone(),
        fields: q.fields.clone(),
        timeout: q.timeout_seconds.map(Duration::from_secs),
        bookmarks: q.allow_bookmarks,
        send_initial_events: q.send_initial_events,
        output: call.output,
        include: q.include_object,
        bookmark_interval: call.state.bookmark_interval,
    };
    Ok(watch::serve(&call.state.registry, w, call.state.shutdown.clone()).await?)
}

pub(super) async fn list(call: &Call<'_>) -> Result<Response, Failure> {
    Ok(list::serve(&call.state.registry, call.kind, call.namespace.as_deref(), &call.query, call.output).await?)
}

pub(super) async fn create(call: &Call<'_>, body: Body) -> Result<Response, Failure> {
    // A cluster-scoped kind is created at its root; a namespaced one only in a namespace.
    let Some(ns) = call.namespace.as_deref().or((!call.kind.info().namespaced).then_some("")) else {
        return Err(ApiError::NoResource.into());
    };
    let (obj, warnings) = object_body(call, body).await?;
    if let Some(question) = skiff_core::kinds::review::question(call.kind) {
        return super::reviews::answer(call, question, ns, obj).await;
    }
    let mut created = call.state.registry.create_with_warnings(call.kind, ns, obj, &call.opts).await?;
    created.warnings.splice(0..0, warnings);
    Ok(http::json(StatusCode::CREATED, &render(call, created.object), &created.warnings))
}

pub(super) async fn get(call: &Call<'_>, name: &str) -> Result<Response, Failure> {
    let obj = call.state.registry.get(call.at(name)).await?;
    Ok(http::json(StatusCode::OK, &render(call, obj), &[]))
}

pub(super) async fn update(call: &Call<'_>, name: &str, part: Part, body: Body) -> Result<Response, Failure> {
    let (obj, warnings) = object_body(call, body).await?;
    let mut updated = call.state.registry.update_with_warnings(call.at(name), obj, part, &call.opts).await?;
    updated.warnings.splice(0..0, warnings);
    Ok(http::json(StatusCode::OK, &render(call, updated.object), &updated.warnings))
}

pub(super) async fn patch(call: &Call<'_>, name: &str, part: Part, body: Body) -> Result<Response, Failure> {
    let ct = http::content_type(call.headers).to_string();
    // Custom resources have no patch strategies: no strategic merge patch (upstream's list).
    let custom = call.kind.custom().is_some();
    let patch_type =
        PatchType::from_content_type(&ct).filter(|t| !(custom && *t == PatchType::Strategic)).ok_or_else(|| {
            let strategic = if custom { "" } else { ", application/strategic-merge-patch+json" };
            ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{strategic} (got {ct})"
            ))
        })?;
    if patch_type == PatchType::Apply && call.query.field_manager.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::BadRequest(
            "PATCH, application/apply-patch+yaml requests must have a fieldManager".into(),
        )
        .into());
    }
    let raw = http::parse_body(&http::read_body(body).await?, &ct, patch_type == PatchType::Apply)?;
    if patch_type != PatchType::Apply && call.query.force {
        return Err(ApiError::BadRequest(
            "force: Invalid value: true: may not be specified for non-apply patch".into(),
        )
        .into());
    }
    let written = call.state.registry.patch(call.at(name), patch_type, &raw, part, &call.opts).await?;
    let code = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(http::json(code, &render(call, written.object), &written.warnings))
}

pub(super) async fn delete(call: &Call<'_>, name: &str, body: Body) -> Result<Response, Failure> {
    let dopts = delete_options(body, &call.query).await?;
    let dry = call.query.dry_run || dopts.dry_run.as_ref().is_some_and(|d| d.iter().any(|x| x == "All"));
    node_restriction_admission::admit_delete(&call.state.registry, call.at(name), call.opts.user.as_deref()).await?;
    let obj = match call.state.registry.delete(call.at(name), &dopts, dry).await? {
        Deleted::Gone(o) => o,
        Deleted::Pending(o) => {
            if call.kind.finalized_by_controller() && !dry {
                crate::namespaces::finalize_later(call.state, name.to_string());
            }
            o
        }
    };
    Ok(http::json(StatusCode::OK, &render(call, obj), &[]))
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

pub(super) async fn delete_collection(call: &Call<'_>, body: Body) -> Result<Response, Failure> {
    let (kind, q, reg) = (call.kind, &call.query, &call.state.registry);
    let dopts = delete_options(body, q).await?;
    let (items, rev) = reg.list(kind, call.namespace.as_deref(), &q.labels, &q.fields).await?;
    let mut deleted = Vec::new();
    for obj in items {
        let r = ObjectRef { kind, namespace: meta::namespace(&obj), name: meta::name(&obj) };
        node_restriction_admission::admit_delete(reg, r, call.opts.user.as_deref()).await?;
        match reg.delete(r, &dopts, q.dry_run).await {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => deleted.push(o),
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut lm = Map::new();
    lm.insert("resourceVersion".into(), json!(rev.to_string()));
    Ok(http::json(StatusCode::OK, &list_object(kind, deleted, lm), &[]))
}
