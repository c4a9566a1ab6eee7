//! What a request asks for, in authorization terms: upstream's `RequestInfoFactory`
//! (`apiserver/pkg/endpoints/request/requestinfo.go`) with kube-apiserver's prefixes (`api`
//! without a group, `apis` with one). Everything it does not recognise is a non-resource request
//! whose verb is the lowercased HTTP method.

use crate::auth::user::UserInfo;
use crate::names;
use crate::selector::{FieldSelector, LabelSelector};

/// A request's authorization attributes, without the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource_request: bool,
    /// The URL path as requested (non-resource rules match it).
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `proxy`; for non-resource requests the lowercased HTTP method.
    pub verb: String,
    pub api_prefix: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The `fieldSelector` of a list, watch or deletecollection (not one named by a legacy
    /// `/watch/` path), as sent: authorizers may decide on it (the Node authorizer's
    /// `spec.nodeName=NODE`).
    pub field_selector: String,
}

impl RequestInfo {
    /// `pods/exec`: the resource as rules name it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    pub fn with_user(self, user: UserInfo) -> Attributes {
        Attributes { user, request: self }
    }
}

/// What authorizers decide on: who asks, and for what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    pub request: RequestInfo,
}

/// A resource path with a legacy verb prefix and nothing after it (`/api/v1/watch`); upstream
/// answers 500 for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to determine kind and namespace from url, {url}")]
pub struct RequestInfoError {
    pub url: String,
}

