//! The supervisor image reference and its pull policy.

use std::fmt;
use std::str::FromStr;

use openshell_registry::{Reference, RegistryError, parse_reference};
use serde::{Deserialize, Serialize, Serializer};

/// The tag Kubernetes treats as "always pull" (and assumes when none is
/// given).
const LATEST_TAG: &str = "latest";

/// A supervisor image reference that a maintained parser (oci-client's,
/// through `openshell-registry`) accepted.
///
/// Pods get the text as the operator wrote it (Kubernetes normalises
/// `openshell/supervisor` to `docker.io/openshell/supervisor` itself), except
/// that a `repo:tag@sha256:...` pin becomes `repo@sha256:...`: CRI-O 1.31.0
/// refuses the tag beside a digest, and every runtime ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorImage {
    text: String,
    reference: Reference,
}

impl From<RegistryError> for ImageError {
    fn from(error: RegistryError) -> Self {
        Self::Invalid(Box::new(error))
    }
}

/// Why a supervisor image reference was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The parser refused the text (boxed: registry errors are large).
    #[error(transparent)]
    Invalid(Box<RegistryError>),
    /// A digest written in uppercase hex.
    #[error(
        "image reference '{reference}': the digest has uppercase hex digits, which containerd refuses (expected sha256: and 64 lowercase hex digits)"
    )]
    UppercaseDigest {
        /// The reference given.
        reference: String,
    },
    /// Pinning a reference that already carries another digest.
    #[error(
        "image reference '{reference}' is already pinned to {existing}, not {requested}: drop the digest from the reference or check which image is meant"
    )]
    DigestMismatch {
        /// The reference given.
        reference: String,
        /// The digest it carries.
        existing: String,
        /// The digest it was to be pinned to.
        requested: String,
    },
}

impl SupervisorImage {
    /// Parses and checks a reference (`[REGISTRY/]REPO[:TAG][@sha256:DIGEST]`);
    /// a tag beside a digest is dropped ([`pod_reference`]).
    pub fn parse(text: &str) -> Result<Self, ImageError> {
        let text = pod_reference(text)?;
        Ok(Self {
            reference: parse_reference(&text)?,
            text,
        })
    }

    /// The reference as the operator wrote it, and as pods carry it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed reference (registry, repository, tag, digest normalised).
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The digest (`sha256:...`) the reference is pinned to, if any.
    pub fn digest(&self) -> Option<&str> {
        self.reference.digest()
    }

    /// Whether the reference is one operators should expect to move: no
    /// digest, and the tag `latest`, no tag at all, or any other tag that is
    /// not a full release version (`main`, `dev`, `1.2`). Image volumes
    /// re-resolve a tag whenever a pod is created, so sandboxes may run
    /// different supervisors when it moves. A release tag (`0.1.0`,
    /// `v1.2.3-rc.1`) names one release and is not warned about.
    pub fn is_mutable(&self) -> bool {
        self.digest().is_none() && !self.reference.tag().is_some_and(is_release_version)
    }

    /// The pull policy Kubernetes picks when none is given: `IfNotPresent`
    /// for a digest reference (the image cannot change), else `Always` when
    /// the tag is `latest` (also the tag assumed when neither tag nor digest
    /// is given) and `IfNotPresent` for any other tag.
    pub fn default_pull_policy(&self) -> PullPolicy {
        // oci-client's parser fills in `latest` exactly when Kubernetes'
        // does: no tag and no digest.
        if self.digest().is_none() && self.reference.tag() == Some(LATEST_TAG) {
            PullPolicy::Always
        } else {
            PullPolicy::IfNotPresent
        }
    }

    /// The repository as written, without tag or digest
    /// (`registry.example:5000/team/sup` for
    /// `registry.example:5000/team/sup:1.0@sha256:...`).
    pub fn repository_text(&self) -> &str {
        repository_of(&self.text)
    }

    /// This reference pinned to `digest` (`sha256:...`): `REPO@sha256:...`,
    /// digest only. CRI-O 1.31.0 refuses `REPO:TAG@sha256:...` (cri-o#8603),
    /// so the tag is dropped. A reference already pinned to the same digest
    /// is returned as written; another digest is an error.
    pub fn pinned(&self, digest: &str) -> Result<Self, ImageError> {
        match self.digest() {
            Some(existing) if existing == digest => Ok(self.clone()),
            Some(existing) => Err(ImageError::DigestMismatch {
                reference: self.text.clone(),
                existing: existing.to_string(),
                requested: digest.to_string(),
            }),
            None => Self::parse(&format!("{}@{digest}", self.repository_text())),
        }
    }

    /// This pinned reference without its tag (`REPO@sha256:...`), as the
    /// driver writes pins; a reference without a digest is returned as is.
    pub fn digest_only(&self) -> Result<Self, ImageError> {
        match self.digest() {
            Some(digest) => Self::parse(&format!("{}@{digest}", self.repository_text())),
            None => Ok(self.clone()),
        }
    }

