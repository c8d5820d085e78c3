//! The signatures and the SLSA provenance of an image in any
//! openshell-transport source, checked with a public key (`build-image
//! verify --key`, the driver's `--supervisor-public-key`).
//!
//! The image's manifests (the top one, and each platform manifest below an
//! index) must each carry a signature that verifies under the key, over
//! that manifest's digest (cosign's simple signing, or a Sigstore bundle of
//! cosign's sign statement), and the top one a SLSA provenance v1
//! attestation, signed by the same key, whose subjects include the top and
//! every platform manifest. Signatures are found as OCI 1.1 referrers (a
//! layout's index.json, a registry's referrers API or tag-schema index).
//!
//! Only the referrers of the image's own manifests are read, never the
//! referrers of a referrer, so a referrer loop cannot recurse; at most
//! [`MAX_CANDIDATES`] signature referrers per manifest are examined, each
//! manifest within the document limit and each payload within
//! [`MAX_PAYLOAD`], so a flood of signatures or an oversized one costs
//! bounded memory and time.

use std::fmt;
use std::io::Read as _;

use crate::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::intoto::SLSA_PROVENANCE_V1;
use crate::{PublicKey, simple_signing};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci_spec::image::{Descriptor, MediaType};
use openshell_contract::digest::sha256_digest;
use openshell_contract::signing::{
    COSIGN_SIG_ARTIFACT_TYPE, COSIGN_SIGN_PREDICATE_TYPE, COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIMPLE_SIGNING_MEDIA_TYPE, SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
};
use openshell_transport::source::{ImageSource, plan, referrer_facts};
use openshell_transport::{ReadLimits, TransportError};
use serde::Serialize;

use crate::bundle::Bundle;

/// Most signature referrers examined per manifest: more are reported and
/// left unread.
pub const MAX_CANDIDATES: usize = 32;

/// Largest signature payload or bundle read, in bytes (cosign's payloads
/// are a few hundred bytes; a provenance with every crate some hundred KiB).
pub const MAX_PAYLOAD: u64 = 4 * 1024 * 1024;

/// What one signature or attestation found proved, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// `cosign-simple-signing`, `sigstore-bundle` or `slsa-provenance`.
    pub kind: String,
    /// The referrer manifest's digest.
    pub referrer: String,
    /// Whether it verified.
    pub ok: bool,
    /// What it proved, when it verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proved: Option<String>,
    /// Why it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The signatures of one manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectReport {
    /// `index`, `manifest` or the platform.
    pub name: String,
    /// Its digest.
    pub digest: String,
    /// Whether a signature verified.
    pub signed: bool,
    /// Every signature and attestation examined.
    pub found: Vec<Found>,
    /// Referrers left unexamined, and similar remarks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The whole signature check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureReport {
    /// Whether every manifest is signed and the provenance checks.
    pub ok: bool,
    /// The key's id (`sha256:` of its DER SubjectPublicKeyInfo).
    pub key_id: String,
    /// The repository the signatures had to claim, if one was known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Per manifest.
    pub subjects: Vec<SubjectReport>,
    /// The provenance attestation that verified, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Found>,
    /// Every reason the check failed, each naming what failed.
    pub failures: Vec<String>,
}

impl fmt::Display for SignatureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "signatures (key {}):", self.key_id)?;
        for subject in &self.subjects {
            let verdict = if subject.signed {
                "signed"
            } else {
                "NOT SIGNED"
            };
            writeln!(f, "  {} {}: {verdict}", subject.name, subject.digest)?;
            for found in &subject.found {
                match (&found.proved, &found.error) {
                    (Some(proved), _) => {
                        writeln!(f, "    ok   {} {}: {proved}", found.kind, found.referrer)?
                    }
                    (_, Some(error)) => {
                        writeln!(f, "    FAIL {} {}: {error}", found.kind, found.referrer)?
                    }
                    _ => {}
                }
            }
            for note in &subject.notes {
                writeln!(f, "    note {note}")?;
            }
        }
        match &self.provenance {
            Some(found) => writeln!(f, "  provenance: {}", found.proved.as_deref().unwrap_or(""))?,
            None => writeln!(f, "  provenance: none verified")?,
        }
        for failure in &self.failures {
            writeln!(f, "  FAIL {failure}")?;
        }
        writeln!(f, "signatures: {}", if self.ok { "ok" } else { "FAILED" })
    }
}

