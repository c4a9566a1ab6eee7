//! The audit's part in the router, upstream's filters in three places:
//! - [`init`], outermost: the `Audit-Id`; what the request is, before anyone looks at who sent
//!   it; what came of it (the status, the response, a panic), and a failed authentication;
//! - [`authenticated`], after authentication: the policy's level for this user and request,
//!   the `RequestReceived` stage, and a copy of the body as the handler reads it;
//! - [`acting`], after impersonation: who the request acts as.
//!
//! Between them the request carries a [`Slot`]: authorization records its decision there
//! ([`record_decision`]), and any handler may add an annotation ([`annotate`]). A long-running
//! request also carries a [`Session`], which an upgraded connection's session keeps until it
//! ends: the request's audit completes then.

use super::Auditor;
use super::body::{Capture, TeeBody, WatchedBody};
use super::checker::RequestConfig;
use super::event::{Event, EventUser, ResponseStatus, without_managed_fields};
use super::policy::{Level, Stage};
use crate::authn::User;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::FutureExt;
use serde_json::Value;
use skiff_core::auth::{RequestInfo, UserInfo, Verdict};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const AUDIT_ID: &str = "audit-id";
const DECISION: &str = "authorization.k8s.io/decision";
const REASON: &str = "authorization.k8s.io/reason";
/// How much of a response is copied for the event (a larger one is recorded without it).
const MAX_RESPONSE_COPY: usize = 8 << 20;

/// The audit of one request, carried in its extensions.
#[derive(Clone)]
pub struct Slot(Arc<Mutex<Record>>);

struct Record {
    event: Event,
    info: RequestInfo,
    state: Progress,
}

enum Progress {
    /// Authentication has not let the request through: what it tried.
    Unauthenticated {
        methods: String,
    },
    /// The policy's level is `None`.
    Skipped,
    Auditing(Box<Auditing>),
}

struct Auditing {
    config: RequestConfig,
    /// Who authentication found (impersonation makes another user).
    authenticated: Arc<UserInfo>,
    long_running: bool,
    /// The request body as the handler read it, and its media type.
    request_body: Option<(Arc<Mutex<Capture>>, String)>,
    /// The response switched protocols (exec, attach, port-forward): the request is over when
    /// its session is.
    upgraded: bool,
    /// Every [`Session`] handle is gone.
    session_over: bool,
}

/// Held by the session of an upgraded connection (exec, attach, port-forward): its request's
/// `ResponseComplete` is written when the session ends (the last handle goes), as upstream's
/// handler returns only then.
#[derive(Clone)]
pub struct Session {
    _end: Arc<SessionEnd>,
}

struct SessionEnd {
    auditor: Arc<Auditor>,
    slot: Slot,
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        let upgraded = {
            let mut record = self.slot.lock();
            let Some((_, auditing)) = record.auditing() else { return };
            auditing.session_over = true;
            auditing.upgraded
        };
        if upgraded {
            complete(&self.auditor, &self.slot, None);
        }
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Record> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Record {
    fn auditing(&mut self) -> Option<(&mut Event, &mut Auditing)> {
        match &mut self.state {
            Progress::Auditing(a) => Some((&mut self.event, a)),
            _ => None,
        }
    }
}

/// Write `event` at `stage` unless the policy omits it.
fn emit(auditor: &Auditor, event: &mut Event, config: &RequestConfig, stage: Stage) {
    if let Some((_, sink)) = auditor.active()
        && !config.omit_stages.contains(stage)
    {
        sink.send(event.line(stage));
    }
}

/// Upstream's long-running requests: watches, proxies, and the streaming subresources.
fn long_running(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "watch" | "proxy")
        || (info.is_resource_request
            && matches!(info.subresource.as_str(), "attach" | "exec" | "proxy" | "log" | "portforward"))
}

/// The request's attributes as authorization reads them, whoever sent it (a path the request
/// info cannot read is audited as a non-resource request).
fn request_info(req: &Request) -> RequestInfo {
    let query = req.uri().query().unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (method, path) = (req.method().as_str(), req.uri().path());
    skiff_core::auth::request_info(method, path, &pairs).unwrap_or_else(|_| RequestInfo {
        path: path.to_string(),
        verb: method.to_lowercase(),
        ..Default::default()
    })
}

