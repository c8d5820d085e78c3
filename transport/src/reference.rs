//! Image references as skopeo, podman and buildah write them: a transport
//! name, a colon, and what that transport needs to find the image.

use std::fmt;
use std::path::PathBuf;

use openshell_contract::build_result::{self, Publication};
use openshell_registry::Reference;

use crate::{Published, TransportError};

/// Transport name of an OCI image layout folder.
pub const OCI: &str = build_result::OCI_TRANSPORT;
/// Transport name of a `docker save` / `podman save` tarball.
pub const DOCKER_ARCHIVE: &str = build_result::DOCKER_ARCHIVE_TRANSPORT;
/// Transport name of a registry.
pub const DOCKER: &str = build_result::DOCKER_TRANSPORT;

/// The forms accepted, for messages.
pub const EXPECTED_FORMS: &str = "oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG] or docker://REF";

/// Where an image lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    /// `oci:DIR[:TAG]`: an OCI image layout folder, and the tag
    /// (`org.opencontainers.image.ref.name`) of one image in it.
    OciLayout {
        /// The layout folder.
        dir: PathBuf,
        /// The tag; when reading, optional if the layout holds one image.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:NAME:TAG]`: a tarball that `docker load` and
    /// `podman load` read.
    DockerArchive {
        /// The tarball.
        file: PathBuf,
        /// `NAME:TAG` of one image in it (its RepoTags entry).
        name: Option<String>,
    },
    /// `docker://HOST/REPOSITORY[:TAG][@sha256:DIGEST]`: a registry.
    Registry {
        /// The reference as written after `docker://`.
        text: String,
        /// Parsed (a missing tag reads as `latest`, as docker does).
        reference: Reference,
        /// Whether the text names a tag itself (rather than the `latest`
        /// that parsing supplies).
        explicit_tag: bool,
    },
}

impl ImageReference {
    /// Parses `TRANSPORT:DETAILS`, splitting `oci:` and `docker-archive:`
    /// details at the first colon as containers/image does.
    pub fn parse(text: &str) -> Result<Self, TransportError> {
        let invalid = |reason: &str| TransportError::InvalidReference {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let Some((transport, rest)) = text.split_once(':') else {
            return Err(invalid("no transport prefix"));
        };
        match transport {
            OCI => {
                let (dir, tag) = split_first_colon(rest);
                if dir.is_empty() {
                    return Err(invalid("the oci: transport needs a folder, oci:DIR[:TAG]"));
                }
                if let Some(tag) = &tag {
                    check_tag(tag).map_err(|reason| invalid(&reason))?;
                }
                Ok(Self::OciLayout {
                    dir: PathBuf::from(dir),
                    tag,
                })
            }
            DOCKER_ARCHIVE => {
                let (file, name) = split_first_colon(rest);
                if file.is_empty() {
                    return Err(invalid(
                        "the docker-archive: transport needs a file, docker-archive:FILE[:NAME:TAG]",
                    ));
                }
                Ok(Self::DockerArchive {
                    file: PathBuf::from(file),
                    name,
                })
            }
            DOCKER => {
                let Some(reference_text) = rest.strip_prefix("//") else {
                    return Err(invalid("the docker transport is written docker://REF"));
                };
                let reference = openshell_registry::parse_reference(reference_text)?;
                Ok(Self::Registry {
                    text: reference_text.to_string(),
                    explicit_tag: names_tag(reference_text),
                    reference,
                })
            }
            other => Err(invalid(&format!(
                "unknown transport {other:?} (expected {OCI}, {DOCKER_ARCHIVE} or {DOCKER})"
            ))),
        }
    }

    /// The transport's name.
    pub fn transport(&self) -> &'static str {
        match self {
            Self::OciLayout { .. } => OCI,
            Self::DockerArchive { .. } => DOCKER_ARCHIVE,
            Self::Registry { .. } => DOCKER,
        }
    }

    /// What a build result records of `published`, the image written to
    /// this reference; `default_tags` are the tags given for a reference
    /// that names none.
    pub fn publication(&self, published: &Published, default_tags: &[String]) -> Publication {
        let default_tag = || default_tags.first().cloned();
        let (location, tag) = match self {
            Self::OciLayout { dir, tag } => {
                (dir.display().to_string(), tag.clone().or_else(default_tag))
            }
            Self::DockerArchive { file, .. } => (file.display().to_string(), None),
            Self::Registry {
                reference,
                explicit_tag,
                ..
            } => (
                format!("{}/{}", reference.registry(), reference.repository()),
                match explicit_tag {
                    true => reference.tag().map(str::to_string),
                    false => default_tag(),
                },
            ),
        };
        Publication {
            transport: self.transport().to_string(),
            location,
            tag,
            references: published.references.clone(),
            pinned: published.pinned.clone(),
        }
    }
}

