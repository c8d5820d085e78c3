//! The driver's configuration surface: method names, flags and environment
//! variables.

/// Value of the image-volume method (the default).
pub const METHOD_IMAGE_VOLUME: &str = "image-volume";

/// Value of the init-container method (the fallback for older clusters).
pub const METHOD_INIT_CONTAINER: &str = "init-container";

/// Flag naming the supervisor image.
pub const FLAG_SUPERVISOR_IMAGE: &str = "supervisor-image";
/// Environment variable naming the supervisor image.
pub const ENV_SUPERVISOR_IMAGE: &str = "OPENSHELL_SUPERVISOR_IMAGE";

/// Flag naming the supervisor image's pull policy.
pub const FLAG_SUPERVISOR_IMAGE_PULL_POLICY: &str = "supervisor-image-pull-policy";
/// Environment variable naming the supervisor image's pull policy.
pub const ENV_SUPERVISOR_IMAGE_PULL_POLICY: &str = "OPENSHELL_SUPERVISOR_IMAGE_PULL_POLICY";

/// Flag choosing the sideload method.
pub const FLAG_SUPERVISOR_SIDELOAD_METHOD: &str = "supervisor-sideload-method";
/// Environment variable choosing the sideload method.
pub const ENV_SUPERVISOR_SIDELOAD_METHOD: &str = "OPENSHELL_SUPERVISOR_SIDELOAD_METHOD";

/// First Kubernetes minor version (of 1.x) where image volumes are on by
/// default.
pub const IMAGE_VOLUME_DEFAULT_SINCE_MINOR: u64 = 35;
