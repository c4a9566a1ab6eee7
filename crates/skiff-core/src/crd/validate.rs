//! A value checked against its schema the way apiextensions does it: kube-openapi's
//! `SchemaValidator` (per node: type, allOf/anyOf/oneOf/not, string, format, number, array, enum,
//! object, all reporting), its results turned into field errors by
//! `kubeOpenAPIResultToFieldErrors`. Messages carry the path relative to the validated value
//! (`spec.replicas in body …`); the field path is `base` plus that path.
//!
//! Ordering: upstream walks `properties` as a Go map (unspecified order); here they are walked
//! in the schema's order, and object keys in the document's order.

use super::formats;
use super::gofmt::{self, GoNum, go_num};
use super::schema::{Items, Schema, SchemaOrBool};
use crate::field::{BadValue, ErrorList, ErrorType, FieldError, Path, go_quote};
use serde_json::{Map, Value};

/// Validate `value` against `schema`; errors are reported under `base` (empty for a whole
/// object, which, like upstream's nil path, prints `<nil>` for errors without a field).
pub fn validate(schema: &Schema, value: &Value, base: &Path) -> ErrorList {
    to_field_errors(base, node(schema, "", value).errors)
}

/// The kind of a kube-openapi error, as far as the conversion to field errors distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Code {
    Required,
    InvalidType,
    TooLong,
    Enum,
    TooMany,
    Other,
    /// A `CompositeErrorCode` error (anyOf and friends): no field name.
    Composite,
}

#[derive(Debug, Clone)]
enum Bad {
    Nil,
    Data(Value),
    Str(String),
    Num(GoNum),
}

#[derive(Debug, Clone)]
struct KoError {
    code: Code,
    name: String,
    value: Bad,
    /// The bound, for `TooLong` and `TooMany`.
    valid: i64,
    values: Vec<Value>,
    message: String,
}

impl KoError {
    fn new(code: Code, name: &str, value: Bad, message: String) -> Self {
        KoError { code, name: name.to_string(), value, valid: -1, values: Vec::new(), message }
    }
    fn composite(message: String) -> Self {
        KoError::new(Code::Composite, "", Bad::Nil, message)
    }
}

/// A validation result: errors (deduplicated by text, as upstream's `AddErrors`) and the match
/// count that picks which failing `anyOf`/`oneOf` branch is reported.
#[derive(Debug, Default)]
struct Res {
    errors: Vec<KoError>,
    matches: usize,
}

impl Res {
    fn err(e: KoError) -> Self {
        Res { errors: vec![e], matches: 0 }
    }
    fn add(&mut self, e: KoError) {
        if !self.errors.iter().any(|x| x.message == e.message) {
            self.errors.push(e);
        }
    }
    fn merge(&mut self, other: Res) {
        for e in other.errors {
            self.add(e);
        }
        self.matches += other.matches;
    }
    fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

fn node(s: &Schema, path: &str, data: &Value) -> Res {
    let mut res = Res::default();
    let format = formats::effective(&s.format);
    if data.is_null() {
        // Only the type and enum validators look at a null.
        res.merge(type_check(s, format, path, data));
        res.merge(enum_check(s, path, data));
        return res;
    }
    let step = |res: &mut Res, r: Res| {
        res.merge(r);
        res.matches += 1;
    };
    if !s.types().is_empty() || !format.is_empty() {
        step(&mut res, type_check(s, format, path, data));
    }
    step(&mut res, junctors(s, path, data));
    if let Value::String(text) = data {
        step(&mut res, string_check(s, path, text));
        if !format.is_empty() {
            step(&mut res, format_check(format, path, text));
        }
    }
    if let Value::Number(n) = data {
        step(&mut res, number_check(s, path, go_num(n)));
    }
    if let Value::Array(items) = data {
        step(&mut res, array_check(s, path, items));
    }
    step(&mut res, enum_check(s, path, data));
    if let Value::Object(map) = data {
        step(&mut res, object_check(s, path, map));
    }
    res.matches += 1;
    res
}

fn invalid_type(path: &str, type_name: &str, value: &str) -> Res {
    Res::err(KoError::new(
        Code::InvalidType,
        path,
        Bad::Str(value.to_string()),
        format!("{path} in body must be of type {type_name}: {}", go_quote(value)),
    ))
}

/// swag's `IsFloat64AJSONInteger`: within ±(2^53-1) and integral up to a 1e-9 relative error.
pub(crate) fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_991.0;
    if !f.is_finite() || !(-MAX..=MAX).contains(&f) {
        return false;
    }
    // Go converts a negative float to uint64 through int64 on amd64.
    let to_u64 = |f: f64| if f < 0.0 { (f as i64) as u64 } else { f as u64 };
    let g = to_u64(f) as f64;
    let diff = (f - g).abs();
    if f == g || f == (f as i64) as f64 {
        return true;
    }
    if f == 0.0 || g == 0.0 || diff < f64::from_bits(1) {
        return false;
    }
    diff / (f.abs() + g.abs()).min(f64::MAX) < 1e-9
}

