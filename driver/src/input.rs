//! Reading the driver's input files (`--config`, `--template`,
//! `--nodes-json`, `--kubernetes-version-json`, a build result) and parsing
//! YAML the way the Kubernetes API would take it.
//!
//! Every file is opened without blocking (a FIFO must not hang the driver
//! waiting for a writer), must be a regular file (not `/dev/zero`, a FIFO or
//! a folder), and must fit a size limit checked before reading (a sparse
//! file of many gigabytes is refused from its size, not read). YAML is
//! parsed with a nesting limit checked first by a streaming pass, so a
//! deeply nested document is refused in time linear in its length.

use std::path::Path;

use serde_json::{Map, Value};

/// Size limit of a pod template: the API server refuses larger objects
/// (etcd's request limit is 1.5 MiB), so a larger template is a mistake.
pub const TEMPLATE_SIZE_LIMIT: u64 = 2 * 1024 * 1024;
/// Size limit of the driver's config file.
pub const CONFIG_SIZE_LIMIT: u64 = 2 * 1024 * 1024;
/// Size limit of `kubectl get nodes -o json`: about 20 KiB a node, so room
/// for clusters of several thousand nodes.
pub const NODES_SIZE_LIMIT: u64 = 256 * 1024 * 1024;
/// Size limit of `kubectl version -o json` and of a build result file.
pub const SMALL_JSON_SIZE_LIMIT: u64 = 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted in YAML: a Pod
/// nests about a dozen levels deep; serde_json's own limit for JSON is 128.
pub const MAX_YAML_DEPTH: usize = 100;

/// Why an input file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Opening, inspecting or reading failed (the system's words, like
    /// "No such file or directory").
    #[error("{0}")]
    Io(String),
    /// Not a regular file.
    #[error("it is {found}, not a regular file (expected a regular file)")]
    NotRegular {
        /// What it is, like `a FIFO`.
        found: &'static str,
    },
    /// Larger than the limit.
    #[error("it is {size} bytes, over the limit of {limit} bytes for this file")]
    TooLarge {
        /// The file's size (or what was read of it).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8 text.
    #[error("it is not UTF-8 text (expected YAML or JSON)")]
    NotText,
}

/// Reads the text file at `path`, at most `limit` bytes: opened without
/// blocking, refused unless a regular file within the limit.
pub fn read_text(path: &Path, limit: u64) -> Result<String, InputError> {
    use openshell_contract::files::{RegularFileError, read_regular};
    let bytes = read_regular(path, limit).map_err(|err| match err {
        RegularFileError::Io(err) => InputError::Io(err.to_string()),
        RegularFileError::NotRegular { found } => InputError::NotRegular { found },
        RegularFileError::TooLarge { size, limit } => InputError::TooLarge { size, limit },
    })?;
    String::from_utf8(bytes).map_err(|_| InputError::NotText)
}

/// Parses one YAML (or JSON) document as the API server would take it:
/// nesting at most [`MAX_YAML_DEPTH`] deep, no duplicate keys (the API's
/// strict decoding refuses them; a later value must not silently win),
/// merge keys (`<<`) applied as kubectl applies them, and only string keys.
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    check_depth(text)?;
    let mut document: serde_yaml::Value = serde_yaml::from_str(text).map_err(|err| {
        // serde_yaml says "duplicate entry with key"; say what to do too.
        let message = err.to_string();
        if message.contains("duplicate entry") {
            format!("{message} (each key may appear once in a mapping; remove the repeated one)")
        } else {
            message
        }
    })?;
    document
        .apply_merge()
        .map_err(|err| format!("merge key (<<): {err}"))?;
    to_json(document, "")
}

/// Refuses a document nested deeper than [`MAX_YAML_DEPTH`], from a
/// streaming parse that stops at the first level too deep.
pub fn check_depth(text: &str) -> Result<(), String> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|err| {
            // The scanner's own limit on flow nesting (255 levels) can come
            // first, when it reads ahead: the same refusal.
            if err.info().contains("recursion limit") {
                format!(
                    "nested more than {MAX_YAML_DEPTH} levels deep at line {} column {} (expected a Kubernetes object, which nests about a dozen levels)",
                    err.marker().line(),
                    err.marker().col() + 1
                )
            } else {
                err.to_string()
            }
        })?;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_YAML_DEPTH {
                    return Err(format!(
                        "nested more than {MAX_YAML_DEPTH} levels deep at line {} column {} (expected a Kubernetes object, which nests about a dozen levels)",
                        mark.line(),
                        mark.col() + 1
                    ));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            Event::StreamEnd => return Ok(()),
            _ => {}
        }
    }
}

/// The JSON tree of a YAML value; `at` names where, for errors.
fn to_json(value: serde_yaml::Value, at: &str) -> Result<Value, String> {
    use serde_yaml::Value as Yaml;
    let place = || if at.is_empty() { "the document" } else { at };
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Value::from(integer)
            } else if let Some(integer) = number.as_u64() {
                Value::from(integer)
            } else {
                let float = number.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(float)
                    .map(Value::Number)
                    .ok_or_else(|| {
                        format!(
                            "{}: {number} is not a finite number (expected one JSON can hold)",
                            place()
                        )
                    })?
            }
        }
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| to_json(item, &format!("{at}[{index}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, item) in mapping {
                let Yaml::String(key) = key else {
                    return Err(format!(
                        "{}: the key {} is not a string (expected string keys, as in every Kubernetes object)",
                        place(),
                        serde_yaml::to_string(&key).unwrap_or_default().trim_end()
                    ));
                };
                if key == "<<" {
                    // apply_merge takes one level; a merge brought in by a
                    // merge would otherwise stay as a literal key.
                    return Err(format!(
                        "{}: a merge key (<<) remains after merging (a merge inside a merged mapping, or a quoted \"<<\"); expected plain keys: write the fields out",
                        place()
                    ));
                }
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                let item = to_json(item, &path)?;
                map.insert(key, item);
            }
            Value::Object(map)
        }
        Yaml::Tagged(tagged) => {
            return Err(format!(
                "{}: the tag {} is not supported (expected plain YAML values)",
                place(),
                tagged.tag
            ));
        }
    })
}
