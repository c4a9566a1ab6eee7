//! Tests for CEL validation rules, with upstream's exact messages.

use super::*;
use crate::crd::parse;
use crate::field::Path;
use serde_json::{Value, json};

fn schema(v: Value) -> Schema {
    parse(&v).expect("schema parses")
}

fn errors(s: &Schema, obj: Value, old: Option<Value>) -> Vec<String> {
    compile(s).validate(s, &obj, old.as_ref()).iter().map(ToString::to_string).collect()
}

#[test]
fn the_environment_builds() {
    env::build().expect("every library registers");
}

fn replicas_schema() -> Schema {
    schema(json!({
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas", "message": "replicas must be at most maxReplicas"}],
            "properties": {"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}}
        }}
    }))
}

#[test]
fn failed_rule_with_message() {
    let s = replicas_schema();
    assert_eq!(
        errors(&s, json!({"spec": {"replicas": 5, "maxReplicas": 3}}), None),
        ["spec: Invalid value: \"object\": replicas must be at most maxReplicas"]
    );
    assert!(errors(&s, json!({"spec": {"replicas": 2, "maxReplicas": 3}}), None).is_empty());
}

fn check_errors(s: &Schema) -> Vec<String> {
    check(s, &Path::new("spec.validation.openAPIV3Schema")).iter().map(ToString::to_string).collect()
}

/// A schema whose `spec` holds `rules` and the given properties.
fn spec_with(rules: Value, props: Value) -> Schema {
    schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-validations": rules, "properties": props}}
    }))
}

fn one_rule(rule: &str) -> Schema {
    spec_with(
        json!([{"rule": rule}]),
        json!({
            "replicas": {"type": "integer"},
            "name": {"type": "string"},
            "ratio": {"type": "number"},
            "items": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "port": {"x-kubernetes-int-or-string": true},
            "timeout": {"type": "string", "format": "duration"},
            "at": {"type": "string", "format": "date-time"}
        }),
    )
}

fn eval(rule: &str, spec: Value) -> Vec<String> {
    let s = one_rule(rule);
    assert!(check_errors(&s).is_empty(), "{rule}: {:?}", check_errors(&s));
    errors(&s, json!({"spec": spec}), None)
}

#[test]
fn default_message_and_root_path() {
    let s = schema(json!({
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('a')"}],
        "properties": {"spec": {"type": "object"}}
    }));
    assert_eq!(
        errors(&s, json!({"apiVersion": "v1", "kind": "W", "metadata": {"name": "bob"}}), None),
        ["<nil>: Invalid value: \"object\": failed rule: self.metadata.name.startsWith('a')"]
    );
    assert!(errors(&s, json!({"metadata": {"name": "alice"}}), None).is_empty());
}

#[test]
fn values_are_typed_by_the_schema() {
    assert!(eval("self.replicas + 1 == 4", json!({"replicas": 3})).is_empty());
    assert!(eval("self.ratio + 0.5 == 1.5", json!({"ratio": 1})).is_empty());
    assert!(eval("self.port == 80 || self.port == '25%'", json!({"port": "25%"})).is_empty());
    assert!(eval("self.timeout > duration('1m')", json!({"timeout": "1h"})).is_empty());
    assert!(eval("self.at.getFullYear() == 2024", json!({"at": "2024-05-01T00:00:00Z"})).is_empty());
    assert!(eval("self.labels['a.b'] == 'x' && 'a.b' in self.labels", json!({"labels": {"a.b": "x"}})).is_empty());
    assert!(eval("has(self.name) == false", json!({})).is_empty());
    assert!(eval("!has(self.name)", json!({"name": null})).is_empty());
}

