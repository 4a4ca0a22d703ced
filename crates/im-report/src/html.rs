//! HTML text: escaping (every value from a project passes through [`esc`]), the site's paths,
//! and the shell every page shares (landmarks, navigation, the stylesheet and script).

use std::fmt::Write as _;

/// `text` safe in element content and in quoted attribute values.
pub fn esc(text: &str) -> String {
    // Most names and values need nothing: one scan, one copy.
    if !text
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
    {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A file name for a project name (an image, a tag): ASCII letters, digits, `.`, `_` and `-`
/// are kept (a leading `.` is not); every other byte becomes `~XX`, so two names never share
/// a file and no name leaves its folder.
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, byte) in name.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric() || b"_-".contains(&byte) || (byte == b'.' && i > 0);
        if keep {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "~{byte:02X}");
        }
    }
    if out.is_empty() {
        out.push('~');
    }
    out
}

/// The page of an image, relative to the site's root.
pub fn image_path(image: &str) -> String {
    format!("images/{}.html", slug(image))
}

/// The page of an image tag, relative to the site's root.
pub fn tag_path(image: &str, tag: &str) -> String {
    format!("images/{}/{}.html", slug(image), slug(tag))
}

/// The page of a node `image:tag`, relative to the site's root.
pub fn node_path(node: &str) -> String {
    match node.split_once(':') {
        Some((image, tag)) => tag_path(image, tag),
        None => image_path(node),
    }
}

/// The way up from a page at `path` to the site's root: `""`, `"../"`, `"../../"`.
pub fn root_of(path: &str) -> String {
    "../".repeat(path.matches('/').count())
}

/// An `href` for an external link, or `None` unless it is plain `http(s)`.
pub fn safe_url(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| esc(url))
}

/// What the navigation shows.
pub struct Nav {
    pub outdated: bool,
}

/// A whole page: `title`, its path (for relative links), and the content of `<main>`.
pub fn page(
    site_title: &str,
    title: &str,
    path: &str,
    nav: &Nav,
    main: &str,
    footer: &str,
) -> String {
    let root = root_of(path);
    let mut out = String::with_capacity(main.len() + 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · {}</title>\n<link rel=\"stylesheet\" href=\"{root}assets/style.css\">\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\n\
         <header><nav aria-label=\"Site\"><a class=\"brand\" href=\"{root}index.html\">{}</a>\
         <a href=\"{root}index.html\">Overview</a><a href=\"{root}graph.html\">Graph</a>",
        esc(title),
        esc(site_title),
        esc(site_title),
    );
    if nav.outdated {
        let _ = write!(out, "<a href=\"{root}outdated.html\">Outdated bases</a>");
    }
    let _ = writeln!(
        out,
        "</nav></header>\n<main id=\"main\">\n{main}</main>\n<footer><p>{}</p></footer>\n\
         <script src=\"{root}assets/report.js\"></script>\n</body>\n</html>",
        esc(footer)
    );
    out
}

/// A `<table>` (with the element id `id`) with a caption, header cells and rows of already
/// escaped HTML cells.
pub fn table(caption: &str, id: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    // A region that may scroll sideways (on a phone) is focusable, so keyboards can scroll it.
    let mut out = format!(
        "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{caption}\"><table id=\"{id}\"><caption>{caption}</caption><thead><tr>",
        caption = esc(caption)
    );
    for header in headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(header));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// `<a href>` to a page (`target` relative to the root) from a page at `from`.
pub fn link(from: &str, target: &str, text: &str) -> String {
    format!("<a href=\"{}{}\">{}</a>", root_of(from), target, esc(text))
}

/// A status word with its class (colour plus the word itself, never colour alone).
pub fn badge(word: &str) -> String {
    let class = match word {
        "passed" | "built" => "ok",
        "failed" | "error" => "bad",
        "warning" => "warn",
        _ => "none",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(word))
}

/// `sha256:0123456789ab` with the whole digest as its title.
pub fn short_digest(digest: &str) -> String {
    format!(
        "<code title=\"{}\">{}</code>",
        esc(digest),
        esc(digest.get(..19).unwrap_or(digest))
    )
}

/// `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // display only
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn slugs_stay_in_their_folder_and_never_collide() {
        assert_eq!(slug("3.13.7-dev"), "3.13.7-dev");
        assert_eq!(slug(".."), "~2E.");
        assert_eq!(slug("a/b"), "a~2Fb");
        assert_ne!(slug("a~2Fb"), slug("a/b"));
        assert_eq!(slug(""), "~");
        assert_eq!(tag_path("python", "3.13"), "images/python/3.13.html");
        assert_eq!(root_of("images/python/3.13.html"), "../../");
    }

    #[test]
    fn only_http_links_are_links() {
        assert!(safe_url("javascript:alert(1)").is_none());
        assert_eq!(safe_url("https://a/?x=\"").unwrap(), "https://a/?x=&quot;");
    }
}
