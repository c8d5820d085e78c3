//! The supervisor's crates for one Rust target, as cargo resolves them:
//! what the SBOM lists.
//!
//! The dependency graph comes from `cargo metadata --filter-platform
//! TARGET` (dependency kinds, declared licenses), each crate's sha256 from
//! `Cargo.lock`. Both are read with a few serde structs and a line reader
//! here rather than with the `cargo_metadata` and `cargo-lock` crates: with
//! the dev profile's optimised dependencies those two (and the second toml
//! stack cargo-lock brings) cost about 50 s of CPU in a clean build, for
//! six fields of a JSON format cargo keeps stable (`--format-version 1`)
//! and four `key = "value"` lines per package of a file cargo writes
//! itself. The tests read the workspace's own files both ways and compare
//! (cargo-lock is a dev-dependency for that).
//!
//! A resolution is kept in the workspace's target folder, keyed by the
//! bytes of every file it read (Cargo.lock, `.cargo/config.toml`, the
//! workspace's and its members' manifests), so packaging an unchanged
//! workspace's binary again does not run `cargo metadata` (half a second to
//! a second, most of it rustc telling its configuration).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use openshell_contract::sbom::SUPERVISOR_PACKAGE;
use serde::{Deserialize, Serialize};

/// How long `cargo metadata` may take (it may download a missing crate's
/// manifest, or wait for another cargo's lock) before the build gives up.
pub const CARGO_METADATA_TIMEOUT: Duration = Duration::from_secs(180);

/// Said after every failure to list the crates.
const HINT: &str =
    " (attach an SBOM of your own with --sbom FILE, or build without one with --no-sbom)";

/// Why the crates could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum CratesError {
    /// `cargo metadata` could not run, failed, timed out or printed
    /// something else than its JSON.
    #[error("could not list the supervisor's crates with `{command}`: {reason}{HINT}")]
    CargoMetadata {
        /// The command line.
        command: String,
        /// What went wrong (cargo's own message when it has one).
        reason: String,
    },
    /// The workspace has no supervisor package.
    #[error("the workspace at {workspace} has no package {SUPERVISOR_PACKAGE}{HINT}")]
    NoSupervisor {
        /// Where the workspace is.
        workspace: PathBuf,
    },
    /// `Cargo.lock` could not be read.
    #[error("could not read {path}: {reason}{HINT}")]
    CargoLock {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The supervisor's crates for one target: what an SBOM lists, and what is
/// cached between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedCrates {
    /// The packages reachable from the supervisor through normal and build
    /// dependencies, sorted by name, version and source.
    pub packages: Vec<CrateEntry>,
    /// Index of the supervisor in `packages`.
    pub root: usize,
    /// (dependent, dependency, whether only as a build-dependency), as
    /// indexes into `packages`, sorted.
    pub edges: Vec<(usize, usize, bool)>,
    /// The workspace-relative `Cargo.toml` files the resolution read: the
    /// workspace's, its members' and the path packages'.
    pub manifests: Vec<String>,
}

/// One crate of [`ResolvedCrates`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateEntry {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// cargo's source id (`registry+https://...`, `git+...#COMMIT`); none
    /// for a path package.
    pub source: Option<String>,
    /// The `license` field of its Cargo.toml.
    pub license: Option<String>,
    /// sha256 (hex) of its `.crate` file, from Cargo.lock.
    pub checksum: Option<String>,
}

/// `cargo metadata --format-version 1`, the fields read.
#[derive(Debug, Deserialize)]
pub struct CargoMetadata {
    /// Every package of the resolution.
    pub packages: Vec<MetadataPackage>,
    /// Ids of the workspace's members.
    pub workspace_members: Vec<String>,
    /// The dependency graph (absent with `--no-deps`).
    pub resolve: Option<MetadataResolve>,
}

/// A package of [`CargoMetadata`].
#[derive(Debug, Deserialize)]
pub struct MetadataPackage {
    /// Opaque id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Source id; `null` for a path package.
    pub source: Option<String>,
    /// The `license` field.
    pub license: Option<String>,
    /// Its Cargo.toml.
    pub manifest_path: String,
}

/// The dependency graph of [`CargoMetadata`].
#[derive(Debug, Deserialize)]
pub struct MetadataResolve {
    /// One node per package.
    pub nodes: Vec<MetadataNode>,
}

