//! Parsing the JSON documents of an image (index.json, indexes, manifests,
//! configs) with errors that say which document and where in it: oci-spec's
//! own readers report every failure as "serde failed".
//!
//! Every document is also held to what Go's decoders would read from it
//! ([`crate::go_json`]): one that Go could read differently (keys equal
//! but for case, duplicates) is refused, as is a manifest that is also an
//! index, or the reverse ([`check_kind`]).

use serde::de::DeserializeOwned;

use crate::TransportError;
use crate::go_json::{self, Schema};

/// Parses `bytes` as the image document `T` (an index, manifest, config or
/// listing), naming `document` and the position of the first problem:
/// invalid UTF-8 by byte offset, invalid JSON or a wrong field by line and
/// column, keys Go would read differently by their path.
pub fn parse<T: DeserializeOwned>(document: &str, bytes: &[u8]) -> Result<T, TransportError> {
    parse_as(Schema::Image, document, bytes)
}

/// [`parse`], for a document whose field names are `schema`'s.
pub fn parse_as<T: DeserializeOwned>(
    schema: Schema,
    document: &str,
    bytes: &[u8],
) -> Result<T, TransportError> {
    let malformed = |detail: String| TransportError::Malformed {
        document: document.to_string(),
        detail,
    };
    let text = std::str::from_utf8(bytes).map_err(|err| {
        malformed(format!(
            "invalid UTF-8 at byte {} (expected a UTF-8 JSON document)",
            err.valid_up_to()
        ))
    })?;
    let located = |kind: &str, err: serde_json::Error| {
        malformed(format!(
            "{kind}: {} (line {}, column {})",
            strip_position(&err.to_string()),
            err.line(),
            err.column()
        ))
    };
    let parsed = serde_json::from_str(text).map_err(|err| {
        let kind = match err.classify() {
            serde_json::error::Category::Io => "could not be read",
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Data => "does not have the expected fields",
            serde_json::error::Category::Eof => "ends early",
        };
        located(kind, err)
    })?;
    go_json::check_keys(text, schema).map_err(|err| located("could be read two ways", err))?;
    Ok(parsed)
}

/// What a document is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image manifest (OCI or Docker schema 2).
    Manifest,
    /// An image index or Docker manifest list.
    Index,
}

/// Refuses a document read as `kind` that could be read as another: a
/// manifest with `manifests`, an index with `config` or `layers` (the OCI
/// rule since CVE-2021-41190, which containerd enforces), a `mediaType`
/// of the other kind, or one that differs from `declared`, the media type
/// its descriptor (or the registry's Content-Type) gives it.
pub fn check_kind(
    document: &str,
    kind: Kind,
    declared: Option<&str>,
    bytes: &[u8],
) -> Result<(), TransportError> {
    let refuse = |detail: String| TransportError::Malformed {
        document: document.to_string(),
        detail,
    };
    // The top-level members, as containerd's `validateMediaType` reads
    // them: keys exactly (`parse` refuses any other spelling Go would
    // match), and a member that is `null` counts as present (Go reads it
    // into a json.RawMessage as the four bytes `null`). A document that is
    // not a JSON object is refused by its parser.
    let Ok(members) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
    else {
        return Ok(());
    };
    let has = |key: &str| members.contains_key(key);
    let stated = members
        .get("mediaType")
        .and_then(serde_json::Value::as_str)
        .filter(|stated| !stated.is_empty());
    if let Some(stated) = stated {
        let other_kind = match kind {
            Kind::Manifest => is_index_media_type(stated),
            Kind::Index => is_manifest_media_type(stated),
        };
        if other_kind {
            return Err(refuse(format!(
                "states media type {stated} but is read as an image {} (expected one of {})",
                kind.noun(),
                kind.media_types().join(", ")
            )));
        }
    }
    if let (Some(stated), Some(declared)) = (stated, declared.filter(|d| !d.is_empty())) {
        if stated != declared {
            return Err(refuse(format!(
                "states media type {stated}, but its descriptor says {declared} (expected the two to agree)"
            )));
        }
    }
    if let Some(declared) = declared.filter(|d| !d.is_empty()) {
        let other_kind = match kind {
            Kind::Manifest => is_index_media_type(declared),
            Kind::Index => is_manifest_media_type(declared),
        };
        if other_kind {
            return Err(refuse(format!(
                "is named with media type {declared} but is read as an image {} (expected one of {})",
                kind.noun(),
                kind.media_types().join(", ")
            )));
        }
    }
    match kind {
        Kind::Manifest if has("manifests") => {
            return Err(refuse(
                "is read as an image manifest but also has `manifests`, which makes it an index to other readers (expected a manifest without `manifests`)".into(),
            ));
        }
        Kind::Index if has("config") || has("layers") => {
            return Err(refuse(format!(
                "is read as an image index but also has `{}`, which makes it a manifest to other readers (expected an index with neither `config` nor `layers`)",
                if has("config") { "config" } else { "layers" }
            )));
        }
        _ => {}
    }
    Ok(())
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Index => "index",
        }
    }

    fn media_types(self) -> [&'static str; 2] {
        match self {
            Self::Manifest => [OCI_MANIFEST, DOCKER_MANIFEST],
            Self::Index => [OCI_INDEX, DOCKER_MANIFEST_LIST],
        }
    }
}

