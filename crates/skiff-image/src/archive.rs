//! `skiff save` and `skiff load`: image tarballs. Saved archives hold both an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/`) and Docker's `manifest.json`, so `docker load`,
//! `skopeo` and OCI tools all read them. Loading accepts either kind.

use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{Image, ImageStore, StoreError, digest_of, io_err, oci_digest};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn invalid(message: impl ToString) -> StoreError {
    StoreError::Invalid { what: "image archive".into(), message: message.to_string() }
}

fn append(b: &mut tar::Builder<impl Write>, path: &str, data: &[u8]) -> Result<(), StoreError> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).map_err(invalid)
}

/// Write `images` (with the references they were asked by) as one archive.
pub fn save(store: &ImageStore, images: &[(Reference, Image)], out: impl Write) -> Result<(), StoreError> {
    let mut b = tar::Builder::new(out);
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut written: Vec<Digest> = Vec::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for (r, img) in images {
        let mut blobs = vec![img.manifest_digest.clone(), img.config_digest.clone()];
        let layers: Vec<Digest> = img.manifest.layers().iter().map(digest_of).collect::<Result<_, _>>()?;
        blobs.extend(layers.iter().cloned());
        for d in blobs {
            if written.contains(&d) {
                continue;
            }
            let path = store.blob_path(&d);
            let mut f = fs::File::open(&path).map_err(io_err(&path))?;
            b.append_file(format!("blobs/sha256/{}", d.hex()), &mut f).map_err(invalid)?;
            written.push(d);
        }
        let size = fs::metadata(store.blob_path(&img.manifest_digest))
            .map_err(io_err(store.blob_path(&img.manifest_digest)))?
            .len();
        index.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.manifest_digest.to_string(), "size": size,
            "annotations": {"io.containerd.image.name": r.to_string(), "org.opencontainers.image.ref.name": r.tag.clone().unwrap_or_default()}}));
        let tag = format!("{}:{}", r.familiar_name(), r.tag.clone().unwrap_or_else(|| "latest".into()));
        docker.push(json!({"Config": format!("blobs/sha256/{}", img.config_digest.hex()), "RepoTags": [tag],
            "Layers": layers.iter().map(|d| format!("blobs/sha256/{}", d.hex())).collect::<Vec<_>>()}));
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index});
    append(&mut b, "index.json", &serde_json::to_vec(&index).map_err(invalid)?)?;
    append(&mut b, "manifest.json", &serde_json::to_vec(&docker).map_err(invalid)?)?;
    b.into_inner().map_err(invalid)?.flush().map_err(invalid)?;
    Ok(())
}

/// Extract an archive into a staging directory, refusing paths that leave it.
fn extract(reader: impl Read, dest: &Path) -> Result<(), StoreError> {
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().map_err(invalid)? {
        let mut e = entry.map_err(invalid)?;
        let kind = e.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        if !e.unpack_in(dest).map_err(invalid)? {
            return Err(invalid("an entry's path leaves the archive"));
        }
    }
    Ok(())
}

fn read_json(root: &Path, rel: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let p = root.join(rel);
    if rel.contains("..") {
        return Err(invalid(format!("path {rel} leaves the archive")));
    }
    match fs::read(&p) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(p)(e)),
    }
}

/// Import the blob at `path`, checking it against `expected` when the archive names a digest.
fn import_blob(store: &ImageStore, path: &Path, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
    let f = fs::File::open(path).map_err(io_err(path))?;
    store.put_blob(f, expected)
}

fn blob_path(root: &Path, d: &Digest) -> PathBuf {
    root.join("blobs/sha256").join(d.hex())
}

