//! From a Pod's container and its image config to the process to start: argv by Kubernetes'
//! command/args rules over ENTRYPOINT/CMD, env with `$(VAR)` expansion, working directory, and the
//! user from the security context or the image. Errors carry the kubelet's waiting reason.

use crate::expand::expand;
use crate::status::WaitingReason;
use k8s_openapi::api::core::v1::{Container, PodSecurityContext};
use oci_spec::image::Config as ImageConfig;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Names in the container's root filesystem (`/etc/passwd`, `/etc/group`).
pub trait UserDb {
    /// (uid, primary gid) of a user name.
    fn user(&self, name: &str) -> Option<(u32, u32)>;
    fn group(&self, name: &str) -> Option<u32>;
    /// Supplementary groups listing the user.
    fn groups_of(&self, name: &str) -> Vec<u32>;
}

/// A user database read from `/etc/passwd` and `/etc/group` texts.
#[derive(Default)]
pub struct EtcFiles {
    pub passwd: String,
    pub group: String,
}

impl UserDb for EtcFiles {
    fn user(&self, name: &str) -> Option<(u32, u32)> {
        self.passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.first() != Some(&name) {
                return None;
            }
            Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
        })
    }
    fn group(&self, name: &str) -> Option<u32> {
        self.group.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.first() != Some(&name) {
                return None;
            }
            f.get(2)?.parse().ok()
        })
    }
    fn groups_of(&self, name: &str) -> Vec<u32> {
        self.group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let members = f.get(3)?;
                members.split(',').any(|m| m == name).then(|| f.get(2)?.parse().ok())?
            })
            .collect()
    }
}

/// The process a container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Why a container cannot be created; `reason()` is the kubelet's waiting reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("no command specified")]
    NoCommand,
    #[error("container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})")]
    RunsAsRoot { pod: String, container: String },
    #[error(
        "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: {pod:?}, container: {container})"
    )]
    NonNumericUser { user: String, pod: String, container: String },
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
}

impl ProcessError {
    /// The container's waiting reason, as the kubelet reports it.
    pub fn reason(&self) -> WaitingReason {
        match self {
            ProcessError::NoCommand | ProcessError::UnknownUser(_) | ProcessError::UnknownGroup(_) => {
                WaitingReason::CreateContainerError
            }
            ProcessError::RunsAsRoot { .. } | ProcessError::NonNumericUser { .. } => {
                WaitingReason::CreateContainerConfigError
            }
        }
    }
}

/// Kubernetes' rules: `command` replaces ENTRYPOINT (and drops CMD); `args` alone replace CMD.
pub fn argv(container: &Container, image: &ImageConfig) -> Vec<String> {
    let entrypoint = image.entrypoint().clone().unwrap_or_default();
    let cmd = image.cmd().clone().unwrap_or_default();
    match (&container.command, &container.args) {
        (Some(c), Some(a)) if !c.is_empty() => c.iter().chain(a).cloned().collect(),
        (Some(c), None) if !c.is_empty() => c.clone(),
        (_, Some(a)) if !a.is_empty() => entrypoint.into_iter().chain(a.iter().cloned()).collect(),
        _ => entrypoint.into_iter().chain(cmd).collect(),
    }
}

/// Add `NAME=value` unless `env` already has `NAME`.
pub fn set_default_env(env: &mut Vec<String>, name: &str, value: &str) {
    if !env.iter().any(|e| e.split_once('=').map(|(n, _)| n) == Some(name)) {
        env.push(format!("{name}={value}"));
    }
}

