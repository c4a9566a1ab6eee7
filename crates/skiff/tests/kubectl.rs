//! End to end: the real kubectl 1.27, 1.29 and 1.32 against a real `skiff server` over TLS.

mod common;

use common::{KUBECTL_VERSIONS, Server, eventually, tutorial_pod};
use std::time::Duration;

#[test]
fn apply_creates_then_is_unchanged_then_configures() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("web-{}", v.replace('.', ""));
        let pod = tutorial_pod(&name, "nginx");
        assert_eq!(k.run_stdin(&["apply", "-f", "-"], &pod).ok().trim(), format!("pod/{name} created"));
        assert_eq!(k.run_stdin(&["apply", "-f", "-"], &pod).ok().trim(), format!("pod/{name} unchanged"));
        let labelled = pod.replace("  name: ", "  labels:\n    app: web\n  name: ");
        assert_eq!(k.run_stdin(&["apply", "-f", "-"], &labelled).ok().trim(), format!("pod/{name} configured"));
        let image = labelled.replace("image: nginx", "image: nginx:1.27");
        assert_eq!(k.run_stdin(&["apply", "-f", "-"], &image).ok().trim(), format!("pod/{name} configured"));
        let got = k
            .run(&[
                "get",
                "pod",
                &name,
                "-o",
                "jsonpath={.metadata.labels.app} {.spec.containers[0].image} {.spec.containers[0].imagePullPolicy}",
            ])
            .ok();
        assert_eq!(got, "web nginx:1.27 Always");
        // A forbidden spec change gets upstream's Forbidden message.
        let env = image.replace("      ports:", "      env:\n        - name: A\n          value: b\n      ports:");
        let err = k.run_stdin(&["apply", "-f", "-"], &env).fails();
        assert!(
            err.contains("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"),
            "{err}"
        );
    }
}

#[test]
fn get_prints_upstream_columns_and_formats() {
    let server = Server::start();
    let k0 = server.kubectl("1.32");
    k0.run_stdin(&["apply", "-f", "-"], &tutorial_pod("nginx-pod", "nginx")).ok();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let out = k.run(&["get", "pods"]).ok();
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
        assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
        let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
        assert_eq!(&row[..4], ["nginx-pod", "0/1", "Pending", "0"]);
        let wide = k.run(&["get", "po", "-o", "wide"]).ok();
        assert!(
            wide.lines().next().expect("header").contains("IP       NODE     NOMINATED NODE   READINESS GATES"),
            "{wide}"
        );
        assert!(wide.contains("<none>"));
        let all = k.run(&["get", "pods", "-A"]).ok();
        assert!(all.starts_with("NAMESPACE"), "{all}");
        assert!(all.contains("default     nginx-pod"), "{all}");
        let yaml = k.run(&["get", "pod", "nginx-pod", "-o", "yaml"]).ok();
        assert!(
            yaml.contains("kind: Pod") && yaml.contains("phase: Pending") && yaml.contains("protocol: TCP"),
            "{yaml}"
        );
        let json = k.run(&["get", "pods", "-o", "json"]).ok();
        let list: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(list["items"][0]["metadata"]["name"], "nginx-pod");
        assert_eq!(list["items"][0]["spec"]["terminationGracePeriodSeconds"], 30);
        let ns = k.run(&["get", "ns"]).ok();
        for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(ns.contains(n), "{ns}");
        }
    }
}

