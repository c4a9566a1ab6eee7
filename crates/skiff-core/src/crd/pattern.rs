//! `pattern` keywords: Go RE2 syntax compiled with the `regex` crate. The two dialects agree on
//! nearly everything; the differences are translated: Go's `\d`, `\s`, `\w` and `\b` are ASCII
//! (Rust's are Unicode), `\Q…\E` quotes, and `&&`, `--`, `~~` and a bare `[` inside a class are
//! literals in Go (set operations and nesting in Rust). Errors are worded as Go's
//! `regexp.Compile` words the common ones (`error parsing regexp: missing closing ): `(``).

use regex::Regex;

/// A compiled `pattern`.
#[derive(Debug, Clone)]
pub struct GoRegex(Regex);

impl GoRegex {
    pub fn is_match(&self, s: &str) -> bool {
        self.0.is_match(s)
    }
}

/// Why a `pattern` does not compile, in Go's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

/// Compile `pattern` as Go would, or say why not in Go's words.
pub fn compile(pattern: &str) -> Result<GoRegex, PatternError> {
    let translated =
        translate(pattern).map_err(|(code, expr)| PatternError(format!("error parsing regexp: {code}: `{expr}`")))?;
    Regex::new(&translated).map(GoRegex).map_err(|e| {
        // Something Go accepts (or rejects differently) that the translation did not cover.
        let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
        PatternError(format!("error parsing regexp: {first}: `{pattern}`"))
    })
}

/// Go's error code and the offending text.
type SyntaxError = (&'static str, String);

fn translate(p: &str) -> Result<String, SyntaxError> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut depth: Vec<usize> = Vec::new();
    // Whether the previous item can take a repetition operator.
    let mut repeatable = false;
    // Whether the previous item already is a repetition (Go rejects `a**`).
    let mut repeated = false;
    // Where the last repetition operator starts in `out`, for Go's nested-repetition message.
    let mut last_op = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let (text, next) = escape(&chars, i, false)?;
                out.push_str(&text);
                i = next;
                repeatable = true;
                repeated = false;
                continue;
            }
            '[' => {
                let (text, next) = class(&chars, i)?;
                out.push_str(&text);
                i = next;
                repeatable = true;
                repeated = false;
                continue;
            }
            '(' => {
                depth.push(i);
                out.push('(');
                repeatable = false;
                repeated = false;
                if chars.get(i + 1) == Some(&'?') {
                    let end = group_flags_end(&chars, i + 2);
                    let flags: String = chars[i + 2..end].iter().collect();
                    let named = flags.starts_with("P<") || flags.starts_with('<');
                    if !named && !flags.chars().all(|f| "imsU-:".contains(f)) {
                        let upto: String = chars[i..end].iter().collect();
                        return Err(("invalid or unsupported Perl syntax", upto));
                    }
                    // Copy the flags (or the name, through its `>`) and go on after them.
                    let stop = if named && chars.get(end) == Some(&'>') { end + 1 } else { end };
                    out.extend(&chars[i + 1..stop]);
                    i = stop;
                    continue;
                }
            }
            ')' => {
                if depth.pop().is_none() {
                    return Err(("unexpected )", p.to_string()));
                }
                out.push(')');
                repeatable = true;
                repeated = false;
            }
            '*' | '+' | '?' | '{' => {
                let (op_end, is_op) = if c == '{' { repeat_braces(&chars, i)? } else { (i + 1, true) };
                if !is_op {
                    out.push_str("\\{");
                    i += 1;
                    repeatable = true;
                    repeated = false;
                    continue;
                }
                // A trailing `?` makes the operator lazy.
                let lazy_end = if chars.get(op_end) == Some(&'?') { op_end + 1 } else { op_end };
                let op: String = chars[i..lazy_end].iter().collect();
                if repeated {
                    return Err(("invalid nested repetition operator", format!("{}{op}", &out[last_op..])));
                }
                if !repeatable {
                    return Err(("missing argument to repetition operator", op));
                }
                last_op = out.len();
                out.push_str(&op);
                i = lazy_end;
                repeated = true;
                continue;
            }
            '|' => {
                out.push('|');
                repeatable = false;
                repeated = false;
            }
            '^' | '$' => {
                out.push(c);
                repeatable = true;
                repeated = false;
            }
            c => {
                out.push(c);
                repeatable = true;
                repeated = false;
            }
        }
        i += 1;
    }
    if !depth.is_empty() {
        return Err(("missing closing )", p.to_string()));
    }
    Ok(out)
}

