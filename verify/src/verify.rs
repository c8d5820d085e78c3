//! One set of checks over an image from any source: will it resolve at the
//! image-volume mount and run as the supervisor?
//!
//! Verification reads the image in two steps. First the facts: the shape
//! of the image (indexes, nested ones too), then, one platform at a time,
//! its manifest and config (bounded reads) and its layers, streamed through
//! the digest, the decompressor and the [`Filesystem`] model. Then the
//! checks: each is one function over those facts, with the checks it needs
//! declared beside it ([`PLATFORM_CHECKS`]); a check whose prerequisite did
//! not pass is skipped, and says which one.
//!
//! Every check has a stable name, used in the human report and in `--json`;
//! every failure says what was found and what was expected.

use std::fmt;
use std::io::Read;
use std::sync::{Arc, OnceLock};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest, MediaType};
use openshell_contract::annotations::BINARY_SHA256;
use openshell_contract::digest::{Digester, DigestingReader};
use openshell_contract::elf::ElfInfo;
use openshell_contract::platform::host_architecture;
use openshell_contract::sbom::SBOM_ARTIFACT_TYPES;
use openshell_contract::{
    BINARY_NAME, IMAGE_BINARY_PATH, IMAGE_ENTRYPOINT, LAYER_BINARY_PATH, MOUNT_PATH,
    path_under_mount,
};
use openshell_transport::digest::{check_bytes, digester_for};
use openshell_transport::document;
use openshell_transport::document::{DOCKER_CONFIG, DOCKER_MANIFEST, is_index_media_type};
use openshell_transport::source::{
    self, IndexFacts, LoadedManifest, ManifestEntry, referrer_facts,
};
use openshell_transport::{ImageSource, ReadLimits, TransportError};
use serde::Serialize;

use crate::filesystem::{FileContents, Filesystem, Limits, Node, NodeKind};

/// The names of the checks, in the order they are reported.
pub mod checks {
    /// The manifest matches the descriptor naming it and parses.
    pub const MANIFEST: &str = "manifest";
    /// Each blob's digest and size against its descriptor, and each layer's
    /// uncompressed digest against the config's diff IDs.
    pub const BLOB_DIGESTS: &str = "blob-digests";
    /// Media types of index, manifest, config and layers.
    pub const MEDIA_TYPES: &str = "media-types";
    /// The config parses.
    pub const CONFIG: &str = "config";
    /// Config os/architecture against the index platform and the ELF machine.
    pub const PLATFORM: &str = "platform";
    /// Every layer reads as a tar and applies in order, within the limits.
    pub const FILESYSTEM: &str = "filesystem";
    /// No absolute paths, `..`, device nodes or links leaving the image.
    pub const UNSAFE_ENTRIES: &str = "unsafe-entries";
    /// The binary sits at `/openshell-sandbox`.
    pub const BINARY_LOCATION: &str = "binary-location";
    /// It is a regular file, not a link.
    pub const BINARY_FILE_TYPE: &str = "binary-file-type";
    /// Owned by 0:0.
    pub const BINARY_OWNER: &str = "binary-owner";
    /// Executable by everyone, not setuid/setgid, not world-writable.
    pub const BINARY_MODE: &str = "binary-mode";
    /// A complete static ELF.
    pub const STATIC_ELF: &str = "static-elf";
    /// Entrypoint `["/openshell-sandbox"]`.
    pub const ENTRYPOINT: &str = "entrypoint";
    /// The binary's sha256 matches the image annotation.
    pub const ANNOTATION_SHA256: &str = "annotation-sha256";
    /// `version --json` of the extracted binary reports the same digest.
    pub const RUN_VERSION: &str = "run-version";
    /// The SBOMs that refer to the manifest (OCI 1.1 referrers): their
    /// manifests, subjects and documents.
    pub const SBOM: &str = "sbom";
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Nothing wrong.
    Passed,
    /// Something wrong; see the details.
    Failed,
    /// Not run; the details say why.
    Skipped,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Stable name (see [`checks`]).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Failures, or why it was skipped, or notes.
    pub details: Vec<String>,
}

/// The checks of one platform's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformReport {
    /// `os/arch` from the index or the config, when known.
    pub platform: Option<String>,
    /// Digest of its manifest.
    pub manifest_digest: String,
    /// The indexes above it (`index > index sha256:...`), when nested.
    pub index_path: String,
    /// Where the binary appears in a sandbox, when it is where it belongs.
    pub binary_in_sandbox: Option<String>,
    /// sha256 of the binary, when found.
    pub binary_sha256: Option<String>,
    /// The SBOM attached to this manifest, when one was found valid.
    pub sbom: Option<SbomReport>,
    /// Results, in the order of [`PLATFORM_CHECKS`].
    pub checks: Vec<CheckResult>,
}

/// An SBOM found attached to a platform manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SbomReport {
    /// Digest of the referrer (artifact) manifest.
    pub referrer_digest: String,
    /// Its `artifactType` (`application/spdx+json`...).
    pub artifact_type: String,
    /// Digest of the SBOM document.
    pub sbom_digest: String,
    /// Size of the SBOM document in bytes.
    pub sbom_size: u64,
    /// What the document is (`SPDX-2.3, 57 packages`).
    pub summary: String,
}

/// The checks of one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexReport {
    /// Where it sits (`index`, or `index > index sha256:...`).
    pub path: String,
    /// Its digest.
    pub digest: String,
    /// Results.
    pub checks: Vec<CheckResult>,
}

/// The whole verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// What was verified.
    pub source: String,
    /// Whether every check passed or was skipped.
    pub ok: bool,
    /// Digest of the top-level index, for a multi-platform image.
    pub index_digest: Option<String>,
    /// Checks of the top-level index (its digest and media type).
    pub index_checks: Vec<CheckResult>,
    /// Checks of indexes nested in it.
    pub nested_indexes: Vec<IndexReport>,
    /// One report per platform.
    pub platforms: Vec<PlatformReport>,
    /// Remarks about the source (skipped index entries).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Every failed check as `name: detail` lines, across platforms.
    pub fn failures(&self) -> Vec<String> {
        let platform_checks = self
            .platforms
            .iter()
            .flat_map(|report| report.checks.iter());
        let nested = self
            .nested_indexes
            .iter()
            .flat_map(|report| report.checks.iter());
        self.index_checks
            .iter()
            .chain(nested)
            .chain(platform_checks)
            .filter(|check| check.outcome == Outcome::Failed)
            .flat_map(|check| {
                check
                    .details
                    .iter()
                    .map(move |detail| format!("{}: {detail}", check.name))
            })
            .collect()
    }

    /// The result of check `name` for the platform at `index`.
    pub fn check(&self, index: usize, name: &str) -> Option<&CheckResult> {
        self.platforms
            .get(index)?
            .checks
            .iter()
            .find(|check| check.name == name)
    }
}

