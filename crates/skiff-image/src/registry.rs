//! Pulling from and pushing to registries with `oci-client`: OCI and Docker schema 2 manifests,
//! multi-platform indexes resolved to this node's platform, parallel verified layer downloads,
//! mirrors and credentials from `registries.yaml` (and Docker auth files).

mod error;

pub use error::{Attempt, Failure, Stage};

use crate::digest::{Digest, Hashing};
use crate::reference::Reference;
use crate::registries::{Endpoint, Registries, auth_key_matches, docker_auth, entry_credentials};
use crate::store::{Image, ImageStore, StoreError, digest_of};
use error::Context;
use futures::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference as OciRef};
use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::Value;
use std::path::PathBuf;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every endpoint failed; the message is containerd's, one line per endpoint when several.
    #[error("{}", error::pull_message(.reference, .attempts))]
    Pull { reference: String, attempts: Vec<Attempt> },
    #[error("failed to push {reference:?} to {}: {failure}", .endpoint.url())]
    Push { reference: String, endpoint: Endpoint, failure: Failure },
}

/// Where to get credentials and TLS settings.
#[derive(Clone)]
pub struct Transport {
    pub registries: Registries,
    /// Credentials that come first: a pod's pull secrets, as `(Docker auth key, entry)`.
    pub pull_secrets: Vec<(String, Value)>,
    /// Docker-style auth files to consult, in order.
    pub auth_files: Vec<PathBuf>,
    /// A registry silent for this long is given up on.
    pub read_timeout: std::time::Duration,
}

impl Transport {
    pub fn new(registries: Registries) -> Self {
        let mut auth_files = Vec::new();
        if let Ok(f) = std::env::var("REGISTRY_AUTH_FILE") {
            auth_files.push(PathBuf::from(f));
        }
        if let Ok(home) = std::env::var("HOME") {
            auth_files.push(PathBuf::from(&home).join(".docker/config.json"));
        }
        if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
            auth_files.push(PathBuf::from(dir).join("containers/auth.json"));
        }
        Transport { registries, pull_secrets: Vec::new(), auth_files, read_timeout: std::time::Duration::from_secs(60) }
    }

    /// This transport with a pod's pull-secret entries in front of the node's own credentials.
    pub fn with_pull_secrets(&self, entries: Vec<(String, Value)>) -> Transport {
        Transport { pull_secrets: entries, ..self.clone() }
    }

    /// Credentials for endpoint `host`. A mirror gets only credentials named for the mirror itself,
    /// never the ones meant for the registry it stands in for.
    fn auth(&self, host: &str) -> RegistryAuth {
        let from_secret = self
            .pull_secrets
            .iter()
            .filter(|(key, _)| auth_key_matches(key, host))
            .find_map(|(_, entry)| entry_credentials(entry));
        let from_config = self.registries.config(host).and_then(|c| c.auth.as_ref()).and_then(|a| a.credentials());
        let creds = from_secret.or(from_config).or_else(|| self.auth_files.iter().find_map(|f| docker_auth(f, host)));
        match creds {
            Some((u, p)) => RegistryAuth::Basic(u, p),
            None => RegistryAuth::Anonymous,
        }
    }

    fn client(&self, ep: &Endpoint) -> Result<Client, Failure> {
        // oci-client's TLS has no built-in crypto provider: use ring, as the API server does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = self.registries.config(&ep.host).and_then(|c| c.tls.clone()).unwrap_or_default();
        let mut extra = Vec::new();
        if let Some(ca) = &tls.ca_file {
            let data = std::fs::read(ca).map_err(|e| Failure::Other(format!("reading {ca}: {e}")))?;
            extra.push(Certificate { encoding: CertificateEncoding::Pem, data });
        }
        Ok(Client::new(ClientConfig {
            protocol: if ep.plain_http { ClientProtocol::Http } else { ClientProtocol::Https },
            accept_invalid_certificates: tls.insecure_skip_verify,
            extra_root_certificates: extra,
            read_timeout: Some(self.read_timeout),
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            ..Default::default()
        }))
    }
}

fn oci_ref(host: &str, r: &Reference) -> OciRef {
    match (&r.tag, &r.digest) {
        (_, Some(d)) => OciRef::with_digest(host.to_string(), r.repository.clone(), d.clone()),
        (Some(t), None) => OciRef::with_tag(host.to_string(), r.repository.clone(), t.clone()),
        (None, None) => OciRef::with_tag(host.to_string(), r.repository.clone(), "latest".into()),
    }
}

/// The manifest for linux/`arch` in an index document.
fn pick_platform(index: &Value) -> Result<String, Failure> {
    let arch = crate::layer::platform_arch();
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
        .and_then(|m| m["digest"].as_str().map(String::from))
        .ok_or_else(|| Failure::Other(format!("no image for linux/{arch} in the index")))
}

