//! What client-go's EventCorrelator does for the kubelet, as a pure state machine:
//!
//! - **Counting.** An event equal to an earlier one (same source, involved object, type, reason and
//!   message) is not a new object: the first is created, each repeat updates it with `count` + 1,
//!   a new `lastTimestamp` (and the message), so `kubectl describe` shows `(x4 over 80s)`.
//! - **Similar events.** The 10th distinct message for the same source, object, type and reason
//!   within 10 minutes becomes one event `(combined from similar events): <message>`, counted from
//!   then on like any repeat.
//! - **Spam filter.** Per source and object, 25 events at once, then one per 5 minutes.
//!
//! The caller does the IO: create or patch as told. No clock is read here.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use lru::LruCache;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::num::NonZeroUsize;

/// Entries per cache, as upstream.
pub const CACHE_ENTRIES: usize = 4096;
const AGGREGATE_MAX_EVENTS: usize = 10;
const AGGREGATE_INTERVAL_SECS: i64 = 600;
const SPAM_BURST: f64 = 25.0;
const SPAM_PER_SEC: f64 = 1.0 / 300.0;
const COMBINED: &str = "(combined from similar events): ";

/// What to write for one recorded event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A first occurrence: create this object.
    Create(Event),
    /// A repeat: patch object `event.metadata.name` with `patch` (`count`, `lastTimestamp`,
    /// `message`); if it is gone (expired or deleted), create `event` instead.
    Update { event: Event, patch: Value },
    /// Over the spam limit: write nothing.
    Skip,
}

/// The first occurrence of a counted event, and how often it has happened.
struct Log {
    count: i32,
    first: Option<Time>,
    name: String,
}

/// Distinct messages seen for one source, object, type and reason.
struct Similar {
    messages: BTreeSet<String>,
    last: Timestamp,
}

/// A token bucket per source and object.
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

pub struct Correlator {
    logs: LruCache<String, Log>,
    similar: LruCache<String, Similar>,
    spam: LruCache<String, Bucket>,
}

impl Default for Correlator {
    fn default() -> Self {
        Self::with_capacity(CACHE_ENTRIES)
    }
}

