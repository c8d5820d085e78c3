//! One set of checks over an image from any source: will it resolve at the
//! image-volume mount and run as the supervisor?
//!
//! Every check has a stable name, used in the human report and in `--json`;
//! every failure says what was found and what was expected.

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageConfiguration, MediaType};
use openshell_contract::annotations::BINARY_SHA256;
use openshell_contract::version::VersionReport;
use openshell_contract::{
    BINARY_NAME, IMAGE_BINARY_PATH, IMAGE_ENTRYPOINT, LAYER_BINARY_PATH, MOUNT_PATH,
    path_under_mount,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::filesystem::{FileContents, Filesystem, NodeKind};
use crate::layer::sha256_digest;
use crate::source::{KnownLayer, LoadedBlob, LoadedImage, LoadedManifest, is_index_media_type};

/// The names of the checks, in the order they are reported.
pub mod checks {
    /// Each blob's digest and size against its descriptor, and each layer's
    /// uncompressed digest against the config's diff IDs.
    pub const BLOB_DIGESTS: &str = "blob-digests";
    /// Media types of index, manifest, config and layers.
    pub const MEDIA_TYPES: &str = "media-types";
    /// The config parses.
    pub const CONFIG: &str = "config";
    /// Config os/architecture against the index platform and the ELF machine.
    pub const PLATFORM: &str = "platform";
    /// Every layer reads as a tar and applies in order.
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

    /// Per-platform checks, in report order.
    pub const ALL: [&str; 14] = [
        BLOB_DIGESTS,
        MEDIA_TYPES,
        CONFIG,
        PLATFORM,
        FILESYSTEM,
        UNSAFE_ENTRIES,
        BINARY_LOCATION,
        BINARY_FILE_TYPE,
        BINARY_OWNER,
        BINARY_MODE,
        STATIC_ELF,
        ENTRYPOINT,
        ANNOTATION_SHA256,
        RUN_VERSION,
    ];
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
    /// Where the binary appears in a sandbox, when it is where it belongs.
    pub binary_in_sandbox: Option<String>,
    /// sha256 of the binary, when found.
    pub binary_sha256: Option<String>,
    /// Results, in the order of [`checks::ALL`].
    pub checks: Vec<CheckResult>,
}

/// The whole verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// What was verified.
    pub source: String,
    /// Whether every check passed or was skipped.
    pub ok: bool,
    /// Digest of the index, for a multi-platform image.
    pub index_digest: Option<String>,
    /// Checks of the index itself (its digest and media type).
    pub index_checks: Vec<CheckResult>,
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
        self.index_checks
            .iter()
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
        let failed = self.failures().len();
        if self.ok {
            writeln!(f, "result: all checks passed")
        } else {
            writeln!(f, "result: {failed} failure(s)")
        }
    }
}

/// What to check beyond the image itself.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Where the image is mounted in the sandbox.
    pub mount_path: String,
    /// Run the extracted binary's `version --json` (host architecture only).
    pub run: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            mount_path: MOUNT_PATH.to_string(),
            run: false,
        }
    }
}

/// Collects results check by check.
struct Results {
    results: Vec<CheckResult>,
}

impl Results {
    fn new(names: &[&str]) -> Self {
        Self {
            results: names
                .iter()
                .map(|name| CheckResult {
                    name: (*name).to_string(),
                    outcome: Outcome::Passed,
                    details: Vec::new(),
                })
                .collect(),
        }
    }

    fn entry(&mut self, name: &str) -> &mut CheckResult {
        let position = self.results.iter().position(|check| check.name == name);
        match position {
            Some(position) => &mut self.results[position],
            None => {
                self.results.push(CheckResult {
                    name: name.to_string(),
                    outcome: Outcome::Passed,
                    details: Vec::new(),
                });
                let last = self.results.len() - 1;
                &mut self.results[last]
            }
        }
    }

