//! The driver's configuration surface: method names, flags and environment
//! variables.

/// Value of the image-volume method (the default).
pub const METHOD_IMAGE_VOLUME: &str = "image-volume";

/// Value of the init-container method (the fallback for older clusters).
pub const METHOD_INIT_CONTAINER: &str = "init-container";

/// Value that lets the driver choose the method from facts about the
/// cluster (its version and its nodes' container runtimes).
pub const METHOD_AUTO: &str = "auto";

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

/// Flag taking the supervisor image from what `build-image` produced (its
/// build result JSON or its OCI image layout), pinned by digest.
pub const FLAG_SUPERVISOR_IMAGE_FROM: &str = "supervisor-image-from";
/// Environment variable for [`FLAG_SUPERVISOR_IMAGE_FROM`].
pub const ENV_SUPERVISOR_IMAGE_FROM: &str = "OPENSHELL_SUPERVISOR_IMAGE_FROM";

/// Flag asking the driver to resolve the supervisor image's tag to its
/// manifest digest at start and pin every pod to it.
pub const FLAG_PIN_SUPERVISOR_DIGEST: &str = "pin-supervisor-digest";
/// Environment variable for [`FLAG_PIN_SUPERVISOR_DIGEST`] (`true`/`false`).
pub const ENV_PIN_SUPERVISOR_DIGEST: &str = "OPENSHELL_PIN_SUPERVISOR_DIGEST";

/// Flag (repeatable) naming a pull secret added to every sandbox pod.
pub const FLAG_IMAGE_PULL_SECRET: &str = "image-pull-secret";
/// Environment variable for [`FLAG_IMAGE_PULL_SECRET`] (comma-separated).
pub const ENV_IMAGE_PULL_SECRETS: &str = "OPENSHELL_IMAGE_PULL_SECRETS";

/// Flag naming the cluster's Kubernetes version, to pick the sideload method.
pub const FLAG_KUBERNETES_VERSION: &str = "kubernetes-version";
/// Environment variable for [`FLAG_KUBERNETES_VERSION`].
pub const ENV_KUBERNETES_VERSION: &str = "OPENSHELL_KUBERNETES_VERSION";

/// Flag naming the driver's configuration file (YAML or JSON, keys named
/// like the flags).
pub const FLAG_DRIVER_CONFIG: &str = "config";
/// Environment variable for [`FLAG_DRIVER_CONFIG`].
pub const ENV_DRIVER_CONFIG: &str = "OPENSHELL_DRIVER_CONFIG";

/// Flag naming a file with `kubectl version -o json`, the cluster's version.
pub const FLAG_KUBERNETES_VERSION_JSON: &str = "kubernetes-version-json";
/// Environment variable for [`FLAG_KUBERNETES_VERSION_JSON`].
pub const ENV_KUBERNETES_VERSION_JSON: &str = "OPENSHELL_KUBERNETES_VERSION_JSON";

/// Flag naming a file with `kubectl get nodes -o json`, the cluster's nodes.
pub const FLAG_NODES_JSON: &str = "nodes-json";
/// Environment variable for [`FLAG_NODES_JSON`].
pub const ENV_NODES_JSON: &str = "OPENSHELL_NODES_JSON";

/// Flag declaring that the `ImageVolume` feature gate is on for the API
/// server and every kubelet (needed for image volumes before 1.35).
pub const FLAG_IMAGE_VOLUME_FEATURE_GATE: &str = "image-volume-feature-gate";
/// Environment variable for [`FLAG_IMAGE_VOLUME_FEATURE_GATE`].
pub const ENV_IMAGE_VOLUME_FEATURE_GATE: &str = "OPENSHELL_IMAGE_VOLUME_FEATURE_GATE";

/// First Kubernetes minor version (of 1.x) where image volumes are beta, so
/// that the `ImageVolume` gate can be turned on for real use.
pub const IMAGE_VOLUME_BETA_SINCE_MINOR: u64 = 33;

/// Flag choosing the security profile of the sandbox pod.
pub const FLAG_SECURITY_PROFILE: &str = "security-profile";
/// Environment variable for [`FLAG_SECURITY_PROFILE`].
pub const ENV_SECURITY_PROFILE: &str = "OPENSHELL_SECURITY_PROFILE";

/// Security profile value: the hardened pod (the default).
pub const SECURITY_PROFILE_HARDENED: &str = "hardened";
/// Security profile value: no hardening added by the driver.
pub const SECURITY_PROFILE_NONE: &str = "none";

/// User id the init container runs as when the pod names none: the
/// conventional "nonroot" user of distroless images.
pub const INIT_CONTAINER_UID: i64 = 65532;