/// Where a `(?flags` or `(?P<name>` prefix ends (the `)` or `:`, or the name's `>`).
fn group_flags_end(chars: &[char], from: usize) -> usize {
    let mut j = from;
    while j < chars.len() && chars[j] != ')' && chars[j] != ':' && chars[j] != '>' {
        j += 1;
    }
    if j < chars.len() && chars[j] == ':' { j + 1 } else { j }
}

/// `{n}`, `{n,}`, `{n,m}`: where it ends, and whether it is a repetition at all (Go treats a
/// malformed brace as a literal).
fn repeat_braces(chars: &[char], i: usize) -> Result<(usize, bool), SyntaxError> {
    let mut j = i + 1;
    let digits = |j: &mut usize| {
        let start = *j;
        while *j < chars.len() && chars[*j].is_ascii_digit() {
            *j += 1;
        }
        chars[start..*j].iter().collect::<String>()
    };
    let min = digits(&mut j);
    if min.is_empty() {
        return Ok((i, false));
    }
    let mut max = Some(min.clone());
    if chars.get(j) == Some(&',') {
        j += 1;
        let m = digits(&mut j);
        max = (!m.is_empty()).then_some(m);
    }
    if chars.get(j) != Some(&'}') {
        return Ok((i, false));
    }
    let text: String = chars[i..=j].iter().collect();
    let parse = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
    let (lo, hi) = (parse(&min), max.as_deref().map(parse));
    if lo > 1000 || hi.is_some_and(|h| h > 1000 || h < lo) {
        return Err(("invalid repeat count", text));
    }
    Ok((j + 1, true))
}

/// An escape at `chars[i] == '\\'`; returns the Rust text and the next index.
fn escape(chars: &[char], i: usize, in_class: bool) -> Result<(String, usize), SyntaxError> {
    let Some(&c) = chars.get(i + 1) else {
        return Err(("trailing backslash at end of expression", String::new()));
    };
    let next = i + 2;
    let text = match (c, in_class) {
        ('d', false) => "[0-9]".to_string(),
        ('D', false) => "[^0-9]".to_string(),
        ('s', false) => "[\\t\\n\\f\\r ]".to_string(),
        ('S', false) => "[^\\t\\n\\f\\r ]".to_string(),
        ('w', false) => "[0-9A-Za-z_]".to_string(),
        ('W', false) => "[^0-9A-Za-z_]".to_string(),
        ('d', true) => "0-9".to_string(),
        ('s', true) => "\\t\\n\\f\\r ".to_string(),
        ('w', true) => "0-9A-Za-z_".to_string(),
        ('D', true) => "[^0-9]".to_string(),
        ('S', true) => "[^\\t\\n\\f\\r ]".to_string(),
        ('W', true) => "[^0-9A-Za-z_]".to_string(),
        ('b', false) => "(?-u:\\b)".to_string(),
        ('B', false) => "(?-u:\\B)".to_string(),
        ('Q', false) => {
            // Everything up to `\E` (or the end) is literal.
            let mut j = next;
            let mut lit = String::new();
            while j < chars.len() && !(chars[j] == '\\' && chars.get(j + 1) == Some(&'E')) {
                lit.push(chars[j]);
                j += 1;
            }
            let end = if j < chars.len() { j + 2 } else { j };
            return Ok((format!("(?:{})", regex::escape(&lit)), end));
        }
        ('C', false) => "(?s:.)".to_string(),
        (c, _) if c.is_ascii_punctuation() => format!("\\{c}"),
        ('a' | 'f' | 't' | 'n' | 'r' | 'v', _) => format!("\\{c}"),
        ('A' | 'z', false) => format!("\\{c}"),
        ('p' | 'P' | 'x', _) => {
            // The argument is one character, or braced (`\p{Greek}`, `\x{263a}`); `\x7f` takes two.
            let end = if chars.get(next) == Some(&'{') {
                chars[next..].iter().position(|&ch| ch == '}').map_or(chars.len(), |p| next + p + 1)
            } else if c == 'x' {
                (next + 2).min(chars.len())
            } else {
                (next + 1).min(chars.len())
            };
            let text: String = chars[i..end].iter().collect();
            return Ok((text, end));
        }
        ('0'..='7', _) => {
            // Octal (up to three digits); a lone non-zero digit would be a backreference.
            let mut end = next;
            while end < chars.len() && end < i + 4 && ('0'..='7').contains(&chars[end]) {
                end += 1;
            }
            if c != '0' && end == next {
                return Err(("invalid escape sequence", chars[i..next].iter().collect()));
            }
            let digits: String = chars[i + 1..end].iter().collect();
            let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
            return Ok((format!("\\x{{{code:x}}}"), end));
        }
        _ => {
            let bad: String = chars[i..next].iter().collect();
            return Err(("invalid escape sequence", bad));
        }
    };
    Ok((text, next))
}

