//! The Pod tutorial's second half, verbatim, and what a beginner meets just past it (root: real
//! pods): the Spring image built locally, `ErrImagePull` then `ImagePullBackOff` as
//! `kubectl get pods` shows them, the tutorial's second `spring-pod.yml` applied over the live pod
//! with exactly upstream's errors, a pod reading its name, address and a Secret from its
//! environment, and `0/1 Terminating` while a pod goes. Traffic goes only to loopback and pods.

mod common;

use common::terminal::{Terminal, shell_line};
use common::{KUBECTL_VERSIONS, Kubectl, Server, eventually, import_busybox, skiff};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// busybox:1.36 in the store, and `spring-server` built from it by a Dockerfile, as the
/// tutorial builds its jar image; docker.io points at a closed loopback port, so pulls fail at once.
fn prepare(data: &Path) {
    import_busybox(data, &["env", "sort", "grep", "hostname", "ps"]);
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(ctx.path().join("app.txt"), "spring says hi\n").expect("app");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox:1.36\nCOPY app.txt /app.txt\nENTRYPOINT [\"sh\", \"-c\", \"httpd -f -p 8080 -h / & wait\"]\n",
    )
    .expect("Dockerfile");
    let (code, _, err) = skiff(data, &["build", "-t", "spring-server", ctx.path().to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(
        data.join("registries.yaml"),
        "mirrors:\n  docker.io:\n    endpoint: [\"http://127.0.0.1:9\"]\ndisable-default-endpoint: true\n",
    )
    .expect("registries.yaml");
}

/// The tutorial's first `spring-pod.yml`.
const SPRING_POD: &str = "apiVersion: v1\nkind: Pod\n\nmetadata:\n  name: spring-pod\n\nspec:\n  containers:\n    - name: spring-container\n      image: spring-server\n      ports:\n        - containerPort: 8080\n";

/// The tutorial's second `spring-pod.yml` ("태그가 있어야 함").
const SPRING_POD_LATEST: &str = "apiVersion: v1\nkind: Pod\n\nmetadata:\n  name: spring-pod\n\nspec:\n  containers:\n    - name: spring-container:latest\n      image: spring-server\n      ports:\n        - containerPort: 8080\n      imagePullPolicy: Always\n";

/// The STATUS cell of `pod` in `kubectl get pods`.
fn status_of(k: &Kubectl, pod: &str) -> String {
    let out = k.run(&["get", "pods", pod]).stdout;
    out.lines()
        .find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&pod)).then(|| cols.get(2).map(|s| s.to_string()))?
        })
        .unwrap_or_default()
}

fn pod_field(k: &Kubectl, pod: &str, path: &str) -> String {
    k.run(&["get", "pod", pod, "-o", &format!("jsonpath={{{path}}}")]).stdout
}