fn type_check(s: &Schema, format: &str, path: &str, data: &Value) -> Res {
    let types = s.types();
    let has = |t: &str| types.contains(&t);
    let joined = types.join(",");
    if data.is_null() {
        if !types.is_empty() && !has("null") && !s.nullable {
            return invalid_type(path, &joined, "null");
        }
        return Res { errors: Vec::new(), matches: 1 };
    }
    let (sch_type, data_format, float) = match data {
        Value::Bool(_) => ("boolean", "", None),
        Value::String(_) => ("string", "", None),
        Value::Number(n) => match go_num(n) {
            GoNum::Int(_) => ("integer", "int64", None),
            GoNum::Float(f) => ("number", "float64", Some(f)),
        },
        Value::Array(_) => ("array", "", None),
        _ => ("object", "", None),
    };
    let float_int = float.is_some_and(is_json_integer) && has("integer");
    let int_float = sch_type == "integer" && has("number");
    let stringish = matches!(data, Value::String(_) | Value::Array(_));
    // A format on a non-string value must be the value's own (upstream reports the format).
    if !(stringish || format.is_empty() || has(sch_type) || data_format == format || float_int || int_float) {
        return invalid_type(path, format, data_format);
    }
    // A formatted string type lets any string or array through here; the format check follows.
    if stringish && !(has("number") || has("integer") || format.is_empty()) {
        return Res { errors: Vec::new(), matches: 1 };
    }
    if !(has(sch_type) || float_int || int_float) {
        return invalid_type(path, &joined, sch_type);
    }
    Res { errors: Vec::new(), matches: 1 }
}

/// allOf, anyOf, oneOf and not: every branch sees the same value at the same path.
fn junctors(s: &Schema, path: &str, data: &Value) -> Res {
    let mut main = Res::default();
    let quoted = go_quote(path);
    if !s.any_of.is_empty() {
        let mut best: Option<Res> = None;
        let mut success: Option<Res> = None;
        for branch in &s.any_of {
            let r = node(branch, path, data);
            if r.valid() {
                best = None;
                success = Some(r);
                break;
            }
            if best.as_ref().is_none_or(|b| r.matches > b.matches) {
                best = Some(r);
            }
        }
        if success.is_none() {
            main.add(KoError::composite(format!("{quoted} must validate at least one schema (anyOf)")));
        }
        if let Some(r) = best.or(success) {
            main.merge(r);
        }
    }
    if !s.one_of.is_empty() {
        let mut best: Option<Res> = None;
        let mut success: Option<Res> = None;
        let mut validated = 0;
        for branch in &s.one_of {
            let r = node(branch, path, data);
            if r.valid() {
                validated += 1;
                best = None;
                success.get_or_insert(r);
                continue;
            }
            if validated == 0 && best.as_ref().is_none_or(|b| r.matches > b.matches) {
                best = Some(r);
            }
        }
        if validated != 1 {
            let extra = if validated == 0 {
                "Found none valid".to_string()
            } else {
                format!("Found {validated} valid alternatives")
            };
            main.add(KoError::composite(format!("{quoted} must validate one and only one schema (oneOf). {extra}")));
            if let Some(r) = best {
                main.merge(r);
            }
        } else if let Some(r) = success {
            main.merge(r);
        }
    }
    if !s.all_of.is_empty() {
        let mut validated = 0;
        for branch in &s.all_of {
            let r = node(branch, path, data);
            if r.valid() {
                validated += 1;
            }
            main.merge(r);
        }
        if validated != s.all_of.len() {
            let extra = if validated == 0 { ". None validated" } else { "" };
            main.add(KoError::composite(format!("{quoted} must validate all the schemas (allOf){extra}")));
        }
    }
    if let Some(not) = &s.not
        && node(not, path, data).valid()
    {
        main.add(KoError::composite(format!("{quoted} must not validate the schema (not)")));
    }
    main.matches += 1;
    main
}

