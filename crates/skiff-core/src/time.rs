//! Timestamps as Kubernetes writes them, and its human-readable ages.

use jiff::Timestamp;

/// `2026-11-23T21:37:51Z`: Kubernetes' `Time` keeps whole seconds in UTC.
pub fn rfc3339(ts: Timestamp) -> String {
    format!("{}Z", ts.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// `2026-11-23T21:37:51.123456Z`, Kubernetes' `MicroTime`.
pub fn rfc3339_micro(ts: Timestamp) -> String {
    format!("{}Z", ts.strftime("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// Parse an RFC 3339 timestamp; `None` when malformed or absent.
pub fn parse(s: Option<&str>) -> Option<Timestamp> {
    s.and_then(|s| s.parse().ok())
}

/// The age of `then` at `now`, as kubectl prints it (`translateTimestampSince`).
pub fn since(then: Option<Timestamp>, now: Timestamp) -> String {
    match then {
        None => "<unknown>".into(),
        Some(t) => human_duration(now.as_second() - t.as_second()),
    }
}

/// apimachinery's `HumanDuration`, in whole seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{}h", hours / 24, h) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{}d", hours / 24 / 365, dy) };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(300), "5m");
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(human_duration(2 * 86400), "2d");
        assert_eq!(human_duration(800 * 86400), "2y70d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn formats_whole_seconds() {
        let t: Timestamp = "2026-11-23T21:37:51.9Z".parse().expect("valid");
        assert_eq!(rfc3339(t), "2026-11-23T21:37:51Z");
        assert_eq!(rfc3339_micro(t), "2026-11-23T21:37:51.900000Z");
    }
}
