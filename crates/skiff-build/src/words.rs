//! Dockerfile word splitting: whitespace-separated words with double quotes, single quotes and
//! backslash escapes, as ENV and LABEL read their `key=value` pairs.

/// Why an ENV, LABEL or ARG line could not be read; the wording is Docker's, so users can search it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    /// A `"` with no closing one; the whole line is quoted.
    #[error("unexpected end of statement while looking for matching double-quote in {0:?}")]
    UnclosedDouble(String),
    /// A `'` with no closing one; the whole line is quoted.
    #[error("unexpected end of statement while looking for matching single-quote in {0:?}")]
    UnclosedSingle(String),
    /// The legacy `ENV key value` form with no value.
    #[error("{instruction} requires two arguments")]
    MissingValue { instruction: String },
    /// A word of the `k=v` form without a name or an `=`.
    #[error("{instruction} names can not be blank and need a value: {word:?}")]
    BlankName { instruction: String, word: String },
}

/// Split `s` into words, removing quotes and escapes.
pub fn split(s: &str) -> Result<Vec<String>, WordsError> {
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
                        None => return Err(WordsError::UnclosedDouble(s.to_string())),
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
                        None => return Err(WordsError::UnclosedSingle(s.to_string())),
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
pub fn pairs(s: &str, instruction: &str) -> Result<Vec<(String, String)>, WordsError> {
    let first = s.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = (s.trim().split_once(char::is_whitespace))
            .ok_or_else(|| WordsError::MissingValue { instruction: instruction.to_string() })?;
        let v = split(v)?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    split(s)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(WordsError::BlankName { instruction: instruction.to_string(), word: w }),
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
    }

    #[test]
    fn errors_read_as_docker_words_them() {
        let e = split("a \"open").expect_err("unclosed");
        assert_eq!(
            e.to_string(),
            r#"unexpected end of statement while looking for matching double-quote in "a \"open""#
        );
        let e = split("'open").expect_err("unclosed");
        assert_eq!(e.to_string(), r#"unexpected end of statement while looking for matching single-quote in "'open""#);
        assert_eq!(pairs("ALONE", "ENV").expect_err("no value").to_string(), "ENV requires two arguments");
        assert_eq!(
            pairs("=x", "LABEL").expect_err("blank").to_string(),
            r#"LABEL names can not be blank and need a value: "=x""#
        );
    }
}
