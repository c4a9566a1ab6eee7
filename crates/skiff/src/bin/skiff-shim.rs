//! `skiff-shim`: the per-pod shim as a small executable of its own, linked at a fixed address (see
//! build.rs). A pod's shim lives as long as the pod; the agent uses this one when it sits next to
//! `skiff`, and `skiff` itself otherwise. `skiff-shim container-start` is the shim's short-lived
//! helper that creates one container (the long-lived shim never runs that code).

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    skiff_node::shim::helper_main(&args).unwrap_or_else(|| {
        eprintln!("usage: skiff-shim shim|container-start ... (started by the skiff node agent)");
        std::process::ExitCode::FAILURE
    })
}
