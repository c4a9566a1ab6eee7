//! `skiff import`: a root filesystem tarball becomes a one-layer image, like `docker import`.

use crate::config::{BuildError, apply_change};
use oci_spec::image::{Config, HistoryBuilder};
use skiff_image::layer::{import_layer, new_config};
use skiff_image::{Image, ImageStore, Reference};
use std::io::Read;

/// Import `reader` (a tar of a root filesystem) as an image tagged `tags`, with `--change` lines applied.
pub fn import_rootfs(
    store: &ImageStore,
    reader: impl Read,
    source: &str,
    tags: &[Reference],
    changes: &[String],
) -> Result<Image, BuildError> {
    let mut container = Config::default();
    for c in changes {
        apply_change(&mut container, c)?;
    }
    let (layer, diff_id) = import_layer(store, reader)?;
    let created = format!("{}Z", jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.9f"));
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by("skiff import")
        .comment(format!("Imported from {source}"))
        .build()
        .map_err(|e| BuildError::Parse(e.to_string()))?;
    let config = new_config(container, &[diff_id], vec![history], &created)?;
    Ok(store.put_image(&config, vec![layer], tags)?)
}
