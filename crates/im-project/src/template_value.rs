//! How the YAML values of `variables` become template values.
//!
//! Numbers and booleans keep their types, so `{{ variables.port + 1 }}`, `| sum` and
//! `| tojson` work as in Jinja2, while every value still renders exactly as written:
//!
//! - `true`/`True`/`TRUE` and `false`/`False`/`FALSE` (unquoted) are booleans;
//! - an unquoted integer written the way a number prints (`8080`, `-1`, `0`; not `007`,
//!   `+1`, `1_000` or `0x1f`) that fits in 64 bits is an integer;
//! - an unquoted decimal that a float prints back exactly (`1.5`, `0.25`) is a float; one it
//!   cannot (`2025.10` would print `2025.1`, `1e3` would print `1000.0`) keeps its text;
//! - `~`, `null` and nothing at all are `none`;
//! - everything else, and anything quoted, is text exactly as written.

use im_yaml::{Node, Style, Value};

/// The template value of a YAML node (see the module documentation for the rule).
pub fn from_yaml(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Scalar {
            text,
            style: Style::Plain,
        } => plain_scalar(text),
        Value::Scalar { text, .. } => serde_json::Value::String(text.clone()),
        Value::Seq(items) => serde_json::Value::Array(items.iter().map(from_yaml).collect()),
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_scalar().unwrap_or("~").to_owned(), from_yaml(v)))
                .collect(),
        ),
    }
}

/// An unquoted scalar: a boolean, a number that renders as `text`, or `text` itself.
fn plain_scalar(text: &str) -> serde_json::Value {
    match text {
        "true" | "True" | "TRUE" => return serde_json::Value::Bool(true),
        "false" | "False" | "FALSE" => return serde_json::Value::Bool(false),
        _ => {}
    }
    if let Some(number) = integer(text) {
        return serde_json::Value::from(number);
    }
    if let Some(number) = float(text).and_then(serde_json::Number::from_f64) {
        return serde_json::Value::Number(number);
    }
    serde_json::Value::String(text.to_owned())
}

/// `-?(0|[1-9][0-9]*)` within 64 bits: the text an integer prints as.
fn integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    canonical.then(|| text.parse().ok()).flatten()
}

/// A decimal `-?digits.digits` whose float prints back as exactly `text`, both in the
/// template engine (shortest round-trip digits) and in Python (which switches to exponent
/// notation below 1e-4 and from 1e16 on).
fn float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    let magnitude = value.abs();
    let plain_notation = magnitude == 0.0 || (1e-4..1e16).contains(&magnitude);
    (plain_notation && value.is_finite() && printed(value) == text).then_some(value)
}

/// How the template engine prints a float: the shortest digits that read back, with `.0`
/// for whole numbers.
fn printed(value: f64) -> String {
    let mut text = value.to_string();
    if !text.contains('.') {
        text.push_str(".0");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(yaml: &str) -> serde_json::Value {
        let doc = im_yaml::parse(
            std::path::Path::new("x.yml"),
            format!("v: {yaml}\n"),
            &im_yaml::Limits::default(),
        )
        .unwrap();
        from_yaml(doc.root.get("v").unwrap())
    }

    #[test]
    fn integers_and_booleans_keep_their_types() {
        assert_eq!(value("8080"), json!(8080));
        assert_eq!(value("-1"), json!(-1));
        assert_eq!(value("0"), json!(0));
        assert_eq!(value("9223372036854775807"), json!(i64::MAX));
        assert_eq!(value("true"), json!(true));
        assert_eq!(value("FALSE"), json!(false));
        assert_eq!(value("~"), json!(null));
        assert_eq!(value("[1, a, {b: 2.5}]"), json!([1, "a", {"b": 2.5}]));
    }

    #[test]
    fn floats_that_print_back_as_written_are_floats() {
        assert_eq!(value("1.5"), json!(1.5));
        assert_eq!(value("0.25"), json!(0.25));
        assert_eq!(value("-3.0"), json!(-3.0));
        assert_eq!(value("3.13"), json!(3.13));
        assert_eq!(value("0.0001"), json!(0.0001));
    }

    #[test]
    fn text_a_number_cannot_reproduce_stays_text() {
        for text in [
            "2025.10",
            "3.10",
            "1.50",
            "007",
            "+1",
            "-0",
            "1_000",
            "0x1f",
            "0o17",
            "1e3",
            ".5",
            "1.",
            ".inf",
            ".nan",
            "0.00001",
            "12345678901234567.0",
            "9223372036854775808",
            "yes",
            "on",
            "3.13.7",
        ] {
            assert_eq!(value(text), json!(text), "{text}");
        }
    }

    #[test]
    fn quoted_values_are_text() {
        assert_eq!(value("'8080'"), json!("8080"));
        assert_eq!(value("\"true\""), json!("true"));
        assert_eq!(value("'1.5'"), json!("1.5"));
    }

    proptest::proptest! {
        /// Every integer and every float in plain notation reads back as the same number
        /// from the text it prints as; that text is what the template renders.
        #[test]
        fn numbers_read_back_from_how_they_print(int in proptest::num::i64::ANY, float in 1e-4f64..1e16) {
            proptest::prop_assert_eq!(plain_scalar(&int.to_string()), json!(int));
            let text = printed(float);
            proptest::prop_assert_eq!(plain_scalar(&text), json!(float));
            proptest::prop_assert_eq!(plain_scalar(&format!("-{text}")), json!(-float));
        }
    }
}
