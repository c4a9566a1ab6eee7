//! Go's printing of decoded JSON values, as upstream's messages show them: `%v` numbers
//! (`1e+06`), `%#v` maps and slices (`map[string]interface {}{"name":"a"}`), and
//! `encoding/json` output (sorted keys, HTML-safe escapes).

use crate::field::{BadValue, go_quote};
use serde_json::Value;

/// A JSON number as Go's unstructured decoding holds it: `int64` when it fits, else `float64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum GoNum {
    Int(i64),
    Float(f64),
}

pub(crate) fn go_num(n: &serde_json::Number) -> GoNum {
    match n.as_i64() {
        Some(i) => GoNum::Int(i),
        None => GoNum::Float(n.as_f64().unwrap_or(0.0)),
    }
}

/// The shortest decimal digits of `f` and its decimal exponent (`d.ddd × 10^exp`).
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    (mantissa.replace('.', ""), exp.parse().unwrap_or(0))
}

/// Go's `%v` (and `%#v`) for a `float64`: `strconv.FormatFloat(f, 'g', -1, 64)`, switching to an
/// exponent below 1e-4 and from 1e+06 up.
pub(crate) fn float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sign = if f < 0.0 { "-" } else { "" };
    let (digits, exp) = shortest_digits(f);
    if !(-4..6).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() { String::new() } else { format!(".{tail}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{frac}e{esign}{:02}", exp.abs());
    }
    format!("{sign}{}", place_point(&digits, exp))
}

/// `digits` with the decimal point placed for exponent `exp`, no exponent notation.
fn place_point(digits: &str, exp: i32) -> String {
    let n = digits.len() as i32;
    if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{digits}{}", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{a}.{b}")
    }
}

/// `encoding/json`'s float output: plain decimals, exponent below 1e-6 and from 1e21 up.
fn float_json(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let abs = f.abs();
    let sign = if f < 0.0 { "-" } else { "" };
    let (digits, exp) = shortest_digits(f);
    if !(1e-6..1e21).contains(&abs) {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() { String::new() } else { format!(".{tail}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{frac}e{esign}{}", exp.abs());
    }
    format!("{sign}{}", place_point(&digits, exp))
}

/// A number as `%v` prints it.
pub(crate) fn num_v(n: GoNum) -> String {
    match n {
        GoNum::Int(i) => i.to_string(),
        GoNum::Float(f) => float_v(f),
    }
}

/// Go's `%#v` of a decoded JSON value held in an `interface{}`.
pub(crate) fn sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => num_v(go_num(n)),
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let body: Vec<String> = items.iter().map(sharp_v).collect();
            format!("[]interface {{}}{{{}}}", body.join(", "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let body: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", go_quote(k), sharp_v(&map[k.as_str()]))).collect();
            format!("map[string]interface {{}}{{{}}}", body.join(", "))
        }
    }
}

/// A `[]string` as `%#v` prints it: `[]string{"a", "b"}`.
pub(crate) fn string_slice(items: &[String]) -> BadValue {
    let body: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    BadValue::Go(format!("[]string{{{}}}", body.join(", ")))
}

/// How a field error prints a decoded value: strings quoted, `nil` as `"null"`, numbers and
/// booleans with `%v`, maps and slices with `%#v`.
pub(crate) fn bad_value(v: &Value) -> BadValue {
    match v {
        Value::Null => BadValue::Json(Value::String("null".into())),
        Value::Bool(_) | Value::String(_) => BadValue::Json(v.clone()),
        Value::Number(n) => match go_num(n) {
            GoNum::Int(i) => BadValue::Json(i.into()),
            GoNum::Float(f) => BadValue::Go(float_v(f)),
        },
        Value::Array(_) | Value::Object(_) => BadValue::Go(sharp_v(v)),
    }
}

/// `encoding/json.Marshal` of a decoded value: keys sorted, `<`, `>`, `&`, U+2028 and U+2029
/// escaped.
pub(crate) fn json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match go_num(n) {
            GoNum::Int(i) => out.push_str(&i.to_string()),
            GoNum::Float(f) => out.push_str(&float_json(f)),
        },
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                write_json(&map[k.as_str()], out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(float_v(1e6), "1e+06");
        assert_eq!(float_v(123456.0), "123456");
        assert_eq!(float_v(1.5), "1.5");
        assert_eq!(float_v(0.0001), "0.0001");
        assert_eq!(float_v(0.00001), "1e-05");
        assert_eq!(float_v(-2.5e-7), "-2.5e-07");
        assert_eq!(float_v(1.234567e100), "1.234567e+100");
        assert_eq!(float_json(1e21), "1e+21");
        assert_eq!(float_json(1e20), "100000000000000000000");
        assert_eq!(float_json(1.5e-7), "1.5e-7");
    }

    #[test]
    fn sharp_v_and_json() {
        let v = json!({"port": 80, "name": "a", "x": [1.5, null, true]});
        assert_eq!(
            sharp_v(&v),
            r#"map[string]interface {}{"name":"a", "port":80, "x":[]interface {}{1.5, interface {}(nil), true}}"#
        );
        assert_eq!(json(&json!({"b": "<", "a": 1.0})), r#"{"a":1,"b":"\u003c"}"#);
    }
}
