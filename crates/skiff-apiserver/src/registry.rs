//! Object storage with Kubernetes semantics over a [`Store`]: keys, resourceVersions, system
//! metadata, defaulting and validation, optimistic concurrency, graceful deletion.
//! HTTP knows nothing of this module's internals and this module knows nothing of HTTP.

use crate::query::FieldValidation;
use crate::services::{Allocator, ServiceRanges};
use jiff::Timestamp;
use serde_json::{Value, json};
use skiff_core::kinds::{self, Kind};
use skiff_core::managed::{self, Part};
use skiff_core::patch::{self, PatchType};
use skiff_core::selector::{FieldSelector, LabelSelector};
use skiff_core::{ApiError, meta, time};
use skiff_store::{KeyValue, RangeRequest, Revision, Store, StoreError};
use std::sync::Arc;

/// Where an object lives: its kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Copy)]
pub struct ObjectRef<'a> {
    pub kind: &'static dyn Kind,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// How a write request asked to be carried out.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub field_validation: FieldValidation,
    pub force: bool,
    /// Who writes (None: the server itself), for the checks that depend on it (RBAC's
    /// escalation prevention).
    pub user: Option<Arc<skiff_core::auth::UserInfo>>,
}

/// The result of a write: the object and any warnings for the `Warning` header.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
}

/// What a delete did.
pub enum Deleted {
    /// The object is gone; this is its last state.
    Gone(Value),
    /// Deletion started (graceful period or finalizers); this is the updated object.
    Pending(Value),
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    /// Deprecated form of `propagationPolicy: Orphan`.
    pub orphan_dependents: Option<bool>,
    pub preconditions: Option<Preconditions>,
    pub dry_run: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    /// Cluster IPs and node ports for Services.
    services: Arc<Allocator>,
    /// The current RBAC authorizer, once the server has one (RBAC writes are checked by it).
    rbac: Arc<std::sync::OnceLock<tokio::sync::watch::Receiver<Arc<skiff_core::auth::Authorizer>>>>,
    /// Whether nodes' writes go through NodeRestriction (the Node authorizer is on).
    node_restriction: bool,
}

/// Whether `kind` is networking.k8s.io Ingress (created ones get the default class).
fn is_ingress(kind: &dyn Kind) -> bool {
    let info = kind.info();
    info.group == "networking.k8s.io" && info.kind == "Ingress"
}

/// Whether `kind` is core/v1 Service (its writes claim addresses and ports).
fn is_service(kind: &dyn Kind) -> bool {
    let info = kind.info();
    info.group.is_empty() && info.kind == "Service"
}

/// The resourceVersion a patch names (a precondition), if it names one: in the body for merge,
/// strategic and apply patches, or as the value a JSON patch writes to it.
fn precondition(patch_type: PatchType, body: &Value) -> String {
    let named = match patch_type {
        PatchType::Json => body.as_array().and_then(|ops| {
            ops.iter()
                .find(|op| {
                    op["path"] == "/metadata/resourceVersion" && matches!(op["op"].as_str(), Some("add" | "replace"))
                })
                .map(|op| &op["value"])
        }),
        _ => body.pointer("/metadata/resourceVersion"),
    };
    named.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The finalizers the garbage collector acts on: delete the dependents first, or orphan them.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
pub const ORPHAN_FINALIZER: &str = "orphan";

/// How a delete treats the object's dependents (`DeleteOptions.propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Foreground,
    Background,
    Orphan,
}

/// The propagation a delete asks for; None leaves the object's finalizers as they are (every
/// served kind's default is background deletion).
fn propagation(opts: &DeleteOptions) -> Result<Option<Propagation>, ApiError> {
    let invalid = |value: &str, detail: String| {
        ApiError::invalid(
            "DeleteOptions",
            "",
            vec![skiff_core::field::FieldError::invalid(
                &skiff_core::field::Path::new("propagationPolicy"),
                value,
                detail,
            )],
        )
    };
    let policy = match opts.propagation_policy.as_deref() {
        None => None,
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Background") => Some(Propagation::Background),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(p) => {
            return Err(ApiError::invalid(
                "DeleteOptions",
                "",
                vec![skiff_core::field::FieldError::not_supported(
                    &skiff_core::field::Path::new("propagationPolicy"),
                    p,
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            ));
        }
    };
    match (opts.orphan_dependents, policy) {
        (Some(_), Some(_)) => Err(invalid(
            opts.propagation_policy.as_deref().unwrap_or_default(),
            "orphanDependents and deletionPropagation cannot be both set".into(),
        )),
        (Some(true), None) => Ok(Some(Propagation::Orphan)),
        (Some(false), None) => Ok(Some(Propagation::Background)),
        (None, policy) => Ok(policy),
    }
}

/// The finalizers an object being deleted keeps: upstream's `deletionFinalizersForGarbageCollection`.
fn finalizers_for(mut finalizers: Vec<String>, policy: Option<Propagation>) -> Vec<String> {
    let (add, remove): (Option<&str>, &[&str]) = match policy {
        None => return finalizers,
        Some(Propagation::Foreground) => (Some(FOREGROUND_FINALIZER), &[ORPHAN_FINALIZER]),
        Some(Propagation::Orphan) => (Some(ORPHAN_FINALIZER), &[FOREGROUND_FINALIZER]),
        Some(Propagation::Background) => (None, &[FOREGROUND_FINALIZER, ORPHAN_FINALIZER]),
    };
    finalizers.retain(|f| !remove.contains(&f.as_str()));
    if let Some(add) = add
        && !finalizers.iter().any(|f| f == add)
    {
        finalizers.push(add.to_string());
    }
    finalizers
}

/// Attempts at a patch before giving up on concurrent writers.
const PATCH_RETRIES: usize = 16;

/// Where a kind's objects are kept: `/registry/pods/NS/`, `/registry/GROUP/leases/NS/` (a named
/// group's resources under the group, so two groups may share a plural).
pub(crate) fn key_prefix(kind: &dyn Kind, namespace: Option<&str>) -> String {
    let info = kind.info();
    let resource = match info.group {
        "" => info.plural.to_string(),
        group => format!("{group}/{}", info.plural),
    };
    match namespace {
        Some(ns) if info.namespaced => format!("/registry/{resource}/{ns}/"),
        _ => format!("/registry/{resource}/"),
    }
}

fn key(r: ObjectRef<'_>) -> String {
    format!("{}{}", key_prefix(r.kind, Some(r.namespace)), r.name)
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// A read at a revision the store has forgotten or not reached, as upstream's list says it.
fn list_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Compacted { .. } => ApiError::Expired(LIST_EXPIRED.into()),
        StoreError::FutureRevision { requested, current } => ApiError::TooLargeResourceVersion { requested, current },
        e => store_err(e),
    }
}

