//! Reading an image, whatever transport it lives in.
//!
//! After containers/image: each transport is one small [`ImageSource`] that
//! hands out the top-level manifest or index, and documents and blob
//! streams by descriptor. [`plan`] walks indexes (nested ones too) the same
//! way for all of them, and [`load_manifest`] reads one platform's manifest
//! and config. Layers are never read here: callers stream them with
//! [`ImageSource::open_blob`], so nothing the image declares decides how
//! much memory reading it takes.

use std::io::Read;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::document::{self, Kind, looks_like_index};
use crate::limits::{MAX_INDEX_DEPTH_FLAG, MAX_INDEX_MANIFESTS_FLAG, ReadLimits, read_bounded};
use crate::{TransportError, digest};

/// A place an image can be read from.
pub trait ImageSource: Send {
    /// The source as a transport reference, e.g. `oci:DIR:TAG`.
    fn describe(&self) -> String;

    /// The top-level manifest or index: the descriptor the transport holds
    /// for it (when it holds one) and its bytes, read within `limits`.
    fn top(&mut self, limits: &ReadLimits)
    -> Result<(Option<Descriptor>, Vec<u8>), TransportError>;

    /// A blob's bytes as a stream. The caller checks the digest.
    fn open_blob(
        &mut self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError>;

    /// A manifest or index named by an index entry, read within `limits`.
    fn manifest(
        &mut self,
        descriptor: &Descriptor,
        limits: &ReadLimits,
    ) -> Result<Vec<u8>, TransportError> {
        read_document(
            self,
            &format!("manifest {}", descriptor.digest()),
            descriptor,
            limits,
        )
    }

    /// Whether media types come from the image (false when the transport
    /// has none and they were inferred, as for docker-archive).
    fn has_media_types(&self) -> bool {
        true
    }

    /// The manifests whose `subject` is `subject` (OCI 1.1 referrers: an
    /// SBOM, a signature), as descriptors carrying their `artifactType`
    /// where the transport knows it. `Ok(None)` when the transport cannot
    /// hold referrers at all (docker-archive).
    fn referrers(
        &mut self,
        _subject: &Descriptor,
        _limits: &ReadLimits,
    ) -> Result<Option<Vec<Descriptor>>, TransportError> {
        Ok(None)
    }

    /// The bytes of a manifest kept under `tag` beside the image, in its
    /// repository (cosign v2's `sha256-<hex>.sig` and `.att`), read within
    /// `limits`; `Ok(None)` when there is no such tag, or the transport
    /// keeps no such tags (layouts and archives).
    fn tagged_manifest(
        &mut self,
        _tag: &str,
        _limits: &ReadLimits,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(None)
    }
}

/// What a referrer manifest says about itself: the manifest it refers to
/// and its artifact type (`artifactType`, else its config's media type, as
/// the distribution spec has registries do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerFacts {
    /// Digest of its `subject`, when it has one.
    pub subject: Option<String>,
    /// Its artifact type.
    pub artifact_type: Option<String>,
}

/// Reads the `subject` and artifact type of a manifest's bytes; `None` when
/// they are not a JSON object.
pub fn referrer_facts(bytes: &[u8]) -> Option<ReferrerFacts> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let object = value.as_object()?;
    let text = |value: Option<&serde_json::Value>| {
        value
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    Some(ReferrerFacts {
        subject: text(
            object
                .get("subject")
                .and_then(|subject| subject.get("digest")),
        ),
        artifact_type: text(object.get("artifactType")).or_else(|| {
            text(
                object
                    .get("config")
                    .and_then(|config| config.get("mediaType")),
            )
        }),
    })
}

/// Reads a small blob (a manifest, a config) within the document limit,
/// refusing a declared size over it before reading anything.
pub fn read_document<S: ImageSource + ?Sized>(
    source: &mut S,
    what: &str,
    descriptor: &Descriptor,
    limits: &ReadLimits,
) -> Result<Vec<u8>, TransportError> {
    limits.check_document(what, descriptor.size())?;
    let description = source.describe();
    let mut reader = source.open_blob(descriptor)?;
    read_bounded(&mut reader, what, limits, |err| {
        TransportError::Missing(format!("{description}: could not read {what}: {err}"))
    })
}

/// An index met on the way down, with what was found about it.
#[derive(Debug, Clone)]
pub struct IndexFacts {
    /// The descriptor naming it, when the transport holds one.
    pub expected: Option<Descriptor>,
    /// Where it sits: `index` for the top, `index sha256:... > index
    /// sha256:...` below.
    pub path: String,
    /// Digest of its bytes, in the algorithm its descriptor uses (sha256
    /// when none).
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// The media type it states.
    pub media_type: Option<String>,
    /// Whether the bytes match the descriptor (digest and size), or why not.
    pub matches_descriptor: Result<(), String>,
}