#[test]
fn errors_match_a_real_cluster() {
    let server = Server::start();
    let spring = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: spring-pod\nspec:\n  containers:\n    - name: spring-container:latest\n      image: spring-server\n";
    let unknown = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: u\nspec:\n  foo: 1\n  containers:\n    - name: c\n      image: busybox\n";
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let err = k.run_stdin(&["apply", "-f", "-"], spring).fails();
        assert!(err.contains("The Pod \"spring-pod\" is invalid: spec.containers[0].name: Invalid value: \"spring-container:latest\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"), "{v}: {err}");
        let err = k.run_stdin(&["apply", "-f", "-"], unknown).fails();
        assert!(err.contains("strict decoding error: unknown field \"spec.foo\""), "{v}: {err}");
        // Ignore lets it through with the field dropped.
        k.run_stdin(
            &["create", "--validate=false", "-f", "-"],
            &unknown.replace("name: u", &format!("name: u{}", v.replace('.', ""))),
        )
        .ok();
        let err = k.run(&["get", "pod", "nope"]).fails();
        assert!(err.contains("Error from server (NotFound): pods \"nope\" not found"), "{err}");
        let err = k.run_stdin(&["create", "-f", "-"], &tutorial_pod("dup", "nginx")).code;
        let again = k.run_stdin(&["create", "-f", "-"], &tutorial_pod("dup", "nginx")).fails();
        assert!(err == 0 || again.contains("already exists"));
        assert!(
            again.contains("Error from server (AlreadyExists)") && again.contains("pods \"dup\" already exists"),
            "{again}"
        );
        let anonymous = server.kubectl_with_token(v, "wrong");
        let err = anonymous.run(&["get", "pods"]).fails();
        assert!(err.contains("You must be logged in to the server (Unauthorized)"), "{err}");
        let token = std::fs::read_to_string(server.data_dir().join("pki/token")).expect("token");
        server.kubectl_with_token(v, token.trim()).run(&["get", "pods"]).ok();
    }
}

#[test]
fn server_side_apply_and_conflicts() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("ssa-{}", v.replace('.', ""));
        let pod = tutorial_pod(&name, "nginx");
        assert_eq!(
            k.run_stdin(&["apply", "--server-side", "-f", "-"], &pod).ok().trim(),
            format!("pod/{name} serverside-applied")
        );
        let changed = pod.replace("image: nginx", "image: nginx:1.27");
        let err = k.run_stdin(&["apply", "--server-side", "--field-manager=other", "-f", "-"], &changed).fails();
        // An Apply manager is named without a version (upstream's printManager).
        assert!(err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.containers[name=\"nginx-container\"].image"), "{err}");
        assert!(err.contains("--force-conflicts"), "{err}");
        k.run_stdin(&["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-"], &changed)
            .ok();
        let img = k.run(&["get", "pod", &name, "-o", "jsonpath={.spec.containers[0].image}"]).ok();
        assert_eq!(img, "nginx:1.27");
        let managers = k
            .run(&["get", "pod", &name, "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}"])
            .ok();
        assert!(managers.contains("other") && managers.contains("kubectl"), "{managers}");
    }
}

#[test]
fn label_annotate_describe_with_events() {
    let server = Server::start();
    let k0 = server.kubectl("1.32");
    k0.run_stdin(&["apply", "-f", "-"], &tutorial_pod("web", "nginx")).ok();
    let uid = k0.run(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]).ok();
    let event = format!(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\n  namespace: default\ninvolvedObject:\n  kind: Pod\n  name: web\n  namespace: default\n  uid: {uid}\n  apiVersion: v1\nreason: Scheduled\nmessage: Successfully assigned default/web to node1\nsource:\n  component: default-scheduler\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\ncount: 1\ntype: Normal\n"
    );
    k0.run_stdin(&["create", "-f", "-"], &event).ok();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        assert_eq!(
            k.run(&["label", "pod", "web", &format!("v{}=yes", v.replace('.', ""))]).ok().trim(),
            "pod/web labeled"
        );
        // kubectl 1.27 prints "annotate", later ones "annotated".
        assert!(
            k.run(&["annotate", "pod", "web", &format!("note{}=hi", v.replace('.', ""))])
                .ok()
                .starts_with("pod/web annotate")
        );
        let d = k.run(&["describe", "pod", "web"]).ok();
        assert!(d.contains("Name:             web") || d.contains("Name:         web"), "{d}");
        assert!(d.contains("Status:           Pending") || d.contains("Pending"), "{d}");
        assert!(
            d.contains("Scheduled")
                && d.contains("default-scheduler")
                && d.contains("Successfully assigned default/web to node1"),
            "{d}"
        );
        let events = k.run(&["get", "events"]).ok();
        assert!(events.contains("pod/web") && events.contains("Scheduled"), "{events}");
        let filtered = k.run(&["get", "pods", "-l", &format!("v{}=yes", v.replace('.', "")), "-o", "name"]).ok();
        assert_eq!(filtered.trim(), "pod/web");
    }
}

