//! The part of client-go's JSONPath that CRD printer columns use (`.spec.replicas`,
//! `.status.conditions[?(@.type=="Ready")].status`, `.spec.containers[0].image`,
//! `.metadata.labels['app\.kubernetes\.io/name']`): field steps, quoted field names, indexes
//! (negative from the end), `*`, and filters comparing a relative path with `==`/`!=` to a string
//! or number literal (or testing that it exists). Results come in document order; a column shows
//! the first. Recursive descent, slices and unions are not supported: such paths do not parse.

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Step>,
    /// `None`: the path must exist; else compare with the literal.
    test: Option<(bool, serde_json::Value)>,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

/// Why a path does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported JSONPath {path:?}: {why}")]
pub struct ParseError {
    pub path: String,
    pub why: &'static str,
}

/// Paths deeper than this do not parse (a column has no business being deeper).
const MAX_STEPS: usize = 64;
/// Filters nested in filters.
const MAX_FILTER_DEPTH: usize = 4;

impl JsonPath {
    /// Parse `path` as a column's `jsonPath` (optionally wrapped in `{}`, starting with `.`).
    pub fn parse(path: &str) -> Result<JsonPath, ParseError> {
        let err = |why| ParseError { path: path.to_string(), why };
        let inner = path.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(path).trim();
        let inner = inner.strip_prefix('$').unwrap_or(inner);
        let mut p = Parser { s: inner.as_bytes(), at: 0, depth: 0 };
        let steps = p.steps(false).map_err(err)?;
        if p.at != p.s.len() {
            return Err(err("unexpected characters"));
        }
        Ok(JsonPath(steps))
    }

    /// Every value the path finds in `root`, in document order.
    pub fn find<'a>(&self, root: &'a serde_json::Value) -> Vec<&'a serde_json::Value> {
        let mut current = vec![root];
        for step in &self.0 {
            current = current.into_iter().flat_map(|v| apply(step, v)).collect();
        }
        current
    }

    /// The first value found, as a column cell shows it.
    pub fn first<'a>(&self, root: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.find(root).into_iter().next()
    }
}

fn apply<'a>(step: &Step, v: &'a serde_json::Value) -> Vec<&'a serde_json::Value> {
    use serde_json::Value;
    match (step, v) {
        (Step::Field(f), Value::Object(m)) => m.get(f).into_iter().collect(),
        (Step::Index(i), Value::Array(a)) => {
            let len = a.len() as i64;
            let at = if *i < 0 { len + i } else { *i };
            usize::try_from(at).ok().and_then(|at| a.get(at)).into_iter().collect()
        }
        (Step::Wildcard, Value::Array(a)) => a.iter().collect(),
        (Step::Wildcard, Value::Object(m)) => m.values().collect(),
        (Step::Filter(f), Value::Array(a)) => a.iter().filter(|item| f.matches(item)).collect(),
        _ => Vec::new(),
    }
}

impl Filter {
    fn matches(&self, item: &serde_json::Value) -> bool {
        let found = JsonPath(self.path.clone()).find(item);
        match &self.test {
            None => !found.is_empty(),
            Some((equal, literal)) => {
                let same = found.iter().any(|v| literal_eq(v, literal));
                same == *equal
            }
        }
    }
}