    fn fail(&mut self, name: &str, detail: impl Into<String>) {
        let entry = self.entry(name);
        entry.outcome = Outcome::Failed;
        entry.details.push(detail.into());
    }

    fn skip(&mut self, name: &str, reason: impl Into<String>) {
        let entry = self.entry(name);
        if entry.outcome != Outcome::Failed {
            entry.outcome = Outcome::Skipped;
            entry.details = vec![reason.into()];
        }
    }

    fn note(&mut self, name: &str, detail: impl Into<String>) {
        self.entry(name).details.push(detail.into());
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPES: [&str; 6] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

fn check_blob_bytes(results: &mut Results, what: &str, expected: &Descriptor, bytes: &[u8]) {
    compare_digest(results, what, expected, &sha256_digest(bytes), bytes.len());
}

fn compare_digest(
    results: &mut Results,
    what: &str,
    expected: &Descriptor,
    digest: &str,
    len: usize,
) {
    let expected_digest = expected.digest().to_string();
    if digest != expected_digest {
        results.fail(
            checks::BLOB_DIGESTS,
            format!("{what} has digest {digest}, but its descriptor says {expected_digest}"),
        );
    }
    if len as u64 != expected.size() {
        results.fail(
            checks::BLOB_DIGESTS,
            format!(
                "{what} {expected_digest} is {len} bytes, but its descriptor says {}",
                expected.size()
            ),
        );
    }
}

fn blob_bytes<'a>(
    results: &mut Results,
    what: &str,
    blob: &'a LoadedBlob,
) -> Option<&'a Arc<Vec<u8>>> {
    match &blob.bytes {
        Ok(bytes) => {
            check_blob_bytes(results, what, &blob.expected, bytes);
            Some(bytes)
        }
        Err(reason) => {
            results.fail(
                checks::BLOB_DIGESTS,
                format!(
                    "{what} {} could not be read: {reason}",
                    blob.expected.digest()
                ),
            );
            None
        }
    }
}

/// Reads through a stream, hashing what passes.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

/// Applies one layer; returns the sha256 of its uncompressed tar.
fn apply_layer(
    fs: &mut Filesystem,
    index: usize,
    media_type: &str,
    bytes: &[u8],
) -> Result<String, String> {
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    if media_type.ends_with("zstd") || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(format!(
            "layer {index} is zstd-compressed, which this verifier cannot read (expected a gzip or plain tar layer)"
        ));
    }
    if media_type.ends_with("gzip") && !gzip {
        return Err(format!(
            "layer {index} is declared {media_type} but is not gzip data"
        ));
    }
    let inner: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut reader = HashingReader {
        inner,
        hasher: Sha256::new(),
    };
    fs.apply_layer(index, &mut reader)
        .map_err(|err| err.to_string())?;
    // The tar's end-of-archive blocks are part of the diff ID.
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|err| format!("layer {index}: {err}"))?;
    Ok(format!("sha256:{}", hex::encode(reader.hasher.finalize())))
}

/// Applies a tar built in this run; its digest is already known.
fn apply_known_tar(fs: &mut Filesystem, index: usize, tar: &Arc<Vec<u8>>) -> Result<(), String> {
    fs.apply_layer_shared(index, tar)
        .map_err(|err| err.to_string())
}

