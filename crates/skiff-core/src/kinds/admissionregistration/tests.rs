//! Tests of the admission kinds against upstream's defaults, messages and tables
//! (docs/notes/admission.md §1).

use super::*;
use crate::field::ErrorList;
use crate::kinds::{Kind, Part};
use jiff::Timestamp;
use serde_json::{Value, json};

const MUTATING: MutatingWebhookConfigurations = MutatingWebhookConfigurations;
const VALIDATING: ValidatingWebhookConfigurations = ValidatingWebhookConfigurations;
const POLICIES: ValidatingAdmissionPolicies = ValidatingAdmissionPolicies;
const BINDINGS: ValidatingAdmissionPolicyBindings = ValidatingAdmissionPolicyBindings;

const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// The object as a create makes it: decoded, defaulted, prepared.
fn created(kind: &dyn Kind, raw: Value) -> Value {
    let mut obj = kind.normalize(&raw).expect("decodes");
    kind.default(&mut obj);
    kind.prepare_create(&mut obj);
    obj
}

fn strings(errs: ErrorList) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn errors(kind: &dyn Kind, raw: Value) -> Vec<String> {
    strings(kind.validate(&created(kind, raw)))
}

/// The errors of updating `old` (stored as given) to `raw`, through the update strategy.
fn update_errors(kind: &dyn Kind, old: &Value, raw: Value) -> Vec<String> {
    let mut new = kind.normalize(&raw).expect("decodes");
    kind.default(&mut new);
    kind.prepare_update(old, &mut new);
    strings(kind.validate_update(old, &new))
}

fn hook(extra: Value) -> Value {
    let mut h = json!({"name": "hook.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]});
    h.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
    h
}

fn config(kind: &str, hooks: Vec<Value>) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": "cfg"},
        "webhooks": hooks})
}

fn mutating(hooks: Vec<Value>) -> Value {
    config("MutatingWebhookConfiguration", hooks)
}

fn validating(hooks: Vec<Value>) -> Value {
    config("ValidatingWebhookConfiguration", hooks)
}

/// `policy` with `spec` merged over a valid one.
fn policy(spec: Value) -> Value {
    let mut s = json!({"matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"],
            "apiVersions": ["v1"], "resources": ["deployments"]}]},
        "validations": [{"expression": "object.spec.replicas <= 5"}]});
    s.as_object_mut().expect("object").extend(spec.as_object().cloned().unwrap_or_default());
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p.example.com"}, "spec": s})
}

fn binding(spec: Value) -> Value {
    let mut s = json!({"policyName": "p.example.com", "validationActions": ["Deny"]});
    s.as_object_mut().expect("object").extend(spec.as_object().cloned().unwrap_or_default());
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "b"}, "spec": s})
}

#[test]
fn resources_as_discovery_lists_them() {
    for (kind, plural) in [
        (&MUTATING as &dyn Kind, MUTATING_WEBHOOK_CONFIGURATIONS),
        (&VALIDATING, VALIDATING_WEBHOOK_CONFIGURATIONS),
        (&POLICIES, VALIDATING_ADMISSION_POLICIES),
        (&BINDINGS, VALIDATING_ADMISSION_POLICY_BINDINGS),
    ] {
        let i = kind.info();
        assert_eq!((i.group, i.version, i.plural, i.namespaced), (GROUP, "v1", plural, false));
        assert_eq!((i.short_names, i.categories), (&[] as &[&str], &["api-extensions"] as &[&str]));
    }
    assert_eq!(
        POLICIES.info().subresources,
        &[("status", "ValidatingAdmissionPolicy", &["get", "patch", "update"] as &[&str])]
    );
    assert!(MUTATING.info().subresources.is_empty() && BINDINGS.info().subresources.is_empty());
}

