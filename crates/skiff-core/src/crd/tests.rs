//! Tests of the CRD schema machinery against upstream's messages (docs/notes/crd.md §2–§4).

use super::*;
use crate::field::{ErrorType, Path};
use serde_json::{Value, json};

const P: &str = "spec.validation.openAPIV3Schema";

fn schema(v: Value) -> Schema {
    parse(&v).expect("schema parses")
}

fn check_opts(v: Value, opts: &CheckOptions) -> Vec<String> {
    check_schema(&schema(v), &Path::new(P), opts).iter().map(ToString::to_string).collect()
}

fn check(v: Value) -> Vec<String> {
    check_opts(v, &CheckOptions::default())
}

/// A root object schema with one property `a`.
fn with_a(a: Value) -> Value {
    json!({"type": "object", "properties": {"a": a}})
}

fn errors(s: Value, obj: Value) -> Vec<String> {
    validate(&schema(s), &obj, &Path::default()).iter().map(ToString::to_string).collect()
}

fn contains(errs: &[String], want: &str) {
    assert!(errs.iter().any(|e| e == want), "missing {want:?} in {errs:#?}");
}

// ---- §2 structural pass ----

#[test]
fn structural_types() {
    assert_eq!(
        check(json!({"properties": {"spec": {"type": "object"}}})),
        [format!("{P}.type: Required value: must not be empty at the root")]
    );
    assert_eq!(
        check(json!({"type": "object", "properties": {"spec": {}}})),
        [format!("{P}.properties[spec].type: Required value: must not be empty for specified object fields")]
    );
    assert_eq!(
        check(with_a(json!({"type": "array", "items": {}}))),
        [format!("{P}.properties[a].items.type: Required value: must not be empty for specified array items")]
    );
    assert_eq!(
        check(json!({"type": "array", "items": {"type": "string"}})),
        [format!("{P}.type: Invalid value: \"array\": must be object at the root")]
    );
    assert_eq!(
        check(with_a(json!({"type": "array"}))),
        [format!("{P}.properties[a].items: Required value: must be specified")]
    );
    assert_eq!(
        check(json!({"type": "object", "additionalProperties": {"type": "string"}})),
        [format!("{P}.additionalProperties: Forbidden: must not be used at the root")]
    );
}

#[test]
fn structural_embedded_and_int_or_string() {
    assert_eq!(
        check(with_a(json!({"x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}))),
        [format!("{P}.properties[a].type: Required value: must be object if x-kubernetes-embedded-resource is true")]
    );
    assert_eq!(
        check(with_a(
            json!({"type": "string", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true})
        )),
        [format!(
            "{P}.properties[a].type: Invalid value: \"string\": must be object if x-kubernetes-embedded-resource is true"
        )]
    );
    assert_eq!(
        check(with_a(
            json!({"type": "object", "x-kubernetes-embedded-resource": true, "additionalProperties": {"type": "string"}})
        )),
        [
            format!(
                "{P}.properties[a].additionalProperties: Forbidden: must not be used if x-kubernetes-embedded-resource is set"
            ),
            format!(
                "{P}.properties[a].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
            ),
        ]
    );
    assert_eq!(
        check(with_a(json!({"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true}))),
        [format!(
            "{P}.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true"
        )]
    );
    contains(
        &check(with_a(json!({"x-kubernetes-int-or-string": true, "x-kubernetes-embedded-resource": true}))),
        &format!(
            "{P}.properties[a].x-kubernetes-embedded-resource: Invalid value: true: must be false if x-kubernetes-int-or-string is true"
        ),
    );
    // The two int-or-string patterns may name types under anyOf.
    assert!(
        check(with_a(json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]})))
            .is_empty()
    );
    assert!(
        check(with_a(json!({
            "x-kubernetes-int-or-string": true,
            "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"maxLength": 3}]
        })))
        .is_empty()
    );
}

#[test]
fn structural_metadata() {
    assert_eq!(
        check(json!({"type": "object", "properties": {"kind": {"type": "integer"}}})),
        [format!("{P}.properties[kind].type: Invalid value: \"integer\": must be string")]
    );
    assert_eq!(
        check(json!({"type": "object", "properties": {"metadata": {"type": "string"}}})),
        [format!("{P}.properties[metadata].type: Invalid value: \"string\": must be object")]
    );
    assert_eq!(
        check(
            json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}})
        ),
        [format!(
            "{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        )]
    );
    let names = json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 10}, "generateName": {"type": "string"}}});
    assert!(check(json!({"type": "object", "properties": {"metadata": names}})).is_empty());
}

#[test]
fn structural_pattern() {
    assert_eq!(
        check(with_a(json!({"type": "string", "pattern": "("}))),
        [format!(
            "{P}.properties[a].pattern: Invalid value: \"(\": must be a valid regular expression, but isn't: error parsing regexp: missing closing ): `(`"
        )]
    );
}

