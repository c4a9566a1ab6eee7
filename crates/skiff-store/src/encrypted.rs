//! Encryption at rest: a [`Store`] in front of another that seals the values under chosen key
//! prefixes (Secrets, by default) with AES-256-GCM before they are written and opens them when
//! they are read, as kube-apiserver's `aesgcm` provider stores them: `k8s:enc:aesgcm:v1:NAME:`,
//! then a random 12-byte nonce, then the ciphertext and tag (the key as additional data, so a
//! value cannot be moved to another key). The first key of the [`Keyring`] seals; every key
//! opens. A value stored before encryption was on (plaintext) still reads, and [`reseal`]
//! rewrites whatever is not sealed with the first key (after a rotation, or the first start).
//! A [`Keyring::plaintext`] writes values as they are (upstream's `identity` provider first)
//! and opens the sealed ones: [`reseal`] then unseals them all.

use crate::{Event, KeyValue, Page, RangeRequest, Revision, Store, StoreError, WatchItem, WatchStream};
use futures::StreamExt;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &[u8] = b"k8s:enc:aesgcm:v1:";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key {0:?}: an AES-256-GCM key is 32 bytes, not {1}")]
    Length(String, usize),
    #[error("key name {0:?}: names are non-empty and hold no ':'")]
    Name(String),
    #[error("the keyring has no key")]
    Empty,
}

/// The named keys values are sealed with (the first) and opened with (any).
pub struct Keyring {
    keys: Vec<(String, LessSafeKey)>,
    /// Values are written as they are (upstream's `identity` provider first); the keys only
    /// open what they sealed before.
    plaintext: bool,
    random: SystemRandom,
}

impl Keyring {
    /// `keys` as (name, 32 secret bytes), the sealing key first.
    pub fn new(keys: &[(String, Vec<u8>)]) -> Result<Keyring, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Keyring { keys: Self::unbound(keys)?, plaintext: false, random: SystemRandom::new() })
    }

    /// Writes plaintext; `keys` (maybe none) open what they sealed: how encryption is turned
    /// off, and the values unsealed by [`reseal`].
    pub fn plaintext(keys: &[(String, Vec<u8>)]) -> Result<Keyring, KeyError> {
        Ok(Keyring { keys: Self::unbound(keys)?, plaintext: true, random: SystemRandom::new() })
    }

    fn unbound(keys: &[(String, Vec<u8>)]) -> Result<Vec<(String, LessSafeKey)>, KeyError> {
        let mut out = Vec::new();
        for (name, secret) in keys {
            if name.is_empty() || name.contains(':') {
                return Err(KeyError::Name(name.clone()));
            }
            let key =
                UnboundKey::new(&AES_256_GCM, secret).map_err(|_| KeyError::Length(name.clone(), secret.len()))?;
            out.push((name.clone(), LessSafeKey::new(key)));
        }
        Ok(out)
    }

    fn seal(&self, key: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some((name, sealing)) = self.keys.first().filter(|_| !self.plaintext) else { return Ok(plain.to_vec()) };
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| StoreError::Backend("no randomness for a nonce".into()))?;
        let mut body = plain.to_vec();
        sealing
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(key.as_bytes()), &mut body)
            .map_err(|_| StoreError::Backend(format!("sealing {key}")))?;
        Ok([PREFIX, name.as_bytes(), b":", &nonce, &body].concat())
    }

    /// The plaintext of a stored value (a value never sealed is its own plaintext).
    fn open(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_vec()) };
        let colon = rest.iter().position(|b| *b == b':').ok_or_else(|| corrupt(key))?;
        let (name, sealed) = (&rest[..colon], &rest[colon + 1..]);
        let Some((_, opening)) = self.keys.iter().find(|(n, _)| n.as_bytes() == name) else {
            let name = String::from_utf8_lossy(name);
            return Err(StoreError::Backend(format!("{key} is sealed with key {name:?}, which is not in the keyring")));
        };
        if sealed.len() < NONCE_LEN {
            return Err(corrupt(key));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt(key))?;
        let mut body = body.to_vec();
        let plain = opening.open_in_place(nonce, Aad::from(key.as_bytes()), &mut body).map_err(|_| corrupt(key))?;
        Ok(plain.to_vec())
    }

    /// Whether `stored` is as a write now stores it: sealed with the first key, or plaintext.
    fn as_written(&self, stored: &[u8]) -> bool {
        let Some((name, _)) = self.keys.first().filter(|_| !self.plaintext) else {
            return !stored.starts_with(PREFIX);
        };
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix(name.as_bytes()))
            .is_some_and(|r| r.first() == Some(&b':'))
    }
}

