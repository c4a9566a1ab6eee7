//! A real container (root): busybox unpacked by the image store, the runtime spec from
//! `runtime_spec`, started with libcontainer, output through a pipe, exit code by waitpid.
//! Then a web server joined to a pod sandbox with a veth: the host reaches it on the pod address.
//! One test in this binary: libcontainer changes the process's working directory.

use nix::sys::wait::{WaitStatus, waitpid};
use skiff_node::process::Process;
use skiff_node::runtime_spec::{PodContext, runtime_spec};
use std::io::Read;
use std::path::Path;

/// A process running `args` as root in `/`.
fn root_process(args: &[&str]) -> Process {
    Process {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
    }
}

#[test]
fn busybox_container_runs_and_reports_its_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir");
    let busybox =
        ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).expect("busybox-static");
    std::fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy");
    for d in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    let container = k8s_openapi::api::core::v1::Container { name: "c".into(), ..Default::default() };
    let process = root_process(&["/bin/busybox", "sh", "-c", "echo hello from $(/bin/busybox hostname); exit 3"]);
    let pod = PodContext {
        hostname: "web".into(),
        netns: None,
        host_network: false,
        ipcns: None,
        utsns: None,
        pidns: None,
        mounts: vec![],
        cgroups_path: format!("/skiff-test/{}", std::process::id()),
    };
    let spec = runtime_spec(&container, &process, rootfs.clone(), &pod, false).expect("spec");
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    let (err_read, err_write) = nix::unistd::pipe().expect("pipe");
    let stdio =
        skiff_node::shim::runtime::Stdio { stdin: None, stdout: write_end, stderr: err_write, console_socket: None };
    let state = dir.path().join("state");
    let pid = skiff_node::shim::runtime::start("skiff-test-1", &dir.path().join("bundle"), &state, &spec, stdio)
        .expect("start");
    let status = waitpid(pid, None).expect("waitpid");
    let mut out = String::new();
    std::fs::File::from(read_end).read_to_string(&mut out).expect("read stdout");
    let mut err = String::new();
    std::fs::File::from(err_read).read_to_string(&mut err).expect("read stderr");
    skiff_node::shim::runtime::delete("skiff-test-1", &state).expect("delete");
    pod_network_serves_http(dir.path(), &rootfs);
    // libcontainer leaves the (now empty) parent cgroups behind: remove them, leaving the host clean.
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].iter().map(Path::new) {
        let mut dirs: Vec<std::path::PathBuf> = vec![root.join("skiff-test")];
        if let Ok(entries) = std::fs::read_dir(root) {
            dirs.extend(entries.flatten().map(|e| e.path().join("skiff-test")));
        }
        for d in dirs {
            let _ = std::fs::remove_dir(d.join(std::process::id().to_string()));
            let _ = std::fs::remove_dir(d.join(format!("{}-web", std::process::id())));
            let _ = std::fs::remove_dir(&d);
        }
    }
    assert_eq!(out.trim(), "hello from web", "stderr: {err}");
    assert_eq!(status, WaitStatus::Exited(pid, 3));
}

/// A web server container joined to a pod sandbox (namespaces held by another process, as the
/// shim will hold them), with a veth on a bridge: the host reaches it on the pod's address.
fn pod_network_serves_http(dir: &Path, rootfs: &Path) {
    use skiff_node::net::Net;
    use std::io::Write;
    use std::os::fd::AsFd;

    std::fs::create_dir_all(rootfs.join("www")).expect("www");
    std::fs::write(rootfs.join("www/index.html"), "hello from the pod\n").expect("index");
    let holder = std::process::Command::new("unshare")
        .args(["--net", "--ipc", "--uts", "/bin/busybox", "sleep", "60"])
        .spawn()
        .or_else(|_| std::process::Command::new("unshare").args(["--net", "--ipc", "--uts", "sleep", "60"]).spawn())
        .expect("a sandbox holder");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let ns = |kind: &str| std::path::PathBuf::from(format!("/proc/{}/ns/{kind}", holder.id()));
    let id = std::process::id() % 100_000;
    let (bridge, veth) = (format!("skrb{id}"), format!("skrv{id}"));
    let (gw, ip) = (std::net::Ipv4Addr::new(10, 199, 8, 1), std::net::Ipv4Addr::new(10, 199, 8, 2));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let netns = std::fs::File::open(ns("net")).expect("netns");
    rt.block_on(async {
        let net = Net::connect().expect("netlink");
        net.ensure_bridge(&bridge, &[(gw.into(), 24)]).await.expect("bridge");
        let address = skiff_node::net::PodAddress { ip: ip.into(), prefix: 24, gateway: gw.into() };
        net.attach_pod(&bridge, &veth, netns.as_fd(), &[address]).await.expect("veth");
    });

    let container = k8s_openapi::api::core::v1::Container { name: "web".into(), ..Default::default() };
    let process = root_process(&["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]);
    let pod = PodContext {
        hostname: "web".into(),
        netns: Some(ns("net")),
        host_network: false,
        ipcns: Some(ns("ipc")),
        utsns: Some(ns("uts")),
        pidns: None,
        mounts: vec![],
        cgroups_path: format!("/skiff-test/{}-web", std::process::id()),
    };
    let spec = runtime_spec(&container, &process, rootfs.to_path_buf(), &pod, false).expect("spec");
    let (_out_r, out_w) = nix::unistd::pipe().expect("pipe");
    let (_err_r, err_w) = nix::unistd::pipe().expect("pipe");
    let state = dir.join("state");
    let pid = skiff_node::shim::runtime::start(
        "skiff-test-web",
        &dir.join("bundle-web"),
        &state,
        &spec,
        skiff_node::shim::runtime::Stdio { stdin: None, stdout: out_w, stderr: err_w, console_socket: None },
    )
    .expect("start web");

    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect_timeout(&(ip, 8080).into(), std::time::Duration::from_secs(2)) {
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
            let _ = std::io::Read::read_to_string(&mut s, &mut body);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let status = waitpid(pid, None).expect("waitpid");
    skiff_node::shim::runtime::delete("skiff-test-web", &state).expect("delete");
    rt.block_on(async {
        let net = Net::connect().expect("netlink");
        let _ = net.delete(&veth).await;
        let _ = net.delete(&bridge).await;
    });
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(body.contains("hello from the pod"), "{body}");
    assert_eq!(status, WaitStatus::Signaled(pid, nix::sys::signal::Signal::SIGKILL, false));
}