/// Reads a referrer's layer of `media_type` within [`MAX_PAYLOAD`],
/// checking its digest; returns the layer descriptor JSON too.
fn read_layer(
    source: &mut dyn ImageSource,
    manifest: &serde_json::Value,
    media_type: &str,
) -> Result<(serde_json::Value, Vec<u8>), String> {
    let layer = manifest["layers"]
        .as_array()
        .and_then(|layers| layers.iter().find(|layer| layer["mediaType"] == media_type))
        .ok_or_else(|| format!("no layer of media type {media_type}"))?
        .clone();
    let digest = layer["digest"].as_str().ok_or("its layer has no digest")?;
    let size = layer["size"].as_u64().ok_or("its layer has no size")?;
    if size > MAX_PAYLOAD {
        return Err(format!(
            "its {media_type} layer declares {size} bytes, over the {MAX_PAYLOAD}-byte limit for a signature"
        ));
    }
    let parsed: oci_spec::image::Digest = digest
        .parse()
        .map_err(|err| format!("its layer digest {digest:?} is invalid: {err}"))?;
    let descriptor = Descriptor::new(MediaType::Other(media_type.to_string()), size, parsed);
    let mut bytes = Vec::new();
    source
        .open_blob(&descriptor)
        .map_err(|err| format!("could not read its layer {digest}: {err}"))?
        .take(MAX_PAYLOAD + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("could not read its layer {digest}: {err}"))?;
    if bytes.len() as u64 != size || sha256_digest(&bytes) != digest {
        return Err(format!(
            "its layer {digest} does not match its descriptor ({} bytes read, {size} declared)",
            bytes.len()
        ));
    }
    Ok((layer, bytes))
}

struct Context<'a> {
    key: &'a PublicKey,
    identity: Option<&'a str>,
    limits: &'a ReadLimits,
    /// Every manifest of the image: a provenance must name them all.
    all_digests: &'a [String],
}