fn corrupt(key: &str) -> StoreError {
    StoreError::Backend(format!("{key}: the sealed value does not open (a wrong key, or corrupt)"))
}

/// `inner`, with the values under `prefixes` sealed by `keys`.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    prefixes: Vec<String>,
    keys: Arc<Keyring>,
}

impl EncryptedStore {
    pub fn new(inner: Arc<dyn Store>, prefixes: Vec<String>, keys: Keyring) -> EncryptedStore {
        EncryptedStore { inner, prefixes, keys: Arc::new(keys) }
    }

    fn covers(&self, key: &str) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    fn seal(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        if self.covers(key) { self.keys.seal(key, &value) } else { Ok(value) }
    }

    fn open(&self, mut kv: KeyValue) -> Result<KeyValue, StoreError> {
        if self.covers(&kv.key) {
            kv.value = self.keys.open(&kv.key, &kv.value)?;
        }
        Ok(kv)
    }
}

#[async_trait::async_trait]
impl Store for EncryptedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner.get(key).await?.map(|kv| self.open(kv)).transpose()
    }

    async fn range(&self, req: RangeRequest<'_>) -> Result<Page, StoreError> {
        let mut page = self.inner.range(req).await?;
        page.items = page.items.into_iter().map(|kv| self.open(kv)).collect::<Result<_, _>>()?;
        Ok(page)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let kv = self.inner.create(key, self.seal(key, value)?).await?;
        self.open(kv)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue, StoreError> {
        let kv = self.inner.update(key, self.seal(key, value)?, expected).await?;
        self.open(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        let kv = self.inner.delete(key, expected).await?;
        self.open(kv)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let stream = self.inner.watch(prefix, after).await?;
        let (keys, prefixes) = (self.keys.clone(), self.prefixes.clone());
        let covers = move |key: &str| prefixes.iter().any(|p| key.starts_with(p.as_str()));
        Ok(stream
            .map(move |item| match item {
                Ok(WatchItem::Event(e)) if covers(&e.kv.key) => {
                    let open = |kv: &KeyValue| -> Result<KeyValue, StoreError> {
                        Ok(KeyValue { value: keys.open(&kv.key, &kv.value)?, ..kv.clone() })
                    };
                    let event = Event { kind: e.kind, kv: open(&e.kv)?, prev: e.prev.as_ref().map(open).transpose()? };
                    Ok(WatchItem::Event(Arc::new(event)))
                }
                other => other,
            })
            .boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.inner.compacted_revision().await
    }

    async fn wait_for(&self, revision: Revision, timeout: Duration) -> Result<bool, StoreError> {
        self.inner.wait_for(revision, timeout).await
    }
}

/// Rewrite every value under the covered prefixes that is not as a write now stores it (a value
/// stored before encryption, under a rotated-out key, or sealed when the keyring now writes
/// plaintext): returns how many were. A value
/// written meanwhile by someone else is left (it is sealed with the first key already).
pub async fn reseal(store: &EncryptedStore) -> Result<usize, StoreError> {
    let mut done = 0;
    for prefix in &store.prefixes {
        let (raw, _) = store.inner.list(prefix).await?;
        for kv in raw.into_iter().filter(|kv| !store.keys.as_written(&kv.value)) {
            let plain = store.keys.open(&kv.key, &kv.value)?;
            match store.update(&kv.key, plain, kv.mod_revision).await {
                Ok(_) => done += 1,
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn keyring(names: &[&str]) -> Keyring {
        // A key's bytes follow from its name: the same key in every keyring of a test.
        let keys: Vec<(String, Vec<u8>)> = names.iter().map(|n| (n.to_string(), vec![n.as_bytes()[1]; 32])).collect();
        Keyring::new(&keys).expect("keyring")
    }

    #[tokio::test]
    async fn values_under_the_prefixes_are_sealed_at_rest_and_open_when_read() {
        let raw: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = EncryptedStore::new(raw.clone(), vec!["/registry/secrets/".into()], keyring(&["k1"]));
        let mut events = store.watch("/registry/", 0).await.expect("watch");
        store.create("/registry/secrets/ns/db", b"password".to_vec()).await.expect("create");
        store.create("/registry/pods/ns/web", b"plain".to_vec()).await.expect("create");
        let stored = raw.get("/registry/secrets/ns/db").await.expect("get").expect("there");
        assert!(stored.value.starts_with(b"k8s:enc:aesgcm:v1:k1:"), "sealed at rest");
        assert!(!stored.value.windows(8).any(|w| w == b"password"));
        assert_eq!(raw.get("/registry/pods/ns/web").await.expect("get").expect("there").value, b"plain");
        assert_eq!(store.get("/registry/secrets/ns/db").await.expect("get").expect("there").value, b"password");
        assert_eq!(store.list("/registry/secrets/").await.expect("list").0[0].value, b"password");
        match events.next().await {
            Some(Ok(WatchItem::Event(e))) => assert_eq!(e.kv.value, b"password", "watches see plaintext"),
            other => panic!("{other:?}"),
        }
        // Moved to another key, a sealed value does not open.
        raw.create("/registry/secrets/ns/copy", stored.value.clone()).await.expect("copy");
        assert!(store.get("/registry/secrets/ns/copy").await.is_err());
    }

    #[tokio::test]
    async fn plaintext_and_old_keys_read_and_reseal_moves_them_to_the_first_key() {
        let raw: Arc<dyn Store> = Arc::new(MemoryStore::new());
        raw.create("/registry/secrets/ns/old", b"from before".to_vec()).await.expect("plain");
        let before = EncryptedStore::new(raw.clone(), vec!["/registry/secrets/".into()], keyring(&["k1"]));
        before.create("/registry/secrets/ns/a", b"alpha".to_vec()).await.expect("create");
        // A rotation: k2 seals now, k1 still opens.
        let after = EncryptedStore::new(raw.clone(), vec!["/registry/secrets/".into()], keyring(&["k2", "k1"]));
        assert_eq!(after.get("/registry/secrets/ns/old").await.expect("get").expect("there").value, b"from before");
        assert_eq!(after.get("/registry/secrets/ns/a").await.expect("get").expect("there").value, b"alpha");
        assert_eq!(reseal(&after).await.expect("reseal"), 2);
        for key in ["/registry/secrets/ns/old", "/registry/secrets/ns/a"] {
            assert!(raw.get(key).await.expect("get").expect("there").value.starts_with(b"k8s:enc:aesgcm:v1:k2:"));
        }
        assert_eq!(reseal(&after).await.expect("again"), 0);
        // Without the key it was sealed with, a value is an error, never garbage.
        let lost = EncryptedStore::new(raw, vec!["/registry/secrets/".into()], keyring(&["k3"]));
        let err = lost.get("/registry/secrets/ns/a").await.expect_err("no key");
        assert!(err.to_string().contains("not in the keyring"), "{err}");
    }

    #[tokio::test]
    async fn identity_first_writes_plaintext_and_reseal_unseals() {
        let raw: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let sealed = EncryptedStore::new(raw.clone(), vec!["/registry/secrets/".into()], keyring(&["k1"]));
        sealed.create("/registry/secrets/ns/a", b"alpha".to_vec()).await.expect("create");
        let k1 = [("k1".to_string(), vec![b'1'; 32])];
        let off =
            EncryptedStore::new(raw.clone(), vec!["/registry/secrets/".into()], Keyring::plaintext(&k1).expect("k"));
        off.create("/registry/secrets/ns/b", b"beta".to_vec()).await.expect("create");
        assert_eq!(raw.get("/registry/secrets/ns/b").await.expect("get").expect("there").value, b"beta");
        assert_eq!(off.get("/registry/secrets/ns/a").await.expect("get").expect("there").value, b"alpha");
        assert_eq!(reseal(&off).await.expect("reseal"), 1);
        assert_eq!(raw.get("/registry/secrets/ns/a").await.expect("get").expect("there").value, b"alpha");
        assert_eq!(reseal(&off).await.expect("again"), 0);
    }

    #[test]
    fn keys_are_checked() {
        assert!(matches!(Keyring::new(&[("k".into(), vec![0; 16])]), Err(KeyError::Length(..))));
        assert!(matches!(Keyring::new(&[("a:b".into(), vec![0; 32])]), Err(KeyError::Name(_))));
        assert!(matches!(Keyring::new(&[]), Err(KeyError::Empty)));
    }

    /// Sealing every key, the store behaves as the one behind it: the shared suite.
    mod conformance {
        use super::*;

        fn sealed_memory() -> EncryptedStore {
            EncryptedStore::new(Arc::new(MemoryStore::new()), vec!["/".into()], keyring(&["k1"]))
        }

        crate::store_conformance!(sealed_memory());
    }
}
