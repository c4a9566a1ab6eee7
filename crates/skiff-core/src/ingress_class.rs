//! skiff's own IngressClass: which Ingresses the built-in ingress serves (the node's proxy) and
//! whose status the controller manager keeps. An Ingress is skiff's when it names one of
//! skiff's classes (`spec.ingressClassName`, or the old `kubernetes.io/ingress.class`
//! annotation), or names none while skiff's class is the cluster's default.

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde_json::{Value, json};
use std::borrow::Borrow;

/// The class the API server makes at start, marked the default.
pub const NAME: &str = "skiff";
/// Its `spec.controller`.
pub const CONTROLLER: &str = "skiff.dev/ingress";
pub const DEFAULT_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
const LEGACY_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The built-in IngressClass object.
pub fn built_in() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": NAME, "annotations": {DEFAULT_ANNOTATION: "true"}},
        "spec": {"controller": CONTROLLER},
    })
}

fn is_skiffs(class: &IngressClass) -> bool {
    class.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER)
}

/// Whether skiff serves `ing`, given the cluster's IngressClasses.
pub fn serves(ing: &Ingress, classes: &[impl Borrow<IngressClass>]) -> bool {
    let mut classes = classes.iter().map(Borrow::borrow);
    let named = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| ing.metadata.annotations.as_ref().and_then(|a| a.get(LEGACY_ANNOTATION)).cloned());
    match named {
        Some(name) => classes.any(|c| c.metadata.name.as_deref() == Some(name.as_str()) && is_skiffs(c)),
        None => classes.any(|c| {
            let default = c.metadata.annotations.as_ref().and_then(|a| a.get(DEFAULT_ANNOTATION));
            default.map(String::as_str) == Some("true") && is_skiffs(c)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, controller: &str, default: bool) -> IngressClass {
        serde_json::from_value(json!({"metadata": {"name": name,
            "annotations": {DEFAULT_ANNOTATION: default.to_string()}},
            "spec": {"controller": controller}}))
        .expect("class")
    }

    #[test]
    fn which_ingresses_are_skiffs() {
        let classes = [class("skiff", CONTROLLER, true), class("nginx", "k8s.io/ingress-nginx", false)];
        let with = |class: Option<&str>| -> Ingress {
            serde_json::from_value(json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": class}}))
                .expect("ing")
        };
        assert!(serves(&with(Some("skiff")), &classes));
        assert!(!serves(&with(Some("nginx")), &classes));
        assert!(serves(&with(None), &classes), "skiff's class is the default");
        assert!(!serves(&with(None), &[class("skiff", CONTROLLER, false)]));
        let legacy: Ingress = serde_json::from_value(
            json!({"metadata": {"name": "i", "annotations": {LEGACY_ANNOTATION: "nginx"}}, "spec": {}}),
        )
        .expect("ing");
        assert!(!serves(&legacy, &classes));
        let built: IngressClass = serde_json::from_value(built_in()).expect("class");
        assert!(is_skiffs(&built));
    }
}