/// Load every image in an archive (Docker `save` format or an OCI layout tarball); returns the
/// references tagged (or the manifest digests of untagged images).
pub fn load(store: &ImageStore, reader: impl Read) -> Result<Vec<String>, StoreError> {
    let staging =
        tempfile::Builder::new().prefix("load-").tempdir_in(store.root().join("tmp")).map_err(io_err(store.root()))?;
    let root = staging.path();
    extract(reader, root)?;
    if let Some(index) = read_json(root, "index.json")? {
        let index: ImageIndex = serde_json::from_slice(&index).map_err(|e| invalid(format!("index.json: {e}")))?;
        return load_oci(store, root, &index);
    }
    match read_json(root, "manifest.json")? {
        Some(m) => load_docker(store, root, &m),
        None => Err(invalid("neither index.json (OCI layout) nor manifest.json (docker save) found")),
    }
}

fn load_oci(store: &ImageStore, root: &Path, index: &ImageIndex) -> Result<Vec<String>, StoreError> {
    let mut loaded = Vec::new();
    for desc in index.manifests() {
        let manifest_desc = resolve_platform(store, root, desc)?;
        let md = digest_of(&manifest_desc)?;
        let (md, _) = import_blob(store, &blob_path(root, &md), Some(&md))?;
        let manifest: ImageManifest =
            serde_json::from_slice(&store.read_blob(&md)?).map_err(|e| invalid(format!("manifest {md}: {e}")))?;
        for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
            let dd = digest_of(d)?;
            import_blob(store, &blob_path(root, &dd), Some(&dd))?;
        }
        let ann: HashMap<String, String> = desc.annotations().clone().unwrap_or_default();
        let name = ann.get("io.containerd.image.name").or_else(|| ann.get("org.opencontainers.image.ref.name"));
        let stored = Descriptor::new(MediaType::ImageManifest, manifest_desc.size(), oci_digest(&md)?);
        match name.and_then(|n| Reference::parse(n).ok()) {
            Some(r) => {
                store.tag(&r, &stored)?;
                loaded.push(r.to_string());
            }
            None => loaded.push(md.to_string()),
        }
    }
    Ok(loaded)
}

/// For an index (multi-platform) descriptor, the manifest for this node's platform.
fn resolve_platform(store: &ImageStore, root: &Path, desc: &Descriptor) -> Result<Descriptor, StoreError> {
    if *desc.media_type() != MediaType::ImageIndex
        && desc.media_type().to_string() != "application/vnd.docker.distribution.manifest.list.v2+json"
    {
        return Ok(desc.clone());
    }
    let d = digest_of(desc)?;
    let (d, _) = import_blob(store, &blob_path(root, &d), Some(&d))?;
    let index: ImageIndex =
        serde_json::from_slice(&store.read_blob(&d)?).map_err(|e| invalid(format!("index {d}: {e}")))?;
    let arch = crate::layer::platform_arch();
    index
        .manifests()
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| p.architecture().to_string() == arch && p.os().to_string() == "linux")
        })
        .cloned()
        .ok_or_else(|| invalid(format!("no manifest for linux/{arch} in index {d}")))
}

