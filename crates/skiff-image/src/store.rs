//! The content-addressed store in OCI image-layout terms:
//!
//! ```text
//! images/oci-layout
//! images/index.json        references: one manifest descriptor per `org.opencontainers.image.ref.name`
//! images/blobs/sha256/…    manifests, configs, layers
//! images/snapshots/…       unpacked layers (see `snapshot`)
//! images/tmp/              in-progress writes, renamed into place when complete
//! ```
//!
//! Blobs are written to `tmp/`, verified, synced and renamed, so a blob path either holds the
//! whole verified content or does not exist. `index.json` is replaced atomically under an
//! exclusive file lock, so concurrent `skiff` processes never lose each other's references.

use crate::digest::{Digest, Hashing};
use crate::reference::Reference;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The annotation naming a reference in `index.json`.
pub const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: String, actual: String },
    #[error("image {0} not found in the local store")]
    NotFound(String),
    #[error("blob {0} not found in the local store")]
    BlobNotFound(String),
    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

fn invalid(what: &str, message: impl ToString) -> StoreError {
    StoreError::Invalid { what: what.into(), message: message.to_string() }
}

/// An image resolved from the store: its manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    pub reference: Option<Reference>,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
}

impl Image {
    /// Docker's IMAGE ID: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// Compressed size of config and layers, as `docker images` reports for pulled images.
    pub fn size(&self) -> u64 {
        self.manifest.layers().iter().map(|l| l.size()).sum::<u64>() + self.manifest.config().size()
    }
}

#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// Open (creating if needed) the store at `root` (normally `DATA_DIR/images`).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        for d in ["blobs/sha256", "snapshots", "tmp", "leases"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(root, &layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let store = ImageStore { root: root.to_path_buf() };
        if !store.index_path().exists() {
            store.write_index(&empty_index()?)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// A new temporary file inside the store (same filesystem, so it can be renamed into place).
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile, StoreError> {
        let dir = self.root.join("tmp");
        tempfile::NamedTempFile::new_in(&dir).map_err(io_err(dir))
    }

    /// Store a blob from a reader, verifying it against `expected` when given.
    pub fn put_blob(&self, reader: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let tmp = self.temp_file()?;
        let mut hashing = Hashing::new(reader);
        let mut file = tmp.as_file();
        io::copy(&mut hashing, &mut file).map_err(io_err(tmp.path()))?;
        let digest = hashing.digest();
        if let Some(exp) = expected
            && *exp != digest
        {
            return Err(StoreError::DigestMismatch {
                what: format!("blob {exp}"),
                expected: exp.to_string(),
                actual: digest.to_string(),
            });
        }
        self.commit_blob(tmp, &digest)?;
        Ok((digest, hashing.bytes))
    }

    pub fn put_blob_bytes(&self, data: &[u8]) -> Result<(Digest, u64), StoreError> {
        self.put_blob(data, None)
    }

    /// Move a completed, verified temporary file into place as blob `digest`.
    pub fn commit_blob(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<(), StoreError> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(());
        }
        tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
        tmp.persist(&dest).map_err(|e| StoreError::Io { path: dest.clone(), source: e.error })?;
        Ok(())
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        File::open(self.blob_path(d)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(d.to_string()),
            _ => StoreError::Io { path: self.blob_path(d), source: e },
        })
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        self.open_blob(d)?.read_to_end(&mut buf).map_err(io_err(self.blob_path(d)))?;
        Ok(buf)
    }

    fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let p = self.index_path();
        let data = fs::read(&p).map_err(io_err(&p))?;
        serde_json::from_slice(&data).map_err(|e| invalid("index.json", e))
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(index).map_err(|e| invalid("index.json", e))?;
        write_atomic(&self.root.join("tmp"), &self.index_path(), &data)
    }

    /// Run `f` on the index under the writers' lock and save what it returns.
    fn update_index<T>(&self, f: impl FnOnce(&mut Vec<Descriptor>) -> T) -> Result<T, StoreError> {
        let lock_path = self.root.join("index.lock");
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let mut index = self.read_index()?;
        let mut manifests = index.manifests().clone();
        let out = f(&mut manifests);
        index.set_manifests(manifests);
        let res = self.write_index(&index);
        let _ = lock.unlock();
        res.map(|_| out)
    }

    /// Point `reference` at a manifest.
    pub fn tag(&self, reference: &Reference, manifest: &Descriptor) -> Result<(), StoreError> {
        let name = reference.to_string();
        let mut desc = manifest.clone();
        let mut ann: HashMap<String, String> = desc.annotations().clone().unwrap_or_default();
        ann.insert(REF_ANNOTATION.into(), name.clone());
        desc.set_annotations(Some(ann));
        self.update_index(|ms| {
            ms.retain(|d| ref_name(d) != Some(name.as_str()));
            ms.push(desc);
        })
    }

    /// Remove a reference; returns whether it existed.
    pub fn untag(&self, reference: &Reference) -> Result<bool, StoreError> {
        let name = reference.to_string();
        self.update_index(|ms| {
            let before = ms.len();
            ms.retain(|d| ref_name(d) != Some(name.as_str()));
            ms.len() != before
        })
    }

    /// Every reference and its manifest descriptor.
    pub fn list(&self) -> Result<Vec<(Reference, Descriptor)>, StoreError> {
        let index = self.read_index()?;
        Ok(index.manifests().iter().filter_map(|d| Some((Reference::parse(ref_name(d)?).ok()?, d.clone()))).collect())
    }

    pub fn resolve(&self, reference: &Reference) -> Result<Option<Descriptor>, StoreError> {
        let name = reference.to_string();
        Ok(self.read_index()?.manifests().iter().find(|d| ref_name(d) == Some(name.as_str())).cloned())
    }

    /// Load an image by reference (or by a `sha256:` digest / ID prefix of one of the stored images).
    pub fn image(&self, reference: &Reference) -> Result<Image, StoreError> {
        let desc = match self.resolve(reference)? {
            Some(d) => d,
            None => match &reference.digest {
                Some(d) if self.has_blob(&Digest::parse(d).ok_or_else(|| invalid("digest", d))?) => Descriptor::new(
                    MediaType::ImageManifest,
                    0,
                    d.parse::<oci_spec::image::Digest>().map_err(|e| invalid("digest", e))?,
                ),
                _ => return Err(StoreError::NotFound(reference.to_string())),
            },
        };
        let mut img = self.image_by_manifest(&digest_of(&desc)?)?;
        img.reference = Some(reference.clone());
        Ok(img)
    }

    pub fn image_by_manifest(&self, manifest_digest: &Digest) -> Result<Image, StoreError> {
        let manifest: ImageManifest = serde_json::from_slice(&self.read_blob(manifest_digest)?)
            .map_err(|e| invalid(&format!("manifest {manifest_digest}"), e))?;
        let config_digest = digest_of(manifest.config())?;
        let config: ImageConfiguration = serde_json::from_slice(&self.read_blob(&config_digest)?)
            .map_err(|e| invalid(&format!("config {config_digest}"), e))?;
        Ok(Image { reference: None, manifest_digest: manifest_digest.clone(), manifest, config_digest, config })
    }

    /// Store an OCI manifest for a stored config and layers; returns its descriptor.
    pub fn put_manifest(
        &self,
        config: &Digest,
        config_size: u64,
        layers: Vec<Descriptor>,
    ) -> Result<Descriptor, StoreError> {
        let manifest = oci_spec::image::ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(MediaType::ImageConfig, config_size, oci_digest(config)?))
            .layers(layers)
            .build()
            .map_err(|e| invalid("manifest", e))?;
        let json = serde_json::to_vec(&manifest).map_err(|e| invalid("manifest", e))?;
        let (digest, size) = self.put_blob_bytes(&json)?;
        Ok(Descriptor::new(MediaType::ImageManifest, size, oci_digest(&digest)?))
    }

    /// Store a manifest and its config (layers must already be stored) and tag it.
    pub fn put_image(
        &self,
        config: &ImageConfiguration,
        layers: Vec<Descriptor>,
        tags: &[Reference],
    ) -> Result<Image, StoreError> {
        let config_json = serde_json::to_vec(config).map_err(|e| invalid("config", e))?;
        let (config_digest, config_size) = self.put_blob_bytes(&config_json)?;
        let desc = self.put_manifest(&config_digest, config_size, layers)?;
        let manifest_digest = digest_of(&desc)?;
        for t in tags {
            self.tag(t, &desc)?;
        }
        let mut img = self.image_by_manifest(&manifest_digest)?;
        img.reference = tags.first().cloned();
        Ok(img)
    }
}

