//! `RUN`: the command runs in a container over the stage's filesystem, an overlay whose upper
//! directory collects what it changes; that directory becomes the step's layer. The container
//! runtime is the caller's ([`Runner`]): `skiff build` runs steps through the node's runtime.

use oci_spec::image::Config;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One RUN step, as the runner gets it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStep {
    /// The stage's layer directories, bottom first (the overlay's lower layers).
    pub layers: Vec<PathBuf>,
    /// An empty directory for the overlay: `upper`, `work` and `rootfs` are made inside it, and
    /// `upper` holds the changes afterwards.
    pub dir: PathBuf,
    /// The command line, with the shell form already wrapped in `/bin/sh -c`.
    pub args: Vec<String>,
    /// The stage's config: `Env` (build arguments included), `WorkingDir`, `User`.
    pub config: Config,
}

/// Runs a step to completion and returns its exit code (the step's output goes to the user).
pub type Runner<'a> = &'a dyn Fn(&RunStep) -> Result<i32, RunError>;

/// Why a [`Runner`] got no exit code for a step. A command that fails is an exit code, not this.
/// The variants follow handing a [`RunStep`] to a runtime process as JSON, as `skiff build` does.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    /// The step could not be written where the runtime reads it.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting the step: {0}")]
    Start(#[source] io::Error),
    /// The runtime exited without saying how the step ended.
    #[error("the step ended without a result ({0})")]
    NoResult(std::process::ExitStatus),
    /// The runtime's own failure: it comes from another process, so only its message is left.
    #[error("{0}")]
    Runtime(String),
}

/// The upper directory of a step's overlay as an OCI layer (tar): overlayfs whiteouts (0/0
/// character devices) become `.wh.` entries and opaque directories get `.wh..wh..opq`.
pub fn write_upper_layer(upper: &Path, out: impl Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    for entry in walkdir::WalkDir::new(upper).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(upper).map_err(io::Error::other)?;
        let md = entry.path().symlink_metadata()?;
        let ft = md.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(u64::from(md.uid()));
        h.set_gid(u64::from(md.gid()));
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        if ft.is_char_device() && md.rdev() == 0 {
            let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            tar.append_data(&mut h, rel.with_file_name(format!(".wh.{name}")), io::empty())?;
        } else if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut h, format!("{}/", rel.display()), io::empty())?;
            if is_opaque(entry.path()) {
                let mut wh = tar::Header::new_gnu();
                wh.set_entry_type(tar::EntryType::Regular);
                wh.set_mode(0o600);
                wh.set_size(0);
                tar.append_data(&mut wh, rel.join(".wh..wh..opq"), io::empty())?;
            }
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(&mut h, rel, fs::read_link(entry.path())?)?;
        } else if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            tar.append_data(&mut h, rel, fs::File::open(entry.path())?)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            };
            h.set_entry_type(kind);
            let dev = nix::sys::stat::major(md.rdev()) as u32;
            h.set_device_major(dev)?;
            h.set_device_minor(nix::sys::stat::minor(md.rdev()) as u32)?;
            tar.append_data(&mut h, rel, io::empty())?;
        }
        // Sockets are not part of a filesystem image.
    }
    tar.into_inner()?.flush()
}

/// An overlayfs directory that hides everything below it (`trusted.overlay.opaque=y`).
fn is_opaque(dir: &Path) -> bool {
    xattr::get(dir, "trusted.overlay.opaque").ok().flatten().is_some_and(|v| v == b"y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_directory_becomes_a_layer_with_whiteouts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let upper = dir.path();
        fs::create_dir_all(upper.join("www/new")).expect("dirs");
        fs::write(upper.join("www/run.txt"), "built\n").expect("file");
        std::os::unix::fs::symlink("run.txt", upper.join("www/link")).expect("symlink");
        // What `rm /www/old.txt` and `rm -r /data; mkdir /data` leave in an overlay's upper dir
        // (making them needs root, as skiff's tests have).
        nix::sys::stat::mknod(
            &upper.join("www/old.txt"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .expect("whiteout (root)");
        fs::create_dir(upper.join("data")).expect("data");
        xattr::set(upper.join("data"), "trusted.overlay.opaque", b"y").expect("opaque (root)");

        let mut buf = Vec::new();
        write_upper_layer(upper, &mut buf).expect("layer");
        let mut names = Vec::new();
        for e in tar::Archive::new(&buf[..]).entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            if name == "www/run.txt" {
                let mut s = String::new();
                io::Read::read_to_string(&mut e, &mut s).expect("read");
                assert_eq!(s, "built\n");
            }
            names.push(name);
        }
        assert_eq!(
            names,
            ["data/", "data/.wh..wh..opq", "www/", "www/link", "www/new/", "www/.wh.old.txt", "www/run.txt"]
        );
    }
}
