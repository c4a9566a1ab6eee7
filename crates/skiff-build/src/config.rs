//! Applying config instructions to an image config (`oci_spec::image::Config`).

use crate::words;
use oci_spec::image::Config;
use parse_dockerfile::{Command, Instruction, JsonOrStringArray};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Parse(String),
    #[error("{instruction} is not allowed here: {why}")]
    NotAllowed { instruction: String, why: String },
    #[error(transparent)]
    Store(#[from] skiff_image::StoreError),
    /// An ENV or LABEL line whose words do not parse.
    #[error(transparent)]
    Words(#[from] words::WordsError),
}

fn shell_form(cmd: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), cmd.trim().to_string()]
}

fn command(c: &Command<'_>) -> Result<Vec<String>, BuildError> {
    match c {
        Command::Exec(items) => Ok(items.value.iter().map(|s| s.value.to_string()).collect()),
        Command::Shell(s) => Ok(shell_form(s.value)),
        other => Err(BuildError::Parse(format!("unsupported command form: {other:?}"))),
    }
}

/// Apply one parsed instruction; returns false for instructions that are not config changes.
pub fn apply_instruction(config: &mut Config, ins: &Instruction<'_>) -> Result<bool, BuildError> {
    match ins {
        Instruction::Cmd(c) => {
            config.set_cmd(Some(command(&c.arguments)?));
        }
        Instruction::Entrypoint(e) => {
            config.set_entrypoint(Some(command(&e.arguments)?));
            // Docker: setting ENTRYPOINT resets a CMD inherited from the base image.
            config.set_cmd(None);
        }
        Instruction::Env(e) => {
            let mut env: Vec<String> = config.env().clone().unwrap_or_default();
            for (k, v) in words::pairs(&e.arguments.value, "ENV")? {
                env.retain(|x| x.split_once('=').map(|(n, _)| n) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            config.set_env(Some(env));
        }
        Instruction::Label(l) => {
            let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
            labels.extend(words::pairs(&l.arguments.value, "LABEL")?);
            config.set_labels(Some(labels));
        }
        Instruction::Expose(e) => {
            let mut ports = config.exposed_ports().clone().unwrap_or_default();
            for p in &e.arguments {
                let p = p.value.trim();
                let port = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                let num = port.split('/').next().unwrap_or("");
                if num.parse::<u16>().is_err() {
                    return Err(BuildError::Parse(format!("invalid containerPort: {p}")));
                }
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
            config.set_exposed_ports(Some(ports));
        }
        Instruction::User(u) => {
            config.set_user(Some(u.arguments.value.trim().to_string()));
        }
        Instruction::Workdir(w) => {
            let dir = w.arguments.value.trim();
            let joined = if dir.starts_with('/') {
                dir.to_string()
            } else {
                let base = config.working_dir().clone().unwrap_or_else(|| "/".into());
                format!("{}/{dir}", base.trim_end_matches('/'))
            };
            config.set_working_dir(Some(joined));
        }
        Instruction::Volume(v) => {
            let mut vols = config.volumes().clone().unwrap_or_default();
            let list: Vec<String> = match &v.arguments {
                JsonOrStringArray::Json(items) => items.value.iter().map(|s| s.value.to_string()).collect(),
                JsonOrStringArray::String(items) => items.iter().map(|s| s.value.to_string()).collect(),
            };
            for p in list {
                if !vols.contains(&p) {
                    vols.push(p);
                }
            }
            config.set_volumes(Some(vols));
        }
        Instruction::Stopsignal(s) => {
            config.set_stop_signal(Some(s.arguments.value.trim().to_string()));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Apply a `--change` line such as `CMD ["sh"]` or `ENV A=1`, as `docker import --change` does.
pub fn apply_change(config: &mut Config, change: &str) -> Result<(), BuildError> {
    let text = format!("FROM scratch\n{change}\n");
    let file = parse_dockerfile::parse(&text).map_err(|e| BuildError::Parse(format!("--change {change:?}: {e}")))?;
    for ins in file.instructions.iter().skip(1) {
        if !apply_instruction(config, ins)? {
            return Err(BuildError::NotAllowed {
                instruction: change.split_whitespace().next().unwrap_or("").to_uppercase(),
                why: "--change accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR"
                    .into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_update_the_config() {
        let mut c = Config::default();
        apply_change(&mut c, r#"CMD ["sh"]"#).expect("cmd");
        assert_eq!(c.cmd().clone(), Some(vec!["sh".to_string()]));
        apply_change(&mut c, "ENTRYPOINT java -jar /app.jar").expect("entrypoint");
        assert_eq!(c.entrypoint().clone(), Some(vec!["/bin/sh".into(), "-c".into(), "java -jar /app.jar".into()]));
        assert_eq!(c.cmd().clone(), None);
        apply_change(&mut c, "ENV A=1 B=\"x y\"").expect("env");
        apply_change(&mut c, "ENV A=2").expect("env");
        assert_eq!(c.env().clone(), Some(vec!["B=x y".to_string(), "A=2".to_string()]));
        apply_change(&mut c, "EXPOSE 8080 53/udp").expect("expose");
        assert_eq!(c.exposed_ports().clone(), Some(vec!["8080/tcp".to_string(), "53/udp".to_string()]));
        apply_change(&mut c, "WORKDIR /app").expect("workdir");
        apply_change(&mut c, "WORKDIR sub").expect("workdir");
        assert_eq!(c.working_dir().clone(), Some("/app/sub".to_string()));
        apply_change(&mut c, "USER 1000:1000").expect("user");
        assert_eq!(c.user().clone(), Some("1000:1000".to_string()));
        assert!(apply_change(&mut c, "RUN echo hi").is_err());
        assert!(apply_change(&mut c, "BOGUS x").is_err());
    }
}