    /// Whether `other` names the same registry and repository (tags and
    /// digests aside), after docker-style normalisation.
    pub fn same_repository(&self, other: &SupervisorImage) -> bool {
        self.reference.registry() == other.reference.registry()
            && self.reference.repository() == other.reference.repository()
    }
}

/// An image reference as a pod may carry it: checked by the maintained
/// parser, a digest in lowercase hex only (containerd's digest library
/// refuses uppercase), and `REPO:TAG@DIGEST` rewritten to `REPO@DIGEST`
/// (CRI-O 1.31.0 refuses a tag beside a digest; the digest alone names the
/// same image). Anything else is returned as written.
pub fn pod_reference(text: &str) -> Result<String, ImageError> {
    let reference = parse_reference(text)?;
    let Some(digest) = reference.digest() else {
        return Ok(text.to_string());
    };
    let Some((_, written)) = text.rsplit_once('@') else {
        return Ok(text.to_string());
    };
    let hex = written.split_once(':').map_or(written, |(_, hex)| hex);
    if hex.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ImageError::UppercaseDigest {
            reference: text.to_string(),
        });
    }
    if reference.tag().is_none() {
        return Ok(text.to_string());
    }
    Ok(format!("{}@{digest}", repository_of(text)))
}

/// The repository as written in `text`, without tag or digest.
fn repository_of(text: &str) -> &str {
    let name = text.split('@').next().unwrap_or(text);
    // A tag follows the last `:` after the last `/`; a `:` before it is a
    // registry port.
    let last_slash = name.rfind('/').map_or(0, |at| at + 1);
    match name[last_slash..].rfind(':') {
        Some(colon) => &name[..last_slash + colon],
        None => name,
    }
}

/// Whether a tag names one release: `MAJOR.MINOR.PATCH`, optionally with a
/// leading `v` and a `-prerelease` or `+build` suffix. Shorter tags (`1.2`,
/// `3`) are series that move with each release.
fn is_release_version(tag: &str) -> bool {
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    let core = tag.split(['-', '+']).next().unwrap_or(tag);
    let suffix = &tag[core.len()..];
    let numbers: Vec<&str> = core.split('.').collect();
    numbers.len() == 3
        && numbers
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
        && suffix.len() != 1
}

impl fmt::Display for SupervisorImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for SupervisorImage {
    type Err = ImageError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for SupervisorImage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// When the kubelet pulls an image, spelled as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PullPolicy {
    /// Resolve the reference with the registry for every pod.
    Always,
    /// Pull only when the node does not have the image.
    IfNotPresent,
    /// Never pull: the image must be on the node already.
    Never,
}

impl PullPolicy {
    /// Every policy, in the order the error messages list them.
    pub const ALL: [Self; 3] = [Self::Always, Self::IfNotPresent, Self::Never];

