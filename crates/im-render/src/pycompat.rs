//! Python's methods on template values, as Jinja2 templates call them: `"a b".split()`,
//! `name.startswith("x")`, `d.items()`, `l.index(x)`, `"{}-{}".format(a, b)`.
//!
//! minijinja-contrib's compatibility layer provides most `str` and `dict` methods; this adds
//! the ones Jinja2 users also write that it lacks (`list.index`, `str.zfill`, `ljust`,
//! `rjust`, `center`, `partition`, `rpartition`, `rsplit`, `removeprefix`, `removesuffix`,
//! `swapcase`, `casefold`, `index`, `rindex`, `expandtabs`, `title` with Python's rule,
//! `startswith`/`endswith` with `start` and `end`, `format` conversions such as `{!r}` and
//! the `{:.1%}` presentation) and falls back to
//! it for the rest. Methods that change a value in place (`list.append`, `dict.update`) do
//! not exist: template values are immutable.

use minijinja::value::{Tuple, ValueKind, from_args};
use minijinja::{Error, ErrorKind, State, Value};

/// The unknown-method callback of the engine.
pub fn call_method(
    state: &mut State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let own = match (value.kind(), value.as_str()) {
        (ValueKind::String, Some(text)) => string_method(text, method, args),
        (ValueKind::Seq, _) => seq_method(value, method, args),
        _ => None,
    };
    if let Some(result) = own {
        return result;
    }
    if method == "format"
        && let Some((format, args)) = value.as_str().and_then(|f| python_str_format(f, args))
    {
        return minijinja_contrib::pycompat::unknown_method_callback(
            state,
            &Value::from(format),
            method,
            &args,
        );
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

fn seq_method(value: &Value, method: &str, args: &[Value]) -> Option<Result<Value, Error>> {
    match method {
        "index" => Some((|| {
            let (wanted,): (&Value,) = from_args(args)?;
            for (position, item) in value.try_iter()?.enumerate() {
                if item == *wanted {
                    return Ok(Value::from(position));
                }
            }
            Err(invalid(format!("{wanted:?} is not in list")))
        })()),
        _ => None,
    }
}

/// Pads `text` to `width` characters with `fill`, `left` of the padding before it.
fn pad(
    text: &str,
    width: i64,
    fill: Option<&str>,
    left: impl Fn(i64) -> i64,
) -> Result<Value, Error> {
    let fill = match fill {
        None => ' ',
        Some(fill) => {
            let mut chars = fill.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(invalid(
                        "The fill character must be exactly one character long",
                    ));
                }
            }
        }
    };
    let len = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    let margin = width - len;
    if margin <= 0 {
        return Ok(Value::from(text));
    }
    let before = left(margin);
    let repeat = |n: i64| fill.to_string().repeat(usize::try_from(n).unwrap_or(0));
    Ok(Value::from(format!(
        "{}{text}{}",
        repeat(before),
        repeat(margin - before)
    )))
}

/// Python's `str.title`: a letter after a non-letter is upper case, other letters lower.
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous_cased = false;
    for c in text.chars() {
        if previous_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        previous_cased = c.is_alphabetic();
    }
    out
}

/// Python's `str.split(sep, maxsplit)` from the right.
fn rsplit(text: &str, sep: Option<&str>, maxsplit: i64) -> Result<Value, Error> {
    let limit = usize::try_from(maxsplit).ok();
    let mut parts: Vec<Value> = Vec::new();
    match sep {
        Some("") => return Err(invalid("empty separator")),
        Some(sep) => {
            let mut rest = text;
            while limit.is_none_or(|l| parts.len() < l) {
                match rest.rfind(sep) {
                    Some(at) => {
                        parts.push(Value::from(&rest[at + sep.len()..]));
                        rest = &rest[..at];
                    }
                    None => break,
                }
            }
            parts.push(Value::from(rest));
        }
        None => {
            let mut rest = text.trim_end();
            while !rest.is_empty() {
                if limit.is_some_and(|l| parts.len() >= l) {
                    parts.push(Value::from(rest));
                    break;
                }
                match rest.rfind(char::is_whitespace) {
                    Some(at) => {
                        let space = rest[at..].chars().next().map_or(1, char::len_utf8);
                        parts.push(Value::from(&rest[at + space..]));
                        rest = rest[..at].trim_end();
                    }
                    None => {
                        parts.push(Value::from(rest));
                        rest = "";
                    }
                }
            }
        }
    }
    parts.reverse();
    Ok(Value::from(parts))
}