/// The OCI architecture of the machine running this program.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Runs every check over `image`.
pub fn verify(image: &LoadedImage, options: &VerifyOptions) -> VerifyReport {
    let mut index_checks = Vec::new();
    let mut index_digest = None;
    if let Some(index) = &image.index {
        let mut results = Results::new(&[checks::BLOB_DIGESTS, checks::MEDIA_TYPES]);
        index_digest = Some(sha256_digest(&index.raw));
        if let Some(expected) = &index.expected {
            check_blob_bytes(&mut results, "the index", expected, &index.raw);
        }
        let media_type = index.parsed.media_type().as_ref().map(ToString::to_string);
        match media_type {
            Some(media_type) if is_index_media_type(&media_type) => {}
            Some(other) => results.fail(
                checks::MEDIA_TYPES,
                format!(
                    "the index has media type {other}, expected {}",
                    MediaType::ImageIndex
                ),
            ),
            None => results.note(checks::MEDIA_TYPES, "the index states no mediaType"),
        }
        index_checks = results.results;
    }
    let platforms: Vec<PlatformReport> = image
        .manifests
        .iter()
        .map(|manifest| verify_manifest(image, manifest, options))
        .collect();
    let mut report = VerifyReport {
        source: image.source.clone(),
        ok: true,
        index_digest,
        index_checks,
        platforms,
        notes: image.notes.clone(),
    };
    if report.platforms.is_empty() {
        report
            .notes
            .push("the image has no platform manifests".into());
        report.ok = false;
    }
    report.ok = report.ok && report.failures().is_empty();
    report
}

