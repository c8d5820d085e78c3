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
/// Pods get the text exactly as the operator wrote it: Kubernetes normalises
/// `openshell/supervisor` to `docker.io/openshell/supervisor` itself, and a
/// `repo:tag@sha256:...` pin must reach the kubelet unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorImage {
    text: String,
    reference: Reference,
}

/// Why a supervisor image reference was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The parser refused the text.
    #[error(transparent)]
    Invalid(#[from] RegistryError),
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
    /// Parses and checks a reference (`[REGISTRY/]REPO[:TAG][@sha256:DIGEST]`).
    pub fn parse(text: &str) -> Result<Self, ImageError> {
        Ok(Self {
            text: text.to_string(),
            reference: parse_reference(text)?,
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

    /// Whether the reference can point at different images over time: a tag
    /// without a digest. Image volumes re-resolve it whenever a pod is
    /// created, so sandboxes may run different supervisors.
    pub fn is_mutable(&self) -> bool {
        self.digest().is_none()
    }

    /// The pull policy Kubernetes picks when none is given: `Always` when the
    /// tag is `latest` (also the tag assumed when neither tag nor digest is
    /// given), `IfNotPresent` otherwise. This is the rule of the API server's
    /// defaulting for both containers and image volumes, applied to the tag
    /// only, so `repo:latest@sha256:...` also gets `Always`.
    pub fn default_pull_policy(&self) -> PullPolicy {
        // oci-client's parser fills in `latest` exactly when Kubernetes'
        // does: no tag and no digest.
        if self.reference.tag() == Some(LATEST_TAG) {
            PullPolicy::Always
        } else {
            PullPolicy::IfNotPresent
        }
    }

    /// This reference pinned to `digest` (`sha256:...`): `REF@sha256:...`,
    /// keeping the tag for people reading the pod. A reference already pinned
    /// to the same digest is returned unchanged; another digest is an error.
    pub fn pinned(&self, digest: &str) -> Result<Self, ImageError> {
        match self.digest() {
            Some(existing) if existing == digest => Ok(self.clone()),
            Some(existing) => Err(ImageError::DigestMismatch {
                reference: self.text.clone(),
                existing: existing.to_string(),
                requested: digest.to_string(),
            }),
            None => Self::parse(&format!("{}@{digest}", self.text)),
        }
    }

    /// Whether `other` names the same registry and repository (tags and
    /// digests aside), after docker-style normalisation.
    pub fn same_repository(&self, other: &SupervisorImage) -> bool {
        self.reference.registry() == other.reference.registry()
            && self.reference.repository() == other.reference.repository()
    }
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
        let tagged_and_pinned = format!("registry.example/team/sup:1.2.3@{DIGEST}");
        let parsed = image(&tagged_and_pinned);
        assert_eq!(parsed.to_string(), tagged_and_pinned);
        assert_eq!(parsed.reference().tag(), Some("1.2.3"));
        assert_eq!(parsed.digest(), Some(DIGEST));
    }

    #[test]
    fn mutability_follows_the_digest() {
        assert!(image("openshell/supervisor:latest").is_mutable());
        assert!(image("openshell/supervisor:1.0").is_mutable());
        assert!(image("openshell/supervisor").is_mutable());
        assert!(!image(&format!("openshell/supervisor@{DIGEST}")).is_mutable());
        assert!(!image(&format!("openshell/supervisor:1.0@{DIGEST}")).is_mutable());
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
            (format!("openshell/supervisor:latest@{DIGEST}"), Always),
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
    fn pinning_appends_the_digest_and_keeps_the_tag() {
        let pinned = image("registry.example/sup:1.0").pinned(DIGEST).unwrap();
        assert_eq!(
            pinned.as_str(),
            format!("registry.example/sup:1.0@{DIGEST}")
        );
        assert!(!pinned.is_mutable());
        // Pinning again to the same digest changes nothing.
        assert_eq!(pinned.pinned(DIGEST).unwrap(), pinned);
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
