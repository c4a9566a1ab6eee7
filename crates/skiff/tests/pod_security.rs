//! End to end with kubectl 1.32: Pod Security admission by namespace labels, in upstream's
//! words. `enforce=restricted` refuses a privileged pod and admits a compliant one (and a
//! Deployment's ReplicaSet cannot create its pods: FailedCreate); `warn=baseline` admits a
//! hostNetwork pod with kubectl's `Warning:` line; `enforce=baseline` refuses a hostPath volume;
//! labelling a namespace over pods that violate the new level warns about them; an invalid label
//! is refused. The API server alone: pods stay Pending, which admission does not mind.

mod common;

use common::{Kubectl, Server, eventually};
use std::time::Duration;

/// Namespace `name` labelled `labels` (its default ServiceAccount, which pods need, comes from
/// the controller manager; admission waits for it a moment, as upstream's).
fn namespace(k: &Kubectl, name: &str, labels: &[&str]) {
    let labels: String = labels.iter().map(|l| format!("\n    {l}")).collect();
    let manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:{labels}\n");
    k.run_stdin(&["apply", "-f", "-"], &manifest).ok();
}

fn pod(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

const PRIVILEGED: &str = "  containers:
  - name: web
    image: nginx
    securityContext:
      privileged: true
";

const COMPLIANT: &str = "  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: web
    image: nginx
    securityContext:
      allowPrivilegeEscalation: false
      capabilities:
        drop: [ALL]
";

const RESTRICTED_PLAIN: &str = concat!(
    r#"allowPrivilegeEscalation != false (container "web" must set securityContext.allowPrivilegeEscalation=false), "#,
    r#"unrestricted capabilities (container "web" must set securityContext.capabilities.drop=["ALL"]), "#,
    r#"runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true), "#,
    r#"seccompProfile (pod or container "web" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
);

#[test]
fn restricted_refuses_a_privileged_pod_and_admits_a_compliant_one() {
    let server = Server::start();
    let k = server.kubectl("1.32");
    namespace(&k, "locked", &["pod-security.kubernetes.io/enforce: restricted"]);

    let refused = k.run_stdin(&["apply", "-n", "locked", "-f", "-"], &pod("web", PRIVILEGED)).fails();
    let message = format!(
        r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": privileged (container "web" must not set securityContext.privileged=true), {RESTRICTED_PLAIN}"#
    );
    assert!(
        refused.contains(&format!("Error from server (Forbidden): error when creating \"STDIN\": {message}")),
        "{refused}"
    );
    assert!(k.run(&["get", "pod", "web", "-n", "locked"]).fails().contains("NotFound"));

    let admitted = k.run_stdin(&["apply", "-n", "locked", "-f", "-"], &pod("web", COMPLIANT));
    assert_eq!(admitted.code, 0, "{}", admitted.combined());
    assert!(!admitted.stderr.contains("Warning"), "{}", admitted.stderr);
    assert_eq!(k.run(&["get", "pod", "web", "-n", "locked", "-o", "name"]).ok().trim(), "pod/web");

    // A workload is admitted with enforce's warning (its container is named after the image),
    // and its pods are refused as they are made.
    let created = k.run(&["create", "deployment", "web", "--image=nginx", "-n", "locked"]);
    assert_eq!(created.code, 0, "{}", created.combined());
    let warning = RESTRICTED_PLAIN.replace(r#""web""#, r#""nginx""#);
    assert!(
        created.stderr.contains(&format!(r#"Warning: would violate PodSecurity "restricted:latest": {warning}"#)),
        "{}",
        created.stderr
    );
    let failed_creates = || {
        let events = k.run(&[
            "get",
            "events",
            "-n",
            "locked",
            "--field-selector",
            "reason=FailedCreate",
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        events.stdout
    };
    assert!(
        eventually(Duration::from_secs(30), || failed_creates()
            .contains(r#"is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false"#)),
        "{}",
        failed_creates()
    );
    assert_eq!(k.run(&["get", "pods", "-n", "locked", "-o", "name"]).ok().trim(), "pod/web");
}

#[test]
fn warn_admits_with_kubectls_warning_line() {
    let server = Server::start();
    let k = server.kubectl("1.32");
    namespace(&k, "watched", &["pod-security.kubernetes.io/warn: baseline"]);
    let spec = "  hostNetwork: true\n  containers:\n  - name: web\n    image: nginx\n";
    let run = k.run_stdin(&["apply", "-n", "watched", "-f", "-"], &pod("web", spec));
    assert_eq!(run.code, 0, "{}", run.combined());
    assert!(
        run.stderr
            .contains(r#"Warning: would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout.trim(), "pod/web created");
    assert_eq!(k.run(&["get", "pod", "web", "-n", "watched", "-o", "name"]).ok().trim(), "pod/web");
}

#[test]
fn baseline_refuses_host_path_and_namespace_labels_are_checked() {
    let server = Server::start();
    let k = server.kubectl("1.32");
    namespace(&k, "base", &["pod-security.kubernetes.io/enforce: baseline"]);
    let spec = "  containers:\n  - name: web\n    image: nginx\n  volumes:\n  - name: host\n    hostPath:\n      path: /var/log\n";
    let refused = k.run_stdin(&["apply", "-n", "base", "-f", "-"], &pod("logs", spec)).fails();
    assert!(
        refused.contains(
            r#"pods "logs" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "host")"#
        ),
        "{refused}"
    );
    // The same pod is fine in a namespace without labels; tightening that one warns about it.
    namespace(&k, "open", &[]);
    k.run_stdin(&["apply", "-n", "open", "-f", "-"], &pod("logs", spec)).ok();
    let labelled = k.run(&["label", "namespace", "open", "pod-security.kubernetes.io/enforce=baseline"]);
    assert_eq!(labelled.code, 0, "{}", labelled.combined());
    assert!(
        labelled.stderr.contains(
            r#"Warning: existing pods in namespace "open" violate the new PodSecurity enforce level "baseline:latest""#
        ) && labelled.stderr.contains("Warning: logs: hostPath volumes"),
        "{}",
        labelled.stderr
    );
    let invalid =
        k.run(&["label", "namespace", "open", "--overwrite", "pod-security.kubernetes.io/enforce=strict"]).fails();
    assert!(
        invalid.contains(r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#),
        "{invalid}"
    );
}
