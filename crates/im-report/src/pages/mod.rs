//! One module per kind of page; each returns the page's title and the content of `<main>`.

pub mod graph;
pub mod image;
pub mod overview;
pub mod tag;

use crate::html::esc;

/// A text filter over a table (`report.js` shows it; without JavaScript it stays hidden).
pub fn table_filter(id: &str, table: &str, what: &str) -> String {
    format!(
        "<p class=\"filter\" hidden><label for=\"{id}\">Filter {}</label><input id=\"{id}\" type=\"search\" data-filter=\"{table}\" autocomplete=\"off\"> <span id=\"{id}-status\" role=\"status\"></span></p>\n",
        esc(what)
    )
}
