//! The security profile of the sandbox pod.
//!
//! `hardened` (the default) is what a cluster enforcing Pod Security
//! "restricted" needs of the init container, and as close to it as the
//! agent container can come while the supervisor starts as UID 0:
//!
//! - the pod's seccomp profile is `RuntimeDefault` (the runtime's syscall
//!   filter instead of none);
//! - the init container runs as a non-root user ([`INIT_CONTAINER_UID`]
//!   unless the pod names one), with no privilege escalation, no
//!   capabilities, a read-only root filesystem and small resource requests
//!   with a memory limit and no CPU limit (a CPU limit only throttles the
//!   copy, as Tekton found for its init containers);
//! - the agent container cannot gain privileges (`allowPrivilegeEscalation:
//!   false`) and drops every capability except those the supervisor needs
//!   for what it is asked to do: [`RUN_AS_CAPABILITIES`] when it starts the
//!   workload as another user, none otherwise. The set was found by running
//!   the pod on podman: without SETGID `setgroups` fails, without SETUID
//!   `setuid`, and without KILL the supervisor cannot forward a SIGTERM to a
//!   workload of another user.
//!
//! `none` adds nothing, for clusters whose own policy sets these fields.

use std::fmt;
use std::str::FromStr;

pub use openshell_contract::sideload::INIT_CONTAINER_UID;
use openshell_contract::sideload::{SECURITY_PROFILE_HARDENED, SECURITY_PROFILE_NONE};

/// Capabilities the supervisor needs to start the workload as another user
/// (`--run-as`): `setgroups`/`setgid`, `setuid`, and signalling a process of
/// another user.
pub const RUN_AS_CAPABILITIES: [&str; 3] = ["SETUID", "SETGID", "KILL"];

/// CPU the init container requests: it copies one small file.
pub const INIT_CPU_REQUEST: &str = "10m";
/// Memory the init container requests.
pub const INIT_MEMORY_REQUEST: &str = "16Mi";
/// Memory limit of the init container: copy-self peaks at about 1.5 MiB
/// resident (measured with `/usr/bin/time -v` on the 0.9 MB binary); the
/// limit leaves room for the page cache of the copy, which is charged to
/// the container.
pub const INIT_MEMORY_LIMIT: &str = "64Mi";

/// How much hardening the driver adds to sandbox pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityProfile {
    /// Seccomp RuntimeDefault, a "restricted" init container, an agent with
    /// only the capabilities the supervisor needs.
    #[default]
    Hardened,
    /// Nothing added.
    None,
}

impl SecurityProfile {
    /// Every profile, in the order error messages list them.
    pub const ALL: [Self; 2] = [Self::Hardened, Self::None];

    /// The value operators write.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hardened => SECURITY_PROFILE_HARDENED,
            Self::None => SECURITY_PROFILE_NONE,
        }
    }
}

impl fmt::Display for SecurityProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A security profile name that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown security profile {value:?} (expected one of: hardened, none)")]
pub struct UnknownProfile {
    /// The value that was given.
    pub value: String,
}

impl FromStr for SecurityProfile {
    type Err = UnknownProfile;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|profile| profile.as_str() == text)
            .ok_or_else(|| UnknownProfile {
                value: text.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip_and_others_are_refused() {
        for profile in SecurityProfile::ALL {
            assert_eq!(profile.to_string().parse::<SecurityProfile>(), Ok(profile));
        }
        assert_eq!(SecurityProfile::default(), SecurityProfile::Hardened);
        let err = "restricted".parse::<SecurityProfile>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown security profile \"restricted\" (expected one of: hardened, none)"
        );
    }
}