/// A package's dependencies.
#[derive(Debug, Deserialize)]
pub struct MetadataNode {
    /// The package's id.
    pub id: String,
    /// Its dependencies.
    #[serde(default)]
    pub deps: Vec<MetadataDep>,
}

/// One dependency edge.
#[derive(Debug, Deserialize)]
pub struct MetadataDep {
    /// The dependency's id.
    pub pkg: String,
    /// How it is depended on.
    #[serde(default)]
    pub dep_kinds: Vec<MetadataDepKind>,
}

/// A dependency kind: `null` (normal), `"dev"` or `"build"`.
#[derive(Debug, Deserialize)]
pub struct MetadataDepKind {
    /// The kind; `None` is a normal dependency.
    pub kind: Option<String>,
}

/// Checksums by (name, version): the (source, sha256) pairs Cargo.lock has.
pub type LockChecksums = HashMap<(String, String), Vec<(String, String)>>;

/// The `checksum` of every package in a Cargo.lock (format 3 or 4, where
/// each `[[package]]` carries its own), by name and version. Lines cargo
/// writes as `key = "value"` are read; a value with an escape is skipped
/// (cargo writes none for these keys).
pub fn lock_checksums(text: &str) -> LockChecksums {
    #[derive(Default)]
    struct Entry {
        name: Option<String>,
        version: Option<String>,
        source: Option<String>,
        checksum: Option<String>,
    }
    fn flush(entry: Entry, into: &mut LockChecksums) {
        if let (Some(name), Some(version), Some(checksum)) =
            (entry.name, entry.version, entry.checksum)
        {
            into.entry((name, version))
                .or_default()
                .push((entry.source.unwrap_or_default(), checksum));
        }
    }
    let mut checksums = LockChecksums::new();
    let mut current: Option<Entry> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            if let Some(entry) = current.take() {
                flush(entry, &mut checksums);
            }
            if line == "[[package]]" {
                current = Some(Entry::default());
            }
            continue;
        }
        let Some(entry) = current.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let Some(value) = value
            .strip_prefix('"')
            .and_then(|value| value.strip_suffix('"'))
            .filter(|value| !value.contains(['"', '\\']))
        else {
            continue;
        };
        let slot = match key.trim() {
            "name" => &mut entry.name,
            "version" => &mut entry.version,
            "source" => &mut entry.source,
            "checksum" => &mut entry.checksum,
            _ => continue,
        };
        *slot = Some(value.to_string());
    }
    if let Some(entry) = current.take() {
        flush(entry, &mut checksums);
    }
    checksums
}

/// The crate's sha256 from Cargo.lock: by name, version and source, or by
/// name and version when only one source has it.
fn checksum(
    checksums: &LockChecksums,
    name: &str,
    version: &str,
    source: Option<&str>,
) -> Option<String> {
    let candidates = checksums.get(&(name.to_string(), version.to_string()))?;
    let source = source.unwrap_or_default();
    candidates
        .iter()
        .find(|(candidate, _)| candidate == source)
        .or_else(|| (candidates.len() == 1).then(|| &candidates[0]))
        .map(|(_, sum)| sum.clone())
}

