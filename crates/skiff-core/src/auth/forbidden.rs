//! The Forbidden answer's words, as kube-apiserver gives them
//! (`apiserver/pkg/endpoints/handlers/responsewriters/errors.go`: `forbiddenMessage`,
//! `ForbiddenStatusError`, then apimachinery's `NewForbidden`). The name is not in the sentence,
//! only before it; the resource before it has no subresource.

use crate::ApiError;
use crate::auth::quote;
use crate::auth::request::Attributes;

/// `User "jane" cannot list resource "pods" in API group "" in the namespace "default"`.
pub fn forbidden_message(attrs: &Attributes) -> String {
    let r = &attrs.request;
    let user = quote(&attrs.user.name);
    if !r.is_resource_request {
        return format!("User {user} cannot {} path {}", r.verb, quote(&r.path));
    }
    let resource = quote(&r.combined_resource());
    let group = quote(&r.api_group);
    if r.namespace.is_empty() {
        format!("User {user} cannot {} resource {resource} in API group {group} at the cluster scope", r.verb)
    } else {
        format!(
            "User {user} cannot {} resource {resource} in API group {group} in the namespace {}",
            r.verb,
            quote(&r.namespace)
        )
    }
}

/// The Status message: `pods "web" is forbidden: <message>[: <reason>]`, the message escaped so
/// it cannot read as HTML.
pub fn forbidden_status_message(attrs: &Attributes, reason: &str) -> String {
    let r = &attrs.request;
    let sanitized = forbidden_message(attrs).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let err = if reason.is_empty() { sanitized } else { format!("{sanitized}: {reason}") };
    let qualified = if r.api_group.is_empty() { r.resource.clone() } else { format!("{}.{}", r.resource, r.api_group) };
    if r.api_group.is_empty() && r.resource.is_empty() {
        format!("forbidden: {err}")
    } else if r.name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {} is forbidden: {err}", quote(&r.name))
    }
}

/// The 403 for a request no authorizer allowed; `reason` is the chain's. Its details name the
/// resource (without subresource) and object, as `NewForbidden` fills them.
pub fn forbidden(attrs: &Attributes, reason: &str) -> ApiError {
    let r = &attrs.request;
    ApiError::ForbiddenResource {
        group: r.api_group.clone(),
        resource: r.resource.clone(),
        name: r.name.clone(),
        message: forbidden_status_message(attrs, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rbac::tests::request;
    use crate::auth::request::RequestInfo;
    use crate::auth::user::UserInfo;

    #[test]
    fn upstream_wording() {
        let jane = UserInfo::new("jane", &["system:authenticated"]);
        let cases = [
            (
                request(&jane, "list", "", "pods", "default", ""),
                r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#,
            ),
            (
                request(&jane, "delete", "", "pods", "default", "web"),
                r#"pods "web" is forbidden: User "jane" cannot delete resource "pods" in API group "" in the namespace "default""#,
            ),
            (
                request(&jane, "create", "", "pods/exec", "default", "web"),
                r#"pods "web" is forbidden: User "jane" cannot create resource "pods/exec" in API group "" in the namespace "default""#,
            ),
            (
                request(&jane, "list", "", "nodes", "", ""),
                r#"nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope"#,
            ),
            (
                request(&jane, "patch", "apps", "deployments/scale", "team", "web"),
                r#"deployments.apps "web" is forbidden: User "jane" cannot patch resource "deployments/scale" in API group "apps" in the namespace "team""#,
            ),
            (
                request(
                    &UserInfo::service_account("default", "app", ""),
                    "list",
                    "coordination.k8s.io",
                    "leases",
                    "kube-system",
                    "",
                ),
                r#"leases.coordination.k8s.io is forbidden: User "system:serviceaccount:default:app" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system""#,
            ),
            (
                RequestInfo { verb: "get".into(), path: "/metrics".into(), ..Default::default() }
                    .with_user(UserInfo::anonymous()),
                r#"forbidden: User "system:anonymous" cannot get path "/metrics""#,
            ),
        ];
        for (attrs, want) in cases {
            assert_eq!(forbidden_status_message(&attrs, ""), want);
            assert_eq!(forbidden(&attrs, "").to_string(), want);
        }
    }

    #[test]
    fn reason_follows_and_html_is_escaped() {
        let jane = UserInfo::new("jane", &[]);
        let attrs = request(&jane, "get", "", "pods", "default", "web");
        assert_eq!(
            forbidden_status_message(&attrs, r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#),
            r#"pods "web" is forbidden: User "jane" cannot get resource "pods" in API group "" in the namespace "default": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
        );
        let odd = UserInfo::new("<b>&", &[]);
        let attrs = request(&odd, "get", "", "pods", "default", "");
        assert_eq!(
            forbidden_message(&attrs),
            r#"User "<b>&" cannot get resource "pods" in API group "" in the namespace "default""#
        );
        assert_eq!(
            forbidden_status_message(&attrs, ""),
            r#"pods is forbidden: User "&lt;b&gt;&amp;" cannot get resource "pods" in API group "" in the namespace "default""#
        );
        assert_eq!(forbidden(&attrs, "").code(), 403);
    }

    #[test]
    fn details_name_the_resource_as_new_forbidden_does() {
        let jane = UserInfo::new("jane", &[]);
        let status = |a: &Attributes| forbidden(a, "").to_status();
        let named = status(&request(&jane, "get", "apps", "deployments/scale", "default", "web"));
        assert_eq!(named["details"], serde_json::json!({"name": "web", "group": "apps", "kind": "deployments"}));
        assert_eq!((named["reason"].as_str(), named["code"].as_u64()), (Some("Forbidden"), Some(403)));
        let list = status(&request(&jane, "list", "", "pods", "default", ""));
        assert_eq!(list["details"], serde_json::json!({"kind": "pods"}));
        let path = RequestInfo { verb: "get".into(), path: "/metrics".into(), ..Default::default() }.with_user(jane);
        assert_eq!(status(&path)["details"], serde_json::json!({}));
    }
}
