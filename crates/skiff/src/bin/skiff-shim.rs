//! `skiff-shim`: the per-pod shim as a small executable of its own. A pod's shim lives as long as
//! the pod, and the relocated data of the whole `skiff` binary alone is about 1 MB per process;
//! this one links only the shim. The agent uses it when it sits next to `skiff`, and re-executes
//! `skiff shim` otherwise.

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match skiff_node::shim::main_from_args(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
