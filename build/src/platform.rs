//! Platforms as written on the command line: `os/architecture[/variant]`.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Arch, Os, Platform, PlatformBuilder};
use openshell_contract::{ARM64_STATIC_TARGET, DEFAULT_PLATFORMS, DEFAULT_STATIC_TARGET};

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

/// How the supervisor is built for one platform: its static musl target,
/// and the glibc target that can stand in (with `+crt-static`) when the
/// musl one is missing and the platform is the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorTarget {
    /// OCI architecture (`amd64`, `arm64`).
    pub architecture: &'static str,
    /// The musl target triple: static by default.
    pub musl: &'static str,
    /// The glibc target triple of the same machine.
    pub gnu: &'static str,
}

/// The platforms build-image can build the supervisor for.
pub const SUPERVISOR_TARGETS: [SupervisorTarget; 2] = [
    SupervisorTarget {
        architecture: "amd64",
        musl: DEFAULT_STATIC_TARGET,
        gnu: "x86_64-unknown-linux-gnu",
    },
    SupervisorTarget {
        architecture: "arm64",
        musl: ARM64_STATIC_TARGET,
        gnu: "aarch64-unknown-linux-gnu",
    },
];

/// A platform build-image cannot build the supervisor for.
#[derive(Debug, thiserror::Error)]
#[error(
    "build-image builds the supervisor for {supported} only, not {platform}: build it yourself and pass --binary {platform}=PATH"
)]
pub struct UnsupportedPlatform {
    /// The platform asked for.
    pub platform: String,
    /// The platforms that are supported, comma-separated.
    pub supported: String,
}

impl PlatformSpec {
    /// The default platforms of a build ([`DEFAULT_PLATFORMS`]).
    pub fn defaults() -> Vec<Self> {
        DEFAULT_PLATFORMS
            .iter()
            .filter_map(|text| text.parse().ok())
            .collect()
    }

    /// How the supervisor is built for this platform. `linux/arm64/v8` is
    /// `linux/arm64` (the only arm64 variant Rust's target builds for).
    pub fn supervisor_target(&self) -> Result<SupervisorTarget, UnsupportedPlatform> {
        let variant_fits = matches!(
            (self.architecture.as_str(), self.variant.as_deref()),
            (_, None) | ("arm64", Some("v8"))
        );
        SUPERVISOR_TARGETS
            .iter()
            .find(|target| {
                self.os == "linux" && self.architecture == target.architecture && variant_fits
            })
            .copied()
            .ok_or_else(|| UnsupportedPlatform {
                platform: self.to_string(),
                supported: DEFAULT_PLATFORMS.join(", "),
            })
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
    fn the_default_platforms_are_amd64_then_arm64_with_musl_targets() {
        let defaults = PlatformSpec::defaults();
        assert_eq!(defaults.len(), DEFAULT_PLATFORMS.len());
        let targets: Vec<&str> = defaults
            .iter()
            .map(|platform| platform.supervisor_target().unwrap().musl)
            .collect();
        assert_eq!(
            targets,
            ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
        );
        let v8: PlatformSpec = "linux/arm64/v8".parse().unwrap();
        assert_eq!(v8.supervisor_target().unwrap().musl, ARM64_STATIC_TARGET);
    }

    #[test]
    fn other_platforms_have_no_supervisor_target() {
        for other in [
            "linux/s390x",
            "windows/amd64",
            "linux/amd64/v3",
            "linux/arm64/v9",
        ] {
            let platform: PlatformSpec = other.parse().unwrap();
            let err = platform.supervisor_target().unwrap_err().to_string();
            assert!(
                err.contains(&format!("not {other}"))
                    && err.contains("linux/amd64, linux/arm64")
                    && err.contains(&format!("--binary {other}=PATH")),
                "{err}"
            );
        }
    }

    #[test]
    fn refuses_malformed_platforms() {
        for bad in ["amd64", "linux/", "linux/amd64/v8/x", "Linux/AMD64", ""] {
            let err = bad.parse::<PlatformSpec>().unwrap_err().to_string();
            assert!(err.contains("expected os/architecture"), "{err}");
        }
    }
}
