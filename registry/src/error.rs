//! Registry failures, each saying which registry, which reference, and
//! what to do about it.

/// Why a registry operation failed. Every message is one line naming the
/// registry, the reference and (where there is one) the operation.
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
    /// A timeout or retry setting (an environment variable, or a value set
    /// in code) is unusable.
    #[error("registry setting {name}='{value}': {reason}")]
    InvalidSetting {
        /// The environment variable or setting at fault.
        name: String,
        /// The value given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// The registry refused the credentials, or wants some and got none.
    #[error(
        "registry {registry} refused access to {reference} with {credentials}{during}: check the user name and password (--username with --password-stdin, or the auth file)",
        during = during(operation)
    )]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The reference asked for.
        reference: String,
        /// Which credentials were sent, and from where.
        credentials: String,
        /// What was being done (`pull blob sha256:...`), or empty.
        operation: String,
    },
    /// The repository, tag or digest does not exist there.
    #[error("{reference} was not found on registry {registry}{during}: {detail}", during = during(operation))]
    NotFound {
        /// The registry host.
        registry: String,
        /// The reference asked for.
        reference: String,
        /// What the registry said.
        detail: String,
        /// What was being done, or empty.
        operation: String,
    },
    /// The registry could not be reached at all.
    #[error(
        "could not reach registry {registry} for {reference}: {operation_prefix}{reason}{hint}{gave_up}",
        operation_prefix = prefix(operation),
        gave_up = gave_up(*attempts)
    )]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The reference asked for.
        reference: String,
        /// What failed (connection refused, DNS, TLS, timeout).
        reason: String,
        /// A suggestion, when there is an obvious one.
        hint: String,
        /// What was being done, or empty.
        operation: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The connection broke during a request (reset, closed early) on every
    /// attempt.
    #[error(
        "{operation} of {reference}: the connection to registry {registry} broke: {reason}{gave_up}",
        gave_up = gave_up(*attempts)
    )]
    Interrupted {
        /// The registry host.
        registry: String,
        /// The reference the operation was for.
        reference: String,
        /// What was being done.
        operation: String,
        /// What the connection reported.
        reason: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The request made no progress for the read timeout (no byte of the
    /// body sent or taken, and no whole answer head received: a head that
    /// trickles in a byte at a time does not count), on the last attempt.
    #[error(
        "{operation} of {reference}: registry {registry} stalled: no progress for {idle} (read timeout; --{flag} / {env}){gave_up}",
        idle = crate::settings::show(*idle),
        flag = openshell_contract::registry::FLAG_REGISTRY_READ_TIMEOUT,
        env = openshell_contract::registry::ENV_REGISTRY_READ_TIMEOUT,
        gave_up = gave_up(*attempts)
    )]
    Stalled {
        /// The registry host.
        registry: String,
        /// The reference the operation was for.
        reference: String,
        /// What was being done.
        operation: String,
        /// The read timeout that ran out.
        idle: std::time::Duration,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The operation did not finish within its deadline.
    #[error(
        "{operation} of {reference}: registry {registry} did not complete it within {deadline} (operation timeout; --{flag} / {env}){gave_up}",
        deadline = crate::settings::show(*deadline),
        flag = openshell_contract::registry::FLAG_REGISTRY_OPERATION_TIMEOUT,
        env = openshell_contract::registry::ENV_REGISTRY_OPERATION_TIMEOUT,
        gave_up = after(*attempts)
    )]
    TimedOut {
        /// The registry host.
        registry: String,
        /// The reference the operation was for.
        reference: String,
        /// What was being done.
        operation: String,
        /// The deadline that ran out (the operation timeout, grown for a
        /// large blob).
        deadline: std::time::Duration,
        /// How many attempts had been made.
        attempts: u32,
    },
    /// The registry answered with an HTTP error status.
    #[error(
        "{operation} of {reference}: registry {registry} answered HTTP {status}: {detail}{gave_up}",
        gave_up = gave_up(*attempts)
    )]
    Status {
        /// The registry host.
        registry: String,
        /// The reference the operation was for.
        reference: String,
        /// What was being done.
        operation: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's error codes and messages, or the status text.
        detail: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The content served does not have the digest asked for (or the
    /// digest the registry itself gave for it): refused, never used.
    #[error(
        "{operation} of {reference}: registry {registry} served content whose digest is {actual}, not {expected}: refused"
    )]
    DigestMismatch {
        /// The registry host.
        registry: String,
        /// The reference the operation was for.
        reference: String,
        /// What was being done.
        operation: String,
        /// The digest asked for (or announced).
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// A manifest or blob is larger than the caller's limit.
    #[error(
        "{operation} of {reference}: {what} from registry {registry} is larger than the limit of {limit} bytes: refused"
    )]
    TooLarge {
        /// The registry host.
        registry: String,
        /// The reference the operation was for.
        reference: String,
        /// What was being done.
        operation: String,
        /// What is too large, with its size when known.
        what: String,
        /// The limit in bytes.
        limit: u64,
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

/// ` (while pull manifest)`, or nothing without an operation.
fn during(operation: &str) -> String {
    if operation.is_empty() {
        String::new()
    } else {
        format!(" (while: {operation})")
    }
}

/// `pull manifest: `, or nothing without an operation.
fn prefix(operation: &str) -> String {
    if operation.is_empty() {
        String::new()
    } else {
        format!("{operation}: ")
    }
}

/// `; gave up after 4 attempts` once retries ran out, nothing for a single
/// attempt.
fn gave_up(attempts: u32) -> String {
    if attempts > 1 {
        format!("; gave up after {attempts} attempts")
    } else {
        String::new()
    }
}

/// `, after 3 attempts` when more than one was made.
fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(", after {attempts} attempts")
    } else {
        String::new()
    }
}

/// Whether a connection error looks like TLS spoken to a plain HTTP server
/// (or a certificate problem): retrying cannot help.
pub(crate) fn looks_like_tls(reason: &str) -> bool {
    reason.contains("InvalidContentType")
        || reason.contains("invalid peer certificate")
        || reason.to_lowercase().contains("tls")
}

/// The advice for a TLS failure, or nothing.
pub(crate) fn tls_hint(reason: &str) -> &'static str {
    if looks_like_tls(reason) {
        "; if the registry serves plain HTTP (a loopback test registry), pass --plain-http"
    } else {
        ""
    }
}

/// The error and its causes on one line: reqwest's top-level message alone
/// ("error sending request") hides the reason (refused, DNS, TLS).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
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