#[test]
fn spring_flow_statuses_and_errors_as_the_tutorial_shows() {
    let server = Server::with_node(42, prepare);
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], SPRING_POD).ok();

    // `get pods` a few seconds after the apply shows ErrImagePull (it stays until the next
    // sync), then ImagePullBackOff.
    let applied = Instant::now();
    let mut seen: Vec<(Duration, String)> = Vec::new();
    while applied.elapsed() < Duration::from_secs(40) {
        let s = status_of(&k, "spring-pod");
        if seen.last().is_none_or(|(_, last)| *last != s) {
            seen.push((applied.elapsed(), s.clone()));
        }
        if s == "ImagePullBackOff" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let statuses: Vec<&str> = seen.iter().map(|(_, s)| s.as_str()).collect();
    let err_at = statuses.iter().position(|s| *s == "ErrImagePull").unwrap_or_else(|| panic!("{seen:?}"));
    let backoff_at = statuses.iter().position(|s| *s == "ImagePullBackOff").unwrap_or_else(|| panic!("{seen:?}"));
    assert!(err_at < backoff_at, "{seen:?}");
    let err_for = seen[err_at + 1].0 - seen[err_at].0;
    assert!(err_for >= Duration::from_secs(5), "ErrImagePull gone after {err_for:?}: {seen:?}");
    assert!(statuses[..err_at].iter().all(|s| ["Pending", "ContainerCreating", ""].contains(s)), "{seen:?}");

    // The second spring-pod.yml over the live pod: the two errors upstream gives, no more.
    for version in KUBECTL_VERSIONS {
        let kv = server.kubectl(version);
        let err = kv.run_stdin(&["apply", "-f", "-"], SPRING_POD_LATEST).fails();
        let items: Vec<&str> = err.split("\n* ").collect();
        assert_eq!(items[0], "The Pod \"spring-pod\" is invalid: ", "kubectl {version}: {err}");
        assert_eq!(items.len(), 3, "kubectl {version}: {err}");
        assert_eq!(
            items[1],
            "spec.containers[0].name: Invalid value: \"spring-container:latest\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        assert!(
            items[2].starts_with(
                "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
            ),
            "kubectl {version}: {err}"
        );
        // The renamed container is a new one, without the service-account mount admission gave
        // the old one: go-cmp aligns the two changed fields.
        let line = |prefix: &str, value: &str| {
            items[2].lines().any(|l| l.strip_prefix(prefix).is_some_and(|rest| rest.trim_start() == value))
        };
        assert!(
            items[2].contains("  core.PodSpec{\n")
                && line("- \t\t\tName:", "\"spring-container\",")
                && line("+ \t\t\tName:", "\"spring-container:latest\","),
            "kubectl {version}: {err}"
        );
        assert!(!err.contains("protocol"), "kubectl {version}: {err}");
    }
    // A JSON patch that drops a defaulted field changes nothing: the default comes back.
    let out = k
        .run(&[
            "patch",
            "pod",
            "spring-pod",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/containers/0/ports/0/protocol"}]"#,
        ])
        .ok();
    assert_eq!(out, "pod/spring-pod patched (no change)\n");
    assert_eq!(pod_field(&k, "spring-pod", ".spec.containers[0].ports[0].protocol"), "TCP");
    k.run(&["delete", "pod", "spring-pod", "--wait=false"]).ok();

    // What the tutorial should have written: a local image and IfNotPresent runs.
    let local = SPRING_POD.replace("      ports:", "      imagePullPolicy: IfNotPresent\n      ports:");
    k.run_stdin(&["apply", "-f", "-"], &local.replace("spring-pod", "spring-local")).ok();
    assert!(
        eventually(WAIT, || status_of(&k, "spring-local") == "Running"),
        "{}",
        k.run(&["describe", "pod", "spring-local"]).stdout
    );
    assert_eq!(
        pod_field(&k, "spring-local", ".status.containerStatuses[0].image"),
        "docker.io/library/spring-server:latest"
    );
    let node_ip =
        k.run(&["get", "node", "-o", "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}"]).ok();
    assert!(!node_ip.starts_with("10.150.42."), "the node's InternalIP is the bridge's: {node_ip}");
    assert_eq!(pod_field(&k, "spring-local", ".status.hostIP"), node_ip);

    // Deleting: once the container has stopped, the row reads 0/1 Terminating until it is gone.
    let mut watch = k
        .command(&["get", "pods", "spring-local", "-w", "--no-headers"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("get -w");
    let mut out = watch.stdout.take().expect("stdout");
    let rows = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
        text
    });
    std::thread::sleep(Duration::from_millis(500));
    k.run(&["delete", "pod", "spring-local"]).ok();
    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let _ = watch.wait();
    let rows = rows.join().unwrap_or_default();
    assert!(
        rows.lines()
            .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>() == ["spring-local", "0/1", "Terminating"]),
        "{rows}"
    );
}

