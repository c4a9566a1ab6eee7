//! Variable substitution in Dockerfile instructions: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR:+alternative}`, and `\$` for a literal dollar.

use std::collections::HashMap;

/// Why an instruction's text could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A `${` with no closing brace: the whole text is quoted, as Docker does.
    #[error("missing '}}' in {0:?}")]
    Unclosed(String),
}

pub fn expand(s: &str, vars: &HashMap<String, String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => {
                out.push('$');
                chars.next();
            }
            '$' => match chars.peek() {
                Some('{') => {
                    chars.next();
                    let mut body = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(x) => body.push(x),
                            None => return Err(ExpandError::Unclosed(s.to_string())),
                        }
                    }
                    let (name, op) = match body.find(":-").or_else(|| body.find(":+")) {
                        Some(i) => (&body[..i], Some((&body[i..i + 2], &body[i + 2..]))),
                        None => (body.as_str(), None),
                    };
                    let value = vars.get(name).filter(|v| !v.is_empty());
                    match op {
                        None => out.push_str(vars.get(name).map(String::as_str).unwrap_or("")),
                        Some((":-", default)) => out.push_str(value.map(String::as_str).unwrap_or(default)),
                        Some((_, alt)) => {
                            if value.is_some() {
                                out.push_str(alt)
                            }
                        }
                    }
                }
                Some(n) if n.is_ascii_alphabetic() || *n == '_' => {
                    let mut name = String::new();
                    while let Some(&n) = chars.peek() {
                        if n.is_ascii_alphanumeric() || n == '_' {
                            name.push(n);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
                }
                _ => out.push('$'),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_like_docker() {
        let vars: HashMap<String, String> =
            [("A".to_string(), "1".to_string()), ("E".to_string(), String::new())].into();
        assert_eq!(expand("x$A-${A}", &vars).expect("ok"), "x1-1");
        assert_eq!(expand("${B:-def} ${A:-def} ${E:-empty}", &vars).expect("ok"), "def 1 empty");
        assert_eq!(expand("${A:+set}${B:+unset}", &vars).expect("ok"), "set");
        assert_eq!(expand(r"\$A $ $1", &vars).expect("ok"), "$A $ $1");
        let e = expand("${A", &vars).expect_err("unclosed");
        assert_eq!(e.to_string(), r#"missing '}' in "${A""#);
    }
}
