//! The supervisor's SBOM, and the OCI 1.1 referrer that attaches it to a
//! platform manifest.
//!
//! The SBOM is an SPDX 2.3 JSON document listing the crates compiled into
//! `openshell-sandbox` for one platform ([`crate::crates`]: the dependency
//! graph as `cargo metadata --filter-platform` resolves it for that target,
//! with declared licenses and each crate's sha256 from `Cargo.lock`), the
//! binary's own sha256, and the rustc that compiled it. Dev-dependencies
//! are left out; build-dependencies (build scripts, proc macros) are listed
//! as `BUILD_DEPENDENCY_OF`.
//!
//! The document is reproducible: packages and relationships are sorted,
//! the creation time is `SOURCE_DATE_EPOCH`, and the namespace (which SPDX
//! wants unique per document) is derived from the document's own content
//! instead of a random UUID, so the same inputs give the same bytes and
//! digest, and different inputs a different namespace.
//!
//! The SPDX types are written here rather than taken from `serde-spdx` or
//! `spdx-rs`: serde-spdx generates its types from the schema in a build
//! script (schemafy, derive_builder, a second thiserror: many seconds of
//! every clean build) and spdx-rs is unmaintained since 2023, while the
//! document written needs a dozen fields. Its validity is checked by the
//! reference validator, the SPDX project's `pyspdxtools`, in the tests.
//!
//! With `--binary` (a binary this run did not build), the SBOM still lists
//! what the workspace's `Cargo.lock` resolves for the supervisor, and says
//! so in its comment; `--sbom FILE` attaches a document of the user's
//! instead, `--no-sbom` none.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openshell_contract::BINARY_NAME;
use openshell_contract::sbom::{
    SPDX_FILE_NAME, SPDX_JSON_ARTIFACT_TYPE, SUPERVISOR_PACKAGE, identify,
};
use serde::Serialize;

use crate::crates::{CrateEntry, CratesError, ResolvedCrates, WorkspaceCrates};
use openshell_contract::digest::sha256_digest;
use openshell_contract::platform::Platform;

use crate::metadata::ImageMetadata;

/// Largest SBOM file `--sbom` accepts: far above any real one, far below
/// what would strain a registry.
pub const MAX_SBOM_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// The SPDX version written.
pub const SPDX_VERSION: &str = "SPDX-2.3";

/// Where the SPDX project asks tools without a namespace of their own to
/// root document namespaces.
const NAMESPACE_BASE: &str = "https://spdx.org/spdxdocs";

/// crates.io's index, as cargo names the source of its packages.
const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// Which SBOM, if any, each platform manifest gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SbomChoice {
    /// Generate the SPDX SBOM from the workspace (the default).
    #[default]
    Generate,
    /// Attach this SPDX or CycloneDX JSON file to every platform (`--sbom`).
    File(PathBuf),
    /// None (`--no-sbom`).
    Skip,
}

/// An SBOM document ready to attach.
#[derive(Debug, Clone)]
pub struct Sbom {
    /// `application/spdx+json` or `application/vnd.cyclonedx+json`: the
    /// referrer's `artifactType` and the layer's media type.
    pub artifact_type: String,
    /// The document.
    pub bytes: Arc<Vec<u8>>,
    /// The name the layer carries (`org.opencontainers.image.title`).
    pub file_name: String,
    /// One line about it, for progress and reports (`SPDX-2.3, 57 packages`).
    pub summary: String,
}

/// Why an SBOM could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// The supervisor's crates could not be listed.
    #[error(transparent)]
    Crates(#[from] CratesError),
    /// An `--sbom` file is not an SBOM this tool can attach.
    #[error("--sbom {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, and what was expected.
        reason: String,
    },
    /// The document could not be serialised.
    #[error("could not write the SBOM as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The Rust target a platform's supervisor is built for, as
/// `--filter-platform` takes it; `None` for a platform without a musl
/// target (the SBOM then lists the dependencies of every platform).
pub fn rust_target(platform: &Platform) -> Option<String> {
    platform.musl_target().map(str::to_string)
}

