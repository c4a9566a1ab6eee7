use super::*;
use crate::runtime_spec::{DEFAULT_CAPS, capabilities};
use k8s_openapi::api::core::v1::SecurityContext;

fn caps_of(names: &[&str]) -> HashSet<Capability> {
    let c = Container {
        name: "c".into(),
        security_context: Some(SecurityContext {
            capabilities: Some(k8s_openapi::api::core::v1::Capabilities {
                add: Some(names.iter().map(|s| s.to_string()).collect()),
                drop: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    capabilities(&c).expect("caps")
}

fn host(arch: &str, caps: &[&str]) -> Host {
    let mut h = Host::this_machine(&caps_of(caps), Some((6, 1)));
    h.arch = arch.into();
    h
}

/// The entries naming `name`.
fn rules<'a>(f: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    f.syscalls().iter().flatten().filter(|s| s.names().iter().any(|n| n == name)).collect()
}

fn allowed_always(f: &LinuxSeccomp, name: &str) -> bool {
    rules(f, name).iter().any(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
}

fn profile(type_: &str, localhost: Option<&str>) -> Option<SeccompProfile> {
    Some(SeccompProfile { type_: type_.into(), localhost_profile: localhost.map(String::from) })
}

#[test]
fn the_container_profile_wins_then_the_pod_then_the_node_default() {
    let pod = PodSecurityContext { seccomp_profile: profile("Unconfined", None), ..Default::default() };
    let mut c = Container { name: "c".into(), ..Default::default() };
    assert_eq!(choose(Some(&pod), &c, true).expect("pod"), Choice::Unconfined);
    assert_eq!(choose(None, &c, true).expect("default"), Choice::RuntimeDefault);
    assert_eq!(choose(None, &c, false).expect("default off"), Choice::Unconfined);
    c.security_context =
        Some(SecurityContext { seccomp_profile: profile("Localhost", Some("a.json")), ..Default::default() });
    assert_eq!(choose(Some(&pod), &c, false).expect("own"), Choice::Localhost("a.json".into()));
    c.security_context = Some(SecurityContext { seccomp_profile: profile("Localhost", None), ..Default::default() });
    assert!(matches!(choose(None, &c, true), Err(SeccompError::NoLocalhostProfile)));
    c.security_context = Some(SecurityContext { seccomp_profile: profile("Bogus", None), ..Default::default() });
    assert!(matches!(choose(None, &c, true), Err(SeccompError::UnknownType(_))));
    // Privileged containers are unconfined whatever they ask for.
    c.security_context = Some(SecurityContext {
        privileged: Some(true),
        seccomp_profile: profile("RuntimeDefault", None),
        ..Default::default()
    });
    assert_eq!(choose(Some(&pod), &c, true).expect("privileged"), Choice::Unconfined);
}

#[test]
fn runtime_default_refuses_with_eperm_and_covers_the_32_bit_abis() {
    let f = to_filter(&default_profile::profile(), &host("x86_64", &[])).expect("filter");
    assert_eq!(f.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(f.default_errno_ret(), Some(1));
    assert_eq!(f.architectures().as_deref(), Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..]));
    let arm = to_filter(&default_profile::profile(), &host("aarch64", &[])).expect("arm64");
    assert_eq!(arm.architectures().as_deref(), Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..]));
    assert!(allowed_always(&f, "arch_prctl") && !allowed_always(&arm, "arch_prctl"));
    assert!(allowed_always(&arm, "set_tls") && !allowed_always(&f, "set_tls"));
    // An unknown architecture gets the native one only.
    let other = to_filter(&default_profile::profile(), &host("sparc64", &[])).expect("other");
    assert_eq!(other.architectures(), &None);

    for name in ["read", "openat", "execve", "socketpair", "wait4", "chroot", "ptrace", "statx"] {
        assert!(allowed_always(&f, name), "{name}");
    }
    for name in ["mount", "umount2", "unshare", "setns", "reboot", "init_module", "bpf", "keyctl", "add_key"] {
        assert!(rules(&f, name).is_empty(), "{name} is allowed without its capability");
    }
    // Every name once (the allow list is merged into one entry).
    let mut names = HashSet::new();
    for s in f.syscalls().iter().flatten().filter(|s| s.args().is_none()) {
        for n in s.names() {
            assert!(names.insert((n.clone(), s.action().as_u32(s.errno_ret()))), "{n} twice");
        }
    }
}

#[test]
fn runtime_default_keeps_namespaces_for_cap_sys_admin() {
    let f = to_filter(&default_profile::profile(), &host("x86_64", &[])).expect("filter");
    // clone only without namespace flags, in libcontainer's order (mask in valueTwo).
    let clone = rules(&f, "clone");
    assert_eq!(clone.len(), 1);
    let args = clone[0].args().clone().expect("args");
    assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!((args[0].index(), args[0].value(), args[0].value_two()), (0, 0, Some(CLONE_NAMESPACE_FLAGS)));
    let clone3 = rules(&f, "clone3");
    assert_eq!((clone3[0].action(), clone3[0].errno_ret()), (LinuxSeccompAction::ScmpActErrno, Some(38)));
    assert_eq!(rules(&f, "personality").len(), 5);
    assert!(rules(&f, "socket")[0].args().as_ref().is_some_and(|a| a[0].op() == LinuxSeccompOperator::ScmpCmpNe));

    let admin = to_filter(&default_profile::profile(), &host("x86_64", &["SYS_ADMIN", "SYS_BOOT"])).expect("admin");
    for name in ["clone", "clone3", "mount", "unshare", "setns", "reboot"] {
        assert!(allowed_always(&admin, name), "{name}");
        assert_eq!(rules(&admin, name).len(), 1, "{name}");
    }
    assert!(!allowed_always(&admin, "init_module"));
}

#[test]
fn runtime_default_follows_the_container_capabilities() {
    let default: HashSet<Capability> = caps_of(&[]);
    assert_eq!(default.len(), DEFAULT_CAPS.len());
    let f = runtime_default(&default, false).expect("filter");
    assert!(!allowed_always(&f, "unshare"));
    let f = runtime_default(&caps_of(&["SYS_PTRACE", "SYS_TIME"]), false).expect("filter");
    assert!(allowed_always(&f, "kcmp") && allowed_always(&f, "clock_settime"));
}

#[test]
fn compat_abis_only_for_images_built_for_them() {
    let caps = caps_of(&[]);
    let native = runtime_default(&caps, false).expect("filter");
    assert_eq!(native.architectures().as_ref().map(Vec::len), Some(1));
    let compat = runtime_default(&caps, true).expect("filter");
    assert!(compat.architectures().as_ref().map(Vec::len).unwrap_or(0) > 1);
    let own = Host::this_machine(&HashSet::new(), None).arch_names().1;
    assert!(!needs_compat_abis(own));
    assert!(!needs_compat_abis(""));
    assert!(needs_compat_abis(if own == "amd64" { "386" } else { "arm" }));
}

#[test]
fn localhost_names_stay_inside_the_profile_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("seccomp");
    std::fs::create_dir_all(root.join("profiles")).expect("mkdir");
    for bad in ["../x.json", "/etc/passwd", "profiles/../../x.json", "./x.json", ""] {
        assert!(matches!(localhost_path(&root, bad), Err(SeccompError::OutsideRoot { .. })), "{bad}");
    }
    assert_eq!(localhost_path(&root, "profiles/a.json").expect("ok"), root.join("profiles/a.json"));
    // A symbolic link out of the directory is refused too.
    std::fs::write(tmp.path().join("outside.json"), r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).expect("write");
    std::os::unix::fs::symlink(tmp.path().join("outside.json"), root.join("link.json")).expect("symlink");
    let caps = caps_of(&[]);
    assert!(matches!(load_localhost(&root, "link.json", &caps), Err(SeccompError::OutsideRoot { .. })));
    let missing = load_localhost(&root, "profiles/none.json", &caps).expect_err("missing");
    assert!(matches!(missing, SeccompError::Load { .. }), "{missing}");
    assert!(missing.to_string().contains("profiles/none.json") && missing.to_string().contains("No such file"));
}

#[test]
fn localhost_profiles_in_oci_and_docker_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let caps = caps_of(&[]);
    std::fs::write(root.join("allow.json"), r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).expect("write");
    let f = load_localhost(root, "allow.json", &caps).expect("allow all");
    assert_eq!(f.default_action(), LinuxSeccompAction::ScmpActAllow);
    assert_eq!(f.syscalls().as_ref().map(Vec::len), Some(0));

    // OCI form (as in config.json), with a masked comparison written for runc.
    let oci = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                    {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                    {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
    std::fs::write(root.join("oci.json"), oci).expect("write");
    let f = load_localhost(root, "oci.json", &caps).expect("oci");
    assert_eq!(f.architectures().as_deref(), Some(&[Arch::ScmpArchX86_64][..]));
    assert_eq!(f.flags().as_deref(), Some(&[LinuxSeccompFilterFlag::SeccompFilterFlagLog][..]));
    assert!(allowed_always(&f, "write"));
    let a = rules(&f, "clone")[0].args().clone().expect("args")[0];
    assert_eq!((a.value(), a.value_two()), (0, Some(2114060288)));
    assert_eq!(rules(&f, "mkdir")[0].errno_ret(), Some(13));

    // Docker form: archMap, conditions, nulls, the single-name form, unknown fields ignored.
    let docker = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
        "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},
                   {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":null}],
        "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":null,"comment":"x","includes":{},"excludes":{}},
                    {"name":"mount","action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                    {"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64"]}},
                    {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
                    {"names":["kcmp"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"4.8"}}]}"#;
    let profile: Profile = serde_json::from_str(docker).expect("parse");
    let f = to_filter(&profile, &host("x86_64", &[])).expect("docker");
    assert_eq!(f.architectures().as_deref(), Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86][..]));
    assert!(allowed_always(&f, "read") && allowed_always(&f, "arch_prctl") && allowed_always(&f, "ptrace"));
    assert!(rules(&f, "mount").is_empty() && rules(&f, "kcmp").is_empty());
    let f = to_filter(&profile, &host("aarch64", &["SYS_ADMIN"])).expect("arm64");
    assert_eq!(f.architectures().as_deref(), Some(&[Arch::ScmpArchAarch64][..]));
    assert!(allowed_always(&f, "mount") && rules(&f, "arch_prctl").is_empty());
    let mut old = host("x86_64", &[]);
    old.kernel = Some((4, 4));
    let f = to_filter(&profile, &old).expect("old kernel");
    assert!(rules(&f, "ptrace").is_empty() && allowed_always(&f, "kcmp"));
}

#[test]
fn broken_profiles_are_refused_with_their_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let caps = caps_of(&[]);
    for (file, text) in [
        ("garbage.json", "{ not json"),
        ("action.json", r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#),
        (
            "both.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
        ),
        (
            "notify.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ),
        ("nameless.json", r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}"#),
        (
            "kernel.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"new"}}]}"#,
        ),
    ] {
        std::fs::write(root.join(file), text).expect("write");
        let err = load_localhost(root, file, &caps).expect_err(file);
        assert!(matches!(err, SeccompError::Parse { .. }), "{file}: {err}");
        assert!(err.to_string().contains(file), "{err}");
    }
}

#[test]
fn kernel_versions() {
    assert_eq!(kernel_version("6.18.44-fc-v1300\n"), Some((6, 18)));
    assert_eq!(kernel_version("4.8"), Some((4, 8)));
    assert_eq!(kernel_version("5"), None);
    assert_eq!(kernel_version("x"), None);
}