#[test]
fn runtime_errors_are_worded_as_upstream() {
    assert_eq!(
        eval("self.name == 'x'", json!({})),
        ["spec: Invalid value: \"object\": no such key: name evaluating rule: self.name == 'x'"]
    );
    assert_eq!(
        eval("self.items[3] == 'x'", json!({"items": ["a"]})),
        ["spec: Invalid value: \"object\": index out of bounds: 3 evaluating rule: self.items[3] == 'x'"]
    );
    assert_eq!(
        eval("self.port > 1", json!({"port": "x"})),
        [
            "spec: Invalid value: \"object\": 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: self.port > 1"
        ]
    );
    assert_eq!(
        eval("self.replicas / 0 == 1", json!({"replicas": 1})),
        ["spec: Invalid value: \"object\": division by zero evaluating rule: self.replicas / 0 == 1"]
    );
}

#[test]
fn reasons_and_field_paths() {
    let s = spec_with(
        json!([
            {"rule": "self.replicas < 3", "message": "too many", "reason": "FieldValueForbidden", "fieldPath": ".replicas"},
            {"rule": "self.replicas < 2", "message": "needed", "reason": "FieldValueRequired"},
            {"rule": "self.replicas < 1", "reason": "FieldValueDuplicate", "fieldPath": ".labels['a.b']"},
            {"rule": "self.replicas < 0", "messageExpression": "'replicas is ' + string(self.replicas)"}
        ]),
        json!({"replicas": {"type": "integer"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}}),
    );
    assert_eq!(check_errors(&s), Vec::<String>::new());
    assert_eq!(
        errors(&s, json!({"spec": {"replicas": 5}}), None),
        [
            "spec.replicas: Forbidden: too many",
            "spec: Required value: needed",
            "spec.labels[a.b]: Duplicate value: \"object\"",
            "spec: Invalid value: \"object\": replicas is 5",
        ]
    );
}

#[test]
fn items_and_map_values_are_iterated() {
    let s = schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "list": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 3"}]}},
            "map": {"type": "object", "additionalProperties": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "message": "positive"}]}}
        }}}
    }));
    assert_eq!(
        errors(&s, json!({"spec": {"list": ["a", "abcd"], "map": {"x": 1, "y": 0}}}), None),
        [
            "spec.list[1]: Invalid value: \"string\": failed rule: self.size() < 3",
            "spec.map[y]: Invalid value: \"integer\": positive",
        ]
    );
}

fn transition_schema(optional: bool) -> Schema {
    let mut rule = json!({"rule": "self == oldSelf", "message": "is immutable"});
    if optional {
        rule =
            json!({"rule": "oldSelf.hasValue() ? oldSelf.value() == self : self == 'init'", "optionalOldSelf": true});
    }
    schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string", "x-kubernetes-validations": [rule]},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "port": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not decrease"}]}
                }}}
        }}}
    }))
}

#[test]
fn transition_rules_need_an_old_value() {
    let s = transition_schema(false);
    assert!(check_errors(&s).is_empty(), "{:?}", check_errors(&s));
    // Create: no old object, transition rules are skipped.
    assert!(errors(&s, json!({"spec": {"name": "a", "ports": [{"name": "p", "port": 1}]}}), None).is_empty());
    let old = json!({"spec": {"name": "a", "ports": [{"name": "p", "port": 5}, {"name": "q", "port": 5}]}});
    assert_eq!(
        errors(
            &s,
            json!({"spec": {"name": "b", "ports": [{"name": "q", "port": 6}, {"name": "p", "port": 4}, {"name": "new", "port": 1}]}}),
            Some(old)
        ),
        [
            "spec.name: Invalid value: \"string\": is immutable",
            "spec.ports[1].port: Invalid value: \"integer\": may not decrease",
        ]
    );
}

#[test]
fn optional_old_self_runs_on_create() {
    let s = transition_schema(true);
    assert!(check_errors(&s).is_empty(), "{:?}", check_errors(&s));
    assert_eq!(
        errors(&s, json!({"spec": {"name": "x"}}), None),
        [
            "spec.name: Invalid value: \"string\": failed rule: oldSelf.hasValue() ? oldSelf.value() == self : self == 'init'"
        ]
    );
    assert!(errors(&s, json!({"spec": {"name": "init"}}), None).is_empty());
    assert!(errors(&s, json!({"spec": {"name": "x"}}), Some(json!({"spec": {"name": "x"}}))).is_empty());
}

