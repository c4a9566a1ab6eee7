use super::*;
use serde_json::{Value, json};

/// The reason and detail `check` gives a pod with `annotations` and `spec`.
fn run(check: CheckFn, annotations: &[(&str, &str)], spec: Value) -> Option<(String, String)> {
    let annotations: BTreeMap<String, String> =
        annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let spec: PodSpec = serde_json::from_value(spec).expect("pod spec");
    check(&PodView { annotations: &annotations, spec: &spec }).map(|v| (v.reason.to_string(), v.detail))
}

fn failed(reason: &str, detail: &str) -> Option<(String, String)> {
    Some((reason.to_string(), detail.to_string()))
}

fn containers(list: Value) -> Value {
    json!({"containers": list})
}

#[test]
fn allow_privilege_escalation_needs_false_everywhere() {
    let spec = containers(json!([
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"allowPrivilegeEscalation": true}},
        {"name": "d", "securityContext": {"allowPrivilegeEscalation": false}},
    ]));
    let want = failed(
        "allowPrivilegeEscalation != false",
        r#"containers "a", "b", "c" must set securityContext.allowPrivilegeEscalation=false"#,
    );
    assert_eq!(run(privilege::allow_privilege_escalation, &[], spec.clone()), want);
    assert_eq!(run(privilege::allow_privilege_escalation_1_25, &[], spec), want);
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(privilege::allow_privilege_escalation_1_25, &[], windows.clone()), None);
    assert!(run(privilege::allow_privilege_escalation, &[], windows).is_some());
    let linux = json!({"os": {"name": "linux"}, "containers": [{"name": "a"}]});
    assert_eq!(
        run(privilege::allow_privilege_escalation_1_25, &[], linux),
        failed(
            "allowPrivilegeEscalation != false",
            r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#
        )
    );
}

#[test]
fn app_armor_forbids_unconfined_by_field_and_annotation() {
    let ok = [
        ("container.apparmor.security.beta.kubernetes.io/a", "runtime/default"),
        ("container.apparmor.security.beta.kubernetes.io/b", "localhost/foo"),
        ("other", "unconfined"),
    ];
    assert_eq!(run(profiles::app_armor, &ok, containers(json!([{"name": "a"}]))), None);
    let pod = json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}, "containers": [{"name": "a"}]});
    assert_eq!(
        run(profiles::app_armor, &[], pod),
        failed("forbidden AppArmor profile", r#"pod must not set AppArmor profile type to "Unconfined""#)
    );
    let init = json!({
        "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "foo"}],
        "initContainers": [{"name": "bar", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}],
    });
    assert_eq!(
        run(profiles::app_armor, &[], init),
        failed("forbidden AppArmor profile", r#"container "bar" must not set AppArmor profile type to "Unconfined""#)
    );
    let annotations = [
        ("container.apparmor.security.beta.kubernetes.io/", "bogus"),
        ("container.apparmor.security.beta.kubernetes.io/a", ""),
        ("container.apparmor.security.beta.kubernetes.io/b", "runtime/default"),
        ("container.apparmor.security.beta.kubernetes.io/c", "localhost/"),
        ("container.apparmor.security.beta.kubernetes.io/d", "localhost/foo"),
        ("container.apparmor.security.beta.kubernetes.io/e", "unconfined"),
        ("container.apparmor.security.beta.kubernetes.io/f", "unknown"),
    ];
    assert_eq!(
        run(profiles::app_armor, &annotations, containers(json!([{"name": "a"}]))),
        failed(
            "forbidden AppArmor profiles",
            concat!(
                r#"annotations must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/="bogus"", "#,
                r#""container.apparmor.security.beta.kubernetes.io/e="unconfined"", "#,
                r#""container.apparmor.security.beta.kubernetes.io/f="unknown"""#
            )
        )
    );
}

#[test]
fn baseline_capabilities_are_the_runtime_defaults() {
    let spec = containers(json!([
        {"name": "a", "securityContext": {"capabilities": {"add": ["FOO", "BAR"]}}},
        {"name": "b", "securityContext": {"capabilities": {"add": ["BAR", "BAZ"]}}},
        {"name": "c", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN", "SYS_CHROOT"]}}},
    ]));
    assert_eq!(
        run(privilege::capabilities_baseline, &[], spec),
        failed(
            "non-default capabilities",
            r#"containers "a", "b" must not include "BAR", "BAZ", "FOO" in securityContext.capabilities.add"#
        )
    );
}

#[test]
fn restricted_capabilities_drop_all_and_add_only_net_bind_service() {
    let spec = containers(json!([
        {"name": "a", "securityContext": {"capabilities": {"add": ["FOO", "BAR"]}}},
        {"name": "b", "securityContext": {"capabilities": {"add": ["BAR", "BAZ"]}}},
        {"name": "c", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]}}},
        {"name": "d", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}},
    ]));
    let want = failed(
        "unrestricted capabilities",
        concat!(
            r#"containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; "#,
            r#"containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in securityContext.capabilities.add"#
        ),
    );
    assert_eq!(run(privilege::capabilities_restricted, &[], spec.clone()), want);
    assert_eq!(run(privilege::capabilities_restricted_1_25, &[], spec), want);
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(privilege::capabilities_restricted_1_25, &[], windows), None);
    assert_eq!(
        run(privilege::capabilities_restricted_1_25, &[], containers(json!([{"name": "a"}]))),
        failed("unrestricted capabilities", r#"container "a" must set securityContext.capabilities.drop=["ALL"]"#)
    );
}

