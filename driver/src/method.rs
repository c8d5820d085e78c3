//! How the supervisor binary reaches the sandbox: the sideload method.

use std::fmt;
use std::str::FromStr;

use openshell_contract::sideload::{METHOD_AUTO, METHOD_IMAGE_VOLUME, METHOD_INIT_CONTAINER};
use serde::{Deserialize, Serialize};

/// The ways the driver can put the supervisor into a sandbox pod.
///
/// Every decision on the method is an exhaustive `match` without a
/// wildcard arm (never `==`, `!=`, `matches!` or `if let`), so a new method
/// fails to compile at each of them (the volume, the init container, the
/// plan's checks, the warnings) instead of silently getting an init
/// container. Keep it that way, and list a new method in [`Self::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SupervisorSideloadMethod {
    /// A Kubernetes image volume mounts the supervisor image read-only at the
    /// mount path: no init container, no copy.
    #[default]
    ImageVolume,
    /// An init container copies the binary out of the supervisor image into
    /// an `emptyDir`, for clusters without image volumes.
    InitContainer,
}

impl SupervisorSideloadMethod {
    /// Every method, in the order the error messages list them.
    pub const ALL: [Self; 2] = [Self::ImageVolume, Self::InitContainer];

    /// The value operators write (`image-volume`, `init-container`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageVolume => METHOD_IMAGE_VOLUME,
            Self::InitContainer => METHOD_INIT_CONTAINER,
        }
    }
}

impl fmt::Display for SupervisorSideloadMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sideload method name that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown supervisor sideload method {value:?} (expected one of: {})",
    valid_methods()
)]
pub struct UnknownMethod {
    /// The value that was given.
    pub value: String,
}

fn valid_methods() -> String {
    SupervisorSideloadMethod::ALL
        .iter()
        .map(|method| method.as_str())
        .chain([METHOD_AUTO])
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for SupervisorSideloadMethod {
    type Err = UnknownMethod;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Exact match only: a near miss like `imagevolume` or `Image-Volume`
        // is more likely a typo in a deployment than a wish, and must fail
        // at start rather than pick a method silently.
        Self::ALL
            .into_iter()
            .find(|method| method.as_str() == text)
            .ok_or_else(|| UnknownMethod {
                value: text.to_string(),
            })
    }
}

/// The method as configured: one of the methods, or `auto`, chosen from
/// facts about the cluster (see [`crate::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodChoice {
    /// Choose from the cluster's version and nodes.
    Auto,
    /// This method, whatever the facts (they are still checked).
    Method(SupervisorSideloadMethod),
}

impl fmt::Display for MethodChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str(METHOD_AUTO),
            Self::Method(method) => method.fmt(f),
        }
    }
}

impl FromStr for MethodChoice {
    type Err = UnknownMethod;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == METHOD_AUTO {
            return Ok(Self::Auto);
        }
        text.parse().map(Self::Method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_from_str_round_trip() {
        for method in SupervisorSideloadMethod::ALL {
            assert_eq!(
                method.to_string().parse::<SupervisorSideloadMethod>(),
                Ok(method)
            );
        }
        assert_eq!(
            SupervisorSideloadMethod::ImageVolume.to_string(),
            "image-volume"
        );
        assert_eq!(
            SupervisorSideloadMethod::InitContainer.to_string(),
            "init-container"
        );
    }

    #[test]
    fn default_is_image_volume() {
        assert_eq!(
            SupervisorSideloadMethod::default(),
            SupervisorSideloadMethod::ImageVolume
        );
    }

    #[test]
    fn serde_uses_the_same_kebab_case_names() {
        for method in SupervisorSideloadMethod::ALL {
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{method}\""));
            let back: SupervisorSideloadMethod = serde_json::from_str(&json).unwrap();
            assert_eq!(back, method);
        }
        assert!(serde_json::from_str::<SupervisorSideloadMethod>("\"ImageVolume\"").is_err());
    }

    #[test]
    fn unknown_value_is_named_with_the_valid_ones() {
        let err = "imagevolume"
            .parse::<SupervisorSideloadMethod>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown supervisor sideload method \"imagevolume\" (expected one of: image-volume, init-container, auto)"
        );
        let err = "Image-Volume"
            .parse::<SupervisorSideloadMethod>()
            .unwrap_err();
        assert!(err.to_string().contains("\"Image-Volume\""), "{err}");
        let err = "".parse::<SupervisorSideloadMethod>().unwrap_err();
        assert!(err.to_string().contains("\"\""), "{err}");
    }

    #[test]
    fn auto_is_a_choice_but_not_a_method() {
        assert_eq!("auto".parse::<MethodChoice>(), Ok(MethodChoice::Auto));
        assert_eq!(
            "init-container".parse::<MethodChoice>(),
            Ok(MethodChoice::Method(
                SupervisorSideloadMethod::InitContainer
            ))
        );
        assert!("auto".parse::<SupervisorSideloadMethod>().is_err());
        assert!("Auto".parse::<MethodChoice>().is_err());
        assert_eq!(MethodChoice::Auto.to_string(), "auto");
    }
}