/// Python's `text[start:end]` for optional character indices (negative from the end).
fn char_slice(text: &str, start: Option<i64>, end: Option<i64>) -> String {
    let len = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let start = usize::try_from(clamp(start.unwrap_or(0))).unwrap_or(0);
    let end = usize::try_from(clamp(end.unwrap_or(len))).unwrap_or(0);
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// Python's `str.expandtabs(tabsize)`: tabs to spaces up to the next multiple of `tabsize`.
fn expandtabs(text: &str, tabsize: i64) -> String {
    let mut out = String::with_capacity(text.len());
    let mut column = 0i64;
    for c in text.chars() {
        match c {
            '\t' if tabsize > 0 => {
                let spaces = tabsize - column % tabsize;
                out.push_str(&" ".repeat(usize::try_from(spaces).unwrap_or(0)));
                column += spaces;
            }
            '\t' => {}
            '\n' | '\r' => {
                out.push(c);
                column = 0;
            }
            c => {
                out.push(c);
                column += 1;
            }
        }
    }
    out
}

/// Rewrites the parts of a `str.format` string minijinja's formatting lacks: conversions
/// (`{!r}`, `{!s}`, `{!a}`) and the percent presentation (`{:.1%}`). Every field is
/// numbered explicitly and a converted value is appended as a new argument. Returns `None`
/// when there is nothing to rewrite or the string uses what this does not handle (named or
/// nested fields with a conversion, a width with `%`).
fn python_str_format(format: &str, args: &[Value]) -> Option<(String, Vec<Value>)> {
    let (mut positional, kwargs): (Vec<Value>, Vec<Value>) =
        args.iter().cloned().partition(|a| !a.is_kwargs());
    let original = positional.len();
    let mut out = String::with_capacity(format.len());
    let mut rest = format;
    let mut auto = 0;
    let mut rewrote = false;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        let brace = &rest[open..];
        if brace.starts_with("{{") || brace.starts_with("}}") {
            out.push_str(&brace[..2]);
            rest = &brace[2..];
            continue;
        }
        if brace.starts_with('}') {
            return None;
        }
        let close = brace.find('}')?;
        let field = &brace[1..close];
        rest = &brace[close + 1..];
        if field.contains('{') {
            return None;
        }
        let (head, spec) = field
            .split_once(':')
            .map_or((field, None), |(h, s)| (h, Some(s)));
        let (name, conversion) = head
            .split_once('!')
            .map_or((head, None), |(n, c)| (n, Some(c)));
        let index = if name.is_empty() {
            auto += 1;
            Some(auto - 1)
        } else {
            name.parse::<usize>().ok()
        };
        let percent = spec.is_some_and(|s| s.ends_with('%'));
        let Some(index) = index.filter(|&i| i < original) else {
            if conversion.is_some() || percent {
                return None;
            }
            out.push('{');
            out.push_str(field);
            out.push('}');
            continue;
        };
        let mut value = positional[index].clone();
        let mut spec = spec.map(str::to_owned);
        let mut suffix = "";
        match conversion {
            None => {}
            Some("r" | "a") if value.kind() == ValueKind::String => {
                value = Value::from(format!("{value:?}"));
            }
            Some("r" | "a" | "s") => value = Value::from(value.to_string()),
            Some(_) => return None,
        }
        if percent {
            let body = spec.as_deref().unwrap_or_default().trim_end_matches('%');
            if !body.is_empty() && !body.starts_with('.') {
                return None;
            }
            let number = f64::try_from(value.clone()).ok()?;
            value = Value::from(number * 100.0);
            let precision = if body.is_empty() { ".6" } else { body };
            spec = Some(format!("{precision}f"));
            suffix = "%";
        }
        let target = if conversion.is_some() || percent {
            rewrote = true;
            positional.push(value);
            positional.len() - 1
        } else {
            index
        };
        out.push_str(&format!("{{{target}"));
        if let Some(spec) = spec {
            out.push(':');
            out.push_str(&spec);
        }
        out.push('}');
        out.push_str(suffix);
    }
    out.push_str(rest);
    rewrote.then(|| {
        positional.extend(kwargs);
        (out, positional)
    })
}