#[test]
fn webhook_defaults() {
    let obj = created(&MUTATING, mutating(vec![hook(json!({}))]));
    let h = &webhooks(&obj)[0];
    assert_eq!(h["failurePolicy"], "Fail");
    assert_eq!(h["matchPolicy"], "Equivalent");
    assert_eq!((&h["namespaceSelector"], &h["objectSelector"]), (&json!({}), &json!({})));
    assert_eq!(h["timeoutSeconds"], 10);
    assert_eq!(h["reinvocationPolicy"], "Never");
    assert_eq!(h["rules"][0]["scope"], "*");
    assert_eq!(h["clientConfig"]["service"]["port"], 443);
    let v = created(&VALIDATING, validating(vec![hook(json!({"failurePolicy": "Ignore", "timeoutSeconds": 3}))]));
    let h = &webhooks(&v)[0];
    assert_eq!((&h["failurePolicy"], &h["timeoutSeconds"]), (&json!("Ignore"), &json!(3)));
    assert!(h.get("reinvocationPolicy").is_none());
    // no default for sideEffects or admissionReviewVersions in v1
    let mut bare = hook(json!({}));
    bare.as_object_mut().expect("object").remove("sideEffects");
    let obj = created(&VALIDATING, validating(vec![bare]));
    assert!(webhooks(&obj)[0].get("sideEffects").is_none(), "{obj}");
    assert_eq!(
        strings(VALIDATING.validate(&obj)),
        ["webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"]
    );
}

#[test]
fn webhook_validation_in_upstreams_order() {
    let bad = hook(json!({"name": "Foo",
        "rules": [{"operations": ["*", "CREATE", "PATCH"], "apiGroups": ["*", "apps"], "apiVersions": [""],
            "resources": ["*/*", "pods"], "scope": "All"}],
        "failurePolicy": "X", "matchPolicy": "Y", "sideEffects": "Some", "timeoutSeconds": 31,
        "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": ["-x"]}]},
        "reinvocationPolicy": "Z", "clientConfig": {},
        "matchConditions": [{"name": "a", "expression": "object.x =="}, {"name": "a", "expression": " "}],
        "admissionReviewVersions": ["v2", "v2", "V1"]}));
    assert_eq!(
        errors(&MUTATING, mutating(vec![bad])),
        [
            format!("webhooks[0].name: Invalid value: \"Foo\": {DNS1123_SUBDOMAIN}"),
            "webhooks[0].rules[0].operations: Invalid value: []admissionregistration.OperationType{\"*\", \"CREATE\", \"PATCH\"}: if '*' is present, must not specify other operations".into(),
            "webhooks[0].rules[0].operations[2]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"".into(),
            "webhooks[0].rules[0].apiGroups: Invalid value: []string{\"*\", \"apps\"}: if '*' is present, must not specify other API groups".into(),
            "webhooks[0].rules[0].apiVersions[0]: Required value".into(),
            "webhooks[0].rules[0].resources: Invalid value: []string{\"*/*\", \"pods\"}: if '*/*' is present, must not specify other resources".into(),
            "webhooks[0].rules[0].scope: Unsupported value: \"All\": supported values: \"*\", \"Cluster\", \"Namespaced\"".into(),
            "webhooks[0].failurePolicy: Unsupported value: \"X\": supported values: \"Fail\", \"Ignore\"".into(),
            "webhooks[0].matchPolicy: Unsupported value: \"Y\": supported values: \"Equivalent\", \"Exact\"".into(),
            "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"".into(),
            "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds".into(),
            "webhooks[0].namespaceSelector.matchExpressions[0].values[0]: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
            "webhooks[0].reinvocationPolicy: Unsupported value: \"Z\": supported values: \"IfNeeded\", \"Never\"".into(),
            "webhooks[0].clientConfig: Required value: exactly one of url or service is required".into(),
            "webhooks[0].matchConditions[0].expression: Invalid value: \"object.x ==\": compilation failed: ERROR: <input>:1:12: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | object.x ==\n | ...........^".into(),
            "webhooks[0].matchConditions[1].expression: Required value".into(),
            "webhooks[0].matchConditions[1].name: Duplicate value: \"a\"".into(),
            "webhooks[0].admissionReviewVersions[1]: Invalid value: \"v2\": duplicate version".into(),
            format!("webhooks[0].admissionReviewVersions[2]: Invalid value: \"V1\": {DNS1035}"),
            "webhooks[0].admissionReviewVersions: Invalid value: []string{\"v2\", \"v2\", \"V1\"}: must include at least one of v1, v1beta1".into(),
        ]
    );
    assert_eq!(
        errors(
            &VALIDATING,
            validating(vec![hook(json!({"name": "a.b", "admissionReviewVersions": []})), hook(json!({"name": "a.b"}))])
        ),
        [
            "webhooks[0].name: Invalid value: \"a.b\": should be a domain with at least three segments separated by dots",
            "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            "webhooks[1].name: Invalid value: \"a.b\": should be a domain with at least three segments separated by dots",
            "webhooks[1].name: Duplicate value: \"a.b\"",
        ]
    );
    // resources: order-dependent conflicts, as upstream
    let rules = |resources: Value| {
        hook(
            json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": resources}]}),
        )
    };
    assert_eq!(
        errors(
            &VALIDATING,
            validating(vec![rules(json!(["pods/*", "pods/status", "*/scale", "deployments/scale", "*", "pods"]))])
        ),
        [
            "webhooks[0].rules[0].resources[1]: Invalid value: \"pods/status\": if 'pods/*' is present, must not specify pods/status",
            "webhooks[0].rules[0].resources[3]: Invalid value: \"deployments/scale\": if '*/scale' is present, must not specify deployments/scale",
            "webhooks[0].rules[0].resources: Invalid value: []string{\"pods/*\", \"pods/status\", \"*/scale\", \"deployments/scale\", \"*\", \"pods\"}: if '*' is present, must not specify other resources without subresources",
        ]
    );
    assert!(errors(&VALIDATING, validating(vec![rules(json!(["pods", "*"]))])).is_empty());
    assert!(errors(&VALIDATING, validating(vec![hook(json!({"rules": []}))])).is_empty());
}