#[test]
fn structural_value_validations() {
    let nested = json!({
        "type": "object", "description": "d", "title": "t", "nullable": true, "default": {},
        "additionalProperties": true,
        "x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-embedded-resource": true,
        "x-kubernetes-int-or-string": true, "x-kubernetes-list-map-keys": ["a"],
        "x-kubernetes-list-type": "map", "x-kubernetes-map-type": "atomic",
        "x-kubernetes-validations": [{"rule": "true"}],
        "properties": {"metadata": {}}
    });
    let errs = check(json!({"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [nested]}));
    let at = format!("{P}.anyOf[0]");
    for want in [
        format!("{at}.type: Forbidden: must be empty to be structural"),
        format!("{at}.additionalProperties: Forbidden: must be undefined to be structural"),
        format!("{at}.default: Forbidden: must be undefined to be structural"),
        format!("{at}.title: Forbidden: must be empty to be structural"),
        format!("{at}.description: Forbidden: must be empty to be structural"),
        format!("{at}.nullable: Forbidden: must be false to be structural"),
        format!("{at}.x-kubernetes-preserve-unknown-fields: Forbidden: must be false to be structural"),
        format!("{at}.x-kubernetes-embedded-resource: Forbidden: must be false to be structural"),
        format!("{at}.x-kubernetes-int-or-string: Forbidden: must be false to be structural"),
        format!("{at}.x-kubernetes-list-map-keys: Forbidden: must be empty to be structural"),
        format!("{at}.x-kubernetes-list-type: Forbidden: must be undefined to be structural"),
        format!("{at}.x-kubernetes-map-type: Forbidden: must be undefined to be structural"),
        format!("{at}.x-kubernetes-validations: Forbidden: must be empty to be structural"),
        format!("{at}.properties[metadata]: Forbidden: must not be specified in a nested context"),
        format!("{P}.properties[metadata]: Required value: because it is defined in {at}.properties[metadata]"),
    ] {
        contains(&errs, &want);
    }
    // Sorted by text, as upstream sorts the structural errors.
    let structural: Vec<&String> =
        errs.iter().take_while(|e| !e.contains("x-kubernetes-list-type is specified")).collect();
    let mut sorted = structural.clone();
    sorted.sort();
    assert_eq!(structural, sorted);
}

#[test]
fn structural_completeness() {
    assert_eq!(
        check(
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [{"properties": {"b": {"minLength": 1}}}]})
        ),
        [format!("{P}.properties[b]: Required value: because it is defined in {P}.anyOf[0].properties[b]")]
    );
}

// ---- §2 keyword pass ----

#[test]
fn keyword_types() {
    assert_eq!(
        check(with_a(json!({"type": "foo"}))),
        [format!(
            "{P}.properties[a].type: Unsupported value: \"foo\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
        )]
    );
    assert_eq!(
        check(with_a(json!({"type": "null"}))),
        [
            format!(
                "{P}.properties[a].type: Unsupported value: \"null\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
            ),
            format!("{P}.properties[a].type: Forbidden: type cannot be set to null, use nullable as an alternative"),
        ]
    );
}

#[test]
fn keyword_unsupported() {
    let cases = [
        (json!({"type": "string", "id": "x"}), "id: Forbidden: id is not supported"),
        (json!({"type": "string", "$ref": "#/x"}), "$ref: Forbidden: $ref is not supported"),
        (
            json!({"type": "array", "items": {"type": "string"}, "additionalItems": false}),
            "additionalItems: Forbidden: additionalItems is not supported",
        ),
        (
            json!({"type": "object", "patternProperties": {"x": {"type": "string"}}}),
            "patternProperties: Forbidden: patternProperties is not supported",
        ),
        (
            json!({"type": "object", "definitions": {"x": {"type": "string"}}}),
            "definitions: Forbidden: definitions is not supported",
        ),
        (
            json!({"type": "object", "dependencies": {"x": ["y"]}}),
            "dependencies: Forbidden: dependencies is not supported",
        ),
        (
            json!({"type": "array", "items": [{"type": "string"}]}),
            "items: Forbidden: items must be a schema object and not an array",
        ),
        (
            json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true}),
            "uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ),
        (
            json!({"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": false}),
            "additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
        ),
        (
            json!({"type": "string", "x-kubernetes-preserve-unknown-fields": false}),
            "x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
        ),
    ];
    for (a, want) in cases {
        assert_eq!(check(with_a(a)), [format!("{P}.properties[a].{want}")]);
    }
    // `$schema` only breaks the conversion to a structural schema, reported last and alone.
    assert_eq!(
        check(json!({"type": "object", "$schema": "x"})),
        [format!("{P}: Invalid value: \"\": OpenAPIV3Schema 'schema' is not supported")]
    );
}

