//! Garbage collection (`skiff image prune`): blobs, snapshots and build-cache entries that no
//! reference and no lease keeps alive are removed.
//!
//! Leases: `leases/<name>.json` = `{"manifests": ["sha256:…"]}`, set through
//! [`ImageStore::set_lease`] (the node agent keeps one per pod, for the images its containers
//! use), so a prune never removes a running container's layers. Writers (pull,
//! build, import, load) hold a shared lock on `gc.lock` while they work; prune takes it
//! exclusively, so it never sees a half-finished image as garbage.

use crate::digest::Digest;
use crate::snapshot::chain_ids;
use crate::store::{ImageStore, StoreError, digest_of, io_err, write_atomic};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};

/// Held by a writer for the duration of its work.
pub struct WriterLease(File);

impl Drop for WriterLease {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub blobs: usize,
    pub snapshots: usize,
    pub cache_entries: usize,
    pub bytes: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Lease {
    #[serde(default)]
    manifests: Vec<String>,
}

impl ImageStore {
    fn gc_lock(&self) -> Result<File, StoreError> {
        let p = self.root().join("gc.lock");
        OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(io_err(p))
    }

    /// Keep prune away while this lease lives.
    pub fn writer_lease(&self) -> Result<WriterLease, StoreError> {
        let f = self.gc_lock()?;
        f.lock_shared().map_err(io_err(self.root().join("gc.lock")))?;
        Ok(WriterLease(f))
    }

    /// Keep the images with these manifest digests (`sha256:…`) while lease `name` exists,
    /// replacing what it kept before. Names are plain (`pod-<uid>`): letters, digits, `.-_`.
    pub fn set_lease(&self, name: &str, manifests: &[String]) -> Result<(), StoreError> {
        let path = self.lease_path(name)?;
        let body = serde_json::to_vec(&Lease { manifests: manifests.to_vec() })
            .map_err(|e| StoreError::Invalid { what: format!("lease {name}"), message: e.to_string() })?;
        write_atomic(&self.root().join("tmp"), &path, &body)
    }

    /// End lease `name`; ending one that does not exist is not an error.
    pub fn remove_lease(&self, name: &str) -> Result<(), StoreError> {
        let path = self.lease_path(name)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path)(e)),
            _ => Ok(()),
        }
    }

    fn lease_path(&self, name: &str) -> Result<std::path::PathBuf, StoreError> {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if name.is_empty() || name.starts_with('.') || !name.chars().all(plain) {
            return Err(StoreError::Invalid {
                what: format!("lease name {name:?}"),
                message: "not a plain name".into(),
            });
        }
        Ok(self.root().join("leases").join(format!("{name}.json")))
    }

    /// Manifests that must be kept: every reference and every lease.
    fn roots(&self) -> Result<HashSet<Digest>, StoreError> {
        let mut roots: HashSet<Digest> = self.list()?.iter().filter_map(|(_, d)| digest_of(d).ok()).collect();
        let leases = self.root().join("leases");
        for entry in fs::read_dir(&leases).map_err(io_err(&leases))?.flatten() {
            let Ok(text) = fs::read(entry.path()) else { continue };
            let lease: Lease = serde_json::from_slice(&text).map_err(|e| StoreError::Invalid {
                what: format!("lease {}", entry.path().display()),
                message: e.to_string(),
            })?;
            roots.extend(lease.manifests.iter().filter_map(|m| Digest::parse(m)));
        }
        Ok(roots)
    }

    pub fn prune(&self) -> Result<PruneReport, StoreError> {
        let lock = self.gc_lock()?;
        lock.lock().map_err(io_err(self.root().join("gc.lock")))?;
        let mut live_blobs: HashSet<String> = HashSet::new();
        let mut live_snapshots: HashSet<String> = HashSet::new();
        for m in self.roots()? {
            let Ok(img) = self.image_by_manifest(&m) else { continue };
            live_blobs.insert(m.hex().to_string());
            live_blobs.insert(img.config_digest.hex().to_string());
            for l in img.manifest.layers() {
                live_blobs.insert(digest_of(l)?.hex().to_string());
            }
            let diff_ids: Vec<Digest> =
                img.config.rootfs().diff_ids().iter().filter_map(|d| Digest::parse(d)).collect();
            live_snapshots.extend(chain_ids(&diff_ids).iter().map(|c| c.hex().to_string()));
        }
        let mut report = PruneReport::default();
        let blobs = self.root().join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(io_err(&blobs))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !live_blobs.contains(&name) {
                report.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(entry.path()).map_err(io_err(entry.path()))?;
                report.blobs += 1;
            }
        }
        let snaps = self.root().join("snapshots");
        for entry in fs::read_dir(&snaps).map_err(io_err(&snaps))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !live_snapshots.contains(&name) {
                fs::remove_dir_all(entry.path()).map_err(io_err(entry.path()))?;
                report.snapshots += 1;
            }
        }
        // Build-cache entries whose layer is gone can never hit again.
        let cache = self.root().join("build-cache");
        if let Ok(entries) = fs::read_dir(&cache) {
            for entry in entries.flatten() {
                let keep = fs::read(entry.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["layer"]["digest"].as_str().and_then(Digest::parse))
                    .is_some_and(|d| live_blobs.contains(d.hex()));
                if !keep {
                    fs::remove_file(entry.path()).map_err(io_err(entry.path()))?;
                    report.cache_entries += 1;
                }
            }
        }
        let _ = lock.unlock();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reference;

    fn image(store: &ImageStore, content: &[u8], tag: &str) -> crate::Image {
        let (l, d) = crate::layer::import_layer(store, &crate::testing::tar_of(&[("f", content)])[..]).expect("layer");
        let c = crate::layer::new_config(Default::default(), &[d], vec![], "2026-01-01T00:00:00Z").expect("config");
        store.put_image(&c, vec![l], &[Reference::parse(tag).expect("ref")]).expect("image")
    }

    #[test]
    fn prune_keeps_referenced_and_leased_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path()).expect("store");
        let kept = image(&store, b"kept", "kept:1");
        let leased = image(&store, b"leased", "leased:1");
        let gone = image(&store, b"gone", "gone:1");
        for i in [&kept, &leased, &gone] {
            store.unpack(i).expect("unpack");
        }
        store.set_lease("pod-a", &[leased.manifest_digest.to_string()]).expect("lease");
        assert!(store.set_lease("../escape", &[]).is_err(), "lease names are plain");
        store.remove_lease("pod-never-set").expect("ending a missing lease is fine");
        store.untag(&Reference::parse("leased:1").expect("ref")).expect("untag");
        store.untag(&Reference::parse("gone:1").expect("ref")).expect("untag");
        let report = store.prune().expect("prune");
        assert_eq!((report.blobs, report.snapshots), (3, 1), "{report:?}");
        assert!(store.image_by_manifest(&kept.manifest_digest).is_ok());
        assert!(store.image_by_manifest(&leased.manifest_digest).is_ok());
        assert!(store.image_by_manifest(&gone.manifest_digest).is_err());
        assert_eq!(store.unpack(&kept).expect("still unpacked").len(), 1);
        assert_eq!(store.prune().expect("again"), PruneReport::default());
        // Once its lease ends, the untagged image goes too.
        store.remove_lease("pod-a").expect("end the lease");
        assert!(store.prune().expect("after the lease").blobs > 0);
        assert!(store.image_by_manifest(&leased.manifest_digest).is_err());
    }
}