/// Checks one referrer of `subject`; `None` when it is no signature.
fn check_referrer(
    source: &mut dyn ImageSource,
    context: &Context<'_>,
    subject: &str,
    referrer: &Descriptor,
) -> Option<Found> {
    let digest = referrer.digest().to_string();
    let fail = |kind: &str, error: String| Found {
        kind: kind.to_string(),
        referrer: digest.clone(),
        ok: false,
        proved: None,
        error: Some(error),
    };
    let listed_type = referrer.artifact_type().as_ref().map(ToString::to_string);
    if listed_type
        .as_deref()
        .is_some_and(|t| t != COSIGN_SIG_ARTIFACT_TYPE && t != SIGSTORE_BUNDLE_V03_MEDIA_TYPE)
    {
        return None;
    }
    let bytes = match source.manifest(referrer, context.limits) {
        Ok(bytes) => bytes,
        Err(err) => {
            return Some(fail(
                "signature",
                format!("could not read the referrer: {err}"),
            ));
        }
    };
    if sha256_digest(&bytes) != digest {
        return Some(fail(
            "signature",
            "the referrer manifest does not match its digest".into(),
        ));
    }
    let facts = referrer_facts(&bytes)?;
    let kind = match facts.artifact_type.as_deref() {
        Some(COSIGN_SIG_ARTIFACT_TYPE) => COSIGN_SIG_ARTIFACT_TYPE,
        Some(SIGSTORE_BUNDLE_V03_MEDIA_TYPE) => SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        _ => return None,
    };
    let label = if kind == COSIGN_SIG_ARTIFACT_TYPE {
        "cosign-simple-signing"
    } else {
        "sigstore-bundle"
    };
    if facts.subject.as_deref() != Some(subject) {
        return Some(fail(
            label,
            format!(
                "listed as a referrer of {subject} but its subject is {}",
                facts.subject.as_deref().unwrap_or("missing")
            ),
        ));
    }
    let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Some(fail(label, "the referrer manifest is not JSON".into()));
    };
    let what = format!("signature {digest}");
    if kind == COSIGN_SIG_ARTIFACT_TYPE {
        let (layer, payload) = match read_layer(source, &manifest, COSIGN_SIMPLE_SIGNING_MEDIA_TYPE)
        {
            Ok(found) => found,
            Err(err) => return Some(fail(label, err)),
        };
        let Some(signature) = layer["annotations"][COSIGN_SIGNATURE_ANNOTATION].as_str() else {
            return Some(fail(
                label,
                format!("its layer has no {COSIGN_SIGNATURE_ANNOTATION} annotation"),
            ));
        };
        let Ok(signature) = STANDARD.decode(signature) else {
            return Some(fail(
                label,
                format!("its {COSIGN_SIGNATURE_ANNOTATION} annotation is not base64"),
            ));
        };
        return Some(
            match simple_signing::verify(
                context.key,
                &payload,
                &signature,
                subject,
                context.identity,
                &what,
            ) {
                Ok(parsed) => Found {
                    kind: label.into(),
                    referrer: digest.clone(),
                    ok: true,
                    proved: Some(format!(
                        "signed {} as {}",
                        parsed.critical.image.docker_manifest_digest,
                        parsed.critical.identity.docker_reference
                    )),
                    error: None,
                },
                Err(err) => fail(label, err.to_string()),
            },
        );
    }
    let (_, bundle_bytes) = match read_layer(source, &manifest, SIGSTORE_BUNDLE_V03_MEDIA_TYPE) {
        Ok(found) => found,
        Err(err) => return Some(fail(label, err)),
    };
    let bundle: Bundle = match serde_json::from_slice(&bundle_bytes) {
        Ok(bundle) => bundle,
        Err(err) => {
            return Some(fail(
                label,
                format!("not a Sigstore bundle with a DSSE envelope: {err}"),
            ));
        }
    };
    // The annotation names what the bundle holds before it is verified,
    // so a provenance that fails is reported as the provenance.
    let declared = manifest["annotations"]
        [openshell_contract::signing::BUNDLE_PREDICATE_TYPE_ANNOTATION]
        .as_str()
        .unwrap_or_default();
    let label = if declared == SLSA_PROVENANCE_V1 {
        "slsa-provenance"
    } else {
        label
    };
    let payload = match bundle
        .dsse_envelope
        .verify(context.key, IN_TOTO_PAYLOAD_TYPE, &what)
    {
        Ok(payload) => payload,
        Err(err) => return Some(fail(label, err.to_string())),
    };
    let statement: serde_json::Value = match serde_json::from_slice(&payload) {
        Ok(statement) => statement,
        Err(err) => return Some(fail(label, format!("its statement is not JSON: {err}"))),
    };
    let predicate_type = statement["predicateType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if predicate_type == SLSA_PROVENANCE_V1 {
        let label = "slsa-provenance";
        let checked = crate::intoto::verify_provenance(
            context.key,
            &bundle.dsse_envelope,
            subject,
            &format!("attestation {digest}"),
        );
        return Some(match checked {
            Ok(statement) => {
                let named: Vec<String> = statement
                    .subject
                    .iter()
                    .filter_map(|s| s.digest.get("sha256").map(|h| format!("sha256:{h}")))
                    .collect();
                if let Some(missing) = context.all_digests.iter().find(|d| !named.contains(d)) {
                    fail(
                        label,
                        format!(
                            "the attestation's subjects do not include {missing}, a manifest of this image"
                        ),
                    )
                } else {
                    Found {
                        kind: label.into(),
                        referrer: digest.clone(),
                        ok: true,
                        proved: Some(format!(
                            "SLSA provenance v1 of {} subject(s), builder {}, build type {}",
                            statement.subject.len(),
                            statement.predicate.run_details.builder.id,
                            statement.predicate.build_definition.build_type
                        )),
                        error: None,
                    }
                }
            }
            Err(err) => fail(label, err.to_string()),
        });
    }
    if predicate_type != COSIGN_SIGN_PREDICATE_TYPE {
        return Some(fail(
            label,
            format!("predicate type {predicate_type:?} is neither a signature nor SLSA provenance"),
        ));
    }
    let hex = subject.trim_start_matches("sha256:");
    let covers = statement["subject"]
        .as_array()
        .is_some_and(|subjects| subjects.iter().any(|s| s["digest"]["sha256"] == hex));
    Some(if covers {
        Found {
            kind: label.into(),
            referrer: digest.clone(),
            ok: true,
            proved: Some(format!("signed {subject} (cosign sign statement)")),
            error: None,
        }
    } else {
        fail(
            label,
            format!("the signed statement's subject is not {subject}"),
        )
    })
}

