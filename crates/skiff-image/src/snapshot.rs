//! Layer snapshots: each layer unpacked once into `snapshots/<chain id>/fs`, in the form overlayfs
//! reads as a lower directory (whiteouts become 0:0 character devices, opaque directories get
//! `trusted.overlay.opaque=y`). Unpacking checks the layer's diff_id and never writes outside the
//! snapshot, whatever paths and links the archive holds.

use crate::digest::{Digest, Hashing};
use crate::store::{Image, ImageStore, StoreError, digest_of, io_err};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::unistd::{Gid, Uid, fchownat};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

fn layer_error(layer: &str, message: impl ToString) -> StoreError {
    StoreError::Invalid { what: format!("layer {layer}"), message: message.to_string() }
}

/// OCI chain IDs: the identity of a layer together with everything below it.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let h = Sha256::digest(format!("{prev} {d}").as_bytes());
                Digest::parse(&format!("sha256:{}", hex::encode(h))).unwrap_or_else(|| d.clone())
            }
        };
        out.push(next);
    }
    out
}

/// A path inside the layer, relative and free of `..`, or an error naming it.
fn clean_path(p: &Path, layer: &str) -> Result<PathBuf, StoreError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(layer_error(layer, format!("entry {} escapes the root filesystem", p.display())));
            }
        }
    }
    Ok(out)
}

/// Decompress by magic number: gzip or plain tar.
fn decompressed(file: fs::File, layer: &str) -> Result<Box<dyn Read>, StoreError> {
    let mut r = BufReader::new(file);
    let magic = {
        use std::io::BufRead;
        r.fill_buf().map_err(|e| layer_error(layer, e))?.get(..4).map(<[u8]>::to_vec).unwrap_or_default()
    };
    match magic.as_slice() {
        [0x1f, 0x8b, ..] => Ok(Box::new(flate2::read::GzDecoder::new(r))),
        [0x28, 0xb5, 0x2f, 0xfd] => Err(layer_error(layer, "zstd-compressed layers are not supported yet")),
        _ => Ok(Box::new(r)),
    }
}

