//! The apimachinery types whose JSON is not their message's fields: times, durations,
//! int-or-string, quantities and embedded raw JSON (also apiextensions' `JSON`). Their field numbers are apimachinery's and
//! are checked against k8s-pb's by the round-trip tests.

use super::wire::{LEN, Reader, VARINT, WireError};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

/// `seconds` (1) and `nanos` (2) of a Time or MicroTime.
fn seconds_nanos(message: &'static str, data: &[u8]) -> Result<(i64, i32), WireError> {
    let mut r = Reader::new(data);
    let (mut seconds, mut nanos) = (0, 0);
    while !r.is_empty() {
        match r.key(message)? {
            (1, VARINT) => seconds = r.varint()? as i64,
            (2, VARINT) => nanos = r.varint()? as i32,
            (1, wire) => return Err(WireError::WrongWireType { wire, field: "Seconds" }),
            (2, wire) => return Err(WireError::WrongWireType { wire, field: "Nanos" }),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok((seconds, nanos))
}

/// RFC 3339 in UTC, with `micros` digits of fraction when given; years past 9999 or before 0
/// have no RFC 3339 form.
fn rfc3339(message: &str, seconds: i64, nanos: i32, micros: bool) -> Result<Value, WireError> {
    let out_of_range = || WireError::Invalid(format!("{message}: {seconds}s {nanos}ns is out of range"));
    // Go normalizes nanoseconds outside [0, 1e9) into the seconds.
    let seconds = seconds.checked_add(i64::from(nanos.div_euclid(1_000_000_000))).ok_or_else(out_of_range)?;
    let nanos = nanos.rem_euclid(1_000_000_000);
    let t = Timestamp::new(seconds, nanos).map_err(|_| out_of_range())?.to_zoned(TimeZone::UTC).datetime();
    if !(0..=9999).contains(&t.year()) {
        return Err(out_of_range());
    }
    let date =
        format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second());
    Ok(Value::String(if micros { format!("{date}.{:06}Z", nanos / 1000) } else { format!("{date}Z") }))
}

/// `meta.v1.Time`: no bytes is the zero time (JSON `null`); otherwise whole seconds, as
/// apimachinery drops the nanoseconds when decoding.
pub fn time(data: &[u8]) -> Result<Value, WireError> {
    if data.is_empty() {
        return Ok(Value::Null);
    }
    let (seconds, _) = seconds_nanos("Time", data)?;
    rfc3339("Time", seconds, 0, false)
}

/// `meta.v1.MicroTime`: like Time, with microseconds.
pub fn micro_time(data: &[u8]) -> Result<Value, WireError> {
    if data.is_empty() {
        return Ok(Value::Null);
    }
    let (seconds, nanos) = seconds_nanos("MicroTime", data)?;
    rfc3339("MicroTime", seconds, nanos, true)
}

/// `meta.v1.Duration` (nanoseconds in field 1), written as Go's `time.Duration.String`.
pub fn duration(data: &[u8]) -> Result<Value, WireError> {
    let mut r = Reader::new(data);
    let mut nanos = 0i64;
    while !r.is_empty() {
        match r.key("Duration")? {
            (1, VARINT) => nanos = r.varint()? as i64,
            (1, wire) => return Err(WireError::WrongWireType { wire, field: "Duration" }),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(Value::String(go_duration(nanos)))
}

/// `u` split at `prec` decimal digits: the integer part and ".fraction" without trailing zeros.
fn split(u: u64, prec: u32) -> (u64, String) {
    let p = 10u64.pow(prec);
    let frac = format!("{:0width$}", u % p, width = prec as usize);
    let frac = frac.trim_end_matches('0');
    (u / p, if frac.is_empty() { String::new() } else { format!(".{frac}") })
}

fn go_duration(d: i64) -> String {
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (int, frac) = split(u, prec);
        return format!("{sign}{int}{frac}{unit}");
    }
    let (secs, frac) = split(u, 9);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{sign}{s}{frac}s"),
        (0, _) => format!("{sign}{m}m{s}{frac}s"),
        _ => format!("{sign}{h}h{m}m{s}{frac}s"),
    }
}

/// `util.intstr.IntOrString`: `type` (1) picks `intVal` (2) or `strVal` (3).
pub fn int_or_string(data: &[u8]) -> Result<Value, WireError> {
    let mut r = Reader::new(data);
    let (mut ty, mut int, mut text) = (0i64, 0i32, String::new());
    while !r.is_empty() {
        match r.key("IntOrString")? {
            (1, VARINT) => ty = r.varint()? as i64,
            (2, VARINT) => int = r.varint()? as i32,
            (3, LEN) => text = String::from_utf8_lossy(r.len_delimited()?).into_owned(),
            (n @ 1..=3, wire) => {
                let field = ["Type", "IntVal", "StrVal"][n as usize - 1];
                return Err(WireError::WrongWireType { wire, field });
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    match ty {
        0 => Ok(int.into()),
        1 => Ok(text.into()),
        _ => Err(WireError::Invalid("impossible IntOrString.Type".into())),
    }
}

/// A message whose only field that matters is length-delimited field 1.
fn field1<'a>(message: &'static str, field: &'static str, data: &'a [u8]) -> Result<Option<&'a [u8]>, WireError> {
    let mut r = Reader::new(data);
    let mut out = None;
    while !r.is_empty() {
        match r.key(message)? {
            (1, LEN) => out = Some(r.len_delimited()?),
            (1, wire) => return Err(WireError::WrongWireType { wire, field }),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(out)
}

/// `api.resource.Quantity`: its string (field 1); the zero quantity is "0".
pub fn quantity(data: &[u8]) -> Result<Value, WireError> {
    let s = field1("Quantity", "String", data)?.map(String::from_utf8_lossy).unwrap_or_default();
    Ok(Value::String(if s.is_empty() { "0".into() } else { s.into_owned() }))
}

/// `runtime.RawExtension`, `meta.v1.FieldsV1` and apiextensions' `JSON`: JSON bytes in field 1,
/// embedded as JSON (none is `null`, as Go writes an empty one).
pub fn raw_json(field: &str, data: &[u8]) -> Result<Value, WireError> {
    match field1("RawExtension", "Raw", data)? {
        None | Some([]) => Ok(Value::Null),
        Some(raw) => serde_json::from_slice(raw).map_err(|e| WireError::Invalid(format!("{field}: invalid JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_000_000_000, "1s"),
            (61_500_000_000, "1m1.5s"),
            (3_600_000_000_000, "1h0m0s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(nanos), want);
        }
    }

    #[test]
    fn times_are_rfc3339_and_bounded() {
        assert_eq!(rfc3339("Time", 0, 0, false).ok(), Some("1970-01-01T00:00:00Z".into()));
        assert_eq!(rfc3339("MicroTime", 1, 1_234_567, true).ok(), Some("1970-01-01T00:00:01.001234Z".into()));
        assert_eq!(rfc3339("MicroTime", 1, -1, true).ok(), Some("1970-01-01T00:00:00.999999Z".into()));
        assert!(rfc3339("Time", 253_402_300_800, 0, false).is_err(), "year 10000");
        assert!(rfc3339("Time", i64::MAX, i32::MAX, false).is_err());
        assert_eq!(time(&[]).ok(), Some(Value::Null));
    }

    #[test]
    fn int_or_string_and_raw_json() {
        assert_eq!(int_or_string(&[0x10, 0x50]).ok(), Some(80.into()));
        assert_eq!(int_or_string(&[0x08, 0x01, 0x1a, 0x02, b'h', b'p']).ok(), Some("hp".into()));
        assert!(int_or_string(&[0x08, 0x02]).is_err());
        assert_eq!(raw_json("raw", &[0x0a, 0x02, b'{', b'}']).ok(), Some(serde_json::json!({})));
        assert!(raw_json("raw", &[0x0a, 0x01, b'{']).is_err());
    }
}
