//! Making layers and configs: a tar stream stored as a gzip layer, and fresh image configs.

use crate::digest::{Digest, Hashing};
use crate::store::{ImageStore, StoreError, io_err, oci_digest};
use flate2::Compression;
use flate2::write::GzEncoder;
use oci_spec::image::{Config, Descriptor, History, ImageConfiguration, MediaType, RootFsBuilder};
use std::io::{self, Read};

/// The node's platform in OCI terms (`amd64`, `arm64`, ...).
pub fn platform_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

/// Store the tar stream `reader` as a gzip-compressed layer. Returns the layer descriptor and its
/// diff_id (the digest of the uncompressed tar).
pub fn import_layer(store: &ImageStore, reader: impl Read) -> Result<(Descriptor, Digest), StoreError> {
    let tmp = store.temp_file()?;
    let mut input = Hashing::new(reader);
    let mut gz = GzEncoder::new(Hashing::new(tmp.as_file()), Compression::fast());
    io::copy(&mut input, &mut gz).map_err(io_err(tmp.path()))?;
    let out = gz.finish().map_err(io_err(tmp.path()))?;
    let (digest, size) = (out.digest(), out.bytes);
    store.commit_blob(tmp, &digest)?;
    let desc = Descriptor::new(MediaType::ImageLayerGzip, size, oci_digest(&digest)?);
    Ok((desc, input.digest()))
}

/// A new image config for this platform with the given layers and history.
pub fn new_config(
    container: Config,
    diff_ids: &[Digest],
    history: Vec<History>,
    created: &str,
) -> Result<ImageConfiguration, StoreError> {
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| StoreError::Invalid { what: "config".into(), message: e.to_string() })?;
    let mut c = ImageConfiguration::default();
    c.set_created(Some(created.to_string()));
    c.set_architecture(platform_arch().into());
    c.set_os("linux".into());
    c.set_config(Some(container));
    c.set_rootfs(rootfs);
    c.set_history(Some(history));
    Ok(c)
}
