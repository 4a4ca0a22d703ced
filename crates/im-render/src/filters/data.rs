//! Jinja2's conversion and serialization filters: `int` and `float` (with Python's parsing and
//! a default instead of an error), `tojson` (sorted keys, non-ASCII escaped, like
//! `json.dumps`), `pprint` (Python's `repr`) and `urlencode` (`urllib.parse.quote`, `+` for
//! spaces in query strings); and the `callable` test.

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs};
use minijinja::{Error, State, Value};

use super::{invalid, opt, python_args};

/// Python's `int(text, base)`: surrounding whitespace, a sign, a `0x`/`0o`/`0b` prefix that
/// matches the base (any with base 0) and single underscores between digits.
fn parse_int(text: &str, base: u32) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let prefixed = |prefix: &str, radix: u32| {
        lower
            .strip_prefix(prefix)
            .filter(|_| base == radix || base == 0)
            .map(|rest| (rest.strip_prefix('_').unwrap_or(rest).to_owned(), radix))
    };
    let (body, radix) = prefixed("0x", 16)
        .or_else(|| prefixed("0o", 8))
        .or_else(|| prefixed("0b", 2))
        .unwrap_or_else(|| (lower.clone(), if base == 0 { 10 } else { base }));
    if base == 0
        && radix == 10
        && body.starts_with('0')
        && !body.trim_start_matches(['0', '_']).is_empty()
    {
        return None;
    }
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let value = i128::from_str_radix(&body.replace('_', ""), radix).ok()?;
    Some(if negative { -value } else { value })
}

/// Python's `float(text)`: surrounding whitespace, exponents, `inf`/`nan` and single
/// underscores between digits.
fn parse_float(text: &str) -> Option<f64> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower.parse().ok();
    }
    let bytes = text.as_bytes();
    let underscores_ok = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'_'
            || (i > 0
                && i + 1 < bytes.len()
                && bytes[i - 1].is_ascii_digit()
                && bytes[i + 1].is_ascii_digit())
    });
    if !underscores_ok || unsigned.starts_with(['i', 'n']) {
        return None;
    }
    text.replace('_', "").parse().ok()
}

/// A number as Python's `float(value)` sees it, if it can.
fn as_float(value: &Value) -> Option<f64> {
    match value.kind() {
        ValueKind::Number | ValueKind::Bool => f64::try_from(value.clone()).ok(),
        ValueKind::String => parse_float(value.as_str().unwrap_or_default()),
        _ => None,
    }
}

/// `int(default=0, base=10)`: the integer a value stands for, through a float if needed
/// (`"42.23"` gives 42), else `default`.
pub(super) fn int(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = python_args("int", args, &["default", "base"])?;
    let default = args[0].clone().unwrap_or_else(|| Value::from(0));
    let base = opt::<u32>(args[1].as_ref())?.unwrap_or(10);
    if base == 1 || base > 36 {
        return Err(invalid("int() base must be >= 2 and <= 36, or 0"));
    }
    let direct = match value.kind() {
        ValueKind::String => parse_int(value.as_str().unwrap_or_default(), base),
        ValueKind::Bool => Some(i128::from(value.is_true())),
        ValueKind::Number => i128::try_from(value.clone()).ok(),
        _ => None,
    };
    if let Some(number) = direct {
        return Ok(Value::from(number));
    }
    match as_float(value) {
        Some(number) if number.is_finite() =>
        {
            #[allow(clippy::cast_possible_truncation)]
            Ok(Value::from(number.trunc() as i128))
        }
        Some(number) if number.is_infinite() => {
            Err(invalid("cannot convert float infinity to integer"))
        }
        _ => Ok(default),
    }
}

/// `float(default=0.0)`: the float a value stands for, else `default`.
pub(super) fn float(value: &Value, default: Option<Value>) -> Value {
    as_float(value).map_or_else(|| default.unwrap_or_else(|| Value::from(0.0)), Value::from)
}

