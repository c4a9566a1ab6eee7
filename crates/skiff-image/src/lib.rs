//! skiff's local image store: content-addressed blobs and references in OCI image-layout terms,
//! layer snapshots for overlayfs, and image import/export.

pub mod archive;
pub mod digest;
pub mod gc;
pub mod layer;
pub mod reference;
pub mod registries;
pub mod registry;
pub mod report;
pub mod snapshot;
pub mod store;

pub use digest::Digest;
pub use reference::Reference;
pub use store::{Image, ImageStore, StoreError};