#[test]
fn webhook_client_configs() {
    let url = |u: &str| errors(&VALIDATING, validating(vec![hook(json!({"clientConfig": {"url": u}}))]));
    assert!(url("https://hooks.example.com:8443/validate").is_empty());
    assert_eq!(
        url("http://user:pw@/x?a=b#frag"),
        [
            "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
            "webhooks[0].clientConfig.url: Invalid value: \"\": host must be specified; desired format: https://host[/path]",
            "webhooks[0].clientConfig.url: Invalid value: \"user:pw\": user information is not permitted in the URL",
            "webhooks[0].clientConfig.url: Invalid value: \"frag\": fragments are not permitted in the URL",
            "webhooks[0].clientConfig.url: Invalid value: \"a=b\": query parameters are not permitted in the URL",
        ]
    );
    assert_eq!(
        url(":x"),
        [
            "webhooks[0].clientConfig.url: Required value: url must be a valid URL: parse \":x\": missing protocol scheme; desired format: https://host[/path]"
        ]
    );
    let both = hook(json!({"clientConfig": {"url": "https://a", "service": {"namespace": "ns", "name": "svc"}}}));
    assert_eq!(
        errors(&VALIDATING, validating(vec![both])),
        ["webhooks[0].clientConfig: Required value: exactly one of url or service is required"]
    );
    let service = |s: Value| errors(&VALIDATING, validating(vec![hook(json!({"clientConfig": {"service": s}}))]));
    assert_eq!(
        service(json!({"port": 0, "path": "/mutate_pods//x/"})),
        [
            "webhooks[0].clientConfig.service.name: Required value: service name is required",
            "webhooks[0].clientConfig.service.namespace: Required value: service namespace is required",
            "webhooks[0].clientConfig.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
            &format!(
                "webhooks[0].clientConfig.service.path: Invalid value: \"/mutate_pods//x/\": segment[0]: {DNS1123_SUBDOMAIN}"
            ),
            "webhooks[0].clientConfig.service.path: Invalid value: \"/mutate_pods//x/\": segment[1] may not be empty",
        ]
    );
    assert_eq!(
        service(json!({"namespace": "ns", "name": "svc", "path": "//"})),
        ["webhooks[0].clientConfig.service.path: Invalid value: \"//\": segment[0] may not be empty"]
    );
    assert!(service(json!({"namespace": "ns", "name": "svc", "path": "/validate/"})).is_empty());
}

