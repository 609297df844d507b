//! Lays out compact JSON with two-space indents, as `serde_json`'s pretty
//! printer does. The chart editor shows definitions this way; laying out the
//! compact text it already has costs the browser bundle far less than a
//! second, pretty-printing serializer for every definition type.

/// `compact` (valid JSON without whitespace between tokens) laid out one
/// member per line.
pub fn indent_json(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Empty objects and arrays stay on one line: `{}`, `[]`.
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().unwrap_or_default());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::indent_json;
    use crate::chart::definition::ChartDefinition;

    #[test]
    fn matches_the_pretty_printer_on_definitions_and_awkward_strings() {
        let mut definition = ChartDefinition::starter();
        definition.name = r#"a "quoted" {name}, [with] \ and : inside"#.into();
        let values = [
            serde_json::to_value(&definition).unwrap(),
            serde_json::json!({"a": [], "b": {}, "c": [1, [2, {}], {"d": null}], "e": "\\"}),
            serde_json::json!([]),
            serde_json::json!("just a string"),
        ];
        for value in values {
            let compact = serde_json::to_string(&value).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            assert_eq!(indent_json(&compact), pretty);
        }
    }
}
