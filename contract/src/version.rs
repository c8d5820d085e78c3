//! The report printed by `openshell-sandbox version --json`.
//!
//! `build-image verify --run` parses the same type, so the two cannot drift.

use serde::{Deserialize, Serialize};

/// Which C library the binary was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    /// musl (the default static target).
    Musl,
    /// glibc (static only with `+crt-static`).
    Gnu,
    /// Anything else the target reports.
    Other,
}

/// What `openshell-sandbox version --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReport {
    /// Package name: always [`crate::BINARY_NAME`].
    pub name: String,
    /// Package version.
    pub version: String,
    /// Git revision the binary was built from, when the build knew it.
    pub git_revision: Option<String>,
    /// Rust target triple the binary was built for.
    pub target: String,
    /// C library of the target.
    pub libc: Libc,
    /// Whether the running executable is statically linked (no interpreter,
    /// no needed libraries), as read from its own ELF headers.
    #[serde(rename = "static")]
    pub is_static: bool,
    /// sha256 (lowercase hex, no prefix) of the running executable's bytes.
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_names_are_stable() {
        let report = VersionReport {
            name: "openshell-sandbox".into(),
            version: "0.1.0".into(),
            git_revision: None,
            target: "x86_64-unknown-linux-musl".into(),
            libc: Libc::Musl,
            is_static: true,
            sha256: "ab".into(),
        };
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["static"], true);
        assert_eq!(value["libc"], "musl");
        assert!(value["git_revision"].is_null());
        let back: VersionReport = serde_json::from_value(value).unwrap();
        assert_eq!(back, report);
    }
}