fn verify_manifest(
    image: &LoadedImage,
    manifest: &LoadedManifest,
    options: &VerifyOptions,
) -> PlatformReport {
    let mut results = Results::new(&checks::ALL);
    let manifest_digest = sha256_digest(&manifest.raw);
    let mut report = PlatformReport {
        platform: manifest
            .platform()
            .map(|platform| crate::platform::PlatformSpec::from_oci(platform).to_string()),
        manifest_digest: manifest_digest.clone(),
        binary_in_sandbox: None,
        binary_sha256: None,
        checks: Vec::new(),
    };
    if let Some(expected) = &manifest.expected {
        check_blob_bytes(&mut results, "the manifest", expected, &manifest.raw);
    }

    let parsed = match &manifest.parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            results.fail(
                checks::MEDIA_TYPES,
                format!("the manifest {manifest_digest} is not an image manifest: {err}"),
            );
            for name in &checks::ALL[2..] {
                results.skip(name, "the manifest could not be read");
            }
            report.checks = results.results;
            return report;
        }
    };

    // media-types
    if image.has_media_types {
        let declared = parsed.media_type().as_ref().map(ToString::to_string);
        match declared.as_deref() {
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => {}
            Some(other) => results.fail(
                checks::MEDIA_TYPES,
                format!("the manifest has media type {other}, expected {OCI_MANIFEST}"),
            ),
            None => {}
        }
        if let Some(expected) = &manifest.expected {
            let by_descriptor = expected.media_type().to_string();
            if by_descriptor != OCI_MANIFEST && by_descriptor != DOCKER_MANIFEST {
                results.fail(
                    checks::MEDIA_TYPES,
                    format!("the descriptor of the manifest says {by_descriptor}, expected {OCI_MANIFEST}"),
                );
            } else if declared
                .as_deref()
                .is_some_and(|declared| declared != by_descriptor)
            {
                results.fail(
                    checks::MEDIA_TYPES,
                    format!(
                        "the manifest says {} but its descriptor says {by_descriptor}",
                        declared.unwrap_or_default()
                    ),
                );
            }
        }
        let config_type = parsed.config().media_type().to_string();
        if config_type != OCI_CONFIG && config_type != DOCKER_CONFIG {
            results.fail(
                checks::MEDIA_TYPES,
                format!("the config has media type {config_type}, expected {OCI_CONFIG}"),
            );
        }
        for (index, layer) in parsed.layers().iter().enumerate() {
            let layer_type = layer.media_type().to_string();
            if !LAYER_TYPES.contains(&layer_type.as_str()) {
                results.fail(
                    checks::MEDIA_TYPES,
                    format!(
                        "layer {index} has media type {layer_type}, expected {}",
                        MediaType::ImageLayerGzip
                    ),
                );
            }
        }
    } else {
        results.skip(
            checks::MEDIA_TYPES,
            "this transport stores no media types (they were inferred from the content)",
        );
    }

    // config
    let config: Option<ImageConfiguration> = match &manifest.config {
        Some(blob) => blob_bytes(&mut results, "the config", blob).and_then(|bytes| {
            match ImageConfiguration::from_reader(&bytes[..]) {
                Ok(config) => Some(config),
                Err(err) => {
                    results.fail(checks::CONFIG, format!("the config does not parse: {err}"));
                    None
                }
            }
        }),
        None => None,
    };
    if let (None, Some(config)) = (&report.platform, &config) {
        // Without an index entry, name the platform the config states.
        report.platform = Some(format!("{}/{}", config.os(), config.architecture()));
    }
    if config.is_none() {
        for name in [checks::CONFIG, checks::PLATFORM, checks::ENTRYPOINT] {
            results.skip(name, "no readable config");
        }
    }

    // filesystem
    let mut fs = Arc::new(Filesystem::default());
    let mut filesystem_complete = true;
    let mut diff_ids = Vec::new();
    for (index, layer) in manifest.layers.iter().enumerate() {
        let what = format!("layer {index}");
        let media_type = layer.blob.expected.media_type().to_string();
        let bytes = match (&layer.known, &layer.blob.bytes) {
            (KnownLayer::VerifiedEarlier(reason), _) => {
                results.note(
                    checks::BLOB_DIGESTS,
                    format!("{what} {}: {reason}", layer.blob.expected.digest()),
                );
                filesystem_complete = false;
                continue;
            }
            (_, Ok(bytes)) => bytes,
            (_, Err(reason)) => {
                results.fail(
                    checks::BLOB_DIGESTS,
                    format!(
                        "{what} {} could not be read: {reason}",
                        layer.blob.expected.digest()
                    ),
                );
                filesystem_complete = false;
                continue;
            }
        };
        // The blob's digest is computed on another core while the layer is
        // applied: both read tens of MiB.
        let (digest, applied) = std::thread::scope(|scope| {
            let hasher = scope.spawn(|| sha256_digest(bytes));
            let applied = match &layer.known {
                // The builder read its own bottom layer into a tree while it
                // compressed it: the same reading, done already.
                KnownLayer::Tar {
                    applied: Some(applied),
                    diff_id,
                    ..
                } if index == 0 => {
                    fs = Arc::clone(applied);
                    Ok(diff_id.clone())
                }
                KnownLayer::Tar { tar, diff_id, .. } => {
                    apply_known_tar(Arc::make_mut(&mut fs), index, tar).map(|()| diff_id.clone())
                }
                _ => apply_layer(Arc::make_mut(&mut fs), index, &media_type, bytes),
            };
            let digest = hasher.join().unwrap_or_else(|_| sha256_digest(bytes));
            (digest, applied)
        });
        compare_digest(
            &mut results,
            &what,
            &layer.blob.expected,
            &digest,
            bytes.len(),
        );
        match applied {
            Ok(diff_id) => diff_ids.push((index, diff_id)),
            Err(err) => {
                results.fail(checks::FILESYSTEM, err);
                filesystem_complete = false;
            }
        }
    }
    if let Some(config) = &config {
        let declared = config.rootfs().diff_ids();
        if declared.len() != manifest.layers.len() {
            results.fail(
                checks::BLOB_DIGESTS,
                format!(
                    "the config lists {} diff IDs for {} layers",
                    declared.len(),
                    manifest.layers.len()
                ),
            );
        }
        for (index, diff_id) in &diff_ids {
            if let Some(expected) = declared.get(*index) {
                if expected != diff_id {
                    results.fail(
                        checks::BLOB_DIGESTS,
                        format!("layer {index} uncompresses to {diff_id}, but the config's diff ID says {expected}"),
                    );
                }
            }
        }
    }

    let binary_checks = [
        checks::UNSAFE_ENTRIES,
        checks::BINARY_LOCATION,
        checks::BINARY_FILE_TYPE,
        checks::BINARY_OWNER,
        checks::BINARY_MODE,
        checks::STATIC_ELF,
        checks::ANNOTATION_SHA256,
        checks::RUN_VERSION,
    ];
    if !filesystem_complete {
        let reason = if manifest
            .layers
            .iter()
            .any(|layer| matches!(layer.known, KnownLayer::VerifiedEarlier(_)))
        {
            "the layer was verified when it was first written"
        } else {
            "not every layer could be read"
        };
        results.skip(checks::FILESYSTEM, reason);
        for name in binary_checks {
            results.skip(name, reason);
        }
        check_config(&mut results, config.as_ref(), manifest, None);
        report.checks = results.results;
        return report;
    }

    for entry in &fs.unsafe_entries {
        results.fail(
            checks::UNSAFE_ENTRIES,
            format!("layer {}: {}: {}", entry.layer, entry.path, entry.reason),
        );
    }
    let others: Vec<&str> = fs
        .nodes
        .keys()
        .map(String::as_str)
        .filter(|path| *path != LAYER_BINARY_PATH)
        .collect();
    if !others.is_empty() {
        let shown: Vec<&str> = others.iter().take(5).copied().collect();
        results.note(
            checks::FILESYSTEM,
            format!(
                "besides the binary the image holds {} entries ({}{}), which every sandbox sees under {}",
                others.len(),
                shown.join(", "),
                if others.len() > shown.len() { ", ..." } else { "" },
                options.mount_path
            ),
        );
    }

    let binary = check_binary(&mut results, &fs, options);
    let elf_architecture = binary
        .as_ref()
        .and_then(|binary| binary.architecture.clone());
    if let Some(binary) = &binary {
        report.binary_sha256 = Some(binary.sha256.clone());
        if results.entry(checks::BINARY_LOCATION).outcome == Outcome::Passed {
            report.binary_in_sandbox =
                Some(path_under_mount(&options.mount_path, IMAGE_BINARY_PATH));
        }
    }
    check_config(
        &mut results,
        config.as_ref(),
        manifest,
        elf_architecture.as_deref(),
    );

    // annotation-sha256
    match &binary {
        Some(binary) => {
            let annotation = parsed
                .annotations()
                .as_ref()
                .and_then(|annotations| annotations.get(BINARY_SHA256).cloned())
                .or_else(|| {
                    config
                        .as_ref()
                        .and_then(|config| config.labels_of_config())
                        .and_then(|labels| labels.get(BINARY_SHA256).cloned())
                });
            match annotation {
                Some(annotated) if annotated == binary.sha256 => {}
                Some(annotated) => results.fail(
                    checks::ANNOTATION_SHA256,
                    format!(
                        "the binary's sha256 is {}, but the annotation {BINARY_SHA256} says {annotated}",
                        binary.sha256
                    ),
                ),
                None => results.note(
                    checks::ANNOTATION_SHA256,
                    format!("no {BINARY_SHA256} annotation to compare with"),
                ),
            }
            run_version(&mut results, binary, options);
        }
        None => {
            results.skip(checks::ANNOTATION_SHA256, "no binary at /openshell-sandbox");
            results.skip(checks::RUN_VERSION, "no binary at /openshell-sandbox");
        }
    }
    report.checks = results.results;
    report
}

