//! The `audit.k8s.io/v1` Event as upstream writes it, one JSON line per stage, and the pieces
//! of a request it is made of: who (user, impersonated user), from where (source IPs, user
//! agent), on what (object reference), and what came of it (response status and objects).

use super::policy::{Level, Stage};
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};
use skiff_core::auth::{RequestInfo, UserInfo};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Upstream's bound on the user agent it records.
const MAX_USER_AGENT: usize = 1024;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub level: Level,
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: Stage,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub verb: String,
    pub user: EventUser,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<EventUser>,
    #[serde(rename = "sourceIPs", skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_object: Option<Value>,
    #[serde(serialize_with = "micro_time")]
    pub request_received_timestamp: jiff::Timestamp,
    #[serde(serialize_with = "micro_time")]
    pub stage_timestamp: jiff::Timestamp,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn micro_time<S: serde::Serializer>(ts: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&skiff_core::time::rfc3339_micro(*ts))
}

impl Event {
    /// What is known of a request before anyone looks at who sent it.
    pub fn received(audit_id: String, request_uri: String, headers: &HeaderMap, peer: Option<IpAddr>) -> Event {
        let now = jiff::Timestamp::now();
        Event {
            kind: "Event",
            api_version: "audit.k8s.io/v1",
            level: Level::None,
            audit_id,
            stage: Stage::RequestReceived,
            request_uri,
            verb: String::new(),
            user: EventUser::default(),
            impersonated_user: None,
            source_ips: source_ips(headers, peer),
            user_agent: user_agent(headers),
            object_ref: None,
            response_status: None,
            request_object: None,
            response_object: None,
            request_received_timestamp: now,
            stage_timestamp: now,
            annotations: BTreeMap::new(),
        }
    }

    /// The request's attributes: its verb and, for a resource request, what it names.
    pub fn describe(&mut self, request: &RequestInfo) {
        self.verb = request.verb.clone();
        if request.is_resource_request {
            self.object_ref = Some(ObjectRef {
                resource: request.resource.clone(),
                namespace: request.namespace.clone(),
                name: request.name.clone(),
                api_group: request.api_group.clone(),
                api_version: request.api_version.clone(),
                subresource: request.subresource.clone(),
                ..Default::default()
            });
        }
    }

    /// This event at `stage`, as one line of the log.
    pub fn line(&mut self, stage: Stage) -> Vec<u8> {
        self.stage = stage;
        self.stage_timestamp =
            if stage == Stage::RequestReceived { self.request_received_timestamp } else { jiff::Timestamp::now() };
        // Nothing in an Event fails to serialize (string keys, finite values).
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// `authentication.k8s.io/v1` UserInfo.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventUser {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl From<&UserInfo> for EventUser {
    fn from(u: &UserInfo) -> Self {
        EventUser { username: u.name.clone(), uid: u.uid.clone(), groups: u.groups.clone(), extra: u.extra.clone() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

impl ObjectRef {
    /// What the request's object says of itself, where the path did not say it (a create's
    /// name), as upstream fills it from the decoded object.
    pub fn fill_from(&mut self, object: &Value) {
        let Some(meta) = object.get("metadata") else { return };
        let field = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        for (slot, key) in [
            (&mut self.namespace, "namespace"),
            (&mut self.name, "name"),
            (&mut self.uid, "uid"),
            (&mut self.resource_version, "resourceVersion"),
        ] {
            if slot.is_empty() {
                *slot = field(key);
            }
        }
    }
}

/// A `meta/v1` Status with the fields upstream copies into events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseStatus {
    pub metadata: Map<String, Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(skip_serializing_if = "is_zero")]
    pub code: u16,
}

fn is_zero(code: &u16) -> bool {
    *code == 0
}

impl ResponseStatus {
    pub fn code(code: u16) -> Self {
        ResponseStatus { code, ..Default::default() }
    }

    /// The response's own Status, when it is one (errors; some deletes).
    pub fn from_status(object: &Value, code: u16) -> Option<Self> {
        if object.get("kind").and_then(Value::as_str) != Some("Status") {
            return None;
        }
        let text = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Some(ResponseStatus {
            metadata: Map::new(),
            status: text("status"),
            message: text("message"),
            reason: text("reason"),
            details: object.get("details").cloned(),
            code: object.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()).unwrap_or(code),
        })
    }
}

/// Upstream's `SourceIPs`: the `X-Forwarded-For` chain, then `X-Real-Ip` if not in it, then
/// the peer (which cannot be forged) unless it already ends the list.
pub fn source_ips(headers: &HeaderMap, peer: Option<IpAddr>) -> Vec<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let parse = |s: &str| s.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    let mut ips: Vec<IpAddr> = header("x-forwarded-for").split(',').filter_map(parse).collect();
    if let Some(real) = parse(header("x-real-ip"))
        && !ips.contains(&real)
    {
        ips.push(real);
    }
    if let Some(peer) = peer.map(|p| p.to_canonical())
        && ips.last() != Some(&peer)
    {
        ips.push(peer);
    }
    ips.iter().map(IpAddr::to_string).collect()
}

