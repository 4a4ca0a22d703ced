//! `${VAR}` and `${VAR:-default}` expansion in settings values.
//!
//! The environment is passed in as a lookup function: this crate never reads the process
//! environment itself. `$$` writes a literal `$`; a `$` not followed by `{` or `$` is kept.

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `${NAME}` names a variable that is not set (and has no default).
    Undefined { name: String, column: usize },
    /// `${` without a closing `}` or with an invalid name.
    Malformed { column: usize },
}

/// Expands `text`. Columns in errors count characters from 0 within `text`.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut consumed = 0usize;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let column = consumed + rest[..at].chars().count();
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            consumed = column + 2;
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            consumed = column + 1;
            rest = after;
            continue;
        };
        let Some(end) = body.find('}') else {
            return Err(ExpandError::Malformed { column });
        };
        let inner = &body[..end];
        let (name, default) = match inner.find(":-") {
            Some(split) => (&inner[..split], Some(&inner[split + 2..])),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(ExpandError::Malformed { column });
        }
        match (
            lookup(name).filter(|value| default.is_none() || !value.is_empty()),
            default,
        ) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(ExpandError::Undefined {
                    name: name.to_owned(),
                    column,
                });
            }
        }
        consumed = column + 3 + inner.chars().count();
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("ci-bot".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand("${USER}", &env).unwrap(), "ci-bot");
        assert_eq!(expand("a-${USER}-b", &env).unwrap(), "a-ci-bot-b");
        assert_eq!(expand("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("cost $$5 $x", &env).unwrap(), "cost $5 $x");
        assert_eq!(expand("plain", &env).unwrap(), "plain");
    }

    #[test]
    fn undefined_and_malformed_are_errors_with_columns() {
        assert_eq!(
            expand("url-${MISSING}", &env),
            Err(ExpandError::Undefined {
                name: "MISSING".into(),
                column: 4
            })
        );
        assert_eq!(
            expand("x${USER", &env),
            Err(ExpandError::Malformed { column: 1 })
        );
        assert_eq!(
            expand("${1X}", &env),
            Err(ExpandError::Malformed { column: 0 })
        );
    }
}
