//! What build-image adds to `openshell_contract::platform`: a platform as
//! an OCI platform object, and the platforms it builds the supervisor for.

use oci_spec::image::{Arch, Os, PlatformBuilder};
use openshell_contract::DEFAULT_PLATFORMS;
use openshell_contract::platform::{Architecture, Platform};

/// The OCI platform object of `platform`.
pub fn to_oci(platform: &Platform) -> oci_spec::image::Platform {
    let builder = PlatformBuilder::default()
        .os(Os::from(platform.os.as_str()))
        .architecture(Arch::from(platform.architecture.as_str()));
    let builder = match &platform.variant {
        Some(variant) => builder.variant(variant.clone()),
        None => builder,
    };
    // Both required fields are set just above.
    builder.build().unwrap_or_default()
}

/// The platform of an OCI platform object.
pub fn from_oci(platform: &oci_spec::image::Platform) -> Platform {
    Platform {
        os: platform.os().to_string(),
        architecture: platform.architecture().to_string(),
        variant: platform.variant().clone(),
    }
}

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

/// The architecture row (its musl target, and the glibc target that can
/// stand in with `+crt-static` when the musl one is missing and the
/// platform is the host's) build-image builds `platform`'s supervisor for:
/// one of [`DEFAULT_PLATFORMS`], where `linux/arm64/v8` is `linux/arm64`.
pub fn supervisor_target(
    platform: &Platform,
) -> Result<&'static Architecture, UnsupportedPlatform> {
    let supported = Platform::defaults()
        .iter()
        .any(|default| default.os == platform.os && default.architecture == platform.architecture);
    platform
        .arch()
        .filter(|_| supported && platform.has_default_variant())
        .ok_or_else(|| UnsupportedPlatform {
            platform: platform.to_string(),
            supported: DEFAULT_PLATFORMS.join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openshell_contract::ARM64_STATIC_TARGET;

    #[test]
    fn oci_platforms_round_trip() {
        for text in ["linux/arm64/v8", "linux/amd64", "windows/amd64"] {
            let platform: Platform = text.parse().unwrap();
            assert_eq!(from_oci(&to_oci(&platform)), platform);
        }
    }

    #[test]
    fn the_default_platforms_are_amd64_then_arm64_with_musl_targets() {
        let defaults = Platform::defaults();
        assert_eq!(defaults.len(), DEFAULT_PLATFORMS.len());
        let targets: Vec<&str> = defaults
            .iter()
            .map(|platform| supervisor_target(platform).unwrap().musl_target)
            .collect();
        assert_eq!(
            targets,
            ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
        );
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(
            supervisor_target(&v8).unwrap().musl_target,
            ARM64_STATIC_TARGET
        );
    }

    #[test]
    fn other_platforms_have_no_supervisor_target() {
        for other in [
            "linux/s390x",
            "windows/amd64",
            "linux/amd64/v3",
            "linux/arm64/v9",
        ] {
            let platform: Platform = other.parse().unwrap();
            let err = supervisor_target(&platform).unwrap_err().to_string();
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
            let err = bad.parse::<Platform>().unwrap_err().to_string();
            assert!(err.contains("expected os/architecture"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
