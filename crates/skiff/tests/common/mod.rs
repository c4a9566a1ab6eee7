//! Test support: a real `skiff server` process on a loopback port with its own data directory,
//! and the real versioned kubectl binaries pointed at it.
#![allow(dead_code)]

pub mod agent;
pub mod registry;
pub mod terminal;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The kubectl versions every end-to-end test runs with.
pub const KUBECTL_VERSIONS: &[&str] = &["1.27", "1.29", "1.32"];

pub struct Server {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// The API server alone (no node agent: these tests' pods never run).
    pub fn start_with(extra: &[&str]) -> Self {
        let mut args = vec!["--disable-agent"];
        args.extend_from_slice(extra);
        Self::start_in(tempfile::tempdir().expect("tempdir"), &args)
    }

    /// A server whose node runs pods, on its own bridge and /24 (`net` in 1..=99 keeps tests
    /// apart), with `prepare` run on the data directory first (images, registries.yaml).
    pub fn with_node(net: u8, prepare: impl FnOnce(&Path)) -> Self {
        Self::with_node_args(net, &[], prepare)
    }

    /// [`Server::with_node`] with more `skiff server` flags.
    pub fn with_node_args(net: u8, extra: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        Self::with_node_in(tempfile::tempdir().expect("tempdir"), net, extra, prepare)
    }

    /// [`Server::with_node_args`] on a data directory the caller made (e.g. a small tmpfs).
    /// A flag in `extra` replaces the default of the same name (`--pod-cidr` for dual stack).
    pub fn with_node_in(dir: tempfile::TempDir, net: u8, extra: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        prepare(dir.path());
        let cidr = format!("10.{}.{net}.0/24", 150);
        let bridge = format!("skt{net}");
        let dns = Self::cluster_dns(net);
        let services = Self::service_cidr(net);
        // The ingress on loopback ports of its own (not the machine's 80 and 443).
        let (http, https) = (registry::free_port().to_string(), registry::free_port().to_string());
        // No NAT out of the machine in tests (the NAT test starts its server itself).
        let defaults = [
            ("--pod-cidr", cidr.as_str()),
            ("--bridge", &bridge),
            ("--cluster-dns", &dns),
            ("--service-cidr", &services),
            ("--ingress-bind-address", "127.0.0.1"),
            ("--ingress-http-port", &http),
            ("--ingress-https-port", &https),
            ("--node-name", "skiff-test"),
        ];
        let mut args: Vec<&str> = Vec::new();
        for (flag, value) in defaults.iter().filter(|(flag, _)| !extra.contains(flag)) {
            args.extend([*flag, *value]);
        }
        args.push("--disable-outbound-nat");
        args.extend_from_slice(extra);
        Self::start_in(dir, &args)
    }

    /// The cluster DNS address of test network `net`: each node binds its own on the host.
    pub fn cluster_dns(net: u8) -> String {
        format!("10.43.{net}.10")
    }

    /// The service CIDR of test network `net`: each node's proxy programs its own on the host.
    pub fn service_cidr(net: u8) -> String {
        format!("10.43.{net}.0/24")
    }

    pub fn start_in(dir: tempfile::TempDir, args: &[&str]) -> Self {
        let args = args.iter().map(|s| s.to_string()).collect();
        let mut s = Server { dir, child: None, port: registry::free_port(), args };
        s.spawn();
        s
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.kubeconfig());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start skiff server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.kubeconfig().exists() && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("skiff server did not become ready; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGKILL the server (no chance to flush anything) and start it again on the same data.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// SIGTERM and wait; returns whether it exited cleanly within the timeout.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        false
    }

    pub fn kubectl(&self, version: &str) -> Kubectl {
        Kubectl::new(version, &self.kubeconfig(), self.dir.path())
    }