impl Correlator {
    pub fn with_capacity(entries: usize) -> Self {
        let entries = NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN);
        // Bounded, but grown as used: `LruCache::new` would allocate room for every entry up
        // front (~0.5 MB for the three, per recorder, most of which never fill).
        fn cache<V>(entries: NonZeroUsize) -> LruCache<String, V> {
            let mut c = LruCache::unbounded();
            c.resize(entries);
            c
        }
        Correlator { logs: cache(entries), similar: cache(entries), spam: cache(entries) }
    }

    /// Decide what `event` (as recorded: count 1, first = last = when it happened) becomes at `now`.
    pub fn correlate(&mut self, event: Event, now: Timestamp) -> Outcome {
        let (mut event, key) = self.aggregate(event, now);
        let repeat = self.logs.get_mut(&key).map(|l| (l.count, l.first.clone(), l.name.clone()));
        let repeated = repeat.is_some();
        match repeat {
            Some((count, first, name)) => {
                event.metadata.name = Some(name);
                event.metadata.resource_version = None;
                event.first_timestamp = first;
                event.count = Some(count.saturating_add(1));
            }
            None => event.count = Some(1),
        }
        // Counted even when the spam filter drops it, as upstream: the next write carries the total.
        let log = Log {
            count: event.count.unwrap_or(1),
            first: event.first_timestamp.clone(),
            name: event.metadata.name.clone().unwrap_or_default(),
        };
        self.logs.put(key, log);
        if !self.allow(&event, now) {
            return Outcome::Skip;
        }
        if !repeated {
            return Outcome::Create(event);
        }
        let patch = json!({"count": event.count, "lastTimestamp": event.last_timestamp, "message": event.message});
        Outcome::Update { event, patch }
    }

    /// The event to count and its cache key: itself, or the combined event once 10 distinct
    /// messages of one kind came within 10 minutes.
    fn aggregate(&mut self, event: Event, now: Timestamp) -> (Event, String) {
        let group = similar_key(&event);
        let message = event.message.clone().unwrap_or_default();
        let stale =
            self.similar.get_mut(&group).is_none_or(|r| now.duration_since(r.last).as_secs() > AGGREGATE_INTERVAL_SECS);
        if stale {
            self.similar.put(group.clone(), Similar { messages: BTreeSet::new(), last: now });
        }
        let Some(record) = self.similar.get_mut(&group) else {
            let key = event_key(&event);
            return (event, key);
        };
        record.messages.insert(message.clone());
        record.last = now;
        if record.messages.len() < AGGREGATE_MAX_EVENTS {
            let key = event_key(&event);
            return (event, key);
        }
        // Keep the set from growing past the threshold.
        record.messages.pop_first();
        let name = event.involved_object.name.clone().unwrap_or_default();
        let combined = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: event.metadata.namespace.clone(),
                ..Default::default()
            },
            message: Some(format!("{COMBINED}{message}")),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            ..event
        };
        (combined, group)
    }

    /// The spam filter's token bucket for the event's source and object.
    fn allow(&mut self, event: &Event, now: Timestamp) -> bool {
        let key = spam_key(event);
        if self.spam.get_mut(&key).is_none() {
            self.spam.put(key.clone(), Bucket { tokens: SPAM_BURST, at: now });
        }
        let Some(bucket) = self.spam.get_mut(&key) else { return true };
        let elapsed = now.duration_since(bucket.at).as_secs_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * SPAM_PER_SEC).min(SPAM_BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn source(e: &Event) -> [&str; 2] {
    let s = e.source.as_ref();
    [s.and_then(|s| s.component.as_deref()).unwrap_or_default(), s.and_then(|s| s.host.as_deref()).unwrap_or_default()]
}

fn object(e: &Event) -> [&str; 5] {
    let o = &e.involved_object;
    [
        o.kind.as_deref().unwrap_or_default(),
        o.namespace.as_deref().unwrap_or_default(),
        o.name.as_deref().unwrap_or_default(),
        o.uid.as_deref().unwrap_or_default(),
        o.api_version.as_deref().unwrap_or_default(),
    ]
}

/// Fields joined with a separator no field contains (upstream joins with "", which can collide).
fn join<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts.into_iter().collect::<Vec<_>>().join("\u{1f}")
}

/// Equal events: same source, object (with field path), type, reason and message.
pub fn event_key(e: &Event) -> String {
    let field_path = e.involved_object.field_path.as_deref().unwrap_or_default();
    join(source(e).into_iter().chain(object(e)).chain([
        field_path,
        e.type_.as_deref().unwrap_or_default(),
        e.reason.as_deref().unwrap_or_default(),
        e.message.as_deref().unwrap_or_default(),
    ]))
}

/// Similar events: equal but for the message (and field path), same reporter.
fn similar_key(e: &Event) -> String {
    join(source(e).into_iter().chain(object(e)).chain([
        e.type_.as_deref().unwrap_or_default(),
        e.reason.as_deref().unwrap_or_default(),
        e.reporting_component.as_deref().unwrap_or_default(),
        e.reporting_instance.as_deref().unwrap_or_default(),
    ]))
}

