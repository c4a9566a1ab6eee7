//! The socket-level balancer for real (root): its programs attached to a cgroup this test makes,
//! a process in that cgroup and in a network namespace of its own (only `lo`, so a connect that
//! is not rewritten cannot leave it) connecting to a made-up cluster IP that the maps send to
//! listeners on the namespace's loopback.

use skiff_node::net::proxy::model::{Port, Protocol, Target};
use skiff_node::net::proxy::socket_lb::SocketLb;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A cgroup v2 directory, removed (empty by then) on drop.
struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn port(cluster_ip: &str, port: u16, backends: &[u16]) -> Port {
    Port {
        id: format!("default/web/tcp/{port}"),
        protocol: Protocol::Tcp,
        cluster_ip: Some(cluster_ip.parse().expect("an address")),
        port,
        node_port: None,
        external_ips: vec![],
        source_ranges: vec![],
        load_balancer_ips: vec![],
        internal: backends.iter().map(|p| Target { ip: [127, 0, 0, 1].into(), port: *p, local: true }).collect(),
        internal_local: false,
        external: vec![],
        external_local: false,
        has_endpoints: true,
        affinity: None,
    }
}

/// The client: listens on two loopback ports and prints them, then per line read (`HOST PORT
/// N`) connects N times and prints, per connection, which listener accepted it and what
/// getpeername said, or the connect's error.
const CLIENT: &str = r#"
import socket, sys
listeners = []
for _ in range(2):
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64); listeners.append(l)
print(" ".join(str(l.getsockname()[1]) for l in listeners), flush=True)
for line in sys.stdin:
    host, port, n = line.split()
    out = []
    for _ in range(int(n)):
        try:
            c = socket.create_connection((host, int(port)), timeout=2)
            peer = "%s:%d" % c.getpeername()
            c.sendall(b"x")
            hit = None
            for i, l in enumerate(listeners):
                l.setblocking(False)
                try:
                    a, _ = l.accept(); a.close(); hit = i
                except BlockingIOError:
                    pass
            out.append("%s@%s" % (hit, peer))
            c.close()
        except OSError as e:
            out.append("error:%s" % e.errno)
    print(" ".join(out), flush=True)
"#;

#[test]
fn connects_to_a_cluster_ip_go_straight_to_an_endpoint() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    let root = skiff_node::net::bpf::cgroup2_mount(&mounts).expect("a cgroup v2 mount");
    let cgroup = Cgroup(root.join(format!("skiff-test-socket-lb-{}", std::process::id())));
    std::fs::create_dir_all(&cgroup.0).expect("cgroup");
    let mut lb = SocketLb::attach_to(&cgroup.0).expect("programs attached");

    // The child joins the cgroup, then a network namespace of its own with only loopback.
    let procs = cgroup.0.join("cgroup.procs");
    let script = format!(
        "echo $$ > {} && exec unshare -n sh -c 'ip link set lo up && exec python3 -c \"$0\"' '{}'",
        procs.display(),
        CLIENT.replace('\'', "'\\''")
    );
    let mut child =
        Command::new("sh").args(["-c", &script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("client");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = lines.next().expect("listeners").expect("a line");
    let ports: Vec<u16> = listening.split_whitespace().map(|p| p.parse().expect("a port")).collect();
    let mut ask = |host: &str, port: u16, n: usize| -> Vec<String> {
        writeln!(stdin, "{host} {port} {n}").expect("asked");
        lines.next().expect("answer").expect("a line").split_whitespace().map(String::from).collect()
    };

    // Nothing in the maps: not rewritten, and nowhere to go from this namespace.
    assert!(ask("10.254.77.1", 80, 1)[0].starts_with("error:"), "no rewrite without an entry");

    lb.update(&[port("10.254.77.1", 80, &ports)]).expect("update");
    let answers = ask("10.254.77.1", 80, 40);
    assert!(answers.iter().all(|a| a.ends_with("@10.254.77.1:80")), "getpeername answers the cluster IP: {answers:?}");
    for listener in ["0@", "1@"] {
        assert!(answers.iter().any(|a| a.starts_with(listener)), "both endpoints get connections: {answers:?}");
    }
    // Another port of the same address has no entry.
    assert!(ask("10.254.77.1", 81, 1)[0].starts_with("error:"));

    // One endpoint left: every connection goes to it.
    lb.update(&[port("10.254.77.1", 80, &ports[1..])]).expect("update");
    assert!(ask("10.254.77.1", 80, 10).iter().all(|a| a.starts_with("1@")));

    // Gone: not rewritten any more.
    lb.update(&[]).expect("update");
    assert!(ask("10.254.77.1", 80, 1)[0].starts_with("error:"));

    drop(stdin);
    assert!(child.wait().expect("client exits").success());
}
