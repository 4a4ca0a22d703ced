//! Jinja2's builtin filters that minijinja lacks or implements differently, with Jinja2's
//! semantics (Jinja2 3.1 and MarkupSafe 3 as the reference):
//!
//! - [`text`]: `center`, `escape`/`e`, `filesizeformat`, `forceescape`, `indent`,
//!   `striptags`, `truncate`, `wordcount`, `xmlattr`;
//! - [`wordwrap`]: `wordwrap`, a port of Python's `textwrap`;
//! - [`data`]: `int`, `float`, `format` (with `%r` and `%d` of floats), `tojson` (sorted
//!   keys, ASCII only), `pprint`, `dictsort`,
//!   `urlencode`,
//!   and the `callable` test.
//!
//! `random` and `urlize` are left out on purpose (see the README's "Deliberate differences").

pub mod data;
pub mod text;
pub mod wordwrap;

use minijinja::value::{Kwargs, Rest, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, ErrorKind, Value};

/// Registers the filters of this module in `env`.
pub fn register(env: &mut Environment<'_>) {
    env.add_filter("center", text::center);
    env.add_filter("escape", text::escape);
    env.add_filter("e", text::escape);
    env.add_filter("filesizeformat", text::filesizeformat);
    env.add_filter("forceescape", text::forceescape);
    env.add_filter("indent", text::indent);
    env.add_filter("striptags", text::striptags);
    env.add_filter("truncate", text::truncate);
    env.add_filter("wordcount", text::wordcount);
    env.add_filter("wordwrap", wordwrap::wordwrap);
    env.add_filter("xmlattr", text::xmlattr);
    env.add_filter("int", data::int);
    env.add_filter("float", data::float);
    env.add_filter("tojson", data::tojson);
    env.add_filter("urlencode", data::urlencode);
    env.add_filter("pprint", data::pprint);
    env.add_filter("dictsort", data::dictsort);
    env.add_filter("format", data::format);
    env.add_test("callable", data::is_callable);
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// Python-style arguments `names`, given by position or by keyword: each one's value, if
/// given.
pub(crate) fn python_args(
    filter: &str,
    args: Rest<ValueOrKwargs>,
    names: &[&str],
) -> Result<Vec<Option<Value>>, Error> {
    let values = args.into_values();
    let (positional, kwargs): (&[Value], Kwargs) = from_args(&values)?;
    if positional.len() > names.len() {
        return Err(invalid(format!(
            "{filter} takes at most {} arguments ({})",
            names.len(),
            names.join(", ")
        )));
    }
    let mut out: Vec<Option<Value>> = positional.iter().cloned().map(Some).collect();
    for name in &names[positional.len()..] {
        out.push(kwargs.get::<Option<Value>>(name)?);
    }
    kwargs.assert_all_used()?;
    Ok(out)
}

/// An optional argument converted to `T`.
pub(crate) fn opt<T: TryFrom<Value, Error = Error>>(
    value: Option<&Value>,
) -> Result<Option<T>, Error> {
    value
        .filter(|v| !v.is_none() && !v.is_undefined())
        .cloned()
        .map(T::try_from)
        .transpose()
}