/// The packages reachable from the supervisor through normal and build
/// dependencies (dev-dependencies left out), with the edges between them
/// and each one's checksum; `None` when the workspace has no supervisor
/// package or cargo gave no dependency graph.
pub fn resolved_crates(
    metadata: &CargoMetadata,
    checksums: &LockChecksums,
    workspace: &Path,
) -> Option<ResolvedCrates> {
    let root = metadata.packages.iter().find(|package| {
        package.name == SUPERVISOR_PACKAGE && metadata.workspace_members.contains(&package.id)
    })?;
    let resolve = metadata.resolve.as_ref()?;
    let packages: HashMap<&str, &MetadataPackage> = metadata
        .packages
        .iter()
        .map(|package| (package.id.as_str(), package))
        .collect();
    let nodes: HashMap<&str, &MetadataNode> = resolve
        .nodes
        .iter()
        .map(|node| (node.id.as_str(), node))
        .collect();
    let mut reached: BTreeMap<&str, &MetadataPackage> = BTreeMap::new();
    let mut edges: BTreeSet<(&str, &str, bool)> = BTreeSet::new();
    let mut stack = vec![root.id.as_str()];
    while let Some(id) = stack.pop() {
        if reached.contains_key(id) {
            continue;
        }
        reached.insert(id, packages.get(id)?);
        let Some(node) = nodes.get(id) else {
            continue;
        };
        for dep in &node.deps {
            let normal = dep.dep_kinds.iter().any(|info| info.kind.is_none());
            let build = dep
                .dep_kinds
                .iter()
                .any(|info| info.kind.as_deref() == Some("build"));
            if !(normal || build) {
                continue;
            }
            edges.insert((id, dep.pkg.as_str(), !normal));
            stack.push(&dep.pkg);
        }
    }
    // Sorted by name, version and source, so nothing depends on the order
    // cargo listed packages in.
    let mut ordered: Vec<&MetadataPackage> = reached.values().copied().collect();
    ordered.sort_by(|a, b| (&a.name, &a.version, &a.source).cmp(&(&b.name, &b.version, &b.source)));
    let position: HashMap<&str, usize> = ordered
        .iter()
        .enumerate()
        .map(|(index, package)| (package.id.as_str(), index))
        .collect();
    let entries = ordered
        .iter()
        .map(|package| CrateEntry {
            name: package.name.clone(),
            version: package.version.clone(),
            source: package.source.clone(),
            license: package.license.clone(),
            checksum: checksum(
                checksums,
                &package.name,
                &package.version,
                package.source.as_deref(),
            ),
        })
        .collect();
    let mut edges: Vec<(usize, usize, bool)> = edges
        .iter()
        .filter_map(|(from, to, build)| Some((*position.get(from)?, *position.get(to)?, *build)))
        .collect();
    edges.sort_unstable();
    // What the resolution read: the workspace's manifest and every path
    // package's (a member's features can change what the supervisor's
    // dependencies pull in).
    let mut manifests: BTreeSet<String> = BTreeSet::from(["Cargo.toml".to_string()]);
    for package in metadata.packages.iter().filter(|p| p.source.is_none()) {
        if let Ok(relative) = Path::new(&package.manifest_path).strip_prefix(workspace) {
            manifests.insert(relative.display().to_string());
        }
    }
    Some(ResolvedCrates {
        packages: entries,
        root: *position.get(root.id.as_str())?,
        edges,
        manifests: manifests.into_iter().collect(),
    })
}

/// File in the workspace's target folder where resolutions are kept.
const CACHE_FILE: &str = "build-image/sbom-crates.json";

/// Bumped when the meaning of a cache record changes.
const CACHE_FORMAT: u32 = 2;

