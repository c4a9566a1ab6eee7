//! Failed pulls on a real node, as a user sees them with kubectl 1.32: containerd's wording (one
//! line per endpoint when mirrors were tried), and repeats aggregated into one event with a count
//! (`(x3 over 30s)` in `kubectl describe`), as the kubelet's event recorder does.
//! Every registry here is on loopback: no packet leaves the machine.

mod common;

use common::registry::{Registry, free_port};
use common::{Kubectl, Server, busybox_rootfs, eventually, skiff};
use serde_json::Value;
use std::time::Duration;

const NET: u8 = 41;

fn pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    image: {image}\n"
    )
}

fn events_of(k: &Kubectl, pod: &str) -> Vec<Value> {
    let out = k.run(&["get", "events", "-o", "json", "--field-selector", &format!("involvedObject.name={pod}")]).ok();
    let list: Value = serde_json::from_str(&out).expect("events JSON");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The Event objects of `pod` whose message starts with `prefix`.
fn failed_pull_events(k: &Kubectl, pod: &str) -> Vec<Value> {
    events_of(k, pod)
        .into_iter()
        .filter(|e| {
            e["reason"] == "Failed" && e["message"].as_str().is_some_and(|m| m.starts_with("Failed to pull image"))
        })
        .collect()
}

#[test]
fn failed_pulls_read_like_containerd_and_repeats_are_one_event_with_a_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, tar) = busybox_rootfs(dir.path());
    let registry = Registry::start(None);
    let h = registry.host.clone();
    let dead = format!("127.0.0.1:{}", free_port());
    let server = Server::with_node(NET, |d| {
        // `spring-server` exists locally (the tutorial's case), but its policy makes the node pull.
        let (code, _, err) = skiff(d, &["import", tar.to_str().expect("utf8"), "spring-server"]);
        assert_eq!(code, 0, "{err}");
        // docker.io: the real registry (which lacks the image), then a closed port. The loopback
        // registry itself has no entry: it is plain HTTP by default.
        std::fs::write(
            d.join("registries.yaml"),
            format!(
                "mirrors:\n  docker.io:\n    endpoint: [\"http://{h}\", \"http://{dead}\"]\ndisable-default-endpoint: true\n"
            ),
        )
        .expect("registries.yaml");
    });
    let k = server.kubectl("1.32");
    let missing = format!("{h}/nothere/app:1");
    k.run_stdin(&["apply", "-f", "-"], &pod("missing", &missing)).ok();
    k.run_stdin(&["apply", "-f", "-"], &pod("spring", "spring-server")).ok();
    let describe = |p: &str| k.run(&["describe", "pod", p]).stdout;

    // One endpoint: containerd's one line.
    let waiting = |p: &str| {
        k.run(&["get", "pod", p, "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}"]).stdout
    };
    assert!(
        eventually(Duration::from_secs(60), || waiting("missing").contains("not found")),
        "{}",
        describe("missing")
    );
    let expected = format!(
        "Failed to pull image {missing:?}: failed to pull and unpack image {missing:?}: failed to resolve reference {missing:?}: {missing}: not found"
    );
    let message = waiting("missing");
    assert!(message == expected || message.ends_with(&format!("ErrImagePull: {expected}")), "{message}");

    // Two mirrors: a line for each, then the note about the local image.
    assert!(
        eventually(Duration::from_secs(60), || !failed_pull_events(&k, "spring").is_empty()),
        "{}",
        describe("spring")
    );
    let spring = failed_pull_events(&k, "spring")[0]["message"].as_str().unwrap_or_default().to_string();
    let r = "docker.io/library/spring-server:latest";
    let lines: Vec<&str> = spring.lines().collect();
    assert_eq!(lines.len(), 4, "{spring}");
    assert_eq!(
        lines[0],
        format!("Failed to pull image \"spring-server\": failed to pull and unpack image {r:?}: tried 2 endpoints:")
    );
    assert_eq!(lines[1], format!("  http://{h} (mirror): failed to resolve reference {r:?}: {r}: not found"));
    assert_eq!(
        lines[2],
        format!(
            "  http://{dead} (mirror): failed to resolve reference {r:?}: dial tcp {dead}: connect: connection refused"
        )
    );
    assert!(lines[3].starts_with("Note: \"spring-server\" exists in this node's local image store"), "{spring}");

    // Repeats: the back-off starts at 10 s, so the third attempt comes ~30 s in.
    let counted = || {
        let events = failed_pull_events(&k, "missing");
        events.len() == 1 && events[0]["count"].as_i64().unwrap_or(0) >= 3
    };
    assert!(eventually(Duration::from_secs(90), counted), "{:#?}", failed_pull_events(&k, "missing"));
    let event = &failed_pull_events(&k, "missing")[0];
    assert_ne!(event["firstTimestamp"], event["lastTimestamp"], "{event:#}");
    let all = events_of(&k, "missing");
    let errimagepull: Vec<&Value> = all.iter().filter(|e| e["message"] == "Error: ErrImagePull").collect();
    assert_eq!(errimagepull.len(), 1, "{all:#?}");
    assert!(errimagepull[0]["count"].as_i64().unwrap_or(0) >= 2, "{all:#?}");

    // kubectl describe: one line per event, with its count and span.
    let text = describe("missing");
    let pull_lines: Vec<&str> = text.lines().filter(|l| l.contains("Failed to pull image")).collect();
    assert_eq!(pull_lines.len(), 1, "{text}");
    assert!(pull_lines[0].contains("Warning  Failed"), "{text}");
    assert!(pull_lines[0].contains(" (x") && pull_lines[0].contains(" over "), "{text}");
    let pulling: Vec<&str> = text.lines().filter(|l| l.contains("Pulling image")).collect();
    assert_eq!(pulling.len(), 1, "{text}");
    assert!(pulling[0].contains(" (x"), "{text}");
    eprintln!("{text}\n{}", describe("spring"));
}
