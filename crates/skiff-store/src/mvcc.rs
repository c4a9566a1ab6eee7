//! The multi-version rules every backend shares, as pure functions: each write adds one version
//! of its key at a new revision (a delete adds a tombstone), a read at revision R sees each key's
//! latest version at or below R, an event is a version and the one before it, and compaction
//! drops the versions no read at or after its revision can see.

use crate::hub::HistoryRead;
use crate::{Event, EventType, KeyValue, Page, RangeRequest, Revision, StoreError};

/// One version of a key: the revision that created the key and its value, or a tombstone
/// (the key was deleted at this version's revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub create_revision: Revision,
    /// `None`: a tombstone.
    pub value: Option<Vec<u8>>,
}

const LIVE: u8 = 0;
const TOMBSTONE: u8 = 1;

impl Version {
    /// Stored form: a tag byte, the create revision (big-endian), then the value.
    pub fn encode(&self) -> Vec<u8> {
        let value = self.value.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(9 + value.len());
        out.push(if self.value.is_some() { LIVE } else { TOMBSTONE });
        out.extend_from_slice(&self.create_revision.to_be_bytes());
        out.extend_from_slice(value);
        out
    }

    pub fn decode(key: &str, raw: &[u8]) -> Result<Version, StoreError> {
        let corrupt = || StoreError::Backend(format!("corrupt version record for {key}"));
        let (&tag, rest) = raw.split_first().ok_or_else(corrupt)?;
        let (create, value) = rest.split_at_checked(8).ok_or_else(corrupt)?;
        let create_revision = u64::from_be_bytes(create.try_into().map_err(|_| corrupt())?);
        match tag {
            LIVE => Ok(Version { create_revision, value: Some(value.to_vec()) }),
            TOMBSTONE if value.is_empty() => Ok(Version { create_revision, value: None }),
            _ => Err(corrupt()),
        }
    }

    /// Whether a stored record is a tombstone, without copying its value.
    pub fn is_tombstone(raw: &[u8]) -> bool {
        raw.first() == Some(&TOMBSTONE)
    }

    /// The key as a read sees it at this version (`None` for a tombstone).
    pub fn into_kv(self, key: &str, revision: Revision) -> Option<KeyValue> {
        let value = self.value?;
        Some(KeyValue { key: key.into(), value, create_revision: self.create_revision, mod_revision: revision })
    }
}

/// A write as a client asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Create,
    /// Replace if the key's `mod_revision` is this.
    Update(Revision),
    /// Remove, if the key's `mod_revision` is this when given.
    Delete(Option<Revision>),
}

/// The change `write` makes to `key` whose current (live) state is `current`, at `revision`:
/// the event to publish, whose `kv` is what the write returns. The version to store is
/// [`version_of`] the event.
pub fn apply(
    key: &str,
    write: Write,
    value: Vec<u8>,
    current: Option<KeyValue>,
    revision: Revision,
) -> Result<Event, StoreError> {
    // The event may stay in the watch cache: hold exactly the value's bytes, not the slack of
    // the buffer it was serialized into (up to as much again).
    let mut value = value;
    value.shrink_to_fit();
    match (write, current) {
        (Write::Create, Some(_)) => Err(StoreError::AlreadyExists(key.into())),
        (Write::Create, None) => Ok(Event {
            kind: EventType::Created,
            kv: KeyValue { key: key.into(), value, create_revision: revision, mod_revision: revision },
            prev: None,
        }),
        (Write::Update(_) | Write::Delete(_), None) => Err(StoreError::NotFound(key.into())),
        (Write::Update(expected) | Write::Delete(Some(expected)), Some(cur)) if cur.mod_revision != expected => {
            Err(StoreError::Conflict { key: key.into(), expected, actual: cur.mod_revision })
        }
        (Write::Update(_), Some(cur)) => Ok(Event {
            kind: EventType::Updated,
            kv: KeyValue { key: key.into(), value, create_revision: cur.create_revision, mod_revision: revision },
            prev: Some(cur),
        }),
        (Write::Delete(_), Some(cur)) => Ok(Event {
            kind: EventType::Deleted,
            kv: KeyValue { mod_revision: revision, ..cur.clone() },
            prev: Some(cur),
        }),
    }
}

/// The version an event stores.
pub fn version_of(event: &Event) -> Version {
    let value = (event.kind != EventType::Deleted).then(|| event.kv.value.clone());
    Version { create_revision: event.kv.create_revision, value }
}