#[test]
fn unchanged_values_ratchet_to_warnings() {
    let s = one_rule("self.replicas < 3");
    let obj = json!({"spec": {"replicas": 5}});
    let out = compile(&s).evaluate(&s, &obj, Some(&obj), &Limits::default());
    assert!(out.errors.is_empty());
    assert_eq!(out.warnings, ["spec: Invalid value: \"object\": failed rule: self.replicas < 3"]);
    let changed = json!({"spec": {"replicas": 4}});
    assert_eq!(compile(&s).evaluate(&s, &changed, Some(&obj), &Limits::default()).errors.len(), 1);
}

#[test]
fn kubernetes_libraries() {
    let ok = [
        "[1, 2, 3].isSorted() && ![2, 1].isSorted()",
        "[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0",
        "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3",
        "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(5) == -1",
        "'abc 123 def 456'.find('[0-9]+') == '123' && 'abc 123 def 456'.findAll('[0-9]+') == ['123', '456']",
        "'a1b2c3'.findAll('[0-9]', 2) == ['1', '2']",
        "sets.contains([1, 2, 3], [1, 2]) && sets.equivalent([1, 2], [2, 1]) && sets.intersects([1], [1, 5])",
        "'Hello'.lowerAscii() == 'hello' && 'a,b'.split(',') == ['a', 'b'] && ['a', 'b'].join('-') == 'a-b'",
        "'aaa'.replace('a', 'b') == 'bbb' && 'aaa'.replace('a', 'b', 1) == 'baa'",
        "'abc'.matches('^[a-z]+$') && !'ABC'.matches('^[a-z]+$') && matches('x1', '\\\\d')",
        "self.?name.orValue('none') == 'none'",
        "[1, 2, 3].map(x, x * 2) == [2, 4, 6] && [1, 2, 3].filter(x, x > 1).size() == 2",
        "[1, 2, 3].exists_one(x, x == 2) && [1, 2].all(x, x > 0) && [1, 2].exists(x, x == 2)",
    ];
    for rule in ok {
        assert_eq!(eval(rule, json!({})), Vec::<String>::new(), "{rule}");
    }
    assert_eq!(
        eval("[].min() == 1", json!({})),
        ["spec: Invalid value: \"object\": min called on empty list evaluating rule: [].min() == 1"]
    );
}

fn list_of(n: usize) -> Value {
    Value::Array((0..n).map(|i| json!(format!("v{i}"))).collect())
}

#[test]
fn nested_loops_stop_at_the_call_limit_fast() {
    let rule = "self.items.all(x, self.items.all(y, self.items.all(z, x != '' || y != z)))";
    let start = std::time::Instant::now();
    assert_eq!(
        eval(rule, json!({"items": list_of(300)})),
        [format!(
            "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {rule}"
        )]
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
}

#[test]
fn building_huge_values_is_stopped() {
    let start = std::time::Instant::now();
    for rule in [
        "self.items.map(x, self.items.map(y, self.items)).size() > 0",
        "self.name.replace('', self.name).replace('', self.name.replace('', self.name)) != ''",
        "[self.items, self.items, self.items, self.items].map(x, x + x + x + x).map(y, y + y + y + y).size() > 0 && self.items.all(a, self.items.all(b, sets.intersects(self.items, self.items)))",
    ] {
        let errs = eval(rule, json!({"items": list_of(2000), "name": "n".repeat(3000)}));
        assert_eq!(errs.len(), 1, "{rule}: {errs:?}");
        assert!(errs[0].contains("call cost exceeds limit for rule"), "{rule}: {errs:?}");
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
}

#[test]
fn the_object_budget_stops_all_rules() {
    let s = schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 100"}]}}}
    }));
    let limits = Limits { per_object: 50, ..Limits::default() };
    let obj = json!({"spec": list_of(100)});
    let out = compile(&s).evaluate(&s, &obj, None, &limits);
    assert_eq!(
        out.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "spec[25]: Invalid value: \"string\": validation failed due to running out of cost budget, no further validation rules will be run"
        ]
    );
}