#[test]
fn keyword_defaults_in_metadata() {
    assert_eq!(
        check(json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}})),
        [format!("{P}.properties[metadata].default: Forbidden: must not be set in top-level metadata")]
    );
    assert_eq!(
        check(json!({"type": "object", "properties": {"kind": {"type": "string", "default": "W"}}})),
        [format!("{P}.properties[kind].default: Forbidden: must not be set in top-level kind")]
    );
    assert_eq!(
        check(json!({"type": "object", "properties": {"apiVersion": {"type": "string", "default": "v"}}})),
        [format!("{P}.properties[apiVersion].default: Forbidden: must not be set in top-level apiVersion")]
    );
    assert_eq!(
        check(with_a(json!({"type": "object", "x-kubernetes-embedded-resource": true, "properties": {
            "metadata": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}}}}))),
        [format!(
            "{P}.properties[a].properties[metadata].additionalProperties.default: Forbidden: must not be set inside additionalProperties applying to object metadata"
        )]
    );
    let opts = CheckOptions { allow_defaults: false, ..CheckOptions::default() };
    assert_eq!(
        check_opts(with_a(json!({"type": "string", "default": "x"})), &opts),
        [format!("{P}.properties[a].default: Forbidden: must not be set")]
    );
    contains(
        &check(with_a(
            json!({"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"kind": {"type": "string", "x-kubernetes-embedded-resource": true}}}),
        )),
        &format!(
            "{P}.properties[a].properties[kind].x-kubernetes-embedded-resource: Forbidden: must not be used inside of resource meta"
        ),
    );
}

#[test]
fn keyword_map_and_list_types() {
    let a = |s: Value| check(with_a(s));
    assert_eq!(
        a(json!({"x-kubernetes-map-type": "atomic", "x-kubernetes-preserve-unknown-fields": true})),
        [format!("{P}.properties[a].type: Required value: must be object if x-kubernetes-map-type is specified")]
    );
    assert_eq!(
        a(json!({"type": "string", "x-kubernetes-map-type": "atomic"})),
        [format!(
            "{P}.properties[a].type: Invalid value: \"string\": must be object if x-kubernetes-map-type is specified"
        )]
    );
    assert_eq!(
        a(json!({"type": "object", "x-kubernetes-map-type": "x"})),
        [format!(
            "{P}.properties[a].x-kubernetes-map-type: Unsupported value: \"x\": supported values: \"atomic\", \"granular\""
        )]
    );
    assert_eq!(
        a(json!({"x-kubernetes-list-type": "atomic", "x-kubernetes-preserve-unknown-fields": true})),
        [format!("{P}.properties[a].type: Required value: must be array if x-kubernetes-list-type is specified")]
    );
    assert_eq!(
        a(json!({"type": "string", "x-kubernetes-list-type": "atomic"})),
        [format!(
            "{P}.properties[a].type: Invalid value: \"string\": must be array if x-kubernetes-list-type is specified"
        )]
    );
    assert_eq!(
        a(json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "x"})),
        [format!(
            "{P}.properties[a].x-kubernetes-list-type: Unsupported value: \"x\": supported values: \"atomic\", \"set\", \"map\""
        )]
    );
    let item = json!({"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}});
    assert_eq!(
        a(json!({"type": "array", "items": item, "x-kubernetes-list-map-keys": ["k"]})),
        [format!(
            "{P}.properties[a].x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"
        )]
    );
    assert_eq!(
        a(
            json!({"type": "array", "items": item, "x-kubernetes-list-type": "set", "x-kubernetes-list-map-keys": ["k"]})
        ),
        [
            format!(
                "{P}.properties[a].items.x-kubernetes-map-type: Invalid value: \"null\": must be atomic as item of a list with x-kubernetes-list-type=set"
            ),
            format!(
                "{P}.properties[a].x-kubernetes-list-type: Invalid value: \"set\": must be map if x-kubernetes-list-map-keys is non-empty"
            ),
        ]
    );
    assert_eq!(
        a(json!({"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map"})),
        [format!(
            "{P}.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
        )]
    );
    contains(
        &a(json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]})),
        &format!("{P}.properties[a].items: Required value: must have a schema if x-kubernetes-list-type is map"),
    );
    assert_eq!(
        a(
            json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]})
        ),
        [format!(
            "{P}.properties[a].items.type: Invalid value: \"string\": must be object if parent array's x-kubernetes-list-type is map"
        )]
    );
    let obj_key = json!({"type": "object", "required": ["k"], "properties": {"k": {"type": "object"}}});
    assert_eq!(
        a(
            json!({"type": "array", "items": obj_key, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]})
        ),
        [format!(
            "{P}.properties[a].items.properties[k].type: Invalid value: \"object\": must be a scalar type if parent array's x-kubernetes-list-type is map"
        )]
    );
    assert_eq!(
        a(
            json!({"type": "array", "items": item, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["x"]})
        ),
        [format!(
            "{P}.properties[a].x-kubernetes-list-map-keys: Invalid value: []string{{\"x\"}}: entries must all be names of item properties"
        )]
    );
    assert_eq!(
        a(
            json!({"type": "array", "items": item, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k", "k"]})
        ),
        [format!(
            "{P}.properties[a].x-kubernetes-list-map-keys: Invalid value: []string{{\"k\", \"k\"}}: must not contain duplicate entries"
        )]
    );
}

#[test]
fn keyword_map_and_set_items() {
    let a = |s: Value| check(with_a(s));
    let optional = json!({"type": "object", "properties": {"k": {"type": "string"}}});
    assert_eq!(
        a(
            json!({"type": "array", "items": optional, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]})
        ),
        [format!(
            "{P}.properties[a].items.properties[k].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
        )]
    );
    let nullable =
        json!({"type": "object", "required": ["k"], "properties": {"k": {"type": "string", "nullable": true}}});
    assert_eq!(
        a(
            json!({"type": "array", "items": nullable, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]})
        ),
        [format!(
            "{P}.properties[a].items.properties[k].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable"
        )]
    );
    assert_eq!(
        a(json!({"type": "array", "items": {"type": "string", "nullable": true}, "x-kubernetes-list-type": "set"})),
        [format!("{P}.properties[a].items.nullable: Forbidden: cannot be nullable when x-kubernetes-list-type is set")]
    );
    assert_eq!(
        a(json!({"type": "array", "x-kubernetes-list-type": "set",
            "items": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}})),
        [format!(
            "{P}.properties[a].items.x-kubernetes-list-type: Invalid value: \"set\": must be atomic as item of a list with x-kubernetes-list-type=set"
        )]
    );
    assert!(a(json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "object", "x-kubernetes-map-type": "atomic"}})).is_empty());
}

