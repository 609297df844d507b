//! The small part of Markdown a dashboard's text elements need: headings,
//! paragraphs, lists, bold, italic, code and links. Every character of the
//! source is escaped first, so text can never become markup or script.

use crate::text::escape;
/// `text` as HTML.
pub fn to_html(text: &str) -> String {
    let mut html = String::new();
    let mut in_list = false;
    let mut paragraph: Vec<String> = Vec::new();
    let flush = |html: &mut String, paragraph: &mut Vec<String>| {
        if !paragraph.is_empty() {
            html.push_str(&format!("<p>{}</p>", paragraph.join(" ")));
            paragraph.clear();
        }
    };
    for line in text.lines() {
        let line = line.trim_end();
        let item = line.strip_prefix("- ").or_else(|| line.strip_prefix("* "));
        if item.is_none() && in_list {
            html.push_str("</ul>");
            in_list = false;
        }
        if line.trim().is_empty() {
            flush(&mut html, &mut paragraph);
        } else if let Some(item) = item {
            flush(&mut html, &mut paragraph);
            if !in_list {
                html.push_str("<ul>");
                in_list = true;
            }
            html.push_str(&format!("<li>{}</li>", inline(item)));
        } else if let Some((level, title)) = heading(line) {
            flush(&mut html, &mut paragraph);
            html.push_str(&format!("<h{level}>{}</h{level}>", inline(title)));
        } else {
            paragraph.push(inline(line.trim()));
        }
    }
    flush(&mut html, &mut paragraph);
    if in_list {
        html.push_str("</ul>");
    }
    html
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    let rest = line.get(level..)?.strip_prefix(' ')?;
    // Dashboard headings sit under the page's h1 and the element's h2.
    (1..=3).contains(&level).then_some((level + 2, rest))
}

/// Bold, italic, code and `[label](http…)` links within one line.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("**")
            && let Some(end) = after.find("**")
        {
            out.push_str(&format!("<strong>{}</strong>", escape(&after[..end])));
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('`')
            && let Some(end) = after.find('`')
        {
            out.push_str(&format!("<code>{}</code>", escape(&after[..end])));
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('*')
            && let Some(end) = after.find('*')
        {
            out.push_str(&format!("<em>{}</em>", escape(&after[..end])));
            rest = &after[end + 1..];
        } else if let Some((link, used)) = link(rest) {
            out.push_str(&link);
            rest = &rest[used..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push_str(&escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// A `[label](url)` link at the start of `text`, with the bytes it used.
/// Only http and https addresses link; anything else stays text.
fn link(text: &str) -> Option<(String, usize)> {
    let after = text.strip_prefix('[')?;
    let close = after.find("](")?;
    let label = &after[..close];
    let url_start = &after[close + 2..];
    let end = url_start.find(')')?;
    let url = &url_start[..end];
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.contains(char::is_whitespace)
    {
        return None;
    }
    let html = format!(
        "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
        escape(url),
        escape(label)
    );
    Some((html, 1 + close + 2 + end + 1))
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn renders_the_common_forms() {
        assert_eq!(
            to_html("# Sales\nSold **fast** and *fresh*.\n\n- one\n- `two`"),
            "<h3>Sales</h3><p>Sold <strong>fast</strong> and <em>fresh</em>.</p>\
             <ul><li>one</li><li><code>two</code></li></ul>"
        );
        assert_eq!(
            to_html("[docs](https://example.com/a?b=1&c=2)"),
            "<p><a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer\">docs</a></p>"
        );
    }

    #[test]
    fn markup_and_script_links_stay_text() {
        let html = to_html("<script>alert(1)</script> [x](javascript:alert(1)) **<b>**");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("<strong>&lt;b&gt;</strong>"), "{html}");
    }
}
