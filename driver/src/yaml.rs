//! Writing a JSON tree as YAML that YAML 1.1 readers (kubectl's go-yaml
//! v2, PyYAML) and YAML 1.2 readers read back as the same tree.
//!
//! A string is written plain only when no reader could take it for anything
//! else: YAML 1.1 resolves far more plain words than 1.2 does (`yes`, `on`,
//! `1_000`, `0b101`, `1_0.5`, `1:20`, `2001-12-14`), and an image tag or an
//! environment value read back as a number or a boolean changes the pod.
//! Anything in doubt is double-quoted with JSON-style escapes.

use serde_json::Value;

/// The tree as YAML, block style, two-space indent, ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, level: usize) {
    out.extend(std::iter::repeat_n("  ", level));
}

/// Writes `map` at `level`; the first key's indent is already written when
/// `inline` (after a sequence's `- `).
fn write_map_entries(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    level: usize,
    inline: bool,
) {
    for (index, (key, value)) in map.iter().enumerate() {
        if index > 0 || !inline {
            indent(out, level);
        }
        out.push_str(&string_text(key));
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(out, inner, level + 1);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, level + 1);
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    write_map_entries(out, map, level, false);
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    write_seq_items(out, items, level, false);
}

/// Writes `items` at `level`; the first `- ` goes right after what is
/// already written when `inline` (a sequence inside a sequence).
fn write_seq_items(out: &mut String, items: &[Value], level: usize, inline: bool) {
    for (index, item) in items.iter().enumerate() {
        if index > 0 || !inline {
            indent(out, level);
        }
        out.push_str("- ");
        match item {
            Value::Object(inner) if !inner.is_empty() => {
                write_map_entries(out, inner, level + 1, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                write_seq_items(out, inner, level + 1, true);
            }
            scalar => {
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

/// A scalar (or an empty collection) as YAML text.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "~".to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number_text(number),
        Value::String(text) => string_text(text),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A number as YAML 1.1 and 1.2 readers both read it: integers as they
/// are; floats always with a `.` and a signed exponent (PyYAML's float
/// needs the dot, and `1e5` would be a string to it).
fn number_text(number: &serde_json::Number) -> String {
    if number.is_i64() || number.is_u64() {
        return number.to_string();
    }
    let plain = number.to_string();
    if plain.contains('.') && !plain.contains(['e', 'E']) {
        return plain;
    }
    let float = number.as_f64().unwrap_or_default();
    let text = format!("{float:e}");
    // `{:e}` gives `1.5e3` or `1e-7`: make it `1.5e+3`, `1.0e-7`.
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    let exponent = if exponent.starts_with('-') {
        exponent.to_string()
    } else {
        format!("+{exponent}")
    };
    format!("{mantissa}e{exponent}")
}

/// A string, plain when that is unambiguous, else double-quoted.
pub fn string_text(text: &str) -> String {
    if !needs_quotes(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Control characters, the Unicode line and paragraph
            // separators (line breaks to YAML 1.1), the BOM and the
            // non-characters YAML may not carry raw.
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Words YAML 1.1 or 1.2 readers resolve to booleans or null when plain.
const SPECIAL_WORDS: [&str; 28] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "=",
    "<<",
];

/// Whether `text` must be quoted: anything a YAML 1.1 or 1.2 reader would
/// read as something other than this very string when plain. Deliberately
/// broader than the resolvers (the differential test checks it with
/// PyYAML): quoting a harmless string costs two characters.
pub fn needs_quotes(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return true;
    };
    if SPECIAL_WORDS.contains(&text) {
        return true;
    }
    // Indicators that start a non-plain node, and leading or trailing
    // space, which plain scalars lose.
    if "-?:,[]{}#&*!|>'\"%@`.<=+~ \t".contains(first) || text.ends_with([' ', '\t']) {
        return true;
    }
    // Characters that end or break a plain scalar, or that may not appear
    // raw in one.
    if text.chars().any(|c| {
        matches!(
            c,
            ':' | '#' | ',' | '[' | ']' | '{' | '}' | '"' | '\'' | '\\' | '`'
        ) || c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
    }) {
        return true;
    }
    // Numbers, dates and timestamps in every YAML 1.1 form start with a
    // digit and use only these characters (`0x1F`, `0b101`, `0o17`,
    // `1_000`, `1_0.5`, `1.5e+3`, `2001-12-14`); a quantity like `10m` or
    // `16Mi` has other letters and stays plain.
    first.is_ascii_digit()
        && text
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "xXoO_.+-".contains(c))
}