#[test]
fn watch_prints_changes() {
    let server = Server::start();
    let k0 = server.kubectl("1.32");
    k0.run_stdin(&["apply", "-f", "-"], &tutorial_pod("web", "nginx")).ok();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let mut watcher = k
            .command(&["get", "pods", "-w", "--output-watch-events"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("watch");
        std::thread::sleep(Duration::from_millis(1500));
        k.run(&["label", "pod", "web", &format!("w{}=1", v.replace('.', ""))]).ok();
        std::thread::sleep(Duration::from_millis(700));
        let _ = watcher.kill();
        let out = watcher.wait_with_output().expect("watch output");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("ADDED") && text.contains("MODIFIED"), "{v}: {text}");
    }
}

#[test]
fn delete_wait_and_graceful_deletion() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        k.run_stdin(&["apply", "-f", "-"], &tutorial_pod("gone", "nginx")).ok();
        assert_eq!(k.run(&["delete", "pod", "gone"]).ok().trim(), "pod \"gone\" deleted");
        k.run(&["get", "pod", "gone"]).fails();

        // A pod bound to a node waits for the node agent: it shows Terminating until forced.
        let bound = tutorial_pod("bound", "nginx").replace("spec:\n", "spec:\n  nodeName: node1\n");
        k.run_stdin(&["apply", "-f", "-"], &bound).ok();
        k.run(&["delete", "pod", "bound", "--wait=false"]).ok();
        let status = k.run(&["get", "pod", "bound", "--no-headers"]).ok();
        assert!(status.contains("Terminating"), "{status}");
        let forced = k.run(&["delete", "pod", "bound", "--grace-period=0", "--force"]);
        assert_eq!(forced.code, 0, "{}", forced.stderr);
        assert!(eventually(Duration::from_secs(5), || k.run(&["get", "pod", "bound"]).code != 0));
    }
}

#[test]
fn wait_for_condition_via_status_subresource() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("ready-{}", v.replace('.', ""));
        k.run_stdin(&["apply", "-f", "-"], &tutorial_pod(&name, "nginx")).ok();
        let waiter = k
            .command(&["wait", "--for=condition=Ready", &format!("pod/{name}"), "--timeout=20s"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("wait");
        std::thread::sleep(Duration::from_millis(800));
        let patch = r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#;
        k.run(&["patch", "pod", &name, "--subresource=status", "--type=merge", "-p", patch]).ok();
        let out = waiter.wait_with_output().expect("wait output");
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("pod/{name} condition met"));
    }
}

#[test]
fn namespace_deletion_deletes_its_contents() {
    let server = Server::start();
    let k = server.kubectl("1.32");
    k.run(&["create", "namespace", "team"]).ok();
    k.run_stdin(&["apply", "-n", "team", "-f", "-"], &tutorial_pod("p1", "nginx")).ok();
    k.run(&["delete", "namespace", "team"]).ok();
    k.run(&["get", "ns", "team"]).fails();
    let err = k.run_stdin(&["apply", "-n", "team", "-f", "-"], &tutorial_pod("p2", "nginx")).fails();
    assert!(err.contains("namespaces \"team\" not found"), "{err}");
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut server = Server::start();
    let k = server.kubectl("1.32");
    for i in 0..5 {
        k.run_stdin(&["apply", "-f", "-"], &tutorial_pod(&format!("durable-{i}"), "nginx")).ok();
    }
    server.kill_and_restart();
    let k = server.kubectl("1.32");
    let names = k.run(&["get", "pods", "-o", "name"]).ok();
    for i in 0..5 {
        assert!(names.contains(&format!("pod/durable-{i}")), "{names}");
    }
    let clean = server.terminate(Duration::from_secs(10));
    assert!(clean, "clean exit on SIGTERM:\n{}", server.log());
}

