//! Reading the driver's input files (`--config`, `--template`,
//! `--nodes-json`, `--kubernetes-version-json`, a build result) and parsing
//! YAML the way the Kubernetes API would take it.
//!
//! Every file is opened without blocking (a FIFO must not hang the driver
//! waiting for a writer), must be a regular file (not `/dev/zero`, a FIFO or
//! a folder), and must fit a size limit checked before reading (a sparse
//! file of many gigabytes is refused from its size, not read). YAML is
//! parsed with a nesting limit checked as the parser goes, so a deeply
//! nested document is refused in time linear in its length.

use std::path::Path;

use serde_json::Value;

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
/// merge keys (`<<`) applied as kubectl applies them, aliases expanded
/// within go-yaml's bound, and only string keys (see [`crate::yaml_read`]).
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    crate::yaml_read::read_document(text)
}
