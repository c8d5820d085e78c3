//! The registry client's network settings as the tools expose them: each a
//! flag and an environment variable, the flag winning.

/// Flag: how long to wait for a registry to accept a connection.
pub const FLAG_REGISTRY_CONNECT_TIMEOUT: &str = "registry-connect-timeout";
/// Environment variable: how long to wait for a registry to accept a
/// connection (`10s`, `500ms`, `1m`).
pub const ENV_REGISTRY_CONNECT_TIMEOUT: &str = "OPENSHELL_REGISTRY_CONNECT_TIMEOUT";

/// Flag: how long a registry may send no byte (and read none) before the
/// request is counted as stalled.
pub const FLAG_REGISTRY_READ_TIMEOUT: &str = "registry-read-timeout";
/// Environment variable for the read (idle) timeout.
pub const ENV_REGISTRY_READ_TIMEOUT: &str = "OPENSHELL_REGISTRY_READ_TIMEOUT";

/// Flag: the deadline of one registry operation (one manifest or blob pull,
/// one blob push, ...), retries included.
pub const FLAG_REGISTRY_OPERATION_TIMEOUT: &str = "registry-operation-timeout";
/// Environment variable for the operation deadline.
pub const ENV_REGISTRY_OPERATION_TIMEOUT: &str = "OPENSHELL_REGISTRY_OPERATION_TIMEOUT";

/// Flag: how many times one request is tried before giving up (1: no
/// retries).
pub const FLAG_REGISTRY_ATTEMPTS: &str = "registry-attempts";
/// Environment variable for the number of attempts.
pub const ENV_REGISTRY_ATTEMPTS: &str = "OPENSHELL_REGISTRY_ATTEMPTS";