/// A copy of `value` whose mappings have sorted keys, charging one fuel per item visited.
fn sorted(state: &State<'_, '_>, value: &Value) -> Result<Value, Error> {
    state.consume_fuel(1)?;
    match value.kind() {
        ValueKind::Map => {
            let mut pairs = Vec::new();
            if let Some(iter) = value
                .as_object()
                .and_then(minijinja::value::DynObject::try_iter_pairs)
            {
                for (key, item) in iter {
                    pairs.push((key, sorted(state, &item)?));
                }
            }
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Value::from_pairs(pairs))
        }
        ValueKind::Seq | ValueKind::Iterable if !value.is_kwargs() => {
            let items = value
                .try_iter()?
                .map(|item| sorted(state, &item))
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(Value::from(items))
        }
        _ => Ok(value.clone()),
    }
}

/// `tojson(indent=none)`: `json.dumps(value, sort_keys=True)` with `<`, `>`, `&` and `'`
/// escaped for HTML, as Jinja2 writes it.
pub(super) fn tojson(
    state: &State<'_, '_>,
    value: &Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    let indent = python_args("tojson", args, &["indent"])?.remove(0);
    let value = sorted(state, value)?;
    let json = minijinja::filters::tojson(
        &value,
        indent.filter(|i| !i.is_none()),
        Kwargs::from_iter(Vec::<(&str, Value)>::new()),
    )?
    .to_string();
    state.consume_fuel(u64::try_from(json.len()).unwrap_or(u64::MAX) / 64)?;
    let mut ascii = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    Ok(Value::from_safe_string(ascii))
}

/// Rewrites what minijinja's printf formatting lacks into what it has: `*` widths and
/// precisions take their value from the arguments, `%r`/`%a` become `%s` of the value's
/// `repr`, `%u` becomes `%d`, and `%d`/`%i`/`%u` of a float format the truncated integer, as
/// Python does. Returns `None` for `%(name)s` specs (left as they are).
fn python_printf(format: &str, args: &mut Vec<Value>) -> Option<String> {
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars().peekable();
    let mut index = 0;
    let mut consumed = Vec::new();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '%' {
            continue;
        }
        match chars.peek() {
            Some('%') => {
                out.push(chars.next().expect("peeked"));
                continue;
            }
            Some('(') => return None,
            _ => {}
        }
        while let Some(&c) = chars.peek() {
            let star = c == '*';
            if !(star || c == '.' || c.is_ascii_digit() || "#0- +".contains(c)) {
                break;
            }
            chars.next();
            if star {
                let count = args
                    .get(index)
                    .and_then(|a| i64::try_from(a.clone()).ok())?;
                out.push_str(&count.to_string());
                consumed.push(index);
                index += 1;
            } else {
                out.push(c);
            }
        }
        while chars.peek().is_some_and(|c| "hlL".contains(*c)) {
            chars.next();
        }
        let Some(kind) = chars.next() else {
            break;
        };
        let arg = args.get_mut(index);
        index += 1;
        let kind = match (kind, arg) {
            ('r' | 'a', Some(arg)) => {
                *arg = Value::from(if arg.kind() == ValueKind::String {
                    format!("{arg:?}")
                } else {
                    arg.to_string()
                });
                's'
            }
            ('d' | 'i' | 'u', Some(arg)) => {
                if arg.is_number()
                    && !arg.is_integer()
                    && let Ok(number) = f64::try_from(arg.clone())
                    && number.is_finite()
                {
                    #[allow(clippy::cast_possible_truncation)]
                    let truncated = number.trunc() as i128;
                    *arg = Value::from(truncated);
                }
                'd'
            }
            (kind, _) => kind,
        };
        out.push(kind);
    }
    for index in consumed.into_iter().rev() {
        args.remove(index);
    }
    Some(out)
}

