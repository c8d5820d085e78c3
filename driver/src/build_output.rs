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

use openshell_contract::DEFAULT_IMAGE_TAG;
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
    /// The layout could not be read (its `index.json`, the tag, a blob);
    /// the reason names the file.
    #[error("{reason}")]
    Layout {
        /// What went wrong, and where.
        reason: String,
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
    let text = crate::input::read_text(path, crate::input::SMALL_JSON_SIZE_LIMIT)
        .map_err(|err| bad(err.to_string()))?;
    let result: BuildResult = serde_json::from_str(&text).map_err(|err| bad(err.to_string()))?;
    let pushed_references = result.pushed();
    if pushed_references.is_empty() {
        return Err(BuildOutputError::NotPushed {
            path: shown,
            layout_hint: result
                .layout()
                .map(|layout| format!(" ({})", layout.path))
                .unwrap_or_default(),
        });
    }
    let mut pushed = Vec::with_capacity(pushed_references.len());
    for reference in &pushed_references {
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
        platforms.push(Platform::parse(&built.platform).map_err(|_| {
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
                pushed: pushed_references.join(", "),
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
    let (digest, platforms) = read_layout(dir, tag)?;
    Ok(BuiltImage {
        image: repository.pinned(&digest)?,
        platforms,
    })
}

// ---- Reading an OCI image layout. ----
// Through the project's transport layer, as every image the driver reads
// (see crate::image_platforms): the same bounded reader that
// `build-image verify oci:...` uses, nested indexes included.

/// The digest (`sha256:...`) of the image tagged `tag` in the layout `dir`,
/// and the platforms of that image.
fn read_layout(dir: &Path, tag: &str) -> Result<(String, Vec<Platform>), BuildOutputError> {
    use crate::image_platforms::{ImagePlatformsError, read_platforms};
    use openshell_transport::oci_layout::OciLayoutSource;

    let mut source = OciLayoutSource::new(dir.to_path_buf(), Some(tag.to_string()));
    let read = read_platforms(&mut source, &openshell_transport::ReadLimits::default()).map_err(
        |error| match error {
            ImagePlatformsError::BadPlatform { location, platform } => {
                BuildOutputError::BadPlatform {
                    path: location,
                    platform,
                }
            }
            other => BuildOutputError::Layout {
                reason: other.to_string(),
            },
        },
    )?;
    Ok((read.digest, read.platforms))
}