/// The binary found at its path, as far as the checks got.
struct FoundBinary {
    contents: Arc<FileContents>,
    sha256: String,
    architecture: Option<String>,
}

fn check_binary(
    results: &mut Results,
    fs: &Filesystem,
    options: &VerifyOptions,
) -> Option<FoundBinary> {
    let mount = &options.mount_path;
    let dependent = [
        checks::BINARY_FILE_TYPE,
        checks::BINARY_OWNER,
        checks::BINARY_MODE,
        checks::STATIC_ELF,
    ];
    let Some(node) = fs.nodes.get(LAYER_BINARY_PATH) else {
        if let Some(removal) = fs.removed.get(LAYER_BINARY_PATH) {
            results.fail(
                checks::BINARY_LOCATION,
                format!(
                    "expected {IMAGE_BINARY_PATH}; layer {} deletes it with the whiteout {}, so the mounted image has no binary",
                    removal.layer, removal.whiteout
                ),
            );
        } else {
            let elsewhere = fs.find_named(BINARY_NAME);
            if elsewhere.is_empty() {
                results.fail(
                    checks::BINARY_LOCATION,
                    format!(
                        "expected {IMAGE_BINARY_PATH}; the image has no file named {BINARY_NAME}"
                    ),
                );
            }
            for path in elsewhere {
                results.fail(
                    checks::BINARY_LOCATION,
                    format!(
                        "expected {IMAGE_BINARY_PATH}; the image has {path}, which an image volume at {mount} shows as {}",
                        path_under_mount(mount, path)
                    ),
                );
            }
        }
        for name in dependent {
            results.skip(name, format!("no binary at {IMAGE_BINARY_PATH}"));
        }
        return None;
    };

    let contents = match &node.kind {
        NodeKind::File { contents, .. } => contents.clone(),
        NodeKind::Symlink(target) => {
            let seen = if target.starts_with('/') {
                format!("{target} of the agent container's own filesystem")
            } else {
                path_under_mount(mount, target)
            };
            results.fail(
                checks::BINARY_FILE_TYPE,
                format!(
                    "{IMAGE_BINARY_PATH} is a symlink to {target}, expected a regular file: in an image volume at {mount} the link resolves against the agent container's root, to {seen}"
                ),
            );
            None
        }
        other => {
            results.fail(
                checks::BINARY_FILE_TYPE,
                format!(
                    "{IMAGE_BINARY_PATH} is {}, expected a regular file",
                    other.describe()
                ),
            );
            None
        }
    };
    if node.uid != 0 || node.gid != 0 {
        results.fail(
            checks::BINARY_OWNER,
            format!(
                "{IMAGE_BINARY_PATH} is owned by {}:{}, expected 0:0",
                node.uid, node.gid
            ),
        );
    }
    let mode = node.mode & 0o7777;
    if mode & 0o111 != 0o111 {
        results.fail(
            checks::BINARY_MODE,
            format!("{IMAGE_BINARY_PATH} has mode {mode:04o}, which is not executable by everyone (expected 0555)"),
        );
    }
    if mode & 0o6000 != 0 {
        results.fail(
            checks::BINARY_MODE,
            format!(
                "{IMAGE_BINARY_PATH} has mode {mode:04o}, which sets setuid/setgid (expected 0555)"
            ),
        );
    }
    if mode & 0o002 != 0 {
        results.fail(
            checks::BINARY_MODE,
            format!(
                "{IMAGE_BINARY_PATH} has mode {mode:04o}, which is world-writable (expected 0555)"
            ),
        );
    }
    let Some(contents) = contents else {
        if matches!(node.kind, NodeKind::File { .. }) {
            // Only files named like the binary are kept: this one came by a
            // hard link from a file of another name.
            results.fail(
                checks::STATIC_ELF,
                format!(
                    "{IMAGE_BINARY_PATH} is a hard link to a file not named {BINARY_NAME}, whose contents are not kept, so its ELF cannot be checked (expected the binary itself)"
                ),
            );
        } else {
            results.skip(checks::STATIC_ELF, "no regular file to inspect");
        }
        return None;
    };
    let sha256 = contents.sha256();
    let architecture = match contents.inspect_elf() {
        Ok(info) => {
            for violation in info.static_violations() {
                results.fail(
                    checks::STATIC_ELF,
                    format!("{IMAGE_BINARY_PATH}: {violation}"),
                );
            }
            let architecture = info.oci_architecture().map(str::to_string);
            if architecture.is_none() {
                results.fail(
                    checks::STATIC_ELF,
                    format!(
                        "{IMAGE_BINARY_PATH}: ELF machine {} has no OCI architecture name",
                        info.machine
                    ),
                );
            }
            architecture
        }
        Err(err) => {
            results.fail(checks::STATIC_ELF, format!("{IMAGE_BINARY_PATH}: {err}"));
            None
        }
    };
    Some(FoundBinary {
        contents: Arc::clone(&contents),
        sha256,
        architecture,
    })
}