/// Reads `--sbom FILE`: an SPDX 2.x or CycloneDX JSON document.
pub fn read_file(path: &Path) -> Result<Sbom, SbomError> {
    let refuse = |reason: String| SbomError::File {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|err| refuse(err.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SBOM_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| refuse(err.to_string()))?;
    if bytes.len() as u64 > MAX_SBOM_FILE_SIZE {
        return Err(refuse(format!(
            "larger than {MAX_SBOM_FILE_SIZE} bytes; expected an SBOM document"
        )));
    }
    let (artifact_type, summary) = identify(&bytes).map_err(refuse)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| SPDX_FILE_NAME.to_string());
    Ok(Sbom {
        artifact_type: artifact_type.to_string(),
        bytes: Arc::new(bytes),
        file_name,
        summary,
    })
}

/// What the SBOM of one platform's binary is made from.
#[derive(Debug, Clone)]
pub struct SbomRequest<'a> {
    /// The platform.
    pub platform: &'a Platform,
    /// sha256 (hex) of the binary.
    pub binary_sha256: &'a str,
    /// The rustc that compiled it, as it records itself.
    pub rustc_version: Option<&'a str>,
    /// Whether the binary was given prebuilt (`--binary`) rather than built
    /// from the workspace by this run.
    pub prebuilt: bool,
    /// Version, revision, source and time of the image.
    pub metadata: &'a ImageMetadata,
}

/// Makes SPDX SBOMs from one workspace's crates.
pub struct SbomGenerator {
    crates: WorkspaceCrates,
}

impl SbomGenerator {
    /// A generator for the workspace at `workspace`.
    pub fn new(workspace: &Path) -> Result<Self, SbomError> {
        Ok(Self {
            crates: WorkspaceCrates::new(workspace)?,
        })
    }

    /// sha256 (hex) of the workspace's `Cargo.lock`.
    pub fn cargo_lock_sha256(&self) -> &str {
        self.crates.cargo_lock_sha256()
    }

    /// The SPDX SBOM of one platform's binary.
    pub fn generate(&mut self, request: &SbomRequest<'_>) -> Result<Sbom, SbomError> {
        let target = rust_target(request.platform);
        let lock = self.crates.cargo_lock_sha256().to_string();
        let crates = self.crates.for_target(target.as_deref())?;
        let document = spdx_document(crates, &lock, target.as_deref(), request);
        let packages = document.packages.len();
        let bytes = finish(document)?;
        Ok(Sbom {
            artifact_type: SPDX_JSON_ARTIFACT_TYPE.to_string(),
            bytes: Arc::new(bytes),
            file_name: SPDX_FILE_NAME.to_string(),
            summary: format!("{SPDX_VERSION}, {packages} packages"),
        })
    }
}

/// An SPDX 2.3 document, with the fields written here.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxDocument {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    comment: String,
    packages: Vec<SpdxPackage>,
    relationships: Vec<SpdxRelationship>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    version_info: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_file_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    download_location: String,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<SpdxChecksum>,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<SpdxExternalRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxChecksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxRelationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

const NOASSERTION: &str = "NOASSERTION";

/// An SPDX element ID for a package: `SPDXRef-Package-NAME-VERSION`, with
/// every character SPDX does not allow in an ID replaced by `-`.
fn package_id(name: &str, version: &str) -> String {
    let sanitize = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("SPDXRef-Package-{}-{}", sanitize(name), sanitize(version))
}

/// A Cargo `license` field as an SPDX license expression: the old `/`
/// separator becomes `OR`; anything that is not plainly an expression
/// (unexpected characters) is `NOASSERTION` rather than a guess.
fn license_expression(license: Option<&str>) -> String {
    let Some(license) = license.map(str::trim).filter(|text| !text.is_empty()) else {
        return NOASSERTION.to_string();
    };
    let expression = license
        .split('/')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" OR ");
    let plain = expression
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | ' ' | '(' | ')' | ':'));
    if plain {
        expression
    } else {
        NOASSERTION.to_string()
    }
}