/// `format(*args, **kwargs)`: Python's printf formatting (`"%s-%05d" | format(a, b)`).
pub(super) fn format(
    state: &mut State<'_, '_>,
    value: &Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    let mut values = args.into_values();
    let text = value.to_string();
    let rewritten = if values.iter().any(Value::is_kwargs) {
        None
    } else {
        python_printf(&text, &mut values)
    };
    let format = match rewritten {
        Some(text) if value.is_safe() => Value::from_safe_string(text),
        Some(text) => Value::from(text),
        None => value.clone(),
    };
    let (rest,): (Rest<ValueOrKwargs>,) = minijinja::value::from_args(&values)?;
    minijinja::filters::format(state, &format, rest)
}

/// `dictsort(case_sensitive=false, by="key", reverse=false)`, positional or by keyword.
pub(super) fn dictsort(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let names = ["case_sensitive", "by", "reverse"];
    let args = python_args("dictsort", args, &names)?;
    let kwargs: Kwargs = names
        .into_iter()
        .zip(args)
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect();
    minijinja::filters::dictsort(value, kwargs)
}

/// `pprint`: Python's `pprint.pformat` of a value that fits on one line (80 characters): its
/// `repr`, so a text is quoted.
pub(super) fn pprint(value: &Value) -> String {
    if value.kind() == ValueKind::String {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

/// The `callable` test: functions, macros and other objects that are neither a sequence nor
/// a mapping.
pub(super) fn is_callable(value: &Value) -> bool {
    value.kind() == ValueKind::Plain
}

/// `urllib.parse.quote(text, safe)`: letters, digits and `_.-~` stay, as do the `safe`
/// characters; every other byte of the UTF-8 text becomes `%XX`.
fn quote(text: &str, safe: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || b"_.-~".contains(&byte)
            || safe.as_bytes().contains(&byte)
        {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A key or value of a query string: `/` quoted too and spaces as `+`.
fn quote_query(value: &Value) -> String {
    quote(&value.to_string(), "").replace("%20", "+")
}

/// `urlencode`: a text quoted for a URL path (`/` kept), or a mapping or list of pairs as a
/// query string.
pub(super) fn urlencode(value: &Value) -> Result<String, Error> {
    match value.kind() {
        ValueKind::Map => {
            let pairs = value
                .as_object()
                .and_then(minijinja::value::DynObject::try_iter_pairs)
                .ok_or_else(|| invalid("urlencode cannot read this mapping"))?;
            Ok(pairs
                .map(|(k, v)| format!("{}={}", quote_query(&k), quote_query(&v)))
                .collect::<Vec<_>>()
                .join("&"))
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut parts = Vec::new();
            for pair in value.try_iter()? {
                let key = pair.get_item(&Value::from(0))?;
                let item = pair.get_item(&Value::from(1))?;
                parts.push(format!("{}={}", quote_query(&key), quote_query(&item)));
            }
            Ok(parts.join("&"))
        }
        _ => Ok(quote(&value.to_string(), "/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_parse_as_python_parses_them() {
        assert_eq!(parse_int(" 42 ", 10), Some(42));
        assert_eq!(parse_int("-1_000", 10), Some(-1000));
        assert_eq!(parse_int("0x1A", 16), Some(26));
        assert_eq!(parse_int("0x1A", 0), Some(26));
        assert_eq!(parse_int("0x1A", 10), None);
        assert_eq!(parse_int("12", 8), Some(10));
        assert_eq!(parse_int("010", 0), None);
        assert_eq!(parse_int("00", 0), Some(0));
        assert_eq!(parse_int("1__0", 10), None);
        assert_eq!(parse_int("3.9", 10), None);
    }

    #[test]
    fn floats_parse_as_python_parses_them() {
        assert_eq!(parse_float(" 3.5 "), Some(3.5));
        assert_eq!(parse_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert!(parse_float("-inf").is_some_and(f64::is_infinite));
        assert_eq!(parse_float("x"), None);
        assert_eq!(parse_float("_1"), None);
    }

    #[test]
    fn quoting_follows_urllib() {
        assert_eq!(quote("a b&c/d~é", "/"), "a%20b%26c/d~%C3%A9");
        assert_eq!(quote_query(&Value::from("a b/c")), "a+b%2Fc");
    }
}