fn write_check(f: &mut fmt::Formatter<'_>, check: &CheckResult) -> fmt::Result {
    let label = match check.outcome {
        Outcome::Passed => "ok  ",
        Outcome::Failed => "FAIL",
        Outcome::Skipped => "skip",
    };
    match check.details.as_slice() {
        [] => writeln!(f, "  {label} {}", check.name),
        [only] => writeln!(f, "  {label} {}: {only}", check.name),
        many => {
            writeln!(f, "  {label} {}:", check.name)?;
            for detail in many {
                writeln!(f, "         - {detail}")?;
            }
            Ok(())
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verify {}", self.source)?;
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        if let Some(digest) = &self.index_digest {
            writeln!(f, "index {digest}")?;
            for check in &self.index_checks {
                write_check(f, check)?;
            }
        }
        for nested in &self.nested_indexes {
            writeln!(f, "{} {}", nested.path, nested.digest)?;
            for check in &nested.checks {
                write_check(f, check)?;
            }
        }
        for platform in &self.platforms {
            writeln!(
                f,
                "{} {}",
                platform.platform.as_deref().unwrap_or("image"),
                platform.manifest_digest
            )?;
            for check in &platform.checks {
                write_check(f, check)?;
            }
            if let Some(path) = &platform.binary_in_sandbox {
                writeln!(f, "  the binary appears in a sandbox at {path}")?;
            }
        }
        if self.ok {
            writeln!(f, "result: all checks passed")
        } else {
            writeln!(f, "result: {} failure(s)", self.failures().len())
        }
    }
}

/// What to check beyond the image itself, and within which bounds.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Where the image is mounted in the sandbox.
    pub mount_path: String,
    /// Run the extracted binary's `version --json`: on this host, or under
    /// qemu-user for another architecture when it is installed.
    pub run: bool,
    /// Bounds on the documents read.
    pub limits: ReadLimits,
    /// Bounds on the layers applied (binary size, uncompressed size,
    /// entries).
    pub tree_limits: Limits,
    /// Fail (rather than skip) the sbom check of a manifest without a valid
    /// SBOM referrer.
    pub require_sbom: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            mount_path: MOUNT_PATH.to_string(),
            run: false,
            limits: ReadLimits::default(),
            tree_limits: Limits::default(),
            require_sbom: false,
        }
    }
}

/// What the verifier may already know about a layer, sparing work.
#[derive(Debug, Clone)]
pub enum KnownLayer {
    /// Nothing: stream, check and decompress it.
    Unknown,
    /// Its uncompressed tar is at hand (built in this run), with the
    /// digests computed from those very bytes while it was compressed.
    Tar {
        /// The tar.
        tar: Arc<Vec<u8>>,
        /// `sha256:...` of the tar.
        diff_id: String,
        /// The tree this tar makes on its own, when already read.
        applied: Option<Arc<Filesystem>>,
    },
    /// It was verified when it was written by an earlier run (and its blob
    /// hashed again in this one); its contents are not read again.
    VerifiedEarlier(String),
}

/// Knowledge about layers that a caller already has.
pub trait KnownLayers {
    /// What is known about the layer `descriptor` names.
    fn known(&self, descriptor: &Descriptor) -> KnownLayer;
}

/// Knows nothing: every layer is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingKnown;

