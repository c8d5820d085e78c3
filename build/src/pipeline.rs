//! The build command from start to end: binaries in, image verified and
//! published, [`BuildResult`] out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use openshell_contract::build_result::{BuildResult, PlatformImage};
use openshell_registry::RegistryOptions;
use openshell_transport::oci_layout::{LOCK_TIMEOUT, LayoutLock, blob_path};
use openshell_transport::reference::check_tag;
use openshell_transport::{DestinationOptions, ImageReference, TransportError, open_destination};

use crate::binary::{self, BinaryError, BinaryFacts, LEADING_ROOM, StatKey, SupervisorBinary};
use crate::built::{BuiltLayers, BuiltSource};
use crate::cache::{BinaryRecord, BuildCache, LayerKey, LayerRecord};
use crate::image::{
    self, Blob, BlobData, BuiltImage, ImageError, LayerBlob, Referrer, layer_descriptor,
};
use crate::layer::{self, LayerError, LayerSettings};
use crate::progress::{Progress, human_size};
use crate::supervisor_build::SupervisorBuildError;
use openshell_contract::LAYER_BINARY_PATH;
use openshell_contract::platform::Platform;
use openshell_supply_chain::metadata::{ImageMetadata, PlatformProvenance};
use openshell_supply_chain::sbom::{Sbom, SbomChoice, SbomError, SbomGenerator, SbomRequest};
use openshell_verify::filesystem::Filesystem;
use openshell_verify::verify::{self, VerifyOptions, VerifyReport};

/// One `--binary`: a path, with the platform it is for when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryInput {
    /// `os/arch` given with `PLATFORM=PATH`; else read from the ELF.
    pub platform: Option<Platform>,
    /// The executable.
    pub path: PathBuf,
}

impl std::str::FromStr for BinaryInput {
    type Err = openshell_contract::platform::PlatformError;

    /// `PATH`, or `os/arch[/variant]=PATH`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some((platform, path)) = text.split_once('=') {
            if platform.contains('/') && !path.is_empty() {
                return Ok(Self {
                    platform: Some(platform.parse()?),
                    path: PathBuf::from(path),
                });
            }
        }
        Ok(Self {
            platform: None,
            path: PathBuf::from(text),
        })
    }
}

