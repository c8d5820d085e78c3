//! The supervisor image taken from what `build-image` produced, pinned by
//! digest (`REPO@sha256:...`, no tag), so nobody copies digests by hand,
//! with the platforms it was built for.
//!
//! Two kinds of output name an image:
//! - the build result JSON (`build-image --metadata-file FILE`), whose
//!   `pushed` list holds `REPO[:TAG]@sha256:...` references and whose
//!   `platforms` list the platforms;
//! - the OCI image layout folder (`target/oci/supervisor`), whose
//!   `index.json` gives the manifest digest of a tag. A layout does not say
//!   where the image lives in a registry, so the repository comes from
//!   `--supervisor-image`, and the image must have been pushed there as is
//!   (`build-image --push` and `skopeo copy` keep the manifest, hence the
//!   digest).

use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use openshell_contract::DEFAULT_IMAGE_TAG;
use openshell_contract::annotations::oci::REF_NAME;
use openshell_contract::build_result::BuildResult;

use crate::image::{ImageError, SupervisorImage};
use crate::platform::Platform;

/// The image a build output names, and the platforms it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image, pinned by digest only.
    pub image: SupervisorImage,
    /// Its platforms.
    pub platforms: Vec<Platform>,
}

/// The file every OCI image layout has at its root.
const LAYOUT_INDEX: &str = "index.json";

/// Transport prefix skopeo and podman use for layouts; accepted so the same
/// text works with those tools.
const OCI_TRANSPORT: &str = "oci:";

