//! Registry access shared by `build-image` and the Kubernetes driver.
//!
//! Both tools must find credentials in the same places, talk to a loopback
//! registry over plain HTTP when asked, and explain a refusal the same way:
//! which registry, which reference, which credentials (and where they came
//! from), and what the registry said.
//!
//! Nothing here waits without a bound: every request has a connect
//! timeout, a read (idle) timeout and an operation deadline, and transient
//! failures are retried a bounded number of times (see [`RegistryClient`]
//! and [`NetworkSettings`]).

mod auth;
mod client;
mod digest;
mod error;
mod progress;
mod retry;
mod settings;

use std::path::PathBuf;
use std::time::Duration;

pub use oci_client::secrets::RegistryAuth;
/// A registry reference (`HOST/REPOSITORY[:TAG][@DIGEST]`): oci-spec's
/// type, which oci-client's `Reference` re-exports.
pub use oci_spec::distribution::Reference;

pub use auth::{ResolvedAuth, auth_file_candidates, resolve_auth};
pub use client::{
    ACCEPTED_MANIFEST_TYPES, Access, DEFAULT_MANIFEST_LIMIT, PulledManifest, RegistryClient,
    TOKEN_RESPONSE_LIMIT,
};
pub use error::RegistryError;
pub use settings::{
    BLOB_FLOOR_RATE, DEFAULT_ATTEMPTS, DEFAULT_CONNECT_TIMEOUT, DEFAULT_OPERATION_TIMEOUT,
    DEFAULT_READ_TIMEOUT, DEFAULT_STALLED_COMMAND_BOUND, MAX_ATTEMPTS, NetworkSettings,
    SettingError, parse_attempts, parse_duration,
};

/// How to reach a registry, which credentials to use, and how long to wait.
///
/// Build it with `..Default::default()`: fields are added over time. The
/// network fields left `None` come from the `OPENSHELL_REGISTRY_*`
/// environment variables, else from the defaults (see [`NetworkSettings`]).
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Speak plain HTTP (for a loopback registry without TLS).
    pub plain_http: bool,
    /// Explicit credentials (`--username` with `--password-stdin`); they win
    /// over auth files.
    pub basic: Option<(String, String)>,
    /// An auth file to use instead of the default search.
    pub auth_file: Option<PathBuf>,
    /// How long to wait for a connection (`--registry-connect-timeout`).
    pub connect_timeout: Option<Duration>,
    /// How long a request may go without a byte moving
    /// (`--registry-read-timeout`).
    pub read_timeout: Option<Duration>,
    /// The deadline of one operation, retries included
    /// (`--registry-operation-timeout`); a blob transfer gets more in
    /// proportion to its size.
    pub operation_timeout: Option<Duration>,
    /// Attempts per operation, the first included (`--registry-attempts`).
    pub attempts: Option<u32>,
    /// No progress lines for blob transfers, even on a terminal.
    pub quiet: bool,
}

/// Parses an image reference the way docker and podman do (a bare name gets
/// `docker.io/` and `:latest`), keeping a `@sha256:` pin intact.
pub fn parse_reference(text: &str) -> Result<Reference, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidReference {
        reference: text.to_string(),
        reason,
    };
    let reference = text
        .parse::<Reference>()
        .map_err(|source| invalid(source.to_string()))?;
    // oci-spec's parser lets an uppercase repository through when the first
    // component does not look like a host; docker, podman and every registry
    // refuse it, so refuse it here, before it reaches a pod spec.
    if reference
        .repository()
        .chars()
        .any(|c| c.is_ascii_uppercase())
    {
        return Err(invalid(format!(
            "repository name '{}' must be lowercase",
            reference.repository()
        )));
    }
    Ok(reference)
}

/// Makes ring rustls's process-wide crypto provider, once: the workspace
/// builds reqwest without one of its own (`rustls-tls-no-provider`, which
/// keeps aws-lc-rs and its long C build out), and reqwest panics when it
/// builds a client while none is installed. A provider installed earlier
/// by the program stays.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err only when another thread installed one first: fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Resolves a reference to its manifest digest (`sha256:...`) as the
/// registry serves it now. A reference already pinned by digest is checked
/// against the registry too: a pin to a manifest that is gone is an error.
pub async fn resolve_digest(
    reference: &Reference,
    options: &RegistryOptions,
) -> Result<String, RegistryError> {
    RegistryClient::new(reference, options)?
        .resolve_digest(reference)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_keep_digest_pins() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned =
            parse_reference(&format!("registry.example/openshell/supervisor@{digest}")).unwrap();
        assert_eq!(pinned.digest(), Some(digest.as_str()));
        assert_eq!(pinned.tag(), None);
        let both = parse_reference(&format!("registry.example/sup:1.2@{digest}")).unwrap();
        assert_eq!(both.tag(), Some("1.2"));
        assert_eq!(both.digest(), Some(digest.as_str()));
        assert_eq!(both.whole(), format!("registry.example/sup:1.2@{digest}"));
    }

    #[test]
    fn bare_names_are_normalised_like_docker() {
        let reference = parse_reference("openshell/supervisor").unwrap();
        assert_eq!(reference.registry(), "docker.io");
        assert_eq!(reference.repository(), "openshell/supervisor");
        assert_eq!(reference.tag(), Some("latest"));
    }

    #[test]
    fn invalid_references_name_the_input() {
        for bad in [
            "",
            "UPPER/case",
            "repo:bad tag",
            "repo@sha256:abc",
            "repo@md5:00",
        ] {
            let err = parse_reference(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }
}
