//! JSON written byte for byte like Python's `json.dump`: ASCII only, and
//! either `indent=2` or the default `", "` / `": "` separators.

use std::fmt::Write;

use serde_json::Value;

/// Layout of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `json.dump(x, f)`.
    Compact,
    /// `json.dump(x, f, indent=2)`.
    Indented,
}

pub fn to_string(value: &Value, style: Style) -> String {
    let mut out = String::new();
    write_value(&mut out, value, style, 0);
    out
}

fn newline(out: &mut String, style: Style, depth: usize) {
    if style == Style::Indented {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    }
}

fn separator(style: Style) -> &'static str {
    match style {
        Style::Compact => ", ",
        Style::Indented => ",",
    }
}

fn write_value(out: &mut String, value: &Value, style: Style, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator(style));
                }
                newline(out, style, depth + 1);
                write_value(out, item, style, depth + 1);
            }
            newline(out, style, depth);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator(style));
                }
                newline(out, style, depth + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, style, depth + 1);
            }
            newline(out, style, depth);
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_layouts() {
        let v = json!({"a": [1, 2], "b": {}, "c": "é\"", "d": []});
        assert_eq!(
            to_string(&v, Style::Compact),
            r#"{"a": [1, 2], "b": {}, "c": "\u00e9\"", "d": []}"#
        );
        assert_eq!(
            to_string(&v, Style::Indented),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": \"\\u00e9\\\"\",\n  \"d\": []\n}"
        );
    }
}