/// What credentials a request that failed authentication tried (upstream's wording).
fn auth_methods(req: &Request) -> String {
    let mut methods = Vec::new();
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
    let scheme = auth.split(' ').next().unwrap_or_default();
    if scheme.eq_ignore_ascii_case("basic") {
        methods.push("basic");
    }
    if scheme.eq_ignore_ascii_case("bearer") && auth.contains(' ') {
        methods.push("bearer");
    }
    let query = req.uri().query().unwrap_or_default();
    if form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "access_token" && !v.trim().is_empty()) {
        methods.push("access_token");
    }
    if methods.is_empty() {
        "Authentication failed, no credentials provided".into()
    } else {
        format!("Authentication failed, attempted: {}", methods.join(", "))
    }
}

/// Outermost: the `Audit-Id` (the client's, or a new one) on every response, and the audit of
/// the request from its arrival to its end.
pub async fn init(State(auditor): State<Arc<Auditor>>, mut req: Request, next: Next) -> Response {
    let audit_id = req
        .headers()
        .get(AUDIT_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if auditor.active().is_none() {
        return with_id(next.run(req).await, &audit_id);
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let uri = req.uri().path_and_query().map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let event = Event::received(audit_id.clone(), uri, req.headers(), peer);
    let record =
        Record { event, info: request_info(&req), state: Progress::Unauthenticated { methods: auth_methods(&req) } };
    let slot = Slot(Arc::new(Mutex::new(record)));
    req.extensions_mut().insert(slot.clone());
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => with_id(respond(&auditor, &slot, resp), &audit_id),
        Err(panic) => {
            panicked(&auditor, &slot, panic.as_ref());
            std::panic::resume_unwind(panic)
        }
    }
}

fn with_id(mut resp: Response, audit_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(audit_id) {
        resp.headers_mut().entry(AUDIT_ID).or_insert(v);
    }
    resp
}

/// After authentication: the level for this user and request, and its first stage.
pub async fn authenticated(State(auditor): State<Arc<Auditor>>, mut req: Request, next: Next) -> Response {
    let slot = req.extensions().get::<Slot>().cloned();
    let user = req.extensions().get::<User>().map(|u| u.0.clone());
    if let (Some(slot), Some(user), Some((policy, _))) = (slot, user, auditor.active()) {
        let mut record = slot.lock();
        let config = policy.evaluate(Some(&user), &record.info);
        if config.level == Level::None {
            record.state = Progress::Skipped;
        } else {
            let record = &mut *record;
            record.event.level = config.level;
            record.event.user = EventUser::from(user.as_ref());
            record.event.describe(&record.info);
            let long_running = long_running(&record.info);
            // A create's or update's body names its object; from Request on, it is recorded.
            let names_object = matches!(record.info.verb.as_str(), "create" | "update");
            let copy = !long_running
                && !axum::body::HttpBody::is_end_stream(req.body())
                && (config.level >= Level::Request || names_object);
            let request_body = copy.then(|| {
                let media = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
                let media = media.to_string();
                let (body, capture) = TeeBody::wrap(std::mem::take(req.body_mut()), crate::http::MAX_BODY);
                *req.body_mut() = body;
                (capture, media)
            });
            emit(&auditor, &mut record.event, &config, Stage::RequestReceived);
            record.state = Progress::Auditing(Box::new(Auditing {
                config,
                authenticated: user,
                long_running,
                request_body,
                upgraded: false,
                session_over: false,
            }));
            if long_running {
                let end = SessionEnd { auditor: auditor.clone(), slot: slot.clone() };
                req.extensions_mut().insert(Session { _end: Arc::new(end) });
            }
        }
    }
    next.run(req).await
}

/// After impersonation: the user the request acts as, if not the authenticated one.
pub async fn acting(State(auditor): State<Arc<Auditor>>, req: Request, next: Next) -> Response {
    if let (Some(slot), Some(User(user))) = (req.extensions().get::<Slot>(), req.extensions().get::<User>()) {
        let mut record = slot.lock();
        if let Some((event, auditing)) = record.auditing()
            && !Arc::ptr_eq(&auditing.authenticated, user)
        {
            event.impersonated_user = Some(EventUser::from(user.as_ref()));
        }
        drop(record);
        if auditor.always_allow {
            annotate(req.extensions(), DECISION, "allow");
            annotate(req.extensions(), REASON, "");
        }
    }
    next.run(req).await
}

/// Record authorization's decision on the request's event.
pub fn record_decision(req: &Request, verdict: &Verdict) {
    annotate(req.extensions(), DECISION, if verdict.allowed() { "allow" } else { "forbid" });
    annotate(req.extensions(), REASON, &verdict.reason);
}

/// Add an annotation to the request's event (when it is audited).
pub fn annotate(extensions: &axum::http::Extensions, key: &str, value: &str) {
    if let Some(slot) = extensions.get::<Slot>()
        && let Some((event, _)) = slot.lock().auditing()
    {
        event.annotations.insert(key.to_string(), value.to_string());
    }
}

/// The response's head is out: a failed authentication's event, or the started stage of a
/// long-running request; the rest when its body is over.
fn respond(auditor: &Arc<Auditor>, slot: &Slot, resp: Response) -> Response {
    let code = resp.status().as_u16();
    let mut record = slot.lock();
    let record = &mut *record;
    match &mut record.state {
        Progress::Skipped => resp,
        Progress::Unauthenticated { methods } => {
            let Some((policy, _)) = auditor.active() else { return resp };
            let config = policy.evaluate(None, &record.info);
            if config.level != Level::None {
                record.event.level = config.level;
                record.event.describe(&record.info);
                record.event.response_status =
                    Some(ResponseStatus { message: std::mem::take(methods), ..ResponseStatus::code(code) });
                emit(auditor, &mut record.event, &config, Stage::ResponseStarted);
            }
            resp
        }
        Progress::Auditing(auditing) => {
            record.event.response_status = Some(ResponseStatus::code(code));
            let (auditor, done) = (auditor.clone(), slot.clone());
            if auditing.long_running && code == 101 {
                // Complete when the session ends (now, if it already has).
                auditing.upgraded = true;
                let (config, over) = (auditing.config, auditing.session_over);
                emit(&auditor, &mut record.event, &config, Stage::ResponseStarted);
                if over {
                    // `complete` takes the lock this holds: once it is let go.
                    tokio::spawn(async move { complete(&auditor, &done, None) });
                }
                return resp;
            }
            if auditing.long_running {
                let config = auditing.config;
                emit(&auditor, &mut record.event, &config, Stage::ResponseStarted);
                let finish = Box::new(move |_: Option<&[u8]>| complete(&auditor, &done, None));
                return resp.map(|body| WatchedBody::wrap(body, None, finish));
            }
            let json = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let copy = json && (auditing.config.level == Level::RequestResponse || code >= 300);
            let finish = Box::new(move |body: Option<&[u8]>| complete(&auditor, &done, body));
            resp.map(|body| WatchedBody::wrap(body, copy.then_some(MAX_RESPONSE_COPY), finish))
        }
    }
}

/// The response is over: what was read of the request and sent of the response, and the
/// last stage.
fn complete(auditor: &Auditor, slot: &Slot, response: Option<&[u8]>) {
    let mut record = slot.lock();
    let Some((event, auditing)) = record.auditing() else { return };
    let config = auditing.config;
    let strip = |v: Value| if config.omit_managed_fields { without_managed_fields(v) } else { v };
    if let Some((capture, media)) = &auditing.request_body {
        let capture = capture.lock().unwrap_or_else(PoisonError::into_inner);
        let object =
            capture.whole().filter(|b| !b.is_empty()).and_then(|b| crate::http::parse_body(b, media, true).ok());
        if let Some(object) = object {
            if matches!(event.verb.as_str(), "create" | "update")
                && let Some(object_ref) = event.object_ref.as_mut()
            {
                object_ref.fill_from(&object);
            }
            if config.level >= Level::Request {
                event.request_object = Some(strip(object));
            }
        }
    }
    if let Some(object) = response.and_then(|b| serde_json::from_slice::<Value>(b).ok()) {
        let code = event.response_status.as_ref().map_or(0, |s| s.code);
        if let Some(status) = ResponseStatus::from_status(&object, code) {
            event.response_status = Some(status);
        }
        if config.level == Level::RequestResponse {
            event.response_object = Some(strip(object));
        }
    }
    emit(auditor, event, &config, Stage::ResponseComplete);
}

/// A handler panicked: upstream's `Panic` stage, with its message.
fn panicked(auditor: &Auditor, slot: &Slot, payload: &(dyn std::any::Any + Send)) {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let mut record = slot.lock();
    if let Some((event, auditing)) = record.auditing() {
        event.response_status = Some(ResponseStatus {
            status: "Failure".into(),
            reason: "InternalError".into(),
            message: format!("APIServer panic'd: {message}"),
            ..ResponseStatus::code(500)
        });
        let config = auditing.config;
        emit(auditor, event, &config, Stage::Panic);
    }
}

#[cfg(test)]
mod tests;