impl std::str::FromStr for ImageReference {
    type Err = TransportError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OciLayout { dir, tag: None } => write!(f, "{OCI}:{}", dir.display()),
            Self::OciLayout {
                dir,
                tag: Some(tag),
            } => write!(f, "{OCI}:{}:{tag}", dir.display()),
            Self::DockerArchive { file, name: None } => {
                write!(f, "{DOCKER_ARCHIVE}:{}", file.display())
            }
            Self::DockerArchive {
                file,
                name: Some(name),
            } => write!(f, "{DOCKER_ARCHIVE}:{}:{name}", file.display()),
            Self::Registry { text, .. } => write!(f, "{DOCKER}://{text}"),
        }
    }
}

fn split_first_colon(text: &str) -> (&str, Option<String>) {
    match text.split_once(':') {
        Some((head, tail)) => (head, Some(tail.to_string())),
        None => (text, None),
    }
}

/// Whether a registry reference names a tag: a `:` in its last path
/// component, before any `@` (a `:` in an earlier component is a port;
/// "host:5000" alone is repository "host", tag "5000", to docker too).
pub fn names_tag(text: &str) -> bool {
    let name = text.split('@').next().unwrap_or(text);
    name.rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
}

/// Checks a tag the way docker and podman do: 1 to 128 characters from
/// `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag.len() > 128 {
        return Err(format!("invalid tag {tag:?}: expected 1 to 128 characters"));
    }
    if tag.starts_with(['.', '-']) {
        return Err(format!(
            "invalid tag {tag:?}: a tag may not start with '.' or '-'"
        ));
    }
    if let Some(bad) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "invalid tag {tag:?}: {bad:?} is not allowed (expected letters, digits, '_', '.' and '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_parsed_like_skopeo() {
        for text in [
            "oci:some/dir:v1",
            "oci:some/dir",
            "docker-archive:x.tar",
            "docker-archive:x.tar:openshell/supervisor:v1",
            "docker://127.0.0.1:5000/openshell/supervisor:v1",
        ] {
            assert_eq!(ImageReference::parse(text).unwrap().to_string(), text);
        }
        match ImageReference::parse("oci:some/dir:v1").unwrap() {
            ImageReference::OciLayout { dir, tag } => {
                assert_eq!(dir, PathBuf::from("some/dir"));
                assert_eq!(tag.as_deref(), Some("v1"));
            }
            other => panic!("{other:?}"),
        }
        for (bad, why) in [
            ("some/dir", "no transport prefix"),
            ("oci:", "needs a folder"),
            ("oci:dir:bad/tag", "'/' is not allowed"),
            ("docker-archive:", "needs a file"),
            ("docker:127.0.0.1/x", "docker://REF"),
            ("tarball:x", "unknown transport"),
            ("docker://UPPER/Case", "lowercase"),
        ] {
            let err = ImageReference::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn explicit_tags_are_told_from_ports() {
        assert!(names_tag("127.0.0.1:5000/repo:v1"));
        assert!(!names_tag("127.0.0.1:5000/repo"));
        assert!(!names_tag("127.0.0.1:5000/repo@sha256:abc"));
        assert!(names_tag("repo:v1"));
        assert!(!names_tag("registry.example/openshell/supervisor"));
    }

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
            let err = check_tag(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(check_tag(&"x".repeat(129)).is_err());
    }

    #[test]
    fn a_publication_records_where_and_under_which_tag() {
        let published = |pinned: Option<&str>| Published {
            destination: String::new(),
            references: vec!["written".to_string()],
            digest: "sha256:aa".to_string(),
            pinned: pinned.map(str::to_string),
            blobs_written: 0,
            bytes_written: 0,
            blobs_present: 0,
        };
        let defaults = ["0.1.0".to_string(), "latest".to_string()];
        let layout = ImageReference::parse("oci:out/dir").unwrap();
        let record = layout.publication(&published(None), &defaults);
        assert_eq!(
            (record.transport.as_str(), record.location.as_str()),
            (OCI, "out/dir")
        );
        assert_eq!(record.tag.as_deref(), Some("0.1.0"));
        assert_eq!(record.references, ["written"]);
        let tagged = ImageReference::parse("oci:out/dir:v2").unwrap();
        let record = tagged.publication(&published(None), &defaults);
        assert_eq!(record.tag.as_deref(), Some("v2"));
        let archive = ImageReference::parse("docker-archive:out.tar").unwrap();
        let record = archive.publication(&published(None), &defaults);
        assert_eq!(
            (record.transport.as_str(), record.location.as_str()),
            (DOCKER_ARCHIVE, "out.tar")
        );
        let pinned = "127.0.0.1:5000/supervisor@sha256:aa";
        let registry = ImageReference::parse("docker://127.0.0.1:5000/supervisor").unwrap();
        let record = registry.publication(&published(Some(pinned)), &defaults);
        assert_eq!(
            (record.transport.as_str(), record.location.as_str()),
            (DOCKER, "127.0.0.1:5000/supervisor")
        );
        assert_eq!(record.tag.as_deref(), Some("0.1.0"));
        assert_eq!(record.pinned.as_deref(), Some(pinned));
        let registry = ImageReference::parse("docker://127.0.0.1:5000/supervisor:v3").unwrap();
        let record = registry.publication(&published(Some(pinned)), &defaults);
        assert_eq!(record.tag.as_deref(), Some("v3"));
    }
}