#[test]
fn nodes_print_upstream_columns() {
    let server = Server::start();
    let node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: node1\n  labels:\n    node-role.kubernetes.io/control-plane: \"\"\n";
    server.kubectl("1.32").run_stdin(&["create", "-f", "-"], node).ok();
    let status = r#"{"status":{"conditions":[{"type":"Ready","status":"True"}],"nodeInfo":{"kubeletVersion":"v1.32.0-skiff","osImage":"Debian","kernelVersion":"6.1","containerRuntimeVersion":"skiff://0.1","machineID":"","systemUUID":"","bootID":"","kubeProxyVersion":"","operatingSystem":"linux","architecture":"amd64"},"addresses":[{"type":"InternalIP","address":"10.0.0.1"}]}}"#;
    server.kubectl("1.32").run(&["patch", "node", "node1", "--subresource=status", "--type=merge", "-p", status]).ok();
    for v in KUBECTL_VERSIONS {
        let out = server.kubectl(v).run(&["get", "nodes", "-o", "wide"]).ok();
        let header: Vec<&str> = out.lines().next().expect("header").split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAME",
                "STATUS",
                "ROLES",
                "AGE",
                "VERSION",
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME"
            ]
        );
        let row: Vec<&str> = out.lines().nth(1).expect("row").split_whitespace().collect();
        assert_eq!(&row[..3], ["node1", "Ready", "control-plane"]);
        assert!(row.contains(&"10.0.0.1") && row.contains(&"v1.32.0-skiff"), "{out}");
    }
}

/// `kubectl cluster-info`, the `kubernetes` Service, and Services created the ways the course
/// shows: `create service`, `expose`, a file; each given its own cluster IP from the service
/// range (node ports from theirs), conflicts and bad ranges refused in upstream's words.
#[test]
fn cluster_info_and_services_get_their_addresses() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let info = k.run(&["cluster-info"]).ok();
        let first = info.lines().next().unwrap_or_default();
        // kubectl colours the words; the address is the kubeconfig's.
        assert!(first.contains("Kubernetes control plane"), "kubectl {v}: {info}");
        assert!(first.contains(&format!("https://127.0.0.1:{}", server.port)), "kubectl {v}: {info}");
        let kubernetes = k.run(&["get", "service", "kubernetes", "--no-headers"]).ok();
        let cells: Vec<&str> = kubernetes.split_whitespace().collect();
        assert_eq!(cells[..5], ["kubernetes", "ClusterIP", "10.43.0.1", "<none>", "443/TCP"], "kubectl {v}");

        let suffix = v.replace('.', "");
        let web = format!("web{suffix}");
        let created = k.run(&["create", "service", "clusterip", &web, "--tcp=80:8080"]).ok();
        assert_eq!(created.trim(), format!("service/{web} created"));
        let ip = k.run(&["get", "service", &web, "-o", "jsonpath={.spec.clusterIP}"]).ok();
        assert!(ip.starts_with("10.43.") && ip != "10.43.0.1", "kubectl {v}: {ip}");
        let target = k.run(&["get", "service", &web, "-o", "jsonpath={.spec.ports[0].targetPort}"]).ok();
        assert_eq!(target, "8080");

        // Node ports: chosen, then taken, then out of range.
        let port = match *v {
            "1.27" => "30127",
            "1.29" => "30129",
            _ => "30132",
        };
        let np = format!("np{suffix}");
        k.run(&["create", "service", "nodeport", &np, "--tcp=80:80", "--node-port", port]).ok();
        let row = k.run(&["get", "service", &np, "--no-headers"]).ok();
        assert!(row.contains(&format!("80:{port}/TCP")), "kubectl {v}: {row}");
        let err = k
            .run(&["create", "service", "nodeport", &format!("taken{suffix}"), "--tcp=81:81", "--node-port", port])
            .fails();
        assert!(
            err.contains(&format!("spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated")),
            "kubectl {v}: {err}"
        );
        let err = k
            .run(&["create", "service", "nodeport", &format!("low{suffix}"), "--tcp=81:81", "--node-port", "80"])
            .fails();
        assert!(
            err.contains("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
            "kubectl {v}: {err}"
        );
        // An address asked for by name: once, and only from the range.
        let err =
            k.run(&["create", "service", "clusterip", &format!("dup{suffix}"), "--tcp=80", "--clusterip", &ip]).fails();
        assert!(err.contains("provided IP is already allocated"), "kubectl {v}: {err}");
        let err = k
            .run(&["create", "service", "clusterip", &format!("far{suffix}"), "--tcp=80", "--clusterip", "10.0.0.1"])
            .fails();
        assert!(err.contains("The range of valid IPs is 10.43.0.0/16"), "kubectl {v}: {err}");
        // A deleted Service gives its address back.
        k.run(&["delete", "service", &web]).ok();
        let again = k.run(&["create", "service", "clusterip", &format!("re{suffix}"), "--tcp=80", "--clusterip", &ip]);
        assert_eq!(again.code, 0, "kubectl {v}: {}", again.stderr);

        // `kubectl expose` of a Deployment: its selector and port.
        let dep = format!("app{suffix}");
        k.run(&["create", "deployment", &dep, "--image=nginx", "--port=80"]).ok();
        let exposed = k.run(&["expose", "deployment", &dep, "--port=8080", "--target-port=80"]).ok();
        assert_eq!(exposed.trim(), format!("service/{dep} exposed"));
        let selector = k.run(&["get", "service", &dep, "-o", "jsonpath={.spec.selector.app}"]).ok();
        assert_eq!(selector, dep);
        let wide = k.run(&["get", "service", &dep, "-o", "wide", "--no-headers"]).ok();
        assert!(wide.contains("8080/TCP") && wide.contains(&format!("app={dep}")), "kubectl {v}: {wide}");
    }
}