/// Unpack one layer archive into `dest`, verifying its uncompressed digest.
pub fn unpack_layer(blob: fs::File, dest: &Path, diff_id: &Digest, layer: &str) -> Result<(), StoreError> {
    let mut hashing = Hashing::new(decompressed(blob, layer)?);
    {
        let mut archive = tar::Archive::new(&mut hashing);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_unpack_xattrs(true);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        for entry in archive.entries().map_err(|e| layer_error(layer, e))? {
            let mut entry = entry.map_err(|e| layer_error(layer, e))?;
            let raw_path = entry.path().map_err(|e| layer_error(layer, e))?.into_owned();
            let rel = clean_path(&raw_path, layer)?;
            let Some(name) = rel.file_name().and_then(|n| n.to_str()).map(String::from) else { continue };
            let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
            if name == OPAQUE_MARKER {
                fs::create_dir_all(&parent).map_err(io_err(&parent))?;
                xattr::set(&parent, "trusted.overlay.opaque", b"y").map_err(io_err(&parent))?;
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                fs::create_dir_all(&parent).map_err(io_err(&parent))?;
                let target = parent.join(hidden);
                ensure_inside(dest, &parent, layer)?;
                let _ = fs::remove_file(&target);
                mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| io_err(&target)(e.into()))?;
                continue;
            }
            let header = entry.header();
            let kind = header.entry_type();
            if kind.is_hard_link() {
                let link = entry.link_name().map_err(|e| layer_error(layer, e))?.unwrap_or_default().into_owned();
                clean_path(&link, layer)?;
            }
            if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
                let target = dest.join(&rel);
                fs::create_dir_all(&parent).map_err(io_err(&parent))?;
                ensure_inside(dest, &parent, layer)?;
                let sflag = if kind.is_character_special() {
                    SFlag::S_IFCHR
                } else if kind.is_block_special() {
                    SFlag::S_IFBLK
                } else {
                    SFlag::S_IFIFO
                };
                let mode = Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777);
                let dev = makedev(
                    u64::from(header.device_major().ok().flatten().unwrap_or(0)),
                    u64::from(header.device_minor().ok().flatten().unwrap_or(0)),
                );
                let _ = fs::remove_file(&target);
                mknod(&target, sflag, mode, dev).map_err(|e| io_err(&target)(e.into()))?;
                let uid = header.uid().unwrap_or(0) as u32;
                let gid = header.gid().unwrap_or(0) as u32;
                fchownat(
                    nix::fcntl::AT_FDCWD,
                    &target,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| io_err(&target)(e.into()))?;
                continue;
            }
            let inside = entry.unpack_in(dest).map_err(|e| {
                let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
                layer_error(layer, format!("{}: {e}{cause}", raw_path.display()))
            })?;
            if !inside {
                return Err(layer_error(layer, format!("entry {} escapes the root filesystem", raw_path.display())));
            }
        }
    }
    // Read to the end so the digest covers the whole stream (tar stops at its end marker).
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| layer_error(layer, e))?;
    let actual = hashing.digest();
    if actual != *diff_id {
        return Err(StoreError::DigestMismatch {
            what: format!("uncompressed layer {layer}"),
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// `parent` (which exists) must resolve to a place inside `root`: a symlinked directory from an
/// earlier entry must not lead a write outside the snapshot.
fn ensure_inside(root: &Path, parent: &Path, layer: &str) -> Result<(), StoreError> {
    let root = root.canonicalize().map_err(io_err(root))?;
    let real = parent.canonicalize().map_err(io_err(parent))?;
    if real.starts_with(&root) {
        Ok(())
    } else {
        Err(layer_error(layer, format!("{} escapes the root filesystem", parent.display())))
    }
}

impl ImageStore {
    fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.root().join("snapshots").join(chain.hex())
    }

    /// Unpack the image's layers that are not unpacked yet; returns the layer directories,
    /// bottom layer first (overlayfs wants them reversed in `lowerdir=`).
    pub fn unpack(&self, image: &Image) -> Result<Vec<PathBuf>, StoreError> {
        let diff_ids: Vec<Digest> = image
            .config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d).ok_or_else(|| layer_error(d, "unsupported diff_id")))
            .collect::<Result<_, _>>()?;
        let layers = image.manifest.layers();
        if diff_ids.len() != layers.len() {
            return Err(layer_error(
                image.manifest_digest.as_str(),
                format!("manifest has {} layers but the config lists {} diff_ids", layers.len(), diff_ids.len()),
            ));
        }
        self.unpack_layers(layers, &diff_ids)
    }

    /// [`ImageStore::unpack`] for a layer stack that is not an image yet (a build in progress).
    pub fn unpack_layers(
        &self,
        layers: &[oci_spec::image::Descriptor],
        diff_ids: &[Digest],
    ) -> Result<Vec<PathBuf>, StoreError> {
        let mut dirs = Vec::new();
        for ((layer, diff_id), chain) in layers.iter().zip(diff_ids).zip(chain_ids(diff_ids)) {
            let dir = self.snapshot_dir(&chain);
            let fs_dir = dir.join("fs");
            if !fs_dir.exists() {
                let blob_digest = digest_of(layer)?;
                let staging = tempfile::Builder::new()
                    .prefix("unpack-")
                    .tempdir_in(self.root().join("tmp"))
                    .map_err(io_err(self.root().join("tmp")))?;
                let staged_fs = staging.path().join("fs");
                fs::create_dir(&staged_fs).map_err(io_err(&staged_fs))?;
                unpack_layer(self.open_blob(&blob_digest)?, &staged_fs, diff_id, blob_digest.as_str())?;
                // Another process may have finished the same snapshot first: keep theirs.
                match fs::rename(staging.path(), &dir) {
                    Ok(()) => {
                        let _ = staging.keep();
                    }
                    Err(_) if fs_dir.exists() => {}
                    Err(e) => return Err(io_err(&dir)(e)),
                }
            }
            dirs.push(fs_dir);
        }
        Ok(dirs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().expect("tar")
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32, uid: u64) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).expect("append");
    }

    fn special(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, link: Option<&str>) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(kind);
        if let Some(l) = link {
            h.set_link_name(l).expect("link");
        }
        b.append_data(&mut h, path, &[][..]).expect("append");
    }

    fn unpack_bytes(data: &[u8], dest: &Path) -> Result<(), StoreError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("layer.tar");
        fs::write(&p, data).expect("write");
        unpack_layer(fs::File::open(&p).expect("open"), dest, &Digest::of(data), "test")
    }

    #[test]
    fn unpacks_files_links_devices_and_whiteouts() {
        let data = tar_with(|b| {
            special(b, "etc/", tar::EntryType::Directory, None);
            file(b, "etc/app.conf", b"x=1\n", 0o640, 1000);
            special(b, "etc/link", tar::EntryType::Symlink, Some("/etc/app.conf"));
            special(b, "etc/hard", tar::EntryType::Link, Some("etc/app.conf"));
            special(b, "dev/null", tar::EntryType::Char, None);
            file(b, "var/.wh.old", b"", 0o644, 0);
            file(b, "opt/.wh..wh..opq", b"", 0o644, 0);
        });
        let dest = tempfile::tempdir().expect("dest");
        unpack_bytes(&data, dest.path()).expect("unpack");
        let conf = dest.path().join("etc/app.conf");
        assert_eq!(fs::read(&conf).expect("read"), b"x=1\n");
        let md = fs::metadata(&conf).expect("meta");
        assert_eq!((md.permissions().mode() & 0o777, md.uid(), md.nlink()), (0o640, 1000, 2));
        assert_eq!(fs::read_link(dest.path().join("etc/link")).expect("link"), Path::new("/etc/app.conf"));
        assert!(fs::metadata(dest.path().join("dev/null")).expect("dev").file_type().is_char_device());
        let wh = fs::metadata(dest.path().join("var/old")).expect("whiteout");
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
        assert_eq!(xattr::get(dest.path().join("opt"), "trusted.overlay.opaque").expect("xattr"), Some(b"y".to_vec()));
    }

    #[test]
    fn refuses_escapes_and_bad_digests() {
        let outside = tempfile::tempdir().expect("outside");
        let escape = tar_with(|b| {
            special(b, "evil", tar::EntryType::Symlink, Some(outside.path().to_str().expect("utf8")));
            file(b, "evil/pwned", b"!", 0o644, 0);
        });
        let dest = tempfile::tempdir().expect("dest");
        assert!(unpack_bytes(&escape, dest.path()).is_err());
        assert!(!outside.path().join("pwned").exists(), "nothing written outside the snapshot");

        let mut dotdot = tar_with(|b| file(b, "ok", b"1", 0o644, 0));
        // Rewrite the name in the header to "../x" (tar::Builder refuses to write it).
        dotdot[..4].copy_from_slice(b"../x");
        let mut h = tar::Header::from_byte_slice(&dotdot[..512]).clone();
        h.set_cksum();
        dotdot[..512].copy_from_slice(h.as_bytes());
        assert!(unpack_bytes(&dotdot, tempfile::tempdir().expect("d").path()).is_err());

        let good = tar_with(|b| file(b, "a", b"1", 0o644, 0));
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("l.tar");
        fs::write(&p, &good).expect("write");
        let res = unpack_layer(fs::File::open(&p).expect("open"), dest.path(), &Digest::of(b"other"), "t");
        assert!(matches!(res, Err(StoreError::DigestMismatch { .. })));
    }

    /// Needs root and overlayfs (CI runs as root).
    #[test]
    fn unpacked_image_mounts_with_overlay_and_whiteouts_hide_files() {
        use crate::layer::{import_layer, new_config};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(&dir.path().join("images")).expect("store");
        let base = tar_with(|b| {
            file(b, "keep", b"1", 0o644, 0);
            file(b, "gone", b"2", 0o644, 0);
            file(b, "data/old", b"3", 0o644, 0);
        });
        let top = tar_with(|b| {
            file(b, ".wh.gone", b"", 0o644, 0);
            file(b, "data/.wh..wh..opq", b"", 0o644, 0);
            file(b, "data/new", b"4", 0o644, 0);
        });
        let (l1, d1) = import_layer(&store, &base[..]).expect("layer 1");
        let (l2, d2) = import_layer(&store, &top[..]).expect("layer 2");
        let config = new_config(Default::default(), &[d1, d2], vec![], "2026-01-01T00:00:00Z").expect("config");
        let r = crate::Reference::parse("test/overlay:1").expect("ref");
        let img = store.put_image(&config, vec![l1, l2], &[r]).expect("image");
        let lowers = store.unpack(&img).expect("unpack");
        assert_eq!(store.unpack(&img).expect("unpack again"), lowers, "unpacked once, reused");
        let merged = dir.path().join("merged");
        fs::create_dir(&merged).expect("mkdir");
        crate::overlay::mount_readonly(&lowers, &merged).expect("mount overlay");
        let keep = merged.join("keep").exists();
        let gone = merged.join("gone").exists();
        let old = merged.join("data/old").exists();
        let new = fs::read(merged.join("data/new")).ok();
        nix::mount::umount(&merged).expect("umount");
        assert!(keep && !gone && !old, "keep={keep} gone={gone} old={old}");
        assert_eq!(new.as_deref(), Some(&b"4"[..]));
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