fn string_method(text: &str, method: &str, args: &[Value]) -> Option<Result<Value, Error>> {
    let result = match method {
        // With `start`/`end`; the one-argument forms are minijinja-contrib's.
        "startswith" | "endswith" if args.len() > 1 => (|| {
            let (affix, start, end): (&Value, Option<i64>, Option<i64>) = from_args(args)?;
            let part = char_slice(text, start, end);
            let affixes: Vec<Value> = match affix.as_str() {
                Some(_) => vec![affix.clone()],
                None => affix.try_iter()?.collect(),
            };
            Ok(Value::from(affixes.iter().any(|a| {
                let a = a.as_str().unwrap_or_default();
                if method == "startswith" {
                    part.starts_with(a)
                } else {
                    part.ends_with(a)
                }
            })))
        })(),
        "expandtabs" => from_args(args)
            .map(|(tabsize,): (Option<i64>,)| Value::from(expandtabs(text, tabsize.unwrap_or(8)))),
        "zfill" => (|| {
            let (width,): (i64,) = from_args(args)?;
            let (sign, digits) = match text.chars().next() {
                Some(c @ ('+' | '-')) => (c.to_string(), &text[1..]),
                _ => (String::new(), text),
            };
            let len = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
            let zeros = "0".repeat(usize::try_from(width - len).unwrap_or(0));
            Ok(Value::from(format!("{sign}{zeros}{digits}")))
        })(),
        "ljust" => from_args(args).and_then(|(w, f): (i64, Option<&str>)| pad(text, w, f, |_| 0)),
        "rjust" => from_args(args).and_then(|(w, f): (i64, Option<&str>)| pad(text, w, f, |m| m)),
        "center" => from_args(args)
            .and_then(|(w, f): (i64, Option<&str>)| pad(text, w, f, |m| m / 2 + (m & w & 1))),
        "partition" | "rpartition" => (|| {
            let (sep,): (&str,) = from_args(args)?;
            if sep.is_empty() {
                return Err(invalid("empty separator"));
            }
            let found = if method == "partition" {
                text.find(sep)
            } else {
                text.rfind(sep)
            };
            let parts = match (found, method) {
                (Some(at), _) => [&text[..at], sep, &text[at + sep.len()..]],
                (None, "partition") => [text, "", ""],
                (None, _) => ["", "", text],
            };
            Ok(Value::from(Tuple::from(parts.map(Value::from).to_vec())))
        })(),
        "rsplit" => (|| {
            let (sep, maxsplit): (Option<&str>, Option<i64>) = from_args(args)?;
            rsplit(text, sep, maxsplit.unwrap_or(-1))
        })(),
        "removeprefix" => from_args(args)
            .map(|(prefix,): (&str,)| Value::from(text.strip_prefix(prefix).unwrap_or(text))),
        "removesuffix" => from_args(args)
            .map(|(suffix,): (&str,)| Value::from(text.strip_suffix(suffix).unwrap_or(text))),
        "swapcase" => from_args(args).map(|()| {
            Value::from(
                text.chars()
                    .flat_map(|c| {
                        if c.is_uppercase() {
                            c.to_lowercase().collect::<Vec<_>>()
                        } else {
                            c.to_uppercase().collect()
                        }
                    })
                    .collect::<String>(),
            )
        }),
        "casefold" => from_args(args).map(|()| Value::from(text.to_lowercase())),
        "title" => from_args(args).map(|()| Value::from(title(text))),
        "index" | "rindex" => (|| {
            let (sub,): (&str,) = from_args(args)?;
            let found = if method == "index" {
                text.find(sub)
            } else {
                text.rfind(sub)
            };
            found
                .map(|at| Value::from(text[..at].chars().count()))
                .ok_or_else(|| invalid("substring not found"))
        })(),
        _ => return None,
    };
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(text: &str, method: &str, args: &[Value]) -> String {
        string_method(text, method, args)
            .unwrap()
            .unwrap()
            .to_string()
    }

    #[test]
    fn string_methods_follow_python() {
        assert_eq!(call("42", "zfill", &[Value::from(5)]), "00042");
        assert_eq!(call("-42", "zfill", &[Value::from(5)]), "-0042");
        assert_eq!(
            call("ab", "center", &[Value::from(5), Value::from("*")]),
            "**ab*"
        );
        assert_eq!(call("ab", "rjust", &[Value::from(4)]), "  ab");
        assert_eq!(
            call("a b  c ", "rsplit", &[Value::from(()), Value::from(1)]),
            "['a b', 'c']"
        );
        assert_eq!(
            call("a=b=c", "rpartition", &[Value::from("=")]),
            "('a=b', '=', 'c')"
        );
        assert_eq!(call("they're bill's", "title", &[]), "They'Re Bill'S");
    }
}
