//! A custom resource's Table: `Name`, then the version's `additionalPrinterColumns` (or `Age`
//! when it has none), each cell the first value its JSONPath finds, typed as the column says
//! (upstream's `tableconvertor`).

use super::super::{AGE_COLUMN, Column, NAME_COLUMN};
use crate::jsonpath::JsonPath;
use crate::meta;
use jiff::Timestamp;
use serde_json::{Value, json};

/// How one printer column reads its cell.
struct Cell {
    path: Option<JsonPath>,
    type_: &'static str,
}

/// The columns of one custom kind and how to fill them.
pub(super) struct Printer {
    pub(super) columns: &'static [Column],
    cells: Vec<Cell>,
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

impl Printer {
    /// From a version's `additionalPrinterColumns` (a JSON array, possibly absent).
    pub(super) fn new(defined: Option<&Value>) -> Printer {
        let defined = defined.and_then(Value::as_array).filter(|c| !c.is_empty());
        let Some(defined) = defined else {
            return Printer { columns: Box::leak(Box::new([NAME_COLUMN, date_column(AGE_COLUMN)])), cells: vec![] };
        };
        let mut columns = vec![NAME_COLUMN];
        let mut cells = Vec::new();
        for c in defined {
            let text = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or_default();
            let json_path = text("jsonPath");
            let description = match text("description") {
                "" => format!("Custom resource definition column (in JSONPath format): {json_path}"),
                d => d.to_string(),
            };
            let type_ = leak(text("type"));
            columns.push(Column {
                name: leak(text("name")),
                data_type: type_,
                format: leak(text("format")),
                priority: c.get("priority").and_then(Value::as_u64).map_or(0, |p| p.min(u8::MAX as u64) as u8),
                description: leak(&description),
            });
            cells.push(Cell { path: JsonPath::parse(json_path).ok(), type_ });
        }
        Printer { columns: Box::leak(columns.into_boxed_slice()), cells }
    }

    pub(super) fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let mut out = vec![json!(meta::name(obj))];
        if self.cells.is_empty() {
            out.push(json!(meta::age(obj, now)));
            return out;
        }
        out.extend(self.cells.iter().map(|c| cell(c, obj, now)));
        out
    }
}

/// The default `Age` column is a `date` as upstream types it.
fn date_column(c: Column) -> Column {
    Column { data_type: "date", ..c }
}

/// One cell, as upstream converts the value by the column's type (null when it does not fit).
fn cell(c: &Cell, obj: &Value, now: Timestamp) -> Value {
    let Some(v) = c.path.as_ref().and_then(|p| p.first(obj)) else {
        return Value::Null;
    };
    match c.type_ {
        "integer" => v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).map_or(Value::Null, |i| json!(i)),
        "number" => v.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match v.as_str() {
            Some(s) => match crate::time::parse(Some(s)) {
                Some(t) => json!(crate::time::since(Some(t), now)),
                None => json!("<invalid>"),
            },
            None => Value::Null,
        },
        // `string` (and anything else): scalars as Go prints them, objects and lists as JSON.
        _ => match v {
            Value::String(s) => json!(s),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_follow_the_column_types() {
        let now = Timestamp::now();
        let defined = json!([
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
            {"name": "On", "type": "boolean", "jsonPath": ".spec.on"},
            {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
            {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
            {"name": "Since", "type": "date", "jsonPath": ".spec.when"},
        ]);
        let p = Printer::new(Some(&defined));
        let names: Vec<&str> = p.columns.iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Replicas", "Ready", "Ratio", "On", "Tags", "Missing", "Since"]);
        assert_eq!(p.columns[3].priority, 1);
        assert_eq!(p.columns[1].description, "Custom resource definition column (in JSONPath format): .spec.replicas");
        let when = crate::time::rfc3339(now.checked_sub(jiff::SignedDuration::from_secs(300)).expect("time"));
        let obj = json!({"metadata": {"name": "w"}, "spec": {"replicas": 3.0, "ratio": 0.5, "on": true,
            "tags": ["a", "b"], "when": when},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            p.cells(&obj, now),
            [
                json!("w"),
                json!(3),
                json!("True"),
                json!(0.5),
                json!(true),
                json!("[\"a\",\"b\"]"),
                Value::Null,
                json!("5m")
            ]
        );
        let wrong = json!({"metadata": {"name": "w"}, "spec": {"replicas": "x", "on": "yes", "when": "soon"}});
        let cells = p.cells(&wrong, now);
        assert_eq!((&cells[1], &cells[4], &cells[7]), (&Value::Null, &Value::Null, &json!("<invalid>")));
    }

    #[test]
    fn no_columns_print_name_and_age() {
        let p = Printer::new(None);
        let names: Vec<(&str, &str)> = p.columns.iter().map(|c| (c.name, c.data_type)).collect();
        assert_eq!(names, [("Name", "string"), ("Age", "date")]);
        let obj = json!({"metadata": {"name": "w"}});
        assert_eq!(p.cells(&obj, Timestamp::now()).len(), 2);
    }
}