/// A kind outside the core group (`coordination.k8s.io/v1` Leases): discovery, apply, the Table
/// columns, explain (v2 for 1.27, v3 after), errors that name the group, and delete.
#[test]
fn leases_are_served_in_their_group() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("lease-{}", v.replace('.', ""));
        let lease = format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: {name}\nspec:\n  holderIdentity: me\n  leaseDurationSeconds: 15\n"
        );
        assert_eq!(
            k.run_stdin(&["apply", "-f", "-"], &lease).ok().trim(),
            format!("lease.coordination.k8s.io/{name} created")
        );
        assert_eq!(
            k.run_stdin(&["apply", "-f", "-"], &lease).ok().trim(),
            format!("lease.coordination.k8s.io/{name} unchanged")
        );
        let resources = k.run(&["api-resources", "--api-group=coordination.k8s.io"]).ok();
        let row: Vec<&str> = resources.lines().nth(1).expect("row").split_whitespace().collect();
        assert_eq!(row, ["leases", "coordination.k8s.io/v1", "true", "Lease"], "{resources}");
        let table = k.run(&["get", "leases", &name]).ok();
        let header: Vec<&str> = table.lines().next().expect("header").split_whitespace().collect();
        assert_eq!(header, ["NAME", "HOLDER", "AGE"]);
        assert!(table.lines().nth(1).is_some_and(|r| r.starts_with(&format!("{name}   me"))), "{table}");
        let got = k
            .run(&[
                "get",
                "lease.coordination.k8s.io",
                &name,
                "-o",
                "jsonpath={.apiVersion} {.spec.leaseDurationSeconds}",
            ])
            .ok();
        assert_eq!(got, "coordination.k8s.io/v1 15");
        let explain = k.run(&["explain", "lease.spec.holderIdentity"]).ok();
        assert!(explain.contains("holderIdentity contains the identity of the holder"), "{explain}");
        let missing = k.run(&["get", "lease", "nope"]).fails();
        assert!(
            missing.contains(r#"Error from server (NotFound): leases.coordination.k8s.io "nope" not found"#),
            "{missing}"
        );
        let invalid =
            k.run(&["patch", "lease", &name, "--type=merge", "-p", r#"{"spec":{"leaseDurationSeconds":0}}"#]).fails();
        assert!(
            invalid.contains(&format!(
                r#""{name}" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"#
            )),
            "{invalid}"
        );
        let all = k.run(&["get", "leases", "-A"]).ok();
        assert!(all.starts_with("NAMESPACE"), "{all}");
        assert_eq!(
            k.run(&["delete", "lease", &name]).ok().trim(),
            format!(r#"lease.coordination.k8s.io "{name}" deleted"#)
        );
    }
    let groups = server.kubectl("1.32").run(&["get", "--raw", "/apis"]).ok();
    assert!(groups.contains(r#""name":"coordination.k8s.io""#), "{groups}");
}

/// ConfigMaps as a user makes them: `create configmap` from literals, files and env files, the
/// Table, a ConfigMap and a Pod in one file, `immutable`, and upstream's errors.
#[test]
fn configmaps_from_literals_files_and_manifests() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("app.properties"), "color=blue\n").expect("write");
    std::fs::write(dir.path().join("vars.env"), "# comment\nA=1\nB=two\n").expect("write");
    let file = dir.path().join("app.properties");
    let env = dir.path().join("vars.env");
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("app-{}", v.replace('.', ""));
        let created = k
            .run(&["create", "configmap", &name, "--from-literal=mode=dev", &format!("--from-file={}", file.display())])
            .ok();
        assert_eq!(created.trim(), format!("configmap/{name} created"));
        let got = k.run(&["get", "cm", &name, "-o", "jsonpath={.data.mode} {.data.app\\.properties}"]).ok();
        assert_eq!(got, "dev color=blue\n");
        let table = k.run(&["get", "configmaps", &name]).ok();
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0], ["NAME", "DATA", "AGE"]);
        assert_eq!(&rows[1][..2], [name.as_str(), "2"]);
        let from_env = format!("env-{}", v.replace('.', ""));
        k.run(&["create", "configmap", &from_env, &format!("--from-env-file={}", env.display())]).ok();
        assert_eq!(k.run(&["get", "cm", &from_env, "-o", "jsonpath={.data.A} {.data.B}"]).ok(), "1 two");
        let bad = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad-{}\ndata:\n  a/b: x\n",
            v.replace('.', "")
        );
        let bad = k.run_stdin(&["create", "-f", "-"], &bad).fails();
        assert!(
            bad.contains(
                "data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters"
            ),
            "{bad}"
        );
    }
    let k = server.kubectl("1.32");
    let both =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\nimmutable: true\ndata:\n  greeting: hello\n---\n"
            .to_string() + &common::tutorial_pod("reads-settings", "nginx");
    let applied = k.run_stdin(&["apply", "-f", "-"], &both).ok();
    assert!(
        applied.contains("configmap/settings created") && applied.contains("pod/reads-settings created"),
        "{applied}"
    );
    let changed = k.run(&["patch", "cm", "settings", "--type=merge", "-p", r#"{"data":{"greeting":"bye"}}"#]).fails();
    assert!(changed.contains("data: Forbidden: field is immutable when `immutable` is set"), "{changed}");
    let big = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  a: {}\n",
        "x".repeat(1024 * 1024 + 1)
    );
    let too_big = k.run_stdin(&["create", "-f", "-"], &big).fails();
    assert!(too_big.contains("[]: Too long: may not be more than 1048576 bytes"), "{too_big}");
}

