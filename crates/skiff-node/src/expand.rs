//! Kubernetes' `$(VAR)` expansion in command, args and env values (third_party/forked/golang
//! expansion): `$(NAME)` is replaced when NAME is defined, kept as is otherwise; `$$` is a `$`.

pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let b = input.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            match b[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_kubernetes() {
        let vars = |n: &str| match n {
            "A" => Some("1".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand("x$(A)y", vars), "x1y");
        assert_eq!(expand("$(MISSING) $(EMPTY)!", vars), "$(MISSING) !");
        assert_eq!(expand("$$(A) $$ $A $", vars), "$(A) $ $A $");
        assert_eq!(expand("$(A", vars), "$(A");
        assert_eq!(expand("héllo $(A)", vars), "héllo 1");
    }
}