/// The spam filter counts per source and object.
fn spam_key(e: &Event) -> String {
    join(source(e).into_iter().chain(object(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EventSource, ObjectReference};

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("time")
    }

    fn event(pod: &str, reason: &str, message: &str, secs: i64) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{pod}.{secs:x}")),
                namespace: Some("default".into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{pod}")),
                field_path: Some("spec.containers{app}".into()),
                resource_version: Some(secs.to_string()),
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Warning".into()),
            source: Some(EventSource { component: Some("kubelet".into()), host: Some("node".into()) }),
            first_timestamp: Some(Time(at(secs))),
            last_timestamp: Some(Time(at(secs))),
            count: Some(1),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some("node".into()),
            ..Default::default()
        }
    }

    #[test]
    fn repeats_update_one_object_with_a_count() {
        let mut c = Correlator::default();
        let Outcome::Create(first) = c.correlate(event("web", "Failed", "pull failed", 0), at(0)) else {
            panic!("the first occurrence is created")
        };
        assert_eq!((first.count, first.metadata.name.as_deref()), (Some(1), Some("web.0")));
        for (n, secs) in [(2, 10), (3, 30), (4, 70)] {
            // The involved object's resourceVersion changes between occurrences: still the same event.
            let out = c.correlate(event("web", "Failed", "pull failed", secs), at(secs));
            let Outcome::Update { event: repeat, patch } = out else { panic!("a repeat is an update") };
            assert_eq!(repeat.metadata.name.as_deref(), Some("web.0"), "the first object is updated");
            assert_eq!(repeat.count, Some(n));
            assert_eq!(repeat.first_timestamp, Some(Time(at(0))));
            assert_eq!(
                patch,
                json!({"count": n, "lastTimestamp": Time(at(secs)), "message": "pull failed"}),
                "what the kubelet patches"
            );
        }
        // Another message, reason, container or pod is another event.
        assert!(matches!(c.correlate(event("web", "Failed", "other", 80), at(80)), Outcome::Create(_)));
        assert!(matches!(c.correlate(event("web", "BackOff", "pull failed", 80), at(80)), Outcome::Create(_)));
        let mut other_container = event("web", "Failed", "pull failed", 80);
        other_container.involved_object.field_path = Some("spec.containers{side}".into());
        assert!(matches!(c.correlate(other_container, at(80)), Outcome::Create(_)));
        assert!(matches!(c.correlate(event("db", "Failed", "pull failed", 80), at(80)), Outcome::Create(_)));
    }

    #[test]
    fn ten_similar_messages_within_ten_minutes_are_combined() {
        let mut c = Correlator::default();
        for i in 0..9 {
            let out = c.correlate(event("web", "Failed", &format!("attempt {i}"), i), at(i));
            assert!(matches!(out, Outcome::Create(_)), "message {i} is its own event");
        }
        let Outcome::Create(combined) = c.correlate(event("web", "Failed", "attempt 9", 9), at(9)) else {
            panic!("the 10th distinct message starts the combined event")
        };
        assert_eq!(combined.message.as_deref(), Some("(combined from similar events): attempt 9"));
        assert_eq!(combined.count, Some(1));
        let Outcome::Update { event: again, .. } = c.correlate(event("web", "Failed", "attempt 10", 10), at(10)) else {
            panic!("further similar events count on the combined one")
        };
        assert_eq!(again.metadata.name, combined.metadata.name);
        assert_eq!(again.message.as_deref(), Some("(combined from similar events): attempt 10"));
        assert_eq!(again.count, Some(2));
        // After 10 quiet minutes the group starts over.
        let later = 10 + AGGREGATE_INTERVAL_SECS + 1;
        let out = c.correlate(event("web", "Failed", "fresh", later), at(later));
        assert!(matches!(out, Outcome::Create(e) if e.message.as_deref() == Some("fresh")));
    }

    #[test]
    fn spam_filter_allows_a_burst_then_one_per_five_minutes() {
        let mut c = Correlator::default();
        let mut written = 0;
        for i in 0..40 {
            if c.correlate(event("web", "Reason", &format!("m{}", i % 3), 0), at(0)) != Outcome::Skip {
                written += 1;
            }
        }
        assert_eq!(written, 25);
        // Other objects have their own budget.
        assert!(matches!(c.correlate(event("db", "Reason", "m", 0), at(0)), Outcome::Create(_)));
        assert_eq!(c.correlate(event("web", "Reason", "m0", 299), at(299)), Outcome::Skip);
        let Outcome::Update { event: allowed, .. } = c.correlate(event("web", "Reason", "m0", 301), at(301)) else {
            panic!("a token after five minutes")
        };
        // Dropped occurrences still count.
        assert_eq!(allowed.count, Some(16));
    }

    #[test]
    fn caches_are_bounded() {
        let mut c = Correlator::with_capacity(8);
        for i in 0..100 {
            c.correlate(event(&format!("pod{i}"), "Failed", "x", 0), at(0));
        }
        assert_eq!((c.logs.len(), c.similar.len(), c.spam.len()), (8, 8, 8));
        // pod0 was forgotten: recorded again as new.
        assert!(matches!(c.correlate(event("pod0", "Failed", "x", 1), at(1)), Outcome::Create(_)));
    }
}
