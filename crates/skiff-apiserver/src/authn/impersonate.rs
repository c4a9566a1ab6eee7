//! Impersonation (`kubectl --as USER --as-group G`): the `Impersonate-User`, `-Group`, `-Uid`
//! and `-Extra-KEY` headers, each allowed only by the `impersonate` verb on `users`, `groups`,
//! `serviceaccounts`, `uids` or `userextras/KEY`; then the request acts as that user, as
//! upstream's impersonation filter does.

use super::User;
use crate::AppState;
use crate::http::Failure;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use skiff_core::ApiError;
use skiff_core::auth::user::{ALL_AUTHENTICATED, ANONYMOUS, service_account_groups, split_service_account_username};
use skiff_core::auth::{Attributes, RequestInfo, UserInfo};
use std::collections::BTreeMap;
use std::sync::Arc;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA: &str = "impersonate-extra-";

/// What the headers ask to act as.
#[derive(Debug, Default, PartialEq)]
struct Wanted {
    user: Option<String>,
    groups: Vec<String>,
    uid: Option<String>,
    extra: BTreeMap<String, Vec<String>>,
}

fn wanted(headers: &HeaderMap) -> Wanted {
    let values = |name: &str| -> Vec<String> {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(String::from).collect()
    };
    let mut w = Wanted {
        user: values(USER).into_iter().next(),
        groups: values(GROUP),
        uid: values(UID).into_iter().next(),
        extra: BTreeMap::new(),
    };
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(EXTRA)
            && let Ok(v) = value.to_str()
        {
            // The key travels percent-encoded (a header name cannot hold every character).
            let key = percent_decode(key);
            w.extra.entry(key).or_default().push(v.to_string());
        }
    }
    w
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The checks one impersonation needs: (resource, subresource, api group, namespace, name).
fn checks(w: &Wanted, user: &str) -> Vec<(&'static str, String, &'static str, String, String)> {
    let mut out = Vec::new();
    match split_service_account_username(user) {
        Ok((ns, name)) => out.push(("serviceaccounts", String::new(), "", ns.to_string(), name.to_string())),
        Err(_) => out.push(("users", String::new(), "", String::new(), user.to_string())),
    }
    for g in &w.groups {
        out.push(("groups", String::new(), "", String::new(), g.clone()));
    }
    if let Some(uid) = &w.uid {
        out.push(("uids", String::new(), "authentication.k8s.io", String::new(), uid.clone()));
    }
    for (key, values) in &w.extra {
        for v in values {
            out.push(("userextras", key.clone(), "authentication.k8s.io", String::new(), v.clone()));
        }
    }
    out
}

pub async fn impersonate(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let w = wanted(req.headers());
    if w == Wanted::default() {
        return next.run(req).await;
    }
    let Some(name) = w.user.clone() else {
        let what = if !w.groups.is_empty() {
            "Impersonate-Group"
        } else if w.uid.is_some() {
            "Impersonate-Uid"
        } else {
            "Impersonate-Extra"
        };
        let message = format!("requested [{what}] without impersonating a user");
        return Failure(ApiError::BadRequest(message)).into_response();
    };
    let Some(User(actor)) = req.extensions().get::<User>().cloned() else {
        return Failure(ApiError::Unauthorized).into_response();
    };
    for (resource, subresource, group, namespace, target) in checks(&w, &name) {
        let attrs = Attributes {
            user: actor.as_ref().clone(),
            request: RequestInfo {
                is_resource_request: true,
                verb: "impersonate".into(),
                api_group: group.into(),
                resource: resource.into(),
                subresource,
                namespace,
                name: target,
                ..Default::default()
            },
        };
        let verdict = state.authorization.authorize(&attrs);
        if !verdict.allowed() {
            return Failure(skiff_core::auth::forbidden::forbidden(&attrs, &verdict.reason)).into_response();
        }
    }
    let mut groups = w.groups.clone();
    if let Ok((ns, _)) = split_service_account_username(&name) {
        groups.extend(service_account_groups(ns));
    }
    // A user that is not anonymous is authenticated, whatever groups were asked for.
    if name != ANONYMOUS && !groups.iter().any(|g| g == ALL_AUTHENTICATED) {
        groups.push(ALL_AUTHENTICATED.into());
    }
    let acting = UserInfo { name, uid: w.uid.clone().unwrap_or_default(), groups, extra: w.extra.clone() };
    tracing::debug!(actor = %actor.name, user = %acting.name, "impersonating");
    let headers = req.headers_mut();
    let extra_names: Vec<_> = headers.keys().filter(|k| k.as_str().starts_with(EXTRA)).cloned().collect();
    for h in [USER, GROUP, UID].into_iter().map(axum::http::HeaderName::from_static).chain(extra_names) {
        headers.remove(h);
    }
    req.extensions_mut().insert(User(Arc::new(acting)));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_user_groups_and_extras() {
        let mut h = HeaderMap::new();
        h.insert(USER, "jane".parse().expect("value"));
        h.append(GROUP, "dev".parse().expect("value"));
        h.append(GROUP, "ops".parse().expect("value"));
        h.insert("impersonate-extra-scopes%2Fv1", "a".parse().expect("value"));
        let w = wanted(&h);
        assert_eq!(w.user.as_deref(), Some("jane"));
        assert_eq!(w.groups, ["dev", "ops"]);
        assert_eq!(w.extra.get("scopes/v1"), Some(&vec!["a".to_string()]));
        let c = checks(&w, "jane");
        assert_eq!(c[0], ("users", String::new(), "", String::new(), "jane".to_string()));
        assert_eq!(c[3].0, "userextras");
        assert_eq!(c[3].1, "scopes/v1");
        let sa = checks(&Wanted::default(), "system:serviceaccount:shop:app");
        assert_eq!(sa[0], ("serviceaccounts", String::new(), "", "shop".to_string(), "app".to_string()));
    }
}
