use super::*;
use crate::kinds::custom::kinds_of;

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "minimum": 1, "default": 1},
                        "color": {"type": "string", "enum": ["red", "blue"]},
                        "replicas": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas"}},
                 "selectableFields": [{"jsonPath": ".spec.color"}],
                 "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}},
                {"name": "v1alpha1", "served": false, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object"}}}
            ]
        },
        "status": {"acceptedNames": {"plural": "widgets", "singular": "widget", "kind": "Widget",
            "listKind": "WidgetList", "shortNames": ["wd"], "categories": ["all"]}}
    })
}

fn v1() -> &'static dyn Kind {
    kinds_of(&crd())[0]
}

#[test]
fn one_kind_per_served_version_made_once() {
    let kinds = kinds_of(&crd());
    let served: Vec<&str> = kinds.iter().map(|k| k.info().version).collect();
    assert_eq!(served, ["v1", "v1beta1"]);
    let again = kinds_of(&crd());
    assert!(std::ptr::addr_eq(kinds[0], again[0]), "the same definition gives the same kind");
    let i = kinds[0].info();
    assert_eq!(
        (i.group, i.plural, i.singular, i.kind, i.namespaced),
        ("example.com", "widgets", "widget", "Widget", true)
    );
    assert_eq!((i.short_names, i.categories), (&["wd"][..], &["all"][..]));
    let subs: Vec<(&str, &str)> = i.subresources.iter().map(|(n, k, _)| (*n, *k)).collect();
    assert_eq!(subs, [("status", "Widget"), ("scale", "autoscaling/v1/Scale")]);
    assert!(kinds[1].info().subresources.is_empty());
    assert!(CustomKind::is_custom(kinds[0]));
    assert!(!CustomKind::is_custom(crate::kinds::PODS));
}

#[test]
fn bodies_are_pruned_defaulted_and_validated_by_the_schema() {
    let k = v1();
    let raw = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "bogus": 1},
        "spec": {"color": "green", "extra": true}, "status": {"replicas": 2}});
    let mut obj = k.normalize(&raw).expect("decodes");
    assert_eq!(crate::meta::unknown_fields(&raw, &obj), ["metadata.bogus", "spec.extra"]);
    k.default(&mut obj);
    assert_eq!(obj["spec"]["size"], 1);
    k.prepare_create(&mut obj);
    assert!(obj.get("status").is_none(), "status is the status subresource's");
    let errs: Vec<String> = k.validate(&obj).iter().map(ToString::to_string).collect();
    assert_eq!(errs, ["spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\""]);
    let bad_meta = json!({"metadata": {"name": "w", "labels": "x"}});
    let e = k.normalize(&bad_meta).expect_err("labels must be a map");
    assert!(e.to_string().starts_with("Widget in version \"v1\" cannot be handled as a Widget: json: "), "{e}");
}

#[test]
fn objects_are_stored_in_the_storage_version_and_read_through_any() {
    let kinds = kinds_of(&crd());
    let (v1, beta) = (kinds[0], kinds[1]);
    let mut obj = json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 2, "color": "red"}});
    beta.to_stored(&mut obj);
    assert_eq!(obj["apiVersion"], "example.com/v1");
    let mut read = obj.clone();
    beta.to_served(&mut read);
    assert_eq!(
        read,
        json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 2}}),
        "what v1beta1 does not know is pruned"
    );
    // Written through v1beta1 with a field only it knows: the storage version prunes it.
    let mut extra = json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "x"},
        "spec": {"size": 2}, "status": {"replicas": 1}});
    beta.to_stored(&mut extra);
    assert_eq!(extra["status"]["replicas"], 1, "v1 knows status");
    let mut defaulted =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "y"}, "spec": {}});
    v1.to_served(&mut defaulted);
    assert_eq!(defaulted["spec"]["size"], 1, "reads are defaulted by the stored version's schema");
    let mut same = obj.clone();
    v1.to_served(&mut same);
    assert_eq!(same, obj);
}

#[test]
fn status_scale_fields_and_table() {
    let k = v1();
    let old = json!({"metadata": {"name": "w", "namespace": "d"}, "spec": {"size": 1, "replicas": 2, "color": "red"},
        "status": {"replicas": 1}});
    let mut new = json!({"metadata": {"name": "w", "namespace": "d"}, "spec": {"size": 3, "replicas": 2}, "status": {"replicas": 9}});
    k.prepare_update(&old, &mut new);
    assert_eq!(new["status"]["replicas"], 1, "the main resource does not write status");
    let scale = k.scale(&old).expect("scale");
    assert_eq!((scale["spec"]["replicas"].clone(), scale["status"]["replicas"].clone()), (json!(2), json!(1)));
    assert_eq!(k.field_value(&old, "spec.color").as_deref(), Some("red"));
    assert_eq!(k.field_value(&old, "spec.size"), None);
    let names: Vec<&str> = k.columns().iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "Size"]);
    assert_eq!(k.cells(&old, Timestamp::now()), [json!("w"), json!(1)]);
    let beta = kinds_of(&crd())[1];
    assert!(beta.scale(&old).is_err());
    let mut plain = json!({"metadata": {"name": "w"}, "status": {"x": 1}});
    beta.prepare_update(&old, &mut plain);
    assert_eq!(plain["status"]["x"], 1, "without the subresource status is an ordinary field");
}

#[test]
fn a_terminating_definition_refuses_creates() {
    let mut c = crd();
    c["metadata"]["deletionTimestamp"] = json!("2026-12-07T00:00:00Z");
    let k = kinds_of(&c)[0];
    assert!(!k.info().verbs.contains(&"create"));
    // Discovery lists fewer verbs, but finalizers stay removable: only creates are refused.
    assert!(!k.serves_verb("create") && k.serves_verb("patch") && k.serves_verb("update"));
    assert_eq!(
        k.verb_refused("create").to_string(),
        "create not allowed while custom resource definition is terminating"
    );
    assert_eq!(v1().verb_refused("create").to_string(), "create is not supported on resources of kind \"widgets\"");
}
