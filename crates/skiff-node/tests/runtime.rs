//! A real container (root): busybox unpacked by the image store, the runtime spec from
//! `runtime_spec`, started with libcontainer, output through a pipe, exit code by waitpid.
//! One test in this binary: libcontainer changes the process's working directory.

use nix::sys::wait::{WaitStatus, waitpid};
use skiff_node::process::Process;
use skiff_node::runtime_spec::{PodContext, runtime_spec};
use std::io::Read;
use std::path::Path;

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
    let process = Process {
        args: vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "echo hello from $(/bin/busybox hostname); exit 3".into(),
        ],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
    };
    let pod = PodContext {
        hostname: "web".into(),
        netns: None,
        ipcns: None,
        utsns: None,
        mounts: vec![],
        cgroups_path: format!("/skiff-test/{}", std::process::id()),
    };
    let spec = runtime_spec(&container, &process, rootfs.clone(), &pod, false).expect("spec");
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    let (err_read, err_write) = nix::unistd::pipe().expect("pipe");
    let stdio = skiff_node::runtime::Stdio { stdin: None, stdout: write_end, stderr: err_write };
    let state = dir.path().join("state");
    let pid =
        skiff_node::runtime::start("skiff-test-1", &dir.path().join("bundle"), &state, &spec, stdio).expect("start");
    let status = waitpid(pid, None).expect("waitpid");
    let mut out = String::new();
    std::fs::File::from(read_end).read_to_string(&mut out).expect("read stdout");
    let mut err = String::new();
    std::fs::File::from(err_read).read_to_string(&mut err).expect("read stderr");
    skiff_node::runtime::delete("skiff-test-1", &state).expect("delete");
    // libcontainer leaves the (now empty) parent cgroups behind: remove them, leaving the host clean.
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].iter().map(Path::new) {
        let mut dirs: Vec<std::path::PathBuf> = vec![root.join("skiff-test")];
        if let Ok(entries) = std::fs::read_dir(root) {
            dirs.extend(entries.flatten().map(|e| e.path().join("skiff-test")));
        }
        for d in dirs {
            let _ = std::fs::remove_dir(d.join(std::process::id().to_string()));
            let _ = std::fs::remove_dir(&d);
        }
    }
    assert_eq!(out.trim(), "hello from web", "stderr: {err}");
    assert_eq!(status, WaitStatus::Exited(pid, 3));
}