    /// A kubectl whose kubeconfig authenticates with a bearer token instead of the admin certificate.
    pub fn kubectl_with_token(&self, version: &str, token: &str) -> Kubectl {
        let admin = std::fs::read_to_string(self.kubeconfig()).expect("kubeconfig");
        let mut text: String = admin
            .lines()
            .filter(|l| !l.contains("client-certificate-data") && !l.contains("client-key-data"))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&format!("    token: {token}\n"));
        let path = self.dir.path().join(format!("kubeconfig-token-{version}-{}.yaml", token.len()));
        std::fs::write(&path, text).expect("write kubeconfig");
        Kubectl::new(version, &path, self.dir.path())
    }

    /// The value of a `skiff server` flag this server was started with.
    pub fn arg(&self, flag: &str) -> Option<&str> {
        self.args.iter().skip_while(|a| *a != flag).nth(1).map(String::as_str)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A node's pods outlive the server: remove them (a failed test must not leave containers).
        if self.child.is_some() && self.args.iter().any(|a| a == "--pod-cidr") {
            let k = self.kubectl("1.32");
            // Workloads first, or their controllers would make the pods again.
            let workloads = "deployments,replicasets,daemonsets,jobs,cronjobs";
            let _ = k.run(&["delete", workloads, "--all", "-A", "--cascade=orphan", "--wait=false"]);
            let _ = k.run(&["delete", "pod", "--all", "-A", "--grace-period=0", "--force"]);
            let pods = self.dir.path().join("pods");
            eventually(Duration::from_secs(20), || std::fs::read_dir(&pods).map(|d| d.count() == 0).unwrap_or(true));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The service proxy's and network policies' rules outlive the server (as pods do):
        // remove them, or a node port of this test would still lead to its gone pods.
        if let Some(bridge) = self.arg("--bridge") {
            for table in [format!("skiff-svc-{bridge}"), format!("skiff-np-{bridge}")] {
                for family in ["ip", "ip6"] {
                    let _ =
                        Command::new("nft").args(["delete", "table", family, &table]).stderr(Stdio::null()).status();
                }
            }
        }
    }
}

/// The folder holding `kubectl.1.NN`, next to the dispatcher.
pub fn kubectl_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SKIFF_KUBECTL_DIR") {
        return PathBuf::from(d);
    }
    let which = Command::new("sh").arg("-c").arg("readlink -f \"$(command -v kubectl)\"").output().expect("sh");
    let path = String::from_utf8_lossy(&which.stdout).trim().to_string();
    assert!(!path.is_empty(), "kubectl is not installed (the Debian package `kubectl` ships kubectl.1.NN)");
    PathBuf::from(path).parent().expect("dir").to_path_buf()
}

pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
}

/// The result of one kubectl run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "kubectl failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stdout
    }

    /// Everything it printed, for a failure message.
    pub fn combined(&self) -> String {
        format!("exit {}\nstdout: {}\nstderr: {}", self.code, self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn fails(self) -> String {
        assert_ne!(self.code, 0, "kubectl unexpectedly succeeded:\n{}", self.stdout);
        self.stderr
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Kubectl {
    pub fn new(version: &str, kubeconfig: &Path, home: &Path) -> Self {
        let bin = kubectl_dir().join(format!("kubectl.{version}"));
        assert!(bin.exists(), "{} is missing", bin.display());
        let home = home.join(format!("home-{version}"));
        std::fs::create_dir_all(&home).expect("home");
        Kubectl { bin, kubeconfig: kubeconfig.to_path_buf(), home }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args).env("KUBECONFIG", &self.kubeconfig).env("HOME", &self.home);
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run kubectl").into()
    }

    /// `kubectl get WHAT -o jsonpath=PATH`: the output, empty when the object is not there.
    pub fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let expr = format!("jsonpath={path}");
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend(["-o", expr.as_str()]);
        self.run(&args).stdout
    }

    /// Run with `input` on standard input (for `-f -`).
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("wait kubectl").into()
    }
}

