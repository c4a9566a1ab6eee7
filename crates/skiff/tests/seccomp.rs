//! Seccomp profiles on real pods (root): `skiff server` with its node, driven by kubectl 1.32.
//! RuntimeDefault (the node's default) refuses what a container may not do (`unshare -U`, which
//! needs CAP_SYS_ADMIN under the default profile; this kernel allows user namespaces to anyone,
//! so Unconfined succeeds); Localhost profiles come from DATA_DIR/seccomp, and a missing or
//! broken one keeps the container from running with a clear reason; `--seccomp-default=false`
//! leaves containers without a profile unfiltered; `skiff build` RUN steps get the default
//! profile, as `docker build` gives them. Traffic goes only to loopback.

mod common;

use common::{Kubectl, Server, eventually, import_busybox, skiff};
use std::path::Path;
use std::time::Duration;

const NET: u8 = 40;
const WAIT: Duration = Duration::from_secs(60);

/// What every probe container prints and does: its seccomp mode, then a call the default
/// profile refuses. Exit code 0 only when the call was allowed.
const PROBE: &str = "grep Seccomp: /proc/1/status; unshare -U true && echo unshare allowed";

/// busybox:1.36 with the applets the probe needs, and the Localhost profiles.
fn prepare(data: &Path) {
    import_busybox(data, &["grep", "unshare", "true"]);
    let profiles = data.join("seccomp/profiles");
    std::fs::create_dir_all(&profiles).expect("seccomp dir");
    std::fs::write(profiles.join("allow-all.json"), r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).expect("profile");
    // Docker format: everything allowed but mkdir, which gets EACCES.
    std::fs::write(
        profiles.join("no-mkdir.json"),
        r#"{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
           "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"comment":"no new directories"}]}"#,
    )
    .expect("profile");
    std::fs::write(profiles.join("broken.json"), "{\"defaultAction\": \"SCMP_ACT_ALLOW\",").expect("profile");
}