/// The container's environment, in containerd's order: `HOSTNAME` (and `TERM=xterm` for a
/// container with a terminal), then the image's, then the pod's (values expanded with `$(VAR)`
/// over the pod-defined variables before them), and a default PATH if none is set.
/// `container.env` holds plain values only: `valueFrom` and `envFrom` are resolved before
/// (`env::resolve`), their values escaped so that expansion leaves them as they are.
pub fn environment(
    container: &Container,
    image: &ImageConfig,
    hostname: Option<&str>,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut defined: Vec<(String, String)> = Vec::new();
    for e in container.env.iter().flatten() {
        let raw = e.value.clone().unwrap_or_default();
        let value = expand(&raw, |n| defined.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone()));
        defined.retain(|(k, _)| *k != e.name);
        defined.push((e.name.clone(), value));
    }
    let mut env: Vec<String> = Vec::new();
    if let Some(h) = hostname {
        env.push(format!("HOSTNAME={h}"));
    }
    if container.tty == Some(true) {
        env.push("TERM=xterm".into());
    }
    let name_of = |x: &str| x.split_once('=').map(|(n, _)| n.to_string()).unwrap_or_else(|| x.to_string());
    for e in image.env().clone().unwrap_or_default() {
        let name = name_of(&e);
        env.retain(|x| name_of(x) != name);
        env.push(e);
    }
    for (k, v) in &defined {
        env.retain(|x| name_of(x) != *k);
        env.push(format!("{k}={v}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    (env, defined)
}

/// The whole process for `container` of pod `pod` (`name_namespace(uid)` in messages).
pub fn process(
    pod: &str,
    hostname: Option<&str>,
    pod_security: Option<&PodSecurityContext>,
    container: &Container,
    image: &ImageConfig,
    users: &dyn UserDb,
) -> Result<Process, ProcessError> {
    let (env, defined) = environment(container, image, hostname);
    let lookup = |n: &str| defined.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let args: Vec<String> = argv(container, image)
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            // Only what came from the pod spec is expanded; the image's ENTRYPOINT/CMD are literal.
            let from_pod = container.command.as_ref().is_some_and(|c| !c.is_empty())
                || (container.args.as_ref().is_some_and(|a| !a.is_empty())
                    && i >= image.entrypoint().as_ref().map(Vec::len).unwrap_or(0));
            if from_pod { expand(&a, lookup) } else { a }
        })
        .collect();
    if args.is_empty() {
        return Err(ProcessError::NoCommand);
    }
    let cwd = container
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| image.working_dir().clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());

    let sc = container.security_context.as_ref();
    let run_as_user = sc.and_then(|s| s.run_as_user).or(pod_security.and_then(|p| p.run_as_user));
    let run_as_group = sc.and_then(|s| s.run_as_group).or(pod_security.and_then(|p| p.run_as_group));
    let non_root = sc.and_then(|s| s.run_as_non_root).or(pod_security.and_then(|p| p.run_as_non_root)).unwrap_or(false);
    let image_user = image.user().clone().unwrap_or_default();
    let (user_part, group_part) = match image_user.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (image_user.clone(), None),
    };
    let (uid, primary_gid, user_name) = match run_as_user {
        Some(u) => (u as u32, None, None),
        None if user_part.is_empty() => (0, Some(0), Some("root".to_string())),
        None => match user_part.parse::<u32>() {
            Ok(n) => (n, None, None),
            Err(_) => {
                if non_root {
                    return Err(ProcessError::NonNumericUser {
                        user: user_part,
                        pod: pod.into(),
                        container: container.name.clone(),
                    });
                }
                let (u, g) = users.user(&user_part).ok_or_else(|| ProcessError::UnknownUser(user_part.clone()))?;
                (u, Some(g), Some(user_part.clone()))
            }
        },
    };
    if non_root && uid == 0 {
        return Err(ProcessError::RunsAsRoot { pod: pod.into(), container: container.name.clone() });
    }
    let gid = match (run_as_group, &group_part) {
        (Some(g), _) => g as u32,
        (None, Some(g)) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => users.group(g).ok_or_else(|| ProcessError::UnknownGroup(g.clone()))?,
        },
        (None, None) => primary_gid.unwrap_or(uid),
    };
    let mut additional_gids: Vec<u32> = user_name.as_deref().map(|n| users.groups_of(n)).unwrap_or_default();
    additional_gids.extend(
        pod_security.and_then(|p| p.supplemental_groups.clone()).unwrap_or_default().into_iter().map(|g| g as u32),
    );
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(Process { args, env, cwd, uid, gid, additional_gids })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.set_entrypoint(entrypoint.map(|v| v.iter().map(|s| s.to_string()).collect()));
        c.set_cmd(cmd.map(|v| v.iter().map(|s| s.to_string()).collect()));
        c
    }

    fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
        Container {
            name: "c".into(),
            command: command.map(|v| v.iter().map(|s| s.to_string()).collect()),
            args: args.map(|v| v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn command_and_args_follow_the_kubernetes_table() {
        let img = image(Some(&["/ep"]), Some(&["cmd"]));
        type Case<'a> = (Option<&'a [&'a str]>, Option<&'a [&'a str]>, &'a [&'a str]);
        let cases: [Case; 4] = [
            (None, None, &["/ep", "cmd"]),
            (Some(&["/c"]), None, &["/c"]),
            (None, Some(&["a"]), &["/ep", "a"]),
            (Some(&["/c"]), Some(&["a"]), &["/c", "a"]),
        ];
        for (c, a, want) in cases {
            assert_eq!(argv(&container(c, a), &img), want, "command={c:?} args={a:?}");
        }
        let none = image(None, None);
        assert_eq!(
            process("p", None, None, &container(None, None), &none, &EtcFiles::default()),
            Err(ProcessError::NoCommand)
        );
    }

    #[test]
    fn env_expands_and_overrides_the_image() {
        let mut img = image(None, Some(&["sh"]));
        img.set_env(Some(vec!["PATH=/bin".into(), "A=image".into()]));
        let mut c = container(Some(&["echo", "$(A)-$(B)", "$(MISSING)", "$$(A)"]), None);
        c.env = Some(
            [("A", "pod"), ("B", "$(A)x")]
                .iter()
                .map(|(k, v)| k8s_openapi::api::core::v1::EnvVar {
                    name: k.to_string(),
                    value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
        );
        let p = process("p", None, None, &c, &img, &EtcFiles::default()).expect("process");
        assert_eq!(p.env, ["PATH=/bin", "A=pod", "B=podx"]);
        assert_eq!(p.args, ["echo", "pod-podx", "$(MISSING)", "$(A)"]);
        let plain = process("p", None, None, &container(None, None), &image(None, Some(&["sh"])), &EtcFiles::default())
            .expect("p");
        assert_eq!(plain.env, [DEFAULT_PATH]);
        assert_eq!((plain.cwd.as_str(), plain.uid, plain.gid), ("/", 0, 0));
    }

    #[test]
    fn hostname_and_terminal_come_first_and_yield_to_the_image_and_pod() {
        let mut img = image(None, Some(&["sh"]));
        img.set_env(Some(vec!["PATH=/bin".into(), "TERM=vt100".into()]));
        let mut c = container(None, None);
        c.tty = Some(true);
        let p = process("p", Some("web"), None, &c, &img, &EtcFiles::default()).expect("process");
        assert_eq!(p.env, ["HOSTNAME=web", "PATH=/bin", "TERM=vt100"]);
        let p = process("p", Some("web"), None, &c, &image(None, Some(&["sh"])), &EtcFiles::default()).expect("p");
        assert_eq!(p.env, [DEFAULT_PATH, "HOSTNAME=web", "TERM=xterm"]);
        let mut env = vec!["TERM=dumb".to_string()];
        set_default_env(&mut env, "TERM", "xterm");
        set_default_env(&mut env, "LANG", "C");
        assert_eq!(env, ["TERM=dumb", "LANG=C"]);
    }

    #[test]
    fn users_from_security_context_or_image() {
        let db = EtcFiles {
            passwd: "root:x:0:0::/root:/bin/sh\nnginx:x:101:101::/:/bin/false\n".into(),
            group: "root:x:0:\nnginx:x:101:\nwww:x:33:nginx\n".into(),
        };
        let mut img = image(None, Some(&["sh"]));
        img.set_user(Some("nginx".into()));
        let p = process("p", None, None, &container(None, None), &img, &db).expect("named user");
        assert_eq!((p.uid, p.gid, p.additional_gids.clone()), (101, 101, vec![33]));
        img.set_user(Some("1000:www".into()));
        let p = process("p", None, None, &container(None, None), &img, &db).expect("uid:group");
        assert_eq!((p.uid, p.gid), (1000, 33));
        let mut c = container(None, None);
        c.security_context = Some(k8s_openapi::api::core::v1::SecurityContext {
            run_as_user: Some(2000),
            run_as_group: Some(3000),
            ..Default::default()
        });
        let p = process("p", None, None, &c, &img, &db).expect("securityContext wins");
        assert_eq!((p.uid, p.gid), (2000, 3000));

        let non_root = PodSecurityContext { run_as_non_root: Some(true), ..Default::default() };
        let root_img = image(None, Some(&["sh"]));
        let e = process("web_default(u1)", None, Some(&non_root), &container(None, None), &root_img, &db)
            .expect_err("root");
        assert_eq!(e.reason(), WaitingReason::CreateContainerConfigError);
        assert_eq!(
            e.to_string(),
            "container has runAsNonRoot and image will run as root (pod: \"web_default(u1)\", container: c)"
        );
        let mut named = image(None, Some(&["sh"]));
        named.set_user(Some("nginx".into()));
        assert!(matches!(
            process("p", None, Some(&non_root), &container(None, None), &named, &db),
            Err(ProcessError::NonNumericUser { .. })
        ));
        named.set_user(Some("ghost".into()));
        assert_eq!(
            process("p", None, None, &container(None, None), &named, &db),
            Err(ProcessError::UnknownUser("ghost".into()))
        );
    }
}
