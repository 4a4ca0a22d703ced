//! Jinja2's text filters: `center`, `escape`, `filesizeformat`, `forceescape`, `indent`,
//! `striptags`, `truncate`, `wordcount` and `xmlattr`, with Jinja2's semantics. Texts are
//! measured in characters, as Python measures `str`.

use minijinja::value::{Rest, ValueKind, ValueOrKwargs};
use minijinja::{Error, Value};

use super::{invalid, opt, python_args};

/// Python's `str.center`: the extra space goes right, unless both the margin and the width
/// are odd.
pub(super) fn center(value: &Value, width: Option<i64>) -> String {
    let text = value.to_string();
    let width = width.unwrap_or(80);
    let len = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    let margin = width - len;
    if margin <= 0 {
        return text;
    }
    let left = margin / 2 + (margin & width & 1);
    let right = margin - left;
    let pad = |n: i64| " ".repeat(usize::try_from(n).unwrap_or(0));
    format!("{}{text}{}", pad(left), pad(right))
}

/// `13 kB`, `4.1 MB`, `102 Bytes`; binary prefixes (`KiB`) with `binary=true`.
pub(super) fn filesizeformat(value: &Value, binary: Option<bool>) -> Result<String, Error> {
    let bytes = match value.kind() {
        ValueKind::Number | ValueKind::Bool => f64::try_from(value.clone())?,
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim();
            text.parse::<f64>().map_err(|_| {
                invalid(format!(
                    "filesizeformat needs a number, not the text `{text}`"
                ))
            })?
        }
        kind => {
            return Err(invalid(format!(
                "filesizeformat needs a number, not {kind}"
            )));
        }
    };
    let binary = binary.unwrap_or(false);
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let prefixes = if binary {
        ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    } else {
        ["kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    };
    #[allow(clippy::float_cmp)]
    if bytes == 1.0 {
        return Ok("1 Byte".to_owned());
    }
    if bytes < base {
        #[allow(clippy::cast_possible_truncation)]
        return Ok(format!("{} Bytes", bytes.trunc() as i128));
    }
    let mut unit = base;
    for (index, prefix) in prefixes.iter().enumerate() {
        unit = base.powi(i32::try_from(index).unwrap_or(0) + 2);
        if bytes < unit || index == prefixes.len() - 1 {
            return Ok(format!("{:.1} {prefix}", base * bytes / unit));
        }
    }
    Ok(format!("{:.1} {}", base * bytes / unit, prefixes[7]))
}

/// MarkupSafe's `escape` of a text.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `escape`/`e`: MarkupSafe's escape; a value already marked safe is left as it is.
pub(super) fn escape(value: &Value) -> Value {
    if value.is_safe() {
        value.clone()
    } else {
        Value::from_safe_string(html_escape(&value.to_string()))
    }
}

/// `indent(width=4, first=false, blank=false)`: indents every line but the first (and blank
/// lines) by `width` spaces, or by `width` itself when it is a text.
pub(super) fn indent(value: &Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let args = python_args("indent", args, &["width", "first", "blank"])?;
    let indention = match &args[0] {
        Some(width) if width.as_str().is_some() => width.to_string(),
        Some(width) => " ".repeat(usize::try_from(i64::try_from(width.clone())?).unwrap_or(0)),
        None => "    ".to_owned(),
    };
    let first = args[1].as_ref().is_some_and(Value::is_true);
    let blank = args[2].as_ref().is_some_and(Value::is_true);
    let text = format!("{value}\n");
    let lines = super::wordwrap::split_lines(&text);
    let mut out = if blank {
        lines.join(&format!("\n{indention}"))
    } else {
        let mut out = lines.first().copied().unwrap_or_default().to_owned();
        for line in lines.iter().skip(1) {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&indention);
            }
            out.push_str(line);
        }
        out
    };
    if first {
        out.insert_str(0, &indention);
    }
    Ok(out)
}

/// Escapes for HTML even a value marked safe.
pub(super) fn forceescape(value: &Value) -> Value {
    Value::from_safe_string(html_escape(&value.to_string()))
}

/// Removes `<...>` tags and `<!-- -->` comments, collapses whitespace and decodes entities.
pub(super) fn striptags(value: &Value) -> String {
    let text = value.to_string();
    let mut parts = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(start) = text[pos..].find('<').map(|i| pos + i) {
        let end = if text[start..].starts_with("<!--") {
            match text[start + 4..].find("-->") {
                Some(i) => start + 4 + i + 3,
                None => break,
            }
        } else {
            match text[start..].find('>') {
                Some(i) => start + i + 1,
                None => break,
            }
        };
        parts.push_str(&text[pos..start]);
        pos = end;
    }
    parts.push_str(&text[pos..]);
    let collapsed = parts.split_whitespace().collect::<Vec<_>>().join(" ");
    unescape_entities(&collapsed)
}