/// A pod running `command` once; `pod_sc` and `container_sc` are securityContext bodies.
fn pod(name: &str, pod_sc: &str, container_sc: &str, command: &str) -> String {
    let section = |indent: &str, body: &str| {
        if body.is_empty() {
            String::new()
        } else {
            let lines: String = body.lines().map(|l| format!("{indent}  {l}\n")).collect();
            format!("{indent}securityContext:\n{lines}")
        }
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  \
         terminationGracePeriodSeconds: 1\n{}  containers:\n  - name: c\n    image: busybox:1.36\n    \
         imagePullPolicy: Never\n    command: [\"sh\", \"-c\", {command:?}]\n{}",
        section("  ", pod_sc),
        section("    ", container_sc)
    )
}

fn profile(kind: &str) -> String {
    format!("seccompProfile:\n  type: {kind}")
}

fn localhost(name: &str) -> String {
    format!("seccompProfile:\n  type: Localhost\n  localhostProfile: {name}")
}

fn status_of(k: &Kubectl, pod: &str) -> String {
    let out = k.run(&["get", "pod", pod, "--no-headers"]).stdout;
    out.split_whitespace().nth(2).unwrap_or_default().to_string()
}

/// Wait for `pod` to finish; returns (STATUS column, logs).
fn finished(k: &Kubectl, pod: &str) -> (String, String) {
    let done = eventually(WAIT, || matches!(status_of(k, pod).as_str(), "Completed" | "Error"));
    assert!(done, "{pod} did not finish: {}", k.run(&["describe", "pod", pod]).stdout);
    (status_of(k, pod), k.run(&["logs", pod]).stdout)
}

/// `pod` ran under a filter and was refused `unshare`.
fn assert_filtered(k: &Kubectl, pod: &str) {
    let (status, logs) = finished(k, pod);
    assert_eq!(status, "Error", "{pod}: {logs}");
    assert!(logs.contains("Seccomp:\t2"), "{pod}: {logs}");
    assert!(logs.contains("Operation not permitted") && !logs.contains("unshare allowed"), "{pod}: {logs}");
}

/// `pod` ran without a filter and could `unshare`.
fn assert_unfiltered(k: &Kubectl, pod: &str) {
    let (status, logs) = finished(k, pod);
    assert_eq!(status, "Completed", "{pod}: {logs}");
    assert!(logs.contains("Seccomp:\t0") && logs.contains("unshare allowed"), "{pod}: {logs}");
}

/// `pod` waits with CreateContainerConfigError, the message and event name `needle`, and its
/// container never started (no attempt was recorded on the node).
fn assert_refused(server: &Server, k: &Kubectl, pod: &str, needle: &str) {
    let waiting = "{.status.containerStatuses[0].state.waiting.reason}";
    let reason = || k.run(&["get", "pod", pod, "-o", &format!("jsonpath={waiting}")]).stdout;
    assert!(
        eventually(WAIT, || reason() == "CreateContainerConfigError"),
        "{pod}: {}\n{}",
        k.run(&["describe", "pod", pod]).stdout,
        server.log()
    );
    assert_eq!(status_of(k, pod), "CreateContainerConfigError");
    let message =
        k.run(&["get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}"]).stdout;
    assert!(message.contains(needle), "{pod}: {message}");
    let describe = k.run(&["describe", "pod", pod]).stdout;
    assert!(describe.contains("CreateContainerConfigError"), "{describe}");
    assert!(eventually(WAIT, || k.run(&["describe", "pod", pod]).stdout.contains(needle)), "{describe}");
    assert!(describe.contains("Failed"), "no Failed event: {describe}");
    let uid = k.run(&["get", "pod", pod, "-o", "jsonpath={.metadata.uid}"]).stdout;
    let attempts = server.data_dir().join("pods").join(uid.trim()).join("containers/c");
    let started = std::fs::read_dir(&attempts)
        .map(|d| d.flatten().any(|a| a.path().join("started.json").exists()))
        .unwrap_or(false);
    assert!(!started, "{pod}: a container ran");
    assert!(k.run(&["logs", pod]).stdout.is_empty());
}

#[test]
fn seccomp_profiles_filter_pods_and_build_steps() {
    let server = Server::with_node(NET, prepare);
    let k = server.kubectl("1.32");
    let apply = |yaml: String| {
        k.run_stdin(&["apply", "-f", "-"], &yaml).ok();
    };
    // The node's default (RuntimeDefault) and the profile types, at container and pod level.
    apply(pod("default", "", "", PROBE));
    apply(pod("unconfined", "", &profile("Unconfined"), PROBE));
    apply(pod("pod-unconfined", &profile("Unconfined"), "", PROBE));
    apply(pod("container-wins", &profile("Unconfined"), &profile("RuntimeDefault"), PROBE));
    apply(pod("allow-all", "", &localhost("profiles/allow-all.json"), &format!("{PROBE}; mkdir /made && echo made")));
    apply(pod("pod-localhost", &localhost("profiles/no-mkdir.json"), "", "mkdir /made; grep Seccomp: /proc/1/status"));
    apply(pod("privileged", "", "privileged: true\nseccompProfile:\n  type: RuntimeDefault", PROBE));
    apply(pod("missing", "", &localhost("profiles/missing.json"), "echo ran"));
    apply(pod("broken", "", &localhost("profiles/broken.json"), "echo ran"));
    let escape = k.run_stdin(&["apply", "-f", "-"], &pod("escape", "", &localhost("../escape.json"), "echo ran"));

    assert_filtered(&k, "default");
    assert_filtered(&k, "container-wins");
    assert_unfiltered(&k, "unconfined");
    assert_unfiltered(&k, "pod-unconfined");
    assert_unfiltered(&k, "privileged");
    // A Localhost profile that allows everything: filtered (mode 2), yet unshare and mkdir work.
    let (status, logs) = finished(&k, "allow-all");
    assert_eq!(status, "Completed", "{logs}");
    assert!(logs.contains("Seccomp:\t2") && logs.contains("unshare allowed") && logs.contains("made"), "{logs}");
    // The pod's Localhost profile in Docker format, inherited by the container.
    let (_, logs) = finished(&k, "pod-localhost");
    assert!(logs.contains("Permission denied") && logs.contains("Seccomp:\t2"), "{logs}");

    let data = server.data_dir().display().to_string();
    let missing = format!("cannot load seccomp profile \"{data}/seccomp/profiles/missing.json\": No such file");
    assert_refused(&server, &k, "missing", &missing);
    assert_refused(
        &server,
        &k,
        "broken",
        &format!("cannot parse seccomp profile \"{data}/seccomp/profiles/broken.json\""),
    );
    // A name that climbs out is refused by the API server, with upstream's words (the node refuses
    // it too: unit-tested in skiff-node's seccomp module).
    assert_ne!(escape.code, 0);
    assert!(
        escape.stderr.contains("localhostProfile: Invalid value: \"../escape.json\": must not contain '..'"),
        "{}",
        escape.stderr
    );

    // kubectl exec runs under the container's filter too.
    apply(pod("sleeper", "", "", "trap 'exit 0' TERM; sleep 60 & wait"));
    assert!(
        eventually(WAIT, || status_of(&k, "sleeper") == "Running"),
        "{}",
        k.run(&["describe", "pod", "sleeper"]).stdout
    );
    let exec = k.run(&["exec", "sleeper", "--", "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true"]);
    let filtered = exec.stdout.contains("Seccomp:\t2") && exec.stderr.contains("Operation not permitted");
    assert!(filtered && exec.code != 0, "exec: {} {}", exec.stdout, exec.stderr);

    // `skiff build`: RUN steps get the default profile, as with docker build.
    let ctx = tempfile::tempdir().expect("tempdir");
    let dockerfile =
        "FROM busybox:1.36\nRUN grep 'Seccomp:.2' /proc/self/status && ! unshare -U true && echo filtered > /run.txt\n";
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    let (code, _, err) = skiff(server.data_dir(), &["build", "-t", "filtered:1", ctx.path().to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    drop(server);

    // Without --seccomp-default, a container that names no profile runs unfiltered; one that asks
    // for RuntimeDefault still gets it.
    let server = Server::with_node_args(NET, &["--seccomp-default=false"], prepare);
    let k = server.kubectl("1.32");
    k.run_stdin(&["apply", "-f", "-"], &pod("default", "", "", PROBE)).ok();
    k.run_stdin(&["apply", "-f", "-"], &pod("asked", "", &profile("RuntimeDefault"), PROBE)).ok();
    assert_unfiltered(&k, "default");
    assert_filtered(&k, "asked");
}
