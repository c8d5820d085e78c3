//! The publish stage: taking a built image to where it is used.
//!
//! Each place is one small [`Destination`] implementation in its own file
//! (after ko's publishers): an OCI layout folder, a docker-archive tarball, a
//! registry. A new destination is a new file.

use std::path::PathBuf;

use crate::image::BuiltImage;
use crate::progress::Progress;

pub mod docker_archive;
pub mod oci_layout;
pub mod registry;

/// Where an image went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Into an OCI layout.
    Layout {
        /// The folder.
        path: PathBuf,
        /// The tag it carries there.
        tag: String,
        /// Digests of the blobs written (those already there are not).
        written: Vec<String>,
    },
    /// Into a docker-archive tarball.
    DockerArchive {
        /// The file.
        path: PathBuf,
    },
    /// To a registry.
    Pushed {
        /// `REPOSITORY[:TAG]@sha256:...`.
        pinned: String,
    },
}

/// A place an image can be published to.
pub trait Destination {
    /// The destination, as a transport reference (`oci:DIR:TAG`, ...).
    fn describe(&self) -> String;

    /// Publishes the image.
    fn publish(&self, image: &BuiltImage, progress: &Progress) -> Result<Published, PublishError>;
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// `--output` names something that is not (and cannot become) a layout.
    #[error(
        "refusing to write the image layout into {path}: {reason} (expected a missing or empty folder, or an existing OCI image layout); it was left untouched"
    )]
    NotALayout {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file of an existing layout cannot be read as what it should be.
    #[error("{path} is not valid: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A file operation failed.
    #[error("could not {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A document could not be assembled.
    #[error("could not assemble a publishing document: {0}")]
    Assemble(String),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] openshell_registry::RegistryError),
    /// A tag that no tool would accept.
    #[error("invalid tag {tag:?}: {reason}")]
    InvalidTag {
        /// The tag.
        tag: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Checks a tag the way docker and podman do: 1 to 128 characters from
/// `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn check_tag(tag: &str) -> Result<(), PublishError> {
    let invalid = |reason: &str| PublishError::InvalidTag {
        tag: tag.to_string(),
        reason: reason.to_string(),
    };
    if tag.is_empty() || tag.len() > 128 {
        return Err(invalid("expected 1 to 128 characters"));
    }
    if tag.starts_with(['.', '-']) {
        return Err(invalid("a tag may not start with '.' or '-'"));
    }
    if let Some(bad) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(invalid(&format!(
            "{bad:?} is not allowed (expected letters, digits, '_', '.' and '-')"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_docker_rules() {
        assert!(check_tag("latest").is_ok());
        assert!(check_tag("v1.2_3-rc").is_ok());
        for (bad, why) in [
            ("", "1 to 128"),
            ("-x", "may not start"),
            ("a:b", "':' is not allowed"),
            ("a/b", "'/' is not allowed"),
        ] {
            let err = check_tag(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(check_tag(&"x".repeat(129)).is_err());
    }
}