#[test]
fn webhook_match_conditions() {
    let conds = |c: Value| errors(&VALIDATING, validating(vec![hook(json!({"matchConditions": c}))]));
    assert!(
        conds(json!([{"name": "exclude-leases", "expression": "!(request.resource.group == 'coordination.k8s.io')"},
        {"name": "rbac", "expression": "authorizer.group('').resource('pods').check('get').allowed()"}]))
        .is_empty()
    );
    assert_eq!(
        conds(json!([{"name": "a b", "expression": "params.x"}, {"name": "c", "expression": "'s'"}])),
        [
            "webhooks[0].matchConditions[0].expression: Invalid value: \"params.x\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')\n | params.x\n | ^",
            "webhooks[0].matchConditions[0].name: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "webhooks[0].matchConditions[1].expression: Invalid value: \"'s'\": must evaluate to bool but got string",
        ]
    );
    let many: Vec<Value> = (0..65).map(|i| json!({"name": format!("c{i}"), "expression": "true"})).collect();
    assert_eq!(conds(json!(many)), ["webhooks[0].matchConditions: Too many: 65: must have at most 64 items"]);
}

#[test]
fn webhook_updates_keep_what_the_stored_object_had() {
    // A stored configuration (written under older rules) with side effects, an unknown review
    // version, duplicate names, a loose label value and a match condition that no longer compiles.
    let stored = hook(json!({"sideEffects": "Some", "admissionReviewVersions": ["v0"],
        "objectSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": ["-x"]}]},
        "matchConditions": [{"name": "m", "expression": "object.frob()"}]}));
    let old = created(&VALIDATING, validating(vec![stored.clone(), stored.clone()]));
    assert!(update_errors(&VALIDATING, &old, validating(vec![stored.clone(), stored.clone()])).is_empty());
    // changing one webhook's match conditions compiles every webhook's again
    let changed = hook(json!({"sideEffects": "Unknown", "admissionReviewVersions": ["v0"],
        "matchConditions": [{"name": "m", "expression": "object.frob() "}]}));
    let frob = "Invalid value: \"object.frob()\": compilation failed: ERROR: <input>:1:12: undeclared reference to 'frob' (in container '')\n | object.frob()\n | ...........^";
    assert_eq!(
        update_errors(&VALIDATING, &old, validating(vec![changed, stored])),
        [
            format!("webhooks[0].matchConditions[0].expression: {frob}"),
            format!("webhooks[1].matchConditions[0].expression: {frob}")
        ]
    );
    // a clean stored object holds the update to every rule
    let clean = created(&VALIDATING, validating(vec![hook(json!({}))]));
    assert_eq!(
        update_errors(&VALIDATING, &clean, validating(vec![hook(json!({"sideEffects": "Some"}))])),
        ["webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\""]
    );
}

#[test]
fn webhook_generation_and_table() {
    let old = created(&MUTATING, mutating(vec![hook(json!({}))]));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"a": "b"});
    assert!(!MUTATING.changes_generation(&old, &relabelled));
    let new = created(&MUTATING, mutating(vec![hook(json!({"timeoutSeconds": 5}))]));
    assert!(MUTATING.changes_generation(&old, &new));
    let names: Vec<&str> = VALIDATING.columns().iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "Webhooks", "Age"]);
    assert_eq!(VALIDATING.columns()[1].data_type, "integer");
    let mut obj = created(&VALIDATING, validating(vec![hook(json!({})), hook(json!({"name": "two.example.com"}))]));
    obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    let now: Timestamp = "2026-01-01T00:02:00Z".parse().expect("time");
    assert_eq!(VALIDATING.cells(&obj, now), [json!("cfg"), json!(2), json!("2m")]);
}