fn check_config(
    results: &mut Results,
    config: Option<&ImageConfiguration>,
    manifest: &LoadedManifest,
    elf_architecture: Option<&str>,
) {
    let Some(config) = config else {
        return;
    };
    let os = config.os().to_string();
    let architecture = config.architecture().to_string();
    if os != "linux" {
        results.fail(
            checks::PLATFORM,
            format!("the config says os {os}, expected linux"),
        );
    }
    if let Some(platform) = manifest.platform() {
        let index_os = platform.os().to_string();
        let index_architecture = platform.architecture().to_string();
        if index_os != os || index_architecture != architecture {
            results.fail(
                checks::PLATFORM,
                format!(
                    "the index lists this manifest as {index_os}/{index_architecture}, but its config says {os}/{architecture}"
                ),
            );
        }
    }
    if let Some(elf_architecture) = elf_architecture {
        if elf_architecture != architecture {
            results.fail(
                checks::PLATFORM,
                format!(
                    "the config says architecture {architecture}, but {IMAGE_BINARY_PATH} is an ELF for {elf_architecture}"
                ),
            );
        }
    }
    let expected: Vec<String> = IMAGE_ENTRYPOINT
        .iter()
        .map(|part| (*part).to_string())
        .collect();
    match config.config().as_ref().and_then(|runtime| runtime.entrypoint().clone()) {
        Some(entrypoint) if entrypoint == expected => {}
        Some(entrypoint) => results.fail(
            checks::ENTRYPOINT,
            format!(
                "Entrypoint is {entrypoint:?}, expected {expected:?} (the init-container fallback runs copy-self through it)"
            ),
        ),
        None => results.fail(
            checks::ENTRYPOINT,
            format!("the config has no Entrypoint, expected {expected:?} (the init-container fallback runs copy-self through it)"),
        ),
    }
}

