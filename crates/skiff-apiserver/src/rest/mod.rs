//! The resource endpoints under `/api/VERSION` and `/apis/GROUP/VERSION`: a request is parsed
//! once (its [`Route`], query, output and write options: a [`Call`]), then handed to the handler
//! of its verb (`crud`) or subresource (`subresources`).

mod crud;
mod reviews;
mod subresources;

use crate::AppState;
use crate::http::{self, Failure, Output};
use crate::query::Query;
use crate::registry::{ObjectRef, WriteOptions};
use crate::route::{Route, Subresource};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use skiff_core::ApiError;
use skiff_core::kinds::{Kind, Part};
use std::sync::Arc;

/// One request on a resource, parsed.
struct Call<'a> {
    state: &'a AppState,
    kind: &'static dyn Kind,
    /// The namespace in the path, if any.
    namespace: Option<String>,
    query: Query,
    /// The raw query, for the subresources that parse their own options (log, exec, portforward).
    raw_query: Option<&'a str>,
    output: Output,
    opts: WriteOptions,
    headers: &'a HeaderMap,
}

impl Call<'_> {
    /// The object `name` in the request's namespace.
    fn at<'n>(&'n self, name: &'n str) -> ObjectRef<'n> {
        ObjectRef { kind: self.kind, namespace: self.namespace.as_deref().unwrap_or_default(), name }
    }
}

fn field_manager(q: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = &q.field_manager {
        return m.clone();
    }
    // Upstream's default: the user agent up to the first '/'.
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
    ua.split('/').next().unwrap_or("unknown").chars().take(128).collect()
}

/// The single entry point for resource paths.
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
    let route = Route::parse(parts.uri.path(), &state.catalog.snapshot())?;
    let query = Query::parse(parts.uri.query())?;
    let output = http::negotiate(&parts.headers)?;
    let kind = route.kind;
    if kind.info().namespaced && route.name.is_some() && route.namespace.is_none() {
        return Err(ApiError::NoResource.into());
    }
    if route.sub.is_none()
        && let Some(verb) = verb_of(&parts.method, route.name.is_some(), query.watch)
        && !kind.serves_verb(verb)
    {
        return Err(kind.verb_refused(verb).into());
    }
    let opts = WriteOptions {
        dry_run: query.dry_run,
        field_manager: field_manager(&query, &parts.headers),
        field_validation: query.field_validation,
        force: query.force,
        user: parts.extensions.get::<crate::authn::User>().map(|u| u.0.clone()),
    };
    let call = Call {
        state,
        kind,
        namespace: route.namespace,
        query,
        raw_query: parts.uri.query(),
        output,
        opts,
        headers: &parts.headers,
    };
    // The part of the object a GET, PUT or PATCH of this path covers (None: another subresource).
    let part = match route.sub {
        None => Some(Part::Main),
        Some(s) => s.part(),
    };
    match (&parts.method, route.name.as_deref(), route.sub, part) {
        (&Method::GET, None, None, _) if call.query.watch => crud::watch(&call).await,
        (&Method::GET, None, None, _) => crud::list(&call).await,
        (&Method::POST, None, None, _) => crud::create(&call, body).await,
        (&Method::DELETE, None, None, _) => crud::delete_collection(&call, body).await,
        (&Method::GET, Some(n), _, Some(_)) => crud::get(&call, n).await,
        (&Method::PUT, Some(n), _, Some(part)) => crud::update(&call, n, part, body).await,
        (&Method::PATCH, Some(n), _, Some(part)) => crud::patch(&call, n, part, body).await,
        (&Method::DELETE, Some(n), None, _) => crud::delete(&call, n, body).await,
        (&Method::POST, Some(n), Some(Subresource::Binding), _) => subresources::bind(&call, n, body).await,
        (&Method::GET, Some(n), Some(Subresource::Scale), _) => subresources::get_scale(&call, n).await,
        (&Method::PUT, Some(n), Some(Subresource::Scale), _) => subresources::update_scale(&call, n, body).await,
        (&Method::PATCH, Some(n), Some(Subresource::Scale), _) => subresources::patch_scale(&call, n, body).await,
        (&Method::PUT, Some(n), Some(Subresource::Finalize), _) => subresources::finalize(&call, n, body).await,
        (&Method::POST, Some(n), Some(Subresource::Eviction), _) => subresources::evict(&call, n, body).await,
        (&Method::GET, Some(n), Some(Subresource::Log), _) => {
            crate::logs::serve(state, kind, call.at(n).namespace, n, call.raw_query).await
        }
        (&Method::GET | &Method::POST, Some(n), Some(Subresource::Exec { attach }), _) => {
            subresources::exec(&call, n, attach, &mut parts.extensions).await
        }
        (&Method::GET | &Method::POST, Some(n), Some(Subresource::PortForward), _) => {
            subresources::port_forward(&call, n, &mut parts.extensions).await
        }
        (_, Some(n), Some(Subresource::Proxy), _) => {
            let forward = crate::proxy::Forward {
                method: parts.method.clone(),
                headers: parts.headers.clone(),
                path: route.proxy_path.clone().unwrap_or_else(|| "/".into()),
                query: parts.uri.query().map(String::from),
                body,
            };
            subresources::proxy(&call, n, forward).await
        }
        (&Method::POST, Some(n), Some(Subresource::Token), _) => {
            let user = call.opts.user.as_deref();
            crate::serviceaccounts::token_request::serve(state, call.at(n).namespace, n, &parts.headers, body, user)
                .await
        }
        (_, Some(n), Some(s), _) => {
            // A declared subresource, with a method (or, `Unserved`, any method) it does not
            // serve: 405, once the object is known to exist (404 first, as upstream).
            state.registry.get(call.at(n)).await?;
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