/// The user agent, cut at upstream's bound.
pub fn user_agent(headers: &HeaderMap) -> String {
    let raw = headers.get(axum::http::header::USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut ua = raw.unwrap_or_default();
    if ua.len() > MAX_USER_AGENT {
        let mut cut = MAX_USER_AGENT;
        while !ua.is_char_boundary(cut) {
            cut -= 1;
        }
        ua.truncate(cut);
        ua.push_str("...TRUNCATED");
    }
    ua
}

/// `object` without `metadata.managedFields`: its own, a list's items', a Table's rows'.
pub fn without_managed_fields(mut object: Value) -> Value {
    fn strip(obj: &mut Value) {
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    strip(&mut object);
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip);
    }
    if let Some(rows) = object.get_mut("rows").and_then(Value::as_array_mut) {
        rows.iter_mut().filter_map(|r| r.get_mut("object")).for_each(strip);
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn an_event_is_upstreams_json_line() {
        let h = headers(&[("user-agent", "kubectl/v1.32.0 (linux/amd64) kubernetes/abc")]);
        let mut e =
            Event::received("a1b2".into(), "/api/v1/namespaces/default/pods".into(), &h, "127.0.0.1".parse().ok());
        e.request_received_timestamp = "2024-05-06T07:08:09.123456789Z".parse().expect("ts");
        e.level = Level::Metadata;
        e.user = EventUser::from(&UserInfo::new("jane", &["dev", "system:authenticated"]));
        e.describe(&RequestInfo {
            is_resource_request: true,
            verb: "create".into(),
            api_version: "v1".into(),
            namespace: "default".into(),
            resource: "pods".into(),
            ..Default::default()
        });
        e.response_status = Some(ResponseStatus::code(201));
        e.annotations.insert("authorization.k8s.io/decision".into(), "allow".into());
        e.annotations.insert("authorization.k8s.io/reason".into(), String::new());
        let received = String::from_utf8(e.line(Stage::RequestReceived)).expect("utf-8");
        assert_eq!(
            received,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1b2","stage":"RequestReceived","requestURI":"/api/v1/namespaces/default/pods","verb":"create","user":{"username":"jane","groups":["dev","system:authenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"kubectl/v1.32.0 (linux/amd64) kubernetes/abc","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2024-05-06T07:08:09.123456Z","stageTimestamp":"2024-05-06T07:08:09.123456Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#
                .to_string()
                + "\n"
        );
        let complete: Value = serde_json::from_slice(&e.line(Stage::ResponseComplete)).expect("json");
        assert_eq!(complete["stage"], "ResponseComplete");
        assert_ne!(complete["stageTimestamp"], complete["requestReceivedTimestamp"]);
        assert_eq!(complete["stageTimestamp"].as_str().map(str::len), Some(27), "microseconds, UTC");
    }

    #[test]
    fn failures_carry_the_status_fields() {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods \"web\" is forbidden", "reason": "Forbidden",
            "details": {"name": "web", "kind": "pods"}, "code": 403});
        let rs = ResponseStatus::from_status(&status, 403).expect("a Status");
        assert_eq!(
            serde_json::to_value(&rs).expect("json"),
            json!({"metadata": {}, "status": "Failure", "message": "pods \"web\" is forbidden",
                "reason": "Forbidden", "details": {"name": "web", "kind": "pods"}, "code": 403})
        );
        assert_eq!(ResponseStatus::from_status(&json!({"kind": "Pod"}), 200), None);
    }

    #[test]
    fn source_ips_follow_forwarding_headers_then_the_peer() {
        let peer: Option<IpAddr> = "10.0.0.9".parse().ok();
        assert_eq!(source_ips(&HeaderMap::new(), peer), ["10.0.0.9"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4, junk, 5.6.7.8"), ("x-real-ip", "9.9.9.9")]);
        assert_eq!(source_ips(&h, peer), ["1.2.3.4", "5.6.7.8", "9.9.9.9", "10.0.0.9"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4,10.0.0.9"), ("x-real-ip", "1.2.3.4")]);
        assert_eq!(source_ips(&h, peer), ["1.2.3.4", "10.0.0.9"]);
        let mapped: Option<IpAddr> = "::ffff:127.0.0.1".parse().ok();
        assert_eq!(source_ips(&HeaderMap::new(), mapped), ["127.0.0.1"]);
    }

    #[test]
    fn long_user_agents_are_cut() {
        let long = "é".repeat(700);
        let ua = user_agent(&headers(&[("user-agent", &long)]));
        assert!(ua.ends_with("...TRUNCATED") && ua.len() <= MAX_USER_AGENT + 12, "{}", ua.len());
    }

    #[test]
    fn object_refs_learn_names_from_the_object_and_managed_fields_go() {
        let mut r = ObjectRef { resource: "pods".into(), namespace: "default".into(), ..Default::default() };
        r.fill_from(&json!({"metadata": {"name": "web", "namespace": "other", "resourceVersion": "7"}}));
        assert_eq!((r.name.as_str(), r.namespace.as_str(), r.resource_version.as_str()), ("web", "default", "7"));

        let list =
            json!({"kind": "PodList", "metadata": {}, "items": [{"metadata": {"name": "a", "managedFields": [{}]}}]});
        assert_eq!(without_managed_fields(list)["items"][0]["metadata"], json!({"name": "a"}));
        let table = json!({"kind": "Table", "rows": [{"object": {"metadata": {"name": "a", "managedFields": []}}}]});
        assert_eq!(without_managed_fields(table)["rows"][0]["object"]["metadata"], json!({"name": "a"}));
    }
}