/// One platform manifest to verify.
#[derive(Debug, Clone)]
pub struct ManifestEntry {
    /// The descriptor naming it (index entry, layout entry, or pin).
    pub expected: Option<Descriptor>,
    /// Its bytes, when the top itself is this manifest.
    pub raw: Option<Vec<u8>>,
    /// The indexes above it, for messages.
    pub path: String,
}

/// The shape of an image: its indexes, and the manifests below them.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// The source, as a transport reference.
    pub source: String,
    /// The top-level index and those nested in it, top first.
    pub indexes: Vec<IndexFacts>,
    /// The platform manifests, in the order the indexes list them.
    pub manifests: Vec<ManifestEntry>,
    /// Whether media types came from the image itself.
    pub has_media_types: bool,
    /// Remarks (entries left out, such as attestations).
    pub notes: Vec<String>,
}

/// Reads the top of `source` and walks its indexes, nested ones included,
/// within `limits`.
pub fn plan(
    source: &mut dyn ImageSource,
    limits: &ReadLimits,
) -> Result<ImagePlan, TransportError> {
    let name = source.describe();
    let (top_descriptor, top_bytes) = source.top(limits)?;
    let mut plan = ImagePlan {
        source: name,
        indexes: Vec::new(),
        manifests: Vec::new(),
        has_media_types: source.has_media_types(),
        notes: Vec::new(),
    };
    let top_type = top_descriptor
        .as_ref()
        .map(|descriptor| descriptor.media_type().to_string());
    if looks_like_index(top_type.as_deref(), &top_bytes) {
        let mut visited = 0usize;
        walk_index(
            source,
            limits,
            &mut plan,
            top_descriptor,
            top_bytes,
            "index".to_string(),
            0,
            &mut visited,
        )?;
    } else {
        plan.manifests.push(ManifestEntry {
            expected: top_descriptor,
            raw: Some(top_bytes),
            path: String::new(),
        });
    }
    Ok(plan)
}

#[allow(clippy::too_many_arguments)]
fn walk_index(
    source: &mut dyn ImageSource,
    limits: &ReadLimits,
    plan: &mut ImagePlan,
    expected: Option<Descriptor>,
    bytes: Vec<u8>,
    path: String,
    depth: usize,
    visited: &mut usize,
) -> Result<(), TransportError> {
    let what = match &expected {
        Some(descriptor) => format!("{} {path} {}", plan.source, descriptor.digest()),
        None => format!("{} {path}", plan.source),
    };
    // The kind first: an index under a manifest's media type is refused
    // for that, not for the fields it then lacks.
    let declared = expected
        .as_ref()
        .map(|descriptor| descriptor.media_type().to_string());
    document::check_kind(&what, Kind::Index, declared.as_deref(), &bytes)?;
    let index: ImageIndex = document::parse(&what, &bytes)?;
    let (digest, matches_descriptor) = match &expected {
        Some(descriptor) => match digest::check_bytes(&path, descriptor, &bytes) {
            Ok(()) => (descriptor.digest().to_string(), Ok(())),
            Err(err) => (
                digest::digest_like(&path, descriptor.digest(), &bytes)
                    .unwrap_or_else(|_| openshell_contract::digest::sha256_digest(&bytes)),
                Err(err.to_string()),
            ),
        },
        None => (openshell_contract::digest::sha256_digest(&bytes), Ok(())),
    };
    plan.indexes.push(IndexFacts {
        expected,
        path: path.clone(),
        digest: digest.clone(),
        size: bytes.len() as u64,
        media_type: index.media_type().as_ref().map(ToString::to_string),
        matches_descriptor,
    });
    drop(bytes);
    *visited += index.manifests().len();
    if *visited > limits.max_index_manifests {
        return Err(TransportError::Limit {
            what: format!(
                "the number of manifests listed by the indexes of {}",
                plan.source
            ),
            actual: format!("at least {visited}"),
            limit: limits.max_index_manifests.to_string(),
            flag: MAX_INDEX_MANIFESTS_FLAG,
        });
    }
    for entry in index.manifests() {
        // Build attestations ride in indexes as "unknown/unknown".
        if entry
            .platform()
            .as_ref()
            .is_some_and(|platform| platform.os().to_string() == "unknown")
        {
            plan.notes.push(format!(
                "skipped {} (platform unknown/unknown: an attestation)",
                entry.digest()
            ));
            continue;
        }
        let entry_type = entry.media_type().to_string();
        let is_index = document::is_index_media_type(&entry_type);
        if is_index || entry_type.is_empty() {
            let child = source.manifest(entry, limits)?;
            if is_index || looks_like_index(None, &child) {
                if depth + 1 > limits.max_index_depth {
                    return Err(TransportError::Limit {
                        what: format!(
                            "the nesting of indexes in {} ({path} > index {})",
                            plan.source,
                            entry.digest()
                        ),
                        actual: format!("{} levels", depth + 1),
                        limit: limits.max_index_depth.to_string(),
                        flag: MAX_INDEX_DEPTH_FLAG,
                    });
                }
                walk_index(
                    source,
                    limits,
                    plan,
                    Some(entry.clone()),
                    child,
                    format!("{path} > index {}", entry.digest()),
                    depth + 1,
                    visited,
                )?;
                continue;
            }
            plan.manifests.push(ManifestEntry {
                expected: Some(entry.clone()),
                raw: Some(child),
                path: path.clone(),
            });
            continue;
        }
        plan.manifests.push(ManifestEntry {
            expected: Some(entry.clone()),
            raw: None,
            path: path.clone(),
        });
    }
    Ok(())
}