#[test]
fn deep_expressions_are_refused_and_long_logical_chains_are_fine() {
    let deep = format!("{}1{} == 1", "[".repeat(120), "]".repeat(120));
    let chain = format!("{} == 401", vec!["1"; 401].join(" + "));
    for rule in [deep, chain] {
        let errs = check_errors(&one_rule(&rule));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("compilation failed: ERROR: <input>:"), "{errs:?}");
        assert!(errs[0].contains("recursion limit exceeded"), "{errs:?}");
    }
    let ors = format!("{} || self.replicas == 5", vec!["self.replicas == 0"; 700].join(" || "));
    let s = one_rule(&ors);
    assert_eq!(check_errors(&s), Vec::<String>::new());
    // On a small stack, as request threads have: evaluation must not need more.
    let handle = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || errors(&s, json!({"spec": {"replicas": 5}}), None))
        .expect("thread starts");
    assert!(handle.join().expect("no overflow").is_empty());
}

#[test]
fn deep_objects_are_refused_not_overflowed() {
    let handle = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let depth = MAX_VALUE_DEPTH + 10;
            let mut node = json!({"type": "object", "properties": {}});
            let mut obj = json!({});
            for _ in 0..depth {
                node = json!({"type": "object", "properties": {"a": node}});
                obj = json!({"a": obj});
            }
            let s = schema(json!({"type": "object", "x-kubernetes-validations": [{"rule": "has(self.a)"}], "properties": {"a": node}}));
            errors(&s, json!({"a": obj}), None)
        })
        .expect("thread starts");
    assert_eq!(
        handle.join().expect("no overflow"),
        [format!("<nil>: Invalid value: \"object\": object nested deeper than {MAX_VALUE_DEPTH} levels")]
    );
}

const RULE0: &str = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0]";

#[test]
fn crd_write_compile_errors() {
    let cases = [
        (
            "self.replicas <",
            "rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.replicas <\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:16: Syntax error: mismatched input '<EOF>'",
        ),
        (
            "self.nope == 1",
            "compilation failed: ERROR: <input>:1:5: undefined field 'nope'\n | self.nope == 1\n | ....^",
        ),
        (
            "foo == 1",
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo == 1\n | ^",
        ),
        (
            "self.name.frob()",
            "compilation failed: ERROR: <input>:1:15: undeclared reference to 'frob' (in container '')",
        ),
        ("self.replicas + 1", "cel expression must evaluate to a bool"),
        ("duration('1x') > duration('1s')", "compilation failed: ERROR: <input>:1:10: invalid duration argument"),
        ("self.name.matches('(')", "compilation failed: ERROR: <input>:1:19: invalid matches argument"),
    ];
    for (rule, want) in cases {
        let errs = check_errors(&one_rule(rule));
        assert_eq!(errs.len(), 1, "{rule}: {errs:?}");
        assert!(
            errs[0].starts_with(&format!("{RULE0}.rule: Invalid value: apiextensions.ValidationRule{{")),
            "{rule}: {errs:?}"
        );
        assert!(errs[0].contains(want), "{rule}: {errs:?}");
    }
}

#[test]
fn crd_write_rule_field_errors() {
    let s = spec_with(
        json!([
            {"rule": ""},
            {"rule": "true", "message": " "},
            {"rule": "true\n", "reason": "Nope"},
            {"rule": "true", "fieldPath": ".nope", "optionalOldSelf": true},
            {"rule": "true", "messageExpression": "1"}
        ]),
        json!({"replicas": {"type": "integer"}}),
    );
    let at = |i: usize| format!("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[{i}]");
    assert_eq!(
        check_errors(&s),
        [
            format!("{}.rule: Required value: rule is not specified", at(0)),
            format!("{}.message: Invalid value: \" \": message must be non-empty if specified", at(1)),
            format!("{}.message: Required value: message must be specified if rule contains line breaks", at(2)),
            format!(
                "{}.reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"",
                at(2)
            ),
            format!(
                "{}.fieldPath: Invalid value: \".nope\": fieldPath must be a valid path: does not refer to a valid field",
                at(3)
            ),
            format!("{}.optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule", at(3)),
            format!(
                "{}.messageExpression: Invalid value: apiextensions.ValidationRule{{Rule:\"true\", Message:\"\", MessageExpression:\"1\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: messageExpression must evaluate to a string",
                at(4)
            ),
        ]
    );
}