/// Resolutions kept (a few targets).
const CACHE_KEEP: usize = 8;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CrateCache {
    format: u32,
    entries: Vec<CrateCacheEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CrateCacheEntry {
    target: Option<String>,
    /// sha256 of Cargo.lock, `.cargo/config.toml` and `crates.manifests`.
    inputs: String,
    crates: ResolvedCrates,
}

/// The crates of one workspace's supervisor, per target: from this run,
/// the cache, or cargo.
pub struct WorkspaceCrates {
    workspace: PathBuf,
    cargo_lock_sha256: String,
    cache_path: PathBuf,
    resolved: HashMap<Option<String>, ResolvedCrates>,
}

impl WorkspaceCrates {
    /// The crates of the workspace at `workspace` (its Cargo.lock read
    /// now, for its digest).
    pub fn new(workspace: &Path) -> Result<Self, CratesError> {
        let path = crate::provenance::cargo_lock_path(workspace);
        let bytes = std::fs::read(&path).map_err(|err| CratesError::CargoLock {
            path: path.clone(),
            reason: err.to_string(),
        })?;
        Ok(Self {
            workspace: workspace.to_path_buf(),
            cargo_lock_sha256: openshell_contract::digest::sha256_hex(&bytes),
            cache_path: openshell_contract::cargo::target_dir(workspace).join(CACHE_FILE),
            resolved: HashMap::new(),
        })
    }

    /// sha256 (hex) of the workspace's `Cargo.lock`.
    pub fn cargo_lock_sha256(&self) -> &str {
        &self.cargo_lock_sha256
    }

    /// The supervisor's crates for `target` (every platform's when `None`).
    pub fn for_target(&mut self, target: Option<&str>) -> Result<&ResolvedCrates, CratesError> {
        let key = target.map(str::to_string);
        if !self.resolved.contains_key(&key) {
            let crates = match self.cached(target) {
                Some(crates) => crates,
                None => {
                    let crates = self.resolve(target)?;
                    self.remember(target, &crates);
                    crates
                }
            };
            self.resolved.insert(key.clone(), crates);
        }
        self.resolved
            .get(&key)
            .ok_or_else(|| CratesError::NoSupervisor {
                workspace: self.workspace.clone(),
            })
    }

    /// sha256 over the files a resolution read (absent ones count as such).
    fn inputs_digest(&self, manifests: &[String]) -> String {
        let mut hasher = openshell_contract::digest::Digester::sha256();
        let mut files = vec!["Cargo.lock".to_string(), ".cargo/config.toml".to_string()];
        files.extend(manifests.iter().cloned());
        for file in files {
            hasher.update((file.len() as u64).to_le_bytes());
            hasher.update(file.as_bytes());
            match std::fs::read(self.workspace.join(&file)) {
                Ok(bytes) => {
                    hasher.update((bytes.len() as u64).to_le_bytes());
                    hasher.update(&bytes);
                }
                Err(_) => hasher.update(u64::MAX.to_le_bytes()),
            }
        }
        hasher.finish_hex()
    }

    fn load_cache(&self) -> CrateCache {
        std::fs::read(&self.cache_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CrateCache>(&bytes).ok())
            .filter(|cache| cache.format == CACHE_FORMAT)
            .unwrap_or_default()
    }

    fn cached(&self, target: Option<&str>) -> Option<ResolvedCrates> {
        self.load_cache()
            .entries
            .into_iter()
            .filter(|entry| entry.target.as_deref() == target)
            .find(|entry| entry.inputs == self.inputs_digest(&entry.crates.manifests))
            .map(|entry| entry.crates)
    }

    /// Keeps a resolution for later runs (written atomically); a failure
    /// only costs the next run a `cargo metadata`.
    fn remember(&self, target: Option<&str>, crates: &ResolvedCrates) {
        let mut cache = self.load_cache();
        cache.format = CACHE_FORMAT;
        cache
            .entries
            .retain(|entry| entry.target.as_deref() != target);
        cache.entries.insert(
            0,
            CrateCacheEntry {
                target: target.map(str::to_string),
                inputs: self.inputs_digest(&crates.manifests),
                crates: crates.clone(),
            },
        );
        cache.entries.truncate(CACHE_KEEP);
        if let Ok(bytes) = serde_json::to_vec(&cache) {
            let _ = std::fs::create_dir_all(openshell_transport::atomic::parent(&self.cache_path));
            let _ = openshell_transport::atomic::write_file(&self.cache_path, &bytes);
        }
    }

    /// Runs `cargo metadata` and reads Cargo.lock's checksums.
    fn resolve(&self, target: Option<&str>) -> Result<ResolvedCrates, CratesError> {
        let metadata = cargo_metadata(&self.workspace, target)?;
        let path = crate::provenance::cargo_lock_path(&self.workspace);
        let text = std::fs::read_to_string(&path).map_err(|err| CratesError::CargoLock {
            path: path.clone(),
            reason: err.to_string(),
        })?;
        resolved_crates(&metadata, &lock_checksums(&text), &self.workspace).ok_or_else(|| {
            CratesError::NoSupervisor {
                workspace: self.workspace.clone(),
            }
        })
    }
}

/// The cargo to run: the one running us (`cargo run` sets `CARGO`), else
/// the first on `PATH`.
fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// Runs `cargo metadata --format-version 1 --locked` for the workspace
/// (filtered to `target` when given) with a deadline, and parses it.
pub fn cargo_metadata(
    workspace: &Path,
    target: Option<&str>,
) -> Result<CargoMetadata, CratesError> {
    let mut args = vec![
        "metadata".to_string(),
        "--format-version".to_string(),
        "1".to_string(),
        "--locked".to_string(),
    ];
    if let Some(target) = target {
        args.extend(["--filter-platform".to_string(), target.to_string()]);
    }
    let line = format!("cargo {}", args.join(" "));
    let fail = |reason: String| CratesError::CargoMetadata {
        command: line.clone(),
        reason,
    };
    let mut command = Command::new(cargo_program());
    command
        .args(&args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    // cargo's own output, bounded only against a runaway: this workspace's
    // metadata is a few MB.
    const METADATA_LIMIT: u64 = 256 * 1024 * 1024;
    let output = openshell_contract::process::run_bounded(
        &mut command,
        CARGO_METADATA_TIMEOUT,
        METADATA_LIMIT,
    )
    .map_err(&fail)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(fail(format!("{} ({})", stderr.trim(), output.status)));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|err| fail(format!("its output is not the JSON expected: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    #[test]
    fn checksums_match_cargo_lock_on_the_workspace_lockfile() {
        let path = workspace().join("Cargo.lock");
        let text = std::fs::read_to_string(&path).unwrap();
        let ours = lock_checksums(&text);
        let theirs = cargo_lock::Lockfile::load(&path).unwrap();
        let mut compared = 0;
        for package in &theirs.packages {
            let key = (package.name.to_string(), package.version.to_string());
            match &package.checksum {
                Some(sum) => {
                    let source = package
                        .source
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    let found = ours.get(&key).unwrap_or_else(|| panic!("{key:?} missing"));
                    assert!(
                        found.contains(&(source.clone(), sum.to_string())),
                        "{key:?}: {found:?} lacks ({source}, {sum})"
                    );
                    compared += 1;
                }
                None => assert!(!ours.contains_key(&key), "{key:?} has no checksum"),
            }
        }
        let ours_count: usize = ours.values().map(Vec::len).sum();
        assert_eq!(ours_count, compared);
        assert!(compared > 100, "only {compared} packages compared");
    }

    #[test]
    fn checksums_are_read_per_source_and_version() {
        let text = r#"
version = 4

[[package]]
name = "a"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aa"
dependencies = [
 "b 2.0.0 (git+https://example/b?branch=main#0123)",
]

[[package]]
name = "a"
version = "1.0.0"
source = "sparse+https://example/index/"
checksum = "bb"

[[package]]
name = "b"
version = "2.0.0"
source = "git+https://example/b?branch=main#0123"

[[package]]
name = "local"
version = "0.1.0"

[metadata]
"checksum x 1 (registry)" = "cc"
"#;
        let sums = lock_checksums(text);
        assert_eq!(sums.len(), 1, "{sums:?}");
        let a = &sums[&("a".to_string(), "1.0.0".to_string())];
        assert_eq!(a.len(), 2);
        assert_eq!(
            checksum(&sums, "a", "1.0.0", Some("sparse+https://example/index/")).as_deref(),
            Some("bb")
        );
        assert_eq!(checksum(&sums, "b", "2.0.0", None), None);
        assert_eq!(checksum(&sums, "local", "0.1.0", None), None);
        // Two sources, none matching: no guess.
        assert_eq!(checksum(&sums, "a", "1.0.0", Some("other")), None);
    }

    #[test]
    fn cargo_metadata_of_the_workspace_gives_the_supervisor_closure() {
        let workspace = workspace();
        let metadata = cargo_metadata(&workspace, Some("x86_64-unknown-linux-musl")).unwrap();
        let text = std::fs::read_to_string(workspace.join("Cargo.lock")).unwrap();
        let crates = resolved_crates(&metadata, &lock_checksums(&text), &workspace).unwrap();
        let names: Vec<&str> = crates.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(crates.packages[crates.root].name, SUPERVISOR_PACKAGE);
        for expected in ["nix", "rustix", "openshell-contract", "serde"] {
            assert!(names.contains(&expected), "{expected} missing: {names:?}");
        }
        for absent in ["tokio", "oci-client", "build-image", "tempfile-test-only"] {
            assert!(!names.contains(&absent), "{absent} listed: {names:?}");
        }
        // Every crate from crates.io has its checksum; path crates none.
        for package in &crates.packages {
            assert_eq!(
                package.checksum.is_some(),
                package.source.is_some(),
                "{package:?}"
            );
        }
        assert!(crates.manifests.contains(&"Cargo.toml".to_string()));
        assert!(
            crates
                .manifests
                .contains(&"supervisor/Cargo.toml".to_string())
        );
        // Edges point inside the list, and the root depends on something.
        assert!(
            crates.edges.iter().all(|&(from, to, _)| {
                from < crates.packages.len() && to < crates.packages.len()
            })
        );
        assert!(crates.edges.iter().any(|&(from, _, _)| from == crates.root));
    }

    #[test]
    fn a_failing_cargo_metadata_names_the_command() {
        let empty = tempfile::tempdir().unwrap();
        let err = cargo_metadata(empty.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("cargo metadata --format-version 1 --locked"),
            "{err}"
        );
        assert!(err.contains("--no-sbom"), "{err}");
    }
}