fn load_docker(store: &ImageStore, root: &Path, manifest_json: &[u8]) -> Result<Vec<String>, StoreError> {
    let entries: Vec<Value> =
        serde_json::from_slice(manifest_json).map_err(|e| invalid(format!("manifest.json: {e}")))?;
    let mut loaded = Vec::new();
    for e in entries {
        let config_path = e["Config"].as_str().ok_or_else(|| invalid("manifest.json entry without Config"))?;
        read_json(root, config_path)?.ok_or_else(|| invalid(format!("{config_path} missing")))?;
        let (config_digest, config_size) = import_blob(store, &root.join(config_path), None)?;
        let mut layers = Vec::new();
        for l in e["Layers"].as_array().into_iter().flatten() {
            let rel = l.as_str().ok_or_else(|| invalid("layer path is not a string"))?;
            if rel.contains("..") {
                return Err(invalid(format!("path {rel} leaves the archive")));
            }
            let path = root.join(rel);
            let mut magic = [0u8; 2];
            let gz = fs::File::open(&path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == [0x1f, 0x8b];
            let (d, size) = import_blob(store, &path, None)?;
            let mt = if gz { MediaType::ImageLayerGzip } else { MediaType::ImageLayer };
            layers.push(Descriptor::new(mt, size, oci_digest(&d)?));
        }
        let desc = store.put_manifest(&config_digest, config_size, layers)?;
        let md = digest_of(&desc)?;
        // Checks that the config parses and the layers match it.
        let image = store.image_by_manifest(&md)?;
        if image.config.rootfs().diff_ids().len() != image.manifest.layers().len() {
            return Err(invalid(format!(
                "{config_path}: config lists a different number of layers than manifest.json"
            )));
        }
        let tags: Vec<&str> = e["RepoTags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if tags.is_empty() {
            loaded.push(md.to_string());
        }
        for t in tags {
            let r = Reference::parse(t)?;
            store.tag(&r, &desc)?;
            loaded.push(r.to_string());
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(store: &ImageStore, name: &str) -> (Reference, Image) {
        let layer = crate::testing::tar_of(&[("hello", b"hi")]);
        let (l, d) = crate::layer::import_layer(store, &layer[..]).expect("layer");
        let config =
            crate::layer::new_config(Default::default(), &[d], vec![], "2026-01-01T00:00:00Z").expect("config");
        let r = Reference::parse(name).expect("ref");
        let img = store.put_image(&config, vec![l], std::slice::from_ref(&r)).expect("image");
        (r, img)
    }

    #[test]
    fn save_then_load_round_trips_through_both_formats() {
        let a = tempfile::tempdir().expect("a");
        let src = ImageStore::open(a.path()).expect("store");
        let (r, img) = image(&src, "app:v1");
        let mut archive = Vec::new();
        save(&src, &[(r.clone(), img.clone())], &mut archive).expect("save");

        // OCI layout path (index.json present).
        let b = tempfile::tempdir().expect("b");
        let dst = ImageStore::open(b.path()).expect("store");
        assert_eq!(load(&dst, &archive[..]).expect("load"), vec![r.to_string()]);
        assert_eq!(dst.image(&r).expect("image").config_digest, img.config_digest);

        // Docker path: the same archive without index.json.
        let mut only_docker = tar::Builder::new(Vec::new());
        let mut ar = tar::Archive::new(&archive[..]);
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            let path = e.path().expect("path").into_owned();
            if path.to_str() == Some("index.json") {
                continue;
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read");
            append(&mut only_docker, path.to_str().expect("utf8"), &data).expect("append");
        }
        let docker = only_docker.into_inner().expect("tar");
        let c = tempfile::tempdir().expect("c");
        let dst2 = ImageStore::open(c.path()).expect("store");
        assert_eq!(load(&dst2, &docker[..]).expect("load docker"), vec![r.to_string()]);
        assert_eq!(dst2.image(&r).expect("image").config_digest, img.config_digest, "same image ID");
    }

    #[test]
    fn corrupt_archives_load_nothing() {
        let a = tempfile::tempdir().expect("a");
        let src = ImageStore::open(a.path()).expect("store");
        let (r, img) = image(&src, "app:v1");
        let mut archive = Vec::new();
        save(&src, &[(r, img.clone())], &mut archive).expect("save");
        // Flip a byte inside the layer blob's data.
        let layer = digest_of(&img.manifest.layers()[0]).expect("digest");
        let name = format!("blobs/sha256/{}", layer.hex());
        let pos = archive.windows(name.len()).position(|w| w == name.as_bytes()).expect("entry") + 512;
        archive[pos + 10] ^= 0xff;
        let b = tempfile::tempdir().expect("b");
        let dst = ImageStore::open(b.path()).expect("store");
        assert!(matches!(load(&dst, &archive[..]), Err(StoreError::DigestMismatch { .. })));
        assert!(dst.list().expect("list").is_empty());
        assert!(load(&dst, &b"not a tar"[..]).is_err());
    }
}