impl KnownLayers for NothingKnown {
    fn known(&self, _descriptor: &Descriptor) -> KnownLayer {
        KnownLayer::Unknown
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPES: [&str; 6] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

/// Verifies the image `source` holds: its shape, then each platform.
///
/// Fails only when the image cannot be read at all (no top-level manifest,
/// an index over a limit); everything else is a check in the report.
pub fn verify(
    source: &mut dyn ImageSource,
    known: &dyn KnownLayers,
    options: &VerifyOptions,
) -> Result<VerifyReport, TransportError> {
    let plan = source::plan(source, &options.limits)?;
    let mut report = VerifyReport {
        source: plan.source.clone(),
        ok: true,
        index_digest: None,
        index_checks: Vec::new(),
        nested_indexes: Vec::new(),
        platforms: Vec::new(),
        notes: plan.notes.clone(),
    };
    for (position, index) in plan.indexes.iter().enumerate() {
        let checks = index_checks(index);
        if position == 0 {
            report.index_digest = Some(index.digest.clone());
            report.index_checks = checks;
        } else {
            report.nested_indexes.push(IndexReport {
                path: index.path.clone(),
                digest: index.digest.clone(),
                checks,
            });
        }
    }
    for entry in &plan.manifests {
        // One platform at a time: its documents, layers and tree are dropped
        // before the next is read.
        let facts = gather(source, known, entry, plan.has_media_types, options);
        report.platforms.push(run_checks(&facts, options));
    }
    if report.platforms.is_empty() {
        report
            .notes
            .push("the image has no platform manifests".into());
        report.ok = false;
    }
    report.ok = report.ok && report.failures().is_empty();
    Ok(report)
}

fn index_checks(index: &IndexFacts) -> Vec<CheckResult> {
    let mut digests = CheckResult {
        name: checks::BLOB_DIGESTS.into(),
        outcome: Outcome::Passed,
        details: Vec::new(),
    };
    if let Err(err) = &index.matches_descriptor {
        digests.outcome = Outcome::Failed;
        digests.details.push(err.clone());
    }
    let mut media = CheckResult {
        name: checks::MEDIA_TYPES.into(),
        outcome: Outcome::Passed,
        details: Vec::new(),
    };
    match &index.media_type {
        Some(media_type) if is_index_media_type(media_type) => {}
        Some(other) => {
            media.outcome = Outcome::Failed;
            media.details.push(format!(
                "the index has media type {other}, expected {}",
                MediaType::ImageIndex
            ));
        }
        None => media.details.push("the index states no mediaType".into()),
    }
    vec![digests, media]
}

/// One layer as read.
#[derive(Debug)]
enum LayerRead {
    /// Streamed: the blob's digest and size, and the tar's digest (when the
    /// stream could be decompressed to its end).
    Read {
        digest: String,
        size: u64,
        diff_id: Option<String>,
    },
    /// Built in this run: its digests are those computed while building.
    Built { diff_id: String },
    /// Checked by an earlier run.
    Earlier(String),
    /// Could not be read.
    Failed(String),
}

/// Everything the checks of one platform look at.
struct Facts {
    /// The manifest, or why it could not be read.
    manifest: Result<LoadedManifest, String>,
    has_media_types: bool,
    /// The descriptors of the layers (from the parsed manifest).
    layers: Vec<(Descriptor, LayerRead)>,
    /// The tree after all layers, or why it is not complete.
    tree: Result<Arc<Filesystem>, String>,
    /// The ELF facts of the binary at its path, computed once.
    elf: OnceLock<Result<ElfInfo, String>>,
    /// The manifest's digest as text (for the report).
    manifest_digest: String,
    /// The indexes above.
    index_path: String,
    /// The platform its index entry gives.
    index_platform: Option<oci_spec::image::Platform>,
    /// The SBOMs that refer to the manifest.
    sbom: SbomFacts,
}

/// The SBOMs attached to a platform manifest, as found.
#[derive(Debug)]
enum SbomFacts {
    /// Not looked for: the manifest could not be read.
    NotRead,
    /// The transport cannot hold referrers.
    Unsupported(String),
    /// Listing the referrers failed.
    ListFailed(String),
    /// The SBOM referrers found (maybe none), and how many referrers of
    /// other kinds there are.
    Listed {
        sboms: Vec<SbomFound>,
        others: usize,
    },
}

/// One SBOM referrer, read and checked.
#[derive(Debug)]
struct SbomFound {
    /// What is wrong with it.
    failures: Vec<String>,
    /// When nothing is: what it holds.
    report: Option<SbomReport>,
}

impl Facts {
    fn parsed(&self) -> Option<&ImageManifest> {
        self.manifest
            .as_ref()
            .ok()
            .and_then(|manifest| manifest.parsed.as_ref().ok())
    }

    fn config(&self) -> Option<&ImageConfiguration> {
        self.manifest
            .as_ref()
            .ok()
            .and_then(|manifest| manifest.config.as_ref())
            .and_then(|config| config.parsed.as_ref().ok())
    }

    fn tree(&self) -> Option<&Filesystem> {
        self.tree.as_ref().ok().map(|tree| tree.as_ref())
    }

    fn binary_node(&self) -> Option<&Node> {
        self.tree()?.nodes.get(LAYER_BINARY_PATH)
    }

    fn binary_contents(&self) -> Option<&Arc<FileContents>> {
        match &self.binary_node()?.kind {
            NodeKind::File { contents, .. } => contents.as_ref(),
            _ => None,
        }
    }

    fn elf(&self) -> Option<&Result<ElfInfo, String>> {
        let contents = self.binary_contents()?;
        Some(
            self.elf
                .get_or_init(|| contents.inspect_elf().map_err(|err| err.to_string())),
        )
    }

    fn elf_architecture(&self) -> Option<&'static str> {
        match self.elf()? {
            Ok(info) => info.oci_architecture(),
            Err(_) => None,
        }
    }
}

fn gather(
    source: &mut dyn ImageSource,
    known: &dyn KnownLayers,
    entry: &ManifestEntry,
    has_media_types: bool,
    options: &VerifyOptions,
) -> Facts {
    let manifest =
        source::load_manifest(source, entry, &options.limits).map_err(|err| err.to_string());
    let manifest_digest = match &manifest {
        Ok(manifest) => manifest.digest.clone(),
        Err(_) => entry
            .expected
            .as_ref()
            .map(|descriptor| descriptor.digest().to_string())
            .unwrap_or_default(),
    };
    let mut facts = Facts {
        manifest,
        has_media_types,
        layers: Vec::new(),
        tree: Err("the manifest could not be read".into()),
        elf: OnceLock::new(),
        manifest_digest,
        index_path: entry.path.clone(),
        index_platform: entry
            .expected
            .as_ref()
            .and_then(|descriptor| descriptor.platform().clone()),
        sbom: SbomFacts::NotRead,
    };
    facts.sbom = gather_sbom(source, &facts, &options.limits);
    let Some(layers) = facts.parsed().map(|parsed| parsed.layers().clone()) else {
        return facts;
    };
    let mut tree = Arc::new(Filesystem::new(options.tree_limits));
    let mut complete: Result<(), String> = Ok(());
    for (index, descriptor) in layers.iter().enumerate() {
        let read = match known.known(descriptor) {
            KnownLayer::VerifiedEarlier(reason) => {
                if complete.is_ok() {
                    complete = Err(format!("layer {index}: {reason}"));
                }
                LayerRead::Earlier(reason)
            }
            KnownLayer::Tar {
                tar,
                diff_id,
                applied,
            } => {
                if complete.is_ok() {
                    match applied {
                        // The builder read its own bottom layer into a tree
                        // while it compressed it: the same reading, done.
                        Some(applied) if index == 0 => tree = applied,
                        _ => {
                            if let Err(err) =
                                Arc::make_mut(&mut tree).apply_layer_shared(index, &tar)
                            {
                                complete = Err(err.to_string());
                            }
                        }
                    }
                }
                LayerRead::Built { diff_id }
            }
            KnownLayer::Unknown => {
                let apply = complete.is_ok();
                let (read, applied) = stream_layer(
                    source,
                    index,
                    descriptor,
                    apply.then(|| Arc::make_mut(&mut tree)),
                );
                if apply {
                    if let Err(err) = applied {
                        complete = Err(err);
                    }
                }
                read
            }
        };
        facts.layers.push((descriptor.clone(), read));
    }
    facts.tree = complete.map(|()| tree);
    facts
}

/// Lists the referrers of the platform manifest and reads those that are
/// SBOMs.
fn gather_sbom(source: &mut dyn ImageSource, facts: &Facts, limits: &ReadLimits) -> SbomFacts {
    let Ok(manifest) = &facts.manifest else {
        return SbomFacts::NotRead;
    };
    let Ok(digest) = manifest.digest.parse::<oci_spec::image::Digest>() else {
        return SbomFacts::NotRead;
    };
    let media_type = manifest
        .expected
        .as_ref()
        .map_or(MediaType::ImageManifest, |expected| {
            expected.media_type().clone()
        });
    let subject = Descriptor::new(media_type, manifest.raw.len() as u64, digest);
    let listed = match source.referrers(&subject, limits) {
        Ok(Some(listed)) => listed,
        Ok(None) => {
            return SbomFacts::Unsupported(format!(
                "{} cannot hold OCI referrers, so no SBOM can be attached here (push to a registry or write an OCI layout to keep it)",
                source.describe()
            ));
        }
        Err(err) => return SbomFacts::ListFailed(err.to_string()),
    };
    let mut sboms = Vec::new();
    let mut others = 0;
    for referrer in &listed {
        let declared = referrer.artifact_type().as_ref().map(ToString::to_string);
        let is_sbom = |artifact_type: &str| SBOM_ARTIFACT_TYPES.contains(&artifact_type);
        match declared.as_deref() {
            Some(artifact_type) if is_sbom(artifact_type) => {
                sboms.push(read_sbom(source, referrer, &subject, limits));
            }
            Some(_) => others += 1,
            // No type in the listing: the manifest says.
            None => {
                let found = source
                    .manifest(referrer, limits)
                    .ok()
                    .and_then(|bytes| referrer_facts(&bytes))
                    .and_then(|facts| facts.artifact_type);
                if found.as_deref().is_some_and(is_sbom) {
                    sboms.push(read_sbom(source, referrer, &subject, limits));
                } else {
                    others += 1;
                }
            }
        }
    }
    SbomFacts::Listed { sboms, others }
}

/// Reads and checks one SBOM referrer of `subject`: its manifest (digest,
/// artifact type, subject, layer), and the document (digest, JSON, kind).
fn read_sbom(
    source: &mut dyn ImageSource,
    referrer: &Descriptor,
    subject: &Descriptor,
    limits: &ReadLimits,
) -> SbomFound {
    let digest = referrer.digest().to_string();
    let mut found = SbomFound {
        failures: Vec::new(),
        report: None,
    };
    let bytes = match source.manifest(referrer, limits) {
        Ok(bytes) => bytes,
        Err(err) => {
            found.failures.push(format!(
                "the SBOM referrer {digest} could not be read: {err}"
            ));
            return found;
        }
    };
    if let Err(err) = check_bytes("the SBOM referrer manifest", referrer, &bytes) {
        found.failures.push(err.to_string());
        return found;
    }
    let what = format!("{} SBOM referrer {digest}", source.describe());
    let declared = referrer.media_type().to_string();
    let manifest = match document::parse::<ImageManifest>(&what, &bytes).and_then(|manifest| {
        // Read as containerd reads it, or refused (see document::check_kind).
        document::check_kind(&what, document::Kind::Manifest, Some(&declared), &bytes)?;
        Ok(manifest)
    }) {
        Ok(manifest) => manifest,
        Err(err) => {
            found
                .failures
                .push(format!("the SBOM referrer is not an image manifest: {err}"));
            return found;
        }
    };
    let artifact_type = manifest
        .artifact_type()
        .as_ref()
        .unwrap_or_else(|| manifest.config().media_type())
        .to_string();
    if let Some(declared) = referrer.artifact_type() {
        if declared.to_string() != artifact_type {
            found.failures.push(format!(
                "the referrer {digest} is listed as {declared} but its manifest says {artifact_type}"
            ));
        }
    }
    match manifest.subject() {
        None => found.failures.push(format!(
            "the referrer {digest} has no subject, so it refers to nothing"
        )),
        Some(named) => {
            if named.digest() != subject.digest() {
                found.failures.push(format!(
                    "the referrer {digest} names the subject {}, not this manifest {}",
                    named.digest(),
                    subject.digest()
                ));
            } else if named.size() != subject.size() {
                found.failures.push(format!(
                    "the referrer {digest} gives its subject's size as {} bytes; the manifest is {}",
                    named.size(),
                    subject.size()
                ));
            }
        }
    }
    let Some(layer) = manifest
        .layers()
        .iter()
        .find(|layer| layer.media_type().to_string() == artifact_type)
    else {
        found.failures.push(format!(
            "the referrer {digest} has no layer of media type {artifact_type} (the SBOM document)"
        ));
        return found;
    };
    let document_bytes = match source::read_document(source, "the SBOM document", layer, limits) {
        Ok(bytes) => bytes,
        Err(err) => {
            found.failures.push(format!(
                "the SBOM document {} could not be read: {err}",
                layer.digest()
            ));
            return found;
        }
    };
    if let Err(err) = check_bytes("the SBOM document", layer, &document_bytes) {
        found.failures.push(err.to_string());
        return found;
    }
    match openshell_contract::sbom::identify(&document_bytes) {
        Ok((kind, summary)) if kind == artifact_type => {
            if found.failures.is_empty() {
                found.report = Some(SbomReport {
                    referrer_digest: digest,
                    artifact_type,
                    sbom_digest: layer.digest().to_string(),
                    sbom_size: document_bytes.len() as u64,
                    summary,
                });
            }
        }
        Ok((kind, _)) => found.failures.push(format!(
            "the SBOM document {} is {kind}, but the referrer says {artifact_type}",
            layer.digest()
        )),
        Err(err) => found
            .failures
            .push(format!("the SBOM document {}: {err}", layer.digest())),
    }
    found
}

/// Streams one layer: hashes the blob as it arrives, decompresses it,
/// hashes the tar and applies it to `tree` (when given). Returns what was
/// read and whether applying succeeded.
fn stream_layer(
    source: &mut dyn ImageSource,
    index: usize,
    descriptor: &Descriptor,
    tree: Option<&mut Filesystem>,
) -> (LayerRead, Result<(), String>) {
    let what = format!("layer {index}");
    let digester = match digester_for(&what, descriptor.digest()) {
        Ok(digester) => digester,
        Err(err) => return (LayerRead::Failed(err.to_string()), Err(err.to_string())),
    };
    let stream = match source.open_blob(descriptor) {
        Ok(stream) => stream,
        Err(err) => {
            let reason = format!("{what} {} could not be read: {err}", descriptor.digest());
            return (LayerRead::Failed(reason.clone()), Err(reason));
        }
    };
    let mut blob = DigestingReader::new(stream, digester);
    let media_type = descriptor.media_type().to_string();
    let mut magic = [0u8; 6];
    let magic_len = read_up_to(&mut blob, &mut magic);
    let magic = &magic[..magic_len];
    // Judged by its bytes, as containerd does (crate::compression).
    let compression = crate::compression::layer_compression(&what, &media_type, magic);
    let gzip = compression == Ok(crate::compression::LayerCompression::Gzip);
    let applied = compression.map(|_| ());
    let mut diff_id = None;
    let mut applied = applied;
    if applied.is_ok() {
        let prefix = std::io::Cursor::new(magic.to_vec());
        let compressed = prefix.chain(&mut blob);
        let inner: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(compressed))
        } else {
            Box::new(compressed)
        };
        let mut tar = DigestingReader::new(inner, Digester::sha256());
        let outcome = match tree {
            Some(tree) => tree
                .apply_layer(index, &mut tar)
                .map_err(|err| err.to_string()),
            None => Ok(()),
        };
        // The tar's end-of-archive blocks are part of the diff ID.
        applied = outcome.and_then(|()| {
            tar.finish()
                .map(|(digest, _)| diff_id = Some(digest))
                .map_err(|err| format!("{what}: {err}"))
        });
    }
    // The blob's digest covers every byte, also after a failure above.
    match blob.finish() {
        Ok((digest, size)) => (
            LayerRead::Read {
                digest,
                size,
                diff_id,
            },
            applied,
        ),
        Err(err) => {
            let reason = format!("{what} {} could not be read: {err}", descriptor.digest());
            (LayerRead::Failed(reason.clone()), applied.and(Err(reason)))
        }
    }
}

fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(read) => filled += read,
        }
    }
    filled
}

/// A check's verdict.
enum Verdict {
    Pass(Vec<String>),
    Fail(Vec<String>),
    Skip(String),
}

impl Verdict {
    fn from_failures(failures: Vec<String>, notes: Vec<String>) -> Self {
        if failures.is_empty() {
            Self::Pass(notes)
        } else {
            Self::Fail(failures)
        }
    }
}

/// A check: its name, the checks that must pass before it can run, and
/// what it does.
struct CheckSpec {
    name: &'static str,
    requires: &'static [&'static str],
    run: fn(&Facts, &VerifyOptions) -> Verdict,
}

/// Per-platform checks, in report order; each runs only when the checks it
/// requires passed.
const PLATFORM_CHECKS: &[CheckSpec] = &[
    CheckSpec {
        name: checks::MANIFEST,
        requires: &[],
        run: check_manifest,
    },
    CheckSpec {
        name: checks::BLOB_DIGESTS,
        requires: &[checks::MANIFEST],
        run: check_blob_digests,
    },
    CheckSpec {
        name: checks::MEDIA_TYPES,
        requires: &[checks::MANIFEST],
        run: check_media_types,
    },
    CheckSpec {
        name: checks::CONFIG,
        requires: &[checks::MANIFEST],
        run: check_config,
    },
    CheckSpec {
        name: checks::PLATFORM,
        requires: &[checks::CONFIG],
        run: check_platform,
    },
    CheckSpec {
        name: checks::FILESYSTEM,
        requires: &[checks::MANIFEST],
        run: check_filesystem,
    },
    CheckSpec {
        name: checks::UNSAFE_ENTRIES,
        requires: &[checks::FILESYSTEM],
        run: check_unsafe_entries,
    },
    CheckSpec {
        name: checks::BINARY_LOCATION,
        requires: &[checks::FILESYSTEM],
        run: check_binary_location,
    },
    CheckSpec {
        name: checks::BINARY_FILE_TYPE,
        requires: &[checks::BINARY_LOCATION],
        run: check_binary_file_type,
    },
    CheckSpec {
        name: checks::BINARY_OWNER,
        requires: &[checks::BINARY_LOCATION],
        run: check_binary_owner,
    },
    CheckSpec {
        name: checks::BINARY_MODE,
        requires: &[checks::BINARY_LOCATION],
        run: check_binary_mode,
    },
    CheckSpec {
        name: checks::STATIC_ELF,
        requires: &[checks::BINARY_FILE_TYPE],
        run: check_static_elf,
    },
    CheckSpec {
        name: checks::ENTRYPOINT,
        requires: &[checks::CONFIG],
        run: check_entrypoint,
    },
    CheckSpec {
        name: checks::ANNOTATION_SHA256,
        requires: &[checks::BINARY_FILE_TYPE],
        run: check_annotation,
    },
    CheckSpec {
        name: checks::RUN_VERSION,
        requires: &[checks::STATIC_ELF],
        run: check_run_version,
    },
    CheckSpec {
        name: checks::SBOM,
        requires: &[checks::MANIFEST],
        run: check_sbom,
    },
];

