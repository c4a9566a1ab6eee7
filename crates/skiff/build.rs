//! `skiff-shim` is linked as a fixed-address executable: one runs per pod for the pod's whole life,
//! and a position-independent one would write (and so privately copy) its relocated data, several
//! hundred KB, in every process. The long-lived server and CLI keep full ASLR.

fn main() {
    println!("cargo:rustc-link-arg-bin=skiff-shim=-no-pie");
}