/// How long a read waits for a resourceVersion the store has not reached (upstream: 3 s).
const FUTURE_REVISION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// A client's resourceVersion, which must be the decimal form of a revision; worded as
/// upstream's (Go's `strconv.ParseUint` under a field error).
pub fn parse_resource_version(rv: &str) -> Result<Revision, ApiError> {
    rv.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow => "value out of range",
            _ => "invalid syntax",
        };
        ApiError::BadRequest(format!(
            "invalid resource version: resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: {why}"
        ))
    })
}

/// Upstream's words for a list at a compacted revision.
pub const LIST_EXPIRED: &str = "The resourceVersion for the provided list is too old.";
/// Store reads per list page when the client set no limit (or a small one with selectors)...
const LIST_CHUNK: usize = 500;
/// ... or fewer, so that one read holds about this many bytes of large objects.
const LIST_READ_BYTES: usize = 4 << 20;

/// How many objects of `bytes_each` fit in `budget`: between 1 and `max`.
pub fn objects_within(budget: usize, bytes_each: usize, max: usize) -> usize {
    (budget / bytes_each.max(1)).clamp(1, max.max(1))
}

/// What one page of a list asks for.
pub struct ListRequest<'a> {
    pub kind: &'static dyn Kind,
    pub namespace: Option<&'a str>,
    pub labels: &'a LabelSelector,
    pub fields: &'a FieldSelector,
    /// Read at this revision (the latest when `None`).
    pub revision: Option<Revision>,
    /// Start at this key (inclusive), relative to the list's key prefix: `name` in a namespace,
    /// `namespace/name` across them; continue tokens carry it.
    pub start: Option<&'a str>,
    /// At most this many objects (0: all).
    pub limit: usize,
}

/// Where a visited page ended.
pub struct PageEnd {
    /// The revision every page of this list reads at.
    pub revision: Revision,
    /// More remain from this key on (relative to the list's key prefix).
    pub next_start: Option<String>,
    /// Objects that matched (and were visited).
    pub matched: usize,
    /// Objects read from the store, and their stored bytes: what a page of them costs.
    pub read: usize,
    pub read_bytes: usize,
}

/// Parse a stored record of `kind` into an object carrying its resourceVersion, as the kind
/// serves it (a custom resource stored in another version is read through this one).
pub fn decode(kind: &dyn Kind, kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value =
        serde_json::from_slice(&kv.value).map_err(|e| ApiError::Internal(format!("corrupt object {}: {e}", kv.key)))?;
    kind.to_served(&mut obj);
    meta::metadata_mut(&mut obj).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    Ok(obj)
}

/// The stored form of an object of `kind`: no resourceVersion (the store's revision is it).
fn encode(kind: &dyn Kind, obj: &Value) -> Vec<u8> {
    let mut o = obj.clone();
    if let Some(md) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
    }
    kind.to_stored(&mut o);
    serde_json::to_vec(&o).unwrap_or_default()
}

fn parse_rv(rv: &str) -> Result<Revision, ApiError> {
    rv.parse().map_err(|_| {
        ApiError::BadRequest(format!("metadata.resourceVersion: Invalid value: {rv:?}: must be a decimal integer"))
    })
}

/// The canonical object for a request body, and the unknown fields it had (with the fields it
/// repeated, found in its bytes: `duplicates`).
pub fn decode_body(
    kind: &dyn Kind,
    raw: &Value,
    duplicates: &[String],
    validation: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let info = kind.info();
    let api_version = info.api_version();
    if !raw.is_object() {
        return Err(ApiError::BadRequest(format!(
            "{k} in version \"{v}\" cannot be handled as a {k}: the request body is not a JSON object",
            k = info.kind,
            v = info.version
        )));
    }
    if let Some(av) = raw.get("apiVersion").and_then(Value::as_str)
        && av != api_version
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({av}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(k) = raw.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != info.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the object provided is unrecognized (must be of type {}): kind {k:?}",
            info.kind
        )));
    }
    let mut canonical = kind.normalize(raw).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    canonical["apiVersion"] = json!(api_version);
    canonical["kind"] = json!(info.kind);
    let unknown = meta::unknown_fields(raw, &canonical);
    let warnings: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .chain(duplicates.iter().map(|f| format!("duplicate field \"{f}\"")))
        .collect();
    match validation {
        FieldValidation::Strict if !warnings.is_empty() => Err(ApiError::BadRequest(format!(
            "{k} in version \"{v}\" cannot be handled as a {k}: strict decoding error: {}",
            warnings.join(", "),
            k = info.kind,
            v = info.version
        ))),
        FieldValidation::Ignore => Ok((canonical, vec![])),
        _ => Ok((canonical, warnings)),
    }
}

fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
    let keep = prefix.len().min(63 - 5);
    format!("{}{suffix}", &prefix[..keep])
}

impl Registry {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_service_ranges(store, ServiceRanges::default())
    }

    pub fn with_service_ranges(store: Arc<dyn Store>, ranges: ServiceRanges) -> Self {
        let services = Arc::new(Allocator::new(store.clone(), ranges));
        Registry { store, services, rbac: Default::default(), node_restriction: false }
    }

    /// Admit nodes' writes through NodeRestriction (set at start, with the Node authorizer).
    pub fn restrict_nodes(&mut self, on: bool) {
        self.node_restriction = on;
    }

    /// Check RBAC writes with the authorizer `current` publishes (set once, at start).
    pub fn set_authorizer(&self, current: tokio::sync::watch::Receiver<Arc<skiff_core::auth::Authorizer>>) {
        let _ = self.rbac.set(current);
    }

    /// RBAC's escalation prevention for a write of `obj` by `opts.user`.
    fn check_rbac_write(
        &self,
        kind: &dyn Kind,
        obj: &Value,
        namespace: &str,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        let (Some(user), Some(current)) = (&opts.user, self.rbac.get()) else { return Ok(()) };
        if !rbac_admission::is_rbac(kind) {
            return Ok(());
        }
        let authorizer = current.borrow().clone();
        rbac_admission::check(&authorizer, kind, obj, namespace, user)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn get(&self, r: ObjectRef<'_>) -> Result<Value, ApiError> {
        match self.store.get(&key(r)).await.map_err(store_err)? {
            Some(kv) => decode(r.kind, &kv),
            None => Err(r.kind.info().not_found(r.name)),
        }
    }

    async fn get_kv(&self, r: ObjectRef<'_>) -> Result<(Value, Revision), ApiError> {
        match self.store.get(&key(r)).await.map_err(store_err)? {
            Some(kv) => Ok((decode(r.kind, &kv)?, kv.mod_revision)),
            None => Err(r.kind.info().not_found(r.name)),
        }
    }

    /// Objects of `kind` (in `namespace`, or everywhere) matching the selectors, and the list revision.
    pub async fn list(
        &self,
        kind: &'static dyn Kind,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Result<(Vec<Value>, Revision), ApiError> {
        let req = ListRequest { kind, namespace, labels, fields, revision: None, start: None, limit: 0 };
        let mut items = Vec::new();
        let end = self
            .visit_page(&req, |obj| {
                items.push(obj);
                Ok(())
            })
            .await?;
        Ok((items, end.revision))
    }

    /// One page of a list, each matching object handed to `visit` as soon as it is decoded
    /// (nothing is held but the store page being read): the store is read at one revision in
    /// pages of its own, from the continue position, until `limit` objects match the selectors.
    pub async fn visit_page(
        &self,
        req: &ListRequest<'_>,
        mut visit: impl FnMut(Value) -> Result<(), ApiError>,
    ) -> Result<PageEnd, ApiError> {
        // An unknown field selector is an error even when nothing would be listed.
        matches(req.kind, &json!({}), &LabelSelector::default(), req.fields)?;
        let prefix = key_prefix(req.kind, req.namespace);
        let mut start = req.start.map(|s| format!("{prefix}{s}"));
        let mut revision = req.revision;
        let (mut matched, mut read, mut read_bytes) = (0, 0, 0);
        loop {
            // Exactly what is asked at first; more per read once selectors have filtered some
            // out, but fewer when the objects are large.
            let per_read = match read {
                0 => LIST_CHUNK,
                _ => objects_within(LIST_READ_BYTES, read_bytes / read, LIST_CHUNK),
            };
            let want = match req.limit {
                0 => per_read,
                n if read == 0 => n,
                n => (n - matched).max(per_read),
            };
            let range = RangeRequest { prefix: &prefix, start: start.as_deref(), revision, limit: want };
            let page = self.store.range(range).await.map_err(list_err)?;
            revision = Some(page.revision);
            let count = page.items.len();
            for (i, kv) in page.items.into_iter().enumerate() {
                read += 1;
                read_bytes += kv.value.len();
                let obj = decode(req.kind, &kv)?;
                if matches(req.kind, &obj, req.labels, req.fields)? {
                    visit(obj)?;
                    matched += 1;
                }
                // The first key after this one: what the next page (or read) starts at.
                let next = format!("{}\0", kv.key);
                if req.limit > 0 && matched == req.limit && (page.more || i + 1 < count) {
                    let relative = next.strip_prefix(&prefix).unwrap_or(&next).to_string();
                    return Ok(PageEnd {
                        revision: page.revision,
                        next_start: Some(relative),
                        matched,
                        read,
                        read_bytes,
                    });
                }
                start = Some(next);
            }
            if !page.more {
                return Ok(PageEnd { revision: page.revision, next_start: None, matched, read, read_bytes });
            }
        }
    }

    /// Wait (briefly) until the store has reached `revision`: a client that saw it from another
    /// server of the cluster may be ahead of this one.
    pub async fn wait_for_revision(&self, revision: Revision) -> Result<(), ApiError> {
        if self.store.wait_for(revision, FUTURE_REVISION_WAIT).await.map_err(store_err)? {
            return Ok(());
        }
        let current = self.store.current_revision().await.map_err(store_err)?;
        Err(ApiError::TooLargeResourceVersion { requested: revision, current })
    }

    pub async fn namespace_is_usable(&self, ns: &str) -> Result<(), ApiError> {
        let nskind = kinds::NAMESPACES;
        match self.get(ObjectRef { kind: nskind, namespace: "", name: ns }).await {
            Ok(obj) if meta::is_deleting(&obj) => Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ))),
            Ok(_) => Ok(()),
            Err(ApiError::NotFound { .. }) => Err(ApiError::not_found("namespaces", ns)),
            Err(e) => Err(e),
        }
    }

    /// Create `obj` (already decoded) in `namespace`.
    pub async fn create(
        &self,
        kind: &'static dyn Kind,
        namespace: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.create_with_warnings(kind, namespace, obj, opts).await.map(|w| w.object)
    }

    /// [`Registry::create`], with the warnings admission has for the client.
    pub async fn create_with_warnings(
        &self,
        kind: &'static dyn Kind,
        namespace: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.create_object(kind, namespace, obj, opts, None).await
    }

    /// Create; with `applied`, the creator is recorded as an Apply manager of those fields.
    async fn create_object(
        &self,
        kind: &'static dyn Kind,
        namespace: &str,
        mut obj: Value,
        opts: &WriteOptions,
        applied: Option<&Value>,
    ) -> Result<Written, ApiError> {
        let info = kind.info();
        // Server-side apply creates here too (a terminating definition's objects refuse it).
        if !kind.serves_verb("create") {
            return Err(kind.verb_refused("create"));
        }
        if info.namespaced {
            let body_ns = meta::namespace(&obj);
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            meta::metadata_mut(&mut obj).insert("namespace".into(), json!(namespace));
        } else {
            meta::metadata_mut(&mut obj).remove("namespace");
        }
        if meta::name(&obj).is_empty()
            && let Some(prefix) =
                obj.pointer("/metadata/generateName").and_then(Value::as_str).filter(|s| !s.is_empty())
        {
            let name = generate_name(prefix);
            meta::metadata_mut(&mut obj).insert("name".into(), json!(name));
        }
        let now = Timestamp::now();
        {
            let md = meta::metadata_mut(&mut obj);
            for f in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
                md.remove(f);
            }
            md.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            md.insert("creationTimestamp".into(), json!(time::rfc3339(now)));
            md.insert("generation".into(), json!(1));
        }
        kind.default(&mut obj);
        kind.prepare_create(&mut obj);
        service_account_admission::admit(self, kind, namespace, &mut obj).await?;
        node_restriction_admission::admit_create(self, kind, namespace, &obj, opts).await?;
        csr_admission::set_requestor(kind, &mut obj, opts);
        // A Service's IP families, by the cluster's, before validation (as upstream).
        if is_service(kind) {
            self.services.init_ip_families(&mut obj, None)?;
        }
        if is_ingress(kind) {
            self.default_ingress_class(&mut obj).await?;
        }
        storage_admission::admit_create(self, kind, &mut obj).await?;
        let errs = kind.validate(&obj);
        if !errs.is_empty() {
            return Err(info.invalid(meta::name(&obj), errs));
        }
        self.check_rbac_write(kind, &obj, namespace, opts)?;
        csr_admission::admit(self, kind, None, &obj, kinds::Part::Main, opts)?;
        if info.namespaced {
            self.namespace_is_usable(namespace).await?;
        }
        let warnings = self.admit_pod_security(kind, namespace, &obj, None, kinds::Part::Main).await?;
        match applied {
            None => managed::record_update(kind.shapes(), &mut obj, None, &opts.field_manager, Part::Main, now),
            Some(cfg) => {
                let owned =
                    managed::apply(kind.shapes(), &json!({"metadata": {}}), cfg, &opts.field_manager, false, now)?;
                if let Some(mf) = owned.pointer("/metadata/managedFields") {
                    meta::metadata_mut(&mut obj).insert("managedFields".into(), mf.clone());
                }
            }
        }
        let name = meta::name(&obj).to_string();
        let r = ObjectRef { kind, namespace, name: &name };
        // A name taken answers AlreadyExists before a dry run pretends, or a Service claims.
        if (opts.dry_run || is_service(kind)) && self.store.get(&key(r)).await.map_err(store_err)?.is_some() {
            return Err(info.already_exists(r.name));
        }
        let claims = if is_service(kind) { Some(self.services.on_create(&mut obj).await?) } else { None };
        if opts.dry_run {
            if let Some(c) = claims {
                self.services.release(c).await;
            }
            return Ok(Written { object: obj, warnings, created: true });
        }
        let created = self.store.create(&key(r), encode(r.kind, &obj)).await;
        if created.is_err()
            && let Some(c) = claims
        {
            self.services.release(c).await;
        }
        match created {
            Ok(kv) => Ok(Written { object: decode(r.kind, &kv)?, warnings, created: true }),
            Err(StoreError::AlreadyExists(_)) => Err(info.already_exists(r.name)),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Replace an object (PUT), or the `part` of it that a subresource names.
    pub async fn update(
        &self,
        r: ObjectRef<'_>,
        new: Value,
        part: kinds::Part,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.update_with_warnings(r, new, part, opts).await.map(|w| w.object)
    }

    /// [`Registry::update`], with the warnings admission has for the client.
    pub async fn update_with_warnings(
        &self,
        r: ObjectRef<'_>,
        new: Value,
        part: kinds::Part,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (current, rev) = self.get_kv(r).await?;
        let precondition = match meta::resource_version(&new) {
            "" => None,
            rv => Some(parse_rv(rv)?),
        };
        if precondition.is_some_and(|p| p != rev) {
            return Err(r.kind.info().stale(r.name));
        }
        self.write_update(r, &current, rev, new, part, opts, "Update").await
    }

    /// Check and store `new` as the successor of `current` (read at `rev`).
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        r: ObjectRef<'_>,
        current: &Value,
        rev: Revision,
        mut new: Value,
        part: kinds::Part,
        opts: &WriteOptions,
        operation: &str,
    ) -> Result<Written, ApiError> {
        let info = r.kind.info();
        let body_name = meta::name(&new);
        if !body_name.is_empty() && body_name != r.name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                r.name
            )));
        }
        if info.namespaced {
            let ns = meta::namespace(&new);
            if !ns.is_empty() && ns != r.namespace {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
        // A uid in the body is a precondition (upstream's storage checks it before the update).
        let (want, have) = (meta::uid(&new), meta::uid(current));
        if !want.is_empty() && want != have {
            return Err(info.conflict(
                r.name,
                format!("Precondition failed: UID in precondition: {want}, UID in object meta: {have}"),
            ));
        }
        // System metadata is the server's, whatever the client sent.
        {
            let old_md = current.get("metadata").cloned().unwrap_or(json!({}));
            let md = meta::metadata_mut(&mut new);
            md.insert("name".into(), json!(r.name));
            if info.namespaced {
                md.insert("namespace".into(), json!(r.namespace));
            }
            for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
                match old_md.get(f) {
                    Some(v) => md.insert(f.into(), v.clone()),
                    None => md.remove(f),
                };
            }
            md.insert("resourceVersion".into(), json!(rev.to_string()));
            if operation != "Apply"
                && !md.contains_key("managedFields")
                && let Some(mf) = old_md.get("managedFields")
            {
                md.insert("managedFields".into(), mf.clone());
            }
        }
        node_restriction_admission::admit_update(self, r, part, current, &new, opts)?;
        r.kind.default(&mut new);
        match part {
            kinds::Part::Main => r.kind.prepare_update(current, &mut new),
            kinds::Part::Status => r.kind.prepare_status_update(current, &mut new),
            kinds::Part::Named(name) => r.kind.prepare_part_update(name, current, &mut new),
        }
        if is_service(r.kind) && part == kinds::Part::Main {
            self.services.init_ip_families(&mut new, Some(current))?;
        }
        // A status write never counts (upstream's status strategies).
        if part != kinds::Part::Status && r.kind.changes_generation(current, &new) {
            let g = current.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            meta::metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        let errs = r.kind.validate_part_update(part, current, &new);
        if !errs.is_empty() {
            return Err(info.invalid(r.name, errs));
        }
        self.check_rbac_write(r.kind, &new, r.namespace, opts)?;
        csr_admission::admit(self, r.kind, Some(current), &new, part, opts)?;
        storage_admission::admit_update(self, r.kind, part, current, &new).await?;
        let warnings = self.admit_pod_security(r.kind, r.namespace, &new, Some(current), part).await?;
        let done = |object| Ok(Written { object, warnings, created: false });
        if operation != "Apply" {
            let part = if part == kinds::Part::Status { Part::Status } else { Part::Main };
            managed::record_update(
                r.kind.shapes(),
                &mut new,
                Some(current),
                &opts.field_manager,
                part,
                Timestamp::now(),
            );
        }
        // Finalizers gone from an object being deleted with no grace left: it goes now.
        let finish_delete = meta::is_deleting(&new) && meta::finalizers(&new).is_empty() && grace_left(&new) == Some(0);
        if opts.dry_run {
            return done(new);
        }
        if finish_delete {
            return match self.store.delete(&key(r), Some(rev)).await {
                Ok(kv) => {
                    let mut gone = new;
                    meta::metadata_mut(&mut gone).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                    done(gone)
                }
                Err(StoreError::Conflict { .. }) => Err(info.stale(r.name)),
                Err(StoreError::NotFound(_)) => Err(info.not_found(r.name)),
                Err(e) => Err(store_err(e)),
            };
        }
        if strip_rv(&new) == strip_rv(current) {
            // No-op writes are not stored, so watchers see no event (as upstream).
            return done(current.clone());
        }
        let service = is_service(r.kind) && part == kinds::Part::Main;
        let claims = if service { Some(self.services.on_update(current, &mut new).await?) } else { None };
        let written = self.store.update(&key(r), encode(r.kind, &new), rev).await;
        match (&written, claims) {
            (Ok(_), Some(_)) => self.services.after_update(current, &new).await,
            (Err(_), Some(c)) => self.services.release(c).await,
            _ => {}
        }
        match written {
            Ok(kv) => done(decode(r.kind, &kv)?),
            Err(StoreError::Conflict { .. }) => Err(info.stale(r.name)),
            Err(StoreError::NotFound(_)) => Err(info.not_found(r.name)),
            Err(e) => Err(store_err(e)),
        }
    }

    /// PATCH: apply `body` to the current object and store it, retrying on concurrent writes.
    pub async fn patch(
        &self,
        r: ObjectRef<'_>,
        patch_type: PatchType,
        body: &Value,
        part: kinds::Part,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let info = r.kind.info();
        let mut last_err = None;
        for _ in 0..PATCH_RETRIES {
            let (current, rev) = match self.get_kv(r).await {
                Ok(c) => c,
                Err(ApiError::NotFound { .. }) if patch_type == PatchType::Apply && part == kinds::Part::Main => {
                    return self.apply_create(r, body, opts).await;
                }
                Err(e) => return Err(e),
            };
            let (patched, warnings) = match patch_type {
                PatchType::Apply => {
                    let (applied, _) = decode_body(r.kind, body, &[], opts.field_validation)?;
                    let obj = managed::apply(
                        r.kind.shapes(),
                        &current,
                        &applied,
                        &opts.field_manager,
                        opts.force,
                        Timestamp::now(),
                    )?;
                    (obj, vec![])
                }
                _ => {
                    let raw = patch::apply(info.kind, patch_type, &current, body)?;
                    let (obj, warnings) = decode_body(r.kind, &raw, &[], opts.field_validation)?;
                    (obj, warnings)
                }
            };
            // A resourceVersion the patch sets is a precondition; otherwise we patch what we read
            // (and read again after a concurrent write).
            let wanted = precondition(patch_type, body);
            if !wanted.is_empty() && parse_rv(&wanted)? != rev {
                return Err(info.stale(r.name));
            }
            let operation = if patch_type == PatchType::Apply { "Apply" } else { "Update" };
            match self.write_update(r, &current, rev, patched, part, opts, operation).await {
                Ok(mut written) => {
                    written.warnings.splice(0..0, warnings);
                    return Ok(written);
                }
                Err(e @ ApiError::Conflict { .. }) if wanted.is_empty() => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| info.stale(r.name)))
    }

    async fn apply_create(&self, r: ObjectRef<'_>, body: &Value, opts: &WriteOptions) -> Result<Written, ApiError> {
        let (mut obj, warnings) = decode_body(r.kind, body, &[], opts.field_validation)?;
        let body_name = meta::name(&obj);
        if !body_name.is_empty() && body_name != r.name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                r.name
            )));
        }
        meta::metadata_mut(&mut obj).insert("name".into(), json!(r.name));
        let applied = obj.clone();
        let mut created = self.create_object(r.kind, r.namespace, obj, opts, Some(&applied)).await?;
        created.warnings.splice(0..0, warnings);
        Ok(created)
    }

    /// DELETE of one object, with graceful deletion for pods on a node, and finalizers.
    pub async fn delete(&self, r: ObjectRef<'_>, opts: &DeleteOptions, dry_run: bool) -> Result<Deleted, ApiError> {
        let info = r.kind.info();
        for _ in 0..PATCH_RETRIES {
            let (current, rev) = self.get_kv(r).await?;
            if let Some(p) = &opts.preconditions {
                if let Some(uid) = p.uid.as_deref()
                    && uid != meta::uid(&current)
                {
                    return Err(info.conflict(
                        r.name,
                        format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta::uid(&current)
                        ),
                    ));
                }
                if let Some(want) = p.resource_version.as_deref()
                    && want != rev.to_string()
                {
                    return Err(info.conflict(
                        r.name,
                        format!(
                            "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rev}"
                        ),
                    ));
                }
            }
            let policy = propagation(opts)?;
            let grace = r.kind.deletion_grace_seconds(&current, opts.grace_period_seconds);
            let mut finalizers = finalizers_for(meta::finalizers(&current), policy);
            if !meta::is_deleting(&current) {
                for f in r.kind.deletion_finalizers() {
                    if !finalizers.iter().any(|x| x == f) {
                        finalizers.push(f.to_string());
                    }
                }
            }
            let finalizers_changed = finalizers != meta::finalizers(&current);
            let controller_finalizes = r.kind.finalized_by_controller();
            if grace == 0 && finalizers.is_empty() && !controller_finalizes {
                if dry_run {
                    return Ok(Deleted::Gone(current));
                }
                return match self.store.delete(&key(r), Some(rev)).await {
                    Ok(kv) => {
                        if is_service(r.kind) {
                            self.services.after_delete(&current).await;
                        }
                        let mut gone = current;
                        meta::metadata_mut(&mut gone)
                            .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                        Ok(Deleted::Gone(gone))
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(StoreError::NotFound(_)) => Err(info.not_found(r.name)),
                    Err(e) => Err(store_err(e)),
                };
            }
            // Start (or shorten) a graceful deletion.
            let mut updated = current.clone();
            let now = Timestamp::now();
            let existing_grace = current.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
            let shorten = existing_grace.is_none_or(|g| grace < g);
            if meta::is_deleting(&current) && !shorten && !finalizers_changed {
                return Ok(Deleted::Pending(current));
            }
            {
                let md = meta::metadata_mut(&mut updated);
                if !meta::is_deleting(&current) || shorten {
                    let at = now.checked_add(jiff::SignedDuration::from_secs(grace)).unwrap_or(now);
                    md.insert("deletionTimestamp".into(), json!(time::rfc3339(at)));
                    md.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
                if finalizers.is_empty() {
                    md.remove("finalizers");
                } else {
                    md.insert("finalizers".into(), json!(finalizers));
                }
            }
            if !meta::is_deleting(&current) {
                r.kind.mark_terminating(&mut updated);
            }
            if dry_run {
                return Ok(Deleted::Pending(updated));
            }
            match self.store.update(&key(r), encode(r.kind, &updated), rev).await {
                Ok(kv) => return Ok(Deleted::Pending(decode(r.kind, &kv)?)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound(_)) => {
                    return Err(info.not_found(r.name));
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(info.stale(r.name))
    }

    /// A system write (binding, namespace finalize): stored as given, compare-and-swap on `current`.
    pub async fn write_raw(&self, r: ObjectRef<'_>, current: &Value, next: Value) -> Result<Value, ApiError> {
        let rev = parse_rv(meta::resource_version(current))?;
        match self.store.update(&key(r), encode(r.kind, &next), rev).await {
            Ok(kv) => decode(r.kind, &kv),
            Err(StoreError::Conflict { .. }) => Err(r.kind.info().stale(r.name)),
            Err(StoreError::NotFound(_)) => Err(r.kind.info().not_found(r.name)),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Remove a namespace whose contents are gone (the namespace controller's last step).
    pub async fn finalize_namespace(&self, name: &str) -> Result<(), ApiError> {
        let nskind = kinds::NAMESPACES;
        let r = ObjectRef { kind: nskind, namespace: "", name };
        let (_, rev) = self.get_kv(r).await?;
        match self.store.delete(&key(r), Some(rev)).await {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(nskind.info().stale(name)),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Ensure a namespace exists (used at start-up for the built-in ones).
    pub async fn ensure_namespace(&self, name: &str) -> Result<(), ApiError> {
        let nskind = kinds::NAMESPACES;
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let opts = WriteOptions { field_manager: "skiff".into(), ..Default::default() };
        match self.create(nskind, "", obj, &opts).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The `kubernetes` Service in `default`: the range's first address, port 443 to the API
    /// server's port (its endpoints are not written yet: pods reach the API once the proxy can).
    pub async fn ensure_kubernetes_service(&self, api_port: u16) -> Result<(), ApiError> {
        let ip = self.services.ranges().first().to_string();
        self.ensure_service(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}]},
        }))
        .await
    }

    /// The `kubernetes` Service's endpoints: this API server at `ip:port` (an address pods
    /// reach), as its Endpoints and EndpointSlice, written on every start.
    pub async fn ensure_kubernetes_endpoints(&self, ip: std::net::Ipv4Addr, port: u16) -> Result<(), ApiError> {
        let labels = json!({"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "skiff-apiserver"});
        let endpoints = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        });
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        });
        let slices = kinds::by_resource("discovery.k8s.io", "v1", "endpointslices").ok_or(ApiError::NoResource)?;
        self.put(kinds::ENDPOINTS, endpoints).await?;
        self.put(slices, slice).await
    }

    /// Create `obj`, or replace what is stored under its name.
    async fn put(&self, kind: &'static dyn Kind, obj: Value) -> Result<(), ApiError> {
        let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_string();
        let name = meta::name(&obj).to_string();
        let r = ObjectRef { kind, namespace: &namespace, name: &name };
        match self.get(r).await {
            Ok(current) => {
                let mut next = obj;
                if let Some(md) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                    for f in ["uid", "creationTimestamp", "resourceVersion"] {
                        if let Some(v) = current.pointer(&format!("/metadata/{f}")) {
                            md.insert(f.into(), v.clone());
                        }
                    }
                }
                self.write_raw(r, &current, next).await.map(|_| ())
            }
            Err(ApiError::NotFound { .. }) => self.ensure(kind, obj).await,
            Err(e) => Err(e),
        }
    }

    /// The `kube-dns` Service in `kube-system`, on the cluster DNS address (`--cluster-dns`),
    /// that clients look for. Every node answers on that address itself: it has no selector.
    pub async fn ensure_kube_dns_service(&self, ip: std::net::Ipv4Addr) -> Result<(), ApiError> {
        let port =
            |name: &str, protocol: &str| json!({"name": name, "port": 53, "protocol": protocol, "targetPort": 53});
        self.ensure_service(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system",
                "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "skiff-dns"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip.to_string(), "sessionAffinity": "None",
                "ports": [port("dns", "UDP"), port("dns-tcp", "TCP")]},
        }))
        .await
    }

    /// The DefaultIngressClass admission: an Ingress created naming no class (neither
    /// `ingressClassName` nor the old annotation) gets the default class's name (the newest,
    /// if several are marked default), as upstream's admission plugin does.
    async fn default_ingress_class(&self, obj: &mut Value) -> Result<(), ApiError> {
        let named = obj.pointer("/spec/ingressClassName").is_some_and(|v| !v.is_null())
            || obj.pointer("/metadata/annotations/kubernetes.io~1ingress.class").is_some();
        let Some(kind) = kinds::by_resource("networking.k8s.io", "v1", "ingressclasses").filter(|_| !named) else {
            return Ok(());
        };
        let (classes, _) = self.list(kind, None, &LabelSelector::default(), &FieldSelector::default()).await?;
        let marker =
            format!("/metadata/annotations/{}", skiff_core::ingress_class::DEFAULT_ANNOTATION.replace('/', "~1"));
        let default =
            (classes.iter()).filter(|c| c.pointer(&marker).and_then(Value::as_str) == Some("true")).max_by_key(|c| {
                c.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or_default().to_string()
            });
        if let Some(class) = default
            && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("ingressClassName".into(), json!(meta::name(class)));
        }
        Ok(())
    }

    /// skiff's IngressClass (`skiff`, the default), which the nodes' built-in ingress serves.
    pub async fn ensure_ingress_class(&self) -> Result<(), ApiError> {
        let kind = kinds::by_resource("networking.k8s.io", "v1", "ingressclasses").ok_or(ApiError::NoResource)?;
        self.ensure(kind, skiff_core::ingress_class::built_in()).await
    }

    /// skiff's StorageClass (`local-path`, the default), which the nodes' built-in provisioner
    /// serves: made at start unless it exists (a user's changes to it are kept).
    pub async fn ensure_storage_class(&self) -> Result<(), ApiError> {
        self.ensure(kinds::STORAGE_CLASSES, skiff_core::storage_class::built_in()).await
    }

    /// Upstream's default ClusterRoles and ClusterRoleBindings (`cluster-admin`, `admin`,
    /// `edit`, `view`, the `system:` ones): created when missing; one still marked
    /// `rbac.authorization.kubernetes.io/autoupdate: "true"` gets what a newer default adds
    /// (rules, aggregation selectors, subjects: added, never removed), as kube-apiserver's
    /// start-up reconciliation does.
    pub async fn ensure_rbac_defaults(&self) -> Result<(), ApiError> {
        use skiff_core::auth::bootstrap;
        for role in bootstrap::cluster_roles() {
            self.reconcile_default(kinds::CLUSTER_ROLES, to_value(&role)?, &["rules"], &["aggregationRule"]).await?;
        }
        for binding in bootstrap::cluster_role_bindings() {
            self.reconcile_default(kinds::CLUSTER_ROLE_BINDINGS, to_value(&binding)?, &["subjects"], &[]).await?;
        }
        Ok(())
    }

    /// Create `default` unless it exists; if it does and still auto-updates, add the items of
    /// its `lists` it lacks and set its `fields` as the default has them.
    async fn reconcile_default(
        &self,
        kind: &'static dyn Kind,
        default: Value,
        lists: &[&str],
        fields: &[&str],
    ) -> Result<(), ApiError> {
        let name = meta::name(&default).to_string();
        let r = ObjectRef { kind, namespace: "", name: &name };
        let current = match self.get(r).await {
            Ok(c) => c,
            Err(ApiError::NotFound { .. }) => return self.ensure(kind, default).await,
            Err(e) => return Err(e),
        };
        let autoupdate = current.pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate");
        if autoupdate.and_then(Value::as_str) != Some("true") {
            return Ok(());
        }
        let mut next = current.clone();
        for list in lists {
            let wanted = default.get(*list).and_then(Value::as_array).cloned().unwrap_or_default();
            let have = next.get_mut(*list).and_then(Value::as_array_mut);
            match have {
                Some(have) => {
                    for item in wanted {
                        if !have.contains(&item) {
                            have.push(item);
                        }
                    }
                }
                None if !wanted.is_empty() => next[*list] = Value::Array(wanted),
                None => {}
            }
        }
        for field in fields {
            if let Some(v) = default.get(*field) {
                next[*field] = v.clone();
            }
        }
        if next == current {
            return Ok(());
        }
        let opts = WriteOptions { field_manager: "skiff".into(), ..Default::default() };
        match self.update(r, next, kinds::Part::Main, &opts).await {
            // Someone changed it meanwhile: theirs stands until the next start.
            Ok(_) | Err(ApiError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn ensure_service(&self, svc: Value) -> Result<(), ApiError> {
        self.ensure(kinds::SERVICES, svc).await
    }

    /// Create a built-in object unless it exists (a user's changes to it are kept).
    async fn ensure(&self, kind: &'static dyn Kind, obj: Value) -> Result<(), ApiError> {
        let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_string();
        let opts = WriteOptions { field_manager: "skiff".into(), ..Default::default() };
        match self.create(kind, &namespace, obj, &opts).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn to_value(o: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(o).map_err(|e| ApiError::Internal(e.to_string()))
}

fn strip_rv(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(md) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
        md.remove("managedFields");
    }
    o
}

fn grace_left(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64)
}

/// Whether `obj` passes the selectors; an unknown field selector field is a 400.
pub fn matches(kind: &dyn Kind, obj: &Value, labels: &LabelSelector, fields: &FieldSelector) -> Result<bool, ApiError> {
    if !labels.matches(&meta::labels(obj)) {
        return Ok(false);
    }
    fields.matches(|f| kind.field_value(obj, f)).map_err(|e| ApiError::BadRequest(e.to_string()))
}

mod csr_admission;
pub(crate) mod node_restriction_admission;
mod pod_security_admission;
mod rbac_admission;
mod service_account_admission;
#[cfg(test)]
mod service_tests;
mod storage_admission;
#[cfg(test)]
mod tests;