/// Checks cosign v2's tagged manifest `tag` (`.sig` or `.att`) of
/// `subject`: each of its first [`MAX_CANDIDATES`] layers of the expected
/// media type is a signature (or a provenance envelope) to check.
fn check_tag(
    source: &mut dyn ImageSource,
    context: &Context<'_>,
    subject: &str,
    suffix: &str,
) -> Result<Vec<Found>, String> {
    let tag = openshell_contract::signing::cosign_tag(subject, suffix);
    let Some(bytes) = source
        .tagged_manifest(&tag, context.limits)
        .map_err(|err| format!("could not read the tag {tag}: {err}"))?
    else {
        return Ok(Vec::new());
    };
    let name = format!("tag {tag}");
    let manifest: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|err| format!("the manifest tagged {tag} is not JSON: {err}"))?;
    let is_sig = suffix == openshell_contract::signing::COSIGN_SIG_TAG_SUFFIX;
    let wanted = if is_sig {
        COSIGN_SIMPLE_SIGNING_MEDIA_TYPE
    } else {
        openshell_contract::signing::DSSE_ENVELOPE_MEDIA_TYPE
    };
    let kind = if is_sig {
        "cosign-sig-tag"
    } else {
        "slsa-provenance"
    };
    let layers: Vec<serde_json::Value> = manifest["layers"]
        .as_array()
        .map(|layers| {
            layers
                .iter()
                .filter(|layer| layer["mediaType"] == wanted)
                .take(MAX_CANDIDATES)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    for layer in layers {
        let one = serde_json::json!({"layers": [layer.clone()]});
        let fail = |error: String| Found {
            kind: kind.into(),
            referrer: name.clone(),
            ok: false,
            proved: None,
            error: Some(error),
        };
        let payload = match read_layer(source, &one, wanted) {
            Ok((_, payload)) => payload,
            Err(err) => {
                found.push(fail(err));
                continue;
            }
        };
        let what = format!("{name} layer {}", layer["digest"].as_str().unwrap_or("?"));
        if is_sig {
            let signature = layer["annotations"][COSIGN_SIGNATURE_ANNOTATION]
                .as_str()
                .and_then(|text| STANDARD.decode(text).ok());
            let Some(signature) = signature else {
                found.push(fail(format!(
                    "a layer has no base64 {COSIGN_SIGNATURE_ANNOTATION} annotation"
                )));
                continue;
            };
            found.push(
                match simple_signing::verify(
                    context.key,
                    &payload,
                    &signature,
                    subject,
                    context.identity,
                    &what,
                ) {
                    Ok(parsed) => Found {
                        kind: kind.into(),
                        referrer: name.clone(),
                        ok: true,
                        proved: Some(format!(
                            "signed {} as {}",
                            parsed.critical.image.docker_manifest_digest,
                            parsed.critical.identity.docker_reference
                        )),
                        error: None,
                    },
                    Err(err) => fail(err.to_string()),
                },
            );
        } else {
            let envelope: crate::dsse::Envelope = match serde_json::from_slice(&payload) {
                Ok(envelope) => envelope,
                Err(err) => {
                    found.push(fail(format!("not a DSSE envelope: {err}")));
                    continue;
                }
            };
            found.push(
                match crate::intoto::verify_provenance(context.key, &envelope, subject, &what) {
                    Ok(statement) => Found {
                        kind: kind.into(),
                        referrer: name.clone(),
                        ok: true,
                        proved: Some(format!(
                            "SLSA provenance v1 of {} subject(s), builder {}, build type {}",
                            statement.subject.len(),
                            statement.predicate.run_details.builder.id,
                            statement.predicate.build_definition.build_type
                        )),
                        error: None,
                    },
                    Err(err) => fail(err.to_string()),
                },
            );
        }
    }
    Ok(found)
}

/// Checks the signatures and provenance of the image in `source` under
/// `key`. `identity`, when given, is the repository every simple-signing
/// signature must claim.
pub fn check(
    source: &mut dyn ImageSource,
    key: &PublicKey,
    identity: Option<&str>,
    limits: &ReadLimits,
) -> Result<SignatureReport, TransportError> {
    let shape = plan(source, limits)?;
    // The top (index, or the lone manifest) and each platform manifest.
    let mut subjects: Vec<(String, Descriptor)> = Vec::new();
    if let Some(index) = shape.indexes.first() {
        let media_type = MediaType::Other(
            index
                .media_type
                .clone()
                .unwrap_or_else(|| MediaType::ImageIndex.to_string()),
        );
        if let Ok(digest) = index.digest.parse::<oci_spec::image::Digest>() {
            subjects.push((
                "index".into(),
                Descriptor::new(media_type, index.size, digest),
            ));
        }
    }
    for entry in &shape.manifests {
        let (bytes_digest, size) = match (&entry.raw, &entry.expected) {
            (Some(raw), _) => (sha256_digest(raw), raw.len() as u64),
            (None, Some(expected)) => (expected.digest().to_string(), expected.size()),
            (None, None) => continue,
        };
        let name = entry
            .expected
            .as_ref()
            .and_then(|d| d.platform().as_ref())
            .map_or("manifest".to_string(), |p| {
                format!("{}/{}", p.os(), p.architecture())
            });
        if let Ok(digest) = bytes_digest.parse::<oci_spec::image::Digest>() {
            subjects.push((
                name,
                Descriptor::new(MediaType::ImageManifest, size, digest),
            ));
        }
    }
    let all_digests: Vec<String> = subjects
        .iter()
        .map(|(_, d)| d.digest().to_string())
        .collect();
    let context = Context {
        key,
        identity,
        limits,
        all_digests: &all_digests,
    };
    let mut report = SignatureReport {
        ok: false,
        key_id: key.key_id(),
        identity: identity.map(str::to_string),
        subjects: Vec::new(),
        provenance: None,
        failures: Vec::new(),
    };
    let mut provenance_errors = Vec::new();
    for (position, (name, descriptor)) in subjects.iter().enumerate() {
        let digest = descriptor.digest().to_string();
        let mut subject = SubjectReport {
            name: name.clone(),
            digest: digest.clone(),
            signed: false,
            found: Vec::new(),
            notes: Vec::new(),
        };
        match source.referrers(descriptor, limits) {
            Ok(Some(listed)) => {
                let candidates: Vec<&Descriptor> = listed
                    .iter()
                    .filter(|d| {
                        d.artifact_type().as_ref().is_none_or(|t| {
                            let t = t.to_string();
                            t == COSIGN_SIG_ARTIFACT_TYPE || t == SIGSTORE_BUNDLE_V03_MEDIA_TYPE
                        })
                    })
                    .collect();
                if candidates.len() > MAX_CANDIDATES {
                    subject.notes.push(format!(
                        "{} signature referrers listed; examined the first {MAX_CANDIDATES} only",
                        candidates.len()
                    ));
                }
                for referrer in candidates.into_iter().take(MAX_CANDIDATES) {
                    if let Some(found) = check_referrer(source, &context, &digest, referrer) {
                        if found.kind == "slsa-provenance" {
                            if position == 0 && found.ok && report.provenance.is_none() {
                                report.provenance = Some(found.clone());
                            } else if !found.ok {
                                provenance_errors.push(format!(
                                    "attestation {} on {name} {digest}: {}",
                                    found.referrer,
                                    found.error.clone().unwrap_or_default()
                                ));
                            }
                        } else if found.ok {
                            subject.signed = true;
                        }
                        subject.found.push(found);
                    }
                }
            }
            Ok(None) => subject.notes.push(format!(
                "{} cannot hold OCI referrers, so it carries no signature",
                source.describe()
            )),
            Err(err) => subject
                .notes
                .push(format!("could not list the referrers: {err}")),
        }
        // cosign v2's tags, where a registry keeps them (what `cosign sign`
        // v2, Kyverno and containers/image use).
        let mut suffixes = vec![openshell_contract::signing::COSIGN_SIG_TAG_SUFFIX];
        if position == 0 {
            suffixes.push(openshell_contract::signing::COSIGN_ATT_TAG_SUFFIX);
        }
        for suffix in suffixes {
            match check_tag(source, &context, &digest, suffix) {
                Ok(found) => {
                    for found in found {
                        if found.kind == "slsa-provenance" {
                            if found.ok && report.provenance.is_none() {
                                report.provenance = Some(found.clone());
                            } else if !found.ok {
                                provenance_errors.push(format!(
                                    "{} on {name} {digest}: {}",
                                    found.referrer,
                                    found.error.clone().unwrap_or_default()
                                ));
                            }
                        } else if found.ok {
                            subject.signed = true;
                        }
                        subject.found.push(found);
                    }
                }
                Err(err) => subject.notes.push(err),
            }
        }
        if !subject.signed {
            let reasons: Vec<String> = subject
                .found
                .iter()
                .filter(|f| f.kind != "slsa-provenance")
                .filter_map(|f| {
                    f.error
                        .as_ref()
                        .map(|e| format!("{} {}: {e}", f.kind, f.referrer))
                })
                .chain(subject.notes.iter().cloned())
                .collect();
            report.failures.push(if reasons.is_empty() {
                format!("{name} {digest} is not signed: no signature referrer found")
            } else {
                format!(
                    "{name} {digest} has no signature that verifies: {}",
                    reasons.join("; ")
                )
            });
        }
        report.subjects.push(subject);
    }
    if report.provenance.is_none() {
        let top = all_digests.first().cloned().unwrap_or_default();
        report.failures.push(if provenance_errors.is_empty() {
            format!("no SLSA provenance attestation on {top}")
        } else {
            format!(
                "no SLSA provenance attestation verifies: {}",
                provenance_errors.join("; ")
            )
        });
    }
    report.ok = report.failures.is_empty();
    Ok(report)
}

/// Largest public key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Reads a PEM public key (a cosign `.pub`) from `file`.
pub fn read_public_key(file: &std::path::Path) -> Result<PublicKey, PublicKeyFileError> {
    let wrap = |source| PublicKeyFileError::Read {
        file: file.to_path_buf(),
        source,
    };
    let mut text = Vec::new();
    std::fs::File::open(file)
        .map_err(wrap)?
        .take(MAX_KEY_FILE)
        .read_to_end(&mut text)
        .map_err(wrap)?;
    Ok(PublicKey::from_pem(&text, &file.display().to_string())?)
}

/// The `--key` file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PublicKeyFileError {
    /// It could not be read.
    #[error("could not read the public key {}: {source}", .file.display())]
    Read {
        /// The file.
        file: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a P-256 public key.
    #[error(transparent)]
    Key(#[from] crate::KeyError),
}