#[test]
fn root_nullable_and_status_subresource() {
    assert_eq!(
        check(json!({"type": "object", "nullable": true})),
        [format!("{P}.nullable: Forbidden: nullable cannot be true at the root")]
    );
    let status = CheckOptions { status_subresource: true, ..CheckOptions::default() };
    let errs = check_opts(json!({"type": "array", "items": {"type": "string"}}), &status);
    assert_eq!(
        errs[0],
        format!(
            "{P}.type: Invalid value: \"array\": only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled"
        )
    );
    let errs = check_opts(json!({"type": "object", "nullable": true}), &status);
    assert_eq!(errs.len(), 2);
    assert!(errs[0].starts_with(&format!("{P}: Invalid value: ")), "{errs:?}");
    assert!(errs[0].ends_with(
        "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status subresource is enabled"
    ));
    assert_eq!(errs[1], format!("{P}.nullable: Forbidden: nullable cannot be true at the root"));
    assert!(
        check_opts(
            json!({"type": "object", "description": "d", "properties": {"status": {"type": "object"}}}),
            &status
        )
        .is_empty()
    );
}

#[test]
fn defaults_must_validate_and_be_pruned() {
    assert_eq!(
        check(with_a(json!({"type": "integer", "default": "string"}))),
        [format!("{P}.properties[a].default: Invalid value: \"string\":  in body must be of type integer: \"string\"")]
    );
    assert_eq!(
        check(with_a(
            json!({"type": "object", "properties": {"b": {"type": "string"}}, "default": {"b": "x", "c": 1}})
        )),
        [format!(
            "{P}.properties[a].default: Invalid value: map[string]interface {{}}{{\"b\":\"x\", \"c\":1}}: must not have unknown fields"
        )]
    );
    assert_eq!(
        check(with_a(
            json!({"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}, "default": {"n": 5}})
        )),
        [format!("{P}.properties[a].default.n: Invalid value: 5: n in body should be less than or equal to 3")]
    );
    // Not structural: defaults are not looked at.
    assert_eq!(
        check(json!({"type": "object", "properties": {"a": {"default": "x"}}})),
        [format!("{P}.properties[a].type: Required value: must not be empty for specified object fields")]
    );
    assert!(check(with_a(json!({"type": "integer", "default": 3}))).is_empty());
}

// ---- §3 custom resources ----

fn spec(props: Value) -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})
}

#[test]
fn cr_types_and_required() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["foo"],
        "properties": {"replicas": {"type": "integer"}, "foo": {"type": "string"}}}}});
    assert_eq!(
        errors(s, json!({"spec": {"replicas": "x"}})),
        [
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
            "spec.foo: Required value",
        ]
    );
    let root_required = json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}});
    assert_eq!(errors(root_required, json!({})), ["spec: Required value"]);
    // A float with an integral value is an integer; an integer is a number.
    assert!(
        errors(spec(json!({"i": {"type": "integer"}, "n": {"type": "number"}})), json!({"spec": {"i": 2.0, "n": 3}}))
            .is_empty()
    );
}

