//! How server-side apply types a custom resource's lists and maps: by the version's schema
//! markers, as upstream's structured-merge-diff schema (kube-openapi's `schemaconv`) reads
//! them. `x-kubernetes-list-type` `set` and `map` (keyed by `x-kubernetes-list-map-keys`)
//! merge item by item, a list without a marker (or `atomic`) is replaced whole;
//! `x-kubernetes-map-type: atomic` objects are replaced whole, others merge field by field.
//! Fields the schema does not describe (under `x-kubernetes-preserve-unknown-fields`) get
//! upstream's deduced type: objects granular, lists atomic. Object metadata (the root's, an
//! embedded resource's) is ObjectMeta, typed as the built-in kinds type it.

use super::CustomKind;
use crate::crd::Schema;
use crate::schema::{BUILT_IN, ListShape, MapShape, Shapes};

/// Where a path leads in a custom resource's schema.
enum Node<'a> {
    /// A node the schema describes.
    Typed(&'a Schema),
    /// A field the schema does not describe.
    Deduced,
    /// ObjectMeta: the path from this index (`metadata`) on.
    Meta(usize),
}

/// Walk `root` by `path` (field names; list indices are left out, so a list's item fields
/// follow the list's name).
fn walk<'a>(root: Option<&'a Schema>, path: &[&str]) -> Node<'a> {
    let Some(mut s) = root else {
        return if path.first() == Some(&"metadata") { Node::Meta(0) } else { Node::Deduced };
    };
    for (i, field) in path.iter().enumerate() {
        while let Some(item) = s.items_schema() {
            s = item;
        }
        if *field == "metadata" && (i == 0 || s.x_embedded_resource) {
            return Node::Meta(i);
        }
        s = match s.property(field).or_else(|| s.additional_schema()) {
            Some(next) => next,
            None => return Node::Deduced,
        };
    }
    Node::Typed(s)
}

impl Shapes for CustomKind {
    fn list(&self, path: &[&str]) -> ListShape {
        match walk(self.schema(), path) {
            Node::Typed(s) => match s.x_list_type.as_deref() {
                Some("set") => ListShape::Set,
                Some("map") => ListShape::Map(s.x_list_map_keys.clone()),
                _ => ListShape::Atomic,
            },
            Node::Deduced => ListShape::Atomic,
            Node::Meta(i) => BUILT_IN.list(&path[i..]),
        }
    }