/// serde_json appends " at line L column C" to its messages; the position
/// is given once, by the caller.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

/// The `mediaType` a document states, if it parses far enough to tell.
pub fn stated_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes)
        .ok()
        .and_then(|probe| probe.media_type)
}

/// Whether a document is to be read as an index: by the media type its
/// descriptor gives when there is one (a document that says otherwise is
/// refused by [`check_kind`], not followed), else by its stated media type,
/// or by having `manifests` and no media type, as older indexes do.
pub fn looks_like_index(descriptor_media_type: Option<&str>, bytes: &[u8]) -> bool {
    if let Some(declared) = descriptor_media_type.filter(|declared| !declared.is_empty()) {
        return is_index_media_type(declared);
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|probe| {
        probe.media_type.as_deref().is_some_and(is_index_media_type)
            || (probe.media_type.is_none() && probe.manifests.is_some())
    })
}

/// OCI's image index and Docker's manifest list.
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// OCI's image manifest and Docker's schema 2 manifest.
pub fn is_manifest_media_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// OCI's image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI's image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Serialises a document with sorted object keys.
///
/// oci-spec keeps annotations and labels in `HashMap`s, whose order changes
/// from run to run; going through `serde_json::Value` and sorting every
/// object gives the same bytes, hence the same digest, every time.
pub fn canonical_json<T: serde::Serialize>(document: &T) -> Result<Vec<u8>, serde_json::Error> {
    fn sort(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key, sort(value)))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    serde_json::to_vec(&sort(serde_json::to_value(document)?))
}

/// Docker's manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's image manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::ImageManifest;

    #[test]
    fn a_document_of_one_kind_that_could_be_read_as_the_other_is_refused() {
        let check = |kind, declared, text: &str| {
            check_kind("doc", kind, declared, text.as_bytes())
                .err()
                .map(|err| err.to_string())
        };
        let manifest = format!(r#"{{"mediaType":"{OCI_MANIFEST}","config":{{}},"layers":[]}}"#);
        assert_eq!(check(Kind::Manifest, Some(OCI_MANIFEST), &manifest), None);
        let err = check(Kind::Manifest, None, r#"{"config":{},"manifests":null}"#).unwrap();
        assert!(err.contains("also has `manifests`"), "{err}");
        let err = check(Kind::Index, None, r#"{"manifests":[],"layers":[]}"#).unwrap();
        assert!(err.contains("also has `layers`"), "{err}");
        let err = check(Kind::Index, Some(OCI_INDEX), &manifest).unwrap();
        assert!(
            err.contains(&format!(
                "states media type {OCI_MANIFEST} but is read as an image index"
            )),
            "{err}"
        );
        let err = check(Kind::Manifest, Some(DOCKER_MANIFEST), &manifest).unwrap();
        assert!(
            err.contains(&format!("but its descriptor says {DOCKER_MANIFEST}")),
            "{err}"
        );
        // No media type stated: the descriptor's stands.
        assert_eq!(
            check(Kind::Manifest, Some(DOCKER_MANIFEST), r#"{"layers":[]}"#),
            None
        );
    }

    #[test]
    fn errors_name_the_document_and_the_position() {
        let err = parse::<ImageManifest>(
            "manifest sha256:ab",
            b"{\"schemaVersion\": 2,\n \"config\": \xff}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("manifest sha256:ab: invalid UTF-8 at byte 32"),
            "{err}"
        );
        let err = parse::<ImageManifest>("index.json", b"{\"schemaVersion\": 2,\n  \"config\": }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("index.json: is not valid JSON"), "{err}");
        assert!(err.contains("(line 2, column"), "{err}");
        assert!(!err.contains("serde failed"), "{err}");
        let err = parse::<ImageManifest>("manifest", b"{\"schemaVersion\": \"two\"}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not have the expected fields"), "{err}");
    }
}