/// Where a package can be downloaded, in SPDX's form, and its purl.
fn locations(package: &CrateEntry, root_location: &str) -> (String, Option<String>) {
    let Some(source) = package.source.as_deref() else {
        // A path package: one of the workspace's own.
        return (root_location.to_string(), None);
    };
    if CRATES_IO_SOURCES.contains(&source) {
        return (
            format!(
                "https://crates.io/api/v1/crates/{}/{}/download",
                package.name, package.version
            ),
            Some(format!("pkg:cargo/{}@{}", package.name, package.version)),
        );
    }
    if let Some(git) = source.strip_prefix("git+") {
        // git+URL?branch=x#COMMIT: SPDX writes git+URL@COMMIT.
        let (url, commit) = git.split_once('#').unwrap_or((git, ""));
        let url = url.split('?').next().unwrap_or(url);
        let location = if commit.is_empty() {
            format!("git+{url}")
        } else {
            format!("git+{url}@{commit}")
        };
        return (location, None);
    }
    (NOASSERTION.to_string(), None)
}

/// The SPDX document for `request`, listing `crates`.
fn spdx_document(
    crates: &ResolvedCrates,
    cargo_lock_sha256: &str,
    target: Option<&str>,
    request: &SbomRequest<'_>,
) -> SpdxDocument {
    let image = request.metadata;
    let root_location = match &image.revision {
        Some(revision) if image.source.starts_with("https://") => {
            format!("git+{}@{revision}", image.source)
        }
        _ => NOASSERTION.to_string(),
    };
    // IDs follow the sorted order; a clash gets a numeric suffix.
    let mut ids: Vec<String> = Vec::with_capacity(crates.packages.len());
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for package in &crates.packages {
        let base = package_id(&package.name, &package.version);
        let mut id = base.clone();
        let mut suffix = 2;
        while taken.contains(&id) {
            id = format!("{base}-{suffix}");
            suffix += 1;
        }
        taken.insert(id.clone());
        ids.push(id);
    }

    let mut packages = Vec::new();
    for (index, package) in crates.packages.iter().enumerate() {
        let is_root = index == crates.root;
        let (download_location, purl) = locations(package, &root_location);
        let checksum = if is_root {
            Some(request.binary_sha256.to_string())
        } else {
            package.checksum.clone()
        };
        packages.push(SpdxPackage {
            spdx_id: ids[index].clone(),
            name: package.name.clone(),
            version_info: if is_root {
                image.version.clone()
            } else {
                package.version.clone()
            },
            package_file_name: is_root.then(|| BINARY_NAME.to_string()),
            primary_package_purpose: Some(if is_root { "APPLICATION" } else { "LIBRARY" }),
            download_location,
            files_analyzed: false,
            checksums: checksum
                .into_iter()
                .map(|value| SpdxChecksum {
                    algorithm: "SHA256",
                    checksum_value: value,
                })
                .collect(),
            license_concluded: NOASSERTION,
            license_declared: license_expression(package.license.as_deref()),
            copyright_text: NOASSERTION,
            external_refs: purl
                .into_iter()
                .map(|locator| SpdxExternalRef {
                    reference_category: "PACKAGE-MANAGER",
                    reference_type: "purl",
                    reference_locator: locator,
                })
                .collect(),
            comment: is_root.then(|| {
                format!(
                    "The {BINARY_NAME} executable for {}; its checksum is the binary's.",
                    request.platform
                )
            }),
        });
    }

    let root_id = ids[crates.root].clone();
    let mut relationships = vec![SpdxRelationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        relationship_type: "DESCRIBES",
        related_spdx_element: root_id.clone(),
    }];
    let mut edges = Vec::new();
    for &(from, to, build_only) in &crates.edges {
        let (Some(from), Some(to)) = (ids.get(from), ids.get(to)) else {
            continue;
        };
        edges.push(if build_only {
            SpdxRelationship {
                spdx_element_id: to.clone(),
                relationship_type: "BUILD_DEPENDENCY_OF",
                related_spdx_element: from.clone(),
            }
        } else {
            SpdxRelationship {
                spdx_element_id: from.clone(),
                relationship_type: "DEPENDS_ON",
                related_spdx_element: to.clone(),
            }
        });
    }
    if let Some(rustc) = request.rustc_version {
        // `rustc 1.95.0 (59807616e 2026-04-14)`: the version is the second word.
        let version = rustc.split_whitespace().nth(1).unwrap_or(rustc);
        let mut id = package_id("rustc", version);
        while taken.contains(&id) {
            id.push_str("-toolchain");
        }
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: "rustc".into(),
            version_info: version.to_string(),
            package_file_name: None,
            primary_package_purpose: Some("APPLICATION"),
            download_location: NOASSERTION.into(),
            files_analyzed: false,
            checksums: Vec::new(),
            license_concluded: NOASSERTION,
            license_declared: "MIT OR Apache-2.0".into(),
            copyright_text: NOASSERTION,
            external_refs: Vec::new(),
            comment: Some(format!(
                "{rustc}, as the binary records it; the Rust standard library linked into the binary comes with it."
            )),
        });
        edges.push(SpdxRelationship {
            spdx_element_id: id,
            relationship_type: "BUILD_TOOL_OF",
            related_spdx_element: root_id,
        });
    }
    edges.sort();
    relationships.extend(edges);

    let platform_name = request.platform.to_string().replace('/', "-");
    let name = format!("{BINARY_NAME}-{}-{platform_name}", image.version);
    let resolution = match target {
        Some(target) => format!("cargo metadata --filter-platform {target}"),
        None => "cargo metadata for every platform (no Rust target is known for this one)".into(),
    };
    let origin = if request.prebuilt {
        format!(
            "The binary (sha256 {}) was given prebuilt (--binary) and not built by this run: the crates listed are those the workspace's Cargo.lock resolves for {SUPERVISOR_PACKAGE}, not read from the binary.",
            request.binary_sha256
        )
    } else {
        format!(
            "The binary (sha256 {}) was built from this workspace by the same run.",
            request.binary_sha256
        )
    };
    let comment = format!(
        "Crates compiled into {SUPERVISOR_PACKAGE} {} for {}, as resolved by the workspace's Cargo.lock (sha256 {cargo_lock_sha256}) with {resolution}, features unified across the workspace as cargo metadata resolves them. Normal dependencies are DEPENDS_ON, build scripts and procedural macros BUILD_DEPENDENCY_OF; dev-dependencies are left out. {origin}",
        image.version, request.platform
    );
    SpdxDocument {
        spdx_version: SPDX_VERSION,
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name,
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: image.epoch.rfc3339(),
            creators: vec![format!("Tool: build-image-{}", env!("CARGO_PKG_VERSION"))],
        },
        comment,
        packages,
        relationships,
    }
}