/// The names of the per-platform checks, in report order.
pub fn platform_check_names() -> Vec<&'static str> {
    PLATFORM_CHECKS.iter().map(|check| check.name).collect()
}

fn run_checks(facts: &Facts, options: &VerifyOptions) -> PlatformReport {
    let mut results: Vec<CheckResult> = Vec::with_capacity(PLATFORM_CHECKS.len());
    for spec in PLATFORM_CHECKS {
        let blocker = spec.requires.iter().find_map(|required| {
            results
                .iter()
                .find(|result| result.name == *required)
                .filter(|result| result.outcome != Outcome::Passed)
        });
        let (outcome, details) = match blocker {
            Some(blocker) => (
                Outcome::Skipped,
                vec![format!(
                    "needs {}, which {}",
                    blocker.name,
                    if blocker.outcome == Outcome::Failed {
                        "failed"
                    } else {
                        "was skipped"
                    }
                )],
            ),
            None => match (spec.run)(facts, options) {
                Verdict::Pass(notes) => (Outcome::Passed, notes),
                Verdict::Fail(failures) => (Outcome::Failed, failures),
                Verdict::Skip(reason) => (Outcome::Skipped, vec![reason]),
            },
        };
        results.push(CheckResult {
            name: spec.name.to_string(),
            outcome,
            details,
        });
    }
    let passed = |name: &str| {
        results
            .iter()
            .any(|result| result.name == name && result.outcome == Outcome::Passed)
    };
    let binary_sha256 = passed(checks::BINARY_FILE_TYPE)
        .then(|| facts.binary_contents().map(|contents| contents.sha256()))
        .flatten();
    let binary_in_sandbox = passed(checks::BINARY_LOCATION)
        .then(|| path_under_mount(&options.mount_path, IMAGE_BINARY_PATH))
        .filter(|_| binary_sha256.is_some());
    let platform = facts
        .index_platform
        .as_ref()
        .map(|platform| match platform.variant() {
            Some(variant) => format!("{}/{}/{variant}", platform.os(), platform.architecture()),
            None => format!("{}/{}", platform.os(), platform.architecture()),
        })
        .or_else(|| {
            facts
                .config()
                .map(|config| format!("{}/{}", config.os(), config.architecture()))
        });
    let sbom = match &facts.sbom {
        SbomFacts::Listed { sboms, .. } if passed(checks::SBOM) => {
            sboms.iter().find_map(|found| found.report.clone())
        }
        _ => None,
    };
    PlatformReport {
        platform,
        manifest_digest: facts.manifest_digest.clone(),
        index_path: facts.index_path.clone(),
        binary_in_sandbox,
        binary_sha256,
        sbom,
        checks: results,
    }
}