/// A config as read: what was expected and what came.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The descriptor in the manifest.
    pub expected: Descriptor,
    /// Whether it could be read (within the limits), or why not.
    pub read: Result<(), String>,
    /// Whether its bytes match the descriptor, or why not.
    pub matches_descriptor: Result<(), String>,
    /// Parsed, or why not.
    pub parsed: Result<ImageConfiguration, String>,
}

/// One platform's manifest and its config.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// The descriptor naming it (index entry, layout entry, or pin).
    pub expected: Option<Descriptor>,
    /// The indexes above it, for messages.
    pub path: String,
    /// Its bytes.
    pub raw: Vec<u8>,
    /// The digest of its bytes (in its descriptor's algorithm).
    pub digest: String,
    /// Parsed, or why it would not parse.
    pub parsed: Result<ImageManifest, String>,
    /// Its config, when the manifest parsed.
    pub config: Option<LoadedConfig>,
}

impl LoadedManifest {
    /// The platform the index (or layout entry) gives it.
    pub fn platform(&self) -> Option<&oci_spec::image::Platform> {
        self.expected
            .as_ref()
            .and_then(|descriptor| descriptor.platform().as_ref())
    }
}

/// Reads one platform's manifest and config within `limits`.
pub fn load_manifest(
    source: &mut dyn ImageSource,
    entry: &ManifestEntry,
    limits: &ReadLimits,
) -> Result<LoadedManifest, TransportError> {
    let raw = match (&entry.raw, &entry.expected) {
        (Some(raw), _) => raw.clone(),
        (None, Some(expected)) => source.manifest(expected, limits)?,
        (None, None) => {
            return Err(TransportError::Missing(format!(
                "{}: a manifest with neither bytes nor descriptor",
                source.describe()
            )));
        }
    };
    let digest = match &entry.expected {
        Some(expected) => digest::digest_like("the manifest", expected.digest(), &raw)?,
        None => openshell_contract::digest::sha256_digest(&raw),
    };
    let what = format!("{} manifest {digest}", source.describe());
    let declared = entry
        .expected
        .as_ref()
        .map(|descriptor| descriptor.media_type().to_string());
    // The kind first, as for indexes.
    let parsed = document::check_kind(&what, Kind::Manifest, declared.as_deref(), &raw)
        .and_then(|()| document::parse::<ImageManifest>(&what, &raw))
        .map_err(|err| err.to_string());
    let config = match &parsed {
        Ok(manifest) => {
            let expected = manifest.config().clone();
            let what = format!("config {}", expected.digest());
            let document_name = format!("{} {what}", source.describe());
            let config = match read_document(source, &what, &expected, limits) {
                Ok(bytes) => LoadedConfig {
                    matches_descriptor: digest::check_bytes("the config", &expected, &bytes)
                        .map_err(|err| err.to_string()),
                    parsed: document::parse::<ImageConfiguration>(&document_name, &bytes)
                        .map_err(|err| err.to_string()),
                    read: Ok(()),
                    expected,
                },
                Err(err) => LoadedConfig {
                    read: Err(err.to_string()),
                    matches_descriptor: Err("not read".into()),
                    parsed: Err("not read".into()),
                    expected,
                },
            };
            Some(config)
        }
        Err(_) => None,
    };
    Ok(LoadedManifest {
        expected: entry.expected.clone(),
        path: entry.path.clone(),
        raw,
        digest,
        parsed,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_facts_read_subject_and_artifact_type() {
        let facts = referrer_facts(
            br#"{"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"},"subject":{"digest":"sha256:aa"}}"#,
        )
        .unwrap();
        assert_eq!(facts.subject.as_deref(), Some("sha256:aa"));
        assert_eq!(
            facts.artifact_type.as_deref(),
            Some("application/spdx+json")
        );
        // Without artifactType, the config's media type stands for it.
        let facts =
            referrer_facts(br#"{"config":{"mediaType":"application/vnd.example+json"}}"#).unwrap();
        assert_eq!(facts.subject, None);
        assert_eq!(
            facts.artifact_type.as_deref(),
            Some("application/vnd.example+json")
        );
        assert_eq!(referrer_facts(b"[1]"), None);
        assert_eq!(referrer_facts(b"not json"), None);
    }
}
