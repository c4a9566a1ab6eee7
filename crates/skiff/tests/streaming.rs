//! Streaming subresources with the real kubectl (root: real pods): `kubectl port-forward` over
//! SPDY with 1.27 and 1.29, and with 1.32, which tries a WebSocket tunnel first and falls back.
//! Traffic goes only to loopback and to the pods these tests create.

mod common;

use common::agent::Agent;
use common::terminal::{Terminal, shell_line};
use common::{KUBECTL_VERSIONS, Kubectl, Server, busybox_rootfs, eventually, skiff};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// Served by the pod: big enough to cross many frames and queues.
const BIG: usize = 24 * 1024 * 1024;

fn big_file() -> Vec<u8> {
    (0..BIG).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// busybox with a page and a big file under /www, httpd on :80 and another on the pod's
/// 127.0.0.1:8081 only.
fn image(data: &Path) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, _) = busybox_rootfs(tmp.path());
    std::fs::create_dir_all(root.join("www")).expect("www");
    std::fs::write(root.join("www/index.html"), "hello through port-forward\n").expect("page");
    std::fs::write(root.join("www/big.bin"), big_file()).expect("big");
    // `kubectl cp` runs tar in the container, as upstream; the rest serve the tests below.
    for applet in ["tar", "md5sum", "nc", "mkfifo", "dd", "tee", "head", "true", "clear"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("applet link");
    }
    std::fs::create_dir_all(root.join("tmp")).expect("tmp");
    let tar = tmp.path().join("web.tar");
    let ok = std::process::Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status();
    assert!(ok.expect("tar").success());
    let cmd =
        r#"CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /www & httpd -f -p 127.0.0.1:8081 -h /www & wait"]"#;
    let (code, _, err) = skiff(data, &["import", "-c", cmd, tar.to_str().expect("utf8"), "web:1"]);
    assert_eq!(code, 0, "{err}");
}

/// GET `path` from 127.0.0.1:`port`: the whole response (headers and body).
fn get(port: u16, path: &str) -> Option<Vec<u8>> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(out)
}