fn check_sbom(facts: &Facts, options: &VerifyOptions) -> Verdict {
    let absent = |reason: String| {
        if options.require_sbom {
            Verdict::Fail(vec![format!("{reason} (an SBOM is required here)")])
        } else {
            Verdict::Skip(reason)
        }
    };
    match &facts.sbom {
        SbomFacts::NotRead => Verdict::Skip("the manifest could not be read".into()),
        SbomFacts::Unsupported(reason) => absent(reason.clone()),
        SbomFacts::ListFailed(err) => absent(format!("could not list the referrers: {err}")),
        SbomFacts::Listed { sboms, others } if sboms.is_empty() => absent(format!(
            "no SBOM refers to this manifest (expected an OCI 1.1 referrer with artifactType {}; {others} referrer(s) of other kinds)",
            SBOM_ARTIFACT_TYPES.join(" or ")
        )),
        SbomFacts::Listed { sboms, .. } => {
            let mut failures = Vec::new();
            let mut notes = Vec::new();
            for found in sboms {
                failures.extend(found.failures.iter().cloned());
                if let Some(report) = &found.report {
                    notes.push(format!(
                        "{} ({}, {} bytes) {} in referrer {}, whose subject is this manifest",
                        report.summary,
                        report.artifact_type,
                        report.sbom_size,
                        report.sbom_digest,
                        report.referrer_digest
                    ));
                }
            }
            Verdict::from_failures(failures, notes)
        }
    }
}

fn check_manifest(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let manifest = match &facts.manifest {
        Ok(manifest) => manifest,
        Err(err) => return Verdict::Fail(vec![format!("the manifest could not be read: {err}")]),
    };
    let mut failures = Vec::new();
    if let Some(expected) = &manifest.expected {
        if let Err(err) =
            openshell_transport::digest::check_bytes("the manifest", expected, &manifest.raw)
        {
            failures.push(err.to_string());
        }
    }
    if let Err(err) = &manifest.parsed {
        failures.push(format!("the manifest is not an image manifest: {err}"));
    }
    Verdict::from_failures(failures, Vec::new())
}

fn check_blob_digests(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    if let Some(config) = facts
        .manifest
        .as_ref()
        .ok()
        .and_then(|manifest| manifest.config.as_ref())
    {
        match (&config.read, &config.matches_descriptor) {
            (Err(err), _) => failures.push(format!(
                "the config {} could not be read: {err}",
                config.expected.digest()
            )),
            (Ok(()), Err(err)) => failures.push(err.clone()),
            (Ok(()), Ok(())) => {}
        }
    }
    let declared = facts.config().map(|config| config.rootfs().diff_ids());
    if let Some(declared) = declared {
        if declared.len() != facts.layers.len() {
            failures.push(format!(
                "the config lists {} diff IDs for {} layers",
                declared.len(),
                facts.layers.len()
            ));
        }
    }
    for (index, (descriptor, read)) in facts.layers.iter().enumerate() {
        let expected = descriptor.digest().to_string();
        let diff_id = match read {
            LayerRead::Read {
                digest,
                size,
                diff_id,
            } => {
                if *digest != expected {
                    failures.push(format!(
                        "layer {index} has digest {digest}, but its descriptor says {expected}"
                    ));
                }
                if *size != descriptor.size() {
                    failures.push(format!(
                        "layer {index} {expected} is {size} bytes, but its descriptor says {}",
                        descriptor.size()
                    ));
                }
                diff_id.as_ref()
            }
            LayerRead::Built { diff_id } => Some(diff_id),
            LayerRead::Earlier(reason) => {
                notes.push(format!("layer {index} {expected}: {reason}"));
                None
            }
            LayerRead::Failed(reason) => {
                failures.push(reason.clone());
                None
            }
        };
        if let (Some(diff_id), Some(declared)) = (diff_id, declared) {
            if let Some(expected) = declared.get(index) {
                if expected != diff_id {
                    failures.push(format!(
                        "layer {index} uncompresses to {diff_id}, but the config's diff ID says {expected}"
                    ));
                }
            }
        }
    }
    Verdict::from_failures(failures, notes)
}

