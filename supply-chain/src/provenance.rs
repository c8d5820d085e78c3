//! Provenance the image carries besides the binary: who built it from what
//! (the rustc a binary records, the digest of the `Cargo.lock` it was
//! resolved from), and the labels and annotations given on the command
//! line (`--label KEY=VALUE`, `--annotation KEY=VALUE`), checked before any
//! work so a typo is refused with the key at fault named.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::image as oci;
use openshell_contract::annotations;

/// Longest key accepted: a DNS name's length, more than any real key needs.
const MAX_KEY_LENGTH: usize = 253;

/// Prefix of the project's own keys, which build-image computes.
const PROJECT_PREFIX: &str = "dev.openshell.supervisor.";

/// Prefix of the OCI's reserved namespace.
const OCI_PREFIX: &str = "org.opencontainers.";

/// The keys the OCI image spec defines under `org.opencontainers.image.`.
const OCI_PREDEFINED: [&str; 14] = [
    oci::ANNOTATION_CREATED,
    oci::ANNOTATION_AUTHORS,
    oci::ANNOTATION_URL,
    oci::ANNOTATION_DOCUMENTATION,
    oci::ANNOTATION_SOURCE,
    oci::ANNOTATION_VERSION,
    oci::ANNOTATION_REVISION,
    oci::ANNOTATION_VENDOR,
    oci::ANNOTATION_LICENSES,
    oci::ANNOTATION_REF_NAME,
    oci::ANNOTATION_TITLE,
    oci::ANNOTATION_DESCRIPTION,
    oci::ANNOTATION_BASE_IMAGE_DIGEST,
    oci::ANNOTATION_BASE_IMAGE_NAME,
];

/// One `KEY=VALUE` from the command line, its key checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (may be empty).
    pub value: String,
}

/// Why a `KEY=VALUE` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyValueError(String);

