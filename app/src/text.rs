//! Text placed inside markup made by the server or the page.

/// Text for XML and HTML content and attribute values. Characters XML cannot
/// hold at all (most control characters) become U+FFFD so the document parses.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// [`escape`], appended to `out`: no string of its own.
pub fn escape_into(out: &mut String, text: &str) {
    // Runs of plain characters are copied whole.
    let mut plain = 0;
    for (at, c) in text.char_indices() {
        let replacement = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            '\t' | '\n' | '\r' => continue,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => "\u{FFFD}",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        out.push_str(replacement);
        plain = at + c.len_utf8();
    }
    out.push_str(&text[plain..]);
}