/// The event that wrote `version` of `key` at `revision`, given the version before it.
pub fn event_of(key: &str, revision: Revision, version: Version, prev: Option<(Revision, Version)>) -> Event {
    let prev = prev.and_then(|(r, v)| v.into_kv(key, r));
    match version.value {
        None => {
            // A tombstone's event carries the last value; a tombstone always follows a live version.
            let last = prev.clone().unwrap_or_else(|| KeyValue {
                key: key.into(),
                value: Vec::new(),
                create_revision: version.create_revision,
                mod_revision: revision,
            });
            Event { kind: EventType::Deleted, kv: KeyValue { mod_revision: revision, ..last }, prev }
        }
        Some(value) => {
            let kind = if prev.is_some() { EventType::Updated } else { EventType::Created };
            let kv =
                KeyValue { key: key.into(), value, create_revision: version.create_revision, mod_revision: revision };
            Event { kind, kv, prev }
        }
    }
}

/// How many of a key's oldest versions compaction at `revision` drops, given the revisions of
/// its versions in ascending order and whether each is a tombstone: every version older than
/// the latest at or below `revision`, and that one too if it is a tombstone.
pub fn compaction_drops(versions: &[(Revision, bool)], revision: Revision) -> usize {
    match versions.iter().rposition(|(r, _)| *r <= revision) {
        None => 0,
        Some(i) if versions[i].1 => i + 1,
        Some(i) => i,
    }
}

/// The latest revision `at` or below among ascending `revisions`.
pub fn visible(revisions: impl DoubleEndedIterator<Item = Revision>, at: Revision) -> Option<Revision> {
    revisions.rev().find(|r| *r <= at)
}

/// The check every read at a revision makes against the store's compacted and current ones.
pub fn check_readable(revision: Revision, compacted: Revision, current: Revision) -> Result<(), StoreError> {
    if revision < compacted {
        return Err(StoreError::Compacted { requested: revision, compacted });
    }
    if revision > current {
        return Err(StoreError::FutureRevision { requested: revision, current });
    }
    Ok(())
}