/// Numbers compare by value (`1` equals `1.0`), everything else exactly.
fn literal_eq(v: &serde_json::Value, literal: &serde_json::Value) -> bool {
    match (v.as_f64(), literal.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => v == literal,
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    /// Filters inside filters, bounded so that no input can exhaust the stack.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    /// Steps until the end, or (inside a filter) until `)` or an operator.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, &'static str> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(b'.') => {
                    self.at += 1;
                    if self.peek() == Some(b'.') {
                        return Err("recursive descent is not supported");
                    }
                    if self.peek() == Some(b'*') {
                        self.at += 1;
                        steps.push(Step::Wildcard);
                    } else {
                        let name = self.name();
                        if name.is_empty() {
                            // A lone `.` is the current object (`{.}`).
                            if steps.is_empty() && self.peek().is_none() {
                                break;
                            }
                            return Err("empty field name");
                        }
                        steps.push(Step::Field(name));
                    }
                }
                Some(b'[') => {
                    self.at += 1;
                    steps.push(self.bracket()?);
                }
                Some(b')' | b'=' | b'!' | b' ') if in_filter => break,
                Some(_) => return Err("expected '.' or '['"),
            }
            if steps.len() > MAX_STEPS {
                return Err("too many steps");
            }
        }
        Ok(steps)
    }

    /// A field name after `.`: up to the next `.`, `[` or the end (or a filter's operator).
    fn name(&mut self) -> String {
        let start = self.at;
        while let Some(c) = self.peek() {
            if matches!(c, b'.' | b'[' | b')' | b'=' | b'!' | b' ') {
                break;
            }
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    /// What follows `[`: an index, `*`, a quoted name or a filter, then `]`.
    fn bracket(&mut self) -> Result<Step, &'static str> {
        let step = match self.peek() {
            Some(b'*') => {
                self.at += 1;
                Step::Wildcard
            }
            Some(q @ (b'\'' | b'"')) => Step::Field(self.quoted(q)?),
            Some(b'?') => {
                self.at += 1;
                self.expect(b'(')?;
                self.depth += 1;
                if self.depth > MAX_FILTER_DEPTH {
                    return Err("filters nested too deeply");
                }
                let filter = self.filter()?;
                self.depth -= 1;
                self.expect(b')')?;
                Step::Filter(filter)
            }
            _ => {
                let start = self.at;
                while matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.at]).map_err(|_| "bad index")?;
                Step::Index(digits.parse().map_err(|_| "slices and unions are not supported")?)
            }
        };
        self.expect(b']')?;
        Ok(step)
    }

    fn expect(&mut self, c: u8) -> Result<(), &'static str> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err("unbalanced brackets")
        }
    }

    /// A quoted name or literal; `\` escapes the next character.
    fn quoted(&mut self, quote: u8) -> Result<String, &'static str> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string"),
                Some(b'\\') => {
                    self.at += 1;
                    out.extend(self.peek());
                    self.at += 1;
                }
                Some(c) if c == quote => {
                    self.at += 1;
                    return String::from_utf8(out).map_err(|_| "invalid UTF-8");
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// `@.path`, optionally `== literal` or `!= literal`.
    fn filter(&mut self) -> Result<Filter, &'static str> {
        self.skip_spaces();
        self.expect(b'@').map_err(|_| "a filter starts with @")?;
        let path = self.steps(true)?;
        self.skip_spaces();
        let equal = match (self.peek(), self.s.get(self.at + 1)) {
            (Some(b'='), Some(b'=')) => true,
            (Some(b'!'), Some(b'=')) => false,
            _ => return Ok(Filter { path, test: None }),
        };
        self.at += 2;
        self.skip_spaces();
        let literal = match self.peek() {
            Some(q @ (b'\'' | b'"')) => serde_json::Value::String(self.quoted(q)?),
            _ => {
                let start = self.at;
                while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.at]).map_err(|_| "bad literal")?;
                match text {
                    "" => match &self.s[self.at..] {
                        rest if rest.starts_with(b"true") => {
                            self.at += 4;
                            serde_json::Value::Bool(true)
                        }
                        rest if rest.starts_with(b"false") => {
                            self.at += 5;
                            serde_json::Value::Bool(false)
                        }
                        _ => return Err("a filter compares with a string, number or boolean"),
                    },
                    t => serde_json::from_str(t).map_err(|_| "bad number")?,
                }
            }
        };
        self.skip_spaces();
        Ok(Filter { path, test: Some((equal, literal)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first(path: &str, v: &serde_json::Value) -> Option<serde_json::Value> {
        JsonPath::parse(path).expect("parses").first(v).cloned()
    }

    #[test]
    fn column_paths_find_what_kubectl_shows() {
        let obj = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "containers": [{"image": "a"}, {"image": "b"}]},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(first(".spec.replicas", &obj), Some(json!(3)));
        assert_eq!(first("{.spec.replicas}", &obj), Some(json!(3)));
        assert_eq!(first(".spec.containers[1].image", &obj), Some(json!("b")));
        assert_eq!(first(".spec.containers[-1].image", &obj), Some(json!("b")));
        assert_eq!(first(".spec.containers[*].image", &obj), Some(json!("a")));
        assert_eq!(first(".spec.containers[5].image", &obj), None);
        assert_eq!(first(r#".status.conditions[?(@.type=="Ready")].status"#, &obj), Some(json!("True")));
        assert_eq!(first(r#".status.conditions[?(@.type == 'Ready')].status"#, &obj), Some(json!("True")));
        assert_eq!(first(r#".status.conditions[?(@.type!="Ready")].type"#, &obj), Some(json!("Synced")));
        assert_eq!(first(".status.conditions[?(@.status)].type", &obj), Some(json!("Synced")));
        assert_eq!(first(r".metadata.labels['app\.kubernetes\.io/name']", &obj), Some(json!("web")));
        assert_eq!(first(".metadata.labels['app.kubernetes.io/name']", &obj), Some(json!("web")));
        assert_eq!(first(".spec.missing.deeper", &obj), None);
        assert_eq!(first(".", &obj), Some(obj.clone()));
    }

    #[test]
    fn what_is_not_supported_does_not_parse() {
        for bad in ["..spec", ".spec[0:2]", ".spec[a,b]", ".spec[", ".spec['x", "spec", ".a..b", ".a[?(x)]"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
        let deep = ".a".repeat(100);
        assert!(JsonPath::parse(&deep).is_err());
        let nested = format!(".a{}", "[?(@.b".repeat(10_000));
        assert!(JsonPath::parse(&nested).is_err());
    }
}