/// Everything a build needs to know.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Binaries to package; empty means: build the supervisor first.
    pub binaries: Vec<BinaryInput>,
    /// Where to write the image, in order. The first OCI layout among them
    /// also keeps the build cache; there must be one.
    pub destinations: Vec<ImageReference>,
    /// Tags for destinations whose reference names none.
    pub tags: Vec<String>,
    /// Repository name a docker-archive's image gets when loaded.
    pub archive_name: String,
    /// How to reach registries.
    pub registry: RegistryOptions,
    /// Annotations and time stamp.
    pub metadata: ImageMetadata,
    /// Compression settings.
    pub layer: LayerSettings,
    /// Verification settings.
    pub verify: VerifyOptions,
    /// The workspace, to build the supervisor in, and whose Cargo.lock the
    /// SBOM lists.
    pub workspace: Option<PathBuf>,
    /// Platforms to build the supervisor for when no binary is given;
    /// empty means the defaults (linux/amd64 and linux/arm64).
    pub platforms: Vec<Platform>,
    /// Which SBOM each platform manifest gets.
    pub sbom: SbomChoice,
    /// Sign the image (after it verified) and attach SLSA provenance.
    pub sign: Option<crate::signatures::SignSettings>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A binary cannot be packaged.
    #[error(transparent)]
    Binary(#[from] BinaryError),
    /// The supervisor could not be built.
    #[error(transparent)]
    SupervisorBuild(#[from] SupervisorBuildError),
    /// The layer could not be built.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The image could not be assembled.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The SBOM could not be made or read.
    #[error(transparent)]
    Sbom(#[from] SbomError),
    /// Reading or writing an image failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The image failed verification; nothing was published.
    #[error("the image failed verification, so nothing was written:\n{report}")]
    Verification {
        /// The human report.
        report: String,
    },
    /// The `--binary` options do not fit together.
    #[error("{0}")]
    Usage(String),
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The result, as `--json` prints it.
    pub result: BuildResult,
    /// The verification of the image before it was published.
    pub report: VerifyReport,
    /// Platforms whose layer was reused from an earlier run.
    pub reused_layers: Vec<String>,
}

/// A binary ready for packaging.
struct PreparedBinary {
    path: PathBuf,
    platform: Platform,
    stat: StatKey,
    /// From the cache, when the file is unchanged since a run that read it.
    known: Option<BinaryFacts>,
    /// The bytes, when read in this run.
    binary: Option<SupervisorBinary>,
}

fn check_inputs(inputs: &[BinaryInput]) -> Result<(), BuildError> {
    if inputs.len() > 1 {
        if let Some(bare) = inputs.iter().find(|input| input.platform.is_none()) {
            return Err(BuildError::Usage(format!(
                "--binary {} has no platform, but several binaries were given: write each as --binary os/arch=PATH (e.g. linux/amd64=PATH)",
                bare.path.display()
            )));
        }
    }
    for (index, input) in inputs.iter().enumerate() {
        if let Some(platform) = &input.platform {
            if inputs[..index]
                .iter()
                .any(|earlier| earlier.platform.as_ref() == Some(platform))
            {
                return Err(BuildError::Usage(format!(
                    "platform {platform} is given twice (--binary {platform}=...); each platform takes one binary"
                )));
            }
        }
    }
    Ok(())
}

fn prepare(input: &BinaryInput, cache: &BuildCache) -> Result<PreparedBinary, BuildError> {
    let read_error = |source| BinaryError::Read {
        path: input.path.clone(),
        source,
    };
    let path = std::fs::canonicalize(&input.path).map_err(read_error)?;
    let stat = StatKey::of(&path).map_err(read_error)?;
    let known = cache.binary(&path, &stat).cloned();
    let binary = match known {
        Some(_) => None,
        None => Some(SupervisorBinary::read(&path).map_err(|err| rename_path(err, &input.path))?),
    };
    let architecture = match (&known, &binary) {
        (Some(facts), _) => facts.architecture.clone(),
        (None, Some(binary)) => binary.architecture.clone(),
        (None, None) => String::new(),
    };
    let platform = input
        .platform
        .clone()
        .unwrap_or_else(|| Platform::linux(&architecture));
    binary::check_platform(&input.path, &architecture, &platform)?;
    Ok(PreparedBinary {
        path,
        platform,
        stat,
        known,
        binary,
    })
}

/// Errors name the path as the user wrote it, not the canonical one.
fn rename_path(err: BinaryError, path: &Path) -> BinaryError {
    match err {
        BinaryError::Read { source, .. } => BinaryError::Read {
            path: path.to_path_buf(),
            source,
        },
        BinaryError::NotElf { source, .. } => BinaryError::NotElf {
            path: path.to_path_buf(),
            source,
        },
        BinaryError::NotStatic { violations, .. } => BinaryError::NotStatic {
            path: path.to_path_buf(),
            violations,
        },
        BinaryError::UnknownArchitecture {
            machine,
            class_bits,
            ..
        } => BinaryError::UnknownArchitecture {
            path: path.to_path_buf(),
            machine,
            class_bits,
        },
        other => other,
    }
}

/// The layer an earlier run recorded for `key`, if the layout still holds
/// its blob, byte for byte: the file is hashed (10 MB take a few ms), so a
/// blob changed on disk is rebuilt rather than kept, reported and pushed.
fn reusable(
    cache: &BuildCache,
    key: &LayerKey,
    output: &Path,
    progress: &Progress,
) -> Result<Option<LayerBlob>, BuildError> {
    let Some(record) = cache.layer(key) else {
        return Ok(None);
    };
    let Some(path) = blob_path(output, &record.digest) else {
        return Ok(None);
    };
    let blob = Blob {
        descriptor: layer_descriptor(&record.digest, record.size)?,
        data: BlobData::VerifiedFile(path.clone()),
    };
    match blob.check() {
        Ok(()) => {}
        Err(TransportError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(err) => {
            progress.note(format!(
                "the layer blob {} in {} is not what an earlier run wrote ({err}); building it again",
                record.digest,
                output.display()
            ));
            return Ok(None);
        }
    }
    Ok(Some(LayerBlob {
        blob,
        diff_id: record.diff_id.clone(),
        tar: None,
        applied: None,
    }))
}

/// The layer of a prepared binary: reused from the layout when an earlier
/// run made it from the same bytes and settings, else built. Returns the
/// layer, the record to cache when it is new, and the binary's facts.
fn layer_for(
    prepared: &mut PreparedBinary,
    options: &BuildOptions,
    cache: &BuildCache,
    cache_dir: &Path,
    progress: &Progress,
) -> Result<(LayerBlob, Option<LayerRecord>, BinaryFacts), BuildError> {
    let key_for = |sha256: &str| LayerKey {
        binary_sha256: sha256.to_string(),
        epoch: options.metadata.epoch.seconds(),
        settings: options.layer.cache_key(),
    };
    let reused_note = |facts: &BinaryFacts, layer: &LayerBlob| {
        progress.note(format!(
            "{}: binary unchanged (sha256 {}), reusing layer {}",
            prepared.platform,
            short(&facts.sha256),
            layer.blob.descriptor.digest()
        ));
    };
    if let Some(facts) = &prepared.known {
        if let Some(layer) = reusable(cache, &key_for(&facts.sha256), cache_dir, progress)? {
            reused_note(facts, &layer);
            return Ok((layer, None, facts.clone()));
        }
    }
    let binary = match prepared.binary.take() {
        Some(binary) => binary,
        None => SupervisorBinary::read(&prepared.path)?,
    };
    let size = binary.size();
    let architecture = binary.architecture.clone();
    let step = progress.step(format!(
        "{}: compressing {} ({}, gzip level {}, {} threads)",
        prepared.platform,
        prepared.path.display(),
        human_size(size),
        options.layer.level,
        options.layer.threads
    ));
    let tar = layer::layer_tar_in_place(binary.into_buffer(), options.metadata.epoch)
        .map_err(LayerError::Tar)?;
    let tar = Arc::new(tar);
    let binary_bytes = usize::try_from(size)
        .ok()
        .and_then(|size| tar.get(LEADING_ROOM..LEADING_ROOM + size))
        .unwrap_or_default();
    let cancel = AtomicBool::new(false);
    // Compression starts at once; meanwhile this thread reads the tar into a
    // tree the way verification will, hashing the binary's bytes as it
    // goes. That hash says whether an earlier run already made this layer
    // (then the compression is called off), and is the binary's sha256: it
    // is not computed a second time (a pass over the binary, 4 % of a
    // 32 MiB build's CPU time).
    let (sha256, reused, built, applied) = std::thread::scope(|scope| {
        let compressor =
            scope.spawn(|| layer::compress_tar_unless(Arc::clone(&tar), options.layer, &cancel));
        let mut tree = Filesystem::new(options.verify.tree_limits);
        let applied = tree
            .apply_layer_shared(0, &tar)
            .ok()
            .map(|()| Arc::new(tree));
        let sha256 = applied
            .as_ref()
            .and_then(|tree| tree.node(LAYER_BINARY_PATH))
            .and_then(|node| node.sha256_hex())
            // The tree is bounded by verification's limits and may refuse
            // the layer; verification will say why. The hash is still due.
            .unwrap_or_else(|| openshell_contract::digest::sha256_hex(binary_bytes));
        let reused = reusable(cache, &key_for(&sha256), cache_dir, progress);
        if matches!(reused, Ok(Some(_))) {
            cancel.store(true, Ordering::Relaxed);
        }
        let built = compressor.join();
        (sha256, reused, built, applied)
    });
    let facts = BinaryFacts {
        sha256,
        architecture,
        size,
    };
    if let Some(layer) = reused? {
        step.done("same bytes as an earlier build: compression called off");
        reused_note(&facts, &layer);
        return Ok((layer, None, facts));
    }
    let built = built
        .map_err(|_| LayerError::Tar(std::io::Error::other("the compression thread panicked")))??;
    step.done(format!(
        "layer {} ({})",
        built.digest,
        human_size(built.compressed.len() as u64)
    ));
    let blob_size = built.compressed.len() as u64;
    let record = LayerRecord {
        key: key_for(&facts.sha256),
        digest: built.digest.clone(),
        size: blob_size,
        diff_id: built.diff_id.clone(),
    };
    let layer = LayerBlob {
        blob: Blob {
            descriptor: layer_descriptor(&built.digest, blob_size)?,
            data: BlobData::Memory(Arc::new(built.compressed)),
        },
        diff_id: built.diff_id,
        tar: Some(built.tar),
        applied,
    };
    Ok((layer, Some(record), facts))
}

fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// The folders of the OCI layouts among `destinations`, in order.
fn layout_dirs(destinations: &[ImageReference]) -> Vec<PathBuf> {
    destinations
        .iter()
        .filter_map(|destination| match destination {
            ImageReference::OciLayout { dir, .. } => Some(dir.clone()),
            _ => None,
        })
        .collect()
}

/// Locks every layout the build writes, in one order (by canonical path)
/// so two runs writing the same layouts cannot wait for each other.
fn lock_layouts(dirs: &[PathBuf], progress: &Progress) -> Result<Vec<Arc<LayoutLock>>, BuildError> {
    let mut locks = Vec::new();
    // Ordered by absolute path (the folders need not exist yet).
    let mut ordered: Vec<(PathBuf, &PathBuf)> = dirs
        .iter()
        .map(|dir| {
            std::path::absolute(dir)
                .map(|absolute| (absolute, dir))
                .map_err(TransportError::io("resolve", dir))
        })
        .collect::<Result<_, _>>()?;
    ordered.sort();
    ordered.dedup_by(|a, b| a.0 == b.0);
    for (_, dir) in ordered {
        locks.push(LayoutLock::acquire(dir, LOCK_TIMEOUT, progress)?);
    }
    Ok(locks)
}

/// Runs a build.
pub fn run(options: &BuildOptions, progress: &Progress) -> Result<BuildOutcome, BuildError> {
    // Refuse bad arguments before any work.
    for tag in &options.tags {
        check_tag(tag).map_err(BuildError::Usage)?;
    }
    check_inputs(&options.binaries)?;
    // A bad --sbom file is refused before any work, like a bad tag.
    let sbom_file = match &options.sbom {
        SbomChoice::File(path) => Some(openshell_supply_chain::sbom::read_file(path)?),
        _ => None,
    };
    let destination_options = DestinationOptions {
        default_tags: options.tags.clone(),
        archive_name: options.archive_name.clone(),
        mtime: options.metadata.epoch.seconds(),
        registry: options.registry.clone(),
    };
    let destinations = options
        .destinations
        .iter()
        .map(|reference| open_destination(reference, &destination_options))
        .collect::<Result<Vec<_>, _>>()?;
    let layouts = layout_dirs(&options.destinations);
    let Some(cache_dir) = layouts.first().cloned() else {
        return Err(BuildError::Usage(
            "no OCI layout among the destinations: one keeps the build cache (add --output DIR or --to oci:DIR)".into(),
        ));
    };
    for dir in &layouts {
        openshell_transport::oci_layout::check_output(dir)?;
    }

    let mut built_supervisors = Vec::new();
    let mut workspace = options.workspace.clone();
    let inputs = if options.binaries.is_empty() {
        let built_in = match &workspace {
            Some(workspace) => workspace.clone(),
            None => {
                let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                crate::supervisor_build::workspace_root(&here)?
            }
        };
        let platforms = if options.platforms.is_empty() {
            Platform::defaults()
        } else {
            options.platforms.clone()
        };
        built_supervisors =
            crate::supervisor_build::build_supervisors(&built_in, &platforms, progress)?;
        workspace = Some(built_in);
        built_supervisors
            .iter()
            .map(|built| BinaryInput {
                platform: Some(built.platform.clone()),
                path: built.path.clone(),
            })
            .collect()
    } else {
        options.binaries.clone()
    };
    let (metadata, mut sbom_generator) = provenance(options, workspace.as_deref(), progress)?;

    // From here on the layouts are this run's: what an earlier run left
    // (the cache, reusable blobs) cannot change under it, and a concurrent
    // run waits instead of seeing half-written files.
    let _locks = lock_layouts(&layouts, progress)?;
    let mut cache = BuildCache::load(&cache_dir);
    let mut platforms = Vec::new();
    let mut new_layers = Vec::new();
    let mut seen_binaries = Vec::new();
    let mut reused_layers = Vec::new();
    for input in &inputs {
        let mut prepared = prepare(input, &cache)?;
        let (layer, record, facts) =
            layer_for(&mut prepared, options, &cache, &cache_dir, progress)?;
        if record.is_none() {
            reused_layers.push(prepared.platform.to_string());
        }
        new_layers.extend(record);
        seen_binaries.push(BinaryRecord {
            path: prepared.path.clone(),
            stat: prepared.stat,
            facts: facts.clone(),
        });
        let provenance = PlatformProvenance {
            rustc_version: openshell_supply_chain::provenance::rustc_version_of(&prepared.path),
        };
        platforms.push(image::assemble_platform_with(
            prepared.platform,
            facts,
            layer,
            &metadata,
            provenance,
        )?);
    }
    let mut built = image::assemble(platforms, &metadata)?;
    attach_sboms(
        &mut built,
        sbom_file.as_ref(),
        sbom_generator.as_mut(),
        !options.binaries.is_empty(),
        &metadata,
        progress,
    )?;

    let step = progress.step("verifying the image");
    let mut source = BuiltSource::new(&built);
    let mut verify_options = options.verify.clone();
    // An SBOM attached here must be found, valid and pointing at its manifest.
    verify_options.require_sbom |= !built.referrers.is_empty();
    let report = verify::verify(&mut source, &BuiltLayers::of(&built), &verify_options)?;
    if !report.ok {
        return Err(BuildError::Verification {
            report: report.to_string(),
        });
    }
    step.done(
        match &report
            .platforms
            .first()
            .and_then(|platform| platform.binary_in_sandbox.clone())
        {
            Some(path) => format!("the binary appears in a sandbox at {path}"),
            None => "configuration re-checked; the reused layer was verified when written".into(),
        },
    );
    // Only what verified is signed.
    if let Some(sign) = &options.sign {
        let step = progress.step("signing");
        let signatures = crate::signatures::sign_image(
            &built,
            &sign.key,
            &sign.identity,
            &metadata,
            &sign.provenance,
        )?;
        step.done(format!(
            "{} signature and provenance referrer(s) and {} cosign tag(s) for registries, key {}, identity {}",
            signatures.referrers.len(),
            signatures.attachments.len(),
            sign.key.public_key().key_id(),
            sign.identity
        ));
        built.referrers.extend(signatures.referrers);
        built.attachments.extend(signatures.attachments);
    }

    let mut result = BuildResult {
        digest: built.top.digest(),
        media_type: built.top.descriptor.media_type().to_string(),
        size: built.top.descriptor.size(),
        platforms: built
            .platforms
            .iter()
            .map(|platform| {
                let mut image = platform_image(platform, &built.referrers);
                // What build-image built records its target and libc.
                if let Some(supervisor) = built_supervisors
                    .iter()
                    .find(|supervisor| supervisor.platform == platform.platform)
                {
                    image.target = Some(supervisor.target.clone());
                    image.libc = Some(supervisor.libc);
                }
                image
            })
            .collect(),
        destinations: Vec::new(),
        tags: options.tags.clone(),
    };

    let image = built.to_write();
    for (reference, destination) in options.destinations.iter().zip(&destinations) {
        let published = destination.publish(&image, progress)?;
        if matches!(reference, ImageReference::OciLayout { dir, .. } if *dir == cache_dir) {
            // The layout holds the blobs now: remember what went in.
            for record in &seen_binaries {
                cache.remember_binary(record.clone());
            }
            for record in &new_layers {
                cache.remember_layer(record.clone());
            }
            if let Err(err) = cache.save(&cache_dir) {
                progress.note(format!(
                    "could not save the build cache in {} ({err}); the next run compresses again",
                    cache_dir.display()
                ));
            }
        }
        result
            .destinations
            .push(reference.publication(&published, &options.tags));
    }
    // Unmapping the ~100 MiB of buffers (binary, tar, tree, blob) takes
    // 10-15 ms; the result is ready, so free them off the critical path.
    drop(destinations);
    std::thread::spawn(move || drop((built, image)));
    Ok(BuildOutcome {
        result,
        report,
        reused_layers,
    })
}

/// The image's metadata with the build's provenance (the Cargo.lock
/// digest), and the SBOM generator when the SBOM is made from the
/// workspace. Without a workspace (a `--binary` run outside the
/// repository) there is no SBOM unless `--sbom` gives one, and the run
/// says so.
fn provenance(
    options: &BuildOptions,
    workspace: Option<&Path>,
    progress: &Progress,
) -> Result<(ImageMetadata, Option<SbomGenerator>), BuildError> {
    let mut metadata = options.metadata.clone();
    let generator = match (&options.sbom, workspace) {
        (SbomChoice::Generate, Some(workspace)) => {
            let generator = SbomGenerator::new(workspace)?;
            metadata.cargo_lock_sha256 = Some(generator.cargo_lock_sha256().to_string());
            Some(generator)
        }
        (SbomChoice::Generate, None) => {
            progress.note(
                "no SBOM attached: not inside the OpenShell workspace, whose Cargo.lock it lists (run inside the repository, or give one with --sbom FILE; --no-sbom says none is wanted)",
            );
            None
        }
        _ => None,
    };
    // A supervisor built here comes from this Cargo.lock whatever the SBOM.
    if metadata.cargo_lock_sha256.is_none() && options.binaries.is_empty() {
        if let Some(workspace) = workspace {
            metadata.cargo_lock_sha256 =
                openshell_supply_chain::provenance::cargo_lock_sha256(workspace).ok();
        }
    }
    Ok((metadata, generator))
}

/// Attaches an SBOM to each platform manifest as an OCI 1.1 referrer: the
/// `--sbom` file, or one generated from the workspace.
fn attach_sboms(
    built: &mut BuiltImage,
    file: Option<&Sbom>,
    mut generator: Option<&mut SbomGenerator>,
    prebuilt: bool,
    metadata: &ImageMetadata,
    progress: &Progress,
) -> Result<(), BuildError> {
    let mut referrers = Vec::new();
    for platform in &built.platforms {
        let sbom = match (file, generator.as_deref_mut()) {
            (Some(file), _) => file.clone(),
            (None, Some(generator)) => {
                let step = progress.step(format!("{}: SBOM", platform.platform));
                let sbom = generator.generate(&SbomRequest {
                    platform: &platform.platform,
                    binary_sha256: &platform.binary.sha256,
                    rustc_version: platform.provenance.rustc_version.as_deref(),
                    prebuilt,
                    metadata,
                })?;
                step.done(format!(
                    "{} ({})",
                    sbom.summary,
                    human_size(sbom.bytes.len() as u64)
                ));
                sbom
            }
            (None, None) => return Ok(()),
        };
        referrers.push(crate::image::sbom_referrer(
            &platform.manifest,
            &sbom,
            metadata,
        )?);
    }
    built.referrers.extend(referrers);
    Ok(())
}

fn platform_image(platform: &image::PlatformBuild, referrers: &[Referrer]) -> PlatformImage {
    let manifest_digest = platform.manifest.descriptor.digest().to_string();
    let sbom_manifest_digest = referrers
        .iter()
        .find(|referrer| {
            referrer.subject == manifest_digest
                && referrer
                    .manifest
                    .descriptor
                    .artifact_type()
                    .as_ref()
                    .is_some_and(|kind| {
                        openshell_contract::sbom::SBOM_ARTIFACT_TYPES
                            .contains(&kind.to_string().as_str())
                    })
        })
        .map(|referrer| referrer.manifest.descriptor.digest().to_string());
    PlatformImage {
        platform: platform.platform.to_string(),
        manifest_digest,
        layer_digest: platform.layer.blob.descriptor.digest().to_string(),
        layer_size: platform.layer.blob.descriptor.size(),
        binary_sha256: platform.binary.sha256.clone(),
        binary_size: platform.binary.size,
        target: None,
        libc: None,
        sbom_manifest_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_arguments_take_an_optional_platform() {
        let plain: BinaryInput = "target/x".parse().unwrap();
        assert_eq!(plain.platform, None);
        let with: BinaryInput = "linux/arm64=/tmp/a=b".parse().unwrap();
        assert_eq!(with.platform.unwrap().architecture, "arm64");
        assert_eq!(with.path, PathBuf::from("/tmp/a=b"));
        let err = "linux/ARM=/x"
            .parse::<BinaryInput>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected os/architecture"), "{err}");
    }

    #[test]
    fn several_binaries_need_distinct_platforms() {
        let bare = vec![
            "a".parse::<BinaryInput>().unwrap(),
            "linux/arm64=b".parse().unwrap(),
        ];
        let err = check_inputs(&bare).unwrap_err().to_string();
        assert!(err.contains("--binary a has no platform"), "{err}");
        let twice = vec![
            "linux/arm64=a".parse::<BinaryInput>().unwrap(),
            "linux/arm64=b".parse().unwrap(),
        ];
        let err = check_inputs(&twice).unwrap_err().to_string();
        assert!(err.contains("linux/arm64 is given twice"), "{err}");
    }
}
