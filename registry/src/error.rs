//! Registry failures, each saying which registry, which reference, and
//! what to do about it.

use oci_client::errors::{OciDistributionError, OciErrorCode};

use crate::{Reference, ResolvedAuth};

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The text is not an image reference.
    #[error(
        "invalid image reference '{reference}': {reason} (expected [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], lowercase)"
    )]
    InvalidReference {
        /// The text given.
        reference: String,
        /// What the parser objected to.
        reason: String,
    },
    /// An auth file exists but cannot be used.
    #[error("auth file {path}: {reason}")]
    AuthFile {
        /// The file at fault.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry refused the credentials, or wants some and got none.
    #[error(
        "registry {registry} refused access to {reference} with {credentials}: check the user name and password (--username with --password-stdin, or the auth file)"
    )]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The reference asked for.
        reference: String,
        /// Which credentials were sent, and from where.
        credentials: String,
    },
    /// The repository, tag or digest does not exist there.
    #[error("{reference} was not found on registry {registry}: {detail}")]
    NotFound {
        /// The registry host.
        registry: String,
        /// The reference asked for.
        reference: String,
        /// What the registry said.
        detail: String,
    },
    /// The registry could not be reached at all.
    #[error("could not reach registry {registry} for {reference}: {reason}{hint}")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The reference asked for.
        reference: String,
        /// What failed (connection refused, DNS, TLS, timeout).
        reason: String,
        /// A suggestion, when there is an obvious one.
        hint: String,
    },
    /// Anything else the registry or the client reported.
    #[error("registry {registry} failed for {reference}: {detail}")]
    Other {
        /// The registry host.
        registry: String,
        /// The reference asked for.
        reference: String,
        /// The client's or registry's own message.
        detail: String,
    },
}

/// Turns an oci-client error into a [`RegistryError`] that names the
/// registry, the reference and the credentials used.
pub fn classify(
    error: OciDistributionError,
    reference: &Reference,
    auth: &ResolvedAuth,
) -> RegistryError {
    let registry = reference.registry().to_string();
    let reference_text = reference.whole();
    let unauthorized = || RegistryError::Unauthorized {
        registry: registry.clone(),
        reference: reference_text.clone(),
        credentials: auth.source.clone(),
    };
    let not_found = |detail: String| RegistryError::NotFound {
        registry: registry.clone(),
        reference: reference_text.clone(),
        detail,
    };
    match error {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
        OciDistributionError::ImageManifestNotFoundError(detail) => not_found(detail),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let detail = envelope.to_string();
            if codes
                .iter()
                .any(|code| matches!(code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized()
            } else if codes.iter().any(|code| {
                matches!(
                    code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found(detail)
            } else {
                RegistryError::Other {
                    registry,
                    reference: reference_text,
                    detail,
                }
            }
        }
        OciDistributionError::ServerError { code, message, url } => match code {
            401 | 403 => unauthorized(),
            404 => not_found(format!("HTTP 404 for {url}")),
            _ => RegistryError::Other {
                registry,
                reference: reference_text,
                detail: format!("HTTP {code} for {url}: {}", message.trim()),
            },
        },
        OciDistributionError::RequestError(request) => {
            // Some requests (a blob HEAD, for one) come back as a bare HTTP
            // status error rather than a registry error: classify by status.
            match request.status().map(|status| status.as_u16()) {
                Some(401 | 403) => return unauthorized(),
                Some(404) => return not_found(error_chain(&request)),
                _ => {}
            }
            if request.is_connect() || request.is_timeout() {
                let reason = error_chain(&request);
                let hint = if reason.contains("InvalidContentType")
                    || reason.contains("invalid peer certificate")
                    || reason.to_lowercase().contains("tls")
                {
                    "; if the registry serves plain HTTP (a loopback test registry), pass --plain-http"
                        .to_string()
                } else {
                    String::new()
                };
                RegistryError::Unreachable {
                    registry,
                    reference: reference_text,
                    reason,
                    hint,
                }
            } else {
                RegistryError::Other {
                    registry,
                    reference: reference_text,
                    detail: error_chain(&request),
                }
            }
        }
        other => RegistryError::Other {
            registry,
            reference: reference_text,
            detail: other.to_string(),
        },
    }
}

/// The error and its causes on one line: reqwest's top-level message alone
/// ("error sending request") hides the reason (refused, DNS, TLS).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