/// The apps/v1 kinds through kubectl, as the API serves them (the controllers that act on them
/// are tested with them): create, Table columns, scale, set image, apply, get all, explain and
/// upstream's validation errors.
#[test]
fn apps_kinds_are_served_with_upstream_columns_scale_and_errors() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("web-{}", v.replace('.', ""));
        let created = k.run(&["create", "deployment", &name, "--image=nginx", "--replicas=3"]).ok();
        assert_eq!(created.trim(), format!("deployment.apps/{name} created"));
        let table = k.run(&["get", "deploy", &name, "-o", "wide"]).ok();
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]);
        // No node here: the controllers make the pods, none becomes ready.
        assert_eq!([rows[1][0], rows[1][1], rows[1][3]], [name.as_str(), "0/3", "0"]);
        assert_eq!(rows[1][5..], ["nginx", "nginx", &format!("app={name}")]);
        let scaled = k.run(&["scale", "deployment", &name, "--replicas=5"]).ok();
        assert_eq!(scaled.trim(), format!("deployment.apps/{name} scaled"));
        let spec = k
            .run(&[
                "get",
                "deploy",
                &name,
                "-o",
                "jsonpath={.spec.replicas} {.spec.strategy.rollingUpdate.maxSurge} {.metadata.generation}",
            ])
            .ok();
        assert_eq!(spec, "5 25% 2");
        let set = k.run(&["set", "image", &format!("deployment/{name}"), "nginx=nginx:1.27"]).ok();
        assert_eq!(set.trim(), format!("deployment.apps/{name} image updated"));
        let image = k.run(&["get", "deploy", &name, "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).ok();
        assert_eq!(image, "nginx:1.27");
        let all = k.run(&["get", "all"]).ok();
        assert!(all.contains(&format!("deployment.apps/{name}")), "{all}");
        let explain = k.run(&["explain", "deployment.spec.strategy.rollingUpdate.maxSurge"]).ok();
        assert!(
            explain.contains("The maximum number of pods that can be scheduled above the desired number"),
            "{explain}"
        );
    }
    let k = server.kubectl("1.32");
    let mismatch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: api\n    spec:\n      containers:\n      - name: c\n        image: nginx\n";
    let err = k.run_stdin(&["apply", "-f", "-"], mismatch).fails();
    assert!(
        err.contains(r#"The Deployment "broken" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`"#),
        "{err}"
    );
    let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: frontend\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      tier: fe\n  template:\n    metadata:\n      labels:\n        tier: fe\n    spec:\n      containers:\n      - name: c\n        image: busybox\n";
    assert_eq!(k.run_stdin(&["apply", "-f", "-"], rs).ok().trim(), "replicaset.apps/frontend created");
    let rows = k.run(&["get", "rs", "frontend"]).ok();
    let header: Vec<&str> = rows.lines().next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels:\n      app: agent\n  template:\n    metadata:\n      labels:\n        app: agent\n    spec:\n      nodeSelector:\n        disk: ssd\n      containers:\n      - name: a\n        image: busybox\n";
    assert_eq!(k.run_stdin(&["apply", "-f", "-"], ds).ok().trim(), "daemonset.apps/agent created");
    let rows = k.run(&["get", "ds", "agent"]).ok();
    let lines: Vec<Vec<&str>> = rows.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR", "AGE"]);
    assert_eq!(lines[1][6], "disk=ssd");
    let negative = k.run(&["scale", "rs", "frontend", "--replicas=-1"]).fails();
    assert!(
        negative.contains("--replicas=COUNT") || negative.contains("must be greater than or equal to 0"),
        "{negative}"
    );
}

/// The batch/v1 kinds through kubectl: Jobs (generated selector, STATUS and COMPLETIONS
/// columns), CronJobs (schedule and time zone checked), and a Job made from a CronJob.
#[test]
fn batch_kinds_are_served_with_upstream_columns_and_errors() {
    let server = Server::start();
    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let tag = v.replace('.', "");
        let job = format!("pi-{tag}");
        let created = k.run(&["create", "job", &job, "--image=busybox", "--", "echo", "3.14"]).ok();
        assert_eq!(created.trim(), format!("job.batch/{job} created"));
        let rows = k.run(&["get", "jobs", &job]).ok();
        let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0], ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
        assert_eq!(rows[1][..3], [job.as_str(), "Running", "0/1"]);
        let selector = k.run(&["get", "job", &job, "-o", "jsonpath={.spec.selector.matchLabels}"]).ok();
        assert!(selector.contains("batch.kubernetes.io/controller-uid"), "{selector}");
        let cron = format!("hello-{tag}");
        let created =
            k.run(&["create", "cronjob", &cron, "--image=busybox", "--schedule=*/1 * * * *", "--", "date"]).ok();
        assert_eq!(created.trim(), format!("cronjob.batch/{cron} created"));
        let rows = k.run(&["get", "cj", &cron]).ok();
        let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0], ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]);
        assert_eq!(rows[1][..7], [cron.as_str(), "*/1", "*", "*", "*", "*", "<none>"]);
        let manual = format!("manual-{tag}");
        let from = k.run(&["create", "job", &manual, &format!("--from=cronjob/{cron}")]).ok();
        assert_eq!(from.trim(), format!("job.batch/{manual} created"));
        let owner = k.run(&["get", "job", &manual, "-o", "jsonpath={.metadata.ownerReferences[0].kind}"]).ok();
        assert_eq!(owner, "CronJob");
    }
    let k = server.kubectl("1.32");
    let bad = k.run(&["create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *"]).fails();
    assert!(bad.contains(r#"spec.schedule: Invalid value: "61 * * * *""#), "{bad}");
    let tz = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: tz\nspec:\n  schedule: '@hourly'\n  timeZone: Mars/Olympus\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image: busybox\n";
    let err = k.run_stdin(&["apply", "-f", "-"], tz).fails();
    assert!(err.contains(r#"spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus"#), "{err}");
    let always = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: always\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: busybox\n";
    let err = k.run_stdin(&["apply", "-f", "-"], always).fails();
    assert!(
        err.contains(
            r#"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#
        ),
        "{err}"
    );
}
