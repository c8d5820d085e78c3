//! The OpenShell Kubernetes driver's configuration and pod rendering.
//!
//! The driver decides, per cluster, how the supervisor binary reaches each
//! sandbox pod ([`SupervisorSideloadMethod`]): an image volume that mounts
//! the supervisor image, or an init container that copies the binary into an
//! `emptyDir`.

pub mod kubernetes_version;
pub mod method;

pub use kubernetes_version::KubernetesVersion;
pub use method::SupervisorSideloadMethod;