fn media_type_of(doc: &Value) -> String {
    match doc["mediaType"].as_str() {
        Some(m) => m.to_string(),
        None if doc.get("manifests").is_some() => OCI_INDEX.into(),
        None => OCI_MANIFEST.into(),
    }
}

/// Pull `reference` into the store (layers already present are not fetched again).
pub async fn pull(
    store: &ImageStore,
    transport: &Transport,
    reference: &Reference,
    progress: &dyn Progress,
) -> Result<Image, RegistryError> {
    let mut attempts = Vec::new();
    for ep in transport.registries.endpoints(&reference.registry) {
        match pull_from(store, transport, &ep, reference, progress).await {
            Ok(img) => return Ok(img),
            Err((stage, failure)) => {
                tracing::debug!(endpoint = %ep.host, error = %failure, "pull attempt failed");
                attempts.push(Attempt { endpoint: ep, stage, failure });
            }
        }
    }
    Err(RegistryError::Pull { reference: reference.to_string(), attempts })
}

async fn pull_from(
    store: &ImageStore,
    transport: &Transport,
    ep: &Endpoint,
    reference: &Reference,
    progress: &dyn Progress,
) -> Result<Image, (Stage, Failure)> {
    let name = reference.to_string();
    let ctx = Context { reference: &name, endpoint: ep, push: false };
    let resolve = |f: Failure| (Stage::Resolve, f);
    let other = |m: String| (Stage::Resolve, Failure::Other(m));
    let client = transport.client(ep).map_err(resolve)?;
    let auth = transport.auth(&ep.host);
    let accepted = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
    let target = oci_ref(&ep.host, reference);
    // Authenticate first: registries with plain basic auth (no token service) need it up front.
    client.auth(&target, &auth, oci_client::RegistryOperation::Pull).await.map_err(|e| resolve(ctx.oci(e)))?;
    let (bytes, _) = client.pull_manifest_raw(&target, &auth, &accepted).await.map_err(|e| resolve(ctx.oci(e)))?;
    let mut bytes = bytes.to_vec();
    let mut digest = Digest::of(&bytes);
    if let Some(want) = &reference.digest
        && digest.as_str() != want
    {
        return Err(other(format!("manifest digest {digest} does not match the requested {want}")));
    }
    let mut doc: Value = serde_json::from_slice(&bytes).map_err(|e| other(format!("manifest is not JSON: {e}")))?;
    if matches!(media_type_of(&doc).as_str(), OCI_INDEX | DOCKER_LIST) {
        let platform_digest = pick_platform(&doc).map_err(resolve)?;
        let by_digest = OciRef::with_digest(ep.host.clone(), reference.repository.clone(), platform_digest.clone());
        let (b, _) = client.pull_manifest_raw(&by_digest, &auth, &accepted).await.map_err(|e| resolve(ctx.oci(e)))?;
        bytes = b.to_vec();
        digest = Digest::of(&bytes);
        if digest.as_str() != platform_digest {
            return Err(other(format!("manifest digest {digest} does not match the index entry {platform_digest}")));
        }
        doc = serde_json::from_slice(&bytes).map_err(|e| other(format!("manifest is not JSON: {e}")))?;
    }
    let manifest_type = media_type_of(&doc);
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| other(format!("unsupported manifest: {e}")))?;
    let copy = |m: String| (Stage::Copy, Failure::Other(m));

    let blobs: Vec<Descriptor> =
        std::iter::once(manifest.config().clone()).chain(manifest.layers().iter().cloned()).collect();
    // Collected first: a lazy `map` here makes the future not `Send` for every lifetime (rustc #110338).
    let fetches: Vec<_> =
        blobs.iter().map(|d| Box::pin(fetch_blob(store, &client, &target, d, progress, &ctx))).collect();
    let results: Vec<Result<(), Failure>> =
        futures::stream::iter(fetches).buffer_unordered(PARALLEL_LAYERS).collect().await;
    results.into_iter().collect::<Result<Vec<()>, Failure>>().map_err(|f| (Stage::Copy, f))?;

    store.put_blob(&bytes[..], Some(&digest)).map_err(|e| copy(e.to_string()))?;
    let desc = Descriptor::new(
        MediaType::from(manifest_type.as_str()),
        bytes.len() as u64,
        crate::store::oci_digest(&digest).map_err(|e| copy(e.to_string()))?,
    );
    store.tag(reference, &desc).map_err(|e| copy(e.to_string()))?;
    store.image(reference).map_err(|e| copy(e.to_string()))
}

/// What a pull reports as it goes (the CLI draws progress bars on a terminal).
pub trait Progress: Send + Sync {
    /// A blob download starts at `offset` (non-zero when resuming) of `size` bytes.
    fn start(&self, _digest: &str, _size: u64, _offset: u64) {}
    fn advance(&self, _digest: &str, _bytes: u64) {}
    /// The blob is complete (`cached`: it was already in the store).
    fn finish(&self, _digest: &str, _cached: bool) {}
}