fn run_version(results: &mut Results, binary: &FoundBinary, options: &VerifyOptions) {
    if !options.run {
        results.skip(
            checks::RUN_VERSION,
            "not requested (--run runs the binary's version --json)",
        );
        return;
    }
    let host = host_architecture();
    match binary.architecture.as_deref() {
        Some(architecture) if architecture == host => {}
        Some(architecture) => {
            results.skip(
                checks::RUN_VERSION,
                format!("the binary is for {architecture} and this host is {host}, so it cannot run here"),
            );
            return;
        }
        None => {
            results.skip(checks::RUN_VERSION, "the binary's architecture is unknown");
            return;
        }
    }
    match run_extracted(&binary.contents) {
        Ok(version) if version.sha256 == binary.sha256 => {}
        Ok(version) => results.fail(
            checks::RUN_VERSION,
            format!(
                "version --json reports sha256 {}, but the binary in the image has {}",
                version.sha256, binary.sha256
            ),
        ),
        Err(err) => results.fail(checks::RUN_VERSION, err),
    }
}

fn run_extracted(contents: &FileContents) -> Result<VersionReport, String> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    let dir =
        tempfile::tempdir().map_err(|err| format!("could not make a temporary folder: {err}"))?;
    let path = dir.path().join(BINARY_NAME);
    let mut file = std::fs::File::create(&path)
        .map_err(|err| format!("could not extract the binary: {err}"))?;
    contents
        .write_to(&mut file)
        .and_then(|_| file.flush())
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o555)))
        .map_err(|err| format!("could not extract the binary: {err}"))?;
    // Close before running: Linux refuses to execute a file open for writing.
    drop(file);
    let output = std::process::Command::new(&path)
        .args(["version", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| format!("could not run the extracted binary: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{BINARY_NAME} version --json` exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|err| {
        format!(
            "`{BINARY_NAME} version --json` printed something that is not a version report ({err}): {}",
            String::from_utf8_lossy(&output.stdout).trim()
        )
    })
}