    /// The value in a pod spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pull policy that Kubernetes does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown image pull policy {value:?} (expected one of: Always, IfNotPresent, Never)")]
pub struct UnknownPullPolicy {
    /// The value that was given.
    pub value: String,
}

impl FromStr for PullPolicy {
    type Err = UnknownPullPolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // The API server rejects any other spelling (`always`,
        // `if-not-present`), so the driver does too, at start.
        Self::ALL
            .into_iter()
            .find(|policy| policy.as_str() == text)
            .ok_or_else(|| UnknownPullPolicy {
                value: text.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image(text: &str) -> SupervisorImage {
        SupervisorImage::parse(text).unwrap()
    }

    #[test]
    fn text_is_kept_as_written() {
        assert_eq!(
            image("openshell/supervisor:latest").as_str(),
            "openshell/supervisor:latest"
        );
        assert_eq!(
            image("openshell/supervisor").as_str(),
            "openshell/supervisor"
        );
        let pinned = format!("registry.example:5000/team/sup@{DIGEST}");
        assert_eq!(image(&pinned).as_str(), pinned);
        assert_eq!(image(&pinned).digest(), Some(DIGEST));
        // A tag beside a digest is dropped: CRI-O 1.31.0 refuses the pair.
        let tagged_and_pinned = format!("registry.example/team/sup:1.2.3@{DIGEST}");
        let parsed = image(&tagged_and_pinned);
        assert_eq!(
            parsed.to_string(),
            format!("registry.example/team/sup@{DIGEST}")
        );
        assert_eq!(parsed.reference().tag(), None);
        assert_eq!(parsed.digest(), Some(DIGEST));
    }

    #[test]
    fn mutability_follows_the_digest_and_release_tags() {
        assert!(image("openshell/supervisor:latest").is_mutable());
        assert!(image("openshell/supervisor").is_mutable());
        assert!(image("openshell/supervisor:main").is_mutable());
        assert!(image("openshell/supervisor:1.0").is_mutable());
        assert!(!image("openshell/supervisor:0.1.0").is_mutable());
        assert!(!image("openshell/supervisor:v1.2.3-rc.1").is_mutable());
        // `+` is not allowed in tags, but the rule reads it like semver.
        assert!(is_release_version("1.2.3+build.5"));
        assert!(!is_release_version("1.2.3-"));
        assert!(!is_release_version("1.2"));
        assert!(!is_release_version("1.2.x"));
        assert!(!image(&format!("openshell/supervisor@{DIGEST}")).is_mutable());
        assert!(!image(&format!("openshell/supervisor:1.0@{DIGEST}")).is_mutable());
        assert!(!image(openshell_contract::DEFAULT_SUPERVISOR_IMAGE).is_mutable());
    }

    #[test]
    fn kubernetes_default_pull_policy_rule() {
        use PullPolicy::{Always, IfNotPresent};
        for (text, expected) in [
            ("openshell/supervisor:latest".to_string(), Always),
            ("openshell/supervisor".to_string(), Always),
            ("registry.example:5000/sup".to_string(), Always),
            ("openshell/supervisor:1.0".to_string(), IfNotPresent),
            ("openshell/supervisor:latest-rc".to_string(), IfNotPresent),
            (format!("openshell/supervisor@{DIGEST}"), IfNotPresent),
            (format!("openshell/supervisor:1.0@{DIGEST}"), IfNotPresent),
            (
                format!("openshell/supervisor:latest@{DIGEST}"),
                IfNotPresent,
            ),
        ] {
            assert_eq!(image(&text).default_pull_policy(), expected, "{text}");
        }
    }

    #[test]
    fn invalid_reference_names_the_input() {
        let err = SupervisorImage::parse("Openshell/Supervisor:latest").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid image reference 'Openshell/Supervisor:latest'"),
            "{err}"
        );
    }

    #[test]
    fn empty_reference_is_refused() {
        let err = SupervisorImage::parse("").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid image reference ''"),
            "{err}"
        );
    }

    #[test]
    fn short_digest_is_refused() {
        let err = SupervisorImage::parse("openshell/supervisor@sha256:abc").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid image reference 'openshell/supervisor@sha256:abc'"),
            "{err}"
        );
    }

    #[test]
    fn pinning_writes_the_digest_only() {
        for (text, expected) in [
            ("registry.example/sup:1.0", "registry.example/sup"),
            (
                "registry.example:5000/team/sup:1.0",
                "registry.example:5000/team/sup",
            ),
            (
                "registry.example:5000/team/sup",
                "registry.example:5000/team/sup",
            ),
            ("openshell/supervisor", "openshell/supervisor"),
            ("localhost:5000/sup:latest", "localhost:5000/sup"),
        ] {
            let pinned = image(text).pinned(DIGEST).unwrap();
            assert_eq!(pinned.as_str(), format!("{expected}@{DIGEST}"), "{text}");
            assert_eq!(pinned.reference().tag(), None, "{text}");
            assert!(!pinned.is_mutable());
            assert_eq!(pinned.default_pull_policy(), PullPolicy::IfNotPresent);
            // Pinning again to the same digest changes nothing.
            assert_eq!(pinned.pinned(DIGEST).unwrap(), pinned);
        }
        // A reference the operator pinned with its tag is kept as written.
        let given = image(&format!("registry.example/sup:1.0@{DIGEST}"));
        assert_eq!(given.pinned(DIGEST).unwrap(), given);
    }

    #[test]
    fn pinning_to_another_digest_is_an_error() {
        let other = format!("sha256:{}", "f".repeat(64));
        let err = image(&format!("sup@{DIGEST}")).pinned(&other).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "image reference 'sup@{DIGEST}' is already pinned to {DIGEST}, not {other}: drop the digest from the reference or check which image is meant"
            )
        );
    }

    #[test]
    fn repositories_compare_after_normalisation() {
        assert!(
            image("openshell/supervisor:1")
                .same_repository(&image("docker.io/openshell/supervisor"))
        );
        assert!(
            !image("openshell/supervisor").same_repository(&image("quay.io/openshell/supervisor"))
        );
    }

    #[test]
    fn pull_policy_round_trips_and_rejects_other_spellings() {
        for policy in PullPolicy::ALL {
            assert_eq!(policy.to_string().parse::<PullPolicy>(), Ok(policy));
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(json, format!("\"{policy}\""));
        }
        let err = "always".parse::<PullPolicy>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown image pull policy \"always\" (expected one of: Always, IfNotPresent, Never)"
        );
        assert!("if-not-present".parse::<PullPolicy>().is_err());
    }
}
