//! Parsing the JSON documents of an image (index.json, indexes, manifests,
//! configs) with errors that say which document and where in it: oci-spec's
//! own readers report every failure as "serde failed".

use serde::de::DeserializeOwned;

use crate::TransportError;

/// Parses `bytes` as `T`, naming `document` and the position of the first
/// problem: invalid UTF-8 by byte offset, invalid JSON or a wrong field by
/// line and column.
pub fn parse<T: DeserializeOwned>(document: &str, bytes: &[u8]) -> Result<T, TransportError> {
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
    serde_json::from_str(text).map_err(|err| {
        let kind = match err.classify() {
            serde_json::error::Category::Io => "could not be read",
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Data => "does not have the expected fields",
            serde_json::error::Category::Eof => "ends early",
        };
        malformed(format!(
            "{kind}: {} (line {}, column {})",
            strip_position(&err.to_string()),
            err.line(),
            err.column()
        ))
    })
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

/// Whether a document is an index (by its stated media type, or by having
/// `manifests` and no media type, as older indexes do).
pub fn looks_like_index(descriptor_media_type: Option<&str>, bytes: &[u8]) -> bool {
    if descriptor_media_type.is_some_and(is_index_media_type) {
        return true;
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
    media_type == oci_spec::image::MediaType::ImageIndex.to_string()
        || media_type == DOCKER_MANIFEST_LIST
}

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