#[test]
fn old_self_is_refused_where_it_cannot_correlate() {
    let s = schema(json!({
        "type": "object",
        "properties": {"list": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}
    }));
    assert_eq!(
        check(&s, &Path::new("openAPIV3Schema")).iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "openAPIV3Schema.properties[list].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within openAPIV3Schema.properties[list].items"
        ]
    );
}

#[test]
fn rules_and_rule_trees_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Rules>();
}

#[test]
fn quantity_and_url_libraries() {
    let ok = [
        "quantity('1Gi').isGreaterThan(quantity('1G')) && quantity('500m').compareTo(quantity('0.5')) == 0",
        "isQuantity('1.5k') && !isQuantity('1x') && quantity('2').asInteger() == 2 && !quantity('1.5').isInteger()",
        "quantity('1').add(quantity('500m')) == quantity('1500m') && quantity('1').sub(1).sign() == 0",
        "quantity('1.5').asApproximateFloat() == 1.5",
        "url('https://example.com:8080/path?x=1&x=2').getHost() == 'example.com:8080'",
        "url('https://example.com:8080/p').getHostname() == 'example.com' && url('https://example.com:8080/p').getPort() == '8080'",
        "url('https://example.com/a%20b').getEscapedPath() == '/a%20b' && url('https://e/?x=1&x=2').getQuery()['x'] == ['1', '2']",
        "isURL('/absolute/path') && !isURL('example.com') && url('http://e').getScheme() == 'http'",
    ];
    for rule in ok {
        assert_eq!(eval(rule, json!({})), Vec::<String>::new(), "{rule}");
    }
    assert_eq!(
        eval("quantity('1.5').asInteger() == 1", json!({})),
        [
            "spec: Invalid value: \"object\": cannot convert value to integer evaluating rule: quantity('1.5').asInteger() == 1"
        ]
    );
}

/// Not a check: prints what validating a small object with one simple rule costs here.
/// `cargo test -p skiff-core --lib crd::cel::tests::cost_of_a_simple_rule -- --ignored --nocapture`
#[test]
#[ignore = "timing report"]
fn cost_of_a_simple_rule() {
    let s = replicas_schema();
    let rules = compile(&s);
    let obj = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"replicas": 2, "maxReplicas": 3}});
    let run = |n: u32| {
        let start = std::time::Instant::now();
        for _ in 0..n {
            assert!(rules.validate(&s, &obj, None).is_empty());
        }
        start.elapsed() / n
    };
    run(1000);
    let main = run(20_000);
    let small_stack = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn_scoped(scope, || run(20_000))
            .expect("thread starts")
            .join()
            .expect("runs")
    });
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        let _ = compile(&s);
    }
    println!("validate: {main:?} (8 MiB stack), {small_stack:?} (2 MiB stack); compile: {:?}", start.elapsed() / 1000);
}

#[test]
fn the_largest_rules_compile_on_a_small_stack() {
    let terms = MAX_RULE_SIZE / 4;
    let worst = [
        format!("{} == 1", vec!["1"; terms].join(" + ")),
        format!("self.replicas{} == 1", ".x".repeat(terms)),
        format!("{} == 1", vec!["1"; terms].join(" - ")),
        vec!["true"; terms / 2].join(" && "),
        "x".repeat(MAX_RULE_SIZE + 1),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || worst.iter().map(|rule| check_errors(&one_rule(rule)).len()).collect::<Vec<_>>())
        .expect("thread starts");
    assert_eq!(handle.join().expect("no overflow"), [1, 1, 1, 0, 1]);
}