#[test]
fn cr_type_invalid_cause() {
    let errs =
        validate(&schema(spec(json!({"r": {"type": "integer"}}))), &json!({"spec": {"r": true}}), &Path::default());
    assert_eq!(errs[0].kind, ErrorType::TypeInvalid);
    assert_eq!(errs[0].kind.cause_reason(), "FieldValueTypeInvalid");
    assert_eq!(
        errs[0].to_string(),
        "spec.r: Invalid value: \"boolean\": spec.r in body must be of type integer: \"boolean\""
    );
}

#[test]
fn cr_enum() {
    assert_eq!(
        errors(
            spec(json!({"color": {"type": "string", "enum": ["red", "green"]}})),
            json!({"spec": {"color": "purple"}})
        ),
        ["spec.color: Unsupported value: \"purple\": supported values: \"red\", \"green\""]
    );
    let s = json!({"type": "object", "properties": {"field": {"type": "object", "properties": {
        "nestedint": {"type": "integer", "enum": [1, 2]}}}}});
    assert_eq!(
        errors(s.clone(), json!({"field": {"nestedint": "x"}})),
        [
            "field.nestedint: Invalid value: \"string\": field.nestedint in body must be of type integer: \"string\"",
            "field.nestedint: Unsupported value: \"x\": supported values: \"1\", \"2\"",
        ]
    );
    assert!(errors(s, json!({"field": {"nestedint": 2}})).is_empty());
}

#[test]
fn cr_strings() {
    let name = |s: Value, v: &str| errors(spec(json!({"name": s})), json!({"spec": {"name": v}}));
    assert_eq!(
        name(json!({"type": "string", "pattern": "^[a-z]+$"}), "ABC"),
        ["spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"]
    );
    assert_eq!(
        name(json!({"type": "string", "minLength": 3}), "ab"),
        ["spec.name: Invalid value: \"ab\": spec.name in body should be at least 3 chars long"]
    );
    assert_eq!(name(json!({"type": "string", "maxLength": 5}), "ééééé"), Vec::<String>::new());
    assert_eq!(
        name(json!({"type": "string", "maxLength": 5}), "éééééé"),
        ["spec.name: Too long: may not be more than 5 bytes"]
    );
    // First failure only.
    assert_eq!(
        name(json!({"type": "string", "maxLength": 2, "pattern": "^x$"}), "abc"),
        ["spec.name: Too long: may not be more than 2 bytes"]
    );
}

#[test]
fn cr_numbers() {
    let n = |s: Value, v: Value| errors(spec(json!({"replicas": s})), json!({"spec": {"replicas": v}}));
    assert_eq!(
        n(json!({"type": "integer", "maximum": 10}), json!(11)),
        ["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"]
    );
    assert_eq!(
        n(json!({"type": "integer", "maximum": 10, "exclusiveMaximum": true}), json!(10)),
        ["spec.replicas: Invalid value: 10: spec.replicas in body should be less than 10"]
    );
    assert_eq!(
        n(json!({"type": "integer", "minimum": 1}), json!(0)),
        ["spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"]
    );
    assert_eq!(
        n(json!({"type": "integer", "minimum": 1, "exclusiveMinimum": true}), json!(1)),
        ["spec.replicas: Invalid value: 1: spec.replicas in body should be greater than 1"]
    );
    assert_eq!(
        n(json!({"type": "integer", "multipleOf": 5}), json!(7)),
        ["spec.replicas: Invalid value: 7: spec.replicas in body should be a multiple of 5"]
    );
    // multipleOf, minimum, maximum: in that order.
    assert_eq!(
        n(json!({"type": "integer", "multipleOf": 5, "minimum": 10, "maximum": 2}), json!(7)),
        [
            "spec.replicas: Invalid value: 7: spec.replicas in body should be a multiple of 5",
            "spec.replicas: Invalid value: 7: spec.replicas in body should be greater than or equal to 10",
            "spec.replicas: Invalid value: 7: spec.replicas in body should be less than or equal to 2",
        ]
    );
    assert_eq!(
        n(json!({"type": "number", "maximum": 1e6}), json!(2e6)),
        ["spec.replicas: Invalid value: 2e+06: spec.replicas in body should be less than or equal to 1e+06"]
    );
    assert!(n(json!({"type": "number", "multipleOf": 0.1}), json!(0.3)).is_empty());
}