/// Serialises the document, its namespace derived from its own content (so
/// it is unique per content and stable across runs).
fn finish(mut document: SpdxDocument) -> Result<Vec<u8>, SbomError> {
    let unnamed = serde_json::to_vec(&document)?;
    let content = sha256_digest(&unnamed);
    let hex = content.trim_start_matches("sha256:");
    document.document_namespace = format!("{NAMESPACE_BASE}/{}-{hex}", document.name);
    let mut bytes = serde_json::to_vec_pretty(&document)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_the_platform() {
        assert_eq!(
            rust_target(&Platform::linux("amd64")).as_deref(),
            Some("x86_64-unknown-linux-musl")
        );
        assert_eq!(
            rust_target(&Platform::linux("arm64")).as_deref(),
            Some("aarch64-unknown-linux-musl")
        );
        assert_eq!(rust_target(&Platform::linux("mips")), None);
    }

    #[test]
    fn licenses_become_spdx_expressions() {
        assert_eq!(
            license_expression(Some("MIT/Apache-2.0")),
            "MIT OR Apache-2.0"
        );
        assert_eq!(
            license_expression(Some("(MIT OR Apache-2.0) AND Unicode-3.0")),
            "(MIT OR Apache-2.0) AND Unicode-3.0"
        );
        assert_eq!(
            license_expression(Some("Apache-2.0 WITH LLVM-exception OR MIT")),
            "Apache-2.0 WITH LLVM-exception OR MIT"
        );
        assert_eq!(license_expression(None), NOASSERTION);
        assert_eq!(license_expression(Some("  ")), NOASSERTION);
        assert_eq!(
            license_expression(Some("see LICENSE, \"custom\"")),
            NOASSERTION
        );
    }

    #[test]
    fn ids_keep_only_what_spdx_allows() {
        assert_eq!(
            package_id("linux_raw-sys", "1.0.0+spec-1"),
            "SPDXRef-Package-linux-raw-sys-1.0.0-spec-1"
        );
    }
}
