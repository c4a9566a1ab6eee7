//! `skiff-shim`: the per-pod shim as a small executable of its own, linked at a fixed address (see
//! build.rs). A pod's shim lives as long as the pod; the agent uses this one when it sits next to
//! `skiff`, and `skiff shim` otherwise. It links the shim alone: containers are started by
//! `skiff container-start`, so none of libcontainer's code or data is in (or near) the pages a
//! long-lived shim touches.

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args = args.strip_prefix(&[std::ffi::OsString::from("shim")]).unwrap_or(&args);
    match skiff_node::shim::main_from_args(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