    fn map(&self, path: &[&str]) -> MapShape {
        if path.is_empty() {
            return MapShape::Fields;
        }
        // At a list's path, the object is one of its items.
        let node = match walk(self.schema(), path) {
            Node::Typed(mut s) => {
                while let Some(item) = s.items_schema() {
                    s = item;
                }
                Node::Typed(s)
            }
            other => other,
        };
        match node {
            Node::Typed(s) if s.x_map_type.as_deref() == Some("atomic") => MapShape::Atomic,
            // A struct (an embedded resource has apiVersion, kind and metadata at least).
            Node::Typed(s) if !s.properties.is_empty() || s.x_embedded_resource => MapShape::Fields,
            // `additionalProperties`, or no properties at all: keys are data.
            Node::Typed(_) | Node::Deduced => MapShape::Granular,
            Node::Meta(i) => BUILT_IN.map(&path[i..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::kinds::Kind;
    use crate::kinds::custom::kinds_of;
    use crate::managed::{self, Part};
    use crate::schema::{ListShape, MapShape};
    use jiff::Timestamp;
    use serde_json::{Value, json};

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("ts")
    }

    fn gadgets() -> &'static dyn Kind {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"}, "value": {"type": "integer"},
                        "hosts": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "pinned": {"type": "array", "x-kubernetes-list-type": "atomic",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                    "additionalProperties": {"type": "string"}},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true}}}}});
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}]}
        });
        kinds_of(&crd)[0]
    }

    fn gadget(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "default"},
            "spec": spec})
    }

    fn apply(live: &Value, spec: Value, manager: &str) -> Result<Value, crate::ApiError> {
        managed::apply(gadgets().shapes(), live, &gadget(spec), manager, false, now())
    }

    fn fields<'a>(obj: &'a Value, manager: &str) -> &'a Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .and_then(|mf| mf.iter().find(|e| e["manager"] == manager))
            .map_or(&Value::Null, |e| &e["fieldsV1"])
    }

    fn message(err: crate::ApiError) -> Value {
        err.to_status()["message"].clone()
    }

    #[test]
    fn the_schema_markers_type_lists_and_maps() {
        let s = gadgets().shapes();
        assert_eq!(s.list(&["spec", "ports"]), ListShape::Map(vec!["name".into()]));
        assert_eq!(s.list(&["spec", "ports", "hosts"]), ListShape::Set);
        assert_eq!(s.list(&["spec", "tags"]), ListShape::Set);
        assert_eq!(s.list(&["spec", "args"]), ListShape::Atomic);
        assert_eq!(s.list(&["spec", "pinned"]), ListShape::Atomic);
        assert_eq!(s.map(&[]), MapShape::Fields);
        assert_eq!(s.map(&["spec"]), MapShape::Fields);
        assert_eq!(s.map(&["spec", "ports"]), MapShape::Fields, "a list-map item");
        assert_eq!(s.map(&["spec", "selector"]), MapShape::Atomic);
        assert_eq!(s.map(&["spec", "env"]), MapShape::Granular);
        // Unknown fields: upstream's deduced type.
        assert_eq!(s.map(&["spec", "extra"]), MapShape::Granular);
        assert_eq!(s.map(&["spec", "extra", "a", "b"]), MapShape::Granular);
        assert_eq!(s.list(&["spec", "extra", "a"]), ListShape::Atomic);
        // ObjectMeta, at the root and in an embedded resource.
        assert_eq!(s.list(&["metadata", "finalizers"]), ListShape::Set);
        assert_eq!(s.map(&["metadata", "labels"]), MapShape::Granular);
        assert_eq!(s.map(&["spec", "template"]), MapShape::Fields);
        assert_eq!(s.map(&["spec", "template", "metadata", "labels"]), MapShape::Granular);
        assert_eq!(s.list(&["spec", "template", "metadata", "ownerReferences"]), ListShape::Map(vec!["uid".into()]));
        assert_eq!(s.list(&["spec", "template", "spec", "containers"]), ListShape::Atomic, "not a pod's");
        // Built-in kinds keep their table.
        let pods = crate::kinds::PODS.shapes();
        assert_eq!(pods.list(&["spec", "containers"]), ListShape::Map(vec!["name".into()]));
        assert_eq!(pods.map(&["metadata", "labels"]), MapShape::Granular);
    }

    #[test]
    fn map_list_items_are_owned_by_their_appliers() {
        let empty = gadget(json!(null));
        let a = apply(&empty, json!({"ports": [{"name": "a1", "value": 1}, {"name": "a2", "value": 2}]}), "alice")
            .expect("alice");
        let both = apply(&a, json!({"ports": [{"name": "b", "value": 3}]}), "bob").expect("bob: no conflict");
        assert_eq!(
            both["spec"]["ports"],
            json!([{"name": "a1", "value": 1}, {"name": "a2", "value": 2}, {"name": "b", "value": 3}])
        );
        assert_eq!(
            fields(&both, "alice")["f:spec"]["f:ports"],
            json!({".": {}, "k:{\"name\":\"a1\"}": {".": {}, "f:name": {}, "f:value": {}},
                "k:{\"name\":\"a2\"}": {".": {}, "f:name": {}, "f:value": {}}})
        );
        assert_eq!(
            fields(&both, "bob")["f:spec"]["f:ports"],
            json!({".": {}, "k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:value": {}}})
        );
        // Alice no longer applies a2: only a2 goes.
        let fewer = apply(&both, json!({"ports": [{"name": "a1", "value": 1}]}), "alice").expect("alice again");
        assert_eq!(fewer["spec"]["ports"], json!([{"name": "a1", "value": 1}, {"name": "b", "value": 3}]));
        // Nor the list: only her items go.
        let none = apply(&fewer, json!({}), "alice").expect("alice without ports");
        assert_eq!(none["spec"]["ports"], json!([{"name": "b", "value": 3}]));
        // A field of another's item is a conflict, in upstream's words.
        let err = apply(&none, json!({"ports": [{"name": "b", "value": 4}]}), "alice").expect_err("conflict");
        assert_eq!(message(err), "Apply failed with 1 conflict: conflict with \"bob\": .spec.ports[name=\"b\"].value");
        // The same value is shared ownership.
        let shared = apply(&none, json!({"ports": [{"name": "b", "value": 3}]}), "alice").expect("same value");
        assert!(fields(&shared, "alice")["f:spec"]["f:ports"].get("k:{\"name\":\"b\"}").is_some());
    }

    #[test]
    fn set_items_merge() {
        let a = apply(&gadget(json!(null)), json!({"tags": ["x", "y"]}), "alice").expect("alice");
        let both = apply(&a, json!({"tags": ["z"]}), "bob").expect("bob");
        assert_eq!(both["spec"]["tags"], json!(["x", "y", "z"]));
        assert_eq!(fields(&both, "bob")["f:spec"]["f:tags"], json!({".": {}, "v:\"z\"": {}}));
        let fewer = apply(&both, json!({"tags": ["x"]}), "alice").expect("alice again");
        assert_eq!(fewer["spec"]["tags"], json!(["x", "z"]));
        // A set inside a map-list item merges too.
        let p = apply(&fewer, json!({"ports": [{"name": "p", "hosts": ["h1"]}]}), "alice").expect("ports");
        let q = apply(&p, json!({"ports": [{"name": "p", "hosts": ["h2"]}]}), "bob").expect("hosts merge");
        assert_eq!(q["spec"]["ports"], json!([{"name": "p", "hosts": ["h1", "h2"]}]));
    }

    #[test]
    fn atomic_lists_and_maps_are_replaced_and_owned_whole() {
        let spec = json!({"args": ["a"], "pinned": [{"name": "p"}], "selector": {"x": "1"}, "env": {"x": "1"}});
        let a = apply(&gadget(json!(null)), spec, "alice").expect("alice");
        let mine = &fields(&a, "alice")["f:spec"];
        assert_eq!(mine["f:args"], json!({}));
        assert_eq!(mine["f:pinned"], json!({}));
        assert_eq!(mine["f:selector"], json!({}));
        assert_eq!(mine["f:env"], json!({".": {}, "f:x": {}}));
        // A granular map merges key by key, with no conflict.
        let env = apply(&a, json!({"env": {"y": "2"}}), "bob").expect("env");
        assert_eq!(env["spec"]["env"], json!({"x": "1", "y": "2"}));
        // An atomic list or map applied differently by another manager is a conflict on the whole.
        let theirs = json!({"args": ["b"], "selector": {"y": "2"}});
        let err = apply(&a, theirs.clone(), "bob").expect_err("conflicts");
        assert_eq!(
            message(err),
            "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.args\n- .spec.selector"
        );
        let forced =
            managed::apply(gadgets().shapes(), &a, &gadget(theirs), "bob", true, now()).expect("forced takes over");
        assert_eq!(forced["spec"]["args"], json!(["b"]));
        assert_eq!(forced["spec"]["selector"], json!({"y": "2"}), "replaced, not merged");
        assert_eq!(fields(&forced, "bob")["f:spec"], json!({"f:args": {}, "f:selector": {}}));
        let alice = &fields(&forced, "alice")["f:spec"];
        assert!(alice.get("f:args").is_none() && alice.get("f:selector").is_none());
        assert_eq!(alice["f:pinned"], json!({}));
    }

    #[test]
    fn updates_own_items_and_conflicts_name_their_version() {
        let kind = gadgets();
        let mut created = gadget(json!({"ports": [{"name": "a", "value": 1}], "selector": {"x": "1"}}));
        managed::record_update(kind.shapes(), &mut created, None, "editor", Part::Main, now());
        assert_eq!(
            fields(&created, "editor")["f:spec"],
            json!({"f:ports": {".": {}, "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:value": {}}},
                "f:selector": {}})
        );
        let mut next = created.clone();
        next["spec"]["selector"] = json!({"x": "1", "y": "2"});
        managed::record_update(kind.shapes(), &mut next, Some(&created), "other", Part::Main, now());
        assert_eq!(fields(&next, "other")["f:spec"], json!({"f:selector": {}}), "an atomic map changes whole");
        let err = apply(&next, json!({"ports": [{"name": "a", "value": 2}]}), "alice").expect_err("conflict");
        assert_eq!(
            message(err),
            "Apply failed with 1 conflict: conflict with \"editor\" using example.com/v1: .spec.ports[name=\"a\"].value"
        );
    }
}