/// What a `--supervisor-image-from` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutput {
    /// A build result JSON file.
    ResultFile(PathBuf),
    /// An OCI image layout folder and the tag to use in it.
    Layout {
        /// The layout folder.
        dir: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`).
        tag: String,
    },
}

/// Why no image could be taken from build-image's output.
#[derive(Debug, thiserror::Error)]
pub enum BuildOutputError {
    /// Neither a file nor a layout folder.
    #[error(
        "{spec}: no such file or folder (expected build-image's result JSON, as written by --metadata-file, or its OCI image layout folder, optionally with :TAG, like target/oci/supervisor:latest)"
    )]
    Missing {
        /// The text given.
        spec: String,
    },
    /// A folder without `index.json`.
    #[error(
        "{dir}: not an OCI image layout (no {LAYOUT_INDEX}; expected a folder written by build-image or `skopeo copy ... oci:DIR:TAG`)"
    )]
    NotALayout {
        /// The folder.
        dir: String,
    },
    /// The build result could not be read or parsed.
    #[error("{path}: not a build-image result JSON: {reason}")]
    BadResultFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The build result lists no pushed reference.
    #[error(
        "{path}: the build was not pushed (its \"pushed\" list is empty), so it names no registry reference; push it with `build-image --push REF --metadata-file {path}`, or pass the OCI layout folder{layout_hint} as --supervisor-image-from together with --supervisor-image REPOSITORY (where the image was pushed)"
    )]
    NotPushed {
        /// The file.
        path: String,
        /// ` (DIR)` when the result names a layout.
        layout_hint: String,
    },
    /// A pushed reference in the build result is unusable.
    #[error("{path}: pushed reference '{reference}' {problem}")]
    BadPushedReference {
        /// The file.
        path: String,
        /// The reference.
        reference: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `--supervisor-image` names a repository the build was not pushed to.
    #[error(
        "{path}: the build was pushed to {pushed}, not to {repository} (given with --supervisor-image); pass one of those repositories, or drop --supervisor-image to use the first"
    )]
    NotPushedThere {
        /// The file.
        path: String,
        /// The pushed references, comma-separated.
        pushed: String,
        /// The repository asked for.
        repository: String,
    },
    /// A layout was given but no repository to go with it.
    #[error(
        "{dir}: an OCI image layout gives the digest but not the registry the image lives in; also pass --supervisor-image REPOSITORY (where this image was pushed, e.g. registry.example/openshell/supervisor), or pass build-image's result JSON (--metadata-file) of a push instead"
    )]
    LayoutNeedsRepository {
        /// The layout folder.
        dir: String,
    },
    /// The repository given with a layout already carries a digest.
    #[error(
        "--supervisor-image '{reference}' is already pinned by digest, so it cannot take the digest from the OCI layout {dir}; pass the repository without @sha256:..., or drop --supervisor-image-from"
    )]
    RepositoryAlreadyPinned {
        /// The reference.
        reference: String,
        /// The layout folder.
        dir: String,
    },
    /// A platform in the build result or the layout is unreadable.
    #[error("{path}: platform {platform:?} is not OS/ARCHITECTURE[/VARIANT]")]
    BadPlatform {
        /// The file.
        path: String,
        /// The text found.
        platform: String,
    },
    /// The layout's `index.json` or a blob could not be read.
    #[error("{path}: {reason}")]
    BadIndex {
        /// The `index.json` path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The tag is not in the layout.
    #[error("{dir}: no image tagged {tag:?} in {LAYOUT_INDEX} (tags there: {available})")]
    UnknownTag {
        /// The layout folder.
        dir: String,
        /// The tag asked for.
        tag: String,
        /// The tags the layout has.
        available: String,
    },
    /// Combining the repository and the digest gave an invalid reference.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl BuildOutput {
    /// Works out what `spec` names: an existing file is a build result, an
    /// existing folder a layout (tag `latest`), and `DIR:TAG` a layout with a
    /// tag. An `oci:` prefix is accepted.
    pub fn locate(spec: &str) -> Result<Self, BuildOutputError> {
        let text = spec.strip_prefix(OCI_TRANSPORT).unwrap_or(spec);
        let path = Path::new(text);
        if path.is_file() {
            return Ok(Self::ResultFile(path.to_path_buf()));
        }
        if path.is_dir() {
            return Self::layout(path, DEFAULT_IMAGE_TAG);
        }
        // Tags cannot hold `/`, so a colon after the last `/` starts one.
        if let Some((dir, tag)) = text.rsplit_once(':')
            && !tag.contains('/')
            && !tag.is_empty()
            && Path::new(dir).is_dir()
        {
            return Self::layout(Path::new(dir), tag);
        }
        Err(BuildOutputError::Missing {
            spec: spec.to_string(),
        })
    }

    fn layout(dir: &Path, tag: &str) -> Result<Self, BuildOutputError> {
        if !dir.join(LAYOUT_INDEX).is_file() {
            return Err(BuildOutputError::NotALayout {
                dir: dir.display().to_string(),
            });
        }
        Ok(Self::Layout {
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
        })
    }

    /// The digest-pinned supervisor image this output names, with its
    /// platforms. `repository` is `--supervisor-image`: required for a
    /// layout, and for a build result it picks among the pushed references.
    pub fn image(
        &self,
        repository: Option<&SupervisorImage>,
    ) -> Result<BuiltImage, BuildOutputError> {
        match self {
            Self::ResultFile(path) => image_from_result(path, repository),
            Self::Layout { dir, tag } => image_from_layout(dir, tag, repository),
        }
    }
}

fn image_from_result(
    path: &Path,
    repository: Option<&SupervisorImage>,
) -> Result<BuiltImage, BuildOutputError> {
    let shown = path.display().to_string();
    let bad = |reason: String| BuildOutputError::BadResultFile {
        path: shown.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|err| bad(err.to_string()))?;
    let result: BuildResult = serde_json::from_str(&text).map_err(|err| bad(err.to_string()))?;
    if result.pushed.is_empty() {
        return Err(BuildOutputError::NotPushed {
            path: shown,
            layout_hint: result
                .layout
                .map(|layout| format!(" ({})", layout.path))
                .unwrap_or_default(),
        });
    }
    let mut pushed = Vec::with_capacity(result.pushed.len());
    for reference in &result.pushed {
        let image = SupervisorImage::parse(reference).map_err(|err| {
            BuildOutputError::BadPushedReference {
                path: shown.clone(),
                reference: reference.clone(),
                problem: format!("is not a valid reference: {err}"),
            }
        })?;
        if image.digest().is_none() {
            return Err(BuildOutputError::BadPushedReference {
                path: shown,
                reference: reference.clone(),
                problem: "is not pinned by digest (expected REPO[:TAG]@sha256:...)".to_string(),
            });
        }
        pushed.push(image);
    }
    let mut platforms = Vec::with_capacity(result.platforms.len());
    for built in &result.platforms {
        platforms.push(Platform::parse(&built.platform).ok_or_else(|| {
            BuildOutputError::BadPlatform {
                path: shown.clone(),
                platform: built.platform.clone(),
            }
        })?);
    }
    let chosen = match repository {
        // `pushed` is not empty, checked above.
        None => pushed.swap_remove(0),
        Some(repository) => pushed
            .iter()
            .find(|image| image.same_repository(repository))
            .cloned()
            .ok_or_else(|| BuildOutputError::NotPushedThere {
                path: shown.clone(),
                pushed: result.pushed.join(", "),
                repository: repository.to_string(),
            })?,
    };
    Ok(BuiltImage {
        image: chosen.digest_only()?,
        platforms,
    })
}

fn image_from_layout(
    dir: &Path,
    tag: &str,
    repository: Option<&SupervisorImage>,
) -> Result<BuiltImage, BuildOutputError> {
    let shown = dir.display().to_string();
    let Some(repository) = repository else {
        return Err(BuildOutputError::LayoutNeedsRepository { dir: shown });
    };
    if repository.digest().is_some() {
        return Err(BuildOutputError::RepositoryAlreadyPinned {
            reference: repository.to_string(),
            dir: shown,
        });
    }
    let digest = layout_manifest_digest(dir, tag)?;
    let platforms = layout_platforms(dir, &digest)?;
    Ok(BuiltImage {
        image: repository.pinned(&digest)?,
        platforms,
    })
}

// ---- Reading an OCI image layout. ----
// Kept to these two functions so that another reader of layouts can take
// their place without touching the rest.

/// The digest (`sha256:...`) of the manifest tagged `tag` in the layout
/// `dir`.
fn layout_manifest_digest(dir: &Path, tag: &str) -> Result<String, BuildOutputError> {
    let index_path = dir.join(LAYOUT_INDEX);
    let index = ImageIndex::from_file(&index_path).map_err(|err| BuildOutputError::BadIndex {
        path: index_path.display().to_string(),
        reason: err.to_string(),
    })?;
    let tag_of = |descriptor: &Descriptor| {
        descriptor
            .annotations()
            .as_ref()
            .and_then(|annotations| annotations.get(REF_NAME).cloned())
    };
    if let Some(descriptor) = index
        .manifests()
        .iter()
        .find(|descriptor| tag_of(descriptor).as_deref() == Some(tag))
    {
        return Ok(descriptor.digest().to_string());
    }
    let available: Vec<String> = index.manifests().iter().filter_map(tag_of).collect();
    Err(BuildOutputError::UnknownTag {
        dir: dir.display().to_string(),
        tag: tag.to_string(),
        available: if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        },
    })
}

/// The platforms of the manifest `digest` in the layout `dir`: each entry's
/// of an image index, or the config's of a single image.
fn layout_platforms(dir: &Path, digest: &str) -> Result<Vec<Platform>, BuildOutputError> {
    let blob = |digest: &str| {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        dir.join("blobs").join(algorithm).join(hex)
    };
    let bad = |path: &Path, reason: String| BuildOutputError::BadIndex {
        path: path.display().to_string(),
        reason,
    };
    let from_parts = |path: &Path, os: String, architecture: String, variant: Option<String>| {
        if os.is_empty() || architecture.is_empty() {
            return Err(BuildOutputError::BadPlatform {
                path: path.display().to_string(),
                platform: format!("{os}/{architecture}"),
            });
        }
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    };
    let path = blob(digest);
    let text = std::fs::read_to_string(&path).map_err(|err| bad(&path, err.to_string()))?;
    // An index lists manifests; an image manifest has a config.
    let is_index = serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|err| bad(&path, err.to_string()))?
        .get("manifests")
        .is_some();
    if is_index {
        let index =
            ImageIndex::from_reader(text.as_bytes()).map_err(|err| bad(&path, err.to_string()))?;
        return index
            .manifests()
            .iter()
            .filter_map(|entry| entry.platform().as_ref())
            .map(|platform| {
                from_parts(
                    &path,
                    platform.os().to_string(),
                    platform.architecture().to_string(),
                    platform.variant().clone(),
                )
            })
            .collect();
    }
    let manifest =
        ImageManifest::from_reader(text.as_bytes()).map_err(|err| bad(&path, err.to_string()))?;
    let config_path = blob(manifest.config().digest().as_ref());
    let config = ImageConfiguration::from_file(&config_path)
        .map_err(|err| bad(&config_path, err.to_string()))?;
    Ok(vec![from_parts(
        &config_path,
        config.os().to_string(),
        config.architecture().to_string(),
        config.variant().clone(),
    )?])
}