#[test]
fn cr_arrays_and_objects() {
    let list = |s: Value, v: Value| errors(spec(json!({"items": s})), json!({"spec": {"items": v}}));
    let strings = json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3});
    assert_eq!(
        list(strings.clone(), json!([])),
        ["spec.items: Invalid value: 0: spec.items in body should have at least 1 items"]
    );
    assert_eq!(list(strings, json!(["a", "b", "c", "d"])), ["spec.items: Too many: 4: must have at most 3 items"]);
    let map = |v: Value| {
        errors(
            spec(
                json!({"labels": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1, "maxProperties": 3}}),
            ),
            json!({"spec": {"labels": v}}),
        )
    };
    assert_eq!(
        map(json!({})),
        ["spec.labels: Invalid value: 0: spec.labels in body should have at least 1 properties"]
    );
    assert_eq!(
        map(json!({"a": "1", "b": "2", "c": "3", "d": "4"})),
        ["spec.labels: Too many: 4: must have at most 3 items"]
    );
    assert_eq!(
        map(json!({"a": 1})),
        ["spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""]
    );
    let closed = spec(json!({"o": {"type": "object", "additionalProperties": false}}));
    assert_eq!(
        errors(closed, json!({"spec": {"o": {"x": 1}}})),
        ["spec.o: Invalid value: \"x\": spec.o.x in body is a forbidden property"]
    );
}

#[test]
fn cr_formats_and_nulls() {
    assert_eq!(
        errors(spec(json!({"email": {"type": "string", "format": "email"}})), json!({"spec": {"email": "nope"}})),
        ["spec.email: Invalid value: \"nope\": spec.email in body must be of type email: \"nope\""]
    );
    // int32 and friends are not checked.
    assert!(
        errors(spec(json!({"n": {"type": "integer", "format": "int32"}})), json!({"spec": {"n": 1_i64 << 40}}))
            .is_empty()
    );
    assert_eq!(
        errors(
            spec(json!({"list": {"type": "array", "items": {"type": "string"}}})),
            json!({"spec": {"list": [null]}})
        ),
        ["spec.list[0]: Invalid value: \"null\": spec.list[0] in body must be of type string: \"null\""]
    );
    assert!(errors(spec(json!({"n": {"type": "string", "nullable": true}})), json!({"spec": {"n": null}})).is_empty());
    let ios = json!({"type": "object", "properties": {"field": {"x-kubernetes-int-or-string": true}}});
    assert_eq!(
        errors(ios.clone(), json!({"field": 1.5})),
        ["field: Invalid value: \"number\": field in body must be of type integer,string: \"number\""]
    );
    assert!(errors(ios.clone(), json!({"field": 3})).is_empty());
    assert!(errors(ios, json!({"field": "50%"})).is_empty());
}

#[test]
fn cr_junctors() {
    let x = |s: Value, v: Value| errors(spec(json!({"x": s})), json!({"spec": {"x": v}}));
    assert_eq!(
        x(json!({"type": "integer", "anyOf": [{"minimum": 5}, {"maximum": 1}]}), json!(3)),
        [
            "<nil>: Invalid value: \"\": \"spec.x\" must validate at least one schema (anyOf)",
            "spec.x: Invalid value: 3: spec.x in body should be greater than or equal to 5",
        ]
    );
    assert_eq!(
        x(json!({"type": "integer", "oneOf": [{"minimum": 5}, {"maximum": 1}]}), json!(3)),
        [
            "<nil>: Invalid value: \"\": \"spec.x\" must validate one and only one schema (oneOf). Found none valid",
            "spec.x: Invalid value: 3: spec.x in body should be greater than or equal to 5",
        ]
    );
    assert_eq!(
        x(json!({"type": "integer", "oneOf": [{"minimum": 1}, {"maximum": 5}]}), json!(3)),
        [
            "<nil>: Invalid value: \"\": \"spec.x\" must validate one and only one schema (oneOf). Found 2 valid alternatives"
        ]
    );
    assert_eq!(
        x(json!({"type": "integer", "allOf": [{"minimum": 5}, {"maximum": 1}]}), json!(3)),
        [
            "spec.x: Invalid value: 3: spec.x in body should be greater than or equal to 5",
            "spec.x: Invalid value: 3: spec.x in body should be less than or equal to 1",
            "<nil>: Invalid value: \"\": \"spec.x\" must validate all the schemas (allOf). None validated",
        ]
    );
    assert_eq!(
        x(json!({"type": "integer", "allOf": [{"minimum": 5}, {"maximum": 10}]}), json!(3)),
        [
            "spec.x: Invalid value: 3: spec.x in body should be greater than or equal to 5",
            "<nil>: Invalid value: \"\": \"spec.x\" must validate all the schemas (allOf)",
        ]
    );
    assert_eq!(
        x(json!({"type": "integer", "not": {"minimum": 1}}), json!(3)),
        ["<nil>: Invalid value: \"\": \"spec.x\" must not validate the schema (not)"]
    );
}

#[test]
fn cr_status_prefix() {
    let status = schema(json!({"type": "object", "properties": {"num": {"type": "integer", "maximum": 10}}}));
    let errs = validate(&status, &json!({"num": 15}), &Path::new("status"));
    assert_eq!(errs[0].to_string(), "status.num: Invalid value: 15: num in body should be less than or equal to 10");
}