#[test]
fn policy_defaults_and_status() {
    let obj = created(
        &POLICIES,
        policy(json!({"matchConstraints": {"resourceRules": [{"operations": ["*"],
        "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}], "excludeResourceRules": [{"operations": ["*"],
        "apiGroups": [""], "apiVersions": ["*"], "resources": ["pods"]}]}})),
    );
    let spec = &obj["spec"];
    assert_eq!(spec["failurePolicy"], "Fail");
    let m = &spec["matchConstraints"];
    assert_eq!(
        (&m["matchPolicy"], &m["namespaceSelector"], &m["objectSelector"]),
        (&json!("Equivalent"), &json!({}), &json!({}))
    );
    assert_eq!((&m["resourceRules"][0]["scope"], &m["excludeResourceRules"][0]["scope"]), (&json!("*"), &json!("*")));
    assert_eq!(obj["status"], json!({}));
    assert!(POLICIES.validate(&obj).is_empty(), "{:?}", strings(POLICIES.validate(&obj)));
    // a policy without a spec still gets its failure policy
    let bare = created(
        &POLICIES,
        json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "p"}}),
    );
    assert_eq!(bare["spec"], json!({"failurePolicy": "Fail"}));
    // the status only through /status, the spec only through the main resource
    let mut stored = obj.clone();
    stored["status"] = json!({"observedGeneration": 1});
    let mut update = obj.clone();
    update["status"] = json!({"observedGeneration": 7});
    POLICIES.prepare_update(&stored, &mut update);
    assert_eq!(update["status"], json!({"observedGeneration": 1}));
    let mut status = obj.clone();
    status["spec"]["failurePolicy"] = json!("Ignore");
    status["status"] = json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "Maybe",
        "reason": "bad reason", "message": "", "lastTransitionTime": null}],
        "typeChecking": {"expressionWarnings": [{"fieldRef": " ", "warning": ""}]}});
    POLICIES.prepare_status_update(&stored, &mut status);
    assert_eq!(status["spec"]["failurePolicy"], "Fail");
    assert_eq!(
        strings(POLICIES.validate_part_update(Part::Status, &stored, &status)),
        [
            "status.typeChecking.expressionWarnings[0].warning: Required value",
            "status.typeChecking.expressionWarnings[0].fieldRef: Required value",
            "status.conditions[0].status: Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\"",
            "status.conditions[0].lastTransitionTime: Required value: must be set",
            "status.conditions[0].reason: Invalid value: \"bad reason\": a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex used for validation is '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')",
        ]
    );
}