/// The MD5 of a file, by coreutils' `md5sum`.
fn md5_of(path: &Path) -> String {
    let out = std::process::Command::new("md5sum").arg(path).output().expect("md5sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

fn body(response: &[u8]) -> &[u8] {
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
    &response[at..]
}

/// Run the pod `web` from the image above and wait until it runs.
fn run_web_pod(k: &Kubectl) {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: web:1\n    imagePullPolicy: Never\n";
    k.run_stdin(&["apply", "-f", "-"], pod).ok();
    assert!(eventually(WAIT, || k.run(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]).stdout == "Running"));
}

struct Forward(Child);

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kubectl port-forward ARGS...` in the background, stopped on drop.
fn port_forward(kv: &Kubectl, args: &[&str]) -> Forward {
    let mut all = vec!["port-forward"];
    all.extend_from_slice(args);
    let child = kv.command(&all).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    Forward(child.expect("kubectl port-forward"))
}

#[test]
fn port_forward_with_every_kubectl() {
    let server = Server::with_node(7, image);
    let k = server.kubectl("1.32");
    run_web_pod(&k);
    let expected = big_file();

    for version in KUBECTL_VERSIONS {
        let kv = server.kubectl(version);
        let (p80, p8081, closed) =
            (common::registry::free_port(), common::registry::free_port(), common::registry::free_port());
        let ports = [format!("{p80}:80"), format!("{p8081}:8081")];
        let fwd = kv
            .command(&["port-forward", "pod/web", &ports[0], &ports[1]])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl port-forward");
        let fwd = Forward(fwd);
        assert!(
            eventually(WAIT, || get(p80, "/").is_some_and(|r| body(&r) == b"hello through port-forward\n")),
            "kubectl {version}: nothing through port-forward"
        );
        // A port bound only to the pod's own 127.0.0.1 is reachable, as upstream.
        let local = get(p8081, "/").unwrap_or_default();
        assert_eq!(body(&local), b"hello through port-forward\n", "kubectl {version}");
        // Several connections at once, each with the big file intact.
        let downloads: Vec<_> = (0..4).map(|_| std::thread::spawn(move || get(p80, "/big.bin"))).collect();
        for d in downloads {
            let got = d.join().expect("thread").unwrap_or_default();
            assert!(body(&got) == expected, "kubectl {version}: the big file arrived damaged ({} bytes)", got.len());
        }
        drop(fwd);

        // A port with nothing listening: the error reaches kubectl, which ends the session.
        let mut failing = kv
            .command(&["port-forward", "pod/web", &format!("{closed}:9999")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl port-forward");
        let tried = eventually(WAIT, || std::net::TcpStream::connect(("127.0.0.1", closed)).is_ok());
        assert!(tried, "kubectl {version}: the local port never opened");
        let _ = get(closed, "/");
        let finished = eventually(WAIT, || failing.try_wait().ok().flatten().is_some());
        let mut stderr = String::new();
        if let Some(mut e) = failing.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let _ = failing.kill();
        let _ = failing.wait();
        assert!(finished, "kubectl {version} kept running after the error");
        assert!(stderr.contains("error forwarding port 9999 to pod web"), "kubectl {version}: {stderr}");
    }
}

#[test]
fn exec_with_every_kubectl() {
    let server = Server::with_node(8, image);
    let k = server.kubectl("1.32");
    let pods = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: web:1\n    imagePullPolicy: Never\n    env:\n    - name: GREETING\n      value: hello from the pod env\n    workingDir: /www\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: done\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: web:1\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"exit 0\"]\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: user\nspec:\n  terminationGracePeriodSeconds: 1\n  securityContext:\n    runAsUser: 1000\n  containers:\n  - name: c\n    image: web:1\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 1000 & wait\"]\n";
    k.run_stdin(&["apply", "-f", "-"], pods).ok();
    let phase = |p: &str| k.run(&["get", "pod", p, "-o", "jsonpath={.status.phase}"]).stdout;
    assert!(eventually(WAIT, || phase("web") == "Running"
        && phase("done") == "Succeeded"
        && phase("user") == "Running"));
    let expected = big_file();
    let sum = |b: &[u8]| b.iter().fold(0u64, |a, x| a.wrapping_mul(31).wrapping_add(u64::from(*x)));
    let scratch = tempfile::tempdir().expect("tempdir");
    let local_big = scratch.path().join("big.bin");
    std::fs::write(&local_big, &expected).expect("write");
    let expected_md5 = md5_of(&local_big);

    for version in KUBECTL_VERSIONS {
        let kv = server.kubectl(version);
        // Output on both streams, the container's env and working directory, and the exit code.
        let r = kv.run(&["exec", "web", "--", "sh", "-c", "echo $GREETING in $(pwd); echo oops >&2; exit 3"]);
        assert_eq!(r.code, 3, "kubectl {version}: {}", r.stderr);
        assert_eq!(kv.run(&["exec", "web", "--", "sh", "-c", "exit 7"]).code, 7, "kubectl {version}");
        assert_eq!(r.stdout, "hello from the pod env in /www\n", "kubectl {version}");
        assert!(r.stderr.contains("oops") && r.stderr.contains("command terminated with exit code 3"), "{}", r.stderr);
        // 1.30+ speak WebSocket (v5.channel.k8s.io) first: no fallback to a SPDY POST is needed.
        if *version == "1.32" {
            let verbose = kv.run(&["exec", "web", "-v=6", "--", "true"]);
            assert!(verbose.stderr.contains("GET") && !verbose.stderr.contains("POST"), "{}", verbose.stderr);
        }
        // stdin piped in, and a big output that arrives intact.
        let echoed = kv.run_stdin(&["exec", "-i", "web", "--", "cat"], "typed into stdin\n").ok();
        assert_eq!(echoed, "typed into stdin\n", "kubectl {version}");
        let mut md5 = kv.command(&["exec", "-i", "web", "--", "md5sum"]);
        let md5 = md5.stdin(std::fs::File::open(&local_big).expect("big file")).output().expect("kubectl exec");
        assert_eq!(String::from_utf8_lossy(&md5.stdout), format!("{expected_md5}  -\n"), "kubectl {version}");
        // More than 50 MB of output, intact.
        let three = ["exec", "web", "--", "cat", "/www/big.bin", "/www/big.bin", "/www/big.bin"];
        let big = kv.command(&three).output().expect("kubectl exec");
        assert!(big.status.success(), "kubectl {version}");
        let intact = big.stdout.len() == 3 * BIG && big.stdout.chunks(BIG).all(|c| sum(c) == sum(&expected));
        assert!(intact, "kubectl {version}: big output damaged ({} bytes)", big.stdout.len());
        // kubectl cp both ways (tar over exec).
        let local = tempfile::tempdir().expect("tempdir");
        let up = local.path().join("up.bin");
        std::fs::write(&up, &expected[..3_000_000]).expect("write");
        let remote = format!("web:/tmp/up-{version}.bin");
        kv.run(&["cp", up.to_str().expect("utf8"), &remote]).ok();
        let down = local.path().join("down.bin");
        kv.run(&["cp", &remote, down.to_str().expect("utf8")]).ok();
        assert!(std::fs::read(&down).unwrap_or_default() == expected[..3_000_000], "kubectl {version}: cp damaged");
        // A missing binary: a clear message and 127, as a shell would say.
        let missing = kv.run(&["exec", "web", "--", "no-such-binary"]);
        assert_eq!(missing.code, 127, "kubectl {version}: {}", missing.stderr);
        assert!(missing.stderr.contains("no-such-binary"), "{}", missing.stderr);
        // The command runs as the container's user.
        assert_eq!(kv.run(&["exec", "user", "--", "sh", "-c", "id -u"]).ok(), "1000\n", "kubectl {version}");
        // A pod that is not running cannot be exec'd into (kubectl says so itself).
        assert_ne!(kv.run(&["exec", "done", "--", "true"]).code, 0, "kubectl {version}");
    }
}

#[test]
fn exec_it_in_a_real_terminal_with_every_kubectl() {
    let server = Server::with_node(9, image);
    let k = server.kubectl("1.32");
    run_web_pod(&k);
    for version in KUBECTL_VERSIONS {
        let kv = server.kubectl(version);
        let line = shell_line(&kv, "exec -it web -- sh; echo EXIT=$?; sleep 60");
        let term = Terminal::start(&format!("skiff-test-{}", version.replace('.', "")), &line, 100, 30);
        assert!(eventually(WAIT, || term.screen().contains("/ #")), "kubectl {version}: no prompt\n{}", term.screen());
        term.keys("echo $((6*7))");
        assert!(eventually(WAIT, || term.screen().lines().any(|l| l.trim() == "42")), "{}", term.screen());
        // A terminal type as containerd gives one, and `clear` clears the screen.
        term.keys("echo TERM=$TERM HOSTNAME=$HOSTNAME");
        assert!(eventually(WAIT, || term.screen().contains("TERM=xterm HOSTNAME=web")), "{}", term.screen());
        term.keys("clear; echo CLEARED");
        assert!(
            eventually(WAIT, || !term.screen().contains("TERM=xterm") && term.screen().contains("CLEARED")),
            "kubectl {version}: clear left {}",
            term.screen()
        );
        term.keys("stty size");
        assert!(eventually(WAIT, || term.screen().contains("30 100")), "kubectl {version}: {}", term.screen());
        term.resize(120, 40);
        std::thread::sleep(Duration::from_millis(300));
        term.keys("stty size");
        assert!(eventually(WAIT, || term.screen().contains("40 120")), "kubectl {version}: {}", term.screen());
        // The terminal is the shell's controlling terminal: job control, and Ctrl-C stops the
        // foreground command (not the session).
        term.keys("sleep 1001");
        assert!(eventually(WAIT, || processes(&["sleep", "1001"]) == 1), "kubectl {version}: {}", term.screen());
        term.interrupt();
        term.keys("echo INTERRUPTED=$?");
        let interrupted = eventually(WAIT, || term.screen().contains("INTERRUPTED=130"));
        assert!(interrupted, "kubectl {version}: Ctrl-C did not reach the command\n{}", term.screen());
        assert!(!term.screen().contains("can't access tty"), "kubectl {version}: {}", term.screen());
        term.keys("exit 3");
        assert!(eventually(WAIT, || term.screen().contains("EXIT=3")), "kubectl {version}: {}", term.screen());
        drop(term);
        // A missing binary on a terminal: the runtime's message on the screen, and 127.
        let missing = shell_line(&kv, "exec -it web -- no-such-binary; echo MISSING=$?; sleep 60");
        let term = Terminal::start(&format!("skiff-test-{}", version.replace('.', "")), &missing, 100, 30);
        assert!(eventually(WAIT, || term.screen().contains("MISSING=127")), "kubectl {version}: {}", term.screen());
        assert!(term.screen().contains("no-such-binary"), "kubectl {version}: {}", term.screen());
    }
}

#[test]
fn kube_rs_exec_and_port_forward() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::with_node(10, image);
    let k = server.kubectl("1.32");
    run_web_pod(&k);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("config");
        let pods: Api<Pod> = Api::default_namespaced(kube::Client::try_from(config).expect("client"));

        // exec over WebSocket: output, stdin, and the exit code in the status.
        let params = AttachParams::default().stdin(true).stdout(true).stderr(false);
        let mut run = pods.exec("web", ["sh", "-c", "cat; exit 3"], &params).await.expect("exec");
        let mut stdin = run.stdin().expect("stdin");
        stdin.write_all(b"from kube-rs\n").await.expect("write");
        // The end of stdin (kube-rs sends v5's close signal on shutdown).
        stdin.shutdown().await.expect("close stdin");
        let mut out = String::new();
        run.stdout().expect("stdout").read_to_string(&mut out).await.expect("read");
        assert_eq!(out, "from kube-rs\n");
        let status = run.take_status().expect("status").await.expect("a status");
        assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"), "{status:?}");
        let code = status.details.and_then(|d| d.causes).and_then(|c| c.first().and_then(|c| c.message.clone()));
        assert_eq!(code.as_deref(), Some("3"));

        // port-forward over the WebSocket channel protocol.
        let mut pf = pods.portforward("web", &[80]).await.expect("portforward");
        let mut conn = pf.take_stream(80).expect("stream");
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.expect("request");
        let mut response = Vec::new();
        conn.read_to_end(&mut response).await.expect("response");
        assert!(String::from_utf8_lossy(&response).contains("hello through port-forward"));
    });
}

#[test]
fn python_client_exec_and_port_forward() {
    let server = Server::with_node(11, image);
    let k = server.kubectl("1.32");
    run_web_pod(&k);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_stream.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(server.kubeconfig())
        .arg("web")
        .output()
        .expect("python3 with the `kubernetes` package (pip install kubernetes)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("exec ok") && text.contains("port-forward ok"), "{text}");
    for protocol in ["v4.base64.channel.k8s.io", "base64.channel.k8s.io", "channel.k8s.io"] {
        assert!(text.contains(&format!("exec over {protocol} ok")), "{text}");
    }
    assert!(text.contains("port-forward over v4.base64.channel.k8s.io ok"), "{text}");

    // A WebSocket client that never reads an endless output: the server's memory stays bounded,
    // and when the client goes the command goes too.
    let mut stalled = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_stream.py"))
        .arg(server.kubeconfig())
        .arg("web")
        .arg("stall")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    // The whole line: the reader closes the pipe once it has it, and Python must not be writing then.
    let said = read_until(stalled.stdout.take().expect("stdout"), "STALLED\n").recv_timeout(WAIT).unwrap_or_default();
    assert!(said.contains("STALLED"), "{said}");
    assert!(
        eventually(WAIT, || processes(&["head", "-c", "999999999999", "/dev/zero"]) == 1),
        "the endless command never ran"
    );
    std::thread::sleep(Duration::from_secs(2));
    let before = rss(server.pid());
    std::thread::sleep(Duration::from_secs(3));
    let grown = rss(server.pid()).saturating_sub(before);
    assert!(grown < 16 << 20, "the server grew by {} MB behind a client that does not read", grown >> 20);
    stalled.stdin.as_mut().expect("stdin").write_all(b"close\n").expect("tell python");
    let _ = stalled.wait();
    assert!(
        eventually(WAIT, || processes(&["head", "-c", "999999999999", "/dev/zero"]) == 0),
        "the command outlived its client"
    );
}

/// How many processes run exactly `argv`.
fn processes(argv: &[&str]) -> usize {
    let wanted: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.flatten().filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == wanted)).count()
}

/// A gauge of the server's `/metrics`.
fn gauge(k: &Kubectl, name: &str) -> u64 {
    let text = k.run(&["get", "--raw", "/metrics"]).ok();
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(u64::MAX)
}

/// Clients killed mid-session (exec with and without stdin, exec -it, attach, port-forward with
/// an open connection; over SPDY and WebSocket) leave no command running in the pod and no file or task
/// in the server, and a session that was open all along keeps working.
#[test]
fn clients_that_vanish_leave_nothing_behind() {
    let server = Server::with_node(12, image);
    let k = server.kubectl("1.32");
    run_web_pod(&k);
    let bystander_port = common::registry::free_port();
    let _bystander = port_forward(&k, &["pod/web", &format!("{bystander_port}:80")]);
    assert!(eventually(WAIT, || get(bystander_port, "/").is_some()), "the bystander port-forward never worked");
    k.run(&["exec", "web", "--", "sleep", "0"]).ok();
    let settled = |fds: u64, tasks: u64| {
        eventually(WAIT, || gauge(&k, "process_open_fds") <= fds && gauge(&k, "skiff_runtime_alive_tasks") <= tasks)
    };
    // The figures at rest, once the connections of earlier kubectl runs are gone.
    std::thread::sleep(Duration::from_secs(1));
    let (fds, tasks) = (gauge(&k, "process_open_fds"), gauge(&k, "skiff_runtime_alive_tasks"));
    assert!(fds < u64::MAX && tasks < u64::MAX, "no /metrics");

    for (n, version) in ["1.27", "1.32"].into_iter().enumerate() {
        let kv = server.kubectl(version);
        for (m, flags) in [&["exec"][..], &["exec", "-i"], &["exec", "-it"]].into_iter().enumerate() {
            let seconds = format!("{}", 4100 + n * 10 + m);
            let mut args = flags.to_vec();
            args.extend(["web", "--", "sleep", &seconds]);
            // A TTY needs a terminal: kubectl runs in tmux, and the session is killed with it.
            let (mut client, term) = if m == 2 {
                let line = shell_line(&kv, &args.join(" "));
                (None, Some(Terminal::start(&format!("skiff-vanish-{n}"), &line, 80, 24)))
            } else {
                let mut cmd = kv.command(&args);
                cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
                (Some(cmd.spawn().expect("kubectl exec")), None)
            };
            let running = eventually(WAIT, || processes(&["sleep", &seconds]) == 1);
            if let Some(c) = client.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            drop(term);
            assert!(running, "kubectl {version} {flags:?}: the command never ran");
            assert!(
                eventually(WAIT, || processes(&["sleep", &seconds]) == 0),
                "kubectl {version} {flags:?}: the command outlived its client"
            );
        }
        // An attach session killed while it streams.
        let mut attach = kv.command(&["attach", "web"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let attached = eventually(WAIT, || gauge(&k, "process_open_fds") > fds);
        if let Ok(a) = attach.as_mut() {
            let _ = a.kill();
            let _ = a.wait();
        }
        assert!(attached, "kubectl {version}: attach never connected");
        assert!(settled(fds, tasks), "kubectl {version}: attach left files or tasks behind in the server");
        // A port-forward killed while a connection through it is open.
        let port = common::registry::free_port();
        let mut fwd = kv
            .command(&["port-forward", "pod/web", &format!("{port}:80")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl port-forward");
        let mut open = None;
        let connected = eventually(WAIT, || {
            open = std::net::TcpStream::connect(("127.0.0.1", port)).ok();
            open.as_mut().is_some_and(|s| s.write_all(b"GET / HTTP/1.0\r\n").is_ok())
        });
        // The connection reaches the pod (the server holds more files) before kubectl dies.
        let reached = eventually(WAIT, || gauge(&k, "process_open_fds") > fds);
        let _ = fwd.kill();
        let _ = fwd.wait();
        drop(open);
        assert!(connected && reached, "kubectl {version}: the port-forward never carried a connection");
        assert!(settled(fds, tasks), "kubectl {version}: files or tasks left behind in the server");
    }
    assert!(get(bystander_port, "/").is_some_and(|r| body(&r) == b"hello through port-forward\n"));
    assert!(settled(fds, tasks), "files or tasks left behind in the server");
    assert!(eventually(WAIT, || exec_helpers() == 0), "exec helpers left running");
}

/// How many `container-exec` helpers run.
fn exec_helpers() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let helper = |c: Vec<u8>| c.split(|b| *b == 0).nth(1) == Some(b"container-exec".as_slice());
    dir.flatten().filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(helper)).count()
}

/// Read from `from` (in a thread) until the text has `needle`, for at most `WAIT`; the text so far.
fn read_until(from: impl Read + Send + 'static, needle: &str) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_string();
    std::thread::spawn(move || {
        let mut from = from;
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&text).contains(&needle) {
                break;
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&text).into_owned());
    });
    rx
}

/// `kubectl attach` with every kubectl: stdout and stderr of the main process from then on,
/// stdin into it (`stdin: true`, kept across sessions; closed after the first with
/// `stdinOnce`), a terminal (`tty: true`) with `-it` in tmux, and a clear refusal for a
/// container that is not running.
#[test]
fn attach_with_every_kubectl() {
    let server = Server::with_node(13, image);
    let k = server.kubectl("1.32");
    let pod = |name: &str, extra: &str, command: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: web:1\n    imagePullPolicy: Never\n{extra}    command: [\"sh\", \"-c\", {command:?}]\n---\n"
        )
    };
    let pods = [
        pod("echo", "    stdin: true\n", "while read line; do echo \"got $line\"; echo \"err $line\" >&2; done"),
        pod("ticker", "", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"),
        pod("once", "    stdin: true\n    stdinOnce: true\n", "cat; echo stdin closed"),
        pod("term", "    stdin: true\n    tty: true\n", "sh"),
        pod("done", "", "true"),
    ]
    .concat();
    k.run_stdin(&["apply", "-f", "-"], &pods).ok();
    let phase = |p: &str| k.run(&["get", "pod", p, "-o", "jsonpath={.status.phase}"]).stdout;
    let all_up = eventually(WAIT, || {
        ["echo", "ticker", "once", "term"].iter().all(|p| phase(p) == "Running") && phase("done") == "Succeeded"
    });
    assert!(all_up, "{}", k.run(&["get", "pods"]).stdout);

    for version in KUBECTL_VERSIONS {
        let kv = server.kubectl(version);
        // stdin in, stdout and stderr out; the container keeps its stdin after the session.
        let mut attach = kv
            .command(&["attach", "-i", "echo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl attach");
        let out = read_until(attach.stdout.take().expect("stdout"), &format!("got {version}"));
        let err = read_until(attach.stderr.take().expect("stderr"), &format!("err {version}"));
        let mut stdin = attach.stdin.take().expect("stdin");
        // The session must be set up before the line is typed: output is live, not replayed.
        std::thread::sleep(Duration::from_millis(500));
        stdin.write_all(format!("{version}\n").as_bytes()).expect("type");
        let (out, err) = (out.recv_timeout(WAIT).unwrap_or_default(), err.recv_timeout(WAIT).unwrap_or_default());
        let _ = attach.kill();
        let _ = attach.wait();
        assert!(out.contains(&format!("got {version}")), "kubectl {version}: stdout {out:?}");
        assert!(err.contains(&format!("err {version}")), "kubectl {version}: stderr {err:?}");

        // Output only: new lines keep coming.
        let mut watch =
            kv.command(&["attach", "ticker"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("attach");
        let ticks = read_until(watch.stdout.take().expect("stdout"), "tick");
        let ticks = ticks.recv_timeout(WAIT).unwrap_or_default();
        let _ = watch.kill();
        let _ = watch.wait();
        assert!(ticks.contains("tick "), "kubectl {version}: {ticks:?}");

        // A terminal: what is typed runs, the size is the client's, output is the terminal's.
        let line = shell_line(&kv, "attach -it term; sleep 60");
        let term = Terminal::start(&format!("skiff-attach-{}", version.replace('.', "")), &line, 90, 25);
        std::thread::sleep(Duration::from_millis(500));
        term.keys("echo $((6*7))");
        assert!(eventually(WAIT, || term.screen().lines().any(|l| l.trim() == "42")), "{}", term.screen());
        // A container with a terminal has TERM as containerd sets it.
        term.keys("echo TERM=$TERM HOSTNAME=$HOSTNAME");
        assert!(eventually(WAIT, || term.screen().contains("TERM=xterm HOSTNAME=term")), "{}", term.screen());
        term.keys("stty size");
        assert!(eventually(WAIT, || term.screen().contains("25 90")), "kubectl {version}: {}", term.screen());
        drop(term);

        // Nothing to attach to.
        let refused = kv.run(&["attach", "done"]);
        assert_ne!(refused.code, 0, "kubectl {version}");
    }
    // stdinOnce: the first session's end closes the container's stdin.
    let mut attach = k
        .command(&["attach", "-i", "once"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl attach");
    let out = read_until(attach.stdout.take().expect("stdout"), "typed once");
    std::thread::sleep(Duration::from_millis(500));
    attach.stdin.take().expect("stdin").write_all(b"typed once\n").expect("type");
    let out = out.recv_timeout(WAIT).unwrap_or_default();
    let _ = attach.kill();
    let _ = attach.wait();
    assert!(out.contains("typed once"), "{out:?}");
    assert!(eventually(WAIT, || phase("once") == "Succeeded"), "stdin stayed open after the first session");
    let logs = k.run(&["logs", "once"]).ok();
    assert!(logs.contains("typed once") && logs.contains("stdin closed"), "{logs}");
    // The terminal's output is in the log too.
    assert!(k.run(&["logs", "term"]).ok().contains("42"));
}

/// The server's resident memory, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix(" kB")?.parse::<u64>().ok());
    kb.unwrap_or(0) * 1024
}

/// Read exactly `n` bytes (or fail).
fn read_n(s: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).expect("read through port-forward");
    buf
}

/// Port-forward under stress: 1 GB each way checked by checksum, a reader that stops reading
/// (the server's memory stays bounded), `--address`, and sessions kept idle for 3 minutes
/// that still carry old and new connections, with kubectl 1.27 (SPDY) and 1.32 (WebSocket).
#[test]
fn port_forward_gigabytes_slow_readers_and_long_idle_sessions() {
    let server = Server::with_node(14, image);
    let k = server.kubectl("1.32");
    let pod = r#"apiVersion: v1
kind: Pod
metadata:
  name: soak
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: web:1
    imagePullPolicy: Never
    command:
    - sh
    - -c
    - |
      trap 'exit 0' TERM
      nc -l -p 9000 -e md5sum &
      nc -l -p 9001 -e sh -c 'i=0; while [ $i -lt 43 ]; do cat /www/big.bin; i=$((i+1)); done' &
      nc -l -p 9002 -e cat /dev/zero &
      for port in 9003 9004; do nc -l -p $port -e cat & done
      httpd -f -p 80 -h /www &
      wait
"#;
    k.run_stdin(&["apply", "-f", "-"], pod).ok();
    assert!(eventually(WAIT, || k.run(&["get", "pod", "soak", "-o", "jsonpath={.status.phase}"]).stdout == "Running"));
    let free = common::registry::free_port;
    let (old, new) = (server.kubectl("1.27"), server.kubectl("1.32"));
    let (p80, p9000, p9003) = (free(), free(), free());
    let (q80, q9001, q9002, q9004) = (free(), free(), free(), free());
    let spawn = |kv: &Kubectl, args: &[String]| {
        let args: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
        port_forward(kv, &args)
    };
    let ports = |pairs: &[(u16, u16)]| pairs.iter().map(|(l, r)| format!("{l}:{r}")).collect::<Vec<_>>();
    let mut spdy_args = vec!["port-forward".to_string(), "pod/soak".to_string()];
    spdy_args.extend(ports(&[(p80, 80), (p9000, 9000), (p9003, 9003)]));
    let mut ws_args = vec!["port-forward".to_string(), "--address".to_string(), "127.0.0.2".to_string()];
    ws_args.push("pod/soak".to_string());
    ws_args.extend(ports(&[(q80, 80), (q9001, 9001), (q9002, 9002), (q9004, 9004)]));
    let (_spdy, _ws) = (spawn(&old, &spdy_args), spawn(&new, &ws_args));
    let get_at = |host: &str, port: u16| {
        let mut s = std::net::TcpStream::connect((host, port)).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        Some(out).filter(|r| body(r) == b"hello through port-forward\n")
    };
    assert!(eventually(WAIT, || get_at("127.0.0.1", p80).is_some()), "kubectl 1.27 port-forward");
    assert!(eventually(WAIT, || get_at("127.0.0.2", q80).is_some()), "kubectl 1.32 port-forward --address");
    assert!(std::net::TcpStream::connect(("127.0.0.1", q80)).is_err(), "--address 127.0.0.2 bound 127.0.0.1 too");

    // 1 GB up (kubectl 1.27, SPDY): the pod's md5sum of what arrived (sent back) is ours.
    let data = big_file();
    const TIMES: usize = 43;
    let mut md5 =
        std::process::Command::new("md5sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("md5sum");
    let mut up = std::net::TcpStream::connect(("127.0.0.1", p9000)).expect("connect");
    let mut local = md5.stdin.take().expect("stdin");
    for _ in 0..TIMES {
        up.write_all(&data).expect("upload through port-forward");
        local.write_all(&data).expect("md5sum");
    }
    drop(local);
    up.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut theirs = String::new();
    let _ = up.read_to_string(&mut theirs);
    let ours = String::from_utf8_lossy(&md5.wait_with_output().expect("md5sum").stdout).into_owned();
    assert_eq!(theirs, ours, "1 GB upload damaged");

    // 1 GB down (kubectl 1.32, SPDY in a WebSocket): every 24 MB piece intact.
    let sum = |b: &[u8]| b.iter().fold(0u64, |a, x| a.wrapping_mul(31).wrapping_add(u64::from(*x)));
    let mut down = std::net::TcpStream::connect(("127.0.0.2", q9001)).expect("connect");
    for piece in 0..TIMES {
        assert!(sum(&read_n(&mut down, BIG)) == sum(&data), "1 GB download: piece {piece} damaged");
    }
    drop(down);

    // A reader that stops: the pod keeps sending zeros, the server's memory stays bounded. Then
    // it leaves mid-stream, and the session carries on. (kubectl 1.27 itself stalls its whole
    // session when a local client leaves a stream the pod keeps feeding, as against any
    // cluster: it stops reading that stream; 1.28+ reset it, which ends the pod's side here.)
    let before = rss(server.pid());
    let mut stalled = std::net::TcpStream::connect(("127.0.0.2", q9002)).expect("connect");
    read_n(&mut stalled, 1024);
    std::thread::sleep(Duration::from_secs(5));
    let grown = rss(server.pid()).saturating_sub(before);
    assert!(grown < 64 << 20, "the server grew by {} MB behind a reader that does not read", grown >> 20);
    assert!(read_n(&mut stalled, 8 << 20).iter().all(|b| *b == 0), "the stalled stream resumes");
    drop(stalled);

    // Idle for 3 minutes: open connections (to an echo server) and the sessions themselves
    // keep working.
    let mut kept = [("127.0.0.1", p9003), ("127.0.0.2", q9004)].map(|(h, p)| {
        let mut s = std::net::TcpStream::connect((h, p)).expect("connect");
        s.write_all(b"before\n").expect("write");
        assert_eq!(read_n(&mut s, 7), b"before\n");
        s
    });
    std::thread::sleep(Duration::from_secs(180));
    for s in &mut kept {
        s.write_all(b"after!\n").expect("a connection idle for 3 minutes broke");
        assert_eq!(read_n(s, 7), b"after!\n", "a connection idle for 3 minutes broke");
    }
    assert!(get_at("127.0.0.1", p80).is_some(), "kubectl 1.27's session died while idle");
    assert!(get_at("127.0.0.2", q80).is_some(), "kubectl 1.32's session died while idle");
}

/// A pod on another node: the API server reaches that node's agent through the endpoint it
/// published (TLS, certificate pinned on the Node) for logs, exec (also -it), attach and
/// port-forward, with kubectl 1.27 (SPDY) and 1.32 (WebSocket).
#[test]
fn logs_exec_attach_and_port_forward_reach_a_pod_on_another_node() {
    let server = Server::with_node(15, image);
    let agent = Agent::start(&server, "far", 15, common::registry::free_port(), image);
    let k = server.kubectl("1.32");
    let pod = r#"apiVersion: v1
kind: Pod
metadata:
  name: remote
spec:
  nodeName: far
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: web:1
    imagePullPolicy: Never
    command: ["sh", "-c", "trap 'exit 0' TERM; echo hello from far; httpd -f -p 80 -h /www & wait"]
  - name: echo
    image: web:1
    imagePullPolicy: Never
    stdin: true
    command: ["sh", "-c", "while read line; do echo \"got $line\"; done"]
"#;
    k.run_stdin(&["apply", "-f", "-"], pod).ok();
    let running =
        eventually(WAIT, || k.run(&["get", "pod", "remote", "-o", "jsonpath={.status.phase}"]).stdout == "Running");
    assert!(running, "{}\n{}", k.run(&["describe", "pod", "remote"]).stdout, agent.log());
    assert!(!std::fs::read_dir(server.data_dir().join("pods")).map(|d| d.count() > 0).unwrap_or(false));

    let expected = big_file();
    let scratch = tempfile::tempdir().expect("tempdir");
    let local_big = scratch.path().join("big.bin");
    std::fs::write(&local_big, &expected).expect("write");
    for version in ["1.27", "1.32"] {
        let kv = server.kubectl(version);
        let logs = kv.run(&["logs", "remote", "-c", "web"]);
        assert_eq!(logs.stdout, "hello from far\n", "kubectl {version}: {}", logs.stderr);
        let r = kv.run(&["exec", "remote", "-c", "web", "--", "sh", "-c", "echo $((6*7)); echo oops >&2; exit 3"]);
        assert_eq!((r.code, r.stdout.as_str()), (3, "42\n"), "kubectl {version}: {}", r.stderr);
        assert!(r.stderr.contains("oops"), "kubectl {version}: {}", r.stderr);
        let mut md5 = kv.command(&["exec", "-i", "remote", "-c", "web", "--", "md5sum"]);
        let md5 = md5.stdin(std::fs::File::open(&local_big).expect("big")).output().expect("kubectl exec");
        assert_eq!(String::from_utf8_lossy(&md5.stdout), format!("{}  -\n", md5_of(&local_big)), "kubectl {version}");

        let mut attach = kv
            .command(&["attach", "-i", "remote", "-c", "echo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl attach");
        let out = read_until(attach.stdout.take().expect("stdout"), &format!("got {version}"));
        std::thread::sleep(Duration::from_millis(500));
        attach.stdin.as_mut().expect("stdin").write_all(format!("{version}\n").as_bytes()).expect("type");
        let out = out.recv_timeout(WAIT).unwrap_or_default();
        let _ = attach.kill();
        let _ = attach.wait();
        assert!(out.contains(&format!("got {version}")), "kubectl {version}: attach: {out:?}");

        let port = common::registry::free_port();
        let _fwd = port_forward(&kv, &["pod/remote", &format!("{port}:80")]);
        assert!(eventually(WAIT, || get(port, "/").is_some()), "kubectl {version}: port-forward");
        let big = get(port, "/big.bin").unwrap_or_default();
        assert!(body(&big) == expected, "kubectl {version}: the big file arrived damaged");
    }

    // A terminal through the remote node: size and typed commands.
    let kv = server.kubectl("1.32");
    let line = shell_line(&kv, "exec -it remote -c web -- sh; sleep 60");
    let term = Terminal::start("skiff-remote", &line, 91, 27);
    assert!(eventually(WAIT, || term.screen().contains("/ #")), "no prompt: {}", term.screen());
    term.keys("stty size");
    assert!(eventually(WAIT, || term.screen().contains("27 91")), "{}", term.screen());
    drop(term);

    // An endpoint whose certificate is not the pinned one, or that does not answer: a clear
    // error, at once.
    let node = k.run(&["get", "node", "far", "-o", "json"]).ok();
    let node: serde_json::Value = serde_json::from_str(&node).expect("node JSON");
    let annotations = node["metadata"]["annotations"].clone();
    for (key, value, says) in [
        ("skiff.dev/node-endpoint-sha256", "00".repeat(32), "certificate"),
        ("skiff.dev/node-endpoint", "127.0.0.1:1".to_string(), "127.0.0.1:1"),
    ] {
        k.run(&["annotate", "node", "far", "--overwrite", &format!("{key}={value}")]).ok();
        let failed = k.run(&["exec", "remote", "-c", "web", "--", "true"]);
        assert!(failed.code != 0 && failed.stderr.contains(says), "{key}: {}", failed.stderr);
        let original = annotations[key].as_str().expect("annotation");
        k.run(&["annotate", "node", "far", "--overwrite", &format!("{key}={original}")]).ok();
    }
    assert_eq!(k.run(&["exec", "remote", "-c", "web", "--", "echo", "back"]).ok(), "back\n");
    drop(agent);
}
