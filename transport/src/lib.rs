//! Where supervisor images live, read and written the same way by every
//! tool of the project.
//!
//! After containers/image (behind skopeo, podman and buildah): an image is
//! named by an [`ImageReference`] (`oci:DIR[:TAG]`, `docker-archive:FILE`,
//! `docker://REF`), and each transport is one module holding both its
//! reading ([`source::ImageSource`]) and its writing
//! ([`destination::Destination`]):
//! - [`oci_layout`]: an OCI image layout folder, locked while written;
//! - [`docker_archive`]: a `docker save` tarball;
//! - [`docker`]: a registry, through `openshell-registry`'s bounded client.
//!
//! Reading is bounded ([`limits::ReadLimits`]): documents are read up to a
//! limit, blobs are streamed, nothing is allocated from a declared size.
//! Every destination reports a [`destination::Published`].

pub mod atomic;
pub mod destination;
pub mod digest;
pub mod docker;
pub mod docker_archive;
pub mod document;
mod error;
pub mod files;
pub mod go_json;
pub mod image;
pub mod limits;
pub mod oci_layout;
pub mod progress;
pub mod reference;
pub mod source;

pub use destination::{Destination, Published};
pub use error::TransportError;
pub use image::{Attachment, Blob, BlobData, ImageToWrite};
pub use limits::ReadLimits;
pub use reference::ImageReference;
pub use source::ImageSource;

use openshell_registry::RegistryOptions;

/// How to reach images: registry access and reading limits.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// Credentials, protocol, timeouts and retries for registries.
    pub registry: RegistryOptions,
    /// Bounds on what reading may cost.
    pub limits: ReadLimits,
}

/// Opens the image `reference` names for reading.
pub fn open_source(
    reference: &ImageReference,
    options: &TransportOptions,
) -> Result<Box<dyn ImageSource>, TransportError> {
    Ok(match reference {
        ImageReference::OciLayout { dir, tag } => {
            Box::new(oci_layout::OciLayoutSource::new(dir.clone(), tag.clone()))
        }
        ImageReference::DockerArchive { file, name } => Box::new(
            docker_archive::DockerArchiveSource::open(file, name.clone(), &options.limits)?,
        ),
        ImageReference::Registry {
            text, reference, ..
        } => Box::new(docker::RegistrySource::new(
            text,
            reference.clone(),
            &options.registry,
        )?),
    })
}

/// What a destination needs besides its reference.
#[derive(Debug, Clone)]
pub struct DestinationOptions {
    /// Tags for references that name none (`oci:DIR`, `docker://HOST/REPO`).
    pub default_tags: Vec<String>,
    /// Repository name a docker-archive's image gets when loaded, when the
    /// reference names none (`openshell/supervisor`).
    pub archive_name: String,
    /// Time stamp of files written into tarballs (seconds since the epoch).
    pub mtime: u64,
    /// Registry access.
    pub registry: RegistryOptions,
}

/// Opens `reference` for writing.
pub fn open_destination(
    reference: &ImageReference,
    options: &DestinationOptions,
) -> Result<Box<dyn Destination>, TransportError> {
    Ok(match reference {
        ImageReference::OciLayout { dir, tag } => Box::new(oci_layout::OciLayoutDestination {
            dir: dir.clone(),
            tags: match tag {
                Some(tag) => vec![tag.clone()],
                None => options.default_tags.clone(),
            },
        }),
        ImageReference::DockerArchive { file, name } => {
            Box::new(docker_archive::DockerArchiveDestination {
                file: file.clone(),
                repo_tags: match name {
                    Some(name) => vec![name.clone()],
                    None => options
                        .default_tags
                        .iter()
                        .map(|tag| format!("{}:{tag}", options.archive_name))
                        .collect(),
                },
                mtime: options.mtime,
            })
        }
        ImageReference::Registry {
            text,
            reference,
            explicit_tag,
        } => {
            if reference.digest().is_some() {
                return Err(TransportError::InvalidReference {
                    text: format!("docker://{text}"),
                    reason: "a destination takes a repository and tag; the digest is what writing produces".into(),
                });
            }
            let tags = match (explicit_tag, reference.tag()) {
                (true, Some(tag)) => vec![tag.to_string()],
                _ => options.default_tags.clone(),
            };
            registry_destination(text, reference, tags, &options.registry)?
        }
    })
}

fn registry_destination(
    text: &str,
    reference: &openshell_registry::Reference,
    tags: Vec<String>,
    options: &RegistryOptions,
) -> Result<Box<dyn Destination>, TransportError> {
    Ok(Box::new(docker::RegistryDestination {
        text: text.to_string(),
        reference: reference.clone(),
        tags,
        options: options.clone(),
    }))
}