const ENV_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: envpod
  labels: {app: shop}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "env | sort; echo READY; exec sleep 3600"]
    resources:
      limits: {memory: 64Mi}
    env:
    - {name: MY_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MY_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MY_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: MY_APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
    - {name: GREETING, value: "hi $(MY_NAME)"}
    envFrom:
    - secretRef: {name: db}
      prefix: DB_
    - secretRef: {name: db}
"#;

#[test]
fn a_pod_reads_its_name_address_and_a_secret_from_its_environment() {
    let server = Server::with_node(43, prepare);
    let k = server.kubectl("1.32");
    // An unknown downward API path is refused with upstream's field path and wording.
    let bad = ENV_POD.replace("fieldPath: metadata.namespace", "fieldPath: spec.foo");
    let err = k.run_stdin(&["apply", "-f", "-"], &bad).fails();
    assert!(
        err.contains("spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Invalid value: \"spec.foo\": error converting fieldPath: field label not supported: spec.foo"),
        "{err}"
    );
    assert!(k.run(&["get", "pod", "envpod"]).fails().contains("NotFound"));

    // The Secret does not exist yet: CreateContainerConfigError with the kubelet's message.
    k.run_stdin(&["apply", "-f", "-"], ENV_POD).ok();
    assert!(
        eventually(WAIT, || status_of(&k, "envpod") == "CreateContainerConfigError"),
        "{}",
        k.run(&["describe", "pod", "envpod"]).stdout
    );
    let message = pod_field(&k, "envpod", ".status.containerStatuses[0].state.waiting.message");
    assert_eq!(message, "secret \"db\" not found");
    // Once it exists, the pod starts by itself.
    k.run(&[
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=password=s3cr3t $x",
        "--from-literal=user=app",
        "--from-literal=1x=no",
    ])
    .ok();
    assert!(
        eventually(WAIT, || status_of(&k, "envpod") == "Running"),
        "{}",
        k.run(&["describe", "pod", "envpod"]).stdout
    );
    assert!(eventually(WAIT, || k.run(&["logs", "envpod"]).stdout.contains("READY")));
    let logs = k.run(&["logs", "envpod"]).ok();
    let ip = pod_field(&k, "envpod", ".status.podIP");
    for want in [
        "MY_NAME=envpod".to_string(),
        "MY_NAMESPACE=default".into(),
        format!("MY_IP={ip}"),
        "MY_NODE=skiff-test".into(),
        "MY_APP=shop".into(),
        "MEM_MI=64".into(),
        "DB_PASSWORD=s3cr3t $x".into(),
        "DB_password=s3cr3t $x".into(),
        "DB_user=app".into(),
        "GREETING=hi envpod".into(),
        "HOSTNAME=envpod".into(),
        "DB_1x=no".into(),
        "password=s3cr3t $x".into(),
    ] {
        assert!(logs.lines().any(|l| l == want), "{want} missing from:\n{logs}");
    }
    // Without a prefix, the key "1x" is no variable name: skipped, with the kubelet's event.
    assert!(!logs.lines().any(|l| l.starts_with("1x=")), "{logs}");
    let events = k
        .run(&[
            "get",
            "events",
            "--field-selector",
            "reason=InvalidEnvironmentVariableNames",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .ok();
    assert_eq!(
        events,
        "Keys [1x] from the EnvFrom secret default/db were skipped since they are considered invalid environment variable names."
    );
    k.run(&["delete", "pod", "envpod"]).ok();
}

const DEBUGGED: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
---
apiVersion: v1
kind: Pod
metadata:
  name: done
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "exit 0"]
"#;

#[test]
fn kubectl_debug_adds_an_ephemeral_container_to_a_running_pod() {
    let server = Server::with_node(44, prepare);
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], DEBUGGED).ok();
    assert!(eventually(WAIT, || status_of(&k, "web") == "Running"), "{}", k.run(&["describe", "pod", "web"]).stdout);
    assert!(
        eventually(WAIT, || status_of(&k, "done") == "Completed"),
        "{}",
        k.run(&["describe", "pod", "done"]).stdout
    );
    for version in KUBECTL_VERSIONS {
        let kv = server.kubectl(version);
        let name = format!("dbg{}", version.replace('.', ""));
        // -it with --target: the debugger sees the target's processes, in a real terminal.
        let line = shell_line(
            &kv,
            &format!(
                "debug -it web --image=busybox:1.36 --image-pull-policy=IfNotPresent --target=app -c {name}; echo EXIT=$?; sleep 60"
            ),
        );
        let term = Terminal::start(&format!("skiff-debug-{name}"), &line, 100, 30);
        assert!(eventually(WAIT, || term.screen().contains("/ #")), "kubectl {version}: no prompt\n{}", term.screen());
        term.keys("ps -o pid,args; echo TERM=$TERM");
        assert!(
            eventually(WAIT, || term.screen().contains("sleep 3600") && term.screen().contains("TERM=xterm")),
            "kubectl {version}: {}",
            term.screen()
        );
        term.keys("exit 4");
        assert!(eventually(WAIT, || term.screen().contains("EXIT=0")), "kubectl {version}: {}", term.screen());
        drop(term);
        let exit = |k: &Kubectl| {
            let path = format!(".status.ephemeralContainerStatuses[?(@.name==\"{name}\")].state.terminated.exitCode");
            pod_field(k, "web", &path)
        };
        assert!(
            eventually(WAIT, || exit(&kv) == "4"),
            "kubectl {version}: {}",
            kv.run(&["describe", "pod", "web"]).stdout
        );
        // The name of one of the pod's containers: upstream's duplicate error, the pod unchanged.
        let err = kv.run(&["debug", "web", "--image=busybox:1.36", "-c", "app"]).fails();
        assert!(err.contains("name: Duplicate value: \"app\""), "kubectl {version}: {err}");
        // A pod that has finished gets no new containers: a clear refusal, not a wait forever.
        let err = kv.run(&["debug", "done", "--image=busybox:1.36", "-c", &name]).fails();
        assert!(
            err.contains("cannot be added to a pod that has terminated (phase Succeeded)"),
            "kubectl {version}: {err}"
        );
    }
    let names = pod_field(&k, "web", ".spec.ephemeralContainers[*].name");
    assert_eq!(names, "dbg127 dbg129 dbg132");
    assert_eq!(pod_field(&k, "done", ".spec.ephemeralContainers"), "");
}