#[test]
fn cr_list_sets_and_maps() {
    let s = schema(spec(json!({
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "pairs": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["a", "b"],
            "items": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}}
    })));
    let errs = |v: Value| -> Vec<String> {
        validate_list_sets_and_maps(&s, &v, &Path::default()).iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        errs(json!({"spec": {"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}})),
        ["spec.ports[1]: Duplicate value: map[string]interface {}{\"name\":\"a\"}"]
    );
    assert_eq!(errs(json!({"spec": {"tags": ["a", "b", "a", "a"]}})), ["spec.tags[2]: Duplicate value: \"a\""]);
    assert_eq!(errs(json!({"spec": {"tags": [1, 1.0, 1]}})), ["spec.tags[2]: Duplicate value: 1"]);
    assert_eq!(
        errs(json!({"spec": {"ports": ["x"]}})),
        ["spec.ports[0]: Invalid value: \"x\": must be an object for an array of list-type map"]
    );
    assert_eq!(
        errs(json!({"spec": {"pairs": [{"a": "x", "b": 1}, {"a": "x", "b": 1, "c": 2}]}})),
        ["spec.pairs[1]: Duplicate value: map[string]interface {}{\"a\":\"x\", \"b\":1}"]
    );
    assert_eq!(
        errs(json!({"spec": {"ports": [{}, {"port": 1}]}})),
        ["spec.ports[1]: Duplicate value: map[string]interface {}{}"]
    );
}

#[test]
fn cr_embedded_resources() {
    let s = schema(spec(json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true,
        "x-kubernetes-preserve-unknown-fields": true}})));
    let errs = |v: Value| -> Vec<String> { validate_object(&s, &v).iter().map(ToString::to_string).collect() };
    assert_eq!(
        errs(json!({"spec": {"template": {}}})),
        [
            "spec.template.apiVersion: Required value: must not be empty",
            "spec.template.kind: Required value: must not be empty"
        ]
    );
    assert_eq!(
        errs(json!({"spec": {"template": {"apiVersion": "a/b/c", "kind": "Bad_Kind", "metadata": {"name": "x/y"}}}})),
        [
            "spec.template.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c",
            "spec.template.kind: Invalid value: \"Bad_Kind\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
            "spec.template.metadata.name: Invalid value: \"x/y\": may not contain '/'",
        ]
    );
    assert_eq!(
        errs(json!({"spec": {"template": {"apiVersion": 1, "kind": "Pod"}}})),
        ["spec.template.apiVersion: Invalid value: 1: must be a string"]
    );
    assert!(
        errs(json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}}})).is_empty()
    );
}

// ---- §4 pruning and defaulting ----

#[test]
fn pruning_unknown_fields() {
    let s = schema(spec(json!({
        "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
        "replicas": {"type": "integer"}
    })));
    let mut obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "odd": 1},
        "extra": true, "spec": {"replicas": 1, "unknown1": 2, "ports": [{"port": 80, "unknownNested": 1}]}});
    let pruned = prune(&mut obj, &s, true);
    assert_eq!(pruned, ["extra", "spec.ports[0].unknownNested", "spec.unknown1"]);
    assert_eq!(
        obj,
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "odd": 1},
            "spec": {"replicas": 1, "ports": [{"port": 80}]}})
    );
}

#[test]
fn pruning_preserve_unknown_and_additional_properties() {
    let s = schema(spec(json!({
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
        "anything": {"type": "object", "additionalProperties": true}
    })));
    let mut obj = json!({"spec": {
        "free": {"x": {"deep": 1}, "known": {"a": "1", "b": 2}},
        "labels": {"k": {"v": "1", "w": 2}},
        "anything": {"k": {"nested": 1}, "s": "kept"}
    }});
    let pruned = prune(&mut obj, &s, true);
    assert_eq!(pruned, ["spec.anything.k.nested", "spec.free.known.b", "spec.labels.k.w"]);
    assert_eq!(
        obj,
        json!({"spec": {
            "free": {"x": {"deep": 1}, "known": {"a": "1"}},
            "labels": {"k": {"v": "1"}},
            "anything": {"k": {}, "s": "kept"}
        }})
    );
}

#[test]
fn pruning_embedded_resources_keep_meta() {
    let s = schema(spec(json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true,
        "properties": {"spec": {"type": "object"}}}})));
    let mut obj = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "junk": 1}}});
    assert_eq!(prune(&mut obj, &s, true), ["spec.template.junk"]);
    assert_eq!(
        obj,
        json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}}})
    );
    // Not a resource root: the meta fields at the top go too, unreported.
    let mut top = json!({"apiVersion": "v1", "spec": {}});
    assert!(prune(&mut top, &s, false).is_empty());
    assert_eq!(top, json!({"spec": {}}));
}