fn check_media_types(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    if !facts.has_media_types {
        return Verdict::Skip(
            "this transport stores no media types (they were inferred from the content)".into(),
        );
    }
    let (Ok(manifest), Some(parsed)) = (&facts.manifest, facts.parsed()) else {
        return Verdict::Skip("no manifest".into());
    };
    let mut failures = Vec::new();
    let declared = parsed.media_type().as_ref().map(ToString::to_string);
    if let Some(other) = declared
        .as_deref()
        .filter(|declared| *declared != OCI_MANIFEST && *declared != DOCKER_MANIFEST)
    {
        failures.push(format!(
            "the manifest has media type {other}, expected {OCI_MANIFEST}"
        ));
    }
    if let Some(expected) = &manifest.expected {
        let by_descriptor = expected.media_type().to_string();
        if by_descriptor != OCI_MANIFEST && by_descriptor != DOCKER_MANIFEST {
            failures.push(format!(
                "the descriptor of the manifest says {by_descriptor}, expected {OCI_MANIFEST}"
            ));
        } else if let Some(declared) = declared.as_deref().filter(|d| *d != by_descriptor) {
            failures.push(format!(
                "the manifest says {declared} but its descriptor says {by_descriptor}"
            ));
        }
    }
    let config_type = parsed.config().media_type().to_string();
    if config_type != OCI_CONFIG && config_type != DOCKER_CONFIG {
        failures.push(format!(
            "the config has media type {config_type}, expected {OCI_CONFIG}"
        ));
    }
    for (index, layer) in parsed.layers().iter().enumerate() {
        let layer_type = layer.media_type().to_string();
        if !LAYER_TYPES.contains(&layer_type.as_str()) {
            failures.push(format!(
                "layer {index} has media type {layer_type}, expected {}",
                MediaType::ImageLayerGzip
            ));
        }
    }
    Verdict::from_failures(failures, Vec::new())
}

fn check_config(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let Some(config) = facts
        .manifest
        .as_ref()
        .ok()
        .and_then(|manifest| manifest.config.as_ref())
    else {
        return Verdict::Fail(vec!["the manifest names no config".into()]);
    };
    if let Err(err) = &config.read {
        return Verdict::Fail(vec![format!(
            "the config {} could not be read: {err}",
            config.expected.digest()
        )]);
    }
    match &config.parsed {
        Ok(_) => Verdict::Pass(Vec::new()),
        Err(err) => Verdict::Fail(vec![format!("the config does not parse: {err}")]),
    }
}

fn check_filesystem(facts: &Facts, options: &VerifyOptions) -> Verdict {
    let tree = match &facts.tree {
        Ok(tree) => tree,
        Err(reason) => {
            let earlier = facts
                .layers
                .iter()
                .any(|(_, read)| matches!(read, LayerRead::Earlier(_)));
            return if earlier {
                Verdict::Skip(format!(
                    "the layers were verified when first written ({reason})"
                ))
            } else {
                Verdict::Fail(vec![reason.clone()])
            };
        }
    };
    // The strictest of the extractors decides: any that fails, or shows
    // the binary otherwise, fails the check.
    let disagreements = tree.extractor_disagreements();
    if !disagreements.is_empty() {
        return Verdict::Fail(disagreements);
    }
    let others: Vec<&str> = tree
        .nodes
        .keys()
        .map(String::as_str)
        .filter(|path| *path != LAYER_BINARY_PATH)
        .collect();
    let mut notes = Vec::new();
    if !others.is_empty() {
        let shown: Vec<&str> = others.iter().take(5).copied().collect();
        notes.push(format!(
            "besides the binary the image holds {} entries ({}{}), which every sandbox sees under {}",
            others.len(),
            shown.join(", "),
            if others.len() > shown.len() { ", ..." } else { "" },
            options.mount_path
        ));
    }
    Verdict::Pass(notes)
}

fn check_unsafe_entries(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let Some(tree) = facts.tree() else {
        return Verdict::Skip("no tree".into());
    };
    Verdict::from_failures(
        tree.unsafe_entries
            .iter()
            .map(|entry| format!("layer {}: {}: {}", entry.layer, entry.path, entry.reason))
            .collect(),
        Vec::new(),
    )
}

fn check_binary_location(facts: &Facts, options: &VerifyOptions) -> Verdict {
    let Some(tree) = facts.tree() else {
        return Verdict::Skip("no tree".into());
    };
    if tree.nodes.contains_key(LAYER_BINARY_PATH) {
        return Verdict::Pass(Vec::new());
    }
    let mount = &options.mount_path;
    if let Some(removal) = tree.removed.get(LAYER_BINARY_PATH) {
        return Verdict::Fail(vec![format!(
            "expected {IMAGE_BINARY_PATH}; layer {} deletes it with the whiteout {}, so the mounted image has no binary",
            removal.layer, removal.whiteout
        )]);
    }
    let elsewhere = tree.find_named(BINARY_NAME);
    if elsewhere.is_empty() {
        return Verdict::Fail(vec![format!(
            "expected {IMAGE_BINARY_PATH}; the image has no file named {BINARY_NAME}"
        )]);
    }
    Verdict::Fail(
        elsewhere
            .into_iter()
            .map(|path| {
                format!(
                    "expected {IMAGE_BINARY_PATH}; the image has {path}, which an image volume at {mount} shows as {}",
                    path_under_mount(mount, path)
                )
            })
            .collect(),
    )
}

fn check_binary_file_type(facts: &Facts, options: &VerifyOptions) -> Verdict {
    let Some(node) = facts.binary_node() else {
        return Verdict::Skip(format!("no binary at {IMAGE_BINARY_PATH}"));
    };
    let mount = &options.mount_path;
    match &node.kind {
        NodeKind::File { .. } => Verdict::Pass(Vec::new()),
        NodeKind::Symlink(target) => {
            let seen = if target.starts_with('/') {
                format!("{target} of the agent container's own filesystem")
            } else {
                path_under_mount(mount, target)
            };
            Verdict::Fail(vec![format!(
                "{IMAGE_BINARY_PATH} is a symlink to {target}, expected a regular file: in an image volume at {mount} the link resolves against the agent container's root, to {seen}"
            )])
        }
        other => Verdict::Fail(vec![format!(
            "{IMAGE_BINARY_PATH} is {}, expected a regular file",
            other.describe()
        )]),
    }
}

fn check_binary_owner(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let Some(node) = facts.binary_node() else {
        return Verdict::Skip(format!("no binary at {IMAGE_BINARY_PATH}"));
    };
    if node.uid != 0 || node.gid != 0 {
        return Verdict::Fail(vec![format!(
            "{IMAGE_BINARY_PATH} is owned by {}:{}, expected 0:0",
            node.uid, node.gid
        )]);
    }
    Verdict::Pass(Vec::new())
}