/// maxLength, minLength, pattern: the first failure only. Lengths count characters.
fn string_check(s: &Schema, path: &str, text: &str) -> Res {
    let len = text.chars().count() as i64;
    let data = || Bad::Data(Value::String(text.to_string()));
    if let Some(max) = s.max_length
        && len > max
    {
        let mut e =
            KoError::new(Code::TooLong, path, data(), format!("{path} in body should be at most {max} chars long"));
        e.valid = max;
        return Res::err(e);
    }
    if let Some(min) = s.min_length
        && len < min
    {
        return Res::err(KoError::new(
            Code::Other,
            path,
            data(),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    let shown = match &s.pattern_regex {
        Some(Ok(re)) if !re.is_match(text) => s.pattern.clone(),
        Some(Err(why)) => format!("{}, but pattern is invalid: {why}", s.pattern),
        _ => return Res::default(),
    };
    Res::err(KoError::new(Code::Other, path, data(), format!("{path} in body should match '{shown}'")))
}

fn format_check(format: &str, path: &str, text: &str) -> Res {
    if formats::validates(format, text) { Res::default() } else { invalid_type(path, format, text) }
}

/// multipleOf, minimum, maximum. Integers compare against the bound cut to an integer, as
/// upstream's "native type" checks do; floats against the bound itself.
fn number_check(s: &Schema, path: &str, n: GoNum) -> Res {
    let mut res = Res::default();
    let value = Bad::Num(n);
    let other = |msg: String, value: Bad| KoError::new(Code::Other, path, value, msg);
    let positive = |f: String, v: Bad| other(format!("factor MultipleOf declared for {path} must be positive: {f}"), v);
    if let Some(m) = s.multiple_of {
        let e = match n {
            GoNum::Int(d) => {
                let factor = m as i64;
                if factor <= 0 {
                    Some(positive(factor.to_string(), Bad::Num(GoNum::Int(factor))))
                } else if d % factor != 0 {
                    Some(other(format!("{path} in body should be a multiple of {factor}"), value.clone()))
                } else {
                    None
                }
            }
            GoNum::Float(d) => {
                if m <= 0.0 {
                    Some(positive(gofmt::float_v(m), Bad::Num(GoNum::Float(m))))
                } else {
                    let mult = if m < 1.0 { 1.0 / m * d } else { d / m };
                    (!is_json_integer(mult)).then(|| {
                        other(format!("{path} in body should be a multiple of {}", gofmt::float_v(m)), value.clone())
                    })
                }
            }
        };
        res.errors.extend(e);
    }
    let bound = |b: f64| match n {
        GoNum::Int(_) => ((b as i64) as f64, (b as i64).to_string()),
        GoNum::Float(_) => (b, gofmt::float_v(b)),
    };
    let x = match n {
        GoNum::Int(i) => i as f64,
        GoNum::Float(f) => f,
    };
    // Integers compare as integers; i64 → f64 is exact for the bounds that matter here, and
    // exactness beyond 2^53 is not something a schema bound (a float64 upstream) has either.
    let cmp_int = |b: f64| match n {
        GoNum::Int(i) => Some((i, b as i64)),
        GoNum::Float(_) => None,
    };
    if let Some(min) = s.minimum {
        let (b, shown) = bound(min);
        let fails = match cmp_int(min) {
            Some((i, b)) => i < b || (s.exclusive_minimum && i == b),
            None => x < b || (s.exclusive_minimum && x == b),
        };
        if fails {
            let how = if s.exclusive_minimum { "greater than" } else { "greater than or equal to" };
            res.add(other(format!("{path} in body should be {how} {shown}"), value.clone()));
        }
    }
    if let Some(max) = s.maximum {
        let (b, shown) = bound(max);
        let fails = match cmp_int(max) {
            Some((i, b)) => i > b || (s.exclusive_maximum && i == b),
            None => x > b || (s.exclusive_maximum && x == b),
        };
        if fails {
            let how = if s.exclusive_maximum { "less than" } else { "less than or equal to" };
            res.add(other(format!("{path} in body should be {how} {shown}"), value.clone()));
        }
    }
    res.matches = 1;
    res
}

fn array_check(s: &Schema, path: &str, items: &[Value]) -> Res {
    let mut res = Res::default();
    match &s.items {
        Some(Items::Schema(item)) => {
            for (i, v) in items.iter().enumerate() {
                res.merge(node(item, &format!("{path}[{i}]"), v));
            }
        }
        Some(Items::Array(list)) => {
            for (i, (sch, v)) in list.iter().zip(items).enumerate() {
                res.merge(node(sch, &format!("{path}[{i}]"), v));
            }
        }
        None => {}
    }
    count_bounds(&mut res, path, items.len() as i64, (s.min_items, s.max_items), "items");
    if s.unique_items && items.iter().enumerate().any(|(i, a)| items[..i].iter().any(|b| deep_equal(a, b))) {
        res.add(KoError::new(Code::Other, path, Bad::Nil, format!("{path} in body shouldn't contain duplicates")));
    }
    res.matches += 1;
    res
}

/// Go's `reflect.DeepEqual` on decoded JSON: an `int64` never equals a `float64`.
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => go_num(x) == go_num(y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| deep_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Whether `data` equals the enum entry after Go's conversion of the data to the entry's type
/// (so `1.9` matches `1`, and `65` matches `"A"`, as upstream's reflection does).
fn enum_matches(data: &Value, entry: &Value) -> bool {
    match (data, entry) {
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Number(a), Value::Number(b)) => match (go_num(a), go_num(b)) {
            (GoNum::Int(x), GoNum::Int(y)) => x == y,
            (GoNum::Int(x), GoNum::Float(y)) => x as f64 == y,
            (GoNum::Float(x), GoNum::Int(y)) => x as i64 == y,
            (GoNum::Float(x), GoNum::Float(y)) => x == y,
        },
        (Value::Number(a), Value::String(b)) => match go_num(a) {
            GoNum::Int(x) => {
                let c = u32::try_from(x).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
                b.chars().eq(std::iter::once(c))
            }
            GoNum::Float(_) => false,
        },
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => deep_equal(data, entry),
        _ => data == entry,
    }
}

fn enum_check(s: &Schema, path: &str, data: &Value) -> Res {
    if s.enum_values.is_empty() || s.enum_values.iter().any(|e| enum_matches(data, e)) {
        return Res::default();
    }
    let listed: Vec<String> = s.enum_values.iter().map(gofmt::json).collect();
    let mut e = KoError::new(
        Code::Enum,
        path,
        if data.is_null() { Bad::Nil } else { Bad::Data(data.clone()) },
        format!("{path} in body should be one of [{}]", listed.join(" ")),
    );
    e.values = s.enum_values.clone();
    Res::err(e)
}

/// minItems/maxItems and minProperties/maxProperties: the same two checks over a count of
/// `noun` (`items`, `properties`).
fn count_bounds(res: &mut Res, path: &str, count: i64, (min, max): (Option<i64>, Option<i64>), noun: &str) {
    if let Some(min) = min
        && count < min
    {
        let message = format!("{path} in body should have at least {min} {noun}");
        res.add(KoError::new(Code::Other, path, Bad::Num(GoNum::Int(count)), message));
    }
    if let Some(max) = max
        && count > max
    {
        let message = format!("{path} in body should have at most {max} {noun}");
        let mut e = KoError::new(Code::TooMany, path, Bad::Num(GoNum::Int(count)), message);
        e.valid = max;
        res.add(e);
    }
}

fn object_check(s: &Schema, path: &str, map: &Map<String, Value>) -> Res {
    let mut res = Res::default();
    count_bounds(&mut res, path, map.len() as i64, (s.min_properties, s.max_properties), "properties");
    match &s.additional_properties {
        Some(SchemaOrBool::Bool(false)) => {
            for k in map.keys().filter(|k| s.property(k).is_none()) {
                res.add(KoError::new(
                    Code::Other,
                    path,
                    Bad::Str(k.clone()),
                    format!("{path}.{k} in body is a forbidden property"),
                ));
            }
        }
        Some(SchemaOrBool::Schema(extra)) => {
            for (k, v) in map.iter().filter(|(k, _)| s.property(k).is_none()) {
                res.merge(node(extra, &format!("{path}.{k}"), v));
            }
        }
        _ => {}
    }
    for (name, prop) in &s.properties {
        if let Some(v) = map.get(name) {
            let child = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            res.merge(node(prop, &child, v));
        }
    }
    for k in s.required.iter().filter(|k| !map.contains_key(k.as_str())) {
        let name = format!("{path}.{k}");
        res.add(KoError::new(Code::Required, &name, Bad::Nil, format!("{name} in body is required")));
    }
    res
}

/// Upstream's nil path prints as `<nil>`; an empty base stands for it.
fn at(base: &Path) -> Path {
    if base.as_str().is_empty() { Path::new("<nil>") } else { base.clone() }
}

fn bad(v: Bad) -> BadValue {
    match v {
        Bad::Nil => BadValue::Json(Value::String(String::new())),
        Bad::Data(d) => gofmt::bad_value(&d),
        Bad::Str(s) => BadValue::Json(Value::String(s)),
        Bad::Num(GoNum::Int(i)) => BadValue::Json(i.into()),
        Bad::Num(GoNum::Float(f)) => BadValue::Go(gofmt::float_v(f)),
    }
}

fn to_field_errors(base: &Path, errors: Vec<KoError>) -> ErrorList {
    errors
        .into_iter()
        .map(|e| {
            if e.code == Code::Composite {
                return FieldError::invalid(&at(base), "", e.message);
            }
            let path = match e.name.as_str() {
                "" | "." => at(base),
                name => base.child(name.strip_prefix('.').unwrap_or(name)),
            };
            let field =
                |kind, value: Option<BadValue>, detail: String| FieldError { kind, field: path.clone(), value, detail };
            match e.code {
                Code::Required => FieldError::required(&path, ""),
                Code::Enum => {
                    let listed: Vec<String> = e
                        .values
                        .iter()
                        .map(|v| go_quote(&v.as_str().map_or_else(|| gofmt::json(v), str::to_string)))
                        .collect();
                    field(
                        ErrorType::NotSupported,
                        Some(bad(e.value)),
                        format!("supported values: {}", listed.join(", ")),
                    )
                }
                Code::TooLong if e.valid >= 0 => FieldError::too_long(&path, e.valid as usize),
                Code::TooLong => field(ErrorType::TooLong, None, "value is too long".into()),
                Code::TooMany => {
                    let detail = if e.valid >= 0 {
                        format!("must have at most {} items", e.valid)
                    } else {
                        "has too many items".into()
                    };
                    field(ErrorType::TooMany, Some(bad(e.value)), detail)
                }
                Code::InvalidType => field(ErrorType::TypeInvalid, Some(bad(e.value)), e.message),
                Code::Other | Code::Composite => field(ErrorType::Invalid, Some(bad(e.value)), e.message),
            }
        })
        .collect()
}