/// Read access to a backend's versions and log, as one consistent snapshot.
pub trait Snapshot {
    /// The first key after `after` (exclusive), or else the first at or after `from`, among
    /// keys that have any version.
    fn next_key(&self, from: &str, after: Option<&str>) -> Result<Option<String>, StoreError>;
    /// The version of `key` a read at `at` sees (tombstones included), with its revision.
    fn visible(&self, key: &str, at: Revision) -> Result<Option<(Revision, Version)>, StoreError>;
    /// Calls `f` with each revision in (`after`, `upto`] and the key written at it, in order,
    /// until `f` returns false.
    fn log(
        &self,
        after: Revision,
        upto: Revision,
        f: &mut dyn FnMut(Revision, &str) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
}

/// The live value of `key` now.
pub fn get(s: &impl Snapshot, key: &str) -> Result<Option<KeyValue>, StoreError> {
    Ok(s.visible(key, Revision::MAX)?.and_then(|(rev, v)| v.into_kv(key, rev)))
}

/// A page of `req`, read at `at` (already checked readable): one key lookup per key, so a page
/// costs what it returns plus the keys deleted since compaction, never the whole collection.
pub fn read_range(s: &impl Snapshot, req: &RangeRequest<'_>, at: Revision) -> Result<Page, StoreError> {
    let mut items = Vec::new();
    let from = req.start.filter(|s| *s > req.prefix).unwrap_or(req.prefix);
    let mut cursor: Option<String> = None;
    while let Some(key) = s.next_key(from, cursor.as_deref())? {
        if !key.starts_with(req.prefix) {
            break;
        }
        if let Some(kv) = s.visible(&key, at)?.and_then(|(rev, v)| v.into_kv(&key, rev)) {
            if req.limit > 0 && items.len() == req.limit {
                return Ok(Page { items, revision: at, more: true });
            }
            items.push(kv);
        }
        cursor = Some(key);
    }
    Ok(Page { items, revision: at, more: false })
}

/// The events `read` asks for, rebuilt from the log and the versions (see
/// [`crate::hub::History::events`]).
pub fn read_events(s: &impl Snapshot, read: &HistoryRead) -> Result<(Vec<Event>, Revision), StoreError> {
    let (mut out, mut bytes, mut through) = (Vec::new(), 0, read.upto);
    s.log(read.after, read.upto, &mut |rev, key| {
        if !key.starts_with(&read.prefix) {
            return Ok(true);
        }
        let Some((_, version)) = s.visible(key, rev)?.filter(|(r, _)| *r == rev) else {
            return Err(StoreError::Backend(format!("the log names {key} at {rev} but no such version exists")));
        };
        let prev = match rev.checked_sub(1) {
            Some(before) => s.visible(key, before)?,
            None => None,
        };
        let event = event_of(key, rev, version, prev);
        bytes += event.size();
        out.push(event);
        if out.len() >= read.max_events || bytes >= read.max_bytes {
            through = rev;
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok((out, through))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_corruption_is_an_error() {
        for v in
            [Version { create_revision: 7, value: Some(b"x".to_vec()) }, Version { create_revision: 9, value: None }]
        {
            let raw = v.encode();
            assert_eq!(Version::is_tombstone(&raw), v.value.is_none());
            assert_eq!(Version::decode("/k", &raw).expect("decode"), v);
        }
        for raw in [&b""[..], &[0, 1, 2][..], &[1, 0, 0, 0, 0, 0, 0, 0, 1, 42][..], &[9; 12][..]] {
            assert!(Version::decode("/k", raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn writes_follow_compare_and_swap() {
        let cur = KeyValue { key: "/k".into(), value: b"1".to_vec(), create_revision: 2, mod_revision: 5 };
        let e = apply("/k", Write::Update(5), b"2".to_vec(), Some(cur.clone()), 6).expect("update");
        assert_eq!((e.kind, e.kv.create_revision, e.kv.mod_revision), (EventType::Updated, 2, 6));
        assert!(matches!(
            apply("/k", Write::Update(4), vec![], Some(cur.clone()), 6),
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(apply("/k", Write::Create, vec![], Some(cur.clone()), 6), Err(StoreError::AlreadyExists(_))));
        assert!(matches!(apply("/k", Write::Delete(None), vec![], None, 6), Err(StoreError::NotFound(_))));
        let d = apply("/k", Write::Delete(None), vec![], Some(cur), 6).expect("delete");
        assert_eq!((d.kv.value.as_slice(), d.kv.mod_revision), (&b"1"[..], 6));
        assert_eq!(version_of(&d), Version { create_revision: 2, value: None });
    }

    #[test]
    fn events_are_rebuilt_from_versions() {
        let live = |v: &[u8]| Version { create_revision: 3, value: Some(v.to_vec()) };
        let created = event_of("/k", 3, live(b"a"), None);
        assert_eq!(created.kind, EventType::Created);
        let updated = event_of("/k", 4, live(b"b"), Some((3, live(b"a"))));
        assert_eq!((updated.kind, updated.prev.map(|p| p.mod_revision)), (EventType::Updated, Some(3)));
        let deleted = event_of("/k", 5, Version { create_revision: 3, value: None }, Some((4, live(b"b"))));
        assert_eq!(
            (deleted.kind, deleted.kv.value.as_slice(), deleted.kv.mod_revision),
            (EventType::Deleted, &b"b"[..], 5)
        );
        let recreated = event_of("/k", 6, live(b"c"), Some((5, Version { create_revision: 3, value: None })));
        assert_eq!(recreated.kind, EventType::Created);
    }

    #[test]
    fn compaction_keeps_what_reads_at_or_after_it_see() {
        let v = [(2, false), (5, false), (8, true), (9, false)];
        assert_eq!(compaction_drops(&v, 1), 0);
        assert_eq!(compaction_drops(&v, 2), 0);
        assert_eq!(compaction_drops(&v, 6), 1, "the version at 5 is what a read at 6 sees");
        assert_eq!(compaction_drops(&v, 8), 3, "a tombstone at or below the revision goes too");
        assert_eq!(compaction_drops(&v, 100), 3);
        assert_eq!(visible([2, 5, 8].into_iter(), 7), Some(5));
        assert_eq!(visible([2, 5, 8].into_iter(), 1), None);
    }

    #[test]
    fn reads_check_the_revision_window() {
        assert!(check_readable(5, 5, 9).is_ok());
        assert!(matches!(check_readable(4, 5, 9), Err(StoreError::Compacted { .. })));
        assert!(matches!(check_readable(10, 5, 9), Err(StoreError::FutureRevision { .. })));
    }
}