#[test]
fn pruning_nulls() {
    let s = schema(spec(json!({
        "plain": {"type": "string"},
        "nullable": {"type": "string", "nullable": true},
        "defaulted": {"type": "string", "default": "d"},
        "list": {"type": "array", "items": {"type": "string"}}
    })));
    let mut obj = json!({"spec": {"plain": null, "nullable": null, "defaulted": null, "list": [null]}});
    prune_nulls(&mut obj, &s);
    assert_eq!(obj, json!({"spec": {"nullable": null, "defaulted": null, "list": [null]}}));
    apply_defaults(&mut obj, &s);
    assert_eq!(obj, json!({"spec": {"nullable": null, "defaulted": "d", "list": [null]}}));
}

#[test]
fn defaulting() {
    let s = schema(json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": {
        "replicas": {"type": "integer", "default": 1},
        "port": {"x-kubernetes-int-or-string": true, "default": "http"},
        "opt": {"type": "string", "nullable": true, "default": "x"},
        "items": {"type": "array", "items": {"type": "object", "default": {"on": true},
            "properties": {"on": {"type": "boolean", "default": false}, "n": {"type": "integer"}}}},
        "byName": {"type": "object", "additionalProperties": {"type": "object",
            "properties": {"w": {"type": "integer", "default": 7}}}}
    }}}}));
    let mut empty = json!({});
    apply_defaults(&mut empty, &s);
    assert_eq!(empty, json!({"spec": {"replicas": 1, "port": "http", "opt": "x"}}));
    let mut obj = json!({"spec": {"replicas": 3, "opt": null, "items": [{"n": 1}, null], "byName": {"a": {}}}});
    apply_defaults(&mut obj, &s);
    assert_eq!(
        obj,
        json!({"spec": {"replicas": 3, "port": "http", "opt": null,
            "items": [{"n": 1, "on": false}, {"on": true}], "byName": {"a": {"w": 7}}}})
    );
}

#[test]
fn prune_defaults_at_load() {
    let mut s = schema(with_a(
        json!({"type": "object", "properties": {"b": {"type": "string"}}, "default": {"b": "x", "c": 1}}),
    ));
    s.prune_defaults();
    assert_eq!(s.property("a").and_then(|a| a.default.clone()), Some(json!({"b": "x"})));
}

// ---- robustness ----

#[test]
fn parse_errors_name_the_keyword() {
    let err = parse(&json!({"type": "object", "properties": {"a": {"type": 5}}})).expect_err("wrong type");
    assert_eq!(
        err.to_string(),
        "json: cannot unmarshal number into Go struct field JSONSchemaProps.properties.type of type string"
    );
    assert!(parse(&json!([])).is_err());
}

#[test]
fn odd_values_never_panic() {
    let keywords = [
        "id",
        "$schema",
        "$ref",
        "description",
        "type",
        "nullable",
        "format",
        "title",
        "default",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "enum",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "properties",
        "additionalProperties",
        "patternProperties",
        "dependencies",
        "additionalItems",
        "definitions",
        "externalDocs",
        "example",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
    ];
    let odd = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(-0.5),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("("),
        json!("\\"),
        json!("x"),
        json!([]),
        json!([null]),
        json!([1, "a", {}]),
        json!({}),
        json!({"a": null}),
        json!({"type": 3}),
        json!({"a": {"type": "string"}}),
    ];
    let data = [
        json!(null),
        json!(0),
        json!(-7),
        json!(2.5),
        json!(1e300),
        json!(""),
        json!("x"),
        json!([]),
        json!([null, 1]),
        json!({}),
        json!({"a": null, "b": [1, {}]}),
    ];
    for k in keywords {
        for v in &odd {
            for shape in [
                json!({k: v}),
                json!({"type": "object", "properties": {"a": {k: v}}}),
                json!({"type": "array", "items": {k: v}}),
            ] {
                let Ok(mut s) = parse(&shape) else { continue };
                let _ = check_schema(
                    &s,
                    &Path::new(P),
                    &CheckOptions { status_subresource: true, ..CheckOptions::default() },
                );
                s.prune_defaults();
                for d in &data {
                    for obj in [d.clone(), json!({"a": d}), json!([d])] {
                        let _ = validate_object(&s, &obj);
                        let mut m = obj.clone();
                        let _ = prune(&mut m, &s, true);
                        prune_nulls(&mut m, &s);
                        apply_defaults(&mut m, &s);
                        let _ = validate_embedded_resources(&s, &obj, &Path::new("x"), true);
                    }
                }
            }
        }
    }
    // Numeric edge cases in the bounds themselves.
    let s = schema(
        json!({"type": "object", "properties": {"n": {"multipleOf": 0.5, "maximum": 1e300, "minimum": -1e300}}}),
    );
    assert_eq!(
        validate(&s, &json!({"n": 3}), &Path::default()).iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["n: Invalid value: 0: factor MultipleOf declared for n must be positive: 0"]
    );
    let _ = validate(&s, &json!({"n": i64::MIN}), &Path::default());
}