/// Path segments after the version that name a verb rather than a resource (deprecated forms).
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// `/namespaces/NS/status` and `/namespaces/NS/finalize` are the namespace's subresources, not a
/// resource in it.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// The attributes of `method path?query` (method in upper case, as HTTP sends it; `query` the
/// decoded pairs in order).
pub fn request_info(method: &str, path: &str, query: &[(&str, &str)]) -> Result<RequestInfo, RequestInfoError> {
    let mut info = RequestInfo { path: path.to_string(), verb: method.to_lowercase(), ..Default::default() };
    let trimmed = path.trim_matches('/');
    let parts: Vec<&str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return Ok(info);
    }
    info.api_prefix = parts[0].to_string();
    let mut rest = &parts[1..];
    if parts[0] == "apis" {
        // A group needs group/version/resource: `/apis/apps/v1` is discovery.
        if rest.len() < 3 {
            return Ok(info);
        }
        info.api_group = rest[0].to_string();
        rest = &rest[1..];
    }
    info.is_resource_request = true;
    info.api_version = rest[0].to_string();
    rest = &rest[1..];

    let verb_via_path = SPECIAL_VERBS.contains(&rest[0]);
    if verb_via_path {
        if rest.len() < 2 {
            return Err(RequestInfoError { url: url(path, query) });
        }
        info.verb = rest[0].to_string();
        rest = &rest[1..];
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
    }

    if rest[0] == "namespaces"
        && let Some(ns) = rest.get(1)
    {
        info.namespace = ns.to_string();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }

    // resource/name/subresource/anything/else: the rest is not interpreted.
    info.resource = rest[0].to_string();
    if let Some(name) = rest.get(1) {
        info.name = name.to_string();
    }
    if let Some(sub) = rest.get(2).filter(|_| info.verb != "proxy") {
        info.subresource = sub.to_string();
    }

    if info.name.is_empty() && info.verb == "get" {
        info.verb = if first(query, "watch").is_some_and(is_true) { "watch" } else { "list" }.to_string();
        // A list or watch of one object by `metadata.name` is authorized as that name (only when
        // all the list options decode, as upstream's parameter codec must succeed first).
        if let Some(name) = list_options_name(query) {
            info.name = name;
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
    // Read straight from the query: a list option that does not decode loses the name, not
    // the selector.
    if !verb_via_path && matches!(info.verb.as_str(), "list" | "watch" | "deletecollection") {
        info.field_selector = first(query, "fieldSelector").unwrap_or_default().to_string();
    }
    Ok(info)
}

fn first<'a>(query: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// A query boolean as apimachinery converts one: anything but `0` and `false` is true.
fn is_true(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

/// The name a valid `fieldSelector` requires of `metadata.name`, if the list options decode.
fn list_options_name(query: &[(&str, &str)]) -> Option<String> {
    let ints_ok = ["limit", "timeoutSeconds"].iter().all(|k| first(query, k).is_none_or(|v| v.parse::<i64>().is_ok()));
    let labels_ok = first(query, "labelSelector").is_none_or(|s| LabelSelector::parse(s).is_ok());
    if !ints_ok || !labels_ok {
        return None;
    }
    let selector = FieldSelector::parse(first(query, "fieldSelector")?).ok()?;
    let name = selector.required("metadata.name")?;
    names::path_segment_name(name).is_empty().then(|| name.to_string())
}

fn url(path: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (method, path, query, verb, group, version, namespace, resource, subresource, name)
    type Case<'a> =
        (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

    #[test]
    fn resource_requests_as_upstream_parses_them() {
        let cases: &[Case] = &[
            // upstream's requestinfo_test.go table
            ("GET", "/api/v1/namespaces", &[], "list", "", "v1", "", "namespaces", "", ""),
            ("GET", "/api/v1/namespaces/other", &[], "get", "", "v1", "other", "namespaces", "", "other"),
            ("GET", "/api/v1/namespaces/other/pods", &[], "list", "", "v1", "other", "pods", "", ""),
            ("GET", "/api/v1/namespaces/other/pods/foo", &[], "get", "", "v1", "other", "pods", "", "foo"),
            ("HEAD", "/api/v1/namespaces/other/pods/foo", &[], "get", "", "v1", "other", "pods", "", "foo"),
            ("GET", "/api/v1/pods", &[], "list", "", "v1", "", "pods", "", ""),
            ("HEAD", "/api/v1/pods", &[], "list", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/namespaces/other/pods/foo", &[], "get", "", "v1", "other", "pods", "", "foo"),
            ("GET", "/api/v1/namespaces/other/pods", &[], "list", "", "v1", "other", "pods", "", ""),
            // special verbs
            ("GET", "/api/v1/proxy/namespaces/other/pods/foo", &[], "proxy", "", "v1", "other", "pods", "", "foo"),
            (
                "GET",
                "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource",
                &[],
                "proxy",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            ("GET", "/api/v1/watch/pods", &[], "watch", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/pods", &[("watch", "true")], "watch", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/pods", &[("watch", "false")], "list", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/pods", &[("watch", "1")], "watch", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/pods", &[("watch", "0")], "list", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/pods", &[("watch", "False")], "list", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/pods", &[("watch", "")], "watch", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/watch/namespaces/other/pods", &[], "watch", "", "v1", "other", "pods", "", ""),
            ("GET", "/api/v1/watch/namespaces/other/pods/foo", &[], "watch", "", "v1", "other", "pods", "", "foo"),
            // subresources
            ("GET", "/api/v1/namespaces/other/pods/foo/status", &[], "get", "", "v1", "other", "pods", "status", "foo"),
            (
                "POST",
                "/api/v1/namespaces/default/pods/web/exec",
                &[],
                "create",
                "",
                "v1",
                "default",
                "pods",
                "exec",
                "web",
            ),
            ("GET", "/api/v1/namespaces/default/pods/web/exec", &[], "get", "", "v1", "default", "pods", "exec", "web"),
            ("GET", "/api/v1/namespaces/default/pods/web/log", &[], "get", "", "v1", "default", "pods", "log", "web"),
            (
                "POST",
                "/api/v1/namespaces/default/pods/web/portforward",
                &[],
                "create",
                "",
                "v1",
                "default",
                "pods",
                "portforward",
                "web",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/web/proxy/some/path",
                &[],
                "get",
                "",
                "v1",
                "default",
                "pods",
                "proxy",
                "web",
            ),
            (
                "POST",
                "/api/v1/namespaces/default/serviceaccounts/app/token",
                &[],
                "create",
                "",
                "v1",
                "default",
                "serviceaccounts",
                "token",
                "app",
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/finalize",
                &[],
                "update",
                "",
                "v1",
                "other",
                "namespaces",
                "finalize",
                "other",
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/status",
                &[],
                "update",
                "",
                "v1",
                "other",
                "namespaces",
                "status",
                "other",
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods/foo/status/extra",
                &[],
                "get",
                "",
                "v1",
                "other",
                "pods",
                "status",
                "foo",
            ),
            // groups
            (
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/web/scale",
                &[],
                "patch",
                "apps",
                "v1",
                "default",
                "deployments",
                "scale",
                "web",
            ),
            ("GET", "/apis/apps/v1/deployments", &[], "list", "apps", "v1", "", "deployments", "", ""),
            (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
                &[],
                "get",
                "rbac.authorization.k8s.io",
                "v1",
                "",
                "clusterroles",
                "",
                "view",
            ),
            (
                "GET",
                "/apis/apps/v1/watch/namespaces/a/deployments",
                &[],
                "watch",
                "apps",
                "v1",
                "a",
                "deployments",
                "",
                "",
            ),
            // verbs by method
            ("POST", "/api/v1/namespaces/default/pods", &[], "create", "", "v1", "default", "pods", "", ""),
            ("PUT", "/api/v1/namespaces/default/pods/web", &[], "update", "", "v1", "default", "pods", "", "web"),
            ("PATCH", "/api/v1/namespaces/default/pods/web", &[], "patch", "", "v1", "default", "pods", "", "web"),
            ("DELETE", "/api/v1/namespaces/default/pods/web", &[], "delete", "", "v1", "default", "pods", "", "web"),
            ("DELETE", "/api/v1/namespaces/default/pods", &[], "deletecollection", "", "v1", "default", "pods", "", ""),
            ("OPTIONS", "/api/v1/namespaces/default/pods", &[], "", "", "v1", "default", "pods", "", ""),
            ("GET", "/api/v1/namespaces/default/pods/", &[], "list", "", "v1", "default", "pods", "", ""),
            // a watch or list of one object by field selector is authorized by its name
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                &[("fieldSelector", "metadata.name=web"), ("watch", "true")],
                "watch",
                "",
                "v1",
                "default",
                "pods",
                "",
                "web",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                &[("fieldSelector", "metadata.name==web,spec.nodeName=n1")],
                "list",
                "",
                "v1",
                "default",
                "pods",
                "",
                "web",
            ),
            ("GET", "/api/v1/pods", &[("fieldSelector", "metadata.name!=web")], "list", "", "v1", "", "pods", "", ""),
            ("GET", "/api/v1/pods", &[("fieldSelector", "metadata.name=a%b")], "list", "", "v1", "", "pods", "", ""),
            // options that do not decode drop the name, not the watch
            (
                "GET",
                "/api/v1/pods",
                &[("fieldSelector", "metadata.name=web"), ("limit", "x"), ("watch", "1")],
                "watch",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/pods",
                &[("fieldSelector", "metadata.name=web"), ("labelSelector", "a b")],
                "list",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            // the legacy watch prefix ignores the field selector
            (
                "GET",
                "/api/v1/watch/pods",
                &[("fieldSelector", "metadata.name=web")],
                "watch",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            // DELETE with a field selector is still a collection: the name is only read for get
            (
                "DELETE",
                "/api/v1/namespaces/default/pods",
                &[("fieldSelector", "metadata.name=web")],
                "deletecollection",
                "",
                "v1",
                "default",
                "pods",
                "",
                "",
            ),
        ];
        for &(method, path, query, verb, group, version, ns, resource, sub, name) in cases {
            let got = request_info(method, path, query).expect(path);
            let want = (true, verb, group, version, ns, resource, sub, name);
            let have = (
                got.is_resource_request,
                got.verb.as_str(),
                got.api_group.as_str(),
                got.api_version.as_str(),
                got.namespace.as_str(),
                got.resource.as_str(),
                got.subresource.as_str(),
                got.name.as_str(),
            );
            assert_eq!(have, want, "{method} {path} {query:?}");
            assert_eq!(got.path, path);
        }
    }

    #[test]
    fn non_resource_requests() {
        for (method, path) in [
            ("GET", "/"),
            ("GET", "/healthz"),
            ("GET", "/healthz/ping"),
            ("GET", "/livez"),
            ("GET", "/readyz"),
            ("GET", "/version"),
            ("GET", "/metrics"),
            ("GET", "/api"),
            ("GET", "/api/v1"),
            ("GET", "/apis"),
            ("GET", "/apis/apps"),
            ("GET", "/apis/apps/v1"),
            ("GET", "/openapi/v2"),
            ("GET", "/openapi/v3/apis/apps/v1"),
            ("POST", "/foo/bar/baz"),
            ("DELETE", "/other/path/entirely"),
            ("GET", "/.well-known/openid-configuration"),
        ] {
            let got = request_info(method, path, &[]).expect(path);
            assert!(!got.is_resource_request, "{path}");
            assert_eq!((got.verb.as_str(), got.path.as_str()), (method.to_lowercase().as_str(), path));
            assert_eq!((got.resource.as_str(), got.namespace.as_str()), ("", ""), "{path}");
        }
        // upstream keeps the prefix it saw even when the path is discovery
        assert_eq!(request_info("GET", "/apis/apps/v1", &[]).map(|i| i.api_prefix), Ok("apis".into()));
    }

    #[test]
    fn special_verb_without_a_resource_is_an_error() {
        let err = request_info("GET", "/api/v1/watch", &[("x", "1")]).expect_err("no resource");
        assert_eq!(err.to_string(), "unable to determine kind and namespace from url, /api/v1/watch?x=1");
        assert!(request_info("GET", "/apis/apps/v1/proxy", &[]).is_err());
    }

    #[test]
    fn collections_carry_their_field_selector() {
        let selector = |method: &str, path: &str, query: &[(&str, &str)]| {
            request_info(method, path, query).expect(path).field_selector
        };
        let node = [("fieldSelector", "spec.nodeName=n1"), ("fieldSelector", "spec.nodeName=n2")];
        assert_eq!(selector("GET", "/api/v1/pods", &node), "spec.nodeName=n1", "the first one");
        assert_eq!(selector("GET", "/api/v1/pods", &[node[0], ("watch", "1")]), "spec.nodeName=n1");
        assert_eq!(selector("DELETE", "/api/v1/namespaces/a/pods", &node), "spec.nodeName=n1");
        // even when other list options do not decode
        assert_eq!(selector("GET", "/api/v1/pods", &[node[0], ("limit", "x")]), "spec.nodeName=n1");
        // not for one object, nor through the legacy watch path
        assert_eq!(selector("GET", "/api/v1/namespaces/a/pods/p", &node), "");
        assert_eq!(selector("GET", "/api/v1/watch/pods", &node), "");
        assert_eq!(selector("GET", "/api/v1/pods", &[]), "");
    }

    #[test]
    fn combined_resource() {
        let info = request_info("POST", "/api/v1/namespaces/a/pods/p/exec", &[]).expect("parse");
        assert_eq!(info.combined_resource(), "pods/exec");
        let attrs = info.with_user(UserInfo::new("jane", &[]));
        assert_eq!(attrs.user.name, "jane");
        assert_eq!(request_info("GET", "/api/v1/pods", &[]).expect("parse").combined_resource(), "pods");
    }
}