/// A character class starting at `chars[i] == '['`; returns the Rust text and the next index.
fn class(chars: &[char], i: usize) -> Result<(String, usize), SyntaxError> {
    let mut out = String::from("[");
    let mut j = i + 1;
    if chars.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(j) else {
            return Err(("missing closing ]", chars[i..].iter().collect()));
        };
        if c == ']' && !first {
            out.push(']');
            return Ok((out, j + 1));
        }
        first = false;
        if c == '[' && chars.get(j + 1) == Some(&':') {
            // `[:alpha:]` passes through; its end is the next `:]`.
            let rest: String = chars[j..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let n = rest[..end + 2].chars().count();
                out.push_str(&rest[..end + 2]);
                j += n;
                continue;
            }
        }
        match c {
            '\\' => {
                let (text, next) = escape(chars, j, true)?;
                out.push_str(&text);
                j = next;
                continue;
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '-' if chars.get(j + 1) == Some(&'-') => out.push_str("\\-"),
            c => out.push(c),
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(p: &str, s: &str) -> bool {
        compile(p).expect("compiles").is_match(s)
    }

    #[test]
    fn go_semantics() {
        assert!(matches(r"^\d+$", "123"));
        assert!(!matches(r"^\d+$", "١٢٣"));
        assert!(matches(r"^[\w-]+$", "a_b-c"));
        assert!(!matches(r"^\w+$", "é"));
        assert!(matches(r"^[a&&b]+$", "a&b"));
        assert!(matches(r"^\Q.*\E$", ".*"));
        assert!(matches(r"^a{2}$", "aa"));
        assert!(matches(r"^a{,2}$", "a{,2}"));
        assert!(matches(r"^[[:alpha:]]+$", "abc"));
        assert!(matches(r"(?i)^ABC$", "abc"));
        assert!(matches(r"^a b#c$", "a b#c"));
    }

    #[test]
    fn go_errors() {
        let err = |p: &str| compile(p).expect_err("must fail").to_string();
        assert_eq!(err("("), "error parsing regexp: missing closing ): `(`");
        assert_eq!(err(")"), "error parsing regexp: unexpected ): `)`");
        assert_eq!(err("[a"), "error parsing regexp: missing closing ]: `[a`");
        assert_eq!(err("*a"), "error parsing regexp: missing argument to repetition operator: `*`");
        assert_eq!(err("a**"), "error parsing regexp: invalid nested repetition operator: `**`");
        assert_eq!(err(r"\q"), r"error parsing regexp: invalid escape sequence: `\q`");
        assert_eq!(err("a\\"), "error parsing regexp: trailing backslash at end of expression: ``");
        assert_eq!(err("a{2,1}"), "error parsing regexp: invalid repeat count: `{2,1}`");
        assert_eq!(err("(?x)a"), "error parsing regexp: invalid or unsupported Perl syntax: `(?x`");
    }
}