/// Decodes `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&nbsp;` and numeric references;
/// other named entities stay as written.
fn unescape_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &rest[1..semi];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name.strip_prefix('#').and_then(|number| {
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => number.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `truncate(length=255, killwords=false, end="...", leeway=5)`, positional or by keyword.
pub(super) fn truncate(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = python_args("truncate", args, &["length", "killwords", "end", "leeway"])?;
    let length = opt::<i64>(args[0].as_ref())?.unwrap_or(255);
    let killwords = args[1].as_ref().is_some_and(Value::is_true);
    let end = args[2]
        .as_ref()
        .map_or_else(|| "...".to_owned(), ToString::to_string);
    let leeway = opt::<i64>(args[3].as_ref())?.unwrap_or(5);
    let text = value.to_string();
    let end_len = i64::try_from(end.chars().count()).unwrap_or(i64::MAX);
    if length < end_len {
        return Err(invalid(format!(
            "expected length >= {end_len}, got {length}"
        )));
    }
    if leeway < 0 {
        return Err(invalid("expected leeway >= 0"));
    }
    let chars = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    if chars <= length.saturating_add(leeway) {
        return Ok(value.clone());
    }
    let keep = usize::try_from(length - end_len).unwrap_or(0);
    let head: String = text.chars().take(keep).collect();
    let head = if killwords {
        head.as_str()
    } else {
        head.rsplit_once(' ')
            .map_or(head.as_str(), |(before, _)| before)
    };
    Ok(Value::from(format!("{head}{end}")))
}

/// The number of `\w+` runs (letters, digits, underscores).
pub(super) fn wordcount(value: &Value) -> usize {
    let text = value.to_string();
    let mut count = 0;
    let mut in_word = false;
    for c in text.chars() {
        let word = c.is_alphanumeric() || c == '_';
        if word && !in_word {
            count += 1;
        }
        in_word = word;
    }
    count
}

/// ` key="value"` pairs of a mapping; `none` values are left out.
pub(super) fn xmlattr(value: &Value, autospace: Option<bool>) -> Result<String, Error> {
    let mut items = Vec::new();
    let Some(pairs) = value
        .as_object()
        .and_then(minijinja::value::DynObject::try_iter_pairs)
    else {
        return Err(invalid(format!(
            "xmlattr needs a mapping, not {}",
            value.kind()
        )));
    };
    for (key, item) in pairs {
        if item.is_none() || item.is_undefined() {
            continue;
        }
        let key = key.to_string();
        if key
            .chars()
            .any(|c| c.is_ascii_whitespace() || matches!(c, '/' | '>' | '='))
        {
            return Err(invalid(format!(
                "Invalid character in attribute name: {key:?}"
            )));
        }
        let text = if item.is_safe() {
            item.to_string()
        } else {
            html_escape(&item.to_string())
        };
        items.push(format!("{}=\"{text}\"", html_escape(&key)));
    }
    let joined = items.join(" ");
    Ok(if autospace.unwrap_or(true) && !joined.is_empty() {
        format!(" {joined}")
    } else {
        joined
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn center_puts_the_odd_space_where_python_does() {
        assert_eq!(center(&Value::from("ab"), Some(5)), "  ab ");
        assert_eq!(center(&Value::from("abc"), Some(6)), " abc  ");
        assert_eq!(center(&Value::from("abc"), Some(8)), "  abc   ");
        assert_eq!(center(&Value::from("abcd"), Some(7)), "  abcd ");
        assert_eq!(center(&Value::from("long"), Some(2)), "long");
    }

    #[test]
    fn striptags_removes_tags_and_comments_and_decodes() {
        assert_eq!(
            striptags(&Value::from(
                "a <b>bold</b>\n <!-- c <x> --> &amp; &#34;d&#x27;"
            )),
            "a bold & \"d'"
        );
        assert_eq!(striptags(&Value::from("open <tag")), "open <tag");
    }

    #[test]
    fn filesizeformat_matches_jinja2() {
        let f = |v: f64, b: bool| filesizeformat(&Value::from(v), Some(b)).unwrap();
        assert_eq!(f(1.0, false), "1 Byte");
        assert_eq!(f(999.9, false), "999 Bytes");
        assert_eq!(f(1000.0, false), "1.0 kB");
        assert_eq!(f(1_500_000.0, false), "1.5 MB");
        assert_eq!(f(2048.0, true), "2.0 KiB");
        assert_eq!(f(-5000.0, false), "-5000 Bytes");
    }
}