#[test]
fn host_namespaces() {
    let spec = json!({"hostNetwork": true, "hostPID": true, "hostIPC": true, "containers": [{"name": "a"}]});
    assert_eq!(
        run(host::namespaces, &[], spec),
        failed("host namespaces", "hostNetwork=true, hostPID=true, hostIPC=true")
    );
    let spec = json!({"hostNetwork": false, "hostIPC": true, "containers": [{"name": "a"}]});
    assert_eq!(run(host::namespaces, &[], spec), failed("host namespaces", "hostIPC=true"));
    assert_eq!(run(host::namespaces, &[], containers(json!([{"name": "a"}]))), None);
}

#[test]
fn host_path_volumes() {
    let spec = json!({"containers": [{"name": "x"}], "volumes": [
        {"name": "a", "hostPath": {"path": "/a"}},
        {"name": "b", "hostPath": {"path": "/b"}},
        {"name": "c", "emptyDir": {}},
    ]});
    assert_eq!(run(volumes::host_path, &[], spec), failed("hostPath volumes", r#"volumes "a", "b""#));
    let one = json!({"containers": [{"name": "x"}], "volumes": [{"name": "data", "hostPath": {"path": "/"}}]});
    assert_eq!(run(volumes::host_path, &[], one), failed("hostPath volumes", r#"volume "data""#));
}

#[test]
fn host_ports() {
    let port = |host: i32| json!({"containerPort": 80, "hostPort": host});
    let one = containers(json!([
        {"name": "a", "ports": [port(0)]},
        {"name": "b", "ports": [port(0), port(20)]},
    ]));
    assert_eq!(run(host::ports, &[], one), failed("hostPort", r#"container "b" uses hostPort 20"#));
    let many = containers(json!([
        {"name": "a", "ports": [port(0)]},
        {"name": "b", "ports": [port(0), port(10), port(20)]},
        {"name": "c", "ports": [port(0), port(10), port(30)]},
    ]));
    assert_eq!(run(host::ports, &[], many), failed("hostPort", r#"containers "b", "c" use hostPorts 10, 20, 30"#));
    // Sorted as text, as upstream's string set sorts them.
    let text = containers(json!([{"name": "a", "ports": [port(9), port(10)]}]));
    assert_eq!(run(host::ports, &[], text), failed("hostPort", r#"container "a" uses hostPorts 10, 9"#));
}

#[test]
fn privileged_containers() {
    let spec = containers(json!([
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"privileged": false}},
        {"name": "d", "securityContext": {"privileged": true}},
        {"name": "e", "securityContext": {"privileged": true}},
    ]));
    assert_eq!(
        run(privilege::privileged, &[], spec),
        failed("privileged", r#"containers "d", "e" must not set securityContext.privileged=true"#)
    );
}

#[test]
fn proc_mount_stays_default() {
    let spec = containers(json!([
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"procMount": "Default"}},
        {"name": "d", "securityContext": {"procMount": "Unmasked"}},
        {"name": "e", "securityContext": {"procMount": "other"}},
    ]));
    assert_eq!(
        run(privilege::proc_mount, &[], spec),
        failed("procMount", r#"containers "d", "e" must not set securityContext.procMount to "Unmasked", "other""#)
    );
}

#[test]
fn restricted_volume_types() {
    let spec = json!({"containers": [{"name": "x"}], "volumes": [
        {"name": "a1", "emptyDir": {}},
        {"name": "a2", "secret": {}},
        {"name": "a3", "persistentVolumeClaim": {"claimName": "c"}},
        {"name": "a4", "downwardAPI": {}},
        {"name": "a5", "configMap": {}},
        {"name": "a6", "projected": {}},
        {"name": "a7", "csi": {"driver": "d"}},
        {"name": "a8", "ephemeral": {}},
        {"name": "b1", "hostPath": {"path": "/"}},
        {"name": "b2", "gcePersistentDisk": {"pdName": "p"}},
        {"name": "b3", "awsElasticBlockStore": {"volumeID": "v"}},
        {"name": "b4", "gitRepo": {"repository": "r"}},
        {"name": "b5", "nfs": {"server": "s", "path": "/"}},
        {"name": "b6", "iscsi": {"targetPortal": "t", "iqn": "i", "lun": 0}},
        {"name": "b7", "glusterfs": {"endpoints": "e", "path": "p"}},
        {"name": "b8", "rbd": {"monitors": [], "image": "i"}},
        {"name": "b9", "flexVolume": {"driver": "d"}},
        {"name": "b10", "cinder": {"volumeID": "v"}},
        {"name": "b11", "cephfs": {"monitors": []}},
        {"name": "b12", "flocker": {}},
        {"name": "b13", "fc": {}},
        {"name": "b14", "azureFile": {"secretName": "s", "shareName": "s"}},
        {"name": "b15", "vsphereVolume": {"volumePath": "v"}},
        {"name": "b16", "quobyte": {"registry": "r", "volume": "v"}},
        {"name": "b17", "azureDisk": {"diskName": "d", "diskURI": "u"}},
        {"name": "b18", "photonPersistentDisk": {"pdID": "p"}},
        {"name": "b19", "portworxVolume": {"volumeID": "v"}},
        {"name": "b20", "scaleIO": {"gateway": "g", "system": "s", "secretRef": {}}},
        {"name": "b21", "storageos": {}},
        {"name": "c1"},
    ]});
    let bad: Vec<String> = (1..=21).map(|i| format!("\"b{i}\"")).chain(["\"c1\"".to_string()]).collect();
    let want = format!(
        "volumes {} use restricted volume types {}",
        bad.join(", "),
        concat!(
            r#""awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", "#,
            r#""gcePersistentDisk", "gitRepo", "glusterfs", "hostPath", "iscsi", "nfs", "photonPersistentDisk", "#,
            r#""portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", "vsphereVolume""#
        )
    );
    assert_eq!(run(volumes::restricted, &[], spec), failed("restricted volume types", &want));
    let one = json!({"containers": [{"name": "x"}], "volumes": [{"name": "data", "hostPath": {"path": "/"}}]});
    assert_eq!(
        run(volumes::restricted, &[], one),
        failed("restricted volume types", r#"volume "data" uses restricted volume type "hostPath""#)
    );
}

#[test]
fn run_as_non_root() {
    let check = |spec| run(users::run_as_non_root, &[], spec);
    let reason = "runAsNonRoot != true";
    assert_eq!(
        check(containers(json!([{"name": "a"}]))),
        failed(reason, r#"pod or container "a" must set securityContext.runAsNonRoot=true"#)
    );
    assert_eq!(
        check(json!({"securityContext": {"runAsNonRoot": false}, "containers": [{"name": "a"}]})),
        failed(reason, "pod must not set securityContext.runAsNonRoot=false")
    );
    let containers_false = json!({"securityContext": {"runAsNonRoot": true}, "containers": [
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"runAsNonRoot": false}},
        {"name": "d", "securityContext": {"runAsNonRoot": false}},
        {"name": "e", "securityContext": {"runAsNonRoot": true}},
    ]});
    assert_eq!(
        check(containers_false),
        failed(reason, r#"containers "c", "d" must not set securityContext.runAsNonRoot=false"#)
    );
    let both = json!({"securityContext": {"runAsNonRoot": false}, "containers": [
        {"name": "a", "securityContext": {"runAsNonRoot": false}},
        {"name": "b", "securityContext": {"runAsNonRoot": true}},
    ]});
    assert_eq!(check(both), failed(reason, r#"pod and container "a" must not set securityContext.runAsNonRoot=false"#));
    let implicit = containers(json!([
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"runAsNonRoot": true}},
    ]));
    assert_eq!(
        check(implicit),
        failed(reason, r#"pod or containers "a", "b" must set securityContext.runAsNonRoot=true"#)
    );
    assert_eq!(check(json!({"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a"}]})), None);
}

#[test]
fn run_as_user_is_never_root() {
    let spec = json!({"securityContext": {"runAsUser": 0}, "containers": [
        {"name": "a"},
        {"name": "b", "securityContext": {"runAsUser": 1000}},
        {"name": "c", "securityContext": {"runAsUser": 0}},
        {"name": "d", "securityContext": {"runAsUser": 0}},
    ]});
    assert_eq!(
        run(users::run_as_user, &[], spec),
        failed("runAsUser=0", r#"pod and containers "c", "d" must not set runAsUser=0"#)
    );
    let pod_only = json!({"securityContext": {"runAsUser": 0}, "containers": [{"name": "a"}]});
    assert_eq!(run(users::run_as_user, &[], pod_only), failed("runAsUser=0", "pod must not set runAsUser=0"));
    assert_eq!(run(users::run_as_user, &[], containers(json!([{"name": "a"}]))), None);
}

#[test]
fn se_linux_options() {
    let se = |o: Value| json!({"seLinuxOptions": o});
    let spec = json!({"securityContext": se(json!({"type": "foo"})), "containers": [
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": se(json!({"type": "container_t"}))},
        {"name": "d", "securityContext": se(json!({"type": "container_init_t", "level": "s0"}))},
        {"name": "e", "securityContext": se(json!({"type": "bar"}))},
        {"name": "f", "securityContext": se(json!({"user": "bar"}))},
        {"name": "g", "securityContext": se(json!({"role": "baz"}))},
    ]});
    assert_eq!(
        run(profiles::se_linux_1_31, &[], spec),
        failed(
            "seLinuxOptions",
            r#"pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#
        )
    );
    let pod = |o: Value| json!({"securityContext": se(o), "containers": [{"name": "a"}]});
    assert_eq!(
        run(profiles::se_linux_1_31, &[], pod(json!({"type": "bad"}))),
        failed("seLinuxOptions", r#"pod set forbidden securityContext.seLinuxOptions: type "bad""#)
    );
    assert_eq!(
        run(profiles::se_linux_1_31, &[], pod(json!({"user": "bad"}))),
        failed("seLinuxOptions", "pod set forbidden securityContext.seLinuxOptions: user may not be set")
    );
    assert_eq!(
        run(profiles::se_linux_1_31, &[], pod(json!({"role": "bad"}))),
        failed("seLinuxOptions", "pod set forbidden securityContext.seLinuxOptions: role may not be set")
    );
    // container_engine_t joined the allowed types in 1.31.
    assert_eq!(run(profiles::se_linux_1_31, &[], pod(json!({"type": "container_engine_t"}))), None);
    assert!(run(profiles::se_linux_1_0, &[], pod(json!({"type": "container_engine_t"}))).is_some());
}

#[test]
fn seccomp_annotations_before_1_19() {
    let pod = [("seccomp.security.alpha.kubernetes.io/pod", "unconfined")];
    assert_eq!(
        run(profiles::seccomp_annotations, &pod, containers(json!([{"name": "a"}]))),
        failed("seccompProfile", r#"forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined""#)
    );
    let both = [
        ("seccomp.security.alpha.kubernetes.io/pod", "unconfined"),
        ("container.seccomp.security.alpha.kubernetes.io/a", "unconfined"),
        ("container.seccomp.security.alpha.kubernetes.io/b", "unknown"),
        ("container.seccomp.security.alpha.kubernetes.io/c", "runtime/default"),
    ];
    assert_eq!(
        run(profiles::seccomp_annotations, &both, containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]))),
        failed(
            "seccompProfile",
            concat!(
                r#"forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", "#,
                r#"container.seccomp.security.alpha.kubernetes.io/b="unknown", "#,
                r#"seccomp.security.alpha.kubernetes.io/pod="unconfined""#
            )
        )
    );
}

#[test]
fn seccomp_baseline_and_restricted() {
    let profile = |t: &str| json!({"seccompProfile": {"type": t}});
    let bad_containers = json!({"securityContext": profile("RuntimeDefault"), "containers": [
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": profile("Unconfined")},
        {"name": "d", "securityContext": profile("Unconfined")},
        {"name": "e", "securityContext": profile("RuntimeDefault")},
        {"name": "f", "securityContext": profile("Localhost")},
    ]});
    let want = failed(
        "seccompProfile",
        r#"containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined""#,
    );
    assert_eq!(run(profiles::seccomp_baseline, &[], bad_containers.clone()), want);
    assert_eq!(run(profiles::seccomp_restricted, &[], bad_containers), want);
    let mut bad_pod = json!({"securityContext": profile("Unconfined"), "containers": [
        {"name": "a"},
        {"name": "c", "securityContext": profile("Unconfined")},
        {"name": "d", "securityContext": profile("Unconfined")},
    ]});
    assert_eq!(
        run(profiles::seccomp_baseline, &[], bad_pod.clone()),
        failed(
            "seccompProfile",
            r#"pod and containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined""#
        )
    );
    bad_pod["containers"] = json!([{"name": "a"}]);
    assert_eq!(
        run(profiles::seccomp_restricted, &[], bad_pod),
        failed("seccompProfile", r#"pod must not set securityContext.seccompProfile.type to "Unconfined""#)
    );
    // Baseline lets a profile be unset; restricted needs one on the pod or every container.
    let unset = containers(json!([
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "d", "securityContext": profile("RuntimeDefault")},
    ]));
    assert_eq!(run(profiles::seccomp_baseline, &[], unset.clone()), None);
    assert_eq!(
        run(profiles::seccomp_restricted, &[], unset),
        failed(
            "seccompProfile",
            r#"pod or containers "a", "b" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#
        )
    );
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(profiles::seccomp_restricted_1_25, &[], windows), None);
    let pod_level = json!({"securityContext": profile("Localhost"), "containers": [{"name": "a"}]});
    assert_eq!(run(profiles::seccomp_restricted_1_25, &[], pod_level), None);
}

#[test]
fn sysctls_safe_set_grows_by_version() {
    let with = |names: &[&str]| {
        let sysctls: Vec<Value> = names.iter().map(|n| json!({"name": n, "value": "1"})).collect();
        json!({"securityContext": {"sysctls": sysctls}, "containers": [{"name": "a"}]})
    };
    assert_eq!(run(host::sysctls_1_32, &[], with(&["a", "b"])), failed("forbidden sysctls", "a, b"));
    assert_eq!(run(host::sysctls_1_0, &[], with(&["kernel.shm_rmid_forced"])), None);
    let reserved = with(&["net.ipv4.ip_local_reserved_ports"]);
    assert!(run(host::sysctls_1_0, &[], reserved.clone()).is_some());
    assert_eq!(run(host::sysctls_1_27, &[], reserved), None);
    for name in [
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ] {
        assert_eq!(run(host::sysctls_1_27, &[], with(&[name])), failed("forbidden sysctls", name));
        assert_eq!(run(host::sysctls_1_29, &[], with(&[name])), None);
    }
    for name in ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"] {
        assert_eq!(run(host::sysctls_1_29, &[], with(&[name])), failed("forbidden sysctls", name));
        assert_eq!(run(host::sysctls_1_32, &[], with(&[name])), None);
    }
}

#[test]
fn windows_host_process() {
    let hp = |v: Value| json!({"windowsOptions": v});
    let spec = json!({"securityContext": hp(json!({"hostProcess": true})), "containers": [
        {"name": "a"},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": hp(json!({}))},
        {"name": "d", "securityContext": hp(json!({"hostProcess": false}))},
        {"name": "e", "securityContext": hp(json!({"hostProcess": true}))},
        {"name": "f", "securityContext": hp(json!({"hostProcess": true}))},
    ]});
    assert_eq!(
        run(host::host_process, &[], spec),
        failed(
            "hostProcess",
            r#"pod and containers "e", "f" must not set securityContext.windowsOptions.hostProcess=true"#
        )
    );
}

#[test]
fn ephemeral_and_init_containers_are_checked_too() {
    let spec = json!({
        "initContainers": [{"name": "init", "securityContext": {"privileged": true}}],
        "containers": [{"name": "main"}],
        "ephemeralContainers": [{"name": "debug", "securityContext": {"privileged": true}}],
    });
    assert_eq!(
        run(privilege::privileged, &[], spec),
        failed("privileged", r#"containers "init", "debug" must not set securityContext.privileged=true"#)
    );
}

// --- The table and evaluation ---

fn evaluate_at(level: Level, version: Version, spec: Value) -> Evaluation {
    let spec: PodSpec = serde_json::from_value(spec).expect("pod spec");
    evaluate(LevelVersion::new(level, version), &PodView { annotations: &BTreeMap::new(), spec: &spec })
}

#[test]
fn checks_are_in_upstream_order() {
    let ids = |level| CHECKS.iter().filter(|c| c.level == level).map(|c| c.id).collect::<Vec<_>>();
    for level in [Level::Baseline, Level::Restricted] {
        let mut sorted = ids(level);
        // Go sorts strings by bytes, as `str`'s order does.
        sorted.sort_unstable();
        assert_eq!(ids(level), sorted);
    }
    let first_restricted = CHECKS.iter().position(|c| c.level == Level::Restricted).expect("restricted checks");
    assert!(CHECKS[first_restricted..].iter().all(|c| c.level == Level::Restricted));
    let newest = CHECKS.iter().flat_map(|c| c.versions.iter().map(|v| v.since)).max();
    assert_eq!(newest, Some(NEWEST));
    for c in CHECKS {
        assert!(c.versions.windows(2).all(|w| w[0].since < w[1].since), "{}", c.id);
    }
}

#[test]
fn a_plain_pod_violates_restricted_as_upstream_says() {
    let e = evaluate_at(Level::Restricted, Version::Latest, containers(json!([{"name": "web", "image": "nginx"}])));
    assert_eq!(
        e.forbidden_detail(),
        concat!(
            r#"allowPrivilegeEscalation != false (container "web" must set securityContext.allowPrivilegeEscalation=false), "#,
            r#"unrestricted capabilities (container "web" must set securityContext.capabilities.drop=["ALL"]), "#,
            r#"runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true), "#,
            r#"seccompProfile (pod or container "web" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
        )
    );
    assert_eq!(
        e.forbidden_reason(),
        "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
    );
    assert!(evaluate_at(Level::Baseline, Version::Latest, containers(json!([{"name": "web"}]))).allowed());
    assert!(
        evaluate_at(Level::Privileged, Version::Latest, json!({"hostPID": true, "containers": [{"name": "web"}]}))
            .allowed()
    );
}

#[test]
fn baseline_findings_come_first_in_restricted() {
    let spec = json!({"hostNetwork": true, "containers": [{"name": "web", "securityContext": {"privileged": true}}]});
    let e = evaluate_at(Level::Restricted, Version::Latest, spec);
    let reasons: Vec<&str> = e.violations.iter().map(|v| v.reason).collect();
    assert_eq!(
        reasons,
        [
            "host namespaces",
            "privileged",
            "allowPrivilegeEscalation != false",
            "unrestricted capabilities",
            "runAsNonRoot != true",
            "seccompProfile"
        ]
    );
}

#[test]
fn restricted_replaces_the_baseline_checks_it_tightens() {
    let spec = json!({
        "containers": [{"name": "web", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    });
    let e = evaluate_at(Level::Restricted, Version::Latest, spec.clone());
    let reasons: Vec<&str> = e.violations.iter().map(|v| v.reason).collect();
    assert!(!reasons.contains(&"non-default capabilities") && !reasons.contains(&"hostPath volumes"), "{reasons:?}");
    assert!(reasons.contains(&"unrestricted capabilities") && reasons.contains(&"restricted volume types"));
    // Before 1.22 restricted had no capabilities check of its own: baseline's ran.
    let old = evaluate_at(Level::Restricted, Version::Minor(21), spec);
    let reasons: Vec<&str> = old.violations.iter().map(|v| v.reason).collect();
    assert!(reasons.contains(&"non-default capabilities") && !reasons.contains(&"unrestricted capabilities"));
}

#[test]
fn versions_pick_each_checks_rules_then() {
    let root = json!({"securityContext": {"runAsUser": 0, "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "a", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]});
    // runAsUser=0 is checked from 1.23.
    assert!(evaluate_at(Level::Restricted, Version::Minor(22), root.clone()).allowed());
    assert!(!evaluate_at(Level::Restricted, Version::Minor(23), root.clone()).allowed());
    assert!(!evaluate_at(Level::Restricted, Version::Latest, root).allowed());
    // Versions past the newest check as the newest.
    let rmem = json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]}, "containers": [{"name": "a"}]});
    assert!(!evaluate_at(Level::Baseline, Version::Minor(31), rmem.clone()).allowed());
    assert!(evaluate_at(Level::Baseline, Version::Minor(32), rmem.clone()).allowed());
    assert!(evaluate_at(Level::Baseline, Version::Minor(40), rmem).allowed());
}

#[test]
fn a_compliant_pod_passes_restricted() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "web", "image": "nginx",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}],
    });
    assert_eq!(evaluate_at(Level::Restricted, Version::Latest, spec), Evaluation::default());
}
