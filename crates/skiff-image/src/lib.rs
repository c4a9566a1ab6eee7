//! skiff's local image store: content-addressed blobs and references in OCI image-layout terms,
//! layer snapshots for overlayfs and their overlay mounts, and image import/export.

pub mod archive;
pub mod digest;
pub mod gc;
pub mod layer;
pub mod overlay;
pub mod reference;
pub mod registries;
pub mod registry;
pub mod report;
pub mod snapshot;
pub mod store;

pub use digest::Digest;
pub use reference::Reference;
pub use store::{Image, ImageStore, StoreError};

/// Helpers for tests that need layer tarballs (this crate's and the builder's).
#[doc(hidden)]
pub mod testing {
    /// A tar of regular files (mode 0644, owned by root, mtime 0).
    pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap_or_else(|e| panic!("building a test tar: {e}"));
        }
        b.into_inner().unwrap_or_else(|e| panic!("building a test tar: {e}"))
    }
}
