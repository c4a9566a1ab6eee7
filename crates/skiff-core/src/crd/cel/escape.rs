//! Property names as CEL sees them (apiserver `pkg/cel/escaping.go`): reserved words become
//! `__word__`, and `__`, `.`, `-` and `/` are spelled out; names with any other character, or
//! starting with a digit, cannot be reached from CEL.

/// The CEL lexer's reserved words (`namespace` matters: Kubernetes uses it everywhere).
const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The escaped form of a property name, or `None` when it has none.
pub(super) fn escape(ident: &str) -> Option<String> {
    if ident.is_empty() || ident.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&ident) {
        return Some(format!("__{ident}__"));
    }
    let mut out = String::with_capacity(ident.len());
    let bytes = ident.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' if bytes.get(i + 1) == Some(&b'_') => {
                out.push_str("__underscores__");
                i += 2;
                continue;
            }
            b'.' => out.push_str("__dot__"),
            b'-' => out.push_str("__dash__"),
            b'/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == b'_' => out.push(c as char),
            _ => return None,
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_as_upstream() {
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("a.b-c/d").as_deref(), Some("a__dot__b__dash__c__slash__d"));
        assert_eq!(escape("a___b").as_deref(), Some("a__underscores___b"));
        assert_eq!(escape("plain_name1").as_deref(), Some("plain_name1"));
        assert_eq!(escape("1abc"), None);
        assert_eq!(escape("a b"), None);
        assert_eq!(escape(""), None);
    }
}
