//! End to end, with every kubectl: who may do what. A user `jane` (a kubeconfig minted by
//! `skiff kubeconfig --user jane`) with `view` in one namespace reads there, and is refused
//! deletes, exec and other namespaces in upstream's words; `kubectl auth can-i [--list] [--as]`
//! and `kubectl auth whoami` answer; she cannot grant herself more; impersonation needs its verb.

mod common;

use common::{KUBECTL_VERSIONS, Kubectl, Server, eventually, skiff};
use std::time::Duration;

const PODS: &str = "apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: team-a}
spec:
  containers: [{name: web, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: team-b}
spec:
  containers: [{name: db, image: busybox}]
";

/// A kubeconfig for `user` in `groups`, minted from the server's CA.
fn identity(server: &Server, user: &str, groups: &[&str]) -> std::path::PathBuf {
    let mut args = vec!["kubeconfig", "--user", user];
    for g in groups {
        args.extend(["--group", g]);
    }
    let (code, out, err) = skiff(server.data_dir(), &args);
    assert_eq!(code, 0, "skiff kubeconfig --user: {err}");
    let path = server.data_dir().join(format!("{user}.yaml"));
    std::fs::write(&path, out).expect("write kubeconfig");
    path
}

#[test]
fn a_viewer_reads_one_namespace_and_nothing_more() {
    let server = Server::start();
    let admin = server.kubectl("1.32");
    admin.run_stdin(&["apply", "-f", "-"], PODS).ok();
    admin.run(&["create", "rolebinding", "jane-view", "--clusterrole=view", "--user=jane", "-n", "team-a"]).ok();
    let jane_config = identity(&server, "jane", &["dev"]);
    // The binding reaches the authorizer through its watch: a moment.
    let jane32 = Kubectl::new("1.32", &jane_config, server.data_dir());
    assert!(eventually(Duration::from_secs(10), || jane32.run(&["get", "pods", "-n", "team-a"]).code == 0));

    for v in KUBECTL_VERSIONS {
        let jane = Kubectl::new(v, &jane_config, server.data_dir());
        let listed = jane.run(&["get", "pods", "-n", "team-a", "-o", "name"]).ok();
        assert_eq!(listed.trim(), "pod/web", "kubectl {v}");
        let refused = [
            (
                vec!["delete", "pod", "web", "-n", "team-a"],
                r#"pods "web" is forbidden: User "jane" cannot delete resource "pods" in API group "" in the namespace "team-a""#,
            ),
            (
                vec!["exec", "web", "-n", "team-a", "--", "true"],
                r#"pods "web" is forbidden: User "jane" cannot create resource "pods/exec" in API group "" in the namespace "team-a""#,
            ),
            (
                vec!["get", "pods", "-n", "team-b"],
                r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "team-b""#,
            ),
            (
                vec!["get", "namespaces"],
                r#"namespaces is forbidden: User "jane" cannot list resource "namespaces" in API group "" at the cluster scope"#,
            ),
            (
                vec!["get", "secrets", "-n", "team-a"],
                r#"secrets is forbidden: User "jane" cannot list resource "secrets" in API group "" in the namespace "team-a""#,
            ),
        ];
        for (args, message) in refused {
            let run = jane.run(&args);
            assert!(run.code != 0 && run.stderr.contains(message), "kubectl {v} {args:?}:\n{}", run.combined());
        }
        assert_eq!(jane.run(&["auth", "can-i", "list", "pods", "-n", "team-a"]).ok().trim(), "yes", "kubectl {v}");
        let no = jane.run(&["auth", "can-i", "delete", "pods", "-n", "team-a"]);
        assert_eq!((no.code, no.stdout.trim()), (1, "no"), "kubectl {v}");
        // The admin asks on jane's behalf (impersonation: the admin may).
        let admin_v = server.kubectl(v);
        let list = admin_v.run(&["auth", "can-i", "--list", "--as", "jane", "-n", "team-a"]).ok();
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pods", "[]", "[]", "[get", "list", "watch]"]),
            "kubectl {v}:\n{list}"
        );
        let elsewhere = admin_v.run(&["auth", "can-i", "get", "pods", "--as", "jane", "-n", "team-b"]);
        assert_eq!(elsewhere.stdout.trim(), "no", "kubectl {v}");
        // kubectl 1.27 asks for SelfSubjectReview in authentication.k8s.io/v1beta1, which is
        // not served (only v1).
        if *v != "1.27" {
            let whoami = jane.run(&["auth", "whoami"]).ok();
            assert!(whoami.contains("jane") && whoami.contains("[dev system:authenticated]"), "kubectl {v}:\n{whoami}");
        }
    }
}

#[test]
fn nobody_grants_what_they_do_not_hold_and_impersonation_needs_its_verb() {
    let server = Server::start();
    let admin = server.kubectl("1.32");
    admin.run(&["create", "namespace", "team-a"]).ok();
    admin.run(&["create", "rolebinding", "lead-admin", "--clusterrole=admin", "--user=lead", "-n", "team-a"]).ok();
    let lead_config = identity(&server, "lead", &[]);
    let lead = Kubectl::new("1.32", &lead_config, server.data_dir());
    assert!(eventually(Duration::from_secs(10), || lead.run(&["get", "pods", "-n", "team-a"]).code == 0));

    // What `admin` holds in team-a may be granted there: `edit` is part of it.
    lead.run(&["create", "rolebinding", "jane-edit", "--clusterrole=edit", "--user=jane", "-n", "team-a"]).ok();
    lead.run(&["create", "role", "pod-reader", "--verb=get", "--resource=pods", "-n", "team-a"]).ok();
    // More is refused, with upstream's account of what is missing.
    let escalate =
        lead.run(&["create", "rolebinding", "me", "--clusterrole=cluster-admin", "--user=lead", "-n", "team-a"]);
    assert!(
        escalate.stderr.contains(r#"rolebindings.rbac.authorization.k8s.io "me" is forbidden: user "lead" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#)
            && escalate.stderr.contains(r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#),
        "{}",
        escalate.combined()
    );
    let role = lead.run(&["create", "role", "everything", "--verb=*", "--resource=*", "-n", "team-a"]);
    assert!(role.stderr.contains("is attempting to grant RBAC permissions not currently held"), "{}", role.combined());
    // Cluster-wide objects are not lead's to create at all.
    let cluster = lead.run(&["create", "clusterrolebinding", "me", "--clusterrole=view", "--user=lead"]);
    assert!(
        cluster.stderr.contains(r#"User "lead" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope"#),
        "{}",
        cluster.combined()
    );
    // Impersonating without the verb is refused (a client that drops privileges never acts
    // as the admin); the admin impersonating someone acts as them.
    let as_admin = lead.run(&["get", "pods", "-n", "team-a", "--as", "skiff-admin"]);
    assert!(
        as_admin.stderr.contains(r#"users "skiff-admin" is forbidden: User "lead" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{}",
        as_admin.combined()
    );
    let anonymous = admin.run(&["--as=system:anonymous", "delete", "pod", "nothing", "-n", "team-a"]);
    assert!(
        anonymous.stderr.contains(r#"pods "nothing" is forbidden: User "system:anonymous" cannot delete resource "pods" in API group "" in the namespace "team-a""#),
        "{}",
        anonymous.combined()
    );
    // The default roles are there, and admin/edit/view gather their rules.
    let view = admin.run(&["get", "clusterrole", "view", "-o", "jsonpath={.rules[*].resources}"]).ok();
    assert!(view.contains("\"pods\""), "{view}");
}