impl FromStr for KeyValue {
    type Err = KeyValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((key, value)) = text.split_once('=') else {
            return Err(KeyValueError(format!(
                "{text:?} has no '=': expected KEY=VALUE, e.g. org.opencontainers.image.vendor=NVIDIA"
            )));
        };
        check_key(key).map_err(KeyValueError)?;
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(KeyValueError(format!(
                "the value of {key} has a control character (newline, NUL...): expected one line of text"
            )));
        }
        Ok(Self {
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Checks a label or annotation key: reverse-DNS style (`com.example.key`,
/// letters, digits, `.`, `-`, `_`, `/`, starting and ending with a letter
/// or digit), not in the OCI's reserved namespace unless it is one of the
/// keys the image spec defines, and not one that build-image sets itself.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty: expected KEY=VALUE".into());
    }
    if key.len() > MAX_KEY_LENGTH {
        return Err(format!(
            "the key {key:?} is {} characters long: expected at most {MAX_KEY_LENGTH}",
            key.len()
        ));
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')))
    {
        return Err(format!(
            "the key {key:?} has {bad:?}: expected letters, digits, '.', '-', '_' and '/' (reverse-DNS style, e.g. com.example.team)"
        ));
    }
    let alphanumeric_ends = key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !alphanumeric_ends {
        return Err(format!(
            "the key {key:?} must start and end with a letter or digit"
        ));
    }
    if key == oci::ANNOTATION_REF_NAME {
        return Err(format!(
            "{key} names a tag in an OCI layout's index.json: give tags with --tag"
        ));
    }
    if key.starts_with(OCI_PREFIX) && !OCI_PREDEFINED.contains(&key) {
        return Err(format!(
            "{key} is not a key the OCI image spec defines, and the {OCI_PREFIX} namespace is reserved: expected one of {} (or a key of your own, e.g. com.example.{})",
            OCI_PREDEFINED.join(", "),
            key.rsplit('.').next().unwrap_or(key)
        ));
    }
    if key.starts_with(PROJECT_PREFIX) {
        return Err(format!(
            "{key} is set by build-image from the binary and its build ({PROJECT_PREFIX}* keys are reserved)"
        ));
    }
    Ok(())
}

/// `KEY=VALUE`s as a map, refusing a key given twice (`flag` names the
/// option in the message).
pub fn to_map(pairs: &[KeyValue], flag: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        if let Some(earlier) = map.insert(pair.key.clone(), pair.value.clone()) {
            return Err(format!(
                "{flag} {} is given twice ({}={earlier} and {pair}): give each key once",
                pair.key, pair.key
            ));
        }
    }
    Ok(map)
}

/// The rustc version a Rust binary records in its `.comment` section
/// (`rustc version 1.95.0 (59807616e 2026-04-14)`), as `rustc --version`
/// prints it (`rustc 1.95.0 (59807616e 2026-04-14)`). `None` when the file
/// is not an ELF or has no such record (a C program, a stripped comment).
///
/// Only the section headers and the section are read, not the whole file.
pub fn rustc_version_of(path: &Path) -> Option<String> {
    use object::{Object, ObjectSection};
    let file = std::fs::File::open(path).ok()?;
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    let comment = elf.section_by_name(".comment")?.data().ok()?;
    // A few dozen bytes in practice; a hostile file gets a bounded scan.
    comment
        .get(..comment.len().min(64 * 1024))?
        .split(|byte| *byte == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .find_map(|entry| entry.trim().strip_prefix("rustc version "))
        .map(|version| format!("rustc {version}"))
}

/// The workspace's `Cargo.lock`.
pub fn cargo_lock_path(workspace: &Path) -> PathBuf {
    workspace.join("Cargo.lock")
}

/// sha256 (hex) of the workspace's `Cargo.lock`, or why it could not be read.
pub fn cargo_lock_sha256(workspace: &Path) -> Result<String, std::io::Error> {
    let bytes = std::fs::read(cargo_lock_path(workspace))?;
    Ok(openshell_contract::digest::sha256_hex(&bytes))
}

/// The annotation keys of [`annotations`] that build-image sets from the
/// build, for messages and tests.
pub const COMPUTED_KEYS: [&str; 3] = [
    annotations::BINARY_SHA256,
    annotations::RUSTC_VERSION,
    annotations::CARGO_LOCK_SHA256,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_pairs_parse() {
        let pair: KeyValue = "com.example.team=supply chain=yes".parse().unwrap();
        assert_eq!(pair.key, "com.example.team");
        assert_eq!(pair.value, "supply chain=yes");
        let empty: KeyValue = "org.opencontainers.image.vendor=".parse().unwrap();
        assert_eq!(empty.value, "");
        assert!("a/b_c-d.e=1".parse::<KeyValue>().is_ok());
        assert!(
            "org.opencontainers.image.source=https://x"
                .parse::<KeyValue>()
                .is_ok()
        );
    }

    #[test]
    fn each_bad_key_is_refused_with_a_reason() {
        for (bad, why) in [
            ("novalue", "has no '='"),
            ("=x", "the key is empty"),
            ("with space=x", "has ' '"),
            ("ünïcode=x", "has 'ü'"),
            (".leading=x", "start and end with a letter or digit"),
            ("trailing-=x", "start and end with a letter or digit"),
            ("org.opencontainers.image.ref.name=v1", "--tag"),
            (
                "org.opencontainers.image.sources=x",
                "not a key the OCI image spec defines",
            ),
            ("org.opencontainers.other=x", "reserved"),
            (
                "dev.openshell.supervisor.binary.sha256=00",
                "set by build-image",
            ),
            (
                "dev.openshell.supervisor.rustc.version=1",
                "set by build-image",
            ),
            ("com.example.x=line\nbreak", "control character"),
        ] {
            let err = bad.parse::<KeyValue>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let long = format!("{}=x", "a".repeat(MAX_KEY_LENGTH + 1));
        assert!(
            long.parse::<KeyValue>()
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
    }

    #[test]
    fn computed_keys_are_all_reserved() {
        for key in COMPUTED_KEYS {
            assert!(check_key(key).is_err(), "{key}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let pairs: Vec<KeyValue> = ["a.b=1", "c.d=2", "a.b=3"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect();
        let err = to_map(&pairs, "--label").unwrap_err();
        assert!(err.contains("--label a.b is given twice"), "{err}");
        let map = to_map(&pairs[..2], "--label").unwrap();
        assert_eq!(map["c.d"], "2");
    }

    #[test]
    fn the_rustc_version_is_read_from_a_rust_binary() {
        // This test binary is a Rust program, built by the rustc running
        // the tests: it records that rustc in .comment.
        let me = std::env::current_exe().unwrap();
        let version = rustc_version_of(&me).expect("a rustc record in the test binary");
        assert!(version.starts_with("rustc 1."), "{version}");
        assert_eq!(rustc_version_of(Path::new("/nonexistent")), None);
        let text = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(text.path(), b"not an ELF").unwrap();
        assert_eq!(rustc_version_of(text.path()), None);
    }
}
