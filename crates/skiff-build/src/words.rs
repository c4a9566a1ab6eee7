//! Dockerfile word splitting: whitespace-separated words with double quotes, single quotes and
//! backslash escapes, as ENV and LABEL read their `key=value` pairs.

/// Split `s` into words, removing quotes and escapes.
pub fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "unexpected end of statement while looking for matching double-quote in {s:?}"
                            ));
                        }
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some('"' | '\\' | '$') => cur.push(chars.next().unwrap_or('\\')),
                            _ => cur.push('\\'),
                        },
                        Some(x) => cur.push(x),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "unexpected end of statement while looking for matching single-quote in {s:?}"
                            ));
                        }
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `k=v` pairs (ENV, LABEL, ARG); the legacy `ENV key value words` form when the first word has no `=`.
pub fn pairs(s: &str, instruction: &str) -> Result<Vec<(String, String)>, String> {
    let first = s.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) =
            s.trim().split_once(char::is_whitespace).ok_or_else(|| format!("{instruction} requires two arguments"))?;
        let v = split(v)?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    split(s)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{instruction} names can not be blank and need a value: {w:?}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_dockerfile() {
        assert_eq!(split(r#"a "b c" 'd e' f\ g"#).expect("ok"), ["a", "b c", "d e", "f g"]);
        assert_eq!(
            pairs(r#"A=1 B="two words" C=x\ y"#, "ENV").expect("ok"),
            [("A".into(), "1".into()), ("B".into(), "two words".into()), ("C".into(), "x y".into())]
        );
        assert_eq!(
            pairs("JAVA_HOME /usr/lib/jvm", "ENV").expect("ok"),
            [("JAVA_HOME".to_string(), "/usr/lib/jvm".to_string())]
        );
        assert!(split("\"open").is_err());
        assert!(pairs("=x", "ENV").is_err());
    }
}