fn empty_index() -> Result<ImageIndex, StoreError> {
    oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .map_err(|e| invalid("index.json", e))
}

pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref()?.get(REF_ANNOTATION).map(String::as_str)
}

/// Our digest from a descriptor's.
pub fn digest_of(d: &Descriptor) -> Result<Digest, StoreError> {
    let s = d.digest().to_string();
    Digest::parse(&s).ok_or_else(|| invalid("digest", format!("unsupported digest {s}")))
}

pub fn oci_digest(d: &Digest) -> Result<oci_spec::image::Digest, StoreError> {
    d.as_str().parse().map_err(|e| invalid("digest", e))
}

/// Write `data` to `path` through a temporary file in `tmp_dir`: readers see old or new, never half.
pub fn write_atomic(tmp_dir: &Path, path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_err(tmp_dir))?;
    tmp.write_all(data).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    tmp.persist(path).map_err(|e| StoreError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_and_references_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path()).expect("open");
        let (d, n) = store.put_blob_bytes(b"hello").expect("put");
        assert_eq!((d.clone(), n), (Digest::of(b"hello"), 5));
        assert_eq!(store.read_blob(&d).expect("read"), b"hello");
        let wrong = Digest::of(b"other");
        assert!(matches!(store.put_blob(&b"hello"[..], Some(&wrong)), Err(StoreError::DigestMismatch { .. })));
        assert!(!store.has_blob(&wrong));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).expect("tmp").count(), 0, "no partial files left");

        let r = Reference::parse("app:v1").expect("ref");
        let desc = Descriptor::new(MediaType::ImageManifest, 5, oci_digest(&d).expect("digest"));
        store.tag(&r, &desc).expect("tag");
        store.tag(&r, &desc).expect("tag again replaces");
        let list = store.list().expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].0.to_string(), "docker.io/library/app:v1");
        assert!(store.resolve(&r).expect("resolve").is_some());
        assert!(store.untag(&r).expect("untag"));
        assert!(!store.untag(&r).expect("untag twice"));
    }
}