/// Reports nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// Download one blob unless the store has it. The download goes to `tmp/partial-<hex>` and is
/// resumed from there (with an HTTP range request) if an earlier pull was interrupted; the whole
/// blob is verified before it is committed.
async fn fetch_blob(
    store: &ImageStore,
    client: &Client,
    target: &OciRef,
    desc: &Descriptor,
    progress: &dyn Progress,
    ctx: &Context<'_>,
) -> Result<(), Failure> {
    use futures::TryStreamExt;
    use std::io::Write;
    let local = |e: &dyn std::fmt::Display| Failure::Other(e.to_string());
    let digest = digest_of(desc).map_err(|e| local(&e))?;
    if store.has_blob(&digest) {
        progress.finish(digest.as_str(), true);
        return Ok(());
    }
    let partial = store.root().join("tmp").join(format!("partial-{}", digest.hex()));
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&partial).map_err(|e| local(&e))?;
    // One downloader per blob; a concurrent pull of the same blob waits, then finds it stored.
    file.lock().map_err(|e| local(&e))?;
    if store.has_blob(&digest) {
        let _ = std::fs::remove_file(&partial);
        progress.finish(digest.as_str(), true);
        return Ok(());
    }
    let offset = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut stream = if offset > 0 && offset < desc.size() {
        match client.pull_blob_stream_partial(target, digest.as_str(), offset, None).await.map_err(|e| ctx.oci(e))? {
            oci_client::client::BlobResponse::Partial(s) => {
                progress.start(digest.as_str(), desc.size(), offset);
                s
            }
            oci_client::client::BlobResponse::Full(s) => {
                // The registry ignored the range: start over.
                file.set_len(0).map_err(|e| local(&e))?;
                progress.start(digest.as_str(), desc.size(), 0);
                s
            }
        }
    } else {
        file.set_len(0).map_err(|e| local(&e))?;
        progress.start(digest.as_str(), desc.size(), 0);
        client.pull_blob_stream(target, digest.as_str()).await.map_err(|e| ctx.oci(e))?
    };
    while let Some(chunk) =
        stream.stream.try_next().await.map_err(|e| ctx.oci(oci_client::errors::OciDistributionError::IoError(e)))?
    {
        file.write_all(&chunk).map_err(|e| local(&e))?;
        progress.advance(digest.as_str(), chunk.len() as u64);
    }
    file.sync_all().map_err(|e| local(&e))?;
    let mut check = Hashing::new(std::fs::File::open(&partial).map_err(|e| local(&e))?);
    std::io::copy(&mut check, &mut std::io::sink()).map_err(|e| local(&e))?;
    if check.digest() != digest {
        let _ = std::fs::remove_file(&partial);
        return Err(Failure::Other(format!("blob {digest}: downloaded content has digest {}", check.digest())));
    }
    std::fs::rename(&partial, store.blob_path(&digest)).map_err(|e| local(&e))?;
    progress.finish(digest.as_str(), false);
    Ok(())
}

/// Push an image from the store to its registry (`plain_http` for registries without TLS;
/// loopback registries are plain HTTP anyway unless registries.yaml gives them TLS settings).
pub async fn push(
    store: &ImageStore,
    transport: &Transport,
    reference: &Reference,
    plain_http: bool,
) -> Result<Digest, RegistryError> {
    let image = store.image(reference)?;
    let mut ep = transport.registries.endpoint_for(&reference.registry);
    ep.plain_http |= plain_http;
    let name = reference.to_string();
    let ctx = Context { reference: &name, endpoint: &ep, push: true };
    let fail = |failure: Failure| RegistryError::Push { reference: name.clone(), endpoint: ep.clone(), failure };
    let client = transport.client(&ep).map_err(fail)?;
    let auth = transport.auth(&ep.host);
    let target = oci_ref(&ep.host, &Reference { digest: None, ..reference.clone() });
    client.auth(&target, &auth, oci_client::RegistryOperation::Push).await.map_err(|e| fail(ctx.oci(e)))?;
    let blobs: Vec<Digest> = std::iter::once(Ok(image.config_digest.clone()))
        .chain(image.manifest.layers().iter().map(digest_of))
        .collect::<Result<_, _>>()?;
    for d in blobs {
        if client.blob_exists(&target, d.as_str()).await.unwrap_or(false) {
            continue;
        }
        let data = store.read_blob(&d)?;
        client.push_blob(&target, data, d.as_str()).await.map_err(|e| fail(ctx.oci(e)))?;
    }
    let manifest = store.read_blob(&image.manifest_digest)?;
    let doc: Value = serde_json::from_slice(&manifest).map_err(|e| fail(Failure::Other(e.to_string())))?;
    let content_type =
        http::HeaderValue::from_str(&media_type_of(&doc)).map_err(|e| fail(Failure::Other(e.to_string())))?;
    client.push_manifest_raw(&target, manifest, content_type).await.map_err(|e| fail(ctx.oci(e)))?;
    Ok(image.manifest_digest)
}
