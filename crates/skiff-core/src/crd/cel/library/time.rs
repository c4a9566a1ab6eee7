//! Parsing the string formats upstream converts to CEL timestamps and durations.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};

/// A `date-time` (RFC 3339).
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// A `date` (`2006-01-02`), at midnight UTC.
pub(crate) fn parse_date(s: &str) -> Option<DateTime<FixedOffset>> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
}

/// A `duration`: Go's `time.ParseDuration` syntax (`1h30m`, `-1.5s`, `300ms`), or a number and
/// a unit up to weeks (`3d`, `2 w`), as kube-openapi's `strfmt.ParseDuration` also accepts.
pub(crate) fn parse_duration(s: &str) -> Option<TimeDelta> {
    go_duration(s).or_else(|| long_duration(s))
}

fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

pub(crate) fn go_duration(s: &str) -> Option<TimeDelta> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(TimeDelta::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        total += value * unit_nanos(unit)?;
        rest = tail;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let nanos = total as i64;
    Some(TimeDelta::nanoseconds(if neg { -nanos } else { nanos }))
}

fn long_duration(s: &str) -> Option<TimeDelta> {
    let s = s.trim();
    let num_end = s.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = s[..num_end].parse().ok()?;
    let secs = match s[num_end..].trim() {
        "ns" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => return Some(TimeDelta::nanoseconds(n)),
        "us" | "micro" | "micros" | "microsecond" | "microseconds" => return Some(TimeDelta::microseconds(n)),
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => return Some(TimeDelta::milliseconds(n)),
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "wk" | "week" | "weeks" => 604_800,
        _ => return None,
    };
    TimeDelta::try_seconds(n.checked_mul(secs)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(TimeDelta::minutes(90)));
        assert_eq!(parse_duration("-1.5s"), Some(TimeDelta::milliseconds(-1500)));
        assert_eq!(parse_duration("0"), Some(TimeDelta::zero()));
        assert_eq!(parse_duration("3d"), Some(TimeDelta::days(3)));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration(""), None);
        assert!(parse_timestamp("2024-01-02T03:04:05Z").is_some());
        assert!(parse_date("2024-01-02").is_some());
    }
}
