//! Table-driven decoding of a protobuf message into the JSON that Go's encoding of the same
//! object gives, as far as the wire allows (see `protobuf.rs` on zero values).

use super::descriptor::{Field, Label, Message, Ty};
use super::special;
use super::table::MESSAGES;
use super::wire::{FIXED32, FIXED64, LEN, Reader, VARINT, WireError};
use base64::Engine;
use serde_json::{Map, Number, Value};

/// Messages nest far less deeply than this in every served kind; past it the body is refused
/// rather than recursed into.
const MAX_DEPTH: usize = 64;

fn short(name: &'static str) -> &'static str {
    name.rsplit('.').next().unwrap_or(name)
}

fn descriptor(index: u16) -> Result<&'static Message, WireError> {
    MESSAGES
        .get(usize::from(index))
        .ok_or_else(|| WireError::Invalid(format!("no message {index} in the descriptor table")))
}

/// Decode message `index` from `data` into `out`, merging with what `out` holds (a message that
/// comes twice is merged, as protobuf does).
pub fn message(index: u16, data: &[u8], out: &mut Map<String, Value>, depth: usize) -> Result<(), WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::Invalid("exceeded maximum nesting depth".into()));
    }
    let msg = descriptor(index)?;
    let name = short(msg.name);
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let (tag, wire) = r.key(name)?;
        let Ok(i) = msg.fields.binary_search_by_key(&tag, |f| f.tag) else {
            r.skip(wire)?;
            continue;
        };
        let f = &msg.fields[i];
        match f.label {
            Label::Inline => {
                let Ty::Message(inner) = f.ty else {
                    return Err(WireError::Invalid(format!("inline field {tag} of {name} is not a message")));
                };
                message(inner, payload(f, wire, &mut r)?, out, depth + 1)?;
            }
            Label::Single => single(f, wire, &mut r, out, depth)?,
            Label::Repeated => {
                let mut items = Vec::new();
                if wire == LEN && wire_type(f.ty) != LEN {
                    // A packed list of numbers.
                    let mut packed = Reader::new(r.len_delimited()?);
                    while !packed.is_empty() {
                        items.push(value(f, wire_type(f.ty), &mut packed, depth)?);
                    }
                } else {
                    items.push(value(f, wire, &mut r, depth)?);
                }
                match out.get_mut(f.json) {
                    Some(Value::Array(list)) => list.extend(items),
                    _ => {
                        out.insert(f.json.into(), Value::Array(items));
                    }
                }
            }
            Label::Map => {
                let (k, v) = entry(f, payload(f, wire, &mut r)?, depth)?;
                match out.get_mut(f.json) {
                    Some(Value::Object(map)) => {
                        map.insert(k, v);
                    }
                    _ => {
                        out.insert(f.json.into(), Value::Object(Map::from_iter([(k, v)])));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A singular field. Go writes every non-pointer field, set or not; an empty string is what an
/// unset one looks like, so it is left out unless the schema requires the field. A message merges
/// into what an earlier occurrence left, except a one-of, whose last occurrence wins; a `null`
/// (an empty Time, an unset one-of) leaves the field out.
fn single(
    f: &Field,
    wire: u8,
    r: &mut Reader<'_>,
    out: &mut Map<String, Value>,
    depth: usize,
) -> Result<(), WireError> {
    if let Ty::Message(inner) = f.ty
        && !descriptor(inner)?.one_of
    {
        let data = payload(f, wire, r)?;
        let slot = out.entry(f.json).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(obj) = slot {
            message(inner, data, obj, depth + 1)?;
        }
        return Ok(());
    }
    let v = value(f, wire, r, depth)?;
    let unset = match &v {
        Value::Null => true,
        Value::String(s) => s.is_empty() && matches!(f.ty, Ty::String | Ty::Bytes) && !f.required,
        _ => false,
    };
    if unset {
        out.remove(f.json);
    } else {
        out.insert(f.json.into(), v);
    }
    Ok(())
}

/// One `map<string, ty>` entry; a missing value is the type's zero value (an empty message's).
fn entry(f: &'static Field, data: &[u8], depth: usize) -> Result<(String, Value), WireError> {
    let mut r = Reader::new(data);
    let (mut key, mut val) = (String::new(), None);
    while !r.is_empty() {
        match r.key(f.json)? {
            (1, LEN) => key = String::from_utf8_lossy(r.len_delimited()?).into_owned(),
            (1, wire) => return Err(WireError::WrongWireType { wire, field: f.json }),
            (2, wire) => val = Some(value(f, wire, &mut r, depth)?),
            (_, wire) => r.skip(wire)?,
        }
    }
    let val = match (val, f.ty) {
        (Some(v), _) => v,
        (None, Ty::Message(inner)) => embedded(inner, &[], depth)?,
        (None, ty) => zero(ty),
    };
    Ok((key, val))
}

/// The JSON of an embedded message: an object of its fields, or a one-of's chosen value.
fn embedded(index: u16, data: &[u8], depth: usize) -> Result<Value, WireError> {
    let mut obj = Map::new();
    message(index, data, &mut obj, depth + 1)?;
    let msg = descriptor(index)?;
    Ok(if msg.one_of { one_of(msg, obj) } else { Value::Object(obj) })
}

/// The value a one-of message stands for, from its fields decoded under their prost names, as
/// Go's `MarshalJSON` of these unions picks it: a non-empty list, else a message, else a scalar,
/// else the scalar's zero value (`JSONSchemaPropsOrBool` is `false`), else `null`.
fn one_of(msg: &Message, mut fields: Map<String, Value>) -> Value {
    let rank = |f: &Field| match (f.label, f.ty) {
        (Label::Repeated | Label::Map, _) => 0,
        (_, Ty::Message(_)) => 1,
        _ => 2,
    };
    let mut alternatives: Vec<&Field> = msg.fields.iter().collect();
    alternatives.sort_by_key(|f| rank(f));
    let set = alternatives.iter().find_map(|f| match fields.remove(f.json) {
        Some(Value::Array(a)) if a.is_empty() => None,
        v => v,
    });
    set.or_else(|| alternatives.iter().find(|f| rank(f) == 2).map(|f| zero(f.ty))).unwrap_or(Value::Null)
}

fn zero(ty: Ty) -> Value {
    match ty {
        Ty::String | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::Int32 | Ty::Int64 | Ty::Uint32 | Ty::Uint64 | Ty::Double | Ty::Float | Ty::IntOrString => 0.into(),
        Ty::Message(_) => Value::Object(Map::new()),
        Ty::Time | Ty::MicroTime | Ty::RawJson => Value::Null,
        Ty::Duration => "0s".into(),
        Ty::Quantity => "0".into(),
    }
}

fn wire_type(ty: Ty) -> u8 {
    match ty {
        Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Uint32 | Ty::Uint64 => VARINT,
        Ty::Double => FIXED64,
        Ty::Float => FIXED32,
        _ => LEN,
    }
}

fn payload<'a>(f: &Field, wire: u8, r: &mut Reader<'a>) -> Result<&'a [u8], WireError> {
    if wire != LEN {
        return Err(WireError::WrongWireType { wire, field: f.json });
    }
    r.len_delimited()
}

/// A float as the number Go's JSON writes for it (the shortest decimal that round-trips at its
/// width) reads back: `maximum: 10` is the integer 10, as in a JSON body, and a float32 0.1 is 0.1.
fn float(f: &Field, x: impl std::fmt::Display) -> Result<Value, WireError> {
    let text = x.to_string();
    serde_json::from_str::<Number>(&text)
        .map(Value::Number)
        .map_err(|_| WireError::Invalid(format!("field {}: {text} is not a JSON number", f.json)))
}

/// One occurrence of a field's payload as JSON.
fn value(f: &Field, wire: u8, r: &mut Reader<'_>, depth: usize) -> Result<Value, WireError> {
    if wire != wire_type(f.ty) {
        return Err(WireError::WrongWireType { wire, field: f.json });
    }
    // Integers are truncated to their declared width, as Go's decoders do.
    Ok(match f.ty {
        Ty::Bool => Value::Bool(r.varint()? != 0),
        Ty::Int32 => (r.varint()? as i32).into(),
        Ty::Int64 => (r.varint()? as i64).into(),
        Ty::Uint32 => (r.varint()? as u32).into(),
        Ty::Uint64 => r.varint()?.into(),
        Ty::Double => float(f, f64::from_le_bytes(r.fixed64()?))?,
        Ty::Float => float(f, f32::from_le_bytes(r.fixed32()?))?,
        // Go does not check UTF-8 here; its JSON encoder replaces bad bytes, as this does.
        Ty::String => String::from_utf8_lossy(r.len_delimited()?).into_owned().into(),
        Ty::Bytes => base64::engine::general_purpose::STANDARD.encode(r.len_delimited()?).into(),
        Ty::Message(inner) => embedded(inner, r.len_delimited()?, depth)?,
        Ty::Time => special::time(r.len_delimited()?)?,
        Ty::MicroTime => special::micro_time(r.len_delimited()?)?,
        Ty::Duration => special::duration(r.len_delimited()?)?,
        Ty::IntOrString => special::int_or_string(r.len_delimited()?)?,
        Ty::Quantity => special::quantity(r.len_delimited()?)?,
        Ty::RawJson => special::raw_json(f.json, r.len_delimited()?)?,
    })
}