/// The tutorial's Pod, named `name`.
pub fn tutorial_pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\n\nmetadata:\n  name: {name}\n\nspec:\n  containers:\n    - name: nginx-container\n      image: {image}\n      ports: # 이 컨테이너가 어떤 포트를 사용한다고 “명시”\n        - containerPort: 80 # 컨테이너 내부에서 열리는 포트\n"
    )
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Run `skiff --data-dir DATA ARGS...`: (exit code, stdout, stderr).
pub fn skiff(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_skiff")).arg("--data-dir").arg(data).args(args).output().expect("run skiff");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A root filesystem with the static busybox (Debian's busybox-static), a few applet links and
/// /etc/motd, and its tarball: (rootfs dir, tarball).
pub fn busybox_rootfs(dir: &Path) -> (PathBuf, PathBuf) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed");
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::write(root.join("etc/motd"), "hello from skiff\n").expect("motd");
    std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
    for applet in ["sh", "ls", "cat", "echo", "httpd", "sleep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    let tar = dir.join("rootfs.tar");
    let status = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().expect("tar");
    assert!(status.success());
    (root, tar)
}

/// `python:3` in the image store of `data`: Debian's own Python 3 (the interpreter, its standard
/// library and the shared libraries they load, copied from this machine), `CMD ["python3"]`.
/// Its glibc resolves names through /etc/resolv.conf as any distribution's image does.
pub fn import_python(data: &Path) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("rootfs");
    let python = std::fs::canonicalize("/usr/bin/python3").expect("Debian's python3 is installed");
    let version = python.file_name().and_then(|n| n.to_str()).expect("name").to_string(); // python3.11
    let stdlib = Path::new("/usr/lib").join(&version);
    copy_into(&root, &python, &python);
    std::os::unix::fs::symlink(&version, root.join("usr/bin/python3")).expect("symlink");
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("mkdir -p '{r}/usr/lib' && tar -C /usr/lib --exclude='{v}/test' --exclude='*/__pycache__' -cf - {v} | tar -C '{r}/usr/lib' -xf -", r = root.display(), v = version))
        .status()
        .expect("tar");
    assert!(ok.success(), "copying the standard library");
    // The shared libraries the interpreter and its extension modules load.
    let modules = std::fs::read_dir(stdlib.join("lib-dynload")).expect("lib-dynload");
    copy_libraries(&root, std::iter::once(python.clone()).chain(modules.flatten().map(|e| e.path())));
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: files dns\n").expect("nsswitch");
    import_rootfs(data, &root, r#"CMD ["python3"]"#, "python:3");
}

/// `reference` in the image store of `data`: the host program `binary` as `/NAME`, with the
/// shared libraries and the dynamic loader it loads at their paths, `CMD ["/NAME"]`.
pub fn import_host_binary(data: &Path, binary: &Path, reference: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("rootfs");
    let name = binary.file_name().and_then(|n| n.to_str()).expect("a file name");
    copy_into(&root, binary, Path::new("/").join(name).as_path());
    copy_libraries(&root, [binary.to_path_buf()]);
    import_rootfs(data, &root, &format!(r#"CMD ["/{name}"]"#), reference);
}

/// Copy `from` (following links) to the absolute path `to` under `root`.
fn copy_into(root: &Path, from: &Path, to: &Path) {
    let to = root.join(to.strip_prefix("/").expect("absolute"));
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    let ok = Command::new("cp").arg("-aL").arg(from).arg(&to).status().expect("cp");
    assert!(ok.success(), "copying {}", from.display());
}

/// Copy to their paths under `root` the shared libraries (and the dynamic loader) `ldd` says
/// the programs and libraries `objects` load.
fn copy_libraries(root: &Path, objects: impl IntoIterator<Item = PathBuf>) {
    let mut libs = std::collections::BTreeSet::new();
    for object in objects {
        let out = Command::new("ldd").arg(&object).output().expect("ldd");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let path = line.split("=>").nth(1).unwrap_or(line).split_whitespace().next().unwrap_or("");
            if path.starts_with('/') {
                libs.insert(PathBuf::from(path));
            }
        }
    }
    for lib in &libs {
        copy_into(root, lib, lib);
    }
}

/// Import the root filesystem `root` into the image store of `data` as `reference`, with
/// `change` (a Dockerfile instruction).
fn import_rootfs(data: &Path, root: &Path, change: &str, reference: &str) {
    let tar = root.with_extension("tar");
    let ok = Command::new("tar").arg("-C").arg(root).arg("-cf").arg(&tar).arg(".").status().expect("tar");
    assert!(ok.success());
    let (code, _, err) = skiff(data, &["import", "-c", change, tar.to_str().expect("utf8"), reference]);
    assert_eq!(code, 0, "{err}");
}

/// `busybox:1.36` in the image store of `data`, with `CMD ["sh"]` as the real image has, and links
/// for the extra `applets` a test's commands use.
pub fn import_busybox(data: &Path, applets: &[&str]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (root, _) = busybox_rootfs(tmp.path());
    for applet in applets {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("applet link");
    }
    let tar = tmp.path().join("busybox.tar");
    let ok = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status();
    assert!(ok.expect("tar").success());
    let (code, _, err) = skiff(data, &["import", "-c", r#"CMD ["sh"]"#, tar.to_str().expect("utf8"), "busybox:1.36"]);
    assert_eq!(code, 0, "{err}");
}
