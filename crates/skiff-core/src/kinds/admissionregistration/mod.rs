//! The dynamic admission kinds (`admissionregistration.k8s.io/v1`) as Kubernetes 1.32 serves
//! them: MutatingWebhookConfigurations and ValidatingWebhookConfigurations (`webhooks`),
//! ValidatingAdmissionPolicies with their `status` subresource (`policies`) and
//! ValidatingAdmissionPolicyBindings (`bindings`); the rule, MatchResources and match
//! condition checks they share are in `rules`. Each has upstream's v1 defaults (applied on
//! every write), validation and update validation with upstream's messages and order
//! (`pkg/apis/admissionregistration/validation`), registry strategy and `printers.go` table.
//! All four are cluster-scoped, in the `api-extensions` category, with no short names.
//!
//! Not covered, and why:
//! - the authorization checks of the registry strategies (a policy's `paramKind` and a
//!   binding's `paramRef` need `get` on what they name): they need the requesting user, which
//!   a [`Kind`](super::Kind) does not see;
//! - CEL expressions are compiled by `crd::cel::untyped`, whose type checking is partial (see
//!   there): expressions upstream refuses for argument types pass here;
//! - a status `fieldRef` is not parsed as a client-go JSONPath (only a missing one is refused).

mod bindings;
mod policies;
mod rules;
mod webhooks;

// Go's `url.Parse` as the CustomResourceDefinition kind has it (its conversion webhooks are
// checked alike), shared by path until that module is visible to its siblings; then this
// becomes a `use` and the allowances go.

#[cfg(test)]
mod tests;

pub use bindings::ValidatingAdmissionPolicyBindings;
pub use policies::ValidatingAdmissionPolicies;
pub use webhooks::{MutatingWebhookConfigurations, ValidatingWebhookConfigurations};

use crate::schema::{BUILT_IN, ListShape, MapShape, Shapes};
use serde_json::Value;

pub const GROUP: &str = "admissionregistration.k8s.io";
/// The resources (plurals) of the four kinds.
pub const MUTATING_WEBHOOK_CONFIGURATIONS: &str = "mutatingwebhookconfigurations";
pub const VALIDATING_WEBHOOK_CONFIGURATIONS: &str = "validatingwebhookconfigurations";
pub const VALIDATING_ADMISSION_POLICIES: &str = "validatingadmissionpolicies";
pub const VALIDATING_ADMISSION_POLICY_BINDINGS: &str = "validatingadmissionpolicybindings";

/// The webhooks of a Mutating- or ValidatingWebhookConfiguration, in order (none when absent).
pub fn webhooks(obj: &Value) -> &[Value] {
    obj.get("webhooks").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The list and struct markers server-side apply follows in these kinds (`k8s.io/api`
/// `admissionregistration/v1` and metav1): webhooks, match conditions and variables are maps
/// keyed by `name`, validation actions a set, selectors, `paramKind`, `paramRef`,
/// MatchResources and variables atomic structs; the rest as every kind's metadata and status.
struct AdmissionShapes;

static SHAPES: AdmissionShapes = AdmissionShapes;

impl Shapes for AdmissionShapes {
    fn list(&self, path: &[&str]) -> ListShape {
        match path {
            ["webhooks"] | ["webhooks", "matchConditions"] | ["spec", "matchConditions" | "variables"] => {
                ListShape::Map(vec!["name".into()])
            }
            ["spec", "validationActions"] => ListShape::Set,
            ["metadata", ..] | ["status", "conditions"] => BUILT_IN.list(path),
            _ => ListShape::Atomic,
        }
    }

    fn map(&self, path: &[&str]) -> MapShape {
        match path {
            [.., "namespaceSelector" | "objectSelector"]
            | ["spec", "paramKind" | "paramRef" | "matchConstraints" | "matchResources" | "variables"] => {
                MapShape::Atomic
            }
            _ => BUILT_IN.map(path),
        }
    }
}
