//! Platforms as written on the command line: `os/architecture[/variant]`.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Arch, Os, Platform, PlatformBuilder};

/// An `os/architecture[/variant]` platform, e.g. `linux/arm64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// Operating system (GOOS), e.g. `linux`.
    pub os: String,
    /// Architecture (GOARCH), e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8`.
    pub variant: Option<String>,
}

/// A platform string that is not `os/architecture[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid platform {text:?}: expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64"
)]
pub struct PlatformError {
    /// The text given.
    pub text: String,
}

impl PlatformSpec {
    /// `linux/ARCH`.
    pub fn linux(architecture: &str) -> Self {
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// The OCI platform object.
    pub fn to_oci(&self) -> Platform {
        let builder = PlatformBuilder::default()
            .os(Os::from(self.os.as_str()))
            .architecture(Arch::from(self.architecture.as_str()));
        let builder = match &self.variant {
            Some(variant) => builder.variant(variant.clone()),
            None => builder,
        };
        // Both required fields are set just above.
        builder.build().unwrap_or_default()
    }

    /// The platform of an OCI platform object.
    pub fn from_oci(platform: &Platform) -> Self {
        Self {
            os: platform.os().to_string(),
            architecture: platform.architecture().to_string(),
            variant: platform.variant().clone(),
        }
    }
}

impl FromStr for PlatformSpec {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|part| valid(part)) {
            return Err(PlatformError { text: text.into() });
        }
        Ok(Self {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|variant| (*variant).to_string()),
        })
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let spec: PlatformSpec = "linux/arm64/v8".parse().unwrap();
        assert_eq!(spec.architecture, "arm64");
        assert_eq!(spec.to_string(), "linux/arm64/v8");
        assert_eq!(PlatformSpec::from_oci(&spec.to_oci()), spec);
    }

    #[test]
    fn refuses_malformed_platforms() {
        for bad in ["amd64", "linux/", "linux/amd64/v8/x", "Linux/AMD64", ""] {
            let err = bad.parse::<PlatformSpec>().unwrap_err().to_string();
            assert!(err.contains("expected os/architecture"), "{err}");
        }
    }
}
