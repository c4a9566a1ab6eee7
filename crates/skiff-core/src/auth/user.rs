//! Who is asking: the authenticated user as authorizers see it (apiserver's `user.Info`), the
//! well-known users and groups (`authentication/user/user.go`), and service-account and node
//! usernames (`authentication/serviceaccount/util.go`, the Node authorizer's identifier).

use std::collections::BTreeMap;

use crate::names;

/// Members may do anything: the privileged-group authorizer allows them before RBAC runs.
pub const SYSTEM_PRIVILEGED_GROUP: &str = "system:masters";
pub const NODES_GROUP: &str = "system:nodes";
pub const MONITORING_GROUP: &str = "system:monitoring";
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";
pub const APISERVER_USER: &str = "system:apiserver";
pub const KUBE_PROXY: &str = "system:kube-proxy";
pub const KUBE_CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
pub const KUBE_SCHEDULER: &str = "system:kube-scheduler";
/// The node agent's network plane (service view and proxy, cluster DNS, NetworkPolicies,
/// ingress): skiff's counterpart of `system:kube-proxy`, only in `system:authenticated`.
pub const SKIFF_NODE_NETWORK: &str = "system:skiff-node-network";
/// The node agent's built-in local-path provisioner (k3s's `local-path-provisioner`): it
/// provisions and deletes volumes for claims, only in `system:authenticated`.
pub const SKIFF_NODE_STORAGE: &str = "system:skiff-node-storage";
/// Every service account is in this group, and in `system:serviceaccounts:NAMESPACE`.
pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";
const SERVICE_ACCOUNT_GROUP_PREFIX: &str = "system:serviceaccounts:";
const NODE_USER_PREFIX: &str = "system:node:";

/// An authenticated (or anonymous) user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn new(name: impl Into<String>, groups: &[&str]) -> Self {
        UserInfo { name: name.into(), groups: groups.iter().map(|g| g.to_string()).collect(), ..Default::default() }
    }

    /// `system:anonymous` in `system:unauthenticated`, as the anonymous authenticator makes it.
    pub fn anonymous() -> Self {
        UserInfo::new(ANONYMOUS, &[ALL_UNAUTHENTICATED])
    }

    /// A service account's user as its token authenticates: its username, the service-account
    /// groups and `system:authenticated` (which the authenticator chain adds).
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        let mut groups = service_account_groups(namespace);
        groups.push(ALL_AUTHENTICATED.to_string());
        UserInfo {
            name: service_account_username(namespace, name),
            uid: uid.to_string(),
            groups,
            extra: BTreeMap::new(),
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The node a user is, as the Node authorizer identifies one: a `system:node:NAME`
    /// username in the `system:nodes` group.
    pub fn node_name(&self) -> Option<&str> {
        let node = self.name.strip_prefix(NODE_USER_PREFIX)?;
        self.in_group(NODES_GROUP).then_some(node)
    }
}

/// `system:serviceaccount:NAMESPACE:NAME`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// `system:serviceaccounts` and `system:serviceaccounts:NAMESPACE`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![ALL_SERVICE_ACCOUNTS_GROUP.to_string(), format!("{SERVICE_ACCOUNT_GROUP_PREFIX}{namespace}")]
}

/// `system:node:NAME`, a node agent's username (it is also in `system:nodes`).
pub fn node_username(node: &str) -> String {
    format!("{NODE_USER_PREFIX}{node}")
}

/// A username that is not a service account's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Username must be in the form system:serviceaccount:namespace:name")]
pub struct NotServiceAccount;

/// The (namespace, name) of a service-account username, both valid names (`SplitUsername`).
pub fn split_service_account_username(username: &str) -> Result<(&str, &str), NotServiceAccount> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_USER_PREFIX).ok_or(NotServiceAccount)?;
    let mut parts = rest.split(':');
    let (Some(namespace), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NotServiceAccount);
    };
    if !names::dns1123_label(namespace).is_empty() || !names::dns1123_subdomain(name).is_empty() {
        return Err(NotServiceAccount);
    }
    Ok((namespace, name))
}

/// Whether `username` is the service account `namespace/name`, without allocating
/// (`MatchesUsername`: RBAC compares every ServiceAccount subject this way).
pub fn is_service_account(namespace: &str, name: &str, username: &str) -> bool {
    username
        .strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_usernames() {
        let u = service_account_username("default", "app");
        assert_eq!(u, "system:serviceaccount:default:app");
        assert_eq!(split_service_account_username(&u), Ok(("default", "app")));
        assert!(is_service_account("default", "app", &u));
        assert!(!is_service_account("default", "ap", &u));
        assert!(!is_service_account("defaul", "t:app", &u));
        assert!(!is_service_account("default", "app", "system:serviceaccounts:default:app"));
        for bad in [
            "jane",
            "system:serviceaccount:default",
            "system:serviceaccount:default:app:x",
            "system:serviceaccount::app",
            "system:serviceaccount:Default:app",
            "system:serviceaccount:default:",
        ] {
            assert_eq!(split_service_account_username(bad), Err(NotServiceAccount), "{bad}");
        }
        assert_eq!(NotServiceAccount.to_string(), "Username must be in the form system:serviceaccount:namespace:name");
    }

    #[test]
    fn well_known_users() {
        let sa = UserInfo::service_account("kube-system", "dns", "u1");
        assert_eq!(sa.name, "system:serviceaccount:kube-system:dns");
        assert_eq!(sa.groups, ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]);
        let anon = UserInfo::anonymous();
        assert_eq!(
            (anon.name.as_str(), anon.groups.as_slice()),
            ("system:anonymous", &["system:unauthenticated".to_string()][..])
        );

        let node = UserInfo::new(node_username("n1"), &[NODES_GROUP, ALL_AUTHENTICATED]);
        assert_eq!(node.node_name(), Some("n1"));
        // The name alone does not make a node: the group is required too.
        assert_eq!(UserInfo::new("system:node:n1", &[]).node_name(), None);
        assert_eq!(UserInfo::new("jane", &[NODES_GROUP]).node_name(), None);
    }
}
