//! RBAC's escalation prevention, on every write of a Role, ClusterRole or binding: a user may
//! only grant what they hold themselves (or hold the `escalate` verb on the role, `bind` on the
//! role a binding names), as upstream's RBAC storage enforces. `system:masters` may grant
//! anything; the server's own writes (no user) are trusted.

use k8s_openapi::api::rbac::v1::RoleRef;
use serde_json::Value;
use skiff_core::ApiError;
use skiff_core::auth::escalation::{
    bind_attributes, confirm_may_aggregate, confirm_no_escalation, escalate_attributes, escalation_allowed,
    escalation_forbidden,
};
use skiff_core::auth::{Authorizer, UserInfo, authorize};
use skiff_core::kinds::{self, Kind};

/// Whether `kind` is one of the four RBAC kinds.
pub fn is_rbac(kind: &dyn Kind) -> bool {
    kind.info().group == kinds::RBAC_GROUP
}

/// Refuse `obj` (about to be written by `user` in `namespace`) if it grants what `user` may not.
pub fn check(
    rbac: &Authorizer,
    kind: &dyn Kind,
    obj: &Value,
    namespace: &str,
    user: &UserInfo,
) -> Result<(), ApiError> {
    if escalation_allowed(user) {
        return Ok(());
    }
    let info = kind.info();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let forbidden = |e| escalation_forbidden(info.plural, name, &e);
    match info.kind {
        "Role" | "ClusterRole" => {
            if authorize(rbac, &escalate_attributes(user, info.plural, name, namespace)).allowed() {
                return Ok(());
            }
            if obj.get("aggregationRule").is_some_and(|a| !a.is_null()) {
                confirm_may_aggregate(rbac, user).map_err(forbidden)?;
            }
            let rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule> =
                serde_json::from_value(obj.get("rules").cloned().unwrap_or(Value::Null)).unwrap_or_default();
            confirm_no_escalation(rbac, user, namespace, &rules).map_err(forbidden)
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let Ok(role_ref) = serde_json::from_value::<RoleRef>(obj.get("roleRef").cloned().unwrap_or(Value::Null))
            else {
                return Ok(()); // Validation has refused it already.
            };
            if bind_attributes(user, &role_ref, namespace).is_some_and(|a| authorize(rbac, &a).allowed()) {
                return Ok(());
            }
            let rules = rbac.role_ref_rules(&role_ref, namespace).map_err(|e| e.to_api_error())?;
            confirm_no_escalation(rbac, user, namespace, rules).map_err(forbidden)
        }
        _ => Ok(()),
    }
}
