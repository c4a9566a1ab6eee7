//! What runs in a pod's shim process and in the node's short-lived helper processes, apart from
//! the agent: the long-lived shim ([`control`]: the pod sandbox, reaper and log writer, which
//! links no libcontainer), what it shares with the agent ([`protocol`], `crate::pod_dir`), the
//! libcontainer helpers that live for one operation ([`runtime`]: `container-start`,
//! `container-exec`; [`build_step`]: one `skiff build` RUN step), passing descriptors over
//! sockets ([`fdpass`]) and cgroup housekeeping ([`cgroup`]). [`helper_main`] dispatches a
//! process to its role by its first argument.

pub mod build_step;
pub(crate) mod cgroup;
pub(crate) mod control;
pub(crate) mod fdpass;
pub(crate) mod protocol;
pub mod runtime;

pub use control::{ShimError, main_from_args, run};
pub use protocol::{Reply, Request, container_id};

/// The node's processes of their own, by their first argument: `shim ...` (one per pod),
/// `container-start ...` (one per container start) and `container-exec ...` (one per exec);
/// `None` for anything else.
pub fn helper_main(args: &[std::ffi::OsString]) -> Option<std::process::ExitCode> {
    let succeeded = match args.first().and_then(|a| a.to_str()) {
        Some("shim") => control::main_from_args(&args[1..]).inspect_err(|e| eprintln!("error: {e}")).is_ok(),
        // Its stdout and stderr are the container's: it reports in the bundle's start.json.
        Some("container-start") => runtime::container_start_main(&args[1..]).is_ok(),
        // Its exit code is the command's.
        Some("container-exec") => {
            let code = runtime::container_exec_main(&args[1..]);
            return Some(std::process::ExitCode::from(u8::try_from(code).unwrap_or(126)));
        }
        _ => return None,
    };
    Some(if succeeded { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}