fn check_binary_mode(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let Some(node) = facts.binary_node() else {
        return Verdict::Skip(format!("no binary at {IMAGE_BINARY_PATH}"));
    };
    let mode = node.mode & 0o7777;
    let mut failures = Vec::new();
    if mode & 0o111 != 0o111 {
        failures.push(format!("{IMAGE_BINARY_PATH} has mode {mode:04o}, which is not executable by everyone (expected 0555)"));
    }
    if mode & 0o6000 != 0 {
        failures.push(format!(
            "{IMAGE_BINARY_PATH} has mode {mode:04o}, which sets setuid/setgid (expected 0555)"
        ));
    }
    if mode & 0o002 != 0 {
        failures.push(format!(
            "{IMAGE_BINARY_PATH} has mode {mode:04o}, which is world-writable (expected 0555)"
        ));
    }
    if node.file_capabilities {
        failures.push(format!(
            "{IMAGE_BINARY_PATH} carries file capabilities (the security.capability xattr in its PAX records), which containerd and CRI-O set on it (expected none: the supervisor gets its privileges from the pod)"
        ));
    }
    Verdict::from_failures(failures, Vec::new())
}

fn check_static_elf(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let Some(elf) = facts.elf() else {
        return match facts.binary_node().map(|node| &node.kind) {
            // Only files named like the binary are kept: this one came by a
            // hard link from a file of another name.
            Some(NodeKind::File { contents: None, .. }) => Verdict::Fail(vec![format!(
                "{IMAGE_BINARY_PATH} is a hard link to a file not named {BINARY_NAME}, whose contents are not kept, so its ELF cannot be checked (expected the binary itself)"
            )]),
            _ => Verdict::Skip("no regular file to inspect".into()),
        };
    };
    match elf {
        Ok(info) => {
            let mut failures: Vec<String> = info
                .static_violations()
                .into_iter()
                .map(|violation| format!("{IMAGE_BINARY_PATH}: {violation}"))
                .collect();
            if info.oci_architecture().is_none() {
                failures.push(format!(
                    "{IMAGE_BINARY_PATH}: ELF machine {} has no OCI architecture name",
                    info.machine
                ));
            }
            Verdict::from_failures(failures, Vec::new())
        }
        Err(err) => Verdict::Fail(vec![format!("{IMAGE_BINARY_PATH}: {err}")]),
    }
}

fn check_platform(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let Some(config) = facts.config() else {
        return Verdict::Skip("no readable config".into());
    };
    let os = config.os().to_string();
    let architecture = config.architecture().to_string();
    let mut failures = Vec::new();
    if os != "linux" {
        failures.push(format!("the config says os {os}, expected linux"));
    }
    if let Some(platform) = &facts.index_platform {
        let index_os = platform.os().to_string();
        let index_architecture = platform.architecture().to_string();
        if index_os != os || index_architecture != architecture {
            failures.push(format!(
                "the index lists this manifest as {index_os}/{index_architecture}, but its config says {os}/{architecture}"
            ));
        }
    }
    if let Some(elf_architecture) = facts.elf_architecture() {
        if elf_architecture != architecture {
            failures.push(format!(
                "the config says architecture {architecture}, but {IMAGE_BINARY_PATH} is an ELF for {elf_architecture}"
            ));
        }
    }
    Verdict::from_failures(failures, Vec::new())
}

fn check_entrypoint(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let Some(config) = facts.config() else {
        return Verdict::Skip("no readable config".into());
    };
    let expected: Vec<String> = IMAGE_ENTRYPOINT
        .iter()
        .map(|part| (*part).to_string())
        .collect();
    match config
        .config()
        .as_ref()
        .and_then(|runtime| runtime.entrypoint().clone())
    {
        Some(entrypoint) if entrypoint == expected => Verdict::Pass(Vec::new()),
        Some(entrypoint) => Verdict::Fail(vec![format!(
            "Entrypoint is {entrypoint:?}, expected {expected:?} (the init-container fallback runs copy-self through it)"
        )]),
        None => Verdict::Fail(vec![format!(
            "the config has no Entrypoint, expected {expected:?} (the init-container fallback runs copy-self through it)"
        )]),
    }
}

fn check_annotation(facts: &Facts, _options: &VerifyOptions) -> Verdict {
    let Some(contents) = facts.binary_contents() else {
        return Verdict::Skip(format!("no binary at {IMAGE_BINARY_PATH}"));
    };
    let annotation = facts
        .parsed()
        .and_then(|parsed| parsed.annotations().as_ref())
        .and_then(|annotations| annotations.get(BINARY_SHA256).cloned())
        .or_else(|| {
            facts
                .config()
                .and_then(|config| config.labels_of_config())
                .and_then(|labels| labels.get(BINARY_SHA256).cloned())
        });
    let sha256 = contents.sha256();
    match annotation {
        Some(annotated) if annotated == sha256 => Verdict::Pass(Vec::new()),
        Some(annotated) => Verdict::Fail(vec![format!(
            "the binary's sha256 is {sha256}, but the annotation {BINARY_SHA256} says {annotated}"
        )]),
        None => Verdict::Pass(vec![format!(
            "no {BINARY_SHA256} annotation to compare with"
        )]),
    }
}

fn check_run_version(facts: &Facts, options: &VerifyOptions) -> Verdict {
    if !options.run {
        return Verdict::Skip("not requested (--run runs the binary's version --json)".into());
    }
    let Some(contents) = facts.binary_contents() else {
        return Verdict::Skip(format!("no binary at {IMAGE_BINARY_PATH}"));
    };
    let Some(architecture) = facts.elf_architecture() else {
        return Verdict::Skip("the binary's architecture is unknown".into());
    };
    let search_path = std::env::var_os("PATH");
    let runner = match crate::run_binary::runner_for(
        architecture,
        host_architecture(),
        search_path.as_deref(),
    ) {
        Ok(runner) => runner,
        Err(cannot) => return Verdict::Skip(cannot.0),
    };
    let sha256 = contents.sha256();
    match crate::run_binary::version_report(contents, &runner, crate::run_binary::RUN_TIMEOUT) {
        Ok(version) if version.sha256 == sha256 => Verdict::Pass(Vec::new()),
        Ok(version) => Verdict::Fail(vec![format!(
            "version --json reports sha256 {}, but the binary in the image has {sha256}",
            version.sha256
        )]),
        Err(err) => Verdict::Fail(vec![err]),
    }
}
