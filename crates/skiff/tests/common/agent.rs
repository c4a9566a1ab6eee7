//! A second node for end-to-end tests: a `skiff agent` process joining a test's server.

use super::{Kubectl, Server, eventually};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A `skiff agent` on its own data directory, bridge and subnet: another node of the cluster.
/// On drop its pods are deleted (the agent cleans up their containers) before it stops.
pub struct Agent {
    child: Child,
    kubectl: Kubectl,
    dir: tempfile::TempDir,
}

impl Agent {
    /// Start node `name` (bridge `skf{net}`, pods in 10.151.{net}.0/24) serving its endpoint on
    /// loopback port `endpoint`; `prepare` fills its data directory first (its images).
    pub fn start(server: &Server, name: &str, net: u8, endpoint: u16, prepare: impl FnOnce(&Path)) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path());
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("agent")
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .args(["--endpoint", &format!("127.0.0.1:{endpoint}"), "--node-name", name])
            .args(["--pod-cidr", &format!("10.151.{net}.0/24"), "--bridge", &format!("skf{net}")])
            // Its own DNS address: the test's server node binds its own on this machine too.
            .args(["--cluster-dns", &format!("10.152.{net}.10")])
            // The server's node proxies Services; this one would only leave a table behind.
            .arg("--disable-service-proxy")
            .arg("--disable-ingress")
            .arg("--disable-network-policy")
            .arg("--disable-outbound-nat")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("skiff agent");
        let kubectl = server.kubectl("1.32");
        let ready = eventually(WAIT, || {
            kubectl.run(&["get", "node", name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]).stdout
                == "True"
        });
        let agent = Agent { child, kubectl, dir };
        assert!(ready, "the agent never registered: {}", agent.log());
        agent
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.kubectl.run(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
        let pods = self.dir.path().join("pods");
        eventually(WAIT, || std::fs::read_dir(&pods).map(|d| d.count() == 0).unwrap_or(true));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
