//! End to end: CustomResourceDefinitions and their custom resources, driven by kubectl 1.27,
//! 1.29 and 1.32 (discovery, Table columns, short names and categories differ between clients'
//! code paths): a definition with two versions, printer columns, defaults, a CEL rule, the
//! status and scale subresources, `kubectl explain` of a custom field; custom resources pruned, defaulted and validated by the schema, read through
//! either version; a definition that is not structural refused; deleting the definition
//! deletes its objects. Independent clients: the Python client's dynamic client, an operator
//! written with kopf, and kube-rs' `DynamicObject`.

mod common;

use common::{KUBECTL_VERSIONS, Kubectl, Server, eventually};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

const WIDGETS: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - {rule: "self.size <= 100", message: a widget holds at most 100}
            properties:
              size: {type: integer, minimum: 1, description: How big the widget is.}
              color: {type: string, enum: [red, blue], default: blue}
              replicas: {type: integer}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties:
              replicas: {type: integer}
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
"#;

fn widget(name: &str, size: i64) -> String {
    format!("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  size: {size}\n")
}

/// Install the definition and wait until it is served.
fn install(k: &Kubectl) {
    k.run_stdin(&["apply", "-f", "-"], WIDGETS).ok();
    k.run(&["wait", "--for", "condition=established", "--timeout=30s", "crd/widgets.example.com"]).ok();
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn custom_resources_with_every_kubectl() {
    let server = Server::start();
    install(&server.kubectl("1.32"));
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("w{}", v.replace('.', ""));

        let crds = k.run(&["get", "crd"]).ok();
        assert_eq!(words(crds.lines().next().unwrap_or_default()), ["NAME", "CREATED", "AT"], "{v}: {crds}");
        assert!(crds.contains("widgets.example.com"), "{v}: {crds}");
        let conditions = k.jsonpath(&["crd", "widgets.example.com"], "{.status.conditions[*].type}");
        assert_eq!(conditions, "NamesAccepted Established", "{v}");

        // Created: the default filled in, an unknown field refused (kubectl asks for strict
        // field validation), a schema violation refused with the field's path.
        k.run_stdin(&["apply", "-f", "-"], &widget(&name, 2)).ok();
        assert_eq!(k.jsonpath(&["widget", &name], "{.spec.color}"), "blue", "{v}");
        let strict = k.run_stdin(&["apply", "-f", "-"], &format!("{}  extra: 1\n", widget("strict", 2))).fails();
        assert!(strict.contains(r#"strict decoding error: unknown field "spec.extra""#), "{v}: {strict}");
        let invalid = k.run_stdin(&["apply", "-f", "-"], &widget("small", 0)).fails();
        assert!(
            invalid.contains(r#"The Widget "small" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"#),
            "{v}: {invalid}"
        );

        // A CEL rule of the schema, with its message.
        let huge = k.run_stdin(&["apply", "-f", "-"], &widget("huge", 101)).fails();
        assert!(
            huge.contains(r#"The Widget "huge" is invalid: spec: Invalid value: "object": a widget holds at most 100"#),
            "{v}: {huge}"
        );

        // `kubectl explain` reads the published schema.
        let explained = k.run(&["explain", "widget.spec.size"]).ok();
        let flat = words(&explained).join(" ");
        // (1.29+ name the group version in one line, 1.27 the group in its own.)
        let kind_line = ["KIND: Widget VERSION: example.com/v1", "GROUP: example.com KIND: Widget VERSION: v1"];
        assert!(kind_line.iter().any(|l| flat.contains(l)), "{v}: {explained}");
        assert!(flat.contains("FIELD: size <integer>"), "{v}: {explained}");
        assert!(flat.contains("How big the widget is."), "{v}: {explained}");

        // The table: the printer columns, by plural, short name, category.
        let table = k.run(&["get", "widgets", &name]).ok();
        let mut lines = table.lines();
        assert_eq!(words(lines.next().unwrap_or_default()), ["NAME", "SIZE", "COLOR", "READY", "AGE"], "{v}: {table}");
        let row = words(lines.next().unwrap_or_default());
        assert_eq!(row[..3], [name.as_str(), "2", "blue"], "{v}: {table}");
        assert!(k.run(&["get", "wd"]).ok().contains(&name), "{v}");
        let all = k.run(&["get", "all"]).ok();
        assert!(all.contains(&format!("widget.example.com/{name}")), "{v}: {all}");

        // The status subresource: a status write through the main resource is dropped, the
        // subresource's shows in the READY column.
        let status = r#"{"status":{"replicas":1,"conditions":[{"type":"Ready","status":"True"}]}}"#;
        k.run(&["patch", "widget", &name, "--type=merge", "-p", status]).ok();
        assert_eq!(k.jsonpath(&["widget", &name], "{.status}"), "", "{v}");
        k.run(&["patch", "widget", &name, "--subresource=status", "--type=merge", "-p", status]).ok();
        let table = k.run(&["get", "widget", &name, "--no-headers"]).ok();
        assert_eq!(words(&table)[..4], [name.as_str(), "2", "blue", "True"], "{v}: {table}");

        // Scale, and the generation counting spec changes only.
        k.run(&["scale", "widget", &name, "--replicas=3"]).ok();
        assert_eq!(k.jsonpath(&["widget", &name], "{.spec.replicas} {.metadata.generation}"), "3 2", "{v}");

        // The other version reads the same object, pruned to what it knows.
        let beta = k.run(&["get", &format!("widgets.v1beta1.example.com/{name}"), "-o", "json"]).ok();
        let beta: serde_json::Value = serde_json::from_str(&beta).expect("json");
        assert_eq!(beta["apiVersion"], "example.com/v1beta1", "{v}");
        assert_eq!(beta["spec"], serde_json::json!({"size": 2}), "{v}");

        // kubectl apply again patches (a merge patch: custom resources take no strategic one).
        k.run_stdin(&["apply", "-f", "-"], &widget(&name, 7)).ok();
        assert_eq!(k.jsonpath(&["widget", &name], "{.spec.size} {.spec.color}"), "7 blue", "{v}");
        let smp = k.run(&["patch", "widget", &name, "--type=strategic", "-p", r#"{"spec":{"size":3}}"#]).fails();
        assert!(
            smp.contains("accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got application/strategic-merge-patch+json)"),
            "{v}: {smp}"
        );

        k.run(&["delete", "widget", &name]).ok();
    }
}

#[test]
fn definitions_are_checked_and_deleting_one_deletes_its_objects() {
    let server = Server::start();
    let k = server.kubectl("1.32");

    let not_structural =
        WIDGETS.replace("            type: object\n            required: [size]\n", "            required: [size]\n");
    let refused = k.run_stdin(&["apply", "-f", "-"], &not_structural).fails();
    assert!(
        refused.contains("spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields")
            || refused.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"),
        "{refused}"
    );

    install(&k);
    for i in 0..20 {
        k.run_stdin(&["apply", "-f", "-"], &widget(&format!("w{i}"), 1)).ok();
    }
    // One held by a finalizer: the definition waits for it, refuses creates meanwhile, and the
    // finalizer can still be removed.
    let held = widget("held", 1).replace("  name: held\n", "  name: held\n  finalizers: [example.com/hold]\n");
    k.run_stdin(&["apply", "-f", "-"], &held).ok();
    k.run(&["delete", "crd", "widgets.example.com", "--wait=false"]).ok();
    let terminating = eventually(WAIT, || {
        k.jsonpath(&["crd", "widgets.example.com"], "{.status.conditions[?(@.type==\"Terminating\")].reason}")
            == "InstanceDeletionInProgress"
    });
    assert!(terminating, "{}", k.run(&["get", "crd", "widgets.example.com", "-o", "yaml"]).stdout);
    let refused = k.run_stdin(&["create", "-f", "-"], &widget("late", 1)).fails();
    assert!(refused.contains("create not allowed while custom resource definition is terminating"), "{refused}");
    k.run(&["patch", "widget", "held", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]).ok();
    assert!(eventually(WAIT, || k.run(&["get", "crd", "widgets.example.com"]).code != 0), "the definition is gone");
    // kubectl says so from fresh discovery, or from its cached one by the list's 404.
    let gone = k.run(&["get", "widgets"]).fails();
    assert!(
        gone.contains("the server doesn't have a resource type \"widgets\"")
            || gone.contains(
                "Unable to list \"example.com/v1, Resource=widgets\": the server could not find the requested resource"
            ),
        "{gone}"
    );

    // Made again, it starts empty.
    install(&k);
    let none = k.run(&["get", "widgets"]);
    assert!(none.stderr.contains("No resources found"), "{}", none.combined());
}

fn client_script(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(name)
}

#[test]
fn python_dynamic_client_on_custom_resources() {
    let server = Server::start();
    install(&server.kubectl("1.32"));
    let out = Command::new("python3")
        .arg(client_script("dynamic_widgets.py"))
        .arg(server.kubeconfig())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "found widgets True ['wd']",
            "created 3 blue",
            "listed ['py']",
            "watched ('MODIFIED', 4)",
            "json patched red 3",
            "status 2 3",
            "v1beta1 {'size': 4}",
            "refused spec.size",
            "deleted",
        ]
    );
}

/// A kopf operator (its own process, a real client of ours) makes a Deployment per Widget,
/// owned by it; the Widget's status reports it; deleting the Widget collects the Deployment.
#[test]
fn a_kopf_operator_reconciles_widgets_into_deployments() {
    let server = Server::start();
    let k = server.kubectl("1.32");
    install(&k);
    let log = server.data_dir().join("kopf.log");
    let mut operator = Command::new("python3")
        .args(["-m", "kopf", "run", "--standalone", "--namespace", "default"])
        .arg(client_script("widget_operator.py"))
        .env("KUBECONFIG", server.kubeconfig())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("kopf");
    let kopf_log = || std::fs::read_to_string(&log).unwrap_or_default();

    k.run_stdin(&["apply", "-f", "-"], &widget("op", 2)).ok();
    let made = eventually(Duration::from_secs(60), || {
        k.jsonpath(&["deployment", "op-app"], "{.spec.replicas} {.metadata.ownerReferences[0].kind}") == "2 Widget"
    });
    assert!(made, "no Deployment for the Widget:\n{}", kopf_log());
    let reported = eventually(WAIT, || k.jsonpath(&["widget", "op"], "{.status.create_fn.deployment}") == "op-app");
    assert!(reported, "{}\n{}", k.run(&["get", "widget", "op", "-o", "yaml"]).stdout, kopf_log());

    k.run(&["patch", "widget", "op", "--type=merge", "-p", r#"{"spec":{"size":3}}"#]).ok();
    let resized = eventually(WAIT, || k.jsonpath(&["deployment", "op-app"], "{.spec.replicas}") == "3");
    assert!(resized, "{}", kopf_log());

    k.run(&["delete", "widget", "op"]).ok();
    let collected = eventually(WAIT, || k.run(&["get", "deployment", "op-app"]).code != 0);
    let _ = operator.kill();
    let _ = operator.wait();
    let log = server.log();
    let gc: Vec<&str> = log.lines().filter(|l| l.contains("garbage") || l.contains("gc")).collect();
    assert!(collected, "the Widget's Deployment was not collected:\n{}", gc.join("\n"));
}

/// kube-rs' untyped client: discovery finds the kind, and `DynamicObject`s are listed,
/// watched and patched.
#[tokio::test]
async fn kube_dynamic_objects_list_watch_and_patch() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
    use kube::discovery::{self, Scope};

    let server = Server::start();
    install(&server.kubectl("1.32"));
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    let client = kube::Client::try_from(config).expect("client");

    let gvk = kube::core::GroupVersionKind::gvk("example.com", "v1", "Widget");
    let (resource, caps) = discovery::pinned_kind(&client, &gvk).await.expect("discovered");
    assert_eq!((resource.plural.as_str(), caps.scope), ("widgets", Scope::Namespaced));
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &resource);

    let mut obj = DynamicObject::new("rs", &resource);
    obj.data = serde_json::json!({"spec": {"size": 5}});
    let created = widgets.create(&PostParams::default(), &obj).await.expect("create");
    assert_eq!(created.data["spec"], serde_json::json!({"size": 5, "color": "blue"}));

    let rv = created.metadata.resource_version.clone().expect("rv");
    let mut events = widgets.watch(&WatchParams::default().timeout(20), &rv).await.expect("watch").boxed();
    let patch = serde_json::json!({"spec": {"color": "red"}});
    let patched = widgets.patch("rs", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    assert_eq!(patched.data["spec"]["color"], "red");
    match events.try_next().await.expect("event") {
        Some(WatchEvent::Modified(o)) => assert_eq!(o.data["spec"]["color"], "red"),
        other => panic!("expected the change, got {other:?}"),
    }
    let listed = widgets.list(&Default::default()).await.expect("list");
    assert_eq!(listed.items.iter().filter(|w| w.metadata.name.as_deref() == Some("rs")).count(), 1);
    let apply = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "rs"},
        "spec": {"size": 6}});
    let applied = widgets
        .patch("rs", &PatchParams::apply("kube-rs-test").force(), &Patch::Apply(&apply))
        .await
        .expect("server-side apply");
    assert_eq!(applied.data["spec"]["size"], 6);
}