#[test]
fn policy_validation_in_upstreams_order() {
    let bad = policy(json!({"failurePolicy": "X", "paramKind": {"apiVersion": "Example.com/V1", "kind": "K_"},
        "matchConstraints": {"matchPolicy": "Y", "resourceRules": [], "excludeResourceRules": [{"resourceNames": ["a/b", "a/b"],
            "operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]},
        "matchConditions": [{"name": "m", "expression": "params.x == variables.y"}],
        "variables": [{"name": "a-b", "expression": "params.x"}, {"name": "c", "expression": " "}],
        "validations": [{"expression": "variables.c", "messageExpression": "authorizer.path('/x').check('get').reason()",
            "message": "a\nb", "reason": "Unauthorized"}, {"expression": " ", "messageExpression": " ", "message": " "}],
        "auditAnnotations": [{"key": "k", "valueExpression": "1"}, {"key": "k", "valueExpression": "'x'"}]}));
    assert_eq!(
        errors(&POLICIES, bad),
        [
            "spec.failurePolicy: Unsupported value: \"X\": supported values: \"Fail\", \"Ignore\"".to_string(),
            format!("spec.paramKind.apiVersion: Invalid value: \"Example.com\": {DNS1123_SUBDOMAIN}"),
            format!("spec.paramKind.apiVersion: Invalid value: \"V1\": {DNS1035}"),
            format!("spec.paramKind.kind: Invalid value: \"K_\": may have mixed case, but should otherwise match: {DNS1035}"),
            "spec.matchConstraints.matchPolicy: Unsupported value: \"Y\": supported values: \"Equivalent\", \"Exact\"".into(),
            "spec.matchConstraints.excludeResourceRules[0].resourceNames[0]: Invalid value: \"a/b\": may not contain '/'".into(),
            "spec.matchConstraints.excludeResourceRules[0].resourceNames[1]: Invalid value: \"a/b\": may not contain '/'".into(),
            "spec.matchConstraints.excludeResourceRules[0].resourceNames[1]: Duplicate value: \"a/b\"".into(),
            "spec.matchConstraints.resourceRules: Required value".into(),
            "spec.matchConditions[0].expression: Invalid value: \"params.x == variables.y\": compilation failed: ERROR: <input>:1:13: undeclared reference to 'variables' (in container '')\n | params.x == variables.y\n | ............^".into(),
            "spec.variables[0].name: Invalid value: \"a-b\": name is not a valid CEL identifier".into(),
            "spec.variables[1].expression: Required value: expression is not specified".into(),
            "spec.validations[0].expression: Invalid value: \"variables.c\": compilation failed: ERROR: <input>:1:10: undefined field 'c'\n | variables.c\n | .........^".into(),
            "spec.validations[0].messageExpression: Invalid value: \"authorizer.path('/x').check('get').reason()\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'authorizer' (in container '')\n | authorizer.path('/x').check('get').reason()\n | ^".into(),
            "spec.validations[0].message: Invalid value: \"a\\nb\": message must not contain line breaks".into(),
            "spec.validations[0].reason: Unsupported value: \"Unauthorized\": supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\"".into(),
            "spec.validations[1].expression: Required value: expression is not specified".into(),
            "spec.validations[1].messageExpression: Invalid value: \" \": must be non-empty if specified".into(),
            "spec.validations[1].message: Invalid value: \" \": message must be non-empty if specified".into(),
            "spec.auditAnnotations[0].valueExpression: Invalid value: \"1\": must evaluate to one of [string null_type] but got int".into(),
            "spec.auditAnnotations[1].key: Duplicate value: \"k\"".into(),
        ]
    );
}

#[test]
fn policy_expressions_and_annotations() {
    // variables compose, in order; params only with a paramKind
    let ok = policy(json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "variables": [{"name": "replicas", "expression": "object.spec.replicas"},
            {"name": "tooMany", "expression": "variables.replicas > int(params.data.max)"}],
        "validations": [{"expression": "!variables.tooMany", "messageExpression": "'too many: ' + string(variables.replicas)"}],
        "auditAnnotations": [{"key": "replicas", "valueExpression": "variables.tooMany ? 'high' : null"}]}));
    assert_eq!(errors(&POLICIES, ok), Vec::<String>::new());
    assert_eq!(
        errors(&POLICIES, policy(json!({"validations": [{"expression": "object.spec.paused"}]}))),
        ["spec.validations[0].expression: Invalid value: \"object.spec.paused\": must evaluate to bool but got dyn"]
    );
    assert_eq!(
        errors(&POLICIES, policy(json!({"variables": [{"name": "namespace", "expression": "1"}]}))),
        ["spec.variables[0].name: Invalid value: \"namespace\": name is not a valid CEL identifier"]
    );
    assert_eq!(
        errors(&POLICIES, policy(json!({"validations": []}))),
        [
            "spec.validations: Required value: validations or auditAnnotations must contain at least one item",
            "spec.auditAnnotations: Required value: validations or auditAnnotations must contain at least one item",
        ]
    );
    let many: Vec<Value> = (0..21).map(|i| json!({"key": format!("k{i}"), "valueExpression": "'v'"})).collect();
    let errs = errors(&POLICIES, policy(json!({"auditAnnotations": many})));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec.auditAnnotations: Invalid value: []admissionregistration.AuditAnnotation{admissionregistration.AuditAnnotation{Key:\"k0\", ValueExpression:\"'v'\"}, "));
    assert!(errs[0].ends_with("}: must not have more than 20 auditAnnotations"), "{}", errs[0]);
    let long = format!("'{}'", "x".repeat(5200));
    assert_eq!(
        errors(
            &POLICIES,
            policy(
                json!({"auditAnnotations": [{"key": "a b", "valueExpression": long}, {"key": "c", "valueExpression": ""}]})
            )
        ),
        [
            "spec.auditAnnotations[0].key: Invalid value: \"p.example.com/a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "spec.auditAnnotations[0].valueExpression: Required value: must not exceed 5120 bytes in length",
            "spec.auditAnnotations[1].valueExpression: Required value: valueExpression is not specified",
        ]
    );
    assert_eq!(
        errors(&POLICIES, policy(json!({"paramKind": {"apiVersion": "a/b/c"}}))),
        [
            "spec.paramKind.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c",
            "spec.paramKind.kind: Required value",
        ]
    );
    assert_eq!(
        errors(&POLICIES, policy(json!({"paramKind": {"apiVersion": "example.com/", "kind": "Limits"}}))),
        ["spec.paramKind.apiVersion: Invalid value: \"example.com/\": version must be specified"]
    );
}

#[test]
fn policy_updates_recompile_match_conditions_only_when_changed() {
    let stored = policy(json!({"matchConditions": [{"name": "m", "expression": "object.frob()"}]}));
    let mut old = created(&POLICIES, stored.clone());
    old["metadata"]["generation"] = json!(1);
    let mut next = stored.clone();
    next["spec"]["validations"] = json!([{"expression": "true"}]);
    assert!(update_errors(&POLICIES, &old, next).is_empty());
    let mut with_params = stored;
    with_params["spec"]["paramKind"] = json!({"apiVersion": "v1", "kind": "ConfigMap"});
    assert_eq!(update_errors(&POLICIES, &old, with_params).len(), 1);
}

#[test]
fn policy_table() {
    let mut obj = created(&POLICIES, policy(json!({"paramKind": {"apiVersion": "example.com/v1", "kind": "Limits"}})));
    obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    let now: Timestamp = "2026-01-01T00:00:09Z".parse().expect("time");
    let names: Vec<&str> = POLICIES.columns().iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "Validations", "ParamKind", "Age"]);
    assert_eq!(
        POLICIES.cells(&obj, now),
        [json!("p.example.com"), json!(1), json!("example.com/v1/Limits"), json!("9s")]
    );
    let unset = created(&POLICIES, policy(json!({})));
    assert_eq!(POLICIES.cells(&unset, now)[2], json!("<unset>"));
}

