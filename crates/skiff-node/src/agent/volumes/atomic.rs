//! Writing a volume's files so that a container never sees half an update, as the kubelet's
//! `AtomicWriter` does: the files go into a fresh hidden directory (`..2026_12_06_...`), the
//! `..data` symlink is swapped to it in one rename, and each top-level name is a symlink through
//! `..data` (`key -> ..data/key`). A reader follows `..data` once and sees the old set or the
//! new one. Writing what is already there changes nothing.

use super::payload::{File, Payload};
use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path};

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// Why a payload could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("invalid path {0:?}: must be relative, without '..' and not starting with '..'")]
    Path(String),
    #[error("writing {path}: {source}")]
    Io { path: String, source: io::Error },
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io { path: path.display().to_string(), source }
}

/// Make `dir` hold exactly `payload`. Returns whether anything changed.
pub fn write(dir: &Path, payload: &Payload) -> Result<bool, WriteError> {
    for path in payload.keys() {
        check(path)?;
    }
    std::fs::create_dir_all(dir).map_err(at(dir))?;
    let old = std::fs::read_link(dir.join(DATA)).ok();
    if let Some(old) = &old
        && holds(&dir.join(old), payload)
    {
        return Ok(false);
    }
    let stamp = jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S.%f").to_string();
    let fresh = dir.join(&stamp);
    std::fs::create_dir(&fresh).map_err(at(&fresh))?;
    for (path, file) in payload {
        let target = fresh.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(at(parent))?;
        }
        std::fs::write(&target, &file.data).map_err(at(&target))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode & 0o7777)).map_err(at(&target))?;
        if let Some(o) = file.owner {
            std::os::unix::fs::chown(&target, o.uid, o.gid).map_err(at(&target))?;
        }
    }
    // Swap `..data` to the new directory in one step.
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    symlink(&stamp, &tmp).map_err(at(&tmp))?;
    std::fs::rename(&tmp, dir.join(DATA)).map_err(at(&tmp))?;
    // The user-visible names: one symlink per top-level name, through `..data`.
    let wanted: BTreeSet<&str> = payload.keys().filter_map(|p| p.split('/').next()).collect();
    for name in &wanted {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA).join(name), &link).map_err(at(&link))?;
        }
    }
    for entry in std::fs::read_dir(dir).map_err(at(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !wanted.contains(name.as_str()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

/// A relative path inside the volume, none of its parts `..` and not hidden by a leading `..`.
fn check(path: &str) -> Result<(), WriteError> {
    let p = Path::new(path);
    let ok = !path.is_empty() && !path.starts_with("..") && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok { Ok(()) } else { Err(WriteError::Path(path.into())) }
}

/// Whether `dir` holds exactly `payload` (files, contents and modes).
fn holds(dir: &Path, payload: &Payload) -> bool {
    let same = |path: &str, file: &File| {
        let p = dir.join(path);
        let Ok(meta) = std::fs::metadata(&p) else { return false };
        let owned =
            file.owner.is_none_or(|o| o.uid.is_none_or(|u| meta.uid() == u) && o.gid.is_none_or(|g| meta.gid() == g));
        meta.permissions().mode() & 0o7777 == file.mode & 0o7777
            && owned
            && std::fs::read(&p).is_ok_and(|d| d == file.data)
    };
    payload.iter().all(|(p, f)| same(p, f)) && count_files(dir) == payload.len()
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(files: &[(&str, &str)]) -> Payload {
        files
            .iter()
            .map(|(p, d)| (p.to_string(), File { data: d.as_bytes().to_vec(), mode: 0o644, owner: None }))
            .collect()
    }

    fn read(dir: &Path, path: &str) -> Option<String> {
        std::fs::read_to_string(dir.join(path)).ok()
    }

    #[test]
    fn files_appear_through_data_and_updates_swap_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("vol");
        assert!(write(&dir, &payload(&[("mode", "fast"), ("conf/a.txt", "A")])).expect("write"));
        assert_eq!(read(&dir, "mode").as_deref(), Some("fast"));
        assert_eq!(read(&dir, "conf/a.txt").as_deref(), Some("A"));
        assert_eq!(std::fs::read_link(dir.join("mode")).expect("link"), Path::new("..data/mode"));
        let first = std::fs::read_link(dir.join(DATA)).expect("..data");

        // The same again: nothing written.
        assert!(!write(&dir, &payload(&[("mode", "fast"), ("conf/a.txt", "A")])).expect("write"));
        assert_eq!(std::fs::read_link(dir.join(DATA)).expect("..data"), first);

        // An update: new contents, a name gone, the old directory removed.
        assert!(write(&dir, &payload(&[("mode", "slow")])).expect("write"));
        assert_eq!(read(&dir, "mode").as_deref(), Some("slow"));
        assert!(std::fs::symlink_metadata(dir.join("conf")).is_err());
        assert!(!dir.join(first).exists());
        let left: Vec<String> =
            std::fs::read_dir(&dir).expect("dir").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
        assert_eq!(left.len(), 3, "{left:?}"); // ..data, the timestamped directory, mode
    }

    #[test]
    fn modes_are_set_and_a_mode_change_is_an_update() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut p = payload(&[("key", "v")]);
        p.get_mut("key").expect("key").mode = 0o400;
        assert!(write(tmp.path(), &p).expect("write"));
        let mode = std::fs::metadata(tmp.path().join("key")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        p.get_mut("key").expect("key").mode = 0o600;
        assert!(write(tmp.path(), &p).expect("write"));
    }

    #[test]
    fn paths_that_leave_the_volume_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for bad in ["../x", "/etc/passwd", "a/../../x", "..data", ""] {
            assert!(matches!(write(tmp.path(), &payload(&[(bad, "x")])), Err(WriteError::Path(_))), "{bad}");
        }
    }
}
