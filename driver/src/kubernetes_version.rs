//! Kubernetes versions as clusters report them.
//!
//! A small parser rather than the `semver` crate: Kubernetes versions are
//! often written without the patch number (`1.35`), which semver rejects,
//! and the suffixes managed clusters add (`-gke.1`, `-eks-036c24b`, `+k3s1`)
//! only need to be recognised and skipped, not ordered.

use std::fmt;
use std::str::FromStr;

/// A Kubernetes `1.MINOR[.PATCH]` version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesVersion {
    /// Major version: always 1.
    pub major: u64,
    /// Minor version: what decides which features are on by default.
    pub minor: u64,
    /// Patch version, when it was given.
    pub patch: Option<u64>,
    /// The distribution suffix (`-gke.1`, `+k3s1`), kept for messages.
    pub suffix: String,
}

/// A version string that is not a Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid Kubernetes version {value:?}: {reason} (expected 1.MINOR[.PATCH], optionally with a leading v and a -/+ suffix, like v1.34.2, 1.35 or v1.33.5-gke.1)"
)]
pub struct VersionError {
    /// The text that was given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for KubernetesVersion {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| VersionError {
            value: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("it is empty".to_string()));
        }
        let unprefixed = text.strip_prefix('v').unwrap_or(text);
        let (core, suffix) = match unprefixed.find(['-', '+']) {
            Some(at) => unprefixed.split_at(at),
            None => (unprefixed, ""),
        };
        if suffix.len() == 1 {
            return Err(fail(format!("empty suffix after {suffix:?}")));
        }
        let parts: Vec<&str> = core.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(fail(format!(
                "{} dot-separated numbers (expected 2 or 3)",
                parts.len()
            )));
        }
        let mut numbers = Vec::with_capacity(parts.len());
        for (part, name) in parts.iter().zip(["major", "minor", "patch"]) {
            // u64::from_str accepts a leading `+`; a version number must be
            // plain digits.
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(fail(format!("the {name} version {part:?} is not a number")));
            }
            let number = part
                .parse::<u64>()
                .map_err(|err| fail(format!("the {name} version {part:?}: {err}")))?;
            numbers.push(number);
        }
        if numbers[0] != 1 {
            return Err(fail(format!(
                "major version {} (Kubernetes versions are 1.x)",
                numbers[0]
            )));
        }
        Ok(Self {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers.get(2).copied(),
            suffix: suffix.to_string(),
        })
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        f.write_str(&self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> KubernetesVersion {
        text.parse().unwrap()
    }

    #[test]
    fn accepts_what_clusters_report() {
        let plain = parse("v1.34.2");
        assert_eq!((plain.major, plain.minor, plain.patch), (1, 34, Some(2)));
        assert_eq!(plain.suffix, "");
        let short = parse("1.35");
        assert_eq!((short.minor, short.patch), (35, None));
        let gke = parse("v1.33.5-gke.1");
        assert_eq!((gke.minor, gke.patch), (33, Some(5)));
        assert_eq!(gke.suffix, "-gke.1");
        let k3s = parse("v1.36.0+k3s1");
        assert_eq!((k3s.minor, k3s.patch), (36, Some(0)));
        assert_eq!(k3s.suffix, "+k3s1");
        assert_eq!(parse("1.36-eks-036c24b").minor, 36);
    }

    #[test]
    fn display_normalises_the_prefix() {
        assert_eq!(parse("1.34.2").to_string(), "v1.34.2");
        assert_eq!(parse("v1.35").to_string(), "v1.35");
        assert_eq!(parse("v1.36.0+k3s1").to_string(), "v1.36.0+k3s1");
    }

    fn reason(text: &str) -> String {
        let err = text.parse::<KubernetesVersion>().unwrap_err();
        assert_eq!(err.value, text);
        assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        err.reason
    }

    #[test]
    fn rejects_a_word() {
        assert_eq!(
            reason("latest"),
            "1 dot-separated numbers (expected 2 or 3)"
        );
    }

    #[test]
    fn rejects_a_lone_major() {
        assert_eq!(reason("v1"), "1 dot-separated numbers (expected 2 or 3)");
    }

    #[test]
    fn rejects_four_numbers() {
        assert_eq!(
            reason("1.34.2.1"),
            "4 dot-separated numbers (expected 2 or 3)"
        );
    }

    #[test]
    fn rejects_a_non_numeric_minor() {
        assert_eq!(reason("v1.x"), "the minor version \"x\" is not a number");
        assert_eq!(reason("1.+5"), "the minor version \"\" is not a number");
        assert_eq!(reason("1..2"), "the minor version \"\" is not a number");
    }

    #[test]
    fn rejects_another_major() {
        assert_eq!(
            reason("v2.0.0"),
            "major version 2 (Kubernetes versions are 1.x)"
        );
    }

    #[test]
    fn rejects_an_empty_suffix() {
        assert_eq!(reason("v1.35.0-"), "empty suffix after \"-\"");
    }

    #[test]
    fn rejects_empty_text() {
        assert_eq!(reason(""), "it is empty");
    }
}
