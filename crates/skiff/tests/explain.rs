//! End to end: what kubectl reads from the OpenAPI documents. `explain` renders v3 (v2 with
//! `--output plaintext-openapiv2`); client-side validation, which kubectl does itself for a `List`
//! (it asks the server to validate only objects whose kind advertises `fieldValidation`), checks
//! the objects against the v2 schemas. kubectl 1.27, 1.29 and 1.32.

mod common;

use common::{KUBECTL_VERSIONS, Server};

/// Explain output with kubectl's line wrapping and indentation undone, so that upstream's
/// sentences can be matched whole.
fn flat(out: &str) -> String {
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

const PULL_POLICY: &str = "Image pull policy. One of Always, Never, IfNotPresent. Defaults to Always if :latest tag is specified, or IfNotPresent otherwise. Cannot be updated.";

#[test]
fn explain_prints_upstream_fields_and_descriptions() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);

        let spec = k.run(&["explain", "pod.spec"]).ok();
        let text = flat(&spec);
        assert!(text.contains("KIND: Pod VERSION: v1 FIELD: spec <PodSpec>"), "{v}: {spec}");
        assert!(text.contains("Specification of the desired behavior of the pod."), "{v}: {spec}");
        assert!(text.contains("PodSpec is a description of a pod."), "{v}: {spec}");
        assert!(spec.contains("containers\t<[]Container> -required-"), "{v}: {spec}");
        assert!(spec.contains("restartPolicy\t<string>"), "{v}: {spec}");

        let containers = k.run(&["explain", "pod.spec.containers"]).ok();
        let text = flat(&containers);
        assert!(text.contains("FIELD: containers <[]Container>"), "{v}: {containers}");
        assert!(text.contains("A single application container that you want to run within a pod."), "{v}");
        assert!(containers.contains("imagePullPolicy\t<string>"), "{v}: {containers}");
        assert!(containers.contains("name\t<string> -required-"), "{v}: {containers}");

        // The v3 renderer (default) and the v2 one.
        let field = "pod.spec.containers.imagePullPolicy";
        for args in [&["explain", field][..], &["explain", field, "--output", "plaintext-openapiv2"]] {
            let out = flat(&k.run(args).ok());
            assert!(out.contains("KIND: Pod VERSION: v1"), "{v} {args:?}: {out}");
            assert!(out.contains("FIELD: imagePullPolicy <string>"), "{v} {args:?}: {out}");
            assert!(out.contains(&format!("DESCRIPTION: {PULL_POLICY}")), "{v} {args:?}: {out}");
        }

        let data = flat(&k.run(&["explain", "secrets.data"]).ok());
        assert!(data.contains("KIND: Secret VERSION: v1 FIELD: data <map[string]string>"), "{v}: {data}");
        assert!(
            data.contains("Data contains the secret data. Each key must consist of alphanumeric characters"),
            "{v}"
        );

        let recursive = k.run(&["explain", "pods.spec.containers.resources", "--recursive"]).ok();
        let text = flat(&recursive);
        assert!(text.contains("FIELD: resources <ResourceRequirements>"), "{v}: {recursive}");
        assert!(
            text.contains("FIELDS: claims <[]ResourceClaim> name <string> -required- request <string> limits <map[string]Quantity> requests <map[string]Quantity>"),
            "{v}: {recursive}"
        );
        let v2_recursive = flat(&k.run(&["explain", "pods", "--recursive", "--output", "plaintext-openapiv2"]).ok());
        assert!(v2_recursive.contains("imagePullPolicy <string>"), "{v}: {v2_recursive}");

        for (resource, kind, says) in [
            ("namespaces", "Namespace", "Namespace provides a scope for Names."),
            ("nodes.status.addresses", "Node", "NodeAddress contains information for the node's address."),
            ("events.involvedObject", "Event", "The object that this event is about."),
        ] {
            let out = flat(&k.run(&["explain", resource]).ok());
            assert!(out.contains(&format!("KIND: {kind} VERSION: v1")) && out.contains(says), "{v} {resource}: {out}");
        }

        for output in ["plaintext", "plaintext-openapiv2"] {
            let err = k.run(&["explain", "pod.spec.bogus", "--output", output]).fails();
            assert!(err.contains("field \"bogus\" does not exist"), "{v} {output}: {err}");
        }
    }
}

fn list(items: &str) -> String {
    format!("apiVersion: v1\nkind: List\nitems:\n{items}")
}

#[test]
fn client_side_validation_uses_the_v2_schemas() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("listed-{}", v.replace('.', ""));
        let bad = list(&format!(
            "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: {name}\n  spec:\n    restartPolicyX: Never\n    containers:\n    - name: c\n      image: nginx\n      bogus: 1\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: {name}\n  stringData: [a]\n"
        ));
        for args in [&["create", "--validate=true", "-f", "-"][..], &["apply", "--validate=strict", "-f", "-"]] {
            let err = k.run_stdin(args, &bad).fails();
            for want in [
                "error validating data: [",
                r#"ValidationError(Pod.spec.containers[0]): unknown field "bogus" in io.k8s.api.core.v1.Container"#,
                r#"ValidationError(Pod.spec): unknown field "restartPolicyX" in io.k8s.api.core.v1.PodSpec"#,
                r#"ValidationError(Secret.stringData): invalid type for io.k8s.api.core.v1.Secret.stringData: got "array", expected "map""#,
                "turn validation off with --validate=false",
            ] {
                assert!(err.contains(want), "{v} {args:?}: want {want:?} in {err}");
            }
        }
        let missing = list(&format!("- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: {name}\n  spec: {{}}\n"));
        let err = k.run_stdin(&["create", "-f", "-"], &missing).fails();
        assert!(err.contains(r#"missing required field "containers" in io.k8s.api.core.v1.PodSpec"#), "{v}: {err}");
        // Nothing was sent.
        assert_eq!(k.run(&["get", "pods,secrets", "-o", "name"]).ok().matches(&name).count(), 0, "{v}");

        let good = list(&format!(
            "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: {name}\n  spec:\n    containers:\n    - name: c\n      image: nginx\n      imagePullPolicy: IfNotPresent\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: {name}\n  stringData:\n    a: b\n"
        ));
        let out = k.run_stdin(&["create", "--validate=true", "-f", "-"], &good).ok();
        assert_eq!(out.trim(), format!("pod/{name} created\nsecret/{name} created"), "{v}");
        let out = k.run_stdin(&["apply", "-f", "-"], &good).ok();
        assert!(out.contains(&format!("pod/{name} configured")), "{v}: {out}");
    }
}

#[test]
fn single_objects_are_validated_by_the_server() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("strict-{}", v.replace('.', ""));
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    bogus: 1\n"
        );
        // kubectl sees `fieldValidation` on the Pod PATCH operation and sends Strict to the server,
        // whose answer names the field.
        let err = k.run_stdin(&["apply", "--validate=strict", "-f", "-"], &pod).fails();
        assert!(err.contains("Error from server (BadRequest)") && err.contains("bogus"), "{v}: {err}");
        assert!(!err.contains("ValidationError("), "{v}: validated on the client: {err}");
        let ok = pod.replace("    bogus: 1\n", "");
        assert_eq!(k.run_stdin(&["apply", "-f", "-"], &ok).ok().trim(), format!("pod/{name} created"), "{v}");
    }
}
