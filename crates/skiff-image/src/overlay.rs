//! Overlay mounts of unpacked layers (`ImageStore::unpack`'s directories, bottom first): the one
//! place that stacks them, for a container's root filesystem on the node, a `skiff build` RUN
//! step's, and the read-only view of a stage that `COPY --from` reads.

use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

/// Why an overlay could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("the image has no layers")]
    NoLayers,
    #[error(transparent)]
    Mount(nix::errno::Errno),
}

/// The `lowerdir` option for `layers` (bottom first): overlayfs lists the top one first.
fn lowerdir(layers: &[PathBuf]) -> String {
    let lower: Vec<String> = layers.iter().rev().map(|p| p.display().to_string()).collect();
    format!("lowerdir={}", lower.join(":"))
}

/// Mount `base/rootfs` as a writable overlay of `layers` (bottom first) whose changes go to
/// `base/upper` (overlayfs' scratch space is `base/work`). The three directories must exist. A
/// `rootfs` that is already a mount point is left as it is: a re-prepared attempt, or a
/// restarted agent, finds its own mount there.
pub fn mount_writable(layers: &[PathBuf], base: &Path) -> Result<(), OverlayError> {
    let target = base.join("rootfs");
    if is_mount_point(&target) {
        return Ok(());
    }
    if layers.is_empty() {
        return Err(OverlayError::NoLayers);
    }
    let data = format!(
        "{},upperdir={},workdir={}",
        lowerdir(layers),
        base.join("upper").display(),
        base.join("work").display()
    );
    mount(&target, MsFlags::empty(), &data)
}

/// Mount `target` as a read-only overlay of `layers` (bottom first; at least two: one layer is
/// its own view, without a mount).
pub fn mount_readonly(layers: &[PathBuf], target: &Path) -> Result<(), OverlayError> {
    if layers.is_empty() {
        return Err(OverlayError::NoLayers);
    }
    mount(target, MsFlags::MS_RDONLY, &lowerdir(layers))
}

fn mount(target: &Path, flags: MsFlags, data: &str) -> Result<(), OverlayError> {
    nix::mount::mount(Some("overlay"), target, Some("overlay"), flags, Some(data)).map_err(OverlayError::Mount)
}

/// Whether `path` is a mount point (as this process's mount table says).
pub fn is_mount_point(path: &Path) -> bool {
    let target = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|info| info.lines().any(|l| l.split(' ').nth(4) == Some(target.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_layer_comes_first_and_no_layers_is_an_error() {
        assert_eq!(lowerdir(&["/l/1".into(), "/l/2".into()]), "lowerdir=/l/2:/l/1");
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(mount_writable(&[], dir.path()), Err(OverlayError::NoLayers)));
        assert!(matches!(mount_readonly(&[], dir.path()), Err(OverlayError::NoLayers)));
        assert!(!is_mount_point(dir.path()));
    }
}