#[test]
fn binding_defaults_validation_and_table() {
    let plain = created(&BINDINGS, binding(json!({})));
    assert!(plain["spec"].get("matchResources").is_none());
    assert!(BINDINGS.validate(&plain).is_empty());
    let matched = created(
        &BINDINGS,
        binding(json!({"matchResources": {"resourceRules": [{"operations": ["CREATE"],
        "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"]}]}})),
    );
    let m = &matched["spec"]["matchResources"];
    assert_eq!(
        (&m["matchPolicy"], &m["namespaceSelector"], &m["resourceRules"][0]["scope"]),
        (&json!("Equivalent"), &json!({}), &json!("*"))
    );
    assert!(BINDINGS.validate(&matched).is_empty());
    assert_eq!(
        errors(&BINDINGS, binding(json!({"policyName": "P", "paramRef": {"name": "..", "selector": {}, "parameterNotFoundAction": "X"},
            "matchResources": {"matchPolicy": "Exact", "objectSelector": {"matchLabels": {"a": "-"}}},
            "validationActions": ["Deny", "Block", "Deny", "Warn"]}))),
        [
            format!("spec.policyName: Invalid value: \"P\": {DNS1123_SUBDOMAIN}"),
            "spec.paramRef.name: Invalid value: \"..\": may not be '..'".into(),
            "spec.paramRef.name: Forbidden: name and selector are mutually exclusive".into(),
            "spec.paramRef.selector: Forbidden: name and selector are mutually exclusive".into(),
            "spec.paramRef.parameterNotFoundAction: Unsupported value: \"X\": supported values: \"Deny\", \"Allow\"".into(),
            "spec.matchResources.objectSelector.matchLabels: Invalid value: \"-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
            "spec.validationActions[1]: Unsupported value: \"Block\": supported values: \"Audit\", \"Deny\", \"Warn\"".into(),
            "spec.validationActions[2]: Duplicate value: \"Deny\"".into(),
            "spec.validationActions: Invalid value: []admissionregistration.ValidationAction{\"Deny\", \"Block\", \"Deny\", \"Warn\"}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)".into(),
        ]
    );
    assert_eq!(
        errors(&BINDINGS, binding(json!({"policyName": "", "paramRef": {}, "validationActions": []}))),
        [
            "spec.policyName: Required value",
            "spec.paramRef: Required value: one of name or selector must be specified",
            "spec.paramRef.parameterNotFoundAction: Required value",
            "spec.validationActions: Required value: at least one validation action is required",
        ]
    );
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
    let cell =
        |param_ref: Value| BINDINGS.cells(&created(&BINDINGS, binding(json!({"paramRef": param_ref}))), now)[2].clone();
    assert_eq!(cell(json!({"name": "lim", "namespace": "ns"})), json!("ns/lim"));
    assert_eq!(cell(json!({"name": "lim"})), json!("*/lim"));
    assert_eq!(
        cell(json!({"selector": {"matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "t", "operator": "In", "values": ["x", "y"]}]}})),
        json!(
            "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:t,Operator:In,Values:[x y],},},}"
        )
    );
    let names: Vec<&str> = BINDINGS.columns().iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "PolicyName", "ParamRef", "Age"]);
    assert_eq!(BINDINGS.cells(&plain, now)[1..3], [json!("p.example.com"), json!("<unset>")]);
}

#[test]
fn server_side_apply_follows_the_markers() {
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
    let mut obj =
        created(&VALIDATING, validating(vec![hook(json!({"matchConditions": [{"name": "m", "expression": "true"}]}))]));
    crate::managed::record_update(VALIDATING.shapes(), &mut obj, None, "kubectl", crate::managed::Part::Main, now);
    let fields = &obj["metadata"]["managedFields"][0]["fieldsV1"];
    let hook = &fields["f:webhooks"]["k:{\"name\":\"hook.example.com\"}"];
    assert_eq!(hook["f:namespaceSelector"], json!({}), "selectors are atomic");
    assert_eq!(hook["f:rules"], json!({}), "rules are atomic");
    assert!(hook["f:matchConditions"].get("k:{\"name\":\"m\"}").is_some(), "{fields}");
    let mut b = created(
        &BINDINGS,
        binding(json!({"validationActions": ["Deny", "Audit"],
        "paramRef": {"name": "x", "parameterNotFoundAction": "Deny"}})),
    );
    crate::managed::record_update(BINDINGS.shapes(), &mut b, None, "kubectl", crate::managed::Part::Main, now);
    let spec = &b["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    assert_eq!(spec["f:validationActions"], json!({".": {}, "v:\"Audit\"": {}, "v:\"Deny\"": {}}));
    assert_eq!(spec["f:paramRef"], json!({}));
}
